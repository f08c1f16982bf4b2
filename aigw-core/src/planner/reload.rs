//! Configuration hot reload, the same in every packaging: the watched files and
//! directories (recursively, every `.yaml`/`.yml`/`.json`) are fingerprinted by
//! content; a change is acted on once the files have been stable for one poll, so an
//! editor's partial write is not loaded half-way; the new configuration is loaded,
//! validated and compiled in full before it replaces the serving one, and one that
//! fails leaves the previous one serving. What outlives a configuration (credential
//! providers of unchanged policies, rate-limit counters) is carried by the
//! [`Loader`](super::Loader) the reload builds with.
//!
//! The adapters own the timer (`Reloader::poll` from a Tokio interval), so this
//! module needs no async runtime.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

/// What the watched files look like: every YAML file with a digest of its content
/// (`None` when it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<u64>)>);

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn digest(p: &Path) -> Option<u64> {
    let bytes = std::fs::read(p).ok()?;
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

fn walk(p: &Path, out: &mut Vec<(PathBuf, Option<u64>)>) {
    let Ok(meta) = std::fs::metadata(p) else {
        out.push((p.to_path_buf(), None));
        return;
    };
    if meta.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for e in entries {
                if e.is_dir() || is_yaml(&e) {
                    walk(&e, out);
                }
            }
        }
    } else {
        out.push((p.to_path_buf(), digest(p)));
    }
}

impl Fingerprint {
    /// Takes the fingerprint of files and directories (recursively).
    pub fn of(paths: &[PathBuf]) -> Self {
        let mut out = Vec::new();
        for p in paths {
            walk(p, &mut out);
        }
        Self(out)
    }
}

/// Writes a configuration load of `paths` to the audit trail (when one is installed):
/// every object that differs from `previous`, by checksum. Returns the objects read.
pub fn audit_config(
    action: &'static str,
    paths: &[PathBuf],
    previous: &[crate::audit::ObjectDigest],
    error: Option<&str>,
) -> Vec<crate::audit::ObjectDigest> {
    if !crate::audit::enabled() {
        return Vec::new();
    }
    let mut files = Vec::new();
    for p in paths {
        walk(p, &mut files);
    }
    let texts: Vec<String> = files
        .iter()
        .filter_map(|(f, _)| std::fs::read_to_string(f).ok())
        .collect();
    let sources: Vec<String> = files.iter().map(|(f, _)| f.display().to_string()).collect();
    let objects = crate::audit::digest_yaml(&texts);
    let changes = crate::audit::diff(previous, &objects);
    crate::audit::emit(&crate::audit::AuditEvent::Config {
        action,
        sources: &sources,
        changes: &changes,
        error,
    });
    objects
}

/// Builds a generation from the watched paths.
type LoadFn<T> = dyn FnMut(&[PathBuf]) -> crate::Result<T> + Send;

/// Watches configuration paths and rebuilds on change: `load` builds the new
/// generation from the paths (load, validate, compile), `apply` swaps it in. Call
/// [`Reloader::poll`] on a timer.
pub struct Reloader<T> {
    paths: Vec<PathBuf>,
    current: Fingerprint,
    pending: Option<Fingerprint>,
    load: Box<LoadFn<T>>,
    apply: Box<dyn FnMut(T) + Send>,
    /// The serving configuration's objects, for the audit trail's diffs.
    audited: Vec<crate::audit::ObjectDigest>,
}

impl<T> std::fmt::Debug for Reloader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("paths", &self.paths)
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Reloader<T> {
    /// Watches `paths`, as they are now (an edit made between loading and the first
    /// poll is not missed).
    pub fn new(
        paths: Vec<PathBuf>,
        load: impl FnMut(&[PathBuf]) -> crate::Result<T> + Send + 'static,
        apply: impl FnMut(T) + Send + 'static,
    ) -> Self {
        let audited = audit_config("load", &paths, &[], None);
        Self {
            current: Fingerprint::of(&paths),
            paths,
            pending: None,
            load: Box::new(load),
            apply: Box::new(apply),
            audited,
        }
    }

    /// Compares later polls with `files`, the fingerprint taken before the serving
    /// configuration was read, instead of the files as they are when the reloader is
    /// built: an edit made while the process was starting (after its first read, before
    /// the reloader existed) is then reloaded instead of taken as already serving.
    #[must_use]
    pub fn since(mut self, files: Fingerprint) -> Self {
        self.current = files;
        self
    }

    /// Checks the files; after a change that has been stable for one poll, loads and
    /// applies the new configuration. Returns `None` when nothing was reloaded, else
    /// whether the new configuration was applied (a rejected one is logged and the
    /// serving one stays).
    pub fn poll(&mut self) -> Option<bool> {
        let now = Fingerprint::of(&self.paths);
        match self.pending.take() {
            Some(p) if p == now => {
                self.current = now;
                Some(self.reload())
            }
            _ if now != self.current => {
                self.pending = Some(now);
                None
            }
            _ => None,
        }
    }

    fn reload(&mut self) -> bool {
        match (self.load)(&self.paths) {
            Ok(next) => {
                (self.apply)(next);
                tracing::info!(paths = ?self.paths, "configuration reloaded");
                self.audited = audit_config("reload", &self.paths, &self.audited, None);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration rejected; the previous one stays in use");
                audit_config("reload", &self.paths, &self.audited, Some(&e.to_string()));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_edits_and_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "x: 1").unwrap();
        let paths = vec![dir.path().to_path_buf()];
        let f1 = Fingerprint::of(&paths);
        std::fs::write(&a, "x: 12").unwrap();
        let f2 = Fingerprint::of(&paths);
        assert_ne!(f1, f2);
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        assert_eq!(f2, Fingerprint::of(&paths));
        std::fs::write(dir.path().join("b.yml"), "y: 1").unwrap();
        assert_ne!(f2, Fingerprint::of(&paths));
    }

    #[test]
    fn same_length_edits_count_and_touches_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "x: 1").unwrap();
        let paths = vec![a.clone()];
        let f1 = Fingerprint::of(&paths);
        std::fs::write(&a, "x: 1").unwrap();
        assert_eq!(f1, Fingerprint::of(&paths), "rewritten unchanged");
        std::fs::write(&a, "x: 2").unwrap();
        assert_ne!(f1, Fingerprint::of(&paths), "same length, new content");
    }

    #[test]
    fn reloads_once_stable_and_keeps_the_old_on_error() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "1").unwrap();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sink = applied.clone();
        let mut r = Reloader::new(
            vec![a.clone()],
            |p: &[PathBuf]| {
                let text = std::fs::read_to_string(&p[0]).unwrap();
                text.parse::<u32>()
                    .map_err(|e| crate::Error::internal(e.to_string()))
            },
            move |n| sink.lock().unwrap().push(n),
        );
        assert_eq!(r.poll(), None);
        std::fs::write(&a, "2").unwrap();
        assert_eq!(r.poll(), None, "a change waits for one stable poll");
        assert_eq!(r.poll(), Some(true));
        std::fs::write(&a, "broken").unwrap();
        assert_eq!(r.poll(), None);
        assert_eq!(r.poll(), Some(false));
        assert_eq!(
            r.poll(),
            None,
            "a rejected version is not retried until it changes"
        );
        assert_eq!(*applied.lock().unwrap(), vec![2]);
    }
}
