//! Response bodies: whole JSON bodies and paced streams, with the scripted faults
//! (malformed output, reset mid-stream, stall mid-stream).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::script::Script;

/// How long a reset waits after the last event so the bytes already written reach the
/// client before the connection is torn down (a zero-linger close discards unsent data).
const RESET_GRACE: Duration = Duration::from_millis(50);

/// Set by a response that wants its connection reset; read when the connection closes.
///
/// [`Simulator::serve`](super::Simulator::serve) puts one in every request's extensions
/// and closes the socket with `SO_LINGER=0` (a TCP RST) when it is set. Without it (the
/// router mounted elsewhere) a reset still aborts the body mid-stream, which ends the
/// connection without the final chunk.
#[derive(Clone, Debug, Default)]
pub struct ConnReset(Arc<AtomicBool>);

impl ConnReset {
    /// Whether a response asked for the connection to be reset.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// How a stream's events are framed; decides what a malformed event looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `data: …\n\n` server-sent events: a malformed stream carries an event whose JSON
    /// is cut short.
    Sse,
    /// AWS eventstream: a malformed stream ends inside a frame.
    EventStream,
    /// A JSON array written piecewise: a malformed stream is cut short.
    JsonArray,
}

fn with_content_type(mut resp: Response, content_type: &'static str) -> Response {
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A complete JSON body, honouring `x-sim-malformed` (half the body) and the reset and
/// stall scripts (the body is then sent in `chunks` pieces).
pub(crate) fn json(body: Vec<u8>, script: &Script, reset: Option<ConnReset>) -> Response {
    let body = Bytes::from(body);
    let body = if script.malformed {
        body.slice(..body.len() / 2)
    } else {
        body
    };
    let resp = if script.reset_after.is_some() || script.stall_after.is_some() {
        let n = script.chunks.clamp(1, body.len().max(1));
        let pieces = (0..n)
            .map(|k| body.slice(k * body.len() / n..(k + 1) * body.len() / n))
            .collect();
        paced(pieces, script, reset)
    } else {
        Response::new(Body::from(body))
    };
    with_content_type(resp, "application/json")
}

/// A streamed body of `events`, paced by the script's chunk interval.
pub(crate) fn events(
    mut events: Vec<Bytes>,
    framing: Framing,
    content_type: &'static str,
    script: &Script,
    reset: Option<ConnReset>,
) -> Response {
    if script.malformed && !events.is_empty() {
        let at = 1.min(events.len() - 1);
        let broken = &events[at];
        let broken = match framing {
            Framing::Sse => {
                let mut b = broken[..broken.len() / 2].to_vec();
                b.extend_from_slice(b"\n\n");
                Bytes::from(b)
            }
            Framing::EventStream | Framing::JsonArray => broken.slice(..broken.len() / 2),
        };
        events.truncate(at);
        events.push(broken);
    }
    let mut resp = paced(events, script, reset);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_content_type(resp, content_type)
}

struct Pacer {
    events: std::vec::IntoIter<Bytes>,
    sent: usize,
    interval: Duration,
    reset_after: Option<usize>,
    stall_after: Option<usize>,
    reset: Option<ConnReset>,
    done: bool,
}

fn paced(events: Vec<Bytes>, script: &Script, reset: Option<ConnReset>) -> Response {
    let pacer = Pacer {
        events: events.into_iter(),
        sent: 0,
        interval: script.interval,
        reset_after: script.reset_after,
        stall_after: script.stall_after,
        reset,
        done: false,
    };
    let stream = futures::stream::unfold(pacer, |mut p| async move {
        if p.done {
            return None;
        }
        if p.reset_after == Some(p.sent) {
            tokio::time::sleep(RESET_GRACE).await;
            if let Some(r) = &p.reset {
                r.set();
            }
            p.done = true;
            let err = io::Error::new(io::ErrorKind::ConnectionReset, "simulated reset");
            return Some((Err(err), p));
        }
        if p.stall_after == Some(p.sent) {
            std::future::pending::<()>().await;
        }
        let next = p.events.next()?;
        if p.sent > 0 && !p.interval.is_zero() {
            tokio::time::sleep(p.interval).await;
        }
        p.sent += 1;
        Some((Ok::<_, io::Error>(next), p))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn script(headers: &[(&'static str, &'static str)]) -> Script {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_static(v));
        }
        Script::from_headers(&h, &super::super::SimulatorConfig::default())
    }

    fn ev(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[tokio::test]
    async fn reset_errors_after_n_events_and_flags_the_connection() {
        let flag = ConnReset::default();
        let resp = events(
            vec![ev("a"), ev("b"), ev("c")],
            Framing::Sse,
            "text/event-stream",
            &script(&[("x-sim-reset-after-chunks", "2")]),
            Some(flag.clone()),
        );
        let err = axum::body::to_bytes(resp.into_body(), 1024).await;
        assert!(err.is_err());
        assert!(flag.is_set());
    }

    #[tokio::test]
    async fn malformed_sse_cuts_an_event() {
        let resp = events(
            vec![
                ev("data: {\"a\":1}\n\n"),
                ev("data: {\"b\":22}\n\n"),
                ev("data: [DONE]\n\n"),
            ],
            Framing::Sse,
            "text/event-stream",
            &script(&[("x-sim-malformed", "1")]),
            None,
        );
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"data: {\"a\":1}\n\ndata: {\"\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn stall_keeps_the_body_open() {
        let resp = events(
            vec![ev("a"), ev("b")],
            Framing::Sse,
            "text/event-stream",
            &script(&[("x-sim-stall-after-chunks", "1")]),
            None,
        );
        let read = axum::body::to_bytes(resp.into_body(), 1024);
        let timed = tokio::time::timeout(Duration::from_secs(3600), read).await;
        assert!(timed.is_err(), "stalled stream must not finish");
    }
}
