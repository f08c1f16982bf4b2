//! Reading a filter configuration: one file or a checksummed bundle, with upstream's
//! version gate.

use super::FilterConfig;
use crate::error::{ConfigIssue, Error, Result};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The index file of a bundle directory.
pub const BUNDLE_INDEX: &str = "index.yaml";

/// Where a filter configuration is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// One YAML file (`-configPath`).
    File(PathBuf),
    /// A bundle directory (`-configBundlePath`): `index.yaml` and its parts.
    Bundle(PathBuf),
}

impl Source {
    /// The files whose change means a new configuration: the file, or the index and
    /// every part it names (an unreadable index lists only itself).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Self::File(p) => vec![p.clone()],
            Self::Bundle(dir) => {
                let index = dir.join(BUNDLE_INDEX);
                let mut out = vec![index.clone()];
                if let Ok(text) = std::fs::read_to_string(&index)
                    && let Ok(idx) = parse_index(&text, &index)
                {
                    out.extend(idx.parts.iter().map(|p| dir.join(&p.path)));
                }
                out
            }
        }
    }

    /// The file or bundle directory, for messages.
    pub fn display(&self) -> String {
        match self {
            Self::File(p) | Self::Bundle(p) => p.display().to_string(),
        }
    }
}

/// Which `version` a configuration may carry. Upstream refuses a configuration written
/// by a controller of another version (during a rolling upgrade the ExtProc keeps its
/// previous configuration); this build reads the v1.1 format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// `version` must be this string exactly.
    Exact(String),
    /// `version` must be this release line: equal to it or continuing it with `.`
    /// or `-` (`v1.1` accepts `v1.1.0`, `v1.1.3`, `v1.1.0-rc1`).
    Line(String),
    /// Any version (and none).
    Any,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        Self::Line("v1.1".into())
    }
}

impl VersionPolicy {
    /// From a setting: `*` is [`VersionPolicy::Any`], `v1.1` (two components) a
    /// release line, anything else an exact version.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s == "*" {
            Self::Any
        } else if s.trim_start_matches('v').split('.').count() == 2 && !s.contains('-') {
            Self::Line(s.to_owned())
        } else {
            Self::Exact(s.to_owned())
        }
    }

    /// Whether `version` is accepted.
    pub fn accepts(&self, version: &str) -> bool {
        match self {
            Self::Exact(v) => v == version,
            Self::Line(line) => version.strip_prefix(line.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('.') || rest.starts_with('-')
            }),
            Self::Any => true,
        }
    }
}

impl std::fmt::Display for VersionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(v) => write!(f, "{v:?}"),
            Self::Line(l) => write!(f, "{l}.x"),
            Self::Any => f.write_str("any version"),
        }
    }
}

/// A configuration read and checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: FilterConfig,
    /// What is read but not served (log them).
    pub warnings: Vec<String>,
}

fn issue(file: &str, field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidConfig {
        issues: vec![ConfigIssue {
            file: file.to_owned(),
            line: None,
            document: "filter configuration".into(),
            field: field.into(),
            message: message.into(),
        }],
    }
}

/// Parses filter configuration YAML (without the version gate). `file` names it in
/// errors.
pub fn parse(text: &str, file: &str) -> Result<FilterConfig> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| issue(file, "", format!("not valid YAML: {e}")))?;
    let doc = docs
        .into_iter()
        .find(|d| !d.is_null())
        .unwrap_or(Value::Object(serde_json::Map::new()));
    serde_path_to_error::deserialize::<_, FilterConfig>(&doc).map_err(|e| {
        let field = e.path().to_string();
        issue(
            file,
            if field == "." { String::new() } else { field },
            e.into_inner().to_string(),
        )
    })
}

/// `index.yaml` of a bundle.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleIndex {
    #[serde(default)]
    version: String,
    #[serde(default)]
    uuid: String,
    checksum: String,
    parts: Vec<BundlePart>,
    #[serde(default, rename = "createdAt")]
    _created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BundlePart {
    #[serde(default)]
    #[allow(dead_code)]
    name: String,
    path: String,
    #[serde(default, rename = "sizeBytes")]
    _size: Option<u64>,
}

fn parse_index(text: &str, path: &Path) -> Result<BundleIndex> {
    let file = path.display().to_string();
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| issue(&file, "", format!("not valid YAML: {e}")))?;
    let doc = docs.into_iter().find(|d| !d.is_null()).unwrap_or_default();
    let idx: BundleIndex = serde_json::from_value(doc)
        .map_err(|e| issue(&file, "", format!("not a config bundle index: {e}")))?;
    if idx.checksum.is_empty() {
        return Err(issue(&file, "checksum (index)", "empty checksum"));
    }
    if idx.parts.is_empty() {
        return Err(issue(&file, "parts (index)", "no parts"));
    }
    for p in &idx.parts {
        if Path::new(&p.path).is_absolute() || p.path.split('/').any(|s| s == "..") {
            return Err(issue(
                &file,
                "parts (index)",
                format!("part path {:?} leaves the bundle directory", p.path),
            ));
        }
    }
    Ok(idx)
}

/// The hex SHA-256 a bundle index carries for the concatenation of its parts.
pub fn bundle_checksum(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// Reassembles a bundle: reads `index.yaml`, concatenates its parts in order and checks
/// their checksum. Returns the configuration text.
pub fn read_bundle(dir: &Path) -> Result<String> {
    let index_path = dir.join(BUNDLE_INDEX);
    let file = index_path.display().to_string();
    let text = std::fs::read_to_string(&index_path)
        .map_err(|e| issue(&file, "", format!("cannot read: {e}")))?;
    let idx = parse_index(&text, &index_path)?;
    let mut payload = Vec::new();
    for p in &idx.parts {
        let path = dir.join(&p.path);
        let bytes = std::fs::read(&path).map_err(|e| {
            issue(
                &file,
                "parts",
                format!("cannot read part {:?}: {e}", p.path),
            )
        })?;
        payload.extend_from_slice(&bytes);
    }
    let actual = bundle_checksum(&payload);
    if !actual.eq_ignore_ascii_case(&idx.checksum) {
        return Err(issue(
            &file,
            "checksum",
            format!(
                "bundle checksum mismatch: expected {} got {actual} (parts still being written?)",
                idx.checksum
            ),
        ));
    }
    let text = String::from_utf8(payload).map_err(|_| {
        issue(
            &file,
            "parts (content)",
            "the reassembled configuration is not UTF-8",
        )
    })?;
    if !idx.version.is_empty() || !idx.uuid.is_empty() {
        tracing::debug!(version = %idx.version, uuid = %idx.uuid, "config bundle index read");
    }
    Ok(text)
}

/// Reads, parses and version-checks a filter configuration.
pub fn load(source: &Source, versions: &VersionPolicy) -> Result<Loaded> {
    let name = source.display();
    let text = match source {
        Source::File(p) => {
            std::fs::read_to_string(p).map_err(|e| issue(&name, "", format!("cannot read: {e}")))?
        }
        Source::Bundle(dir) => read_bundle(dir)?,
    };
    let config = parse(&text, &name)?;
    if !versions.accepts(&config.version) {
        return Err(issue(
            &name,
            "version",
            format!(
                "config version mismatch: expected {versions}, got {:?}; likely in the middle of \
                 a rolling update (the previous configuration keeps serving)",
                config.version
            ),
        ));
    }
    let warnings = config.warnings();
    Ok(Loaded { config, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines() {
        let p = VersionPolicy::parse("v1.1");
        assert!(p.accepts("v1.1.0") && p.accepts("v1.1") && p.accepts("v1.1.0-rc1"));
        assert!(!p.accepts("v1.10.0") && !p.accepts("v1.2.0") && !p.accepts(""));
        assert_eq!(
            VersionPolicy::parse("dev"),
            VersionPolicy::Exact("dev".into())
        );
        assert_eq!(
            VersionPolicy::parse("v1.1.0"),
            VersionPolicy::Exact("v1.1.0".into())
        );
        assert!(VersionPolicy::parse("*").accepts("anything"));
    }
}
