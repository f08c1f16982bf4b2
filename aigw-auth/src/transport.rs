//! The HTTP client used for token endpoints, and the reduction of their error bodies to
//! something safe to put in an error message.

use crate::error::AuthError;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP client for token endpoints (STS, Entra ID, Google OAuth, metadata servers).
///
/// TLS uses rustls with the aws-lc-rs provider and the webpki root set; redirects are not
/// followed (a token request must never be replayed to another host).
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
}

/// A response from a token endpoint.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl HttpClient {
    /// Builds a client with a request timeout of `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, AuthError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AuthError::config("-", format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let inner = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| AuthError::config("-", format!("HTTP client setup: {e}")))?;
        Ok(Self { inner })
    }

    /// Wraps an existing `reqwest` client (its redirect policy should be `none`).
    pub const fn from_reqwest(inner: reqwest::Client) -> Self {
        Self { inner }
    }

    /// The underlying client, for the `oauth2` crate.
    pub(crate) const fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends `req`; maps transport failures to [`AuthError::TokenEndpoint`].
    pub(crate) async fn send(
        &self,
        policy: &str,
        endpoint: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<HttpResponse, AuthError> {
        let transport = |e: reqwest::Error| AuthError::TokenEndpoint {
            policy: policy.to_owned(),
            endpoint: strip_query(endpoint).to_owned(),
            status: None,
            // Without the URL: the error text of reqwest repeats it, query included.
            message: describe_transport(&e.without_url()),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport)?;
        tracing::trace!(
            policy,
            endpoint = strip_query(endpoint),
            status,
            "token endpoint answered"
        );
        Ok(HttpResponse { status, body })
    }

    /// Starts a request.
    pub(crate) fn request(&self, method: http::Method, url: &str) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Builds a POST of an `application/x-www-form-urlencoded` body.
    pub(crate) fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.inner
            .post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(encode_form(form))
    }
}

/// An [`HttpClient`] built on first use, for providers that may never need one.
#[derive(Debug, Default)]
pub(crate) struct LazyHttp {
    client: std::sync::Mutex<Option<HttpClient>>,
}

impl LazyHttp {
    pub(crate) fn set(&self, client: HttpClient) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
    }

    pub(crate) fn get(&self, policy: &str) -> Result<HttpClient, AuthError> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = HttpClient::new(DEFAULT_TIMEOUT).map_err(|e| match e {
            AuthError::Config { message, .. } => AuthError::config(policy, message),
            other => other,
        })?;
        *guard = Some(c.clone());
        Ok(c)
    }
}

/// Timeout of token requests unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        msg
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub(crate) fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_escape(k, &mut out);
        out.push('=');
        form_escape(v, &mut out);
    }
    out
}

fn form_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
}

pub(crate) fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

const MAX_DESCRIPTION: usize = 200;

/// Reduces an error body to its error code and a short description.
///
/// Token endpoints answer with OAuth (`error`, `error_description`), Google
/// (`error.status`, `error.message`) or AWS XML (`<Code>`, `<Message>`) shapes. Only those
/// fields are kept, truncated, so a body that echoes the request cannot leak it whole.
pub(crate) fn summarize_error(status: u16, body: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let mut push = |x: Option<&serde_json::Value>| {
            if let Some(s) = x.and_then(serde_json::Value::as_str) {
                parts.push(truncate(s));
            }
        };
        match v.get("error") {
            Some(serde_json::Value::Object(o)) => {
                push(o.get("status"));
                push(o.get("message"));
            }
            e => {
                push(e);
                push(v.get("error_description"));
            }
        }
    } else if let Ok(text) = std::str::from_utf8(body) {
        for tag in ["Code", "Message"] {
            if let Some(s) = xml_text(text, tag) {
                parts.push(truncate(&s));
            }
        }
    }
    if parts.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", parts.join(": "))
    }
}

fn truncate(s: &str) -> String {
    let first_line = s.lines().next().unwrap_or("");
    if first_line.len() <= MAX_DESCRIPTION {
        return first_line.to_owned();
    }
    let mut end = MAX_DESCRIPTION;
    while !first_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &first_line[..end])
}

/// The unescaped text of the first `<tag>…</tag>` element.
pub(crate) fn xml_text(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = start + doc[start..].find(&close)?;
    Some(xml_unescape(doc[start..end].trim()))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved() {
        assert_eq!(
            encode_form(&[("a b", "x/y+z=&"), ("k", "v~")]),
            "a+b=x%2Fy%2Bz%3D%26&k=v%7E"
        );
    }

    #[test]
    fn summaries_keep_codes_only() {
        assert_eq!(
            summarize_error(
                401,
                br#"{"error":"invalid_client","error_description":"bad secret","echo":"s3cr3t"}"#
            ),
            "HTTP 401: invalid_client: bad secret"
        );
        assert_eq!(
            summarize_error(
                403,
                br#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"no"}}"#
            ),
            "HTTP 403: PERMISSION_DENIED: no"
        );
        assert_eq!(
            summarize_error(
                400,
                b"<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>a &amp; b</Message></Error></ErrorResponse>"
            ),
            "HTTP 400: InvalidIdentityToken: a & b"
        );
        assert_eq!(summarize_error(500, b"token=s3cr3t"), "HTTP 500");
    }
}
