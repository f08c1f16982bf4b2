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

impl HeaderSet {
    /// The index of `key` in the set (of the first 64 names).
    fn position(&self, key: &HeaderName) -> Option<usize> {
        let text = key.as_str();
        let mut same_length = self.by_len[length_slot(text)];
        while same_length != 0 {
            let i = same_length.trailing_zeros() as usize;
            if self.texts[i] == text {
                return Some(i);
            }
            same_length &= same_length - 1;
        }
        None
    }
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
        if let Some(i) = set.position(key) {
            present |= 1 << i;
        }
    }
    while present != 0 {
        let i = present.trailing_zeros() as usize;
        headers.remove(&set.names[i]);
        present &= present - 1;
    }
}

/// The most names a map may have for [`copy_without`] to copy it in one pass.
/// (Beyond it the map is cloned and stripped; clients rarely send that many.)
const MAX_COPIED: usize = 32;

/// What a clone of `headers` with [`remove_all`] of `set` applied holds, entries and
/// values in the same order, with room for `extra` more headers.
///
/// A clone copies every header and each removal hashes its name and probes the table
/// again; here each name is looked at once and only the headers kept are copied.
/// `HeaderMap::remove` swaps the map's last entry into the removed one's place, so the
/// order a clone would be left in is worked out on the entries' indices first.
pub(crate) fn copy_without(headers: &HeaderMap, set: &HeaderSet, extra: usize) -> HeaderMap {
    let entries = headers.keys_len();
    if set.names.len() > 64 || entries > MAX_COPIED {
        let mut copy = headers.clone();
        remove_all(&mut copy, set);
        return copy;
    }
    // Per entry, in the map's order: its name, first value and whether it has more.
    let mut names: [Option<&HeaderName>; MAX_COPIED] = [None; MAX_COPIED];
    let mut firsts: [Option<&http::HeaderValue>; MAX_COPIED] = [None; MAX_COPIED];
    let mut several = 0u64;
    // The set's names present, and which entry holds each.
    let mut present = 0u64;
    let mut entry_of = [0u8; 64];
    // The entries' indices in the copy's order, and each entry's index in it.
    let mut order = [0u8; MAX_COPIED];
    let mut count = 0usize;
    for (name, value) in headers {
        // The iterator hands out each value of an entry with the same `&HeaderName`.
        if count > 0 && names[count - 1].is_some_and(|n| std::ptr::eq(n, name)) {
            several |= 1 << (count - 1);
            continue;
        }
        if let Some(i) = set.position(name) {
            present |= 1 << i;
            entry_of[i] = count as u8;
        }
        names[count] = Some(name);
        firsts[count] = Some(value);
        order[count] = count as u8;
        count += 1;
    }
    // Removing in the set's order: the last entry takes each removed one's place.
    let mut at = order;
    let mut len = count;
    while present != 0 {
        let removed = entry_of[present.trailing_zeros() as usize] as usize;
        let slot = at[removed] as usize;
        len -= 1;
        let moved = order[len];
        order[slot] = moved;
        at[moved as usize] = slot as u8;
        present &= present - 1;
    }
    let mut copy = HeaderMap::with_capacity(len + extra);
    for &e in &order[..len] {
        let e = e as usize;
        let (Some(name), Some(first)) = (names[e], firsts[e]) else {
            continue;
        };
        copy.append(name.clone(), first.clone());
        if several & (1 << e) != 0 {
            for value in headers.get_all(name).iter().skip(1) {
                copy.append(name.clone(), value.clone());
            }
        }
    }
    copy
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

    /// Names a generated map draws from: the set's, others of the same lengths, standard
    /// and custom.
    const POOL: [&str; 12] = [
        "host",
        "authorization",
        "x-api-key",
        "x-keep-me-13",
        "user-agent",
        "content-type",
        "accept",
        "x-ai-eg-model",
        "x-api-kez",
        "traceparent",
        "content-length",
        "te",
    ];

    fn map_of(pairs: &[(usize, u8)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for &(name, value) in pairs {
            h.append(
                HeaderName::from_static(POOL[name % POOL.len()]),
                HeaderValue::from(u16::from(value)),
            );
        }
        h
    }

    /// Entries with their values, in iteration order.
    fn listed(h: &HeaderMap) -> Vec<(String, Vec<Vec<u8>>)> {
        let mut out: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        for (k, v) in h {
            match out.last_mut() {
                Some((name, values)) if name == k.as_str() => values.push(v.as_bytes().to_vec()),
                _ => out.push((k.as_str().to_owned(), vec![v.as_bytes().to_vec()])),
            }
        }
        out
    }

    proptest::proptest! {
        /// The copy holds what a clone stripped by `remove_all` holds, in its order.
        #[test]
        fn copy_without_is_a_stripped_clone(
            pairs in proptest::collection::vec((0usize..12, proptest::prelude::any::<u8>()), 0..40),
        ) {
            let h = map_of(&pairs);
            let set = HeaderSet::new(&NAMES);
            let mut stripped = h.clone();
            remove_all(&mut stripped, &set);
            let copy = copy_without(&h, &set, 4);
            proptest::prop_assert_eq!(listed(&copy), listed(&stripped));
            proptest::prop_assert_eq!(copy.len(), stripped.len());
        }
    }

    #[test]
    fn copy_without_past_its_entry_limit_and_set_limit() {
        let mut h = HeaderMap::new();
        for i in 0..40 {
            h.append(
                HeaderName::try_from(format!("x-h{i}")).unwrap(),
                HeaderValue::from(i),
            );
        }
        h.append(http::header::HOST, HeaderValue::from_static("a"));
        h.append(http::header::AUTHORIZATION, HeaderValue::from_static("b"));
        let set = HeaderSet::new(&NAMES);
        let mut stripped = h.clone();
        remove_all(&mut stripped, &set);
        assert_eq!(listed(&copy_without(&h, &set, 0)), listed(&stripped));
        assert_eq!(stripped.len(), 40);
        static LONG: std::sync::LazyLock<Vec<HeaderName>> = std::sync::LazyLock::new(|| {
            (0..70)
                .map(|i| HeaderName::try_from(format!("x-h{i}")).unwrap())
                .collect()
        });
        let large = HeaderSet::new(&LONG[..]);
        let mut stripped = h.clone();
        remove_all(&mut stripped, &large);
        assert_eq!(listed(&copy_without(&h, &large, 0)), listed(&stripped));
        assert_eq!(stripped.len(), 2);
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
