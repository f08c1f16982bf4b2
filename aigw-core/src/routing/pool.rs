//! InferencePools (Gateway API Inference Extension) as routing targets: the pool's
//! model-server port and the endpoint picker (EPP) that names the pod for each request.
//!
//! The picker is an Envoy ext_proc server; the adapters ask it (Envoy through the
//! operator's extension server, `aigw run` and the axum layer through their own client)
//! and send to the `ip:port` it answers with.

use crate::config::Resource;
use serde_json::Value;

/// What the gateway does when the endpoint picker fails (`endpointPickerRef.failureMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PickerFailureMode {
    /// Drop the request (the extension's default).
    #[default]
    FailClose,
    /// Forward the request to an endpoint of the gateway's own picking.
    FailOpen,
}

/// An InferencePool as a request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferencePoolTarget {
    /// The pool, `namespace/name`.
    pub name: String,
    /// The pool's namespace (the picker's Service lives there).
    pub namespace: String,
    /// The model servers' port (`targetPorts[0].number`).
    pub target_port: u16,
    /// The picker's Service name (`endpointPickerRef.name`).
    pub picker_service: String,
    /// The picker's Service port (`endpointPickerRef.port.number`).
    pub picker_port: u16,
    /// `endpointPickerRef.failureMode`.
    pub failure_mode: PickerFailureMode,
}

impl InferencePoolTarget {
    /// Reads a pool document: `inference.networking.k8s.io/v1` (`targetPorts`,
    /// `endpointPickerRef`) or the older `v1alpha2` shape (`targetPortNumber`,
    /// `extensionRef`). `Err((field, message))` names what is missing.
    pub fn from_resource(pool: &Resource<Value>) -> Result<Self, (String, String)> {
        let spec = &pool.spec;
        let port = |v: Option<&Value>, field: &str| -> Result<u16, (String, String)> {
            v.and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    (
                        field.to_owned(),
                        "a port number (1-65535) is required".into(),
                    )
                })
        };
        let target_port = match spec.get("targetPorts") {
            Some(ports) => port(ports.pointer("/0/number"), "spec.targetPorts[0].number")?,
            None => port(spec.get("targetPortNumber"), "spec.targetPorts")?,
        };
        let (picker, picker_port, field) = match spec.get("endpointPickerRef") {
            Some(r) => (r, r.pointer("/port/number"), "spec.endpointPickerRef"),
            None => match spec.get("extensionRef") {
                Some(r) => (r, r.get("portNumber"), "spec.extensionRef"),
                None => {
                    return Err((
                        "spec.endpointPickerRef".into(),
                        "an endpoint picker reference is required to route to the pool".into(),
                    ));
                }
            },
        };
        let kind = picker
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("Service");
        if kind != "Service" {
            return Err((
                format!("{field}.kind"),
                format!("only a Service can be the endpoint picker, found {kind}"),
            ));
        }
        let picker_service = picker
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                (
                    format!("{field}.name"),
                    "the picker's Service name is required".into(),
                )
            })?
            .to_owned();
        let failure_mode = match picker.get("failureMode").and_then(Value::as_str) {
            None | Some("FailClose") => PickerFailureMode::FailClose,
            Some("FailOpen") => PickerFailureMode::FailOpen,
            Some(other) => {
                return Err((
                    format!("{field}.failureMode"),
                    format!("must be FailOpen or FailClose, found {other:?}"),
                ));
            }
        };
        Ok(Self {
            name: pool.key(),
            namespace: pool.namespace().to_owned(),
            target_port,
            picker_service,
            picker_port: port(picker_port, &format!("{field}.port.number"))?,
            failure_mode,
        })
    }

    /// The picker's in-cluster address, `<service>.<namespace>.svc:<port>`.
    pub fn picker_authority(&self) -> String {
        format!(
            "{}.{}.svc:{}",
            self.picker_service, self.namespace, self.picker_port
        )
    }

    /// The authority a request to the pool carries until the picker names an endpoint;
    /// never dialled.
    pub fn placeholder_authority(&self) -> String {
        let (ns, name) = self.name.split_once('/').unwrap_or(("", &self.name));
        format!("{name}.{ns}.inferencepool:{}", self.target_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn pool(yaml: &str) -> Result<InferencePoolTarget, (String, String)> {
        let doc = format!(
            "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: p\n  namespace: ns\n{yaml}"
        );
        let config =
            Config::from_yaml_str(&doc, "pool.yaml").map_err(|e| ("load".into(), e.to_string()))?;
        InferencePoolTarget::from_resource(&config.inference_pools[0])
    }

    #[test]
    fn reads_v1_pools() {
        let p = pool(
            "spec:\n  targetPorts: [{number: 8000}]\n  selector: {matchLabels: {app: x}}\n  endpointPickerRef: {name: epp, port: {number: 9002}, failureMode: FailOpen}\n",
        );
        assert_eq!(
            p,
            Ok(InferencePoolTarget {
                name: "ns/p".into(),
                namespace: "ns".into(),
                target_port: 8000,
                picker_service: "epp".into(),
                picker_port: 9002,
                failure_mode: PickerFailureMode::FailOpen,
            })
        );
        assert_eq!(p.unwrap().picker_authority(), "epp.ns.svc:9002");
    }

    #[test]
    fn reads_v1alpha2_pools_and_defaults_to_fail_close() {
        let p = pool(
            "spec:\n  targetPortNumber: 8000\n  selector: {app: x}\n  extensionRef: {name: epp, portNumber: 9002}\n",
        );
        assert_eq!(p.map(|p| p.failure_mode), Ok(PickerFailureMode::FailClose));
    }

    #[test]
    fn names_what_is_missing() {
        let e = pool("spec:\n  targetPorts: [{number: 8000}]\n  endpointPickerRef: {name: epp}\n");
        assert_eq!(
            e.map_err(|e| e.0),
            Err("spec.endpointPickerRef.port.number".into())
        );
        let e = pool(
            "spec:\n  targetPorts: [{number: 8000}]\n  endpointPickerRef: {name: epp, port: {number: 1}, failureMode: Maybe}\n",
        );
        assert_eq!(
            e.map_err(|e| e.0),
            Err("spec.endpointPickerRef.failureMode".into())
        );
    }
}
