//! Removing a fixed set of headers from a map on the request path.

use http::{HeaderMap, HeaderName};

/// A fixed set of header names to remove, indexed by name length.
///
/// `HeaderMap::remove` hashes the name and probes the table even when the header is
/// absent, and most names of the sets removed per request (hop-by-hop headers,
/// credentials, identity headers) are absent from any one request; comparing each of
/// the map's names with every name of the set cost more than the removals. A set keeps
/// its names' texts grouped by length, so each of the map's names is compared only
/// with the few of its own length, and only the names present are removed.
pub(crate) struct HeaderSet {
    names: &'static [HeaderName],
    texts: Vec<&'static str>,
    /// Bit `i` of entry `n`: `names[i]` is `n` bytes long (entry 0: 64 bytes or more).
    by_len: [u64; 64],
}

impl HeaderSet {
    /// The set of `names`; past 64 names, [`remove_all`] removes each in turn.
    pub(crate) fn new(names: &'static [HeaderName]) -> Self {
        let texts: Vec<&'static str> = names.iter().map(HeaderName::as_str).collect();
        let mut by_len = [0u64; 64];
        for (i, t) in texts.iter().enumerate().take(64) {
            by_len[length_slot(t)] |= 1 << i;
        }
        Self {
            names,
            texts,
            by_len,
        }
    }
}

/// The `by_len` entry of a name of this text (header names are never empty).
fn length_slot(text: &str) -> usize {
    if text.len() < 64 { text.len() } else { 0 }
}

/// Removes every header named in `set` from `headers`, in the set's order (the order
/// the remaining headers are left in is that of removing each name in turn).
pub(crate) fn remove_all(headers: &mut HeaderMap, set: &HeaderSet) {
    if set.names.len() > 64 {
        for name in set.names {
            headers.remove(name);
        }
        return;
    }
    let mut present = 0u64;
    for key in headers.keys() {
        let text = key.as_str();
        let mut same_length = set.by_len[length_slot(text)];
        while same_length != 0 {
            let i = same_length.trailing_zeros() as usize;
            if set.texts[i] == text {
                present |= 1 << i;
                break;
            }
            same_length &= same_length - 1;
        }
    }
    while present != 0 {
        let i = present.trailing_zeros() as usize;
        headers.remove(&set.names[i]);
        present &= present - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    static NAMES: [HeaderName; 4] = [
        http::header::HOST,
        http::header::AUTHORIZATION,
        HeaderName::from_static("x-api-key"),
        // The same length as `authorization`.
        HeaderName::from_static("x-keep-me-13"),
    ];

    #[test]
    fn removes_every_value_of_the_named_headers_only() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("host", "a"),
            ("x-keep", "1"),
            ("x-api-key", "k"),
            ("x-keep", "2"),
            ("x-api-key", "k2"),
            ("content-type", "application/json"),
            ("x-keep-me-13", "gone"),
            ("x-keep-me-14", "3"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let mut naive = h.clone();
        for name in &NAMES {
            naive.remove(name);
        }
        remove_all(&mut h, &HeaderSet::new(&NAMES));
        let pairs = |h: &HeaderMap| -> Vec<(String, String)> {
            h.iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect()
        };
        // The same headers in the same order as removing each name in turn.
        assert_eq!(pairs(&h), pairs(&naive));
        assert_eq!(h.len(), 4);
        assert!(h.get_all("x-keep").iter().eq(["1", "2"].iter()));
        assert!(h.contains_key("x-keep-me-14"));
    }

    #[test]
    fn long_names_and_large_sets() {
        static LONG: std::sync::LazyLock<Vec<HeaderName>> = std::sync::LazyLock::new(|| {
            (0..70)
                .map(|i| HeaderName::try_from(format!("x-h{i}-{}", "n".repeat(i))).unwrap())
                .collect()
        });
        let mut h = HeaderMap::new();
        for name in [&LONG[69], &LONG[64], &LONG[1], &LONG[63]] {
            h.insert(name.clone(), HeaderValue::from_static("v"));
        }
        h.insert("x-other", HeaderValue::from_static("v"));
        // Past 64 names: each removed in turn.
        remove_all(&mut h, &HeaderSet::new(&LONG[..]));
        assert_eq!(h.len(), 1);
        // Names of 64 bytes or more share one slot.
        for name in [&LONG[64], &LONG[62], &LONG[63]] {
            h.insert(name.clone(), HeaderValue::from_static("v"));
        }
        remove_all(&mut h, &HeaderSet::new(&LONG[60..]));
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-other"));
    }
}
