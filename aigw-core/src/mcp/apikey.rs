//! `securityPolicy.apiKeyAuth` of an MCPRoute: Envoy Gateway's `APIKeyAuth`, which
//! upstream turns into a SecurityPolicy on the route. Each key of each `credentialRefs`
//! Secret is a client id, its value that client's key; the key is read from the first
//! `extractFrom` source that has one (headers, query parameters or cookies, each in
//! list order); `forwardClientIDHeader` names the client to every backend; `sanitize`
//! keeps the key from being forwarded.
//!
//! Only SHA-256 digests of the keys are kept, and a presented key is compared with
//! every digest without stopping at the first match, so the time taken says nothing
//! about which key came close.

use crate::config::{ApiKeyAuth, SecretSource};
use http::{HeaderMap, HeaderName, Uri, header};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where a key may be.
#[derive(Debug, Clone)]
enum Source {
    Header(HeaderName),
    Param(String),
    Cookie(String),
}

/// A route's client API keys.
#[derive(Clone)]
pub(crate) struct ClientKeys {
    keys: Vec<(Arc<str>, [u8; 32])>,
    sources: Vec<Source>,
    /// `forwardClientIDHeader`.
    pub(crate) client_header: Option<HeaderName>,
    /// `sanitize`.
    pub(crate) sanitize: bool,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys")
            .field(
                "clients",
                &self.keys.iter().map(|(c, _)| c).collect::<Vec<_>>(),
            )
            .field("sources", &self.sources)
            .field("client_header", &self.client_header)
            .field("sanitize", &self.sanitize)
            .finish()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRefused {
    /// No source carried a key.
    Missing,
    /// The key is nobody's.
    Invalid,
}

impl KeyRefused {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Missing => "missing API key",
            Self::Invalid => "invalid API key",
        }
    }
}

impl ClientKeys {
    /// Resolves the Secrets (`namespace` is the route's, for references without one).
    pub(crate) fn compile(
        a: &ApiKeyAuth,
        namespace: &str,
        secrets: &SecretSource,
    ) -> Result<Self, (String, String)> {
        let mut keys: Vec<(Arc<str>, [u8; 32])> = Vec::new();
        for (i, r) in a.credential_refs.iter().enumerate() {
            let ns = r
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            let entries = secrets
                .entries(ns, &r.name)
                .map_err(|e| (format!("credentialRefs[{i}]"), e.to_string()))?;
            for (client, key) in entries {
                // A client listed twice keeps its first key, as Envoy Gateway does.
                if keys.iter().any(|(c, _)| **c == *client) {
                    continue;
                }
                keys.push((Arc::from(client), digest(key.expose())));
            }
        }
        if keys.is_empty() {
            return Err(("credentialRefs".into(), "no API keys configured".into()));
        }
        let mut sources = Vec::new();
        for (i, from) in a.extract_from.iter().enumerate() {
            for h in &from.headers {
                let name = HeaderName::try_from(h.as_str()).map_err(|_| {
                    (
                        format!("extractFrom[{i}].headers"),
                        format!("invalid header name {h:?}"),
                    )
                })?;
                sources.push(Source::Header(name));
            }
            sources.extend(from.params.iter().cloned().map(Source::Param));
            sources.extend(from.cookies.iter().cloned().map(Source::Cookie));
        }
        if sources.is_empty() {
            return Err((
                "extractFrom".into(),
                "at least one header, query parameter or cookie is required".into(),
            ));
        }
        let client_header = match a
            .forward_client_id_header
            .as_deref()
            .filter(|h| !h.is_empty())
        {
            Some(h) => Some(HeaderName::try_from(h).map_err(|_| {
                (
                    "forwardClientIDHeader".to_string(),
                    format!("invalid header name {h:?}"),
                )
            })?),
            None => None,
        };
        Ok(Self {
            keys,
            sources,
            client_header,
            sanitize: a.sanitize.unwrap_or(false),
        })
    }

    /// The client the request's key belongs to.
    pub(crate) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<Arc<str>, KeyRefused> {
        let presented = self
            .sources
            .iter()
            .find_map(|s| extract(s, uri, headers))
            .ok_or(KeyRefused::Missing)?;
        let d = digest(&presented);
        let mut found = None;
        for (client, k) in &self.keys {
            let diff = k
                .iter()
                .zip(d.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(client.clone());
            }
        }
        found.ok_or(KeyRefused::Invalid)
    }

    /// Headers that carry the key (never forwarded when `sanitize` is set).
    pub(crate) fn key_headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.sources.iter().filter_map(|s| match s {
            Source::Header(h) => Some(h),
            _ => None,
        })
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn extract(source: &Source, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    match source {
        Source::Header(h) => headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        Source::Param(p) => uri.query()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k) == *p && !v.is_empty()).then(|| percent_decode(v))
        }),
        Source::Cookie(c) => headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == c && !v.is_empty()).then(|| v.to_string())
            }),
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ExtractFrom, SecretObjectReference};

    fn keys(from: ExtractFrom) -> ClientKeys {
        let secrets = SecretSource::default().with_env_lookup(|_| None);
        let dir = tempfile_dir();
        let secrets = secrets.with_dir(&dir);
        let a = ApiKeyAuth {
            credential_refs: vec![SecretObjectReference {
                name: "keys".into(),
                ..Default::default()
            }],
            extract_from: vec![from],
            forward_client_id_header: Some("x-client".into()),
            sanitize: Some(true),
        };
        ClientKeys::compile(&a, "default", &secrets).unwrap()
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("aigw-mcp-apikey-{}", std::process::id()));
        std::fs::create_dir_all(d.join("default/keys")).unwrap();
        std::fs::write(d.join("default/keys/alice"), "k-alice\n").unwrap();
        std::fs::write(d.join("default/keys/bob"), "k-bob").unwrap();
        d
    }

    #[test]
    fn headers_params_cookies() {
        let h = keys(ExtractFrom {
            headers: vec!["x-api-key".into()],
            ..Default::default()
        });
        let uri: Uri = "/mcp".parse().unwrap();
        let mut hm = HeaderMap::new();
        assert_eq!(h.check(&uri, &hm), Err(KeyRefused::Missing));
        hm.insert("x-api-key", "k-bob".parse().unwrap());
        assert_eq!(&*h.check(&uri, &hm).unwrap(), "bob");
        hm.insert("x-api-key", "k-eve".parse().unwrap());
        assert_eq!(h.check(&uri, &hm), Err(KeyRefused::Invalid));
        assert_eq!(h.key_headers().count(), 1);
        assert!(format!("{h:?}").contains("alice") && !format!("{h:?}").contains("k-alice"));

        let p = keys(ExtractFrom {
            params: vec!["key".into()],
            ..Default::default()
        });
        let uri: Uri = "/mcp?x=1&key=k-%61lice".parse().unwrap();
        assert_eq!(&*p.check(&uri, &HeaderMap::new()).unwrap(), "alice");

        let c = keys(ExtractFrom {
            cookies: vec!["k".into()],
            ..Default::default()
        });
        let mut hm = HeaderMap::new();
        hm.insert(header::COOKIE, "a=b; k=k-alice".parse().unwrap());
        assert_eq!(&*c.check(&"/mcp".parse().unwrap(), &hm).unwrap(), "alice");
    }
}
