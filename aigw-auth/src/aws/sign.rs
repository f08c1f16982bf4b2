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
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use std::time::SystemTime;

/// The AWS service name Bedrock runtime requests are signed for.
pub const SERVICE: &str = "bedrock";

/// The region encoded in a Bedrock runtime host name, if it is one.
///
/// The host must end in `bedrock-runtime[-fips].{region}.{suffix}` with `suffix` one of
/// `vpce.amazonaws.com`, `amazonaws.com` or `api.aws` and `region` one label of
/// `[a-z0-9-]`. Read from the end by hand rather than with a regex: this runs on every
/// signed request, and the regex search cost more than the rest of the signer's string
/// work (a property test compares the two).
///
/// ```
/// use aigw_auth::aws::region_from_host;
/// assert_eq!(region_from_host("bedrock-runtime.eu-west-1.amazonaws.com"), Some("eu-west-1"));
/// assert_eq!(region_from_host("bedrock-runtime-fips.us-east-1.amazonaws.com:443"), Some("us-east-1"));
/// assert_eq!(region_from_host("gateway.internal"), None);
/// ```
pub fn region_from_host(authority: &str) -> Option<&str> {
    let host = strip_port(authority);
    // `vpce.amazonaws.com` first: it also ends in `amazonaws.com`, and a match with the
    // longer suffix starts further left (where a regex search would find it).
    [".vpce.amazonaws.com", ".amazonaws.com", ".api.aws"]
        .iter()
        .find_map(|suffix| region_before(host.strip_suffix(suffix)?))
}

/// `rest` is the host without its AWS suffix: its last label is the region if the one
/// before it ends in `bedrock-runtime` or `bedrock-runtime-fips`.
fn region_before(rest: &str) -> Option<&str> {
    let (front, region) = rest.rsplit_once('.')?;
    let is_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (is_region && (front.ends_with("bedrock-runtime") || front.ends_with("bedrock-runtime-fips")))
        .then_some(region)
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
///
/// The usual Bedrock request (a plain path, no query) is signed here with the day's
/// signing key from [`SigningKeys`]: deriving it is four HMACs, and aws-sigv4 derives it
/// again for every request. Anything else (a query string, a path that needs
/// normalising or escaping) goes through aws-sigv4 whole. Both produce the same headers
/// (the tests compare them).
pub(crate) fn sign_request(
    req: &mut OutgoingRequest,
    keys: &AwsKeys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    if fast_path_applies(&req.path) {
        return sign_fast(req, keys, region, service, time);
    }
    sign_with_sdk(req, keys, region, service, time)
}

/// A path the fast signer canonicalises exactly as aws-sigv4 does: absolute, no query,
/// no empty, `.` or `..` segment, and only unreserved characters, `/` and `%` (which the
/// double encoding turns into `%25`).
fn fast_path_applies(path: &str) -> bool {
    path.starts_with('/')
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'%')
        })
        && path.as_bytes()[1..]
            .split(|&b| b == b'/')
            .all(|seg| !seg.is_empty() && seg != b"." && seg != b"..")
}

/// HMAC-SHA256, the MAC SigV4 signs with.
type HmacSha256 = Hmac<Sha256>;

/// Signing keys by secret, day, region and service: a key is valid for one day.
#[derive(Default)]
struct SigningKeys(std::sync::Mutex<Vec<CachedKey>>);

struct CachedKey {
    secret: Secret,
    date: String,
    region: String,
    service: String,
    /// The HMAC keyed with the day's signing key: keying hashes the inner and outer
    /// pads, two SHA-256 blocks a signature no longer spends.
    mac: HmacSha256,
}

/// Beyond this many (secret, day, region, service) combinations the cache starts over.
const MAX_CACHED_KEYS: usize = 64;

static SIGNING_KEYS: LazyLock<SigningKeys> = LazyLock::new(SigningKeys::default);

impl SigningKeys {
    fn get(
        &self,
        secret: &Secret,
        date: &str,
        region: &str,
        service: &str,
        time: SystemTime,
    ) -> Result<HmacSha256, String> {
        let hit = |k: &CachedKey| {
            k.date == date
                && k.region == region
                && k.service == service
                && k.secret.expose() == secret.expose()
        };
        if let Ok(keys) = self.0.lock()
            && let Some(k) = keys.iter().find(|k| hit(k))
        {
            return Ok(k.mac.clone());
        }
        let key = v4::generate_signing_key(secret.expose(), time, region, service);
        let mac = HmacSha256::new_from_slice(key.as_ref())
            .map_err(|_| "signing key rejected by HMAC".to_owned())?;
        if let Ok(mut keys) = self.0.lock() {
            // Yesterday's keys are never used again.
            keys.retain(|k| k.date == date);
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.push(CachedKey {
                secret: secret.clone(),
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
                mac: mac.clone(),
            });
        }
        Ok(mac)
    }
}

fn sign_fast(
    req: &mut OutgoingRequest,
    keys: &AwsKeys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    // The strings are appended into buffers sized up front: `format!` and
    // `hex::encode` allocated and went through the formatting machinery per piece.
    let t = time::OffsetDateTime::from(time);
    let mut amz_date = String::with_capacity(16);
    push_digits(&mut amz_date, u32::try_from(t.year()).unwrap_or(0), 4);
    push_digits(&mut amz_date, u32::from(u8::from(t.month())), 2);
    push_digits(&mut amz_date, u32::from(t.day()), 2);
    amz_date.push('T');
    push_digits(&mut amz_date, u32::from(t.hour()), 2);
    push_digits(&mut amz_date, u32::from(t.minute()), 2);
    push_digits(&mut amz_date, u32::from(t.second()), 2);
    amz_date.push('Z');
    let date = &amz_date[..8];
    let host = host_header(&req.scheme, &req.authority);
    let token = keys.session_token.map(Secret::expose);
    let signed_headers = if token.is_some() {
        "host;x-amz-date;x-amz-security-token"
    } else {
        "host;x-amz-date"
    };
    let mut canonical = String::with_capacity(256 + req.path.len());
    canonical.push_str(req.method.as_str());
    canonical.push('\n');
    // Double encoding: the path is already percent-encoded, so only `%` changes. A
    // byte loop: the path is short, and a `char` searcher cost more to set up per piece.
    let mut plain = 0;
    for (i, b) in req.path.bytes().enumerate() {
        if b == b'%' {
            canonical.push_str(&req.path[plain..i]);
            canonical.push_str("%25");
            plain = i + 1;
        }
    }
    canonical.push_str(&req.path[plain..]);
    canonical.push_str("\n\nhost:");
    canonical.push_str(&trim_all(host));
    canonical.push_str("\nx-amz-date:");
    canonical.push_str(&amz_date);
    canonical.push('\n');
    if let Some(token) = token {
        // aws-sigv4 (and AWS) take the token as it is, untrimmed.
        canonical.push_str("x-amz-security-token:");
        canonical.push_str(token);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(signed_headers);
    canonical.push('\n');
    push_hex(&mut canonical, &Sha256::digest(&req.body));
    let scope_start = "AWS4-HMAC-SHA256\n".len() + amz_date.len() + 1;
    let mut string_to_sign = String::with_capacity(160);
    string_to_sign.push_str("AWS4-HMAC-SHA256\n");
    string_to_sign.push_str(&amz_date);
    string_to_sign.push('\n');
    string_to_sign.push_str(date);
    string_to_sign.push('/');
    string_to_sign.push_str(region);
    string_to_sign.push('/');
    string_to_sign.push_str(service);
    string_to_sign.push_str("/aws4_request");
    let scope_end = string_to_sign.len();
    string_to_sign.push('\n');
    push_hex(&mut string_to_sign, &Sha256::digest(canonical.as_bytes()));
    let scope = &string_to_sign[scope_start..scope_end];
    let mut mac = SIGNING_KEYS.get(keys.secret_access_key, date, region, service, time)?;
    mac.update(string_to_sign.as_bytes());
    let signature = mac.finalize().into_bytes();
    let access_key_id = keys.access_key_id.expose();
    let mut authorization = String::with_capacity(
        96 + access_key_id.len() + scope.len() + signed_headers.len() + 2 * signature.len(),
    );
    authorization.push_str("AWS4-HMAC-SHA256 Credential=");
    authorization.push_str(access_key_id);
    authorization.push('/');
    authorization.push_str(scope);
    authorization.push_str(", SignedHeaders=");
    authorization.push_str(signed_headers);
    authorization.push_str(", Signature=");
    push_hex(&mut authorization, &signature);
    // Each `remove` hashes its name and probes even when absent, as these usually
    // are: one pass over the few names present finds the ones to remove.
    let present = STALE.map(|name| req.headers.keys().any(|k| k.as_str() == name));
    for (stale, present) in STALE.iter().zip(present) {
        if present {
            req.headers.remove(*stale);
        }
    }
    let value = |v: &str| {
        HeaderValue::try_from(v).map_err(|_| "signer produced an invalid header value".to_owned())
    };
    let mut auth = value(&authorization)?;
    auth.set_sensitive(true);
    req.headers.insert(http::header::AUTHORIZATION, auth);
    req.headers
        .insert(HeaderName::from_static("x-amz-date"), value(&amz_date)?);
    if let Some(token) = token {
        let mut v = value(token)?;
        v.set_sensitive(true);
        req.headers
            .insert(HeaderName::from_static("x-amz-security-token"), v);
    }
    Ok(())
}

/// Appends `n` as exactly `width` decimal digits (zero-padded; higher digits dropped,
/// which no date field of a `SystemTime` has).
fn push_digits(out: &mut String, mut n: u32, width: usize) {
    // Right to left into a buffer, appended once.
    let mut buf = [b'0'; 4];
    let digits = &mut buf[..width.min(4)];
    for d in digits.iter_mut().rev() {
        *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
    }
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Appends a 32-byte digest as lowercase hex: written into a buffer on the stack and
/// appended once (a `char` push per digit checked capacity and encoded each).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for (pair, &b) in buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    let len = 2 * bytes.len().min(32);
    out.push_str(std::str::from_utf8(&buf[..len]).unwrap_or_default());
}

/// A header value as SigV4 canonicalises it: outer spaces trimmed, inner runs of
/// spaces collapsed (aws-sigv4's `trim_all`).
fn trim_all(v: &str) -> std::borrow::Cow<'_, str> {
    let t = v.trim_matches(' ');
    // A byte pair search: `str::contains` set up a substring searcher per call.
    if !t.as_bytes().windows(2).any(|w| w == b"  ") {
        return std::borrow::Cow::Borrowed(t);
    }
    let mut out = String::with_capacity(t.len());
    let mut space = false;
    for c in t.chars() {
        if c == ' ' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Headers a previous attempt's signature left behind.
const STALE: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Signs with aws-sigv4 for requests the fast path does not cover.
fn sign_with_sdk(
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
    // Each `remove` hashes its name and probes even when absent, as these usually
    // are: one pass over the few names present finds the ones to remove.
    let present = STALE.map(|name| req.headers.keys().any(|k| k.as_str() == name));
    for (stale, present) in STALE.iter().zip(present) {
        if present {
            req.headers.remove(*stale);
        }
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
    use proptest::prelude::*;

    fn request(path: &str, body: &[u8], authority: &str) -> OutgoingRequest {
        let mut r = OutgoingRequest {
            method: http::Method::POST,
            scheme: "https".into(),
            authority: authority.into(),
            path: path.into(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::copy_from_slice(body),
        };
        r.headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    type Headers = Vec<(String, Vec<u8>, bool)>;

    fn both(path: &str, body: &[u8], token: Option<&str>, secs: u64) -> (Headers, Headers) {
        let akid = Secret::new("AKIDEXAMPLE");
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let token = token.map(Secret::new);
        let keys = AwsKeys {
            access_key_id: &akid,
            secret_access_key: &secret,
            session_token: token.as_ref(),
        };
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let host = "bedrock-runtime.us-east-1.amazonaws.com";
        let mut fast = request(path, body, host);
        sign_fast(&mut fast, &keys, "us-east-1", SERVICE, time).unwrap();
        let mut sdk = request(path, body, host);
        sign_with_sdk(&mut sdk, &keys, "us-east-1", SERVICE, time).unwrap();
        (sorted(&fast.headers), sorted(&sdk.headers))
    }

    /// Names, values and sensitivity, in name order.
    fn sorted(h: &http::HeaderMap) -> Vec<(String, Vec<u8>, bool)> {
        let mut v: Vec<_> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec(), v.is_sensitive()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn fast_path_matches_aws_sigv4() {
        for token in [None, Some("FwoGZXIvYXdzEJr//token  with  spaces ")] {
            let (fast, sdk) = both(
                "/model/us.amazon.nova-micro-v1%3A0/converse-stream",
                br#"{"messages":[]}"#,
                token,
                1_767_225_600,
            );
            assert_eq!(fast, sdk);
            assert!(
                fast.iter()
                    .any(|(k, _, sensitive)| k == "authorization" && *sensitive)
            );
        }
        // The cached key of the same day signs the next request identically.
        let (fast, sdk) = both("/model/m/converse", b"{}", None, 1_767_225_600 + 3_600);
        assert_eq!(fast, sdk);
    }

    /// A request signed again (a retry, now without a session token) carries only the
    /// new signature's headers: the stale ones are removed, the absent ones untouched.
    #[test]
    fn signing_again_replaces_the_previous_signature() {
        let akid = Secret::new("AKIDEXAMPLE");
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let token = Secret::new("token");
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
        let host = "bedrock-runtime.us-east-1.amazonaws.com";
        let path = "/model/m/converse";
        let with_token = AwsKeys {
            access_key_id: &akid,
            secret_access_key: &secret,
            session_token: Some(&token),
        };
        let without = AwsKeys {
            session_token: None,
            ..with_token
        };
        for sign in [sign_fast, sign_with_sdk] {
            let mut again = request(path, b"{}", host);
            again.headers.insert(
                "x-amz-content-sha256",
                HeaderValue::from_static("UNSIGNED-PAYLOAD"),
            );
            sign(&mut again, &with_token, "us-east-1", SERVICE, time).unwrap();
            sign(&mut again, &without, "us-east-1", SERVICE, time).unwrap();
            let mut fresh = request(path, b"{}", host);
            sign(&mut fresh, &without, "us-east-1", SERVICE, time).unwrap();
            assert_eq!(sorted(&again.headers), sorted(&fresh.headers));
        }
    }

    #[test]
    fn fast_path_scope() {
        assert!(fast_path_applies(
            "/model/us.amazon.nova-micro-v1%3A0/converse"
        ));
        assert!(!fast_path_applies("/model/m/converse?x=1"));
        assert!(!fast_path_applies("/model/./converse"));
        assert!(!fast_path_applies("/model//converse"));
        assert!(!fast_path_applies("/model/m/"));
        assert!(!fast_path_applies("/model/a:b/converse"));
        assert!(!fast_path_applies("model"));
    }

    proptest! {
        #[test]
        fn fast_path_agrees_with_aws_sigv4_on_any_covered_request(
            segs in proptest::collection::vec("[A-Za-z0-9._~%-]{1,12}", 1..5),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            secs in 0u64..4_000_000_000,
            token in proptest::option::of("[A-Za-z0-9/+= ]{1,40}"),
        ) {
            let path = format!("/{}", segs.join("/"));
            prop_assume!(fast_path_applies(&path));
            prop_assume!(token.as_deref().is_none_or(|t| !t.trim_matches(' ').is_empty()));
            let (fast, sdk) = both(&path, &body, token.as_deref(), secs);
            prop_assert_eq!(fast, sdk);
        }
    }

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
        assert_eq!(
            region_from_host("bedrock-runtime.vpce.amazonaws.com"),
            Some("vpce")
        );
        assert_eq!(
            region_from_host("bedrock-runtime.bedrock-runtime.vpce.amazonaws.com"),
            Some("bedrock-runtime")
        );
        assert_eq!(
            region_from_host("bedrock-runtime.US-east-1.amazonaws.com"),
            None
        );
        assert_eq!(region_from_host("bedrock-runtime..amazonaws.com"), None);
    }

    /// The pattern the hand parser replaced, as the definition of a Bedrock host.
    fn region_by_regex(authority: &str) -> Option<String> {
        static RE: LazyLock<regex::Regex> = LazyLock::new(|| {
            regex::Regex::new(
                r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.(?:vpce\.amazonaws\.com|amazonaws\.com|api\.aws)$",
            )
            .unwrap()
        });
        RE.captures(strip_port(authority))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned())
    }

    proptest! {
        #[test]
        fn region_parser_agrees_with_the_host_pattern(
            labels in proptest::collection::vec(
                prop_oneof![
                    Just("bedrock-runtime".to_owned()),
                    Just("bedrock-runtime-fips".to_owned()),
                    Just("vpce".to_owned()),
                    Just("amazonaws".to_owned()),
                    Just("com".to_owned()),
                    Just("api".to_owned()),
                    Just("aws".to_owned()),
                    Just(String::new()),
                    "[a-z0-9-]{1,12}",
                    "[A-Za-z0-9_-]{0,6}(bedrock-runtime)?",
                    "[a-z0-9.:-]{0,10}",
                ],
                0..7,
            ),
            port in proptest::option::of("[0-9a-z]{0,5}"),
        ) {
            let mut host = labels.join(".");
            if let Some(p) = port {
                host.push(':');
                host.push_str(&p);
            }
            prop_assert_eq!(region_from_host(&host).map(str::to_owned), region_by_regex(&host));
        }

        #[test]
        fn region_parser_agrees_on_near_bedrock_hosts(
            prefix in "[a-z0-9.-]{0,12}",
            fips in "(-fips)?",
            region in "[a-zA-Z0-9._-]{0,12}",
            suffix in prop_oneof![
                Just("vpce.amazonaws.com"),
                Just("amazonaws.com"),
                Just("api.aws"),
                Just("amazonaws.co"),
                Just("vpce.api.aws"),
            ],
            port in proptest::option::of("[0-9]{1,5}"),
        ) {
            let mut host = format!("{prefix}bedrock-runtime{fips}.{region}.{suffix}");
            if let Some(p) = port {
                host.push(':');
                host.push_str(&p);
            }
            prop_assert_eq!(region_from_host(&host).map(str::to_owned), region_by_regex(&host));
        }
    }
}
