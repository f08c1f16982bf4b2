//! Streamed responses: upstream chunks translated and forwarded as they arrive.

use crate::admission::Hold;
use crate::record::RecordSink;
use crate::upstream::UpstreamBody;
use aigw_core::Error;
use aigw_core::estimate::CancelDrain;
use aigw_core::exchange::{Attempt, Exchange};
use bytes::Bytes;
use futures::Stream;
use http::StatusCode;
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// Owns an exchange until it is finished, and finishes it exactly once: explicitly, or
/// on drop as a client hang-up (status 499), which also settles the meter with the
/// usage seen so far.
pub(crate) struct Finisher {
    /// Boxed: an exchange is over a kilobyte and every request future that holds the
    /// finisher is moved several times on its way to the runtime.
    exchange: Option<Box<Exchange>>,
    sink: Arc<dyn RecordSink>,
    span: SpanRef,
    /// The request's in-flight slot and body memory, released with the finisher (for a
    /// stream: when the client's body ends).
    hold: Option<Hold>,
}

/// Set once a server of this process has begun shutting down: streams cut from then on
/// settle at once (with an estimate) instead of reading their upstream on, so their
/// records are written before the process exits.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Notes that the process is shutting down (see [`SHUTTING_DOWN`]).
pub(crate) fn shutting_down() {
    SHUTTING_DOWN.store(true, Ordering::Relaxed);
}

/// The status recorded for requests the client abandoned (nginx's convention).
pub(crate) fn client_closed() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The request span, which the sink runs inside.
enum SpanRef {
    /// Entered by this finisher to finish (a stream's body is polled outside it).
    Own(tracing::Span),
    /// Entered around every use of the finisher already: it lives in the exchange's
    /// future, which [`InSpan`] polls and drops inside the span. Holding a handle of
    /// its own cost a clone and a close, and entering it again an enter and an exit,
    /// through every layer of the subscriber. `enabled`: whether the span is.
    Entered { enabled: bool },
}

impl Finisher {
    /// A finisher used only inside the request `span` (see [`SpanRef::Entered`]): in
    /// the exchange's future polled by [`InSpan`].
    pub(crate) fn in_span(
        exchange: Box<Exchange>,
        sink: Arc<dyn RecordSink>,
        span: &tracing::Span,
    ) -> Self {
        Self {
            exchange: Some(exchange),
            sink,
            span: SpanRef::Entered {
                enabled: !span.is_disabled(),
            },
            hold: None,
        }
    }

    /// Keeps the backend's circuit-breaker place until the finisher is dropped.
    pub(crate) fn keep_circuit(&mut self, permit: Option<crate::health::CircuitPermit>) {
        if permit.is_some() {
            self.hold.get_or_insert_with(Hold::default).circuit = permit;
        }
    }

    /// Keeps the request's admission until the finisher is dropped.
    pub(crate) fn holding(mut self, hold: Hold) -> Self {
        self.hold = Some(hold);
        self
    }

    pub(crate) fn exchange_mut(&mut self) -> Result<&mut Exchange, Error> {
        self.exchange
            .as_deref_mut()
            .ok_or_else(|| Error::internal("exchange already finished"))
    }

    /// Moves the exchange into a new finisher (the streaming body's), which holds the
    /// request span: taken from inside it, the current span is the request's.
    pub(crate) fn take(&mut self) -> Self {
        let span = match &self.span {
            SpanRef::Own(span) => span.clone(),
            SpanRef::Entered { enabled: true } => tracing::Span::current(),
            SpanRef::Entered { enabled: false } => tracing::Span::none(),
        };
        Self {
            exchange: self.exchange.take(),
            sink: self.sink.clone(),
            span: SpanRef::Own(span),
            hold: self.hold.take(),
        }
    }

    pub(crate) fn finish(&mut self, status: StatusCode, error: Option<&Error>) {
        if let Some(ex) = self.exchange.take() {
            let record = ex.finish_boxed(status, error);
            let _entered = match &self.span {
                SpanRef::Own(span) => Some(span.enter()),
                SpanRef::Entered { .. } => None,
            };
            self.sink.record(&record);
        }
    }
}

/// A future polled inside a span, as [`tracing::Instrument`] does, except that the
/// future is dropped inside the span when it completes (in the poll that completes
/// it, where the span is entered already) instead of in the wrapper's drop, which
/// entered the span once more for a future with nothing left to drop. A future
/// dropped unfinished is dropped inside the span, as with `Instrument`.
pub(crate) struct InSpan<F> {
    future: Option<F>,
    span: tracing::Span,
}

impl<F> InSpan<F> {
    pub(crate) fn new(future: F, span: tracing::Span) -> Self {
        Self {
            future: Some(future),
            span,
        }
    }
}

impl<F: Future + Unpin> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let Some(future) = this.future.as_mut() else {
            // Polled again after completing: as a fused future, never ready again.
            return Poll::Pending;
        };
        let out = std::task::ready!(Pin::new(future).poll(cx));
        this.future = None;
        Poll::Ready(out)
    }
}

impl<F> Drop for InSpan<F> {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            let _entered = self.span.enter();
            drop(future);
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if self.exchange.is_some() {
            let e = Error::internal("the client closed the connection");
            self.finish(client_closed(), Some(&e));
        }
    }
}

/// At most this many bytes of translated events are gathered into one write.
const BATCH_BYTES: usize = 16 * 1024;

/// The state of one streamed response.
pub(crate) struct StreamBody {
    finisher: Finisher,
    /// The attempt and upstream body; taken by a drain when the client hangs up.
    live: Option<(Attempt, UpstreamBody)>,
    first: Option<Bytes>,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    /// Non-zero once the stream's first bytes went out (they go alone, with the head).
    chunks_sent: u8,
    /// The read bound's timer, made at the first read and kept: making and dropping
    /// one per upstream read registered and removed it in the timer wheel every time.
    /// It may be set earlier than the bound (which only moves later); when it fires
    /// early it is moved to the bound.
    timer: Option<Pin<Box<Sleep>>>,
    status: StatusCode,
    upstream_wait: Duration,
    done: bool,
    drain: CancelDrain,
}

impl StreamBody {
    pub(crate) fn new(
        finisher: Finisher,
        attempt: Attempt,
        incoming: UpstreamBody,
        first: Bytes,
        idle: Option<Duration>,
        status: StatusCode,
    ) -> Self {
        Self {
            finisher,
            live: Some((attempt, incoming)),
            first: Some(first),
            idle,
            deadline: None,
            chunks_sent: 0,
            timer: None,
            status,
            upstream_wait: Duration::ZERO,
            done: false,
            drain: CancelDrain::OFF,
        }
    }

    /// Reads the upstream on, within `drain`, when the client hangs up mid-stream.
    pub(crate) fn with_drain(mut self, drain: CancelDrain) -> Self {
        self.drain = drain;
        self
    }

    /// Ends the stream with a timeout error event at `deadline`.
    pub(crate) fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The body as a stream of client bytes. Dropping it (client disconnect) drops the
    /// upstream body, which closes the upstream connection, and finishes the exchange.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut s| async move {
            let out = s.step().await?;
            Some((Ok(out), s))
        })
    }

    /// The next bytes for the client. Events the upstream sent together leave in one
    /// write: once a chunk is translated, the chunks the upstream connection has
    /// already read are taken too ([`Self::more`]) and appended, up to
    /// [`BATCH_BYTES`]. The stream's first bytes go at once, with the head.
    async fn step(&mut self) -> Option<Bytes> {
        let mut batch = Batch::default();
        loop {
            if self.done || batch.len() >= BATCH_BYTES {
                return batch.take();
            }
            let (chunk, end) = match self.first.take() {
                Some(first) if !first.is_empty() => (first, false),
                Some(_) => (Bytes::new(), true),
                None if batch.is_empty() => match self.read().await {
                    Ok(b) => {
                        let end = b.is_empty();
                        (b, end)
                    }
                    Err(e) => return Some(self.fail(&e)),
                },
                None => match self.more().await {
                    Some(Ok(b)) => {
                        let end = b.is_empty();
                        (b, end)
                    }
                    Some(Err(e)) => {
                        batch.push(self.fail(&e));
                        return batch.take();
                    }
                    None => return batch.take(),
                },
            };
            let first = self.chunks_sent == 0;
            let translated = match (self.finisher.exchange_mut(), self.live.as_mut()) {
                (Ok(ex), Some((attempt, _))) => ex.chunk(attempt, chunk, end),
                _ => return batch.take(),
            };
            match translated {
                Ok(out) => batch.push(out),
                Err(e) => {
                    batch.push(self.fail(&e));
                    return batch.take();
                }
            }
            if end {
                self.done = true;
                self.add_wait();
                self.finisher.finish(self.status, None);
            }
            if first && !batch.is_empty() {
                self.chunks_sent = 1;
                return batch.take();
            }
        }
    }

    /// The next upstream frame if the upstream connection's task has one ready once it
    /// has had its turn: `None` when the runtime ran out of other work first (nothing
    /// more arrived with this batch).
    async fn more(&mut self) -> Option<Result<Bytes, Error>> {
        let (_, incoming) = self.live.as_mut()?;
        let idle = Arc::new(Idle::default());
        let mut turn = std::pin::pin!(tokio::task::yield_now());
        let mut read = std::pin::pin!(next_frame_data(incoming));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = read.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            if idle.waker.get().is_none() {
                // The runtime wakes a yielded task once it has nothing else to run;
                // hyper polls the body again at once, so the yield alone cannot tell.
                let _ = idle.waker.set(cx.waker().clone());
                let waker = std::task::Waker::from(idle.clone());
                let _ = turn
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(&waker));
            }
            if idle.ran_out.load(Ordering::Acquire) {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Waits for the next upstream data frame within the idle bound and the stream's
    /// deadline; `Ok(empty)` at the end of the body.
    async fn read(&mut self) -> Result<Bytes, Error> {
        let Some((_, incoming)) = self.live.as_mut() else {
            return Ok(Bytes::new());
        };
        let waited = Instant::now();
        let idle_at = self.idle.map(|idle| waited + idle);
        let until = match (idle_at, self.deadline) {
            (Some(i), Some(d)) => Some(i.min(d)),
            (i, d) => i.or(d),
        };
        let next = match until {
            Some(until) => {
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until.into())));
                if timer.deadline() > until.into() {
                    timer.as_mut().reset(until.into());
                }
                let mut read = std::pin::pin!(next_frame_data(incoming));
                let idle = self.idle.filter(|_| idle_at == Some(until));
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = read.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                    loop {
                        std::task::ready!(timer.as_mut().poll(cx));
                        if timer.deadline() >= until.into() {
                            return Poll::Ready(Err(timed_out(idle)));
                        }
                        // Set for an earlier read's bound: wait on to this one's.
                        timer.as_mut().reset(until.into());
                    }
                })
                .await
            }
            None => next_frame_data(incoming).await,
        };
        self.upstream_wait += waited.elapsed();
        next
    }

    /// Ends the stream with an error event in the client's format.
    fn fail(&mut self, e: &Error) -> Bytes {
        self.done = true;
        self.add_wait();
        let event = self
            .finisher
            .exchange_mut()
            .map(|ex| ex.stream_error_event(e))
            .unwrap_or_default();
        tracing::debug!(error = %e, "stream ended with an error");
        self.finisher.finish(e.status(), Some(e));
        event
    }

    fn add_wait(&mut self) {
        if let Ok(ex) = self.finisher.exchange_mut() {
            let r = ex.record_mut();
            r.upstream_wait = Some(r.upstream_wait.unwrap_or_default() + self.upstream_wait);
        }
    }
}

/// Set when the runtime woke a yielded batch: it had nothing else to run.
#[derive(Default)]
struct Idle {
    ran_out: AtomicBool,
    waker: std::sync::OnceLock<std::task::Waker>,
}

impl std::task::Wake for Idle {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ran_out.store(true, Ordering::Release);
        if let Some(w) = self.waker.get() {
            w.wake_by_ref();
        }
    }
}

/// Translated bytes gathered for one write: a single chunk is passed on as it is, more
/// are copied into one buffer.
#[derive(Default)]
struct Batch {
    one: Option<Bytes>,
    more: Vec<u8>,
}

impl Batch {
    fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.more.is_empty() {
            match self.one.take() {
                None => self.one = Some(bytes),
                Some(first) => {
                    self.more.reserve(first.len() + bytes.len());
                    self.more.extend_from_slice(&first);
                    self.more.extend_from_slice(&bytes);
                }
            }
        } else {
            self.more.extend_from_slice(&bytes);
        }
    }

    fn len(&self) -> usize {
        self.one.as_ref().map_or(self.more.len(), Bytes::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(self) -> Option<Bytes> {
        match self.one {
            Some(one) => Some(one),
            None => (!self.more.is_empty()).then(|| Bytes::from(self.more)),
        }
    }
}

impl Drop for StreamBody {
    /// The client hung up mid-stream: the provider bills the whole reply, so the
    /// upstream is read on in the background (within the drain bounds) for its final
    /// usage report. The exchange then finishes as a 499 — with the reported usage when
    /// the upstream completed, else with an estimate from what was delivered.
    fn drop(&mut self) {
        if self.done || !self.drain.enabled() || SHUTTING_DOWN.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (Ok(ex), Some((attempt, incoming))) = (self.finisher.exchange_mut(), self.live.take())
        else {
            return;
        };
        ex.client_gone();
        let drain = Drain {
            finisher: self.finisher.take(),
            attempt,
            first: self.first.take(),
            bounds: self.drain,
        };
        handle.spawn(drain.run(incoming));
    }
}

/// An abandoned stream's upstream, read to its end for usage only.
struct Drain {
    finisher: Finisher,
    attempt: Attempt,
    first: Option<Bytes>,
    bounds: CancelDrain,
}

impl Drain {
    async fn run(mut self, mut incoming: UpstreamBody) {
        let bounds = self.bounds;
        let read = async {
            let mut bytes = 0u64;
            if let Some(first) = self.first.take().filter(|b| !b.is_empty()) {
                bytes += first.len() as u64;
                self.feed(first, false)?;
            }
            while bytes <= bounds.max_bytes {
                let chunk = next_frame_data(&mut incoming).await.ok()?;
                let end = chunk.is_empty();
                bytes += chunk.len() as u64;
                self.feed(chunk, end)?;
                if end {
                    return Some(());
                }
            }
            None
        };
        let completed = tokio::time::timeout(bounds.timeout, read)
            .await
            .ok()
            .flatten()
            .is_some();
        tracing::debug!(completed, "upstream read on after the client hung up");
        drop(incoming);
        let e = Error::internal("the client closed the connection");
        self.finisher.finish(client_closed(), Some(&e));
    }

    fn feed(&mut self, chunk: Bytes, end: bool) -> Option<()> {
        let ex = self.finisher.exchange_mut().ok()?;
        ex.chunk(&mut self.attempt, chunk, end).ok().map(drop)
    }
}

/// The error of a stream read that timed out: `idle` when the idle bound ran out, else
/// the request's deadline.
fn timed_out(idle: Option<Duration>) -> Error {
    let message = match idle {
        Some(idle) => format!("stream idle for {idle:?}"),
        None => "request timeout reached during the stream".into(),
    };
    Error::Timeout { message }
}

/// Waits for the next data frame within `idle`, skipping trailers; `Ok(empty)` at the
/// end of the body.
pub(crate) async fn next_data(
    incoming: &mut UpstreamBody,
    idle: Option<Duration>,
) -> Result<Bytes, Error> {
    match idle {
        Some(idle) => tokio::time::timeout(idle, next_frame_data(incoming))
            .await
            .unwrap_or_else(|_| Err(timed_out(Some(idle)))),
        None => next_frame_data(incoming).await,
    }
}

/// Waits for the next data frame, skipping trailers; `Ok(empty)` at the end of the body.
async fn next_frame_data(incoming: &mut UpstreamBody) -> Result<Bytes, Error> {
    loop {
        let frame = incoming.frame().await;
        match frame {
            None => return Ok(Bytes::new()),
            Some(Err(e)) => {
                return Err(Error::UpstreamUnavailable {
                    message: format!("upstream stream broke: {e}"),
                });
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return Ok(data);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_fields::tests::Buf;

    /// Logs an event when dropped.
    struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            tracing::info!("dropped");
        }
    }

    /// Ready at its first poll, holding a guard until it is dropped.
    struct ReadyHolding(#[allow(dead_code)] Guard);

    impl Future for ReadyHolding {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<()> {
            tracing::info!("polled");
            Poll::Ready(())
        }
    }

    #[test]
    fn a_future_is_polled_and_dropped_inside_the_span() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("req", id = 1);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            // Completes in its first poll, where it is dropped (its guard with it).
            let mut f = InSpan::new(ReadyHolding(Guard), span.clone());
            assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
            assert!(Pin::new(&mut f).poll(&mut cx).is_pending(), "fused");
            tracing::info!("between");
            drop(f);
            // Never completes: dropped by the wrapper, inside the span.
            let pending = Box::pin(async {
                let _g = Guard;
                std::future::pending::<()>().await;
            });
            let mut f = InSpan::new(pending, span);
            assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
            drop(f);
            tracing::info!("outside");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        for (line, message, in_span) in [
            (lines[0], "polled", true),
            (lines[1], "dropped", true),
            (lines[2], "between", false),
            (lines[3], "dropped", true),
            (lines[4], "outside", false),
        ] {
            assert!(line.ends_with(message), "{text}");
            assert_eq!(line.contains("req{id=1}"), in_span, "{text}");
        }
    }
}
