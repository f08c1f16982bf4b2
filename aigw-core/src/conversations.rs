//! A shared tier under the Responses API conversation store, so `previous_response_id`
//! and stored-response reads work across gateway replicas.
//!
//! The store itself (`aigw_providers::responses::store`) is in-process and synchronous,
//! as translators need it; a [`ConversationMirror`] beneath it receives every stored
//! conversation and deletion (written off the request path) and is asked for an id
//! the process does not hold before a request that needs it. [`RedisConversations`]
//! (feature `redis`) is the one shipped: one key per response, `SET … EX` with the
//! store's TTL, so entries are bounded in size by the store's limit and in time by the
//! TTL.

use async_trait::async_trait;
use std::time::Duration;

/// A second tier for stored conversations, shared between processes.
#[async_trait]
pub trait ConversationMirror: Send + Sync + std::fmt::Debug + 'static {
    /// Stores the serialised conversation `entry` under the response `id` for `ttl`.
    /// Called on the request path: must not block (spawn the write).
    fn put(&self, id: &str, entry: Vec<u8>, ttl: Duration);

    /// Deletes the conversation under `id`. Must not block.
    fn delete(&self, id: &str);

    /// The serialised conversation under `id`, if held (and reachable in time).
    async fn get(&self, id: &str) -> Option<Vec<u8>>;
}

#[cfg(feature = "redis")]
pub use self::redis_mirror::RedisConversations;

#[cfg(feature = "redis")]
mod redis_mirror {
    use super::ConversationMirror;
    use crate::{Result, Secret};
    use async_trait::async_trait;
    use redis::aio::ConnectionManager;
    use std::time::Duration;

    /// Key prefix of stored conversations.
    const PREFIX: &str = "aigw_resp_";

    /// Stored conversations in Redis.
    pub struct RedisConversations {
        conn: ConnectionManager,
        timeout: Duration,
        display: String,
    }

    impl std::fmt::Debug for RedisConversations {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisConversations")
                .field("url", &self.display)
                .finish_non_exhaustive()
        }
    }

    impl RedisConversations {
        /// Conversations on the server at `url` (as for the rate-limit store), each read
        /// bounded by `timeout`; connects lazily. Must be called inside a Tokio runtime.
        pub fn new(url: &Secret, timeout: Duration) -> Result<Self> {
            let (conn, display) = crate::limits::redis::connect(url, timeout)?;
            Ok(Self {
                conn,
                timeout,
                display,
            })
        }

        fn spawn(&self, what: &'static str, cmd: redis::Cmd) {
            let Ok(handle) = tokio::runtime::Handle::try_current() else {
                tracing::warn!("conversation {what} not mirrored: no runtime to reach Redis from");
                return;
            };
            let mut conn = self.conn.clone();
            let bound = self.timeout.saturating_mul(10);
            let url = self.display.clone();
            handle.spawn(async move {
                let error = match tokio::time::timeout(bound, cmd.query_async::<()>(&mut conn)).await {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {bound:?}"),
                };
                tracing::warn!(redis = %url, error = %error, "conversation {what} not mirrored to Redis");
            });
        }
    }

    #[async_trait]
    impl ConversationMirror for RedisConversations {
        fn put(&self, id: &str, entry: Vec<u8>, ttl: Duration) {
            let mut cmd = redis::cmd("SET");
            cmd.arg(format!("{PREFIX}{id}"))
                .arg(entry)
                .arg("EX")
                .arg(ttl.as_secs().max(1));
            self.spawn("write", cmd);
        }

        fn delete(&self, id: &str) {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(format!("{PREFIX}{id}"));
            self.spawn("delete", cmd);
        }

        async fn get(&self, id: &str) -> Option<Vec<u8>> {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("GET");
            cmd.arg(format!("{PREFIX}{id}"));
            match tokio::time::timeout(self.timeout, cmd.query_async::<Option<Vec<u8>>>(&mut conn))
                .await
            {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    tracing::warn!(redis = %self.display, error = %e, "stored conversation not read from Redis");
                    None
                }
                Err(_) => {
                    tracing::warn!(redis = %self.display, "stored conversation not read from Redis in time");
                    None
                }
            }
        }
    }
}
