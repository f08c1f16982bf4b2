//! Spend and usage counters in Redis, shared by every replica pointing at the server.
//!
//! A budget counter is one integer key per budget and period,
//! `aigw:budget:<scope>:<subject>:<period>:<period start>_0`, in micro-dollars, expiring
//! an hour after its period ends: a bucket of the rate limits' [`RedisStore`], so a
//! request's estimated cost is held in all its budgets by one Lua script and the
//! difference settled by another ([`crate::limits::Held`]). A usage bucket is one hash
//! per hour, `aigw:usage:<hour start>`, with fields `<counter>|<row>` (counter `req`,
//! `in`, `out` or `usd`; row a JSON array `[key, team, model, route]`), expiring after
//! the retention; a request's row is one Lua script (`EVAL`), so no replica ever sees
//! half of it.

use super::store::{Charge, HourRow, SpendStore, UsageCounts, UsageKey};
use crate::limits::{LimitStore, RedisStore};
use crate::{Error, Result, Secret};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// Adds one request's usage: `HINCRBY` of its row's four counters, `EXPIREAT` of the
/// hour's hash.
const CHARGE: &str = r"
local u = KEYS[1]
redis.call('HINCRBY', u, 'req|' .. ARGV[2], ARGV[3])
redis.call('HINCRBY', u, 'in|' .. ARGV[2], ARGV[4])
redis.call('HINCRBY', u, 'out|' .. ARGV[2], ARGV[5])
redis.call('HINCRBY', u, 'usd|' .. ARGV[2], ARGV[6])
redis.call('EXPIREAT', u, ARGV[1])
return 1
";

/// The usage hash of an hour.
fn usage_key(hour: u64) -> String {
    format!("aigw:usage:{hour}")
}

/// Spend counters in Redis.
pub struct RedisSpendStore {
    budgets: RedisStore,
    fast: ConnectionManager,
    slow: ConnectionManager,
    display: String,
    retention: u64,
}

impl std::fmt::Debug for RedisSpendStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSpendStore")
            .field("url", &self.display)
            .finish_non_exhaustive()
    }
}

impl RedisSpendStore {
    /// A store for the server at `url`; budget reservations and charges are bounded by
    /// `timeout`, usage queries by ten times as long. Connects lazily; must be called
    /// inside a Tokio runtime.
    pub fn new(url: &Secret, timeout: Duration) -> Result<Self> {
        let (fast, display) = crate::limits::redis::connect(url, timeout)?;
        let (slow, _) = crate::limits::redis::connect(url, timeout * 10)?;
        Ok(Self {
            budgets: RedisStore::new(url, timeout)?,
            fast,
            slow,
            display,
            retention: super::store::DEFAULT_USAGE_RETENTION_HOURS * super::HOUR,
        })
    }

    /// The server, with any password hidden.
    pub fn display_url(&self) -> &str {
        &self.display
    }

    fn failed(&self, what: &str, e: &redis::RedisError) -> Error {
        Error::UpstreamUnavailable {
            message: format!("spend store {} {what}: {}", self.display, e.category()),
        }
    }
}

#[async_trait]
impl SpendStore for RedisSpendStore {
    fn budgets(&self) -> &dyn LimitStore {
        &self.budgets
    }

    fn charge(&self, charge: Charge) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("spend not recorded: no async runtime");
            return;
        };
        // EVAL rather than EVALSHA: the script is small and a restarted server never
        // answers NOSCRIPT.
        let mut inv = redis::cmd("EVAL");
        inv.arg(CHARGE).arg(1).arg(usage_key(charge.hour));
        let row = serde_json::json!([
            charge.row.key,
            charge.row.team,
            charge.row.model,
            charge.row.route
        ])
        .to_string();
        let c = charge.counts;
        inv.arg(charge.hour + self.retention)
            .arg(row)
            .arg(c.requests)
            .arg(c.input_tokens)
            .arg(c.output_tokens)
            .arg(c.cost_micros);
        let mut conn = self.fast.clone();
        let url = self.display.clone();
        handle.spawn(async move {
            let r: redis::RedisResult<i64> = inv.query_async(&mut conn).await;
            if let Err(e) = r {
                tracing::warn!(
                    redis = %url,
                    micros = charge.counts.cost_micros,
                    error = %e.category(),
                    "spend not recorded in the spend store"
                );
            }
        });
    }

    async fn usage(&self, from_hour: u64, to_hour: u64) -> Result<Vec<HourRow>> {
        let hours: Vec<u64> = (from_hour..to_hour).step_by(super::HOUR as usize).collect();
        if hours.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for h in &hours {
            pipe.cmd("HGETALL").arg(usage_key(*h));
        }
        let mut conn = self.slow.clone();
        let maps: Vec<Vec<(String, u64)>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.failed("HGETALL", &e))?;
        let mut out = Vec::new();
        for (hour, fields) in hours.into_iter().zip(maps) {
            let mut rows: std::collections::HashMap<UsageKey, UsageCounts> =
                std::collections::HashMap::new();
            for (field, n) in fields {
                let Some((counter, row)) = field.split_once('|') else {
                    continue;
                };
                let Ok([key, team, model, route]) = serde_json::from_str::<[String; 4]>(row) else {
                    continue;
                };
                let c = rows
                    .entry(UsageKey {
                        key,
                        team,
                        model,
                        route,
                    })
                    .or_default();
                match counter {
                    "req" => c.requests += n,
                    "in" => c.input_tokens += n,
                    "out" => c.output_tokens += n,
                    "usd" => c.cost_micros += n,
                    _ => {}
                }
            }
            out.extend(rows.into_iter().map(|(k, c)| (hour, k, c)));
        }
        Ok(out)
    }
}
