//! Admission: the cap on requests in flight, the global bound on buffered request-body
//! memory, and reading one request body within its size and time bounds.
//!
//! Both caps answer at once (503 with `retry-after` in the client API's error shape)
//! instead of queueing: a queue in front of a saturated gateway only adds latency and
//! memory, while a prompt 503 lets the client or its load balancer go elsewhere.

use aigw_core::Error;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// What a 503 from a full cap asks the client to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Body memory is counted in KiB so a `u32` reservation covers any body limit.
const UNIT: usize = 1024;

/// Chunked bodies reserve at least this much at a time, so a body of many small frames
/// does not touch the semaphore per frame.
const RESERVE_STEP: usize = 64 * 1024;

/// The bounds [`Admission`] enforces (from the gateway's settings; `None`: unbounded).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bounds {
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) max_buffered_body_bytes: Option<usize>,
    pub(crate) body_idle_timeout: Option<Duration>,
    pub(crate) body_timeout: Option<Duration>,
}

/// The shared caps of one gateway.
pub(crate) struct Admission {
    in_flight: Option<(Arc<Cap>, usize)>,
    body_memory: Option<(Arc<Cap>, usize)>,
    body_idle_timeout: Option<Duration>,
    body_timeout: Option<Duration>,
}

/// What a request holds while it is in flight (for a stream: until it ends).
#[derive(Default)]
pub(crate) struct Hold {
    _in_flight: Option<Taken>,
    body: Option<Taken>,
    reserved: usize,
    /// The backend's circuit-breaker place, once an attempt succeeded.
    pub(crate) circuit: Option<crate::health::CircuitPermit>,
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT)
}

impl Admission {
    pub(crate) fn new(bounds: Bounds) -> Self {
        let cap = |n: usize| (Arc::new(Cap::new(n)), n);
        Self {
            in_flight: bounds.max_in_flight.map(cap),
            body_memory: bounds.max_buffered_body_bytes.map(|b| {
                let (s, _) = cap(units(b));
                (s, b)
            }),
            body_idle_timeout: bounds.body_idle_timeout,
            body_timeout: bounds.body_timeout,
        }
    }

    /// Admits one request, or refuses it when the in-flight cap is reached.
    pub(crate) fn admit(&self) -> Result<Hold, Error> {
        let Some((sem, max)) = &self.in_flight else {
            return Ok(Hold::default());
        };
        match sem.try_take(1) {
            Some(p) => Ok(Hold {
                _in_flight: Some(p),
                ..Hold::default()
            }),
            None => Err(Error::Overloaded {
                message: format!("{max} requests in flight, the gateway's limit"),
                retry_after: RETRY_AFTER,
            }),
        }
    }

    /// Grows `hold`'s share of the body memory to `bytes`.
    fn reserve(&self, hold: &mut Hold, bytes: usize) -> Result<(), Error> {
        let Some((sem, max)) = &self.body_memory else {
            return Ok(());
        };
        let want = units(bytes);
        if want <= hold.reserved {
            return Ok(());
        }
        let permit = sem
            .try_take(want - hold.reserved)
            .ok_or_else(|| Error::Overloaded {
                message: format!(
                    "request bodies buffered across requests are at the gateway's {max} byte limit"
                ),
                retry_after: RETRY_AFTER,
            })?;
        hold.reserved = want;
        match &mut hold.body {
            Some(p) => p.merge(permit),
            None => hold.body = Some(permit),
        }
        Ok(())
    }

    /// Reads a request body of at most `limit` bytes: a declared `content-length` over
    /// the limit fails before anything is read; the read fails with a 408 when the
    /// client pauses longer than the body idle timeout or takes longer than the body
    /// timeout; its bytes count against the global body memory while `hold` lives.
    pub(crate) async fn read_body(
        &self,
        hold: &mut Hold,
        mut body: Body,
        declared: Option<u64>,
        limit: usize,
    ) -> Result<Bytes, Error> {
        if let Some(n) = declared {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            self.reserve(hold, n)?;
        }
        let clock = BodyClock::new(self.body_idle_timeout, self.body_timeout);
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        let mut total = 0usize;
        loop {
            // A frame already there is taken without reading the clock or making a
            // timer (most bodies arrive with their request's head).
            let ready = std::future::poll_fn(|cx| {
                Poll::Ready(http_body::Body::poll_frame(Pin::new(&mut body), cx))
            })
            .await;
            let frame = match ready {
                Poll::Ready(frame) => frame,
                Poll::Pending => match clock.wait() {
                    Some(wait) => tokio::time::timeout(wait, body.frame())
                        .await
                        .map_err(|_| clock.timeout_error())?,
                    None => body.frame().await,
                },
            };
            let data = match frame {
                None => break,
                Some(Err(e)) => {
                    return Err(Error::bad_request(format!(
                        "cannot read the request body: {e}"
                    )));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) if !d.is_empty() => d,
                    _ => continue,
                },
            };
            total = total.saturating_add(data.len());
            if total > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            if declared.is_none() && units(total) > hold.reserved {
                self.reserve(hold, total.max(RESERVE_STEP).min(limit))?;
            }
            // Most bodies arrive in one frame: hand that frame on without a copy.
            match first.take() {
                None if rest.is_empty() => first = Some(data),
                None => rest.extend_from_slice(&data),
                Some(f) => {
                    rest.reserve(declared.map_or(f.len() + data.len(), |n| n as usize));
                    rest.extend_from_slice(&f);
                    rest.extend_from_slice(&data);
                }
            }
            // A body whose declared length has arrived says so: asking for the frame
            // after it would only be answered "none", behind a clock read and a timer.
            if http_body::Body::is_end_stream(&body) {
                break;
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    }
}

/// A count held against a cap, taken without waiting (a request over a cap is refused,
/// never queued).
///
/// A semaphore did the same, but each release locked its waiters' list (there never
/// are any here): two locks a request, ≈ 0.15 k instructions.
struct Cap {
    used: AtomicUsize,
    max: usize,
}

impl Cap {
    fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// `n` more units, unless that would pass the cap.
    fn try_take(self: &Arc<Self>, n: usize) -> Option<Taken> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(n).filter(|&t| t <= self.max)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Taken {
                        cap: self.clone(),
                        n,
                    });
                }
                Err(now) => used = now,
            }
        }
    }
}

/// Units of a [`Cap`], given back when dropped.
struct Taken {
    cap: Arc<Cap>,
    n: usize,
}

impl Taken {
    /// Holds `other`'s units too.
    fn merge(&mut self, mut other: Self) {
        self.n += std::mem::take(&mut other.n);
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if self.n > 0 {
            self.cap.used.fetch_sub(self.n, Ordering::AcqRel);
        }
    }
}

/// The body read's two clocks: the pause between frames and the whole read.
struct BodyClock {
    idle: Option<Duration>,
    deadline: Option<(Instant, Duration)>,
}

impl BodyClock {
    fn new(idle: Option<Duration>, total: Option<Duration>) -> Self {
        Self {
            idle,
            deadline: total.map(|t| (Instant::now() + t, t)),
        }
    }

    /// How long the next frame may take.
    fn wait(&self) -> Option<Duration> {
        let left = self
            .deadline
            .map(|(d, _)| d.saturating_duration_since(Instant::now()));
        match (self.idle, left) {
            (Some(i), Some(l)) => Some(i.min(l)),
            (i, l) => i.or(l),
        }
    }

    fn timeout_error(&self) -> Error {
        let message = match self.deadline {
            Some((d, t)) if Instant::now() >= d => {
                format!("the request body was not received within {t:?}")
            }
            _ => format!(
                "no request body data for {:?}",
                self.idle.unwrap_or_default()
            ),
        };
        Error::RequestTimeout { message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn settings() -> Bounds {
        Bounds {
            max_buffered_body_bytes: Some(100 * 1024),
            max_in_flight: Some(2),
            body_idle_timeout: Some(Duration::from_millis(50)),
            body_timeout: Some(Duration::from_millis(200)),
        }
    }

    #[test]
    fn in_flight_cap_refuses_without_queueing() {
        let a = Admission::new(settings());
        let h1 = a.admit().unwrap();
        let _h2 = a.admit().unwrap();
        let e = a.admit().err().unwrap();
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(RETRY_AFTER));
        drop(h1);
        assert!(a.admit().is_ok());
    }

    #[tokio::test]
    async fn body_memory_is_shared_and_released() {
        let a = Admission::new(settings());
        let mut h1 = Hold::default();
        let body = a
            .read_body(
                &mut h1,
                Body::from(vec![b'x'; 60 * 1024]),
                Some(60 * 1024),
                1 << 20,
            )
            .await
            .unwrap();
        assert_eq!(body.len(), 60 * 1024);
        let mut h2 = Hold::default();
        let e = a
            .read_body(
                &mut h2,
                Body::from(vec![b'x'; 60 * 1024]),
                Some(60 * 1024),
                1 << 20,
            )
            .await
            .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        drop(h1);
        let mut h3 = Hold::default();
        a.read_body(&mut h3, Body::from(vec![b'x'; 60 * 1024]), None, 1 << 20)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn declared_oversize_fails_before_reading() {
        let a = Admission::new(settings());
        // A body that never yields: only the declared length can answer.
        let body = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let e = a
            .read_body(&mut Hold::default(), body, Some(10_000_000), 1000)
            .await
            .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn stalled_and_slow_bodies_time_out() {
        let a = Admission::new(settings());
        let stalled =
            Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let t = Instant::now();
        let e = a
            .read_body(&mut Hold::default(), stalled, None, 1000)
            .await
            .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::REQUEST_TIMEOUT);
        assert!(
            t.elapsed() < Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        // A byte every 30 ms never trips the idle timer but hits the total one.
        let trickle = futures::stream::iter(0..100).then(|_| async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
        });
        let t = Instant::now();
        let e = a
            .read_body(&mut Hold::default(), Body::from_stream(trickle), None, 1000)
            .await
            .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::REQUEST_TIMEOUT);
        assert!(e.to_string().contains("within"), "{e}");
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn multi_frame_bodies_are_joined() {
        let a = Admission::new(settings());
        let frames = futures::stream::iter(["ab", "cd", "e"])
            .map(|f| Ok::<_, std::io::Error>(Bytes::from_static(f.as_bytes())));
        let b = a
            .read_body(&mut Hold::default(), Body::from_stream(frames), None, 1000)
            .await
            .unwrap();
        assert_eq!(&b[..], b"abcde");
    }
}
