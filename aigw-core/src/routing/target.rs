//! Where a backend lives: endpoints from the Envoy Gateway `Backend`, TLS from a
//! `BackendTLSPolicy` (or the Backend's own `tls`), credentials from the
//! BackendSecurityPolicy that targets the AIServiceBackend.

use crate::config::{
    BackendSpec, BackendTlsPolicySpec, Config, LocalObjectReference, ResolvedSecurityPolicy,
    Resource,
};
use crate::error::ConfigIssue;
use crate::schema::VersionedSchema;
use crate::secret::Secret;
use std::sync::Arc;

/// One upstream address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A DNS name.
    Fqdn {
        /// Host name.
        hostname: String,
        /// Port.
        port: u16,
    },
    /// An IP address.
    Ip {
        /// Address.
        address: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix {
        /// Socket path.
        path: String,
    },
}

impl Endpoint {
    /// `host:port` (IPv6 in brackets), or the socket path.
    pub fn authority(&self) -> String {
        match self {
            Self::Fqdn { hostname, port } => format!("{hostname}:{port}"),
            Self::Ip { address, port } if address.contains(':') => format!("[{address}]:{port}"),
            Self::Ip { address, port } => format!("{address}:{port}"),
            Self::Unix { path } => path.clone(),
        }
    }

    /// The host, for `Host` headers and SigV4 when no TLS hostname is configured.
    pub fn host(&self) -> &str {
        match self {
            Self::Fqdn { hostname, .. } => hostname,
            Self::Ip { address, .. } => address,
            Self::Unix { .. } => "localhost",
        }
    }
}

/// Which roots verify the upstream certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRoots {
    /// The system (well-known) roots.
    System,
    /// PEM bundles from ConfigMaps/Secrets (key `ca.crt`).
    Pem(Vec<Secret>),
    /// No verification (`insecureSkipVerify`).
    InsecureSkipVerify,
}

/// Upstream TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// SNI and the name verified (the BackendTLSPolicy's `validation.hostname`), or the
    /// endpoint host when none is configured.
    pub sni: String,
    /// Roots.
    pub roots: TlsRoots,
    /// The policy it came from (`BackendTLSPolicy/ns/name` or `Backend/ns/name`).
    pub origin: String,
}

/// A backend as the adapters need it.
#[derive(Debug, Clone)]
pub struct BackendTarget {
    /// The AIServiceBackend, `namespace/name`.
    pub name: String,
    /// The API it speaks.
    pub schema: VersionedSchema,
    /// The Envoy Gateway Backend, `namespace/name`.
    pub backend: String,
    /// Endpoints (load-balanced by the adapter).
    pub endpoints: Vec<Endpoint>,
    /// TLS, or `None` for plain HTTP.
    pub tls: Option<TlsSettings>,
    /// The Backend's `appProtocols` name `gateway.envoyproxy.io/h2c`: connections speak
    /// HTTP/2 from their first byte (prior knowledge) instead of HTTP/1.1, so every
    /// request to the backend can share one connection.
    pub http2_prior_knowledge: bool,
    /// The security policy targeting this backend.
    pub security_policy: Option<Arc<ResolvedSecurityPolicy>>,
    /// Per-attempt timeout from the AIServiceBackend's deprecated `timeouts.request`.
    pub request_timeout: Option<std::time::Duration>,
    /// For an InferencePool backendRef: the pool, whose endpoint picker names the
    /// endpoint of each request (`endpoints` is then empty).
    pub inference_pool: Option<Arc<super::InferencePoolTarget>>,
}

impl BackendTarget {
    /// `https` when TLS is configured, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// The `appProtocols` value asking for HTTP/2 over cleartext.
pub const H2C_APP_PROTOCOL: &str = "gateway.envoyproxy.io/h2c";

/// Whether an Envoy Gateway Backend asks for HTTP/2 with prior knowledge.
pub(crate) fn http2_prior_knowledge(eg: &Resource<BackendSpec>) -> bool {
    eg.spec.app_protocols.iter().any(|p| p == H2C_APP_PROTOCOL)
}

fn ca_bundle(config: &Config, namespace: &str, r: &LocalObjectReference) -> Result<Secret, String> {
    match r.kind.as_str() {
        "ConfigMap" => config
            .config_maps
            .iter()
            .find(|c| c.namespace() == namespace && c.name() == r.name)
            .and_then(|c| c.spec.get("ca.crt"))
            .map(|v| Secret::new(v.clone()))
            .ok_or_else(|| {
                format!(
                    "ConfigMap {namespace}/{} with key ca.crt is not defined",
                    r.name
                )
            }),
        "Secret" => config
            .secrets
            .iter()
            .find(|s| s.metadata.namespace() == namespace && s.metadata.name == r.name)
            .and_then(|s| s.data.get("ca.crt"))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "Secret {namespace}/{} with key ca.crt is not defined",
                    r.name
                )
            }),
        other => Err(format!(
            "CA certificate refs must be ConfigMap or Secret, found {other}"
        )),
    }
}

fn tls_from_policy(
    config: &Config,
    p: &Resource<BackendTlsPolicySpec>,
    issues: &mut Vec<ConfigIssue>,
) -> TlsSettings {
    let v = &p.spec.validation;
    let roots = if v.well_known_ca_certificates.as_deref() == Some("System") {
        TlsRoots::System
    } else {
        let mut pems = Vec::new();
        for (i, r) in v.ca_certificate_refs.iter().enumerate() {
            match ca_bundle(config, p.namespace(), r) {
                Ok(pem) => pems.push(pem),
                Err(message) => issues.push(ConfigIssue {
                    file: p.source.file.clone(),
                    line: None,
                    document: p.label(),
                    field: format!("spec.validation.caCertificateRefs[{i}]"),
                    message,
                }),
            }
        }
        TlsRoots::Pem(pems)
    };
    TlsSettings {
        sni: v.hostname.clone(),
        roots,
        origin: p.label(),
    }
}

/// The TLS settings of an Envoy Gateway Backend.
pub(crate) fn tls_for_backend(
    config: &Config,
    backend: &Resource<BackendSpec>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<TlsSettings> {
    if let Some(p) = config.backend_tls_policies.iter().find(|p| {
        p.namespace() == backend.namespace()
            && p.spec
                .target_refs
                .iter()
                .any(|t| t.kind == "Backend" && t.name == backend.name())
    }) {
        return Some(tls_from_policy(config, p, issues));
    }
    let tls = backend.spec.tls.as_ref()?;
    let host = backend
        .spec
        .endpoints
        .first()
        .map(|e| match (&e.fqdn, &e.ip) {
            (Some(f), _) => f.hostname.clone(),
            (None, Some(ip)) => ip.address.clone(),
            _ => String::new(),
        })
        .unwrap_or_default();
    let roots = if tls.insecure_skip_verify == Some(true) {
        TlsRoots::InsecureSkipVerify
    } else if !tls.ca_certificate_refs.is_empty() {
        let mut pems = Vec::new();
        for (i, r) in tls.ca_certificate_refs.iter().enumerate() {
            match ca_bundle(config, backend.namespace(), r) {
                Ok(pem) => pems.push(pem),
                Err(message) => issues.push(ConfigIssue {
                    file: backend.source.file.clone(),
                    line: None,
                    document: backend.label(),
                    field: format!("spec.tls.caCertificateRefs[{i}]"),
                    message,
                }),
            }
        }
        TlsRoots::Pem(pems)
    } else {
        TlsRoots::System
    };
    Some(TlsSettings {
        sni: tls.sni.clone().filter(|s| !s.is_empty()).unwrap_or(host),
        roots,
        origin: backend.label(),
    })
}

/// The endpoints of an Envoy Gateway Backend.
pub(crate) fn endpoints(backend: &Resource<BackendSpec>) -> Vec<Endpoint> {
    backend
        .spec
        .endpoints
        .iter()
        .filter_map(|e| {
            if let Some(f) = &e.fqdn {
                Some(Endpoint::Fqdn {
                    hostname: f.hostname.clone(),
                    port: f.port,
                })
            } else if let Some(ip) = &e.ip {
                Some(Endpoint::Ip {
                    address: ip.address.clone(),
                    port: ip.port,
                })
            } else {
                e.unix.as_ref().map(|u| Endpoint::Unix {
                    path: u.path.clone(),
                })
            }
        })
        .collect()
}
