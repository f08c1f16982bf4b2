//! Requests by client: `aigw_client_requests_total{client, kind, team, code}`.
//!
//! Client ids and teams are unbounded in principle (every key a team creates is a new
//! id), so each label keeps at most [`MAX_VALUES`] distinct values, as the header
//! attributes of the GenAI metrics do; further values are counted under `_OTHER`.

use crate::record::RecordSink;
use aigw_core::exchange::ExchangeRecord;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Mutex;

/// Distinct values kept per label.
pub const MAX_VALUES: usize = 500;
const OVERFLOW: &str = "_OTHER";

type Series = (String, &'static str, String, &'static str);

#[derive(Debug, Default)]
struct Inner {
    counts: BTreeMap<Series, u64>,
    clients: HashSet<String>,
    teams: HashSet<String>,
}

fn bounded(seen: &mut HashSet<String>, value: &str) -> String {
    if seen.contains(value) || (seen.len() < MAX_VALUES && seen.insert(value.to_owned())) {
        value.to_owned()
    } else {
        OVERFLOW.to_owned()
    }
}

/// The per-client request counters.
#[derive(Debug, Default)]
pub struct ClientMetrics(Mutex<Inner>);

impl ClientMetrics {
    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let Ok(g) = self.0.lock() else { return };
        out.push_str("# HELP aigw_client_requests_total Requests finished, by authenticated client (id, kind, team) and status class.\n# TYPE aigw_client_requests_total counter\n");
        for ((client, kind, team, code), n) in &g.counts {
            let _ = writeln!(
                out,
                "aigw_client_requests_total{{client=\"{}\",kind=\"{kind}\",team=\"{}\",code=\"{code}\"}} {n}",
                escape(client),
                escape(team)
            );
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl RecordSink for ClientMetrics {
    fn record(&self, r: &ExchangeRecord) {
        let Some(identity) = r.identity.as_deref() else {
            return;
        };
        let code = match r.status.map_or(0, |s| s.as_u16()) {
            200..=299 => "2xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "other",
        };
        let Ok(mut g) = self.0.lock() else { return };
        let client = bounded(&mut g.clients, &identity.id);
        let team = bounded(&mut g.teams, identity.team.as_deref().unwrap_or(""));
        *g.counts
            .entry((client, identity.kind.as_str(), team, code))
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::identity::{ClientIdentity, IdentityKind};
    use std::sync::Arc;

    #[test]
    fn client_labels_are_bounded() {
        let m = ClientMetrics::default();
        for i in 0..MAX_VALUES + 10 {
            let r = ExchangeRecord {
                identity: Some(Arc::new(ClientIdentity::new(
                    format!("k{i}"),
                    IdentityKind::VirtualKey,
                ))),
                status: Some(http::StatusCode::OK),
                ..ExchangeRecord::default()
            };
            m.record(&r);
        }
        let mut out = String::new();
        m.render(&mut out);
        assert_eq!(
            out.lines().filter(|l| l.starts_with("aigw_client")).count(),
            MAX_VALUES + 1
        );
        assert!(out.contains("client=\"_OTHER\",kind=\"virtual_key\",team=\"\",code=\"2xx\"} 10"));
    }
}
