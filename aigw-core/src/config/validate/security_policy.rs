//! BackendSecurityPolicy.

use super::*;

pub(super) fn security_policies(
    config: &Config,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for p in &config.backend_security_policies {
        let mut d = doc(p, issues);
        let s = &p.spec;
        let set: [(&str, bool); 6] = [
            ("apiKey", s.api_key.is_some()),
            ("awsCredentials", s.aws_credentials.is_some()),
            ("azureAPIKey", s.azure_api_key.is_some()),
            ("azureCredentials", s.azure_credentials.is_some()),
            ("gcpCredentials", s.gcp_credentials.is_some()),
            ("anthropicAPIKey", s.anthropic_api_key.is_some()),
        ];
        let want = s.policy_type.field();
        for (field, present) in set {
            if field == want && !present {
                d.err(
                    format!("spec.{field}"),
                    format!("required when type is {:?}", s.policy_type),
                );
            } else if field != want && present {
                d.err(
                    format!("spec.{field}"),
                    format!(
                        "type is {:?}, so only {want} may be set; remove {field} or change type",
                        s.policy_type
                    ),
                );
            }
        }
        if s.target_refs.len() > 16 {
            d.err(
                "spec.targetRefs",
                format!(
                    "at most 16 targetRefs are allowed, found {}",
                    s.target_refs.len()
                ),
            );
        }
        for (i, t) in s.target_refs.iter().enumerate() {
            let f = format!("spec.targetRefs[{i}]");
            let is_backend = t.group == AIGW_GROUP && t.kind == "AIServiceBackend";
            let is_pool = t.group == INFERENCE_GROUP && t.kind == "InferencePool";
            if !is_backend && !is_pool {
                d.err(
                    f,
                    format!("targetRefs must reference AIServiceBackend ({AIGW_GROUP}) or InferencePool ({INFERENCE_GROUP}), found {} in group {:?}", t.kind, t.group),
                );
                continue;
            }
            let target = format!("{}/{}/{}", t.kind, p.namespace(), t.name);
            if is_backend && find(&config.ai_service_backends, p.namespace(), &t.name).is_none() {
                d.err(
                    format!("{f}.name"),
                    format!("AIServiceBackend {}/{} targeted by BackendSecurityPolicy {} is not defined", p.namespace(), t.name, p.key()),
                );
            }
            if is_pool && find(&config.inference_pools, p.namespace(), &t.name).is_none() {
                warnings.push(ConfigIssue {
                    file: p.source.file.clone(),
                    line: None,
                    document: p.label(),
                    field: format!("{f}.name"),
                    message: format!(
                        "InferencePool {}/{} is not defined in the loaded files",
                        p.namespace(),
                        t.name
                    ),
                });
            }
            if let Some(other) = claimed.insert(target.clone(), p.key()) {
                d.err(
                    format!("{f}.name"),
                    format!("{target} is already targeted by BackendSecurityPolicy {other}; only one policy may target a backend"),
                );
            }
        }
        if let Some(a) = &s.aws_credentials {
            if a.region.is_empty() {
                d.err("spec.awsCredentials.region", "region is required");
            }
            if a.credentials_file.is_some() && a.oidc_exchange_token.is_some() {
                d.err(
                    "spec.awsCredentials",
                    "set at most one of credentialsFile or oidcExchangeToken",
                );
            }
            if let Some(o) = &a.oidc_exchange_token
                && non_empty(o.aws_role_arn.as_deref()).is_none()
            {
                d.err(
                    "spec.awsCredentials.oidcExchangeToken.awsRoleArn",
                    "awsRoleArn is required",
                );
            }
        }
        if let Some(a) = &s.azure_credentials {
            if a.client_id.is_empty() {
                d.err("spec.azureCredentials.clientID", "clientID is required");
            }
            if a.tenant_id.is_empty() {
                d.err("spec.azureCredentials.tenantID", "tenantID is required");
            }
            if a.client_secret_ref.is_some() == a.oidc_exchange_token.is_some() {
                d.err(
                    "spec.azureCredentials",
                    "exactly one of clientSecretRef or oidcExchangeToken must be specified",
                );
            }
        }
        if let Some(g) = &s.gcp_credentials {
            if g.credentials_file.is_some() && g.workload_identity_federation_config.is_some() {
                d.err("spec.gcpCredentials", "at most one of credentialsFile or workloadIdentityFederationConfig may be specified");
            }
            if !g.is_passthrough {
                if non_empty(g.project_name.as_deref()).is_none() {
                    d.err(
                        "spec.gcpCredentials.projectName",
                        "projectName is required unless isPassthrough is true",
                    );
                }
                if non_empty(g.region.as_deref()).is_none() {
                    d.err(
                        "spec.gcpCredentials.region",
                        "region is required unless isPassthrough is true",
                    );
                }
            }
        }
        if let Some(o) = &s.credential_override {
            if o.from_request_headers.is_some() == o.from_dynamic_metadata.is_some() {
                d.err(
                    "spec.credentialOverride",
                    "exactly one of fromRequestHeaders or fromDynamicMetadata must be set",
                );
            }
            if let Some(m) = &o.from_dynamic_metadata
                && m.namespace.is_empty()
            {
                d.err(
                    "spec.credentialOverride.fromDynamicMetadata.namespace",
                    "namespace is required",
                );
            }
        }
    }
}
