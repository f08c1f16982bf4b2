//! Small helpers over Envoy's xDS types shared by the extension server's passes
//! (listener filter chains, their HTTP connection managers, typed HTTP filters).

use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener, filter};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_filter,
};
use envoy_types::pb::google::protobuf::Duration;
use prost::{Message, Name};

use super::to_any;
use crate::{Error, Result};

/// The dynamic-metadata namespace the ExtProc writes into (upstream's
/// `AIGatewayFilterMetadataNamespace`).
pub const FILTER_METADATA_NAMESPACE: &str = "io.envoy.ai_gateway";

pub(crate) const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";

pub(crate) fn is_internal_listener(name: &str) -> bool {
    name.starts_with("envoy-gateway-proxy-stats-") || name.starts_with("envoy-gateway-proxy-ready-")
}

/// The listener's HTTP connection managers, decoded, with where each sits.
pub(crate) fn hcms(listener: &Listener) -> Result<Vec<(usize, usize, HttpConnectionManager)>> {
    let chains = listener
        .filter_chains
        .iter()
        .chain(listener.default_filter_chain.iter());
    let mut out = Vec::new();
    for (ci, chain) in chains.enumerate() {
        if let Some((fi, hcm)) = chain_hcm(chain)? {
            out.push((ci, fi, hcm));
        }
    }
    Ok(out)
}

fn chain_hcm(chain: &FilterChain) -> Result<Option<(usize, HttpConnectionManager)>> {
    for (i, f) in chain.filters.iter().enumerate() {
        if f.name != HCM_FILTER {
            continue;
        }
        if let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type {
            let hcm = HttpConnectionManager::decode(any.value.as_slice())
                .map_err(|e| Error::Render(format!("HttpConnectionManager: {e}")))?;
            return Ok(Some((i, hcm)));
        }
    }
    Ok(None)
}

pub(crate) fn set_chain_hcm(
    listener: &mut Listener,
    chain: usize,
    filter: usize,
    hcm: &HttpConnectionManager,
) {
    let n = listener.filter_chains.len();
    let chain = if chain < n {
        listener.filter_chains.get_mut(chain)
    } else {
        listener.default_filter_chain.as_mut()
    };
    if let Some(f) = chain.and_then(|c| c.filters.get_mut(filter)) {
        f.config_type = Some(filter::ConfigType::TypedConfig(to_any(hcm)));
    }
}

pub(crate) fn http_filter<M: Message + Name>(name: &str, config: &M, disabled: bool) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(to_any(config))),
        disabled,
        ..Default::default()
    }
}

pub(crate) fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}
