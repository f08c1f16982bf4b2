//! Configuration hot reload: the shared [`Reloader`] (content change detection,
//! validate-then-swap, the previous configuration kept on error) on a Tokio timer,
//! swapping the processor's [`Runtime`].

use crate::runtime::Runtime;
use aigw_core::planner::Reloader;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The poll interval upstream's ExtProc uses is 5 s; a shorter one costs a read per
/// file per tick and makes edits visible sooner.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Watches `paths` and swaps `runtime` when they change. `load` builds a runtime from
/// the files. The files' state is recorded when this is called (not when the future is
/// first polled), so an edit made between loading and spawning is not missed. The
/// future runs until dropped.
pub fn watch(
    paths: Vec<PathBuf>,
    runtime: Arc<ArcSwap<Runtime>>,
    interval: Duration,
    load: impl Fn(&[PathBuf]) -> aigw_core::Result<Runtime> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send {
    let mut reloader = Reloader::new(paths, load, move |r| runtime.store(Arc::new(r)));
    async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            reloader.poll();
        }
    }
}
