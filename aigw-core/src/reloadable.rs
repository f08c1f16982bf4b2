//! A value read from a file and swapped whole when the file changes (the price table,
//! the budget rules): readers take the value in force once ([`FileBacked::current`])
//! and keep it for the request, so a reload is atomic for every request.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A value that can be read from a file.
pub trait Loadable: Sized + Send + Sync + 'static {
    /// What the file is, in errors (`pricing file`).
    const KIND: &'static str;
    /// Parses and validates the file's text; `origin` names it in errors.
    fn parse(text: &str, origin: &str) -> Result<Self>;
    /// How many entries the value holds, for logs.
    fn entry_count(&self) -> usize;
    /// Reads and validates the file.
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// The error of an invalid file of `kind` read from `origin`.
pub(crate) fn invalid(kind: &str, origin: &str, message: String) -> Error {
    Error::InvalidConfig {
        issues: vec![crate::error::ConfigIssue {
            file: origin.to_owned(),
            line: None,
            document: kind.to_owned(),
            field: String::new(),
            message,
        }],
    }
}

/// The file's identity as far as change detection goes: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A value swapped whole on reload.
#[derive(Debug)]
pub struct FileBacked<T> {
    value: arc_swap::ArcSwap<T>,
    path: Option<PathBuf>,
    seen: Mutex<Stamp>,
}

impl<T: Loadable> FileBacked<T> {
    /// A fixed value.
    pub fn new(value: T) -> Self {
        Self {
            value: arc_swap::ArcSwap::from_pointee(value),
            path: None,
            seen: Mutex::new(None),
        }
    }

    /// The value in `path`, which [`FileBacked::reload`] reads again.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let seen = stamp(&path);
        let value = T::load(&path)?;
        Ok(Self {
            value: arc_swap::ArcSwap::from_pointee(value),
            path: Some(path),
            seen: Mutex::new(seen),
        })
    }

    /// The file the value came from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The value now.
    pub fn current(&self) -> Arc<T> {
        self.value.load_full()
    }

    /// Replaces the value at once.
    pub fn swap(&self, value: T) {
        self.value.store(Arc::new(value));
    }

    /// Reads the file again and swaps the value in when it is valid; on an error the
    /// value in force stays and the error is returned. Returns the entry count.
    pub fn reload(&self) -> Result<usize> {
        let Some(path) = &self.path else {
            return Ok(self.current().entry_count());
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = stamp(path);
        }
        let value = T::load(path)?;
        let n = value.entry_count();
        self.swap(value);
        Ok(n)
    }

    /// Reloads when the file's modification time or size changed since the last
    /// (re)load: `None` when unchanged, else the reload's outcome. A failed reload is
    /// not retried until the file changes again.
    pub fn reload_if_changed(&self) -> Option<Result<usize>> {
        let path = self.path.as_ref()?;
        let now = stamp(path);
        let changed = self.seen.lock().map(|s| *s != now).unwrap_or(false);
        changed.then(|| self.reload())
    }
}
