//! The one way a service's background work repeats: run, wait, run again, until stopped.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `work` now, then again `period` after each run ends, until `stop`; a run under way
/// when `stop` comes finishes first.
pub async fn every<F, Fut>(period: Duration, stop: &CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        work().await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}
