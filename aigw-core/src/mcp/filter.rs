//! A backend's `toolSelector`: include / includeRegex / exclude / excludeRegex, deny
//! wins; applied to `tools/list` and `tools/call` alike.

use crate::config::MCPToolFilter;
use regex::Regex;
use std::collections::HashSet;

/// A compiled tool selector.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolSelector {
    include: HashSet<String>,
    include_re: Vec<Regex>,
    exclude: HashSet<String>,
    exclude_re: Vec<Regex>,
}

impl ToolSelector {
    /// Compiles a selector; regexes are unanchored (a match anywhere in the name), as
    /// upstream's `MatchString` is.
    pub(crate) fn compile(f: &MCPToolFilter) -> Result<Self, String> {
        let set = |v: &Option<Vec<String>>| v.iter().flatten().cloned().collect();
        let res = |v: &Option<Vec<String>>| -> Result<Vec<Regex>, String> {
            v.iter()
                .flatten()
                .map(|p| {
                    Regex::new(p).map_err(|e| format!("invalid regular expression {p:?}: {e}"))
                })
                .collect()
        };
        Ok(Self {
            include: set(&f.include),
            include_re: res(&f.include_regex)?,
            exclude: set(&f.exclude),
            exclude_re: res(&f.exclude_regex)?,
        })
    }

    /// Whether the tool is selected.
    pub(crate) fn allows(&self, tool: &str) -> bool {
        if self.exclude.contains(tool) || self.exclude_re.iter().any(|r| r.is_match(tool)) {
            return false;
        }
        if !self.include.is_empty() {
            return self.include.contains(tool);
        }
        if !self.include_re.is_empty() {
            return self.include_re.iter().any(|r| r.is_match(tool));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(inc: &[&str], inc_re: &[&str], exc: &[&str], exc_re: &[&str]) -> ToolSelector {
        let v = |x: &[&str]| (!x.is_empty()).then(|| x.iter().map(|s| s.to_string()).collect());
        ToolSelector::compile(&MCPToolFilter {
            include: v(inc),
            include_regex: v(inc_re),
            exclude: v(exc),
            exclude_regex: v(exc_re),
        })
        .unwrap()
    }

    #[test]
    fn deny_wins() {
        let s = sel(&["a", "b"], &[], &["b"], &[]);
        assert!(s.allows("a"));
        assert!(!s.allows("b"));
        assert!(!s.allows("c"));
        let s = sel(&[], &["^get_.*"], &[], &["secret"]);
        assert!(s.allows("get_issue"));
        assert!(!s.allows("get_secret"));
        assert!(!s.allows("list"));
        let s = sel(&[], &[], &[], &["^delete"]);
        assert!(s.allows("list"));
        assert!(!s.allows("delete_repo"));
    }
}
