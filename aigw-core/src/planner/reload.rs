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

fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Every watched file (directories walked recursively, sorted) with its content, or
/// `None` when it cannot be read.
fn walk(p: &Path, out: &mut Vec<(PathBuf, Option<Vec<u8>>)>) {
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
        out.push((p.to_path_buf(), std::fs::read(p).ok()));
    }
}

fn read_all(paths: &[PathBuf]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out
}

impl Fingerprint {
    /// Takes the fingerprint of files and directories (recursively).
    pub fn of(paths: &[PathBuf]) -> Self {
        Self::from_files(&read_all(paths))
    }

    fn from_files(files: &[(PathBuf, Option<Vec<u8>>)]) -> Self {
        Self(
            files
                .iter()
                .map(|(p, b)| (p.clone(), b.as_deref().map(digest)))
                .collect(),
        )
    }
}

/// The watched files as they were when the serving configuration was read: their
/// fingerprint and, for the audit trail, their objects by checksum — both from one
/// read, so an edit racing the start-up is neither missed by the reloader nor folded
/// into the audit's baseline.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    files: Fingerprint,
    sources: Vec<String>,
    objects: Vec<crate::audit::ObjectDigest>,
}

impl Baseline {
    /// Reads the files and directories (recursively) once.
    pub fn take(paths: &[PathBuf]) -> Self {
        let files = read_all(paths);
        let (sources, objects) = if crate::audit::enabled() {
            audit_objects(&files)
        } else {
            (Vec::new(), Vec::new())
        };
        Self {
            files: Fingerprint::from_files(&files),
            sources,
            objects,
        }
    }
}

fn audit_objects(
    files: &[(PathBuf, Option<Vec<u8>>)],
) -> (Vec<String>, Vec<crate::audit::ObjectDigest>) {
    let texts: Vec<String> = files
        .iter()
        .filter_map(|(_, b)| b.as_deref())
        .filter_map(|b| String::from_utf8(b.to_vec()).ok())
        .collect();
    let sources = files.iter().map(|(f, _)| f.display().to_string()).collect();
    (sources, crate::audit::digest_yaml(&texts))
}

fn emit_config(
    action: &'static str,
    sources: &[String],
    previous: &[crate::audit::ObjectDigest],
    objects: &[crate::audit::ObjectDigest],
    error: Option<&str>,
) {
    let changes = crate::audit::diff(previous, objects);
    crate::audit::emit(&crate::audit::AuditEvent::Config {
        action,
        sources,
        changes: &changes,
        error,
    });
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
    /// poll is not missed). A process that read its configuration earlier passes what
    /// it read to [`Reloader::starting_at`] instead.
    pub fn new(
        paths: Vec<PathBuf>,
        load: impl FnMut(&[PathBuf]) -> crate::Result<T> + Send + 'static,
        apply: impl FnMut(T) + Send + 'static,
    ) -> Self {
        Self::starting_at(Baseline::take(&paths), paths, load, apply)
    }

    /// Watches `paths` from `baseline`, taken before the serving configuration was
    /// read: an edit made while the process was starting (after its first read, before
    /// the reloader existed) is then reloaded instead of taken as already serving, and
    /// the audit trail's load event and later diffs start from what was actually read.
    /// Writes the load event.
    pub fn starting_at(
        baseline: Baseline,
        paths: Vec<PathBuf>,
        load: impl FnMut(&[PathBuf]) -> crate::Result<T> + Send + 'static,
        apply: impl FnMut(T) + Send + 'static,
    ) -> Self {
        emit_config("load", &baseline.sources, &[], &baseline.objects, None);
        Self {
            paths,
            current: baseline.files,
            pending: None,
            load: Box::new(load),
            apply: Box::new(apply),
            audited: baseline.objects,
        }
    }

    /// Checks the files; after a change that has been stable for one poll, loads and
    /// applies the new configuration. Returns `None` when nothing was reloaded, else
    /// whether the new configuration was applied (a rejected one is logged and the
    /// serving one stays).
    pub fn poll(&mut self) -> Option<bool> {
        let files = read_all(&self.paths);
        let now = Fingerprint::from_files(&files);
        match self.pending.take() {
            Some(p) if p == now => {
                self.current = now;
                Some(self.reload(&files))
            }
            _ if now != self.current => {
                self.pending = Some(now);
                None
            }
            _ => None,
        }
    }

    /// Loads and applies; the audit event describes `files`, the read that triggered
    /// the reload.
    fn reload(&mut self, files: &[(PathBuf, Option<Vec<u8>>)]) -> bool {
        let result = (self.load)(&self.paths);
        let (sources, objects) = if crate::audit::enabled() {
            audit_objects(files)
        } else {
            (Vec::new(), Vec::new())
        };
        match result {
            Ok(next) => {
                (self.apply)(next);
                tracing::info!(paths = ?self.paths, "configuration reloaded");
                emit_config("reload", &sources, &self.audited, &objects, None);
                self.audited = objects;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration rejected; the previous one stays in use");
                let error = e.to_string();
                emit_config("reload", &sources, &self.audited, &objects, Some(&error));
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
    fn an_edit_racing_start_up_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "1").unwrap();
        let before = Baseline::take(std::slice::from_ref(&a));
        // Written after the serving configuration was read, before the reloader exists.
        std::fs::write(&a, "2").unwrap();
        let mut r = Reloader::starting_at(
            before,
            vec![a.clone()],
            |p: &[PathBuf]| Ok(std::fs::read_to_string(&p[0]).unwrap()),
            |_| {},
        );
        assert_eq!(r.poll(), None);
        assert_eq!(r.poll(), Some(true));
        assert_eq!(r.poll(), None);
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
