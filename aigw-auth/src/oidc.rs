//! OAuth2 client-credentials tokens from an OIDC provider, the input of every federated
//! flow (`oidcExchangeToken` for AWS, Azure and GCP).

use crate::error::AuthError;
use crate::transport::{HttpClient, describe_transport, strip_query};
use aigw_core::Secret;
use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use std::time::SystemTime;

/// An OIDC provider's client-credentials grant (Envoy Gateway's `OIDC` type).
#[derive(Debug, Clone)]
pub struct OidcClientCredentials {
    /// The token endpoint, e.g. `https://issuer.example/oauth2/token`. When empty it is
    /// discovered from `{issuer}/.well-known/openid-configuration` on each fetch.
    pub token_endpoint: String,
    /// The issuer, for discovery.
    pub issuer: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// An `audience` parameter, for providers that need one.
    pub audience: Option<String>,
    /// Send the client secret in the form body instead of HTTP Basic authentication.
    pub secret_in_body: bool,
}

/// An access token with its expiry.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) token: Secret,
    pub(crate) expires_at: Option<SystemTime>,
}

impl OidcClientCredentials {
    /// Runs the grant.
    pub(crate) async fn fetch(
        &self,
        http: &HttpClient,
        policy: &str,
        now: SystemTime,
    ) -> Result<AccessToken, AuthError> {
        let endpoint = if self.token_endpoint.is_empty() {
            self.discover(http, policy).await?
        } else {
            self.token_endpoint.clone()
        };
        client_credentials(
            http,
            policy,
            now,
            ClientCredentialsRequest {
                token_endpoint: &endpoint,
                client_id: &self.client_id,
                client_secret: Some(&self.client_secret),
                scopes: &self.scopes,
                extra: self
                    .audience
                    .as_deref()
                    .map(|a| vec![("audience", a.to_owned())])
                    .unwrap_or_default(),
                secret_in_body: self.secret_in_body,
            },
        )
        .await
    }
}

impl OidcClientCredentials {
    async fn discover(&self, http: &HttpClient, policy: &str) -> Result<String, AuthError> {
        let Some(issuer) = self.issuer.as_deref().filter(|i| !i.is_empty()) else {
            return Err(AuthError::config(
                policy,
                "OIDC provider has neither tokenEndpoint nor issuer",
            ));
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let resp = http
            .send(policy, &url, http.request(http::Method::GET, &url))
            .await?;
        let fail = |message: String| AuthError::TokenEndpoint {
            policy: policy.to_owned(),
            endpoint: url.clone(),
            status: Some(resp.status),
            message,
        };
        if !(200..300).contains(&resp.status) {
            return Err(fail(crate::transport::summarize_error(
                resp.status,
                &resp.body,
            )));
        }
        serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("token_endpoint")?.as_str().map(str::to_owned))
            .ok_or_else(|| fail("discovery document lacks token_endpoint".to_owned()))
    }
}

pub(crate) struct ClientCredentialsRequest<'a> {
    pub(crate) token_endpoint: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: Option<&'a Secret>,
    pub(crate) scopes: &'a [String],
    pub(crate) extra: Vec<(&'static str, String)>,
    pub(crate) secret_in_body: bool,
}

/// One OAuth2 `client_credentials` token request through the `oauth2` crate.
pub(crate) async fn client_credentials(
    http: &HttpClient,
    policy: &str,
    now: SystemTime,
    req: ClientCredentialsRequest<'_>,
) -> Result<AccessToken, AuthError> {
    let endpoint = strip_query(req.token_endpoint).to_owned();
    let token_url = TokenUrl::new(req.token_endpoint.to_owned())
        .map_err(|_| AuthError::config(policy, format!("invalid token URL {endpoint}")))?;
    let mut client = BasicClient::new(ClientId::new(req.client_id.to_owned()))
        .set_token_uri(token_url)
        .set_auth_type(if req.secret_in_body {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
    if let Some(s) = req.client_secret {
        client = client.set_client_secret(ClientSecret::new(s.expose().to_owned()));
    }
    let mut token_req = client.exchange_client_credentials();
    for s in req.scopes {
        token_req = token_req.add_scope(Scope::new(s.clone()));
    }
    for (k, v) in req.extra {
        token_req = token_req.add_extra_param(k, v);
    }
    let fail = |status: Option<u16>, message: String| AuthError::TokenEndpoint {
        policy: policy.to_owned(),
        endpoint: endpoint.clone(),
        status,
        message,
    };
    let resp = token_req
        .request_async(http.reqwest())
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => fail(None, describe_oauth_error(&r)),
            RequestTokenError::Request(e) => fail(
                None,
                match e {
                    oauth2::HttpClientError::Reqwest(r) => describe_transport(&r.without_url()),
                    other => other.to_string(),
                },
            ),
            // The parse error carries the response body, which may hold a token: drop it.
            RequestTokenError::Parse(_, _) => fail(None, "unparseable token response".to_owned()),
            RequestTokenError::Other(m) => fail(None, m),
        })?;
    tracing::debug!(policy, endpoint = %endpoint, "obtained client-credentials token");
    Ok(AccessToken {
        token: Secret::new(resp.access_token().secret().clone()),
        expires_at: resp.expires_in().map(|d| now + d),
    })
}

fn describe_oauth_error(r: &BasicErrorResponse) -> String {
    let code = r.error().as_ref().to_owned();
    match r.error_description() {
        Some(d) => {
            let d: String = d.lines().next().unwrap_or("").chars().take(200).collect();
            format!("{code}: {d}")
        }
        None => code,
    }
}
