//! Virtual keys in Redis (features `keys` and `redis`), shared by every replica.
//!
//! One hash, `aigw:vkeys`, maps a key id to its stored JSON (salt and digest, never the
//! key); one counter, `aigw:vkeys:version`, is incremented in the same `MULTI` as
//! every change. Replicas poll the counter (one `GET` every 200 ms) and reload the hash
//! only when it moved.

use super::StoredKey;
use super::store::KeyStore;
use crate::limits::redis::connect;
use crate::{Error, Result, Secret};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::time::Duration;

const HASH: &str = "aigw:vkeys";
const VERSION: &str = "aigw:vkeys:version";

/// Keys in Redis.
pub struct RedisKeyStore {
    conn: ConnectionManager,
    display: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyStore")
            .field("redis", &self.display)
            .finish_non_exhaustive()
    }
}

impl RedisKeyStore {
    /// A store on the server at `url`, each call bounded by `timeout`.
    pub fn new(url: &Secret, timeout: Duration) -> Result<Self> {
        let (conn, display) = connect(url, timeout)?;
        Ok(Self {
            conn,
            display,
            timeout,
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Pipeline) -> Result<T> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::internal(format!(
                "key store {}: {}",
                self.display,
                e.category()
            ))),
            Err(_) => Err(Error::internal(format!(
                "key store {}: no answer within {:?}",
                self.display, self.timeout
            ))),
        }
    }
}

#[async_trait]
impl KeyStore for RedisKeyStore {
    async fn load(&self) -> Result<Vec<StoredKey>> {
        let mut pipe = redis::pipe();
        pipe.cmd("HVALS").arg(HASH);
        let (values,): (Vec<String>,) = self.query(&pipe).await?;
        values
            .iter()
            .map(|v| {
                serde_json::from_str(v)
                    .map_err(|e| Error::internal(format!("key store {}: {e}", self.display)))
            })
            .collect()
    }

    async fn save(&self, key: &StoredKey) -> Result<()> {
        let json =
            serde_json::to_string(key).map_err(|e| Error::internal(format!("key store: {e}")))?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(HASH)
            .arg(&key.info.id)
            .arg(json)
            .ignore()
            .cmd("INCR")
            .arg(VERSION)
            .ignore();
        self.query::<()>(&pipe).await
    }

    async fn version(&self) -> Result<u64> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(VERSION);
        let (v,): (Option<u64>,) = self.query(&pipe).await?;
        Ok(v.unwrap_or(0))
    }

    fn describe(&self) -> String {
        format!("redis {}", self.display)
    }
}
