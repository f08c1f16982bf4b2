//! hyper's HTTP/1 header-read timer, one per connection, kept between requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The connection's `tokio` sleep while hyper holds no timer.
type Kept = Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>;

/// hyper's timer for one HTTP/1 connection.
///
/// hyper arms its header-read timer for every request head (a kept-alive connection's
/// next request included) and drops it once the head is read. With `TokioTimer` each
/// request allocated a sleep, put it in the runtime's timer wheel at its first poll and
/// took it out again at the drop (≈ 0.65 k instructions a request). Here a dropped
/// timer's sleep is kept for the connection's next one and moved to the new deadline:
/// moving a sleep still in the wheel to a later deadline only records it (the wheel
/// moves the entry when the old deadline comes), so a request costs a reset and a
/// poll. A kept sleep may still fire at its old deadline while no head is being read
/// (a request served for longer than the timeout): one wake-up of the connection's
/// task that finds nothing to do.
#[derive(Clone, Default)]
pub(super) struct ConnTimer {
    kept: Kept,
}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let kept = self.kept.lock().ok().and_then(|mut k| k.take());
        let inner = match kept {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline.into());
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline.into())),
        };
        Box::pin(KeptSleep {
            inner: Some(inner),
            kept: self.kept.clone(),
        })
    }

    /// `tokio`'s clock, as `TokioTimer`'s: a paused test clock applies.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<KeptSleep>() {
            Some(kept) => kept.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// One of hyper's timers: the connection's sleep, handed back when dropped.
struct KeptSleep {
    /// `None` only while being dropped.
    inner: Option<Pin<Box<tokio::time::Sleep>>>,
    kept: Kept,
}

impl KeptSleep {
    fn reset(&mut self, deadline: Instant) {
        if let Some(sleep) = self.inner.as_mut() {
            sleep.as_mut().reset(deadline.into());
        }
    }
}

impl Future for KeptSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().inner.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for KeptSleep {}

impl Drop for KeptSleep {
    fn drop(&mut self) {
        if let (Some(sleep), Ok(mut kept)) = (self.inner.take(), self.kept.lock()) {
            *kept = Some(sleep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    /// A kept sleep moved to a later deadline ends at that deadline, not the first;
    /// one moved earlier (or made anew) ends at its own.
    #[tokio::test(start_paused = true)]
    async fn a_kept_sleep_ends_at_its_new_deadline() {
        let timer = ConnTimer::default();
        let start = timer.now();
        let mut first = timer.sleep(Duration::from_secs(30));
        // Polled once, as hyper does while a head is incomplete: in the wheel.
        assert!(futures::poll!(first.as_mut()).is_pending());
        drop(first);
        tokio::time::advance(Duration::from_secs(10)).await;
        let second = timer.sleep(Duration::from_secs(30));
        second.await;
        assert_eq!(timer.now() - start, Duration::from_secs(40));
        // Kept after it fired: made to wait again.
        let third = timer.sleep(Duration::from_secs(5));
        third.await;
        assert_eq!(timer.now() - start, Duration::from_secs(45));
        let mut fourth = timer.sleep(Duration::from_secs(30));
        assert!(futures::poll!(fourth.as_mut()).is_pending());
        timer.reset(&mut fourth, timer.now() + Duration::from_secs(2));
        fourth.await;
        assert_eq!(timer.now() - start, Duration::from_secs(47));
    }
}
