//! The usage query behind `GET /admin/usage`: hourly rows from the store, filtered
//! and grouped.

use super::HOUR;
use super::store::{HourRow, UsageCounts, UsageKey};
use crate::pricing::{format_instant, format_micros, parse_instant};
use serde::Serialize;
use std::collections::BTreeMap;

/// The widest range one query may cover (93 days).
pub const MAX_RANGE_HOURS: u64 = 93 * 24;

/// A dimension rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupBy {
    /// The client's key id.
    Key,
    /// The client's team.
    Team,
    /// The model billed.
    Model,
    /// The route.
    Route,
    /// The hour.
    Hour,
}

impl GroupBy {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "key" => Self::Key,
            "team" => Self::Team,
            "model" => Self::Model,
            "route" => Self::Route,
            "hour" => Self::Hour,
            _ => return None,
        })
    }
}

/// A parsed usage query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// Start, Unix seconds (rounded down to the hour).
    pub from: u64,
    /// End, Unix seconds, exclusive (rounded up to the hour).
    pub to: u64,
    /// Grouping dimensions, in the order given.
    pub group_by: Vec<GroupBy>,
    /// Only this key.
    pub key: Option<String>,
    /// Only this team.
    pub team: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this route.
    pub route: Option<String>,
    /// The `group_by` text as given, echoed in the report.
    pub group_by_text: String,
}

impl UsageQuery {
    /// Parses query parameters: `from`, `to` (RFC 3339; default the last 24 hours up
    /// to now), `group_by` (comma-separated `model`, `key`, `team`, `route`, `hour`;
    /// default `model`), and the filters `key`, `team`, `model`, `route`.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: u64,
    ) -> Result<Self, String> {
        let mut q = Self {
            from: now.saturating_sub(24 * HOUR),
            to: now,
            group_by: vec![GroupBy::Model],
            key: None,
            team: None,
            model: None,
            route: None,
            group_by_text: "model".into(),
        };
        for (name, value) in params {
            match name {
                "from" => q.from = parse_instant(value).map_err(|e| format!("from: {e}"))?,
                "to" => q.to = parse_instant(value).map_err(|e| format!("to: {e}"))?,
                "group_by" => {
                    q.group_by = value
                        .split(',')
                        .map(|g| {
                            GroupBy::parse(g.trim()).ok_or_else(|| {
                                format!(
                                    "group_by: {g:?} is not one of model, key, team, route, hour"
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    q.group_by_text = value.to_owned();
                }
                "key" => q.key = Some(value.to_owned()),
                "team" => q.team = Some(value.to_owned()),
                "model" => q.model = Some(value.to_owned()),
                "route" => q.route = Some(value.to_owned()),
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        q.from -= q.from % HOUR;
        q.to = q.to.div_ceil(HOUR) * HOUR;
        if q.to <= q.from {
            return Err("to must be after from".into());
        }
        if (q.to - q.from) / HOUR > MAX_RANGE_HOURS {
            return Err(format!(
                "the range may cover at most {MAX_RANGE_HOURS} hours"
            ));
        }
        Ok(q)
    }

    fn admits(&self, row: &UsageKey) -> bool {
        let ok = |f: &Option<String>, v: &str| f.as_deref().is_none_or(|f| f == v);
        ok(&self.key, &row.key)
            && ok(&self.team, &row.team)
            && ok(&self.model, &row.model)
            && ok(&self.route, &row.route)
    }

    /// Filters and groups hourly rows into the report.
    pub fn report(&self, rows: Vec<HourRow>) -> UsageReport {
        let mut groups: BTreeMap<Vec<String>, Group> = BTreeMap::new();
        for (hour, key, counts) in rows {
            if !self.admits(&key) || hour < self.from || hour >= self.to {
                continue;
            }
            let id: Vec<String> = self
                .group_by
                .iter()
                .map(|g| match g {
                    GroupBy::Key => key.key.clone(),
                    GroupBy::Team => key.team.clone(),
                    GroupBy::Model => key.model.clone(),
                    GroupBy::Route => key.route.clone(),
                    GroupBy::Hour => format!("{hour:020}"),
                })
                .collect();
            groups.entry(id).or_default().add(hour, &key, &counts);
        }
        UsageReport {
            from: format_instant(self.from),
            to: format_instant(self.to),
            group_by: self.group_by_text.clone(),
            rows: groups
                .into_values()
                .map(|g| g.row(self.group_by.contains(&GroupBy::Hour)))
                .collect(),
        }
    }
}

/// A dimension's value across a group: the one value every member shares, or
/// mixed.
#[derive(Debug, Default)]
enum Shared {
    #[default]
    Unset,
    One(String),
    Mixed,
}

impl Shared {
    fn see(&mut self, v: &str) {
        *self = match std::mem::take(self) {
            Self::Unset => Self::One(v.to_owned()),
            Self::One(o) if o == v => Self::One(o),
            _ => Self::Mixed,
        };
    }
    fn value(self) -> Option<String> {
        match self {
            Self::One(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    key: Shared,
    team: Shared,
    model: Shared,
    route: Shared,
    hour: u64,
    counts: UsageCounts,
}

impl Group {
    fn add(&mut self, hour: u64, k: &UsageKey, c: &UsageCounts) {
        self.key.see(&k.key);
        self.team.see(&k.team);
        self.model.see(&k.model);
        self.route.see(&k.route);
        self.hour = hour;
        self.counts.add(c);
    }

    fn row(self, by_hour: bool) -> UsageRow {
        UsageRow {
            key: self.key.value(),
            team: self.team.value(),
            model: self.model.value(),
            route: self.route.value(),
            hour: by_hour.then(|| format_instant(self.hour)),
            requests: self.counts.requests,
            input_tokens: self.counts.input_tokens,
            output_tokens: self.counts.output_tokens,
            cost_usd: format_micros(self.counts.cost_micros),
        }
    }
}

/// The answer of `GET /admin/usage`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UsageReport {
    /// Start of the range (RFC 3339).
    pub from: String,
    /// End of the range, exclusive (RFC 3339).
    pub to: String,
    /// The grouping, as asked.
    pub group_by: String,
    /// One row per group.
    pub rows: Vec<UsageRow>,
}

/// One group's counters. A dimension is set when every request of the group shares
/// its value (always for the grouped ones; empty string when unknown), else `null`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UsageRow {
    /// The client's key id.
    pub key: Option<String>,
    /// The client's team.
    pub team: Option<String>,
    /// The model billed.
    pub model: Option<String>,
    /// The route.
    pub route: Option<String>,
    /// The hour, when grouped by hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Spend in USD, six decimals.
    pub cost_usd: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, model: &str, n: u64) -> UsageKey {
        let _ = n;
        UsageKey {
            key: key.into(),
            team: "t".into(),
            model: model.into(),
            route: "ns/r".into(),
        }
    }

    #[test]
    fn groups_filters_and_formats() {
        let now = parse_instant("2026-12-06T19:30:00Z").unwrap();
        let h = now - now % HOUR;
        let c = |req, cost| UsageCounts {
            requests: req,
            input_tokens: 10 * req,
            output_tokens: 5 * req,
            cost_micros: cost,
        };
        let rows = vec![
            (h, row("k1", "m1", 1), c(1, 1234)),
            (h - HOUR, row("k2", "m1", 1), c(2, 1)),
            (h, row("k2", "m2", 1), c(1, 2_000_000)),
        ];
        let q = UsageQuery::parse([("group_by", "model")], now).unwrap();
        let r = q.report(rows.clone());
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].model.as_deref(), Some("m1"));
        assert_eq!(r.rows[0].key, None, "two keys in the group");
        assert_eq!(r.rows[0].team.as_deref(), Some("t"));
        assert_eq!(r.rows[0].requests, 3);
        assert_eq!(r.rows[0].cost_usd, "0.001235");
        let q = UsageQuery::parse([("key", "k2"), ("group_by", "hour")], now).unwrap();
        let r = q.report(rows);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].hour.as_deref(), Some("2026-12-06T19:00:00Z"));
        assert_eq!(r.rows[1].cost_usd, "2.000000");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["group_by"], "hour");
        assert!(UsageQuery::parse([("group_by", "week")], now).is_err());
        assert!(UsageQuery::parse([("from", "2020-01-01T00:00:00Z")], now).is_err());
    }
}
