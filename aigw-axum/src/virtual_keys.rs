//! Virtual keys in the axum adapter: opening the store `aigw run` uses, and charging
//! each finished request's tokens to its key's tokens-per-minute window.
//!
//! Authentication itself is [`crate::client_auth::ClientAuthLayer`]'s (install the
//! registry with [`crate::client_auth::ClientAuthLayer::set_virtual_keys`]); the model
//! and route allow-lists are checked by the gateway once the route is known.

use crate::record::RecordSink;
use aigw_core::exchange::ExchangeRecord;
use aigw_core::identity::IdentityKind;
use aigw_core::keys::{FileKeyStore, KeyRegistry, KeyStore};
use std::path::PathBuf;
use std::sync::Arc;

/// Where `aigw run` keeps its keys.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// Redis (every replica pointed at the server shares the keys).
    #[cfg(feature = "redis")]
    Redis(aigw_core::Secret),
    /// A JSON file, written atomically.
    File(PathBuf),
}

/// Opens the store and loads a registry from it; per-key limits count in `counters`
/// when given (the shared Redis counters), else in process memory.
pub async fn open(
    choice: StoreChoice,
    counters: Option<Arc<dyn aigw_core::limits::LimitStore>>,
) -> Result<Arc<KeyRegistry>, aigw_core::Error> {
    let store: Arc<dyn KeyStore> = match choice {
        #[cfg(feature = "redis")]
        StoreChoice::Redis(url) => Arc::new(aigw_core::keys::RedisKeyStore::new(
            &url,
            std::time::Duration::from_millis(500),
        )?),
        StoreChoice::File(path) => Arc::new(FileKeyStore::new(path)),
    };
    let mut registry = KeyRegistry::open(store).await?;
    if let Some(c) = counters {
        registry = registry.with_counters(c);
    }
    let registry = Arc::new(registry);
    registry.spawn_watch(aigw_core::keys::registry::DEFAULT_POLL);
    Ok(registry)
}

/// Charges every finished virtual-key request's tokens to its key.
#[derive(Debug, Clone)]
pub struct KeyUsageSink(pub Arc<KeyRegistry>);

impl RecordSink for KeyUsageSink {
    fn record(&self, r: &ExchangeRecord) {
        let Some(identity) = r.identity.as_deref() else {
            return;
        };
        if identity.kind != IdentityKind::VirtualKey {
            return;
        }
        let tokens = r.usage.input.unwrap_or(0) + r.usage.output.unwrap_or(0);
        self.0.charge_tokens(&identity.id, tokens);
    }
}
