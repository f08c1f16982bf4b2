//! Spend and usage counters in Prometheus, per key, team, model and route.
//!
//! Every label keeps at most [`MAX_VALUES_PER_LABEL`] distinct values; further values
//! are reported as [`OVERFLOW_VALUE`] (as the request-header attributes of
//! [`crate::telemetry`] are), so a gateway handing out thousands of keys keeps a
//! bounded number of series. The exact figures per key stay in the usage store.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Mutex;

/// Distinct values kept per label.
pub const MAX_VALUES_PER_LABEL: usize = 100;
/// What a label value beyond the bound is reported as.
pub const OVERFLOW_VALUE: &str = "_OTHER";

type Labels = Vec<(&'static str, String)>;

/// The spend and budget counters.
#[derive(Debug)]
pub struct SpendMetrics {
    registry: Registry,
    /// Micro-dollars per label set, rendered as exact decimals (a float counter
    /// would print sums like `0.42200000000000006`).
    spend: Mutex<BTreeMap<Labels, u64>>,
    requests: Family<Labels, Counter>,
    tokens: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    cutoffs: Family<Labels, Counter>,
    unpriced: Family<Labels, Counter>,
    store_errors: Counter,
    seen: Mutex<HashMap<&'static str, HashSet<String>>>,
}

impl Default for SpendMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let tokens = Family::default();
        let refusals = Family::default();
        let cutoffs = Family::default();
        let unpriced = Family::default();
        let store_errors = Counter::default();
        registry.register(
            "aigw_usage_requests",
            "Requests finished, by key, team, model and route",
            requests.clone(),
        );
        registry.register(
            "aigw_usage_tokens",
            "Tokens used, by key, team, model, route and type (input, output)",
            tokens.clone(),
        );
        registry.register(
            "aigw_budget_refusals",
            "Requests refused because a money budget was exhausted, by budget",
            refusals.clone(),
        );
        registry.register(
            "aigw_budget_cutoffs",
            "Streams ended mid-way because a money budget ran out, by budget",
            cutoffs.clone(),
        );
        registry.register(
            "aigw_unpriced_requests",
            "Requests whose model has no entry in the price table, by model",
            unpriced.clone(),
        );
        registry.register(
            "aigw_spend_store_errors",
            "Budget checks the spend store failed to answer (the request was let through)",
            store_errors.clone(),
        );
        Self {
            registry,
            spend: Mutex::default(),
            requests,
            tokens,
            refusals,
            cutoffs,
            unpriced,
            store_errors,
            seen: Mutex::default(),
        }
    }
}

impl SpendMetrics {
    /// `value`, or [`OVERFLOW_VALUE`] once `label` has [`MAX_VALUES_PER_LABEL`] others.
    fn bounded(&self, label: &'static str, value: &str) -> String {
        let Ok(mut seen) = self.seen.lock() else {
            return OVERFLOW_VALUE.to_owned();
        };
        let values = seen.entry(label).or_default();
        if values.contains(value)
            || (values.len() < MAX_VALUES_PER_LABEL && values.insert(value.to_owned()))
        {
            value.to_owned()
        } else {
            OVERFLOW_VALUE.to_owned()
        }
    }

    fn row_labels(&self, row: &super::UsageKey) -> Labels {
        vec![
            ("key", self.bounded("key", &row.key)),
            ("team", self.bounded("team", &row.team)),
            ("model", self.bounded("model", &row.model)),
            ("route", self.bounded("route", &row.route)),
        ]
    }

    /// Counts a finished request.
    pub fn record(&self, row: &super::UsageKey, counts: &super::UsageCounts) {
        let labels = self.row_labels(row);
        if let Ok(mut spend) = self.spend.lock() {
            *spend.entry(labels.clone()).or_default() += counts.cost_micros;
        }
        self.requests.get_or_create(&labels).inc_by(counts.requests);
        for (kind, n) in [
            ("input", counts.input_tokens),
            ("output", counts.output_tokens),
        ] {
            let mut l = labels.clone();
            l.push(("type", kind.to_owned()));
            self.tokens.get_or_create(&l).inc_by(n);
        }
    }

    /// Counts a refusal by `budget`.
    pub fn refused(&self, budget: &str) {
        let l = vec![("budget", self.bounded("budget", budget))];
        self.refusals.get_or_create(&l).inc();
    }

    /// Counts a stream cut off by `budget`.
    pub fn cut_off(&self, budget: &str) {
        let l = vec![("budget", self.bounded("budget", budget))];
        self.cutoffs.get_or_create(&l).inc();
    }

    /// Counts a request whose model has no price.
    pub fn unpriced(&self, model: &str) {
        let l = vec![("model", self.bounded("model", model))];
        self.unpriced.get_or_create(&l).inc();
    }

    /// Counts a budget check the store failed.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// The counters in the OpenMetrics text format (without the closing `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP aigw_spend_usd Spend in USD (price table times usage), by key, team, model and route.\n# TYPE aigw_spend_usd counter\n");
        if let Ok(spend) = self.spend.lock() {
            for (labels, micros) in spend.iter() {
                out.push_str("aigw_spend_usd_total{");
                for (i, (k, v)) in labels.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    // Writing into a String cannot fail.
                    let _ = write!(out, "{sep}{k}=\"{v}\"");
                }
                let _ = writeln!(out, "}} {}", crate::pricing::format_micros(*micros));
            }
        }
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out.lines().filter(|l| *l != "# EOF").fold(
            String::with_capacity(out.len()),
            |mut acc, l| {
                acc.push_str(l);
                acc.push('\n');
                acc
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_spend_is_exported() {
        let m = SpendMetrics::default();
        for i in 0..MAX_VALUES_PER_LABEL + 3 {
            let row = super::super::UsageKey {
                key: format!("k{i}"),
                model: "m".into(),
                ..Default::default()
            };
            let c = super::super::UsageCounts {
                requests: 1,
                cost_micros: 1_500_000,
                ..Default::default()
            };
            m.record(&row, &c);
        }
        let text = m.encode();
        assert!(
            text.contains(
                "aigw_spend_usd_total{key=\"k0\",team=\"\",model=\"m\",route=\"\"} 1.500000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("key=\"_OTHER\",team=\"\",model=\"m\",route=\"\"} 4.500000\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "aigw_usage_requests_total{key=\"_OTHER\",team=\"\",model=\"m\",route=\"\"} 3"
            ),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }
}
