//! Configuration hot reload: poll the files' modification times, rebuild on change,
//! swap only a configuration that loads and compiles.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What the watched files look like: every YAML file with its length and mtime.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn walk(p: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(meta) = std::fs::metadata(p) else {
        out.push((p.to_path_buf(), u64::MAX, None));
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
        out.push((p.to_path_buf(), meta.len(), meta.modified().ok()));
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

/// Polls `paths` every `interval` and calls `reload` after a change. A change is acted
/// on once the files have been stable for one interval, so an editor's partial write
/// is not loaded half-way.
pub async fn watch<F>(paths: Vec<PathBuf>, interval: Duration, mut reload: F)
where
    F: FnMut() + Send,
{
    let mut current = Fingerprint::of(&paths);
    let mut pending: Option<Fingerprint> = None;
    loop {
        tokio::time::sleep(interval).await;
        let now = Fingerprint::of(&paths);
        match pending.take() {
            Some(p) if p == now => {
                current = now;
                reload();
            }
            _ if now != current => pending = Some(now),
            _ => {}
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
}
