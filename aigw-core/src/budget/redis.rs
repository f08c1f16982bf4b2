//! Spend and usage counters in Redis, shared by every replica pointing at the server.
//!
//! A budget counter is one integer key per budget and period,
//! `aigw:budget:<scope>:<subject>:<period>:<period start>`, in micro-dollars, expiring
//! an hour after its period ends. A usage bucket is one hash per hour,
//! `aigw:usage:<hour start>`, with fields `<counter>|<row>` (counter `req`, `in`, `out`
//! or `usd`; row a JSON array `[key, team, model, route]`), expiring after the
//! retention. A request's charge is one Lua script (`EVAL`), so its budget counters and usage
//! row move together and no replica ever sees half of it.

use super::store::{Charge, HourRow, SpendStore, UsageCounts, UsageKey};
use crate::{Error, Result, Secret};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// Adds one request's charge: `INCRBY` + `EXPIREAT` per budget counter, `HINCRBY` of
/// its usage row's four counters, `EXPIREAT` of the hour's hash.
const CHARGE: &str = r"
local micros = ARGV[1]
local n = tonumber(ARGV[2])
for i = 1, n do
  redis.call('INCRBY', KEYS[i], micros)
  local exp = tonumber(ARGV[2 + i])
  if exp > 0 then redis.call('EXPIREAT', KEYS[i], exp) end
end
local b = 2 + n
local u = KEYS[n + 1]
redis.call('HINCRBY', u, 'req|' .. ARGV[b + 2], ARGV[b + 3])
redis.call('HINCRBY', u, 'in|' .. ARGV[b + 2], ARGV[b + 4])
redis.call('HINCRBY', u, 'out|' .. ARGV[b + 2], ARGV[b + 5])
redis.call('HINCRBY', u, 'usd|' .. ARGV[b + 2], ARGV[b + 6])
redis.call('EXPIREAT', u, ARGV[b + 1])
return 1
";

/// The usage hash of an hour.
fn usage_key(hour: u64) -> String {
    format!("aigw:usage:{hour}")
}

/// Spend counters in Redis.
pub struct RedisSpendStore {
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
    /// A store for the server at `url`; budget checks and charges are bounded by
    /// `timeout`, usage queries by ten times as long. Connects lazily; must be called
    /// inside a Tokio runtime.
    pub fn new(url: &Secret, timeout: Duration) -> Result<Self> {
        let (fast, display) = crate::limits::redis::connect(url, timeout)?;
        let (slow, _) = crate::limits::redis::connect(url, timeout * 10)?;
        Ok(Self {
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
    async fn spent(&self, keys: &[String]) -> Result<Vec<u64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.fast.clone();
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.failed("MGET", &e))?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn charge(&self, charge: Charge) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("spend not recorded: no async runtime");
            return;
        };
        // EVAL rather than EVALSHA: the script is small and a restarted server never
        // answers NOSCRIPT.
        let mut inv = redis::cmd("EVAL");
        inv.arg(CHARGE).arg(charge.budgets.len() + 1);
        for (key, _) in &charge.budgets {
            inv.arg(key);
        }
        inv.arg(usage_key(charge.hour));
        inv.arg(charge.micros).arg(charge.budgets.len());
        for (_, end) in &charge.budgets {
            inv.arg(end.map_or(0, |e| e + super::HOUR));
        }
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
                    micros = charge.micros,
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
