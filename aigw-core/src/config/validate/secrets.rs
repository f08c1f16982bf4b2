//! Secret references of policies and MCP routes.

use super::*;

/// Secret references of policies and MCP routes. With `source`, each must resolve
/// (issues are errors); without, references to Secrets not in the loaded files are
/// reported as warnings, and a loaded Secret missing the key is reported.
pub(crate) fn check_secret_refs(
    config: &Config,
    source: Option<&SecretSource>,
    errors: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let loaded = SecretSource::from_config(config).with_env_lookup(|_| Some(String::new()));
    for p in &config.backend_security_policies {
        let mut refs: Vec<(String, &super::super::meta::SecretObjectReference, &str)> = Vec::new();
        let s = &p.spec;
        if let Some(h) = &s.api_key {
            refs.push(("spec.apiKey.secretRef".into(), &h.secret_ref, "apiKey"));
        }
        if let Some(h) = &s.azure_api_key {
            refs.push(("spec.azureAPIKey.secretRef".into(), &h.secret_ref, "apiKey"));
        }
        if let Some(h) = &s.anthropic_api_key {
            refs.push((
                "spec.anthropicAPIKey.secretRef".into(),
                &h.secret_ref,
                "apiKey",
            ));
        }
        if let Some(f) = s
            .aws_credentials
            .as_ref()
            .and_then(|a| a.credentials_file.as_ref())
        {
            refs.push((
                "spec.awsCredentials.credentialsFile.secretRef".into(),
                &f.secret_ref,
                "credentials",
            ));
        }
        if let Some(r) = s
            .azure_credentials
            .as_ref()
            .and_then(|a| a.client_secret_ref.as_ref())
        {
            refs.push((
                "spec.azureCredentials.clientSecretRef".into(),
                r,
                "client-secret",
            ));
        }
        if let Some(f) = s
            .gcp_credentials
            .as_ref()
            .and_then(|g| g.credentials_file.as_ref())
        {
            refs.push((
                "spec.gcpCredentials.credentialsFile.secretRef".into(),
                &f.secret_ref,
                "service_account.json",
            ));
        }
        for (field, r, key) in refs {
            check_one(p, &field, r, key, source, &loaded, errors, warnings);
        }
    }
    for m in &config.mcp_routes {
        for (i, b) in m.spec.backend_refs.iter().enumerate() {
            if let Some(r) = b
                .security_policy
                .as_ref()
                .and_then(|s| s.api_key.as_ref())
                .and_then(|k| k.secret_ref.as_ref())
            {
                let field = format!("spec.backendRefs[{i}].securityPolicy.apiKey.secretRef");
                check_one(m, &field, r, "apiKey", source, &loaded, errors, warnings);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn check_one<S>(
    owner: &Resource<S>,
    field: &str,
    r: &super::super::meta::SecretObjectReference,
    key: &str,
    source: Option<&SecretSource>,
    loaded: &SecretSource,
    errors: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<ConfigIssue>,
) {
    let ns = non_empty(r.namespace.as_deref()).unwrap_or(owner.namespace());
    let issue = |message: String| ConfigIssue {
        file: owner.source.file.clone(),
        line: None,
        document: owner.label(),
        field: field.to_string(),
        message,
    };
    match source {
        Some(src) => {
            if let Err(e) = src.resolve(ns, &r.name, key) {
                errors.push(issue(format!("{e} (referenced by {} {field})", owner.label())));
            }
        }
        None => match loaded.resolve(ns, &r.name, key) {
            Ok(_) => {}
            Err(super::super::secret::SecretLookupError::NotFound { .. }) => warnings.push(issue(format!(
                "Secret {ns}/{} (key {key:?}) referenced by {} is not in the loaded files; it must be provided when the gateway starts (Secret document, secrets directory or environment)",
                r.name,
                owner.label()
            ))),
            // The Secret is loaded but cannot serve the key: a definite mistake.
            Err(e) => errors.push(issue(e.to_string())),
        },
    }
}
