//! Configurations split into parts: `aigw-operator` stores a Gateway's configuration in
//! up to eight Secrets (the 1 MiB object limit), mounted as one directory of files.
//! Each part starts with a header line naming the Gateway, its position and the
//! SHA-256 of all parts' bodies in order — the checksum the operator also writes as the
//! Secrets' annotation.
//!
//! The kubelet refreshes each Secret of a projected volume on its own schedule, so a
//! reader can see parts of two generations for a while. Loading checks every part set
//! against its header: all parts present once, one checksum, and the bodies hashing to
//! it. Anything else is a load error naming the Gateway, so a hot reload keeps the
//! serving configuration until the rest of the generation arrives (the files change
//! again then), and a fresh start fails instead of serving half a configuration.

use super::ConfigIssue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const HEADER_PREFIX: &str = "# aigw configuration of Gateway ";

/// The header line of part `index` (1-based) of `total` of Gateway `ns/name`'s
/// configuration whose parts hash to `checksum`.
pub fn part_header(gateway: &str, index: usize, total: usize, checksum: &str) -> String {
    format!("{HEADER_PREFIX}{gateway}: part {index} of {total}, sha256 {checksum}")
}

/// The checksum of a configuration's part bodies, in order (hex SHA-256).
pub fn parts_checksum<S: AsRef<str>>(bodies: &[S]) -> String {
    let mut h = Sha256::new();
    for b in bodies {
        h.update(b.as_ref().as_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Header<'a> {
    gateway: &'a str,
    index: usize,
    total: usize,
    checksum: &'a str,
}

/// The header of a part and its body, when `text` is one.
fn split(text: &str) -> Option<(Header<'_>, &str)> {
    let rest = text.strip_prefix(HEADER_PREFIX)?;
    let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let (gateway, rest) = line.split_once(": part ")?;
    let (pos, checksum) = rest.split_once(", sha256 ")?;
    let (index, total) = pos.split_once(" of ")?;
    Some((
        Header {
            gateway,
            index: index.parse().ok()?,
            total: total.parse().ok()?,
            checksum: checksum.trim(),
        },
        body,
    ))
}

/// Checks the part sets among `files` (`(file, text)`): one issue per Gateway whose
/// parts are incomplete, of mixed generations or do not hash to their checksum. Files
/// without a part header are not concerned.
pub(crate) fn check(files: &[(String, String)]) -> Vec<ConfigIssue> {
    let mut sets: BTreeMap<&str, Vec<(&str, Header<'_>, &str)>> = BTreeMap::new();
    for (file, text) in files {
        if let Some((h, body)) = split(text) {
            sets.entry(h.gateway).or_default().push((file, h, body));
        }
    }
    let mut issues = Vec::new();
    for (gateway, mut parts) in sets {
        parts.sort_by_key(|(_, h, _)| h.index);
        let (first_file, first, _) = &parts[0];
        let problem = if parts.iter().any(|(_, h, _)| h.checksum != first.checksum) {
            let seen: Vec<String> = parts
                .iter()
                .map(|(f, h, _)| {
                    format!(
                        "{f}: part {} of {}, sha256 {}",
                        h.index, h.total, h.checksum
                    )
                })
                .collect();
            Some(format!(
                "parts of different generations ({})",
                seen.join("; ")
            ))
        } else if parts.iter().any(|(_, h, _)| h.total != first.total)
            || parts.len() != first.total
            || parts
                .iter()
                .enumerate()
                .any(|(i, (_, h, _))| h.index != i + 1)
        {
            let have: Vec<String> = parts.iter().map(|(_, h, _)| h.index.to_string()).collect();
            Some(format!(
                "{} of {} parts present (parts {})",
                parts.len(),
                first.total,
                have.join(", ")
            ))
        } else {
            let bodies: Vec<&str> = parts.iter().map(|(_, _, b)| *b).collect();
            let actual = parts_checksum(&bodies);
            (actual != first.checksum).then(|| {
                format!(
                    "the parts hash to sha256 {actual}, not to their checksum {}",
                    first.checksum
                )
            })
        };
        if let Some(problem) = problem {
            issues.push(ConfigIssue {
                file: (*first_file).to_owned(),
                line: Some(1),
                document: format!("configuration of Gateway {gateway}"),
                field: String::new(),
                message: format!(
                    "incomplete configuration of Gateway {gateway}: {problem}; it is loaded once every part of one generation is present"
                ),
            });
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(gateway: &str, bodies: &[&str]) -> Vec<(String, String)> {
        let sum = parts_checksum(bodies);
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    format!("part-{i:03}.yaml"),
                    format!("{}\n{b}", part_header(gateway, i + 1, bodies.len(), &sum)),
                )
            })
            .collect()
    }

    #[test]
    fn a_complete_generation_passes() {
        assert!(check(&parts("ns/gw", &["---\na: 1\n", "---\nb: 2\n"])).is_empty());
        assert!(check(&[("plain.yaml".into(), "a: 1\n".into())]).is_empty());
    }

    #[test]
    fn missing_mixed_and_tampered_parts_are_named() {
        let mut set = parts("ns/gw", &["---\na: 1\n", "---\nb: 2\n"]);
        let missing = check(&set[..1]);
        assert!(
            missing[0].message.contains("1 of 2 parts present"),
            "{missing:?}"
        );
        let newer = parts("ns/gw", &["---\na: 3\n", "---\nb: 2\n"]);
        let mixed = check(&[newer[0].clone(), set[1].clone()]);
        assert!(
            mixed[0].message.contains("different generations"),
            "{mixed:?}"
        );
        set[1].1.push_str("c: 3\n");
        let tampered = check(&set);
        assert!(
            tampered[0].message.contains("not to their checksum"),
            "{tampered:?}"
        );
        assert!(tampered[0].message.contains("Gateway ns/gw"));
    }
}
