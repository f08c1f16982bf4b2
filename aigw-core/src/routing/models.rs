//! The model list served at `/v1/models`.

use crate::config::{Config, DEFAULT_MODELS_OWNED_BY, HeaderMatchType, MODEL_HEADER};

/// One model entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Model id (the Exact `x-ai-eg-model` value).
    pub id: String,
    /// `owned_by`: the rule's `modelsOwnedBy`, default "Envoy AI Gateway".
    pub owned_by: String,
    /// `created`, Unix seconds: the rule's `modelsCreatedAt`, else the route's
    /// `creationTimestamp`, else 0.
    pub created: u64,
    /// The route's hostnames (empty = every host).
    pub hostnames: Vec<String>,
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (offsets honoured).
pub(crate) fn rfc3339_to_unix(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(t).ok()
}

/// RFC 3339 (UTC, seconds) of Unix seconds.
pub fn unix_to_rfc3339(t: u64) -> String {
    let days = i64::try_from(t / 86_400).unwrap_or(0);
    let secs = t % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub(crate) fn collect(config: &Config) -> Vec<ModelInfo> {
    let mut out = Vec::new();
    for route in &config.ai_gateway_routes {
        let route_created = route
            .metadata
            .creation_timestamp
            .as_deref()
            .and_then(rfc3339_to_unix);
        for rule in &route.spec.rules {
            let owned_by = rule
                .models_owned_by
                .clone()
                .unwrap_or_else(|| DEFAULT_MODELS_OWNED_BY.to_string());
            let created = rule
                .models_created_at
                .as_deref()
                .and_then(rfc3339_to_unix)
                .or(route_created)
                .unwrap_or(0);
            for m in &rule.matches {
                for h in &m.headers {
                    if h.match_type == HeaderMatchType::Exact
                        && h.name.eq_ignore_ascii_case(MODEL_HEADER)
                    {
                        out.push(ModelInfo {
                            id: h.value.clone(),
                            owned_by: owned_by.clone(),
                            created,
                            hostnames: route.spec.hostnames.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_to_unix("2024-05-21T10:00:00Z"), Some(1_716_285_600));
        assert_eq!(
            rfc3339_to_unix("2024-05-21T12:00:00+02:00"),
            Some(1_716_285_600)
        );
        assert_eq!(
            rfc3339_to_unix("2024-05-21T10:00:00.123Z"),
            Some(1_716_285_600)
        );
        assert_eq!(rfc3339_to_unix("yesterday"), None);
        for t in [0, 1_716_285_600, 951_782_400, 4_102_444_799] {
            assert_eq!(rfc3339_to_unix(&unix_to_rfc3339(t)), Some(t));
        }
        assert_eq!(unix_to_rfc3339(1_716_285_600), "2024-05-21T10:00:00Z");
    }
}
