//! `aigw run`'s pricing and budget flags (docs/budgets.md).

use aigw_core::Secret;
use aigw_core::budget::{MemorySpendStore, SpendStore, Spending};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Prices and money budgets.
#[derive(Args, Debug)]
pub(crate) struct SpendArgs {
    /// Price table (YAML or JSON): per model, USD per million tokens, effective-dated;
    /// reloaded when it changes. Enables cost recording and `aigw_spend_usd_total`.
    #[arg(long, env = "AIGW_PRICING_FILE", value_name = "FILE")]
    pricing_file: Option<PathBuf>,
    /// Money budgets per key, team or route (YAML or JSON); reloaded when it changes.
    /// Needs --pricing-file. Counted in Redis with --redis-url, else in this process.
    #[arg(
        long,
        env = "AIGW_BUDGETS_FILE",
        value_name = "FILE",
        requires = "pricing_file"
    )]
    budgets_file: Option<PathBuf>,
}

impl SpendArgs {
    /// The spend engine, when a price table is configured, reloading its files every
    /// `interval`; a request that names no output limit reserves `output_tokens`; a
    /// Redis call waits `redis_timeout`, at least 100 ms.
    pub(crate) fn build(
        &self,
        redis: Option<&Secret>,
        redis_timeout: Duration,
        interval: Duration,
        output_tokens: u64,
    ) -> Result<Option<Arc<Spending>>, String> {
        let Some(pricing_file) = &self.pricing_file else {
            return Ok(None);
        };
        let store: Arc<dyn SpendStore> = match redis {
            Some(url) => {
                let s = aigw_core::budget::RedisSpendStore::new(url, spend_timeout(redis_timeout))
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    redis = s.display_url(),
                    "spend and budgets counted in Redis"
                );
                Arc::new(s)
            }
            None => Arc::new(MemorySpendStore::default()),
        };
        let spending = Spending::from_files(pricing_file, self.budgets_file.as_deref(), store)
            .map_err(|e| e.to_string())?
            .with_default_output_tokens(output_tokens);
        let spending = Arc::new(spending);
        let reloaded = spending.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                reloaded.reload_changed_files();
            }
        });
        Ok(Some(spending))
    }
}

/// How long a budget reservation waits for Redis: `--redis-timeout`, at least 100 ms
/// (money is worth a longer wait than a rate-limit check).
fn spend_timeout(redis_timeout: Duration) -> Duration {
    redis_timeout.max(Duration::from_millis(100))
}
