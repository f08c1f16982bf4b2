//! Where a secret value comes from: inline, a file (re-read when it changes), or an
//! environment variable.

use crate::error::AuthError;
use aigw_core::Secret;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The origin of one secret value (an API key, a credentials file, a token).
///
/// Files are mounted Kubernetes Secrets or projected service-account tokens, which are
/// replaced in place on rotation; [`KeySource::File`] notices a changed modification
/// time or size and re-reads, so no restart is needed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// A value resolved at configuration time (e.g. from a Kubernetes Secret).
    Value(Secret),
    /// A file whose trimmed contents are the value.
    File(PathBuf),
    /// An environment variable, read on every use.
    Env(String),
}

impl KeySource {
    /// A fixed value.
    pub fn value(v: impl Into<Secret>) -> Self {
        Self::Value(v.into())
    }

    /// A file, re-read when it changes.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File(path.into())
    }

    /// An environment variable.
    pub fn env(name: impl Into<String>) -> Self {
        Self::Env(name.into())
    }
}

#[derive(Clone)]
struct Cached {
    modified: Option<SystemTime>,
    len: u64,
    value: Secret,
}

/// A [`KeySource`] with the file cache that makes repeated reads cheap.
#[derive(Debug)]
pub struct SecretReader {
    source: KeySource,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

impl SecretReader {
    /// Wraps a source.
    pub const fn new(source: KeySource) -> Self {
        Self {
            source,
            cache: Mutex::new(None),
        }
    }

    /// The source being read.
    pub const fn source(&self) -> &KeySource {
        &self.source
    }

    /// Reads the current value. `policy` names the policy in errors.
    pub async fn read(&self, policy: &str) -> Result<Secret, AuthError> {
        match &self.source {
            KeySource::Value(v) => non_empty(policy, v.clone(), "the configured value"),
            KeySource::Env(name) => match std::env::var(name) {
                Ok(v) => non_empty(
                    policy,
                    Secret::new(v.trim().to_owned()),
                    &format!("environment variable {name}"),
                ),
                Err(_) => Err(AuthError::source(
                    policy,
                    format!("environment variable {name} is not set"),
                )),
            },
            KeySource::File(path) => self.read_file(policy, path).await,
        }
    }

    async fn read_file(&self, policy: &str, path: &Path) -> Result<Secret, AuthError> {
        let meta = tokio::fs::metadata(path).await.map_err(|e| {
            AuthError::source(
                policy,
                format!("cannot stat {}: {}", path.display(), e.kind()),
            )
        })?;
        let modified = meta.modified().ok();
        let len = meta.len();
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && c.modified.is_some()
            && c.modified == modified
            && c.len == len
        {
            return Ok(c.value.clone());
        }
        let bytes = tokio::fs::read(path).await.map_err(|e| {
            AuthError::source(
                policy,
                format!("cannot read {}: {}", path.display(), e.kind()),
            )
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| AuthError::source(policy, format!("{} is not UTF-8", path.display())))?;
        let value = non_empty(
            policy,
            Secret::new(text.trim().to_owned()),
            &path.display().to_string(),
        )?;
        tracing::debug!(policy, path = %path.display(), "read credential file");
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            modified,
            len,
            value: value.clone(),
        });
        Ok(value)
    }
}

fn non_empty(policy: &str, v: Secret, what: &str) -> Result<Secret, AuthError> {
    if v.is_empty() {
        Err(AuthError::source(policy, format!("{what} is empty")))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn file_change_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "first-key\n").unwrap();
        let r = SecretReader::new(KeySource::file(&path));
        assert_eq!(r.read("p").await.unwrap().expose(), "first-key");
        // Same length, later mtime: only the mtime tells the change apart.
        std::fs::write(&path, "other-key\n").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(r.read("p").await.unwrap().expose(), "other-key");
    }

    #[tokio::test]
    async fn missing_file_and_env_are_errors_naming_the_source() {
        let r = SecretReader::new(KeySource::file("/nonexistent/aigw/key"));
        let e = r.read("ns/p").await.unwrap_err().to_string();
        assert!(
            e.contains("ns/p") && e.contains("/nonexistent/aigw/key"),
            "{e}"
        );
        let r = SecretReader::new(KeySource::env("AIGW_AUTH_TEST_SURELY_UNSET"));
        let e = r.read("ns/p").await.unwrap_err().to_string();
        assert!(e.contains("AIGW_AUTH_TEST_SURELY_UNSET"), "{e}");
    }

    #[tokio::test]
    async fn empty_value_is_rejected() {
        let r = SecretReader::new(KeySource::value(""));
        assert!(r.read("p").await.is_err());
    }
}
