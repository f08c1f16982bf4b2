//! Credential checks per provider, refusing in the provider's own 401/403 shape.

use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::errors::{Provider, bedrock_error, error, json_response};
use super::sigv4::{self, SigV4Failure};
use super::{SimRequest, SimulatorConfig};
use aigw_core::Secret;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

fn allowed(list: &[Secret], presented: Option<&str>) -> bool {
    presented.is_some_and(|p| list.iter().any(|s| s.expose() == p))
}

/// Checks the request's credential against the configuration for `provider`.
// The error is the finished response: it goes straight back to the client.
#[allow(clippy::result_large_err)]
pub(crate) fn check(
    provider: Provider,
    cfg: &SimulatorConfig,
    req: &SimRequest,
) -> Result<(), Response> {
    let headers = &req.headers;
    match provider {
        Provider::OpenAi => match (&cfg.openai_keys, bearer(headers)) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(error(
                Provider::OpenAi,
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )),
            (Some(keys), key) if allowed(keys, key) => Ok(()),
            (Some(_), _) => Err(error(
                Provider::OpenAi,
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            )),
        },
        Provider::Azure => {
            if cfg.azure_api_keys.is_none() && cfg.azure_bearer_tokens.is_none() {
                return Ok(());
            }
            let by_key = cfg
                .azure_api_keys
                .as_deref()
                .is_some_and(|keys| allowed(keys, header_str(headers, "api-key")));
            let by_token = cfg
                .azure_bearer_tokens
                .as_deref()
                .is_some_and(|tokens| allowed(tokens, bearer(headers)));
            if by_key || by_token {
                Ok(())
            } else {
                Err(json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
                ))
            }
        }
        Provider::Anthropic => match &cfg.anthropic_keys {
            None => Ok(()),
            // Current SDKs send the key as a bearer token instead of `x-api-key`.
            Some(keys)
                if allowed(keys, header_str(headers, "x-api-key"))
                    || allowed(keys, bearer(headers)) =>
            {
                Ok(())
            }
            Some(_) => Err(error(
                Provider::Anthropic,
                StatusCode::UNAUTHORIZED,
                "invalid x-api-key",
            )),
        },
        Provider::Vertex | Provider::VertexAnthropic => match &cfg.gcp_tokens {
            None => Ok(()),
            Some(tokens) if allowed(tokens, bearer(headers)) => Ok(()),
            Some(_) => Err(error(
                Provider::Vertex,
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )),
        },
        Provider::Bedrock => match &cfg.aws {
            None => Ok(()),
            Some(aws) => sigv4::verify(aws, &req.method, &req.uri, headers, &req.body).map_err(
                |failure| match failure {
                    SigV4Failure::Unrecognized => bedrock_error(
                        StatusCode::FORBIDDEN,
                        "UnrecognizedClientException",
                        "The security token included in the request is invalid.",
                    ),
                    SigV4Failure::Missing => bedrock_error(
                        StatusCode::FORBIDDEN,
                        "MissingAuthenticationTokenException",
                        "Missing Authentication Token",
                    ),
                    SigV4Failure::Signature => bedrock_error(
                        StatusCode::FORBIDDEN,
                        "InvalidSignatureException",
                        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                    ),
                    SigV4Failure::Scope(message) => {
                        bedrock_error(StatusCode::FORBIDDEN, "InvalidSignatureException", &message)
                    }
                },
            ),
        },
    }
}

/// The token the metadata endpoint hands out when no GCP tokens are configured.
pub const SIM_GCP_TOKEN: &str = "sim-gcp-token";

/// `GET /computeMetadata/v1/instance/service-accounts/default/token`: a GCE metadata
/// server's access token, so a gateway's GCP application-default credentials (metadata
/// server flavour) can be exercised end to end. Hands out the first configured GCP
/// token, or [`SIM_GCP_TOKEN`].
pub(crate) async fn metadata_token(
    axum::extract::State(shared): super::Sim,
    headers: HeaderMap,
) -> Response {
    if header_str(&headers, "metadata-flavor") != Some("Google") {
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({"error": "missing Metadata-Flavor: Google header"}),
        );
    }
    let token = shared
        .cfg
        .gcp_tokens
        .as_ref()
        .and_then(|t| t.first())
        .map_or(SIM_GCP_TOKEN, |s| s.expose());
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
    )
}
