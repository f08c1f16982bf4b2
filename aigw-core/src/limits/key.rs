//! Bucket keys and fixed windows.
//!
//! Windows are fixed and aligned to the unit, as in envoyproxy/ratelimit: a window
//! starts at `now - now % window` (Unix seconds), so every instance agrees on it
//! without coordination and a bucket's key changes when the window does.
//!
//! A bucket key is `<base>_<window start>`, the base being
//! `aigw_<policy>_<rule index>_<route>[_<descriptor>...]`:
//!
//! * `policy` — the BackendTrafficPolicy, `namespace/name`;
//! * `rule index` — the rule's position in its `rules` list;
//! * `route` — the AIGatewayRoute `namespace/name`, or `*` for a `shared` rule (one
//!   budget across every route the policy applies to);
//! * one descriptor per `Distinct` match: `<header name>=<value>`, or `ip=<address>`.
//!
//! `%` and `_` inside names and values are percent-encoded, so distinct values can
//! never produce the same key.

use super::selector::Descriptor;
use std::fmt::Write as _;

/// The start of the window containing `now` (both Unix seconds).
pub const fn window_start(now: u64, window_secs: u64) -> u64 {
    if window_secs == 0 {
        return now;
    }
    now - now % window_secs
}

/// Seconds from `now` until the window containing it ends (at least 1).
pub const fn seconds_to_reset(now: u64, window_secs: u64) -> u64 {
    let end = window_start(now, window_secs) + window_secs;
    let left = end.saturating_sub(now);
    if left == 0 { 1 } else { left }
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '_' => out.push_str("%5F"),
            c => out.push(c),
        }
    }
}

/// The key of a rule's bucket without its window: see the module docs.
pub fn bucket_base(
    policy: &str,
    rule: usize,
    route: Option<&str>,
    descriptors: &[Descriptor],
) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("aigw_");
    push_escaped(&mut out, policy);
    let _ = write!(out, "_{rule}_");
    match route {
        Some(r) => push_escaped(&mut out, r),
        None => out.push('*'),
    }
    for d in descriptors {
        out.push('_');
        match d {
            Descriptor::Header { name, value } => {
                push_escaped(&mut out, name);
                out.push('=');
                push_escaped(&mut out, value);
            }
            Descriptor::SourceIp(ip) => {
                let _ = write!(out, "ip={ip}");
            }
        }
    }
    out
}

/// The full key of a bucket for the window starting at `window_start`.
pub fn bucket_key(base: &str, window_start: u64) -> String {
    format!("{base}_{window_start}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn windows_align_to_the_unit() {
        assert_eq!(window_start(7_205, 3600), 7_200);
        assert_eq!(window_start(7_200, 3600), 7_200);
        assert_eq!(window_start(59, 60), 0);
        assert_eq!(seconds_to_reset(7_205, 3600), 3_595);
        assert_eq!(seconds_to_reset(7_200, 3600), 3_600);
        assert_eq!(seconds_to_reset(10, 1), 1);
    }

    #[test]
    fn keys_name_policy_rule_route_and_descriptors() {
        let d = vec![
            Descriptor::Header {
                name: "x-tenant-id".into(),
                value: "acme_corp".into(),
            },
            Descriptor::SourceIp("10.0.0.1".parse().unwrap()),
        ];
        let base = bucket_base("default/policy", 2, Some("default/route"), &d);
        assert_eq!(
            base,
            "aigw_default/policy_2_default/route_x-tenant-id=acme%5Fcorp_ip=10.0.0.1"
        );
        assert_eq!(bucket_key(&base, 3600), format!("{base}_3600"));
        assert_eq!(bucket_base("ns/p", 0, None, &[]), "aigw_ns/p_0_*");
    }

    proptest! {
        #[test]
        fn window_contains_now(now in 0u64..u64::MAX / 2, w in 1u64..40_000_000) {
            let s = window_start(now, w);
            prop_assert!(s <= now && now < s + w);
            prop_assert_eq!(s % w, 0);
            let r = seconds_to_reset(now, w);
            prop_assert!(r >= 1 && r <= w);
        }

        #[test]
        fn distinct_values_give_distinct_keys(a in ".{0,12}", b in ".{0,12}") {
            prop_assume!(a != b);
            let k = |v: &str| bucket_base("p", 0, Some("r"), &[Descriptor::Header { name: "h".into(), value: v.into() }]);
            prop_assert_ne!(k(&a), k(&b));
        }
    }
}
