//! Kubernetes `Secret` documents and [`SecretSource`], which resolves secret references
//! from loaded Secrets, a directory of files, or environment variables.
//!
//! Resolution order for a reference `namespace/name` and key:
//! 1. a loaded `Secret` document (`data` is base64, `stringData` is plain; `stringData`
//!    wins on conflict as in Kubernetes). The annotation
//!    `substitution.aigw.run/env/<key>: VAR` replaces the key's value with the
//!    environment variable `VAR`, and `${VAR}` inside a value expands from the
//!    environment, as the upstream standalone runner does. A missing variable is an
//!    error naming it.
//! 2. a secrets directory: the file `<dir>/<namespace>/<name>/<key>` (a trailing newline
//!    is trimmed), the layout of a mounted Kubernetes Secret volume per namespace.
//! 3. the environment, when enabled: `AIGW_SECRET_<NAMESPACE>_<NAME>_<KEY>`, upper case,
//!    every character other than `A-Z0-9` replaced by `_` (so `default/openai-apikey`
//!    key `apiKey` is `AIGW_SECRET_DEFAULT_OPENAI_APIKEY_APIKEY`).

use super::lines::DocCtx;
use super::meta::{ObjectMeta, Source};
use crate::error::ConfigIssue;
use crate::secret::Secret;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Annotation prefix of the standalone runner's per-key env substitution.
pub(crate) const SUBSTITUTION_ANNOTATION_PREFIX: &str = "substitution.aigw.run/env/";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSecret {
    #[allow(dead_code)]
    pub api_version: String,
    #[allow(dead_code)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub immutable: Option<bool>,
}

/// A loaded `Secret`, values decoded (but not yet env-expanded).
#[derive(Debug, Clone)]
pub struct SecretDocument {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// `type`.
    pub secret_type: Option<String>,
    /// Decoded values by key.
    pub data: BTreeMap<String, Secret>,
    /// Where it came from.
    pub source: Source,
}

impl SecretDocument {
    pub(crate) fn from_raw(
        raw: RawSecret,
        source: Source,
        ctx: &DocCtx<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Self> {
        let mut data = BTreeMap::new();
        let mut ok = true;
        for (k, v) in raw.data {
            let cleaned: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(s) => {
                        data.insert(k, Secret::new(s));
                    }
                    Err(_) => {
                        issues.push(ctx.issue(
                            format!("data.{k}"),
                            "decoded value is not UTF-8 text; put text credentials in stringData",
                        ));
                        ok = false;
                    }
                },
                Err(_) => {
                    issues.push(ctx.issue(
                        format!("data.{k}"),
                        "not valid base64; use stringData for plain text values",
                    ));
                    ok = false;
                }
            }
        }
        for (k, v) in raw.string_data {
            data.insert(k, Secret::new(v));
        }
        ok.then_some(Self {
            metadata: raw.metadata,
            secret_type: raw.secret_type,
            data,
            source,
        })
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        self.metadata.key()
    }
}

/// Why a secret reference did not resolve. Never contains secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretLookupError {
    /// No source has the Secret.
    NotFound {
        /// `namespace/name`.
        secret: String,
        /// The key wanted.
        key: String,
        /// Where we looked.
        tried: String,
    },
    /// The Secret exists but lacks the key.
    MissingKey {
        /// `namespace/name`.
        secret: String,
        /// The key wanted.
        key: String,
        /// Keys present.
        present: Vec<String>,
    },
    /// A `${VAR}` or substitution annotation names an unset variable.
    MissingEnv {
        /// `namespace/name`.
        secret: String,
        /// The key.
        key: String,
        /// The variable.
        var: String,
    },
}

impl fmt::Display for SecretLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { secret, key, tried } => write!(
                f,
                "Secret {secret} (key {key:?}) is not defined; looked in {tried}"
            ),
            Self::MissingKey {
                secret,
                key,
                present,
            } => write!(
                f,
                "Secret {secret} has no key {key:?} (it has: {})",
                if present.is_empty() {
                    "no keys".to_string()
                } else {
                    present.join(", ")
                }
            ),
            Self::MissingEnv { secret, key, var } => write!(
                f,
                "Secret {secret} key {key:?} refers to environment variable {var}, which is not set"
            ),
        }
    }
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Resolves secret references.
#[derive(Clone)]
pub struct SecretSource {
    documents: BTreeMap<String, SecretDocument>,
    dir: Option<PathBuf>,
    env_fallback: bool,
    env: EnvLookup,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSource")
            .field("documents", &self.documents.keys().collect::<Vec<_>>())
            .field("dir", &self.dir)
            .field("env_fallback", &self.env_fallback)
            .finish()
    }
}

impl Default for SecretSource {
    fn default() -> Self {
        Self {
            documents: BTreeMap::new(),
            dir: None,
            env_fallback: false,
            env: Arc::new(|k| std::env::var(k).ok()),
        }
    }
}

impl SecretSource {
    /// Resolves from the Secret documents of a configuration (with `${VAR}` expansion
    /// from the process environment).
    pub fn from_config(config: &super::Config) -> Self {
        let mut s = Self::default();
        for doc in &config.secrets {
            s.documents.insert(doc.key(), doc.clone());
        }
        s
    }

    /// Also looks in `<dir>/<namespace>/<name>/<key>`.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Also looks in `AIGW_SECRET_<NAMESPACE>_<NAME>_<KEY>` variables.
    pub fn with_env_fallback(mut self) -> Self {
        self.env_fallback = true;
        self
    }

    /// Replaces the environment lookup (for tests and embedders).
    pub fn with_env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// The environment variable name used for the env fallback.
    pub fn env_var_name(namespace: &str, name: &str, key: &str) -> String {
        let norm = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!(
            "AIGW_SECRET_{}_{}_{}",
            norm(namespace),
            norm(name),
            norm(key)
        )
    }

    /// Whether a Secret named `namespace/name` is known to any source (the env fallback
    /// counts as known only if a variable for `key` is set).
    pub fn knows(&self, namespace: &str, name: &str, key: &str) -> bool {
        self.resolve(namespace, name, key).is_ok()
            || self.documents.contains_key(&format!("{namespace}/{name}"))
    }

    /// Resolves one key of a Secret.
    pub fn resolve(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Secret, SecretLookupError> {
        let id = format!("{namespace}/{name}");
        if let Some(doc) = self.documents.get(&id) {
            let annotation = format!("{SUBSTITUTION_ANNOTATION_PREFIX}{key}");
            if let Some(var) = doc.metadata.annotations.get(&annotation) {
                return (self.env)(var).map(Secret::new).ok_or_else(|| {
                    SecretLookupError::MissingEnv {
                        secret: id.clone(),
                        key: key.to_string(),
                        var: var.clone(),
                    }
                });
            }
            return match doc.data.get(key) {
                Some(v) => self.expand(v.expose()).map(Secret::new).map_err(|var| {
                    SecretLookupError::MissingEnv {
                        secret: id.clone(),
                        key: key.to_string(),
                        var,
                    }
                }),
                None => Err(SecretLookupError::MissingKey {
                    secret: id,
                    key: key.to_string(),
                    present: doc.data.keys().cloned().collect(),
                }),
            };
        }
        let mut tried = vec!["the loaded Secret documents".to_string()];
        if let Some(dir) = &self.dir {
            let path = dir.join(namespace).join(name).join(key);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Ok(Secret::new(text.trim_end_matches(['\n', '\r']).to_string()));
            }
            tried.push(path.display().to_string());
        }
        if self.env_fallback {
            let var = Self::env_var_name(namespace, name, key);
            if let Some(v) = (self.env)(&var) {
                return Ok(Secret::new(v));
            }
            tried.push(format!("${var}"));
        }
        Err(SecretLookupError::NotFound {
            secret: id,
            key: key.to_string(),
            tried: tried.join(", "),
        })
    }

    /// Every key of a Secret with its value (each resolved as [`Self::resolve`] does),
    /// sorted by key: from a loaded document, else from `<dir>/<namespace>/<name>/`
    /// (hidden entries, such as a mounted volume's `..data`, skipped). The environment
    /// fallback cannot enumerate keys.
    pub fn entries(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<(String, Secret)>, SecretLookupError> {
        let mut keys: Vec<String> = match self.documents.get(&format!("{namespace}/{name}")) {
            Some(doc) => doc.data.keys().cloned().collect(),
            None => self
                .dir
                .as_ref()
                .and_then(|d| std::fs::read_dir(d.join(namespace).join(name)).ok())
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.path().is_file())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|f| !f.starts_with('.'))
                        .collect()
                })
                .unwrap_or_default(),
        };
        keys.sort();
        if keys.is_empty() {
            return Err(SecretLookupError::NotFound {
                secret: format!("{namespace}/{name}"),
                key: "(any)".into(),
                tried: "the loaded Secret documents and the secrets directory".into(),
            });
        }
        keys.into_iter()
            .map(|k| self.resolve(namespace, name, &k).map(|v| (k, v)))
            .collect()
    }

    /// Expands `${VAR}` references; `Err(var)` names the first unset one. `$${` is a
    /// literal `${`.
    fn expand(&self, value: &str) -> Result<String, String> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                match tail.find('}') {
                    Some(end) => {
                        let var = &tail[..end];
                        match (self.env)(var) {
                            Some(v) => out.push_str(&v),
                            None => return Err(var.to_string()),
                        }
                        rest = &tail[end + 1..];
                    }
                    None => {
                        out.push_str(after);
                        rest = "";
                    }
                }
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_env() {
        let s = SecretSource::default().with_env_lookup(|k| (k == "A").then(|| "x".to_string()));
        assert_eq!(s.expand("pre-${A}-post").unwrap(), "pre-x-post");
        assert_eq!(s.expand("$${A}").unwrap(), "${A}");
        assert_eq!(s.expand("${B}").unwrap_err(), "B");
        assert_eq!(s.expand("cost $5").unwrap(), "cost $5");
    }

    #[test]
    fn env_names() {
        assert_eq!(
            SecretSource::env_var_name("default", "openai-apikey", "apiKey"),
            "AIGW_SECRET_DEFAULT_OPENAI_APIKEY_APIKEY"
        );
    }
}
