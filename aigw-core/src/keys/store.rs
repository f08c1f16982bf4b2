//! Where virtual keys live.
//!
//! A store holds the keys and a version counter that moves on every change, so a
//! replica can poll one number cheaply and reload only when it moved. Keys are never
//! deleted: a revoked key stays, marked, so its id is never reused and its history
//! (who, when) stays visible.

use super::StoredKey;
use crate::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A place keys are kept, shared by every replica that points at it.
///
/// ```
/// use aigw_core::keys::{KeyStore, MemoryKeyStore};
/// # async fn demo() -> aigw_core::Result<()> {
/// let store = MemoryKeyStore::default();
/// assert_eq!(store.version().await?, 0);
/// assert!(store.load().await?.is_empty());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every key, revoked ones included.
    async fn load(&self) -> Result<Vec<StoredKey>>;
    /// Inserts or replaces a key (by id) and moves the version.
    async fn save(&self, key: &StoredKey) -> Result<()>;
    /// The change counter.
    async fn version(&self) -> Result<u64>;
    /// Where the keys are, for logs (no credentials).
    fn describe(&self) -> String;
}

/// Keys in process memory (tests, embedders with their own persistence).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    inner: Mutex<FileContent>,
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn load(&self) -> Result<Vec<StoredKey>> {
        let g = self.inner.lock().map_err(|_| poisoned())?;
        Ok(g.keys.values().cloned().collect())
    }

    async fn save(&self, key: &StoredKey) -> Result<()> {
        let mut g = self.inner.lock().map_err(|_| poisoned())?;
        g.keys.insert(key.info.id.clone(), key.clone());
        g.version += 1;
        Ok(())
    }

    async fn version(&self) -> Result<u64> {
        Ok(self.inner.lock().map_err(|_| poisoned())?.version)
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

fn poisoned() -> Error {
    Error::internal("key store lock poisoned")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContent {
    version: u64,
    keys: BTreeMap<String, StoredKey>,
}

/// Keys in one JSON file, for a single instance without Redis.
///
/// Every change rewrites the file atomically: the new content goes to a temporary file
/// in the same directory, is flushed to disk (`fsync`), renamed over the old one, and
/// the directory is synced, so a crash leaves either the old file or the new one. The
/// file holds salts and digests, never a key; it is created readable by its owner only.
#[derive(Debug)]
pub struct FileKeyStore {
    path: PathBuf,
    /// Serialises writers in this process (read-modify-write).
    lock: tokio::sync::Mutex<()>,
}

impl FileKeyStore {
    /// A store at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn io(&self, e: &std::io::Error) -> Error {
        Error::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    async fn read(&self) -> Result<FileContent> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Io {
                path: self.path.display().to_string(),
                message: format!("not a key file: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileContent::default()),
            Err(e) => Err(self.io(&e)),
        }
    }

    async fn write(&self, content: &FileContent) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(content)
            .map_err(|e| Error::internal(format!("key file: {e}")))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| Error::internal(format!("key file writer: {e}")))?
            .map_err(|e| self.io(&e))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "keys".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the directory entry is.
    #[cfg(unix)]
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn load(&self) -> Result<Vec<StoredKey>> {
        Ok(self.read().await?.keys.into_values().collect())
    }

    async fn save(&self, key: &StoredKey) -> Result<()> {
        let _g = self.lock.lock().await;
        let mut content = self.read().await?;
        content.keys.insert(key.info.id.clone(), key.clone());
        content.version += 1;
        self.write(&content).await
    }

    async fn version(&self) -> Result<u64> {
        Ok(self.read().await?.version)
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}
