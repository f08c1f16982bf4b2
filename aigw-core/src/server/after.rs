//! Work a request leaves for after its response: run once the poll of the HTTP/1
//! connection serving it returns, by which time hyper has written the response the
//! poll produced. At concurrency 1 the work then sits between a response and the next
//! request instead of between reading the upstream's answer and writing the client's.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Deferred work of one thread.
type Work = Box<dyn FnOnce()>;

thread_local! {
    /// Whether an HTTP/1 connection of [`super::serve`] is being polled on this thread.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The work its requests left; kept allocated between polls.
    static QUEUE: RefCell<Vec<Work>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` when the poll of the HTTP/1 connection serving the current request
/// returns (after the response it produced is written), or now when no such poll is in
/// progress on this thread (HTTP/2 streams, which run on tasks of their own; other
/// servers; tests).
pub fn after_response(work: impl FnOnce() + 'static) {
    if ACTIVE.get() {
        QUEUE.with_borrow_mut(|q| q.push(Box::new(work)));
    } else {
        work();
    }
}

/// Polls a connection, then runs the work its requests left ([`after_response`]).
pub(super) struct Deferring<F>(pub(super) F);

impl<F: Future + Unpin> Future for Deferring<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // A connection is never polled inside another's poll; if one were, the
        // outer poll runs the work.
        let _active = Active {
            outer: !ACTIVE.replace(true),
        };
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Ends a [`Deferring`] poll, also when it unwinds.
struct Active {
    outer: bool,
}

impl Drop for Active {
    fn drop(&mut self) {
        if !self.outer {
            return;
        }
        ACTIVE.set(false);
        let mut batch = QUEUE.with_borrow_mut(std::mem::take);
        if std::thread::panicking() {
            // Work that may panic again is not run while unwinding: dropped.
            return;
        }
        for work in batch.drain(..) {
            work();
        }
        // The allocation goes back for the next poll (work run here ran inline).
        QUEUE.with_borrow_mut(|q| {
            if q.is_empty() {
                *q = batch;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn work_waits_for_the_end_of_the_poll_and_runs_in_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let mut fut = Deferring(Box::pin(std::future::poll_fn(move |_| {
            for i in 0..3 {
                let l2 = l.clone();
                after_response(move || l2.borrow_mut().push(i));
            }
            l.borrow_mut().push(-1);
            Poll::Ready(())
        })));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut fut).poll(&mut cx).is_ready());
        assert_eq!(*log.borrow(), vec![-1, 0, 1, 2]);
        assert!(!ACTIVE.get());
    }

    #[test]
    fn outside_a_poll_work_runs_at_once() {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        after_response(move || r.set(true));
        assert!(ran.get());
    }

    #[test]
    fn work_left_by_work_runs_at_once() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let mut fut = Deferring(Box::pin(std::future::poll_fn(move |_| {
            let l2 = l.clone();
            after_response(move || {
                let l3 = l2.clone();
                after_response(move || l3.borrow_mut().push("inner"));
                l2.borrow_mut().push("outer");
            });
            Poll::<()>::Pending
        })));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!(*log.borrow(), vec!["inner", "outer"]);
    }

    #[test]
    fn a_panicking_poll_leaves_the_thread_usable() {
        let caught = std::panic::catch_unwind(|| {
            let mut fut = Deferring(Box::pin(std::future::poll_fn(|_| -> Poll<()> {
                after_response(|| panic!("not run while unwinding"));
                panic!("poll");
            })));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let _ = Pin::new(&mut fut).poll(&mut cx);
        });
        assert!(caught.is_err());
        assert!(!ACTIVE.get());
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        after_response(move || r.set(true));
        assert!(ran.get());
    }
}
