//! The audit trail: a separate stream of JSON lines, one per security-relevant event —
//! every configuration load and reload (what changed, object by object, by checksum),
//! every client-authentication failure (who, which route, why — never the presented
//! credential), and administrative actions.
//!
//! The stream is process-wide, like a log: install a sink once ([`install`]), and every
//! packaging's hooks ([`emit`]) write to it; with none installed an event costs one
//! atomic load. Field reference: `docs/observability.md#audit-log`.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Where audit lines go.
pub trait AuditSink: Send + Sync {
    /// Writes one line (without its newline). Called on the thread of the event.
    fn write_line(&self, line: &str);
}

/// Lines appended to a writer (a file, stdout), flushed one by one: an audit record is
/// on disk when the event's request is answered.
pub struct WriterSink<W: Write + Send>(Mutex<W>);

impl<W: Write + Send> WriterSink<W> {
    /// A sink over `w`.
    pub const fn new(w: W) -> Self {
        Self(Mutex::new(w))
    }
}

impl<W: Write + Send> std::fmt::Debug for WriterSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterSink")
    }
}

impl<W: Write + Send> AuditSink for WriterSink<W> {
    fn write_line(&self, line: &str) {
        let mut w = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if writeln!(w, "{line}").and_then(|()| w.flush()).is_err() {
            tracing::error!("the audit log could not be written");
        }
    }
}

static SINK: OnceLock<Box<dyn AuditSink>> = OnceLock::new();

/// Installs the audit trail a `--audit-log` flag names: `-` for standard output, else a
/// file appended to (created when missing).
///
/// # Errors
/// When the file cannot be opened.
pub fn install_path(path: &str) -> std::io::Result<()> {
    let sink: Box<dyn AuditSink> = if path == "-" {
        Box::new(WriterSink::new(std::io::stdout()))
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Box::new(WriterSink::new(file))
    };
    if !install(sink) {
        tracing::warn!("an audit log is installed already; --audit-log {path} is not used");
    }
    Ok(())
}

/// Installs the process's audit sink; `false` when one was installed already.
pub fn install(sink: Box<dyn AuditSink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Whether an audit sink is installed.
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// One audit event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuditEvent<'a> {
    /// A configuration was loaded (at start) or reloaded, or a reload was rejected.
    Config {
        /// `load` at start-up, `reload` afterwards.
        action: &'static str,
        /// The files read.
        sources: &'a [String],
        /// Object changes against the previous configuration (every object on a load).
        changes: &'a [ObjectChange],
        /// Why the configuration was rejected (then the previous one stays).
        error: Option<&'a str>,
    },
    /// A client failed authentication.
    AuthFailure {
        /// The client's address.
        peer: Option<IpAddr>,
        /// Who the client claimed to be, when that is not itself a secret: a key's
        /// name, a JWT's unverified `sub`, never a key or token.
        claimed: Option<&'a str>,
        /// How it presented itself: `bearer`, `x-api-key`, `api-key`, `none`.
        scheme: &'a str,
        /// The request path.
        path: &'a str,
        /// The route, when known.
        route: Option<&'a str>,
        /// Why it was refused.
        reason: &'a str,
    },
    /// An administrative action.
    Admin {
        /// What was done.
        action: &'a str,
        /// Who did it.
        actor: &'a str,
        /// On what.
        target: &'a str,
    },
}

/// How a refused client presented itself, for [`AuditEvent::AuthFailure`]: `bearer`,
/// `x-api-key`, `api-key`, `authorization` (another scheme) or `none` — never what.
pub fn presented_scheme(headers: &http::HeaderMap) -> &'static str {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    if authorization.is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ")) {
        "bearer"
    } else if headers.contains_key("x-api-key") {
        "x-api-key"
    } else if headers.contains_key("api-key") {
        "api-key"
    } else if authorization.is_some() {
        "authorization"
    } else {
        "none"
    }
}

/// Writes `event` to the audit sink, if one is installed.
pub fn emit(event: &AuditEvent<'_>) {
    let Some(sink) = SINK.get() else { return };
    sink.write_line(&render(event, SystemTime::now()).to_string());
}

fn render(event: &AuditEvent<'_>, now: SystemTime) -> Value {
    let ts = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut v = match event {
        AuditEvent::Config {
            action,
            sources,
            changes,
            error,
        } => json!({
            "event": format!("config.{action}"),
            "sources": sources,
            "outcome": if error.is_some() { "rejected" } else { "applied" },
            "error": error,
            "changes": changes.iter().map(|c| json!({
                "change": c.change,
                "kind": c.kind,
                "namespace": c.namespace,
                "name": c.name,
                "checksum": c.checksum,
            })).collect::<Vec<_>>(),
        }),
        AuditEvent::AuthFailure {
            peer,
            claimed,
            scheme,
            path,
            route,
            reason,
        } => json!({
            "event": "auth.failure",
            "peer": peer.map(|p| p.to_string()),
            "claimed": claimed,
            "scheme": scheme,
            "path": path,
            "route": route,
            "reason": reason,
        }),
        AuditEvent::Admin {
            action,
            actor,
            target,
        } => json!({"event": "admin", "action": action, "actor": actor, "target": target}),
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("ts".into(), json!(ts));
        o.retain(|_, v| !v.is_null());
    }
    v
}

/// One object of a configuration, by identity and content checksum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectDigest {
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// SHA-256 of the object's canonical JSON (hex). For Secrets, of the data salted
    /// with a per-process key, so the trail shows that a Secret changed without giving
    /// a dictionary check on its value.
    pub checksum: String,
}

/// How an object changed between two configurations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The new checksum (the old one for `removed`).
    pub checksum: String,
}

/// The objects of a set of YAML documents (multi-document files), by kind, namespace
/// and name. Documents that do not parse or have no kind and name are skipped (the
/// configuration loader reports them).
pub fn digest_yaml(texts: &[String]) -> Vec<ObjectDigest> {
    let mut out = Vec::new();
    for text in texts {
        let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) else {
            continue;
        };
        for doc in docs {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind.is_empty() || name.is_empty() {
                continue;
            }
            let namespace = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            out.push(ObjectDigest {
                kind: kind.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                checksum: checksum(kind, &doc),
            });
        }
    }
    out.sort();
    out
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn checksum(kind: &str, doc: &Value) -> String {
    let mut h = Sha256::new();
    if kind == "Secret" {
        static SALT: OnceLock<[u8; 16]> = OnceLock::new();
        let salt = SALT.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut out = [0u8; 16];
            for chunk in out.chunks_mut(8) {
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u128(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                chunk.copy_from_slice(&hasher.finish().to_le_bytes());
            }
            out
        });
        h.update(salt);
    }
    h.update(canonical(doc).to_string().as_bytes());
    hex::encode(h.finalize())
}

/// The changes from `before` to `after` (both sorted, as [`digest_yaml`] returns them).
pub fn diff(before: &[ObjectDigest], after: &[ObjectDigest]) -> Vec<ObjectChange> {
    let key = |d: &ObjectDigest| (d.kind.clone(), d.namespace.clone(), d.name.clone());
    let change = |c: &'static str, d: &ObjectDigest| ObjectChange {
        change: c,
        kind: d.kind.clone(),
        namespace: d.namespace.clone(),
        name: d.name.clone(),
        checksum: d.checksum.clone(),
    };
    let mut out = Vec::new();
    for a in after {
        match before.iter().find(|b| key(b) == key(a)) {
            None => out.push(change("added", a)),
            Some(b) if b.checksum != a.checksum => out.push(change("changed", a)),
            Some(_) => {}
        }
    }
    for b in before {
        if !after.iter().any(|a| key(a) == key(b)) {
            out.push(change("removed", b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: key}\nstringData: {apiKey: sk-one}\n---\nkind: AIServiceBackend\nmetadata: {name: b, namespace: ns}\nspec: {schema: {name: OpenAI}}\n";
    const B: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: key}\nstringData: {apiKey: sk-two}\n---\nkind: AIGatewayRoute\nmetadata: {name: r}\nspec: {}\n";

    #[test]
    fn reload_lists_added_removed_and_changed_objects() {
        let (a, b) = (digest_yaml(&[A.to_owned()]), digest_yaml(&[B.to_owned()]));
        assert_eq!(a.len(), 2);
        let d = diff(&a, &b);
        let summary: Vec<(&str, &str)> = d.iter().map(|c| (c.change, c.kind.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("added", "AIGatewayRoute"),
                ("changed", "Secret"),
                ("removed", "AIServiceBackend")
            ]
        );
        // Key order does not change a checksum.
        let reordered = "kind: AIServiceBackend\nspec: {schema: {name: OpenAI}}\nmetadata: {namespace: ns, name: b}\n";
        assert_eq!(
            digest_yaml(&[reordered.to_owned()])[0].checksum,
            a[0].checksum
        );
    }

    #[test]
    fn lines_carry_no_secret() {
        let changes = diff(&[], &digest_yaml(&[A.to_owned()]));
        let line = render(
            &AuditEvent::Config {
                action: "load",
                sources: &["a.yaml".to_owned()],
                changes: &changes,
                error: None,
            },
            SystemTime::UNIX_EPOCH,
        )
        .to_string();
        assert!(!line.contains("sk-one"), "{line}");
        assert!(
            line.contains("\"event\":\"config.load\"") && line.contains("\"outcome\":\"applied\"")
        );
        let line = render(
            &AuditEvent::AuthFailure {
                peer: Some("127.0.0.1".parse().unwrap()),
                claimed: None,
                scheme: "bearer",
                path: "/v1/chat/completions",
                route: None,
                reason: "unknown API key",
            },
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(line["event"], "auth.failure");
        assert!(line.get("route").is_none());
    }
}
