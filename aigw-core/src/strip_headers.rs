//! Removing a fixed set of headers from a map on the request path.

use http::{HeaderMap, HeaderName};

/// Removes every header named in `names` from `headers`.
///
/// `HeaderMap::remove` hashes the name and probes the table even when the header is
/// absent, and most names of the sets removed per request (hop-by-hop headers,
/// credentials, identity headers) are absent from any one request: a pass over the
/// map's names, compared without hashing, finds the ones present, and only those are
/// removed.
pub(crate) fn remove_all(headers: &mut HeaderMap, names: &[HeaderName]) {
    if names.len() > 64 {
        for name in names {
            headers.remove(name);
        }
        return;
    }
    let mut present = 0u64;
    for key in headers.keys() {
        if let Some(i) = names.iter().position(|n| n == key) {
            present |= 1 << i;
        }
    }
    while present != 0 {
        let i = present.trailing_zeros() as usize;
        headers.remove(&names[i]);
        present &= present - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let names = [
            http::header::HOST,
            http::header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ];
        let mut naive = h.clone();
        for name in &names {
            naive.remove(name);
        }
        remove_all(&mut h, &names);
        let pairs = |h: &HeaderMap| -> Vec<(String, String)> {
            h.iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect()
        };
        // The same headers in the same order as removing each name in turn.
        assert_eq!(pairs(&h), pairs(&naive));
        assert_eq!(h.len(), 3);
        assert!(h.get_all("x-keep").iter().eq(["1", "2"].iter()));
        let many: Vec<HeaderName> = (0..70)
            .map(|i| HeaderName::try_from(format!("x-h{i}")).unwrap())
            .collect();
        h.insert(many[69].clone(), HeaderValue::from_static("v"));
        remove_all(&mut h, &many);
        assert!(!h.contains_key(&many[69]));
        assert_eq!(h.len(), 3);
    }
}
