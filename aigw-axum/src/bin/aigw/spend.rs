//! `aigw run`'s pricing, budget and admin-token flags (docs/budgets.md).

use aigw_core::Secret;
use aigw_core::budget::{Budgets, MemorySpendStore, SpendStore, Spending};
use aigw_core::pricing::Pricing;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Prices, money budgets and the admin API.
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
    /// Bearer token of the admin API on the admin listener (`/admin/…`); without it
    /// the admin API answers 403.
    #[arg(long, env = "AIGW_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<Secret>,
}

impl SpendArgs {
    /// The admin token, when one is set.
    pub(crate) fn admin_token(&self) -> Option<aigw_axum::admin_usage::AdminToken> {
        self.admin_token
            .as_ref()
            .and_then(aigw_axum::admin_usage::AdminToken::new)
    }

    /// The spend engine, when a price table is configured.
    pub(crate) fn build(&self, redis: Option<&Secret>) -> Result<Option<Arc<Spending>>, String> {
        let Some(pricing_file) = &self.pricing_file else {
            return Ok(None);
        };
        let pricing = Pricing::from_file(pricing_file).map_err(|e| e.to_string())?;
        let budgets = match &self.budgets_file {
            Some(f) => Budgets::from_file(f).map_err(|e| e.to_string())?,
            None => Budgets::new(aigw_core::budget::BudgetRules::default()),
        };
        let store: Arc<dyn SpendStore> = match redis {
            Some(url) => {
                let s = aigw_core::budget::RedisSpendStore::new(url, Duration::from_millis(100))
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    redis = s.display_url(),
                    "spend and budgets counted in Redis"
                );
                Arc::new(s)
            }
            None => Arc::new(MemorySpendStore::default()),
        };
        tracing::info!(
            prices = pricing.current().entries().len(),
            budgets = budgets.current().rules.len(),
            "requests priced; money budgets enforced"
        );
        Ok(Some(Arc::new(Spending::new(
            Arc::new(pricing),
            Arc::new(budgets),
            store,
        ))))
    }
}

/// Checks the price table and budgets files every `interval` and swaps in each that
/// changed and is valid; an invalid file is logged and the previous one stays.
pub(crate) fn spawn_reload(spending: Arc<Spending>, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            log_reload("pricing", spending.pricing().reload_if_changed());
            log_reload("budgets", spending.budgets().reload_if_changed());
        }
    });
}

fn log_reload(what: &str, outcome: Option<aigw_core::Result<usize>>) {
    match outcome {
        Some(Ok(n)) => tracing::info!(file = what, entries = n, "reloaded"),
        Some(Err(e)) => {
            tracing::error!(file = what, error = %e, "not reloaded; the previous one stays in force")
        }
        None => {}
    }
}
