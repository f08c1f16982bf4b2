//! Envoy Gateway and Gateway API kinds: Backend, Gateway, BackendTLSPolicy,
//! BackendTrafficPolicy and ClientTrafficPolicy.

use super::*;
use crate::config::{
    BackendTlsPolicySpec, BackendTrafficPolicySpec, ClientTrafficPolicySpec, GatewaySpec,
};

pub(super) fn eg_backend(
    b: &Resource<BackendSpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    app_protocols(b, issues, warnings);
    if b.spec.fallback == Some(true) {
        warnings.push(backend_warning(
            b,
            "spec.fallback".into(),
            format!(
                "Backend {} is marked as a fallback, which the gateway does not honour: it is served as a regular backend (order backends with the AIGatewayRoute backendRefs' priority instead)",
                b.key()
            ),
        ));
    }
    let mut d = doc(b, issues);
    let dynamic = b.spec.backend_type.as_deref() == Some("DynamicResolver");
    if b.spec.endpoints.is_empty() && !dynamic {
        d.err("spec.endpoints", "at least one endpoint is required");
    }
    for (i, e) in b.spec.endpoints.iter().enumerate() {
        let n = usize::from(e.fqdn.is_some())
            + usize::from(e.ip.is_some())
            + usize::from(e.unix.is_some());
        if n != 1 {
            d.err(
                format!("spec.endpoints[{i}]"),
                "exactly one of fqdn, ip or unix must be set",
            );
        }
        if let Some(ip) = &e.ip
            && ip.address.parse::<std::net::IpAddr>().is_err()
        {
            d.err(
                format!("spec.endpoints[{i}].ip.address"),
                format!("{:?} is not an IP address", ip.address),
            );
        }
    }
}

/// `appProtocols`: `h2c` is honoured; WebSocket upgrades are not proxied (a warning);
/// anything else is not a value Envoy Gateway accepts.
fn app_protocols(
    b: &Resource<BackendSpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    for (i, p) in b.spec.app_protocols.iter().enumerate() {
        let field = format!("spec.appProtocols[{i}]");
        match p.as_str() {
            crate::routing::H2C_APP_PROTOCOL => {}
            "gateway.envoyproxy.io/ws" | "gateway.envoyproxy.io/wss" => warnings.push(backend_warning(
                b,
                field,
                format!(
                    "Backend {}: {p} is ignored: the gateway does not proxy WebSocket upgrades",
                    b.key()
                ),
            )),
            _ => doc(b, issues).err(
                field,
                format!(
                    "{p:?} is not an application protocol: expected gateway.envoyproxy.io/h2c, gateway.envoyproxy.io/ws or gateway.envoyproxy.io/wss"
                ),
            ),
        }
    }
}

fn backend_warning(b: &Resource<BackendSpec>, field: String, message: String) -> ConfigIssue {
    ConfigIssue {
        file: b.source.file.clone(),
        line: None,
        document: b.label(),
        field,
        message,
    }
}

/// A Gateway: the GatewayConfig its annotation names must exist.
pub(super) fn gateway(config: &Config, gw: &Resource<GatewaySpec>, issues: &mut Vec<ConfigIssue>) {
    if let Some(name) = gw.metadata.annotations.get(GATEWAY_CONFIG_ANNOTATION)
        && find(&config.gateway_configs, gw.namespace(), name).is_none()
    {
        doc(gw, issues).err(
                format!("metadata.annotations[{GATEWAY_CONFIG_ANNOTATION}]"),
                format!(
                    "GatewayConfig {}/{name} referenced by Gateway {} is not defined (it must be in the Gateway's namespace)",
                    gw.namespace(),
                    gw.key()
                ),
            );
    }
}

/// A BackendTLSPolicy: hostname and trust roots required; targets should be loaded.
pub(super) fn backend_tls_policy(
    config: &Config,
    p: &Resource<BackendTlsPolicySpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut d = doc(p, issues);
    if p.spec.validation.hostname.is_empty() {
        d.err(
            "spec.validation.hostname",
            "hostname is required (it is the SNI and the name verified)",
        );
    }
    if p.spec.validation.ca_certificate_refs.is_empty()
        && p.spec.validation.well_known_ca_certificates.is_none()
    {
        d.err(
            "spec.validation",
            "set wellKnownCACertificates: System or caCertificateRefs",
        );
    }
    for (i, t) in p.spec.target_refs.iter().enumerate() {
        if t.kind == "Backend" && find(&config.backends, p.namespace(), &t.name).is_none() {
            warnings.push(ConfigIssue {
                file: p.source.file.clone(),
                line: None,
                document: p.label(),
                field: format!("spec.targetRefs[{i}].name"),
                message: format!(
                    "Backend {}/{} is not defined in the loaded files",
                    p.namespace(),
                    t.name
                ),
            });
        }
    }
}

/// A BackendTrafficPolicy: durations, retry statuses, rate-limit units and costs; targets should be loaded; settings the data plane does not apply are reported.
pub(super) fn backend_traffic_policy(
    config: &Config,
    p: &Resource<BackendTrafficPolicySpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut d = doc(p, issues);
    if let Some(r) = &p.spec.retry {
        if let Some(per) = &r.per_retry {
            dur_field(&mut d, "spec.retry.perRetry.timeout", &per.timeout);
            if let Some(b) = &per.back_off {
                dur_field(
                    &mut d,
                    "spec.retry.perRetry.backOff.baseInterval",
                    &b.base_interval,
                );
                dur_field(
                    &mut d,
                    "spec.retry.perRetry.backOff.maxInterval",
                    &b.max_interval,
                );
            }
        }
        if let Some(on) = &r.retry_on {
            for (i, c) in on.http_status_codes.iter().enumerate() {
                if !(100..=599).contains(c) {
                    d.err(
                        format!("spec.retry.retryOn.httpStatusCodes[{i}]"),
                        format!("{c} is not an HTTP status"),
                    );
                }
            }
        }
    }
    if let Some(t) = &p.spec.timeout {
        if let Some(h) = &t.http {
            dur_field(
                &mut d,
                "spec.timeout.http.requestTimeout",
                &h.request_timeout,
            );
            dur_field(
                &mut d,
                "spec.timeout.http.connectionIdleTimeout",
                &h.connection_idle_timeout,
            );
            dur_field(
                &mut d,
                "spec.timeout.http.maxConnectionDuration",
                &h.max_connection_duration,
            );
        }
        if let Some(tcp) = &t.tcp {
            dur_field(
                &mut d,
                "spec.timeout.tcp.connectTimeout",
                &tcp.connect_timeout,
            );
        }
    }
    if let Some(rl) = &p.spec.rate_limit {
        for (scope, rules) in [("global", &rl.global), ("local", &rl.local)] {
            for (i, r) in rules.iter().flat_map(|r| r.rules.iter()).enumerate() {
                if super::super::traffic::unit_window(&r.limit.unit).is_none() {
                    d.err(
                        format!("spec.rateLimit.{scope}.rules[{i}].limit.unit"),
                        format!(
                            "unit {:?} must be Second, Minute, Hour, Day, Month or Year",
                            r.limit.unit
                        ),
                    );
                }
                for (which, c) in r
                    .cost
                    .iter()
                    .flat_map(|c| [("request", &c.request), ("response", &c.response)])
                {
                    if let Some(c) = c {
                        let field = format!("spec.rateLimit.{scope}.rules[{i}].cost.{which}");
                        match c.from.as_str() {
                            "Number" => {}
                            "Metadata" if c.metadata.is_some() => {}
                            "Metadata" => d.err(
                                format!("{field}.metadata"),
                                "required when from is Metadata",
                            ),
                            other => d.err(
                                format!("{field}.from"),
                                format!("{other:?} must be Number or Metadata"),
                            ),
                        }
                    }
                }
            }
        }
    }
    let ns = p.namespace().to_string();
    for (i, t) in p.spec.target_refs.iter().enumerate() {
        let known = match t.kind.as_str() {
            "HTTPRoute" => {
                find(&config.ai_gateway_routes, &ns, &t.name).is_some()
                    || find(&config.http_routes, &ns, &t.name).is_some()
            }
            "Gateway" => find(&config.gateways, &ns, &t.name).is_some(),
            _ => true,
        };
        if !known {
            warnings.push(ConfigIssue {
                file: p.source.file.clone(),
                line: None,
                document: p.label(),
                field: format!("spec.targetRefs[{i}].name"),
                message: format!(
                    "{} {ns}/{} is not defined in the loaded files (an HTTPRoute target must be named like its AIGatewayRoute)",
                    t.kind, t.name
                ),
            });
        }
    }
    health_check_fields(&mut d, p);
    let ignored = super::super::traffic::TrafficSettings::from_policy(p).ignored;
    if !ignored.is_empty() {
        warnings.push(ConfigIssue {
            file: p.source.file.clone(),
            line: None,
            document: p.label(),
            field: "spec".into(),
            message: format!(
                "settings not applied by aigw's own data plane: {}",
                ignored.join(", ")
            ),
        });
    }
}

/// Durations and ranges of `healthCheck`.
fn health_check_fields(d: &mut Doc<'_>, p: &Resource<BackendTrafficPolicySpec>) {
    let Some(h) = &p.spec.health_check else {
        return;
    };
    if let Some(a) = &h.active {
        dur_field(d, "spec.healthCheck.active.timeout", &a.timeout);
        dur_field(d, "spec.healthCheck.active.interval", &a.interval);
        if let Some(http) = &a.http {
            if !http.path.starts_with('/') {
                d.err(
                    "spec.healthCheck.active.http.path",
                    format!("{:?} must be an absolute path", http.path),
                );
            }
            for (i, c) in http.expected_statuses.iter().enumerate() {
                if !(100..=599).contains(c) {
                    d.err(
                        format!("spec.healthCheck.active.http.expectedStatuses[{i}]"),
                        format!("{c} is not an HTTP status"),
                    );
                }
            }
        }
    }
    if let Some(ps) = &h.passive {
        dur_field(d, "spec.healthCheck.passive.interval", &ps.interval);
        dur_field(
            d,
            "spec.healthCheck.passive.baseEjectionTime",
            &ps.base_ejection_time,
        );
        if ps.max_ejection_percent.is_some_and(|v| v > 100) {
            d.err(
                "spec.healthCheck.passive.maxEjectionPercent",
                "must be between 0 and 100",
            );
        }
    }
}

/// A ClientTrafficPolicy: the buffer limit must parse; settings the data plane does not apply are reported.
pub(super) fn client_traffic_policy(
    p: &Resource<ClientTrafficPolicySpec>,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let ignored = super::super::traffic::ClientSettings::from_policy(p).ignored;
    if !ignored.is_empty() {
        warnings.push(ConfigIssue {
            file: p.source.file.clone(),
            line: None,
            document: p.label(),
            field: "spec".into(),
            message: format!(
                "settings not applied by aigw's own data plane: {}",
                ignored.join(", ")
            ),
        });
    }
    if let Some(limit) = p
        .spec
        .connection
        .as_ref()
        .and_then(|c| c.buffer_limit.as_deref())
        && parse_quantity_bytes(limit).is_none()
    {
        doc(p, issues).err(
            "spec.connection.bufferLimit",
            format!("{limit:?} is not a Kubernetes quantity such as 50Mi or 32768"),
        );
    }
}
