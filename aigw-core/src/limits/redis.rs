//! Rate-limit counters in Redis, shared by every gateway instance that points at the
//! same server: the [`RedisStore`] behind `Global` BackendTrafficPolicy rate limits.
//!
//! The meter's calls are Lua scripts (`RESERVE`, `ADJUST`) that read the window
//! from the server's `TIME`, so replicas whose clocks disagree still count in the same
//! window: a request costs one `EVALSHA` however many rules match, and a settlement
//! one more, off the request path. Plain increments ([`LimitStore::incr`], used by
//! virtual keys) are an `INCRBY` of the bucket key followed by an `EXPIRE` at the end
//! of its window, pipelined; `INCRBY` is atomic, so instances never lose each other's
//! counts. Keys follow [`crate::limits::key`] (`aigw_<policy>_<rule>_<route>
//! [_<descriptor>…]_<window start>`), in the manner of envoyproxy/ratelimit.
//!
//! The scripts build their keys from the window, so they touch keys they were not
//! given in `KEYS`: a Redis Cluster, which routes a script by its declared keys, is not
//! supported (a single server, or the primary of a replicated one, is).
//!
//! A call that errors or takes longer than the timeout (50 ms by default) reports an
//! error, and the meter applies the limit's failure mode (open by default). After a failure
//! the store does not try Redis again for a short pause, so a dead server costs
//! requests nothing while the connection manager reconnects in the background.

use crate::limits::{Adjustment, Admission, Hold, Increment, LimitStore, Reserved};
use crate::{Error, Result, Secret};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default bound on one Redis round trip.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// How long Redis is left alone after a failed call.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How long the settle path stays quiet in the logs after reporting a failure.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// `INCRBY` + `EXPIRE` (at the end of the window) per increment, in one pipeline;
/// with `counts`, the reply is the `INCRBY` results in order.
fn pipeline(now: u64, increments: &[Increment], counts: bool) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for i in increments {
        let ttl = i.expires_at.saturating_sub(now).max(1);
        let incr = pipe.cmd("INCRBY").arg(&i.key).arg(i.cost);
        if !counts {
            incr.ignore();
        }
        pipe.cmd("EXPIRE").arg(&i.key).arg(ttl).ignore();
    }
    pipe
}

/// Holds amounts in several buckets, all or none, in one atomic step, each bucket's
/// window taken from the server's `TIME` (so replicas with skewed clocks agree).
/// KEYS: bucket bases. ARGV[1]: `all`, `any` or `always` (add whatever the counts: the
/// upstream-compatible mode, which decides from the counts afterwards); then per
/// bucket: window, limit, amount, enforce (1/0). Reply: admitted (1/0), the server's
/// time, each bucket's count.
const RESERVE: &str = r"
local now = tonumber(redis.call('TIME')[1])
local mode = ARGV[1]
local keys, counts, ttls, amounts = {}, {}, {}, {}
local all_fit, any_fit, enforcing = true, false, 0
for i = 1, #KEYS do
  local o = 2 + (i - 1) * 4
  local w, limit, amount = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  local start = now - now % w
  keys[i] = KEYS[i] .. '_' .. start
  ttls[i] = start + w - now
  amounts[i] = amount
  if mode == 'always' then
    if amount > 0 then
      counts[i] = redis.call('INCRBY', keys[i], amount)
      redis.call('EXPIRE', keys[i], math.max(ttls[i], 1))
    else
      counts[i] = tonumber(redis.call('GET', keys[i]) or '0')
    end
  else
    local c = tonumber(redis.call('GET', keys[i]) or '0')
    counts[i] = c
    if ARGV[o + 3] == '1' then
      enforcing = enforcing + 1
      local fits
      if amount == 0 then fits = c < limit else fits = c + amount <= limit end
      if fits then any_fit = true else all_fit = false end
    end
  end
end
local admitted = all_fit
if mode == 'any' then admitted = any_fit or enforcing == 0 end
if mode == 'always' then
  admitted = true
elseif admitted then
  for i = 1, #KEYS do
    if amounts[i] > 0 then
      counts[i] = redis.call('INCRBY', keys[i], amounts[i])
      redis.call('EXPIRE', keys[i], math.max(ttls[i], 1))
    end
  end
end
local out = {admitted and 1 or 0, now}
for i = 1, #KEYS do out[#out + 1] = counts[i] end
return out
";

/// Corrects earlier holds by the server's `TIME`: a delta goes to the hold's window
/// while it lasts; after it, an overrun goes to the current window and a refund is
/// dropped; no bucket goes below zero. KEYS: bucket bases. ARGV per bucket: window,
/// the hold's window start (-1: nothing was held), delta.
const ADJUST: &str = r"
local now = tonumber(redis.call('TIME')[1])
for i = 1, #KEYS do
  local o = 1 + (i - 1) * 3
  local w, start, delta = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  local current = now - now % w
  if start ~= current and delta > 0 then start = current end
  if start == current then
    local k = KEYS[i] .. '_' .. start
    local v = redis.call('INCRBY', k, delta)
    if v < 0 then redis.call('SET', k, 0, 'KEEPTTL') end
    redis.call('EXPIRE', k, math.max(start + w - now, 1))
  end
end
return 0
";

/// `redis://user:password@host:port/db` with the user information replaced, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redis url>".into();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// A lazily connecting, self-reconnecting connection to the server at `url`, each call
/// bounded by `timeout`, and the URL with any password hidden. Shared by the rate-limit
/// counters and the conversation store ([`crate::conversations`]).
pub fn connect(url: &Secret, timeout: Duration) -> Result<(ConnectionManager, String)> {
    let display = redact_url(url.expose());
    let client = redis::Client::open(url.expose()).map_err(|e| Error::InvalidConfig {
        issues: vec![crate::error::ConfigIssue {
            file: String::new(),
            line: None,
            document: "--redis-url".into(),
            field: String::new(),
            message: format!("{display} is not a usable Redis URL: {}", e.category()),
        }],
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_millis(250))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let conn = ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| Error::internal(format!("redis {display}: {}", e.category())))?;
    Ok((conn, display))
}

/// Counters in Redis.
pub struct RedisStore {
    reserve: redis::Script,
    adjust: Arc<redis::Script>,
    conn: ConnectionManager,
    timeout: Duration,
    display: String,
    epoch: Instant,
    /// Milliseconds since `epoch` before which Redis is not tried.
    paused_until: AtomicU64,
    /// Milliseconds since `epoch` of the last logged settle failure.
    last_log: AtomicU64,
    failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.display)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url` (`redis://[user:password@]host:port[/db]` or
    /// `redis+unix:///path`; TLS is not built in). Each call is bounded by `timeout`.
    /// Connects lazily, so the gateway starts while Redis is down; must be called
    /// inside a Tokio runtime.
    pub fn new(url: &Secret, timeout: Duration) -> Result<Self> {
        let (conn, display) = connect(url, timeout)?;
        Ok(Self {
            reserve: redis::Script::new(RESERVE),
            adjust: Arc::new(redis::Script::new(ADJUST)),
            conn,
            timeout,
            display,
            epoch: Instant::now(),
            paused_until: AtomicU64::new(0),
            last_log: AtomicU64::new(0),
            failures: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The server, with any password hidden.
    pub fn display_url(&self) -> &str {
        &self.display
    }

    /// Calls that failed or timed out so far (request and settle paths).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn run(&self, now: u64, increments: &[Increment]) -> Result<Vec<u64>> {
        self.check_paused()?;
        let pipe = pipeline(now, increments, true);
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(self.timeout, pipe.query_async::<Vec<u64>>(&mut conn))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))
            .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(counts) if counts.len() == increments.len() => Ok(counts),
            Ok(counts) => Err(self.failed(format!(
                "{} counts for {} increments",
                counts.len(),
                increments.len()
            ))),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn check_paused(&self) -> Result<()> {
        if self.millis() < self.paused_until.load(Ordering::Relaxed) {
            return Err(Error::UpstreamUnavailable {
                message: format!("redis {} failed recently", self.display),
            });
        }
        Ok(())
    }

    async fn run_reserve(&self, holds: &[Hold], admission: Admission) -> Result<Reserved> {
        self.check_paused()?;
        let mut call = self.reserve.prepare_invoke();
        call.arg(match admission {
            Admission::All => "all",
            Admission::Any => "any",
            Admission::Always => "always",
        });
        for h in holds {
            call.key(&h.bucket)
                .arg(h.window.max(1))
                .arg(h.limit)
                .arg(h.amount)
                .arg(u8::from(h.enforce));
        }
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(self.timeout, call.invoke_async::<Vec<u64>>(&mut conn))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))
            .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(v) if v.len() == holds.len() + 2 => Ok(Reserved {
                admitted: v.first() == Some(&1),
                now: v.get(1).copied().unwrap_or(0),
                counts: v.get(2..).map(<[u64]>::to_vec).unwrap_or_default(),
            }),
            Ok(v) => Err(self.failed(format!("{} values for {} holds", v.len(), holds.len()))),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, message: String) -> Error {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let until = self.millis() + u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(0);
        self.paused_until.store(until, Ordering::Relaxed);
        Error::UpstreamUnavailable {
            message: format!("redis {}: {message}", self.display),
        }
    }
}

#[async_trait]
impl LimitStore for RedisStore {
    async fn incr(&self, now: u64, increments: &[Increment]) -> Result<Vec<u64>> {
        self.run(now, increments).await
    }

    fn add(&self, now: u64, increments: Vec<Increment>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("rate-limit charge dropped: no runtime to reach Redis from");
            return;
        };
        let mut conn = self.conn.clone();
        // Charges are off the request path: allow the connection manager a reconnect
        // before giving up.
        let bound = self.timeout.saturating_mul(10);
        let pipe = pipeline(now, &increments, false);
        let url = self.display.clone();
        let log = self.should_log();
        let failures = self.failures.clone();
        handle.spawn(async move {
            let error = match tokio::time::timeout(bound, pipe.query_async::<()>(&mut conn)).await
            {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {bound:?}"),
            };
            failures.fetch_add(1, Ordering::Relaxed);
            if log {
                tracing::warn!(redis = %url, error = %error, "rate-limit charges not recorded (Redis unavailable)");
            }
        });
    }

    async fn reserve(&self, _now: u64, holds: &[Hold], admission: Admission) -> Result<Reserved> {
        self.run_reserve(holds, admission).await
    }

    fn adjust(&self, _now: u64, adjustments: Vec<Adjustment>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("rate-limit settlement dropped: no runtime to reach Redis from");
            return;
        };
        let script = self.adjust.clone();
        let mut conn = self.conn.clone();
        let bound = self.timeout.saturating_mul(10);
        let url = self.display.clone();
        let log = self.should_log();
        let failures = self.failures.clone();
        handle.spawn(async move {
            let mut call = script.prepare_invoke();
            for a in &adjustments {
                call.key(&a.bucket)
                    .arg(a.window.max(1))
                    .arg(a.start.map_or(-1, |s| i64::try_from(s).unwrap_or(-1)))
                    .arg(a.delta);
            }
            let error =
                match tokio::time::timeout(bound, call.invoke_async::<i64>(&mut conn)).await {
                    Ok(Ok(_)) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {bound:?}"),
                };
            failures.fetch_add(1, Ordering::Relaxed);
            if log {
                tracing::warn!(redis = %url, error = %error, "rate-limit settlements not recorded (Redis unavailable)");
            }
        });
    }
}

impl RedisStore {
    fn should_log(&self) -> bool {
        let now = self.millis();
        let last = self.last_log.load(Ordering::Relaxed);
        let interval = u64::try_from(LOG_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        (last == 0 || now.saturating_sub(last) >= interval)
            && self
                .last_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_display_form() {
        assert_eq!(
            redact_url("redis://user:hunter2@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(
            redact_url("redis://:p%40ss@10.0.0.1"),
            "redis://***@10.0.0.1"
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact_url("garbage"), "<redis url>");
    }

    #[tokio::test]
    async fn a_dead_server_fails_fast_and_then_pauses() {
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let store = RedisStore::new(
            &Secret::new(format!("redis://:secret@{addr}")),
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        assert!(!format!("{store:?}").contains("secret"));
        let inc = [Increment {
            key: "k_0".into(),
            cost: 1,
            expires_at: 60,
        }];
        let started = Instant::now();
        let e = store.incr(0, &inc).await.unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let second = Instant::now();
        assert!(store.incr(0, &inc).await.is_err());
        // The second call does not even try.
        assert!(second.elapsed() < Duration::from_millis(5));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(store.failures(), 1);
    }
}
