//! What a limit does while its store cannot be reached, set per policy by annotation.

use crate::config::Resource;
use crate::error::ConfigIssue;

/// The annotation on a BackendTrafficPolicy or QuotaPolicy choosing what its limits do
/// while the store (Redis) is unreachable: `open` (let requests through) or `closed`
/// (refuse them with a 503). Without it the process-wide default applies
/// (`--rate-limit-fail-closed`, `--quota-fail-closed`).
pub const FAILURE_MODE_ANNOTATION: &str = "aigw.run/limit-failure-mode";

/// The policy's failure mode: `Some(true)` for fail closed, `Some(false)` for fail open,
/// `None` when not annotated. A value other than `open` or `closed` is an issue (a typo
/// must not silently pick the default).
pub(crate) fn fail_closed<S>(policy: &Resource<S>, issues: &mut Vec<ConfigIssue>) -> Option<bool> {
    let value = policy.metadata.annotations.get(FAILURE_MODE_ANNOTATION)?;
    match value.trim() {
        "open" => Some(false),
        "closed" => Some(true),
        other => {
            issues.push(ConfigIssue {
                file: policy.source.file.clone(),
                line: None,
                document: policy.label(),
                field: format!("metadata.annotations[{FAILURE_MODE_ANNOTATION}]"),
                message: format!("`{other}` is not a failure mode: use `open` or `closed`"),
            });
            None
        }
    }
}
