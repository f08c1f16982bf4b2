//! Request-header attributes for metrics and access logs
//! (`OTEL_AIGW_{METRICS_,LOG_}REQUEST_HEADER_ATTRIBUTES`), with a cardinality guard:
//! each metric attribute keeps at most [`MAX_VALUES_PER_ATTRIBUTE`] distinct values;
//! further values are reported as `_OTHER` and counted, so a header with unbounded
//! values (a session id) cannot grow the metric series without bound.

use super::config::HeaderAttributes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinct values kept per metric attribute.
pub const MAX_VALUES_PER_ATTRIBUTE: usize = 100;
/// What an attribute value beyond the bound is reported as.
pub const OVERFLOW_VALUE: &str = "_OTHER";

static OVERFLOWS: AtomicU64 = AtomicU64::new(0);
static SEEN: Mutex<Option<HashMap<String, HashSet<String>>>> = Mutex::new(None);

/// Metric attribute values replaced by [`OVERFLOW_VALUE`] since the process started.
pub fn label_overflows() -> u64 {
    OVERFLOWS.load(Ordering::Relaxed)
}

/// The bounded metric attributes of a record: the mapped headers' values, each
/// either already seen, admitted while its attribute has room, or `_OTHER`.
pub fn metric_labels(
    mapping: &HeaderAttributes,
    labels: &[(Arc<str>, String)],
) -> Vec<(String, String)> {
    let attrs: Vec<String> = mapping.iter().map(|(_, a)| a.clone()).collect();
    bounded(&attrs, labels)
}

/// The bounded values of the attributes `attrs` among a record's header-mapped
/// `labels`, in `attrs` order (an attribute the request did not carry is left out).
pub fn bounded(attrs: &[String], labels: &[(Arc<str>, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if attrs.is_empty() {
        return out;
    }
    let Ok(mut seen) = SEEN.lock() else {
        return out;
    };
    let seen = seen.get_or_insert_with(HashMap::new);
    for attr in attrs {
        let Some((_, value)) = labels.iter().find(|(a, _)| a.as_ref() == attr) else {
            continue;
        };
        let values = seen.entry(attr.clone()).or_default();
        let admitted = values.contains(value) || {
            values.len() < MAX_VALUES_PER_ATTRIBUTE && values.insert(value.clone())
        };
        if admitted {
            out.push((attr.clone(), value.clone()));
        } else {
            if OVERFLOWS.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    attribute = %attr,
                    limit = MAX_VALUES_PER_ATTRIBUTE,
                    "metric attribute from a request header has too many values; further values are reported as _OTHER"
                );
            }
            out.push((attr.clone(), OVERFLOW_VALUE.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ExchangeRecord;
    use std::sync::Arc;

    #[test]
    fn values_beyond_the_bound_are_other_and_counted() {
        let mapping = vec![(
            http::HeaderName::from_static("x-t"),
            "guard.test".to_owned(),
        )];
        let before = label_overflows();
        for i in 0..MAX_VALUES_PER_ATTRIBUTE + 5 {
            let r = ExchangeRecord {
                request_labels: vec![(Arc::from("guard.test"), format!("v{i}"))],
                ..Default::default()
            };
            let l = metric_labels(&mapping, &r.request_labels);
            let want = if i < MAX_VALUES_PER_ATTRIBUTE {
                format!("v{i}")
            } else {
                OVERFLOW_VALUE.to_owned()
            };
            assert_eq!(l, vec![("guard.test".to_owned(), want)]);
        }
        assert!(label_overflows() >= before + 5);
        // A value admitted before stays itself.
        let r = ExchangeRecord {
            request_labels: vec![(Arc::from("guard.test"), "v3".to_owned())],
            ..Default::default()
        };
        assert_eq!(metric_labels(&mapping, &r.request_labels)[0].1, "v3");
    }
}
