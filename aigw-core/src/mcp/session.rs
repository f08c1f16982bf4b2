//! The stateless client session: which route it belongs to, who opened it, and for each
//! backend its session id, negotiated protocol version and capabilities — sealed into
//! the `Mcp-Session-Id` the client echoes, so no replica keeps session state.

use super::crypto::SessionCrypto;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Capability bits, upstream's layout.
mod cap {
    pub(super) const TOOLS: u16 = 1;
    pub(super) const TOOLS_LIST_CHANGED: u16 = 1 << 1;
    pub(super) const PROMPTS: u16 = 1 << 2;
    pub(super) const PROMPTS_LIST_CHANGED: u16 = 1 << 3;
    pub(super) const LOGGING: u16 = 1 << 4;
    pub(super) const RESOURCES: u16 = 1 << 5;
    pub(super) const RESOURCES_LIST_CHANGED: u16 = 1 << 6;
    pub(super) const RESOURCES_SUBSCRIBE: u16 = 1 << 7;
    pub(super) const COMPLETIONS: u16 = 1 << 8;
}

/// One backend's part of a client session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackendSession {
    /// The backendRef name.
    #[serde(rename = "n")]
    pub(crate) name: String,
    /// The backend's `Mcp-Session-Id` (none for a stateless server).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// The protocol version the backend answered.
    #[serde(rename = "v", default, skip_serializing_if = "String::is_empty")]
    pub(crate) version: String,
    /// Capability bits.
    #[serde(rename = "c", default)]
    pub(crate) caps: u16,
}

/// The decrypted client session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The MCPRoute, `namespace/name`.
    #[serde(rename = "r")]
    pub(crate) route: String,
    /// The subject of the client's token when it had one: a session is bound to it.
    #[serde(rename = "s", default, skip_serializing_if = "String::is_empty")]
    pub(crate) subject: String,
    /// The protocol version negotiated with the client.
    #[serde(rename = "v", default)]
    pub(crate) version: String,
    /// The backends, in route order.
    #[serde(rename = "b")]
    pub(crate) backends: Vec<BackendSession>,
}

impl Session {
    /// Seals the session into a client session id.
    pub(crate) fn seal(&self, crypto: &SessionCrypto) -> String {
        crypto.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Opens a client session id.
    pub(crate) fn open(crypto: &SessionCrypto, id: &str) -> Option<Self> {
        serde_json::from_slice(&crypto.open(id).ok()?).ok()
    }

    /// The part of one backend.
    pub(crate) fn backend(&self, name: &str) -> Option<&BackendSession> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// Capability bits of a backend's `initialize` result.
pub(crate) fn caps_bits(caps: &Value) -> u16 {
    let has = |k: &str| caps.get(k).is_some_and(|v| !v.is_null());
    let flag = |k: &str, f: &str| {
        caps.get(k)
            .and_then(|v| v.get(f))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut b = 0;
    for (present, bit) in [
        (has("tools"), cap::TOOLS),
        (flag("tools", "listChanged"), cap::TOOLS_LIST_CHANGED),
        (has("prompts"), cap::PROMPTS),
        (flag("prompts", "listChanged"), cap::PROMPTS_LIST_CHANGED),
        (has("logging"), cap::LOGGING),
        (has("resources"), cap::RESOURCES),
        (
            flag("resources", "listChanged"),
            cap::RESOURCES_LIST_CHANGED,
        ),
        (flag("resources", "subscribe"), cap::RESOURCES_SUBSCRIBE),
        (has("completions"), cap::COMPLETIONS),
    ] {
        if present {
            b |= bit;
        }
    }
    b
}

/// Which list a backend can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    /// `tools/*`.
    Tools,
    /// `prompts/*`.
    Prompts,
    /// `resources/*`.
    Resources,
    /// `logging/setLevel`.
    Logging,
}

impl BackendSession {
    /// Whether the backend declared the capability.
    pub(crate) fn has(&self, c: Capability) -> bool {
        let bit = match c {
            Capability::Tools => cap::TOOLS,
            Capability::Prompts => cap::PROMPTS,
            Capability::Resources => cap::RESOURCES,
            Capability::Logging => cap::LOGGING,
        };
        self.caps & bit != 0
    }
}

/// The capabilities the gateway declares: the union of its backends'.
pub(crate) fn merged_capabilities<'a>(all: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut out = Map::new();
    for caps in all {
        let Some(caps) = caps.as_object() else {
            continue;
        };
        for (k, v) in caps {
            match (k.as_str(), out.get_mut(k)) {
                (_, None) => {
                    out.insert(k.clone(), v.clone());
                }
                ("tools" | "prompts" | "resources", Some(Value::Object(have))) => {
                    for flag in ["listChanged", "subscribe"] {
                        if v.get(flag).and_then(Value::as_bool) == Some(true) {
                            have.insert(flag.into(), Value::Bool(true));
                        }
                    }
                }
                ("experimental", Some(Value::Object(have))) => {
                    if let Some(v) = v.as_object() {
                        for (ek, ev) in v {
                            have.entry(ek.clone()).or_insert_with(|| ev.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Value::Object(out)
}

/// The last event id seen from each backend, sealed into the `id:` of the client's
/// events so that `Last-Event-Id` resumes every backend's stream where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventIds(pub(crate) BTreeMap<String, String>);

impl EventIds {
    /// Seals the map.
    pub(crate) fn seal(&self, crypto: &SessionCrypto) -> String {
        crypto.seal(&serde_json::to_vec(&self.0).unwrap_or_default())
    }

    /// Opens a `Last-Event-Id`; an invalid one resumes nothing.
    pub(crate) fn open(crypto: &SessionCrypto, id: &str) -> Self {
        crypto
            .open(id)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .map(Self)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use serde_json::json;

    #[test]
    fn seal_roundtrip_and_bits() {
        let c = SessionCrypto::new(&Secret::new("k"), None, 1);
        let s = Session {
            route: "default/r".into(),
            subject: String::new(),
            version: "2025-06-18".into(),
            backends: vec![BackendSession {
                name: "a".into(),
                id: Some("xyz".into()),
                version: "2025-06-18".into(),
                caps: caps_bits(&json!({"tools": {"listChanged": true}, "logging": {}})),
            }],
        };
        let id = s.seal(&c);
        assert_eq!(Session::open(&c, &id), Some(s.clone()));
        let b = s.backend("a").unwrap();
        assert!(b.has(Capability::Tools) && b.has(Capability::Logging));
        assert!(!b.has(Capability::Prompts));
        assert_eq!(Session::open(&c, "garbage"), None);
    }

    #[test]
    fn merge_is_a_union() {
        let m = merged_capabilities(&[
            json!({"tools": {"listChanged": false}, "logging": {}}),
            json!({"tools": {"listChanged": true}, "resources": {"subscribe": true}, "experimental": {"x": {}}}),
            json!({"prompts": {}, "experimental": {"y": 1, "x": 2}}),
        ]);
        assert_eq!(
            m,
            json!({"tools": {"listChanged": true}, "logging": {}, "resources": {"subscribe": true},
                   "experimental": {"x": {}, "y": 1}, "prompts": {}})
        );
    }
}
