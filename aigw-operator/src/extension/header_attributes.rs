//! Request headers copied into filter metadata for access logs, as upstream's extension
//! server does (`internal/extensionserver/header_to_metadata.go`): a
//! `header_to_metadata` filter before the router of every Gateway listener, one rule per
//! `header:attribute` pair of `--log-request-header-attributes` (merged over
//! `--request-header-attributes`; `agent-session-id:session.id` when unset), written to
//! `io.envoy.ai_gateway` where access-log formats read it.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::filters::http::header_to_metadata::v3::{
    Config as HeaderToMetadata,
    config::{KeyValuePair, Rule},
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter;
use prost::Message;

use super::to_any;
use super::xds::{
    FILTER_METADATA_NAMESPACE, hcms, http_filter, is_internal_listener, set_chain_hcm,
};
use crate::{Error, Result};

/// The filter's name (upstream's: one per listener, shared with the MCP backend
/// listener's own rules).
pub const FILTER: &str = "envoy.filters.http.header_to_metadata";
/// Upstream's default access-log mapping.
pub const DEFAULT_LOG_MAPPING: &str = "agent-session-id:session.id";

/// Header → attribute, sorted (a stable listener keeps Envoy from draining it).
pub type Attributes = BTreeMap<String, String>;

/// Parses `header:attribute,…`; empty gives none.
pub fn parse(s: &str) -> Result<Attributes> {
    let mut out = Attributes::new();
    if s.is_empty() {
        return Ok(out);
    }
    for (i, pair) in s.split(',').map(str::trim).enumerate() {
        let (h, a) = pair
            .split_once(':')
            .map(|(h, a)| (h.trim(), a.trim()))
            .filter(|(h, a)| !h.is_empty() && !a.is_empty())
            .ok_or_else(|| {
                Error::Render(format!(
                    "header-attribute pair {} {pair:?}: expected header:attribute",
                    i + 1
                ))
            })?;
        out.insert(h.to_owned(), a.to_owned());
    }
    Ok(out)
}

/// Upstream's resolution: the shared mapping, overridden per header by the access-log
/// mapping (its default when unset).
pub fn resolve(base: Option<&str>, log: Option<&str>) -> Result<Attributes> {
    let mut out = parse(base.unwrap_or(""))?;
    out.extend(parse(log.unwrap_or(DEFAULT_LOG_MAPPING))?);
    Ok(out)
}

/// Adds the rules to every Gateway listener: merged into its header-to-metadata filter,
/// or in a new one before the router.
pub fn insert(listeners: &mut [Listener], attrs: &Attributes) -> Result<()> {
    if attrs.is_empty() {
        return Ok(());
    }
    for listener in listeners
        .iter_mut()
        .filter(|l| !is_internal_listener(&l.name))
    {
        for (ci, fi, mut hcm) in hcms(listener)? {
            match hcm.http_filters.iter().position(|f| f.name == FILTER) {
                Some(i) => {
                    let Some(http_filter::ConfigType::TypedConfig(any)) =
                        &hcm.http_filters[i].config_type
                    else {
                        return Err(Error::Render(format!(
                            "listener {}: {FILTER} has no typed_config",
                            listener.name
                        )));
                    };
                    let mut cfg = HeaderToMetadata::decode(any.value.as_slice())
                        .map_err(|e| Error::Render(format!("{FILTER}: {e}")))?;
                    if !merge(&mut cfg, attrs) {
                        continue;
                    }
                    hcm.http_filters[i].config_type =
                        Some(http_filter::ConfigType::TypedConfig(to_any(&cfg)));
                }
                None => {
                    let at = hcm
                        .http_filters
                        .iter()
                        .position(|f| f.name == "envoy.filters.http.router")
                        .ok_or_else(|| {
                            Error::Render(format!(
                                "listener {}: no router filter to put {FILTER} before",
                                listener.name
                            ))
                        })?;
                    let mut cfg = HeaderToMetadata::default();
                    merge(&mut cfg, attrs);
                    hcm.http_filters
                        .insert(at, http_filter(FILTER, &cfg, false));
                }
            }
            set_chain_hcm(listener, ci, fi, &hcm);
        }
    }
    Ok(())
}

/// Adds a rule per header the configuration does not map yet; whether it added any.
fn merge(cfg: &mut HeaderToMetadata, attrs: &Attributes) -> bool {
    let mut added = false;
    for (header, attr) in attrs {
        if cfg
            .request_rules
            .iter()
            .any(|r| r.header.eq_ignore_ascii_case(header))
        {
            continue;
        }
        cfg.request_rules.push(Rule {
            header: header.clone(),
            on_header_present: Some(KeyValuePair {
                metadata_namespace: FILTER_METADATA_NAMESPACE.into(),
                key: attr.clone(),
                ..Default::default()
            }),
            ..Default::default()
        });
        added = true;
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse_and_merge_as_upstream() {
        assert_eq!(
            resolve(None, None).unwrap(),
            Attributes::from([("agent-session-id".into(), "session.id".into())])
        );
        assert!(resolve(None, Some("")).unwrap().is_empty());
        assert_eq!(
            resolve(Some("x-tenant:tenant.id, agent-session-id:a"), None).unwrap(),
            Attributes::from([
                ("agent-session-id".into(), "session.id".into()),
                ("x-tenant".into(), "tenant.id".into()),
            ])
        );
        let e = parse("x-a:b,,x-c:d").unwrap_err().to_string();
        assert!(e.contains("pair 2"), "{e}");
        assert!(parse("x-a").is_err());
    }
}
