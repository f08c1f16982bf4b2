//! Loading: files and directories parsed document by document, then validated as one
//! configuration, every issue located by file, document and line.

use super::{Config, ConfigIssue, SecretSource, lines, parse, parts, validate};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Config {
    /// Parses and validates YAML text. `file_label` names the source in errors.
    pub fn from_yaml_str(text: &str, file_label: &str) -> Result<Self> {
        let mut config = Self::default();
        let mut issues = Vec::new();
        let mut lines = lines::Lines::default();
        parse::parse_file(&mut config, text, file_label, &mut issues, &mut lines);
        config.finish(issues, lines)
    }

    /// Loads files and directories (recursively, `*.yaml` and `*.yml`, in sorted order)
    /// as one configuration, and validates it.
    pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut files = Vec::new();
        for p in paths {
            collect_files(p.as_ref(), &mut files)?;
        }
        let mut texts = Vec::with_capacity(files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::Io {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            texts.push((file.display().to_string(), text));
        }
        // A configuration split into parts loads only as one whole generation.
        let incomplete = parts::check(&texts);
        if !incomplete.is_empty() {
            return Err(Error::InvalidConfig { issues: incomplete });
        }
        let mut config = Self::default();
        let mut issues = Vec::new();
        let mut lines = lines::Lines::default();
        for (file, text) in &texts {
            parse::parse_file(&mut config, text, file, &mut issues, &mut lines);
        }
        config.finish(issues, lines)
    }

    fn finish(mut self, mut issues: Vec<ConfigIssue>, lines: lines::Lines) -> Result<Self> {
        let mut warnings = Vec::new();
        validate::validate(&self, &mut issues, &mut warnings, &lines);
        for issue in issues.iter_mut().chain(warnings.iter_mut()) {
            lines.fill(issue);
        }
        // Reading order: file by file as loaded, top to bottom. The sort is stable, so
        // issues on one line keep the order they were found in.
        let file_rank = |file: &str| self.files.iter().position(|f| f == file);
        for list in [&mut issues, &mut warnings] {
            list.sort_by_key(|i| (file_rank(&i.file), i.line.unwrap_or(0)));
        }
        self.lines = Arc::new(lines);
        if issues.is_empty() {
            self.warnings = warnings;
            Ok(self)
        } else {
            Err(Error::InvalidConfig { issues })
        }
    }

    /// Fails unless every Secret referenced by a BackendSecurityPolicy or MCPRoute
    /// resolves from `source`.
    pub fn check_secrets(&self, source: &SecretSource) -> Result<()> {
        let mut issues = Vec::new();
        let mut warnings = Vec::new();
        validate::check_secret_refs(self, Some(source), &mut issues, &mut warnings);
        for issue in &mut issues {
            self.lines.fill(issue);
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig { issues })
        }
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}
