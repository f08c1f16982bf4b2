//! SigV4 over the final outgoing request, as Bedrock expects it.
//!
//! Only `host` (the upstream actually dialled), `x-amz-date` and, with temporary
//! credentials, `x-amz-security-token` are signed: proxies between us and AWS may
//! re-chunk the body (so `content-length` is left out) or add headers. The payload hash is
//! the SHA-256 of the exact body sent. The path arrives already percent-encoded as on the
//! wire (`:` in a model id as `%3A`); the canonical URI encodes it once more, as botocore
//! and the AWS SDKs do.

use aigw_core::{OutgoingRequest, Secret};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue};
use regex::Regex;
use std::sync::LazyLock;
use std::time::SystemTime;

/// The AWS service name Bedrock runtime requests are signed for.
pub const SERVICE: &str = "bedrock";

static BEDROCK_HOST: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.(?:vpce\.amazonaws\.com|amazonaws\.com|api\.aws)$").ok()
});

/// The region encoded in a Bedrock runtime host name, if it is one.
///
/// ```
/// use aigw_auth::aws::region_from_host;
/// assert_eq!(region_from_host("bedrock-runtime.eu-west-1.amazonaws.com"), Some("eu-west-1"));
/// assert_eq!(region_from_host("bedrock-runtime-fips.us-east-1.amazonaws.com:443"), Some("us-east-1"));
/// assert_eq!(region_from_host("gateway.internal"), None);
/// ```
pub fn region_from_host(authority: &str) -> Option<&str> {
    let host = strip_port(authority);
    let re = BEDROCK_HOST.as_ref()?;
    re.captures(host).and_then(|c| c.get(1)).map(|m| m.as_str())
}

fn strip_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some((h, port)) if h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// The `host` value HTTP clients send: the authority without the scheme's default port.
fn host_header<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme.eq_ignore_ascii_case("http") {
        ":80"
    } else {
        ":443"
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// AWS credentials borrowed for one signature.
pub(crate) struct AwsKeys<'a> {
    pub(crate) access_key_id: &'a Secret,
    pub(crate) secret_access_key: &'a Secret,
    pub(crate) session_token: Option<&'a Secret>,
}

/// Signs `req` in place: sets `authorization`, `x-amz-date` and, with a session token,
/// `x-amz-security-token` (all marked sensitive where they carry secrets).
pub(crate) fn sign_request(
    req: &mut OutgoingRequest,
    keys: &AwsKeys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity: Identity = Credentials::new(
        keys.access_key_id.expose(),
        keys.secret_access_key.expose(),
        keys.session_token.map(|t| t.expose().to_owned()),
        None,
        "aigw",
    )
    .into();
    let settings = SigningSettings::default();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let host = host_header(&req.scheme, &req.authority);
    let url = format!("{}://{}{}", req.scheme, req.authority, req.path);
    let signable = SignableRequest::new(
        req.method.as_str(),
        url.as_str(),
        std::iter::once(("host", host)),
        SignableBody::Bytes(&req.body),
    )
    .map_err(|e| format!("request cannot be signed: {e}"))?;
    // aws-sigv4 traces its parameters, access key id included; keep them out of any log.
    let quiet = tracing::Dispatch::none();
    let signed = tracing::dispatcher::with_default(&quiet, || sign(signable, &params));
    let (instructions, _signature) = signed
        .map_err(|e| format!("signing failed: {e}"))?
        .into_parts();
    for stale in [
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ] {
        req.headers.remove(stale);
    }
    let (headers, _params) = instructions.into_parts();
    for h in headers {
        let name = HeaderName::try_from(h.name().to_ascii_lowercase())
            .map_err(|_| format!("signer produced an invalid header name {}", h.name()))?;
        let mut value = HeaderValue::try_from(h.value())
            .map_err(|_| format!("signer produced an invalid value for {name}"))?;
        value.set_sensitive(h.sensitive() || name == http::header::AUTHORIZATION);
        req.headers.insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_region_parsing() {
        assert_eq!(
            region_from_host("vpce-0abc.bedrock-runtime.ap-south-1.vpce.amazonaws.com"),
            Some("ap-south-1")
        );
        assert_eq!(
            region_from_host("bedrock-runtime.us-west-2.api.aws"),
            Some("us-west-2")
        );
        assert_eq!(region_from_host("bedrock.us-west-2.amazonaws.com"), None);
        assert_eq!(host_header("https", "h.example:443"), "h.example");
        assert_eq!(host_header("https", "h.example:8443"), "h.example:8443");
        assert_eq!(strip_port("[::1]:9000"), "[::1]");
    }
}
