//! STS `AssumeRoleWithWebIdentity`: one unsigned form POST, an XML answer.

use crate::error::AuthError;
use crate::transport::{HttpClient, summarize_error, xml_text};
use aigw_core::{Credential, CredentialMaterial, Secret};
use std::time::{Duration, SystemTime};

/// Inputs of one AssumeRoleWithWebIdentity call.
pub(crate) struct AssumeRole<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) role_arn: &'a str,
    pub(crate) session_name: &'a str,
    pub(crate) web_identity_token: &'a Secret,
    pub(crate) duration: Option<Duration>,
}

/// Exchanges a web-identity token (IRSA or an OIDC provider's token) for temporary AWS
/// credentials.
pub(crate) async fn assume_role_with_web_identity(
    http: &HttpClient,
    policy: &str,
    req: AssumeRole<'_>,
) -> Result<Credential, AuthError> {
    let duration = req.duration.map(|d| d.as_secs().to_string());
    let mut form = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", req.role_arn),
        ("RoleSessionName", req.session_name),
        ("WebIdentityToken", req.web_identity_token.expose()),
    ];
    if let Some(d) = duration.as_deref() {
        form.push(("DurationSeconds", d));
    }
    let builder = http
        .post_form(req.endpoint, &form)
        .header(http::header::ACCEPT, "application/xml");
    let resp = http.send(policy, req.endpoint, builder).await?;
    let fail = |status: Option<u16>, message: String| AuthError::TokenEndpoint {
        policy: policy.to_owned(),
        endpoint: crate::transport::strip_query(req.endpoint).to_owned(),
        status,
        message: format!("AssumeRoleWithWebIdentity: {message}"),
    };
    if !(200..300).contains(&resp.status) {
        return Err(fail(
            Some(resp.status),
            summarize_error(resp.status, &resp.body),
        ));
    }
    let text = std::str::from_utf8(&resp.body)
        .map_err(|_| fail(Some(resp.status), "response is not UTF-8".to_owned()))?;
    let field = |tag: &str| {
        xml_text(text, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(Some(resp.status), format!("response lacks {tag}")))
    };
    let access_key_id = Secret::new(field("AccessKeyId")?);
    let secret_access_key = Secret::new(field("SecretAccessKey")?);
    let session_token = Secret::new(field("SessionToken")?);
    let expiration = field("Expiration")?;
    let expires_at = parse_rfc3339(&expiration).ok_or_else(|| {
        fail(
            Some(resp.status),
            format!("unparseable Expiration {expiration:?}"),
        )
    })?;
    tracing::debug!(
        policy,
        role_arn = req.role_arn,
        "assumed role with web identity"
    );
    Ok(Credential {
        material: CredentialMaterial::Aws {
            access_key_id,
            secret_access_key,
            session_token: Some(session_token),
        },
        expires_at: Some(expires_at),
    })
}

/// Parses an RFC 3339 timestamp (`2026-01-02T03:04:05Z`, fractions allowed).
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn rfc3339_with_and_without_fraction() {
        let t = parse_rfc3339("1970-01-01T00:01:40Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(100));
        let t = parse_rfc3339("1970-01-01T00:01:40.500Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_millis(100_500));
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
