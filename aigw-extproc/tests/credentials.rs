//! Credentials through the ext_proc protocol with a real configuration: every policy is
//! built by aigw-auth, GCP routes get the Vertex project path, and
//! `credentialOverride.fromDynamicMetadata` reads the request's Envoy metadata.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_core::config::Config;
use aigw_extproc::config::ConfigCatalog;
use aigw_extproc::envoy::Plan;
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{Bound, ListenAddr, serve_grpc};
use aigw_extproc::wire;
use aigw_extproc::{Processor, Runtime};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, Metadata};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    CommonResponse, HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

const AUTHZ_NS: &str = "envoy.filters.http.ext_authz";

const CONFIG: &str = r#"
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: vertex, namespace: default}
spec:
  endpoints: [{fqdn: {hostname: us-central1-aiplatform.googleapis.com, port: 443}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: vertex, namespace: default}
spec:
  schema: {name: GCPVertexAI}
  backendRef: {name: vertex, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {name: vertex, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: vertex}]
  type: GCPCredentials
  gcpCredentials: {projectName: my-proj, region: us-central1, isPassthrough: true}
  credentialOverride:
    fromDynamicMetadata: {namespace: envoy.filters.http.ext_authz, fallbackToConfigured: false}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: oai, namespace: default}
spec:
  endpoints: [{fqdn: {hostname: api.openai.com, port: 443}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: oai, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: oai, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: v1
kind: Secret
metadata: {name: oai-key, namespace: default}
type: Opaque
stringData: {apiKey: sk-configured}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {name: oai, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: oai}]
  type: APIKey
  apiKey: {secretRef: {name: oai-key}}
  credentialOverride:
    fromRequestHeaders: {}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: byok, namespace: default}
spec:
  endpoints: [{fqdn: {hostname: byok.example, port: 443}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: byok, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: byok, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {name: byok, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: byok}]
  type: APIKey
  apiKey: {secretRef: {name: oai-key}}
  credentialOverride:
    fromDynamicMetadata: {namespace: envoy.filters.http.ext_authz, key: user-key, fallbackToConfigured: false}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: bedrock, namespace: default}
spec:
  endpoints: [{fqdn: {hostname: bedrock-runtime.us-east-1.amazonaws.com, port: 443}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: bedrock, namespace: default}
spec:
  schema: {name: AWSBedrock}
  backendRef: {name: bedrock, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {name: bedrock, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: bedrock}]
  type: AWSCredentials
  awsCredentials: {region: us-east-1}
  credentialOverride:
    fromDynamicMetadata: {namespace: envoy.filters.http.ext_authz, fallbackToConfigured: false}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: chat, namespace: default}
spec:
  rules:
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: gemini-2.0-flash}]}]
      backendRefs: [{name: vertex}]
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: gpt-4o}]}]
      backendRefs: [{name: oai}]
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: byok}]}]
      backendRefs: [{name: byok}]
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: anthropic.claude-3-haiku}]}]
      backendRefs: [{name: bedrock}]
"#;

struct Harness {
    client: ExternalProcessorClient<Channel>,
    /// Per-rule backend name per AIServiceBackend name.
    backends: HashMap<String, String>,
}

async fn start() -> Harness {
    let config = Config::from_yaml_str(CONFIG, "credentials.yaml").unwrap();
    let plan = Plan::from_config(&config).unwrap();
    let backends = plan
        .clusters
        .iter()
        .flat_map(|c| &c.endpoints)
        .map(|e| {
            let name = e.backend_name.split('/').nth(1).unwrap().to_owned();
            (name, e.backend_name.clone())
        })
        .collect();
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::new(&config).unwrap()),
        Arc::new(aigw_providers::ProviderFactory),
    );
    let processor = Processor::new(
        Arc::new(ArcSwap::from_pointee(runtime)),
        Arc::new(Metrics::default()),
    );
    let bound = Bound::bind(&ListenAddr::parse("127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let Some(ListenAddr::Tcp(addr)) = bound.local_addr() else {
        panic!("tcp")
    };
    tokio::spawn(serve_grpc(
        bound,
        processor,
        64 << 20,
        Arc::new(AtomicBool::new(false)),
        std::future::pending(),
    ));
    let client = ExternalProcessorClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Harness { client, backends }
}

struct Stream {
    tx: mpsc::Sender<ProcessingRequest>,
    rx: Streaming<ProcessingResponse>,
}

impl Harness {
    async fn open(&mut self) -> Stream {
        let (tx, rx) = mpsc::channel(8);
        let rx = self
            .client
            .process(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Stream { tx, rx }
    }

    /// Runs a request through the router stream (with `metadata` on its first message,
    /// as Envoy forwards it), then the upstream stream for `backend`; returns the
    /// upstream stream's reply.
    async fn request(
        &mut self,
        model: &str,
        backend: &str,
        extra: &[(&str, &str)],
        metadata: Option<Metadata>,
    ) -> ProcessingResponse {
        let mut router = self.open().await;
        let mut pairs = vec![
            (":path", "/v1/chat/completions"),
            (":method", "POST"),
            ("x-request-id", "rid"),
            ("content-type", "application/json"),
        ];
        pairs.extend_from_slice(extra);
        let mut first = headers_msg(&pairs);
        first.metadata_context = metadata;
        let r = router.send(first).await;
        let id = set_header(common(&r), wire::INTERNAL_REQUEST_ID)
            .unwrap()
            .to_owned();
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
        let r = router
            .send(ProcessingRequest {
                request: Some(Msg::RequestBody(HttpBody {
                    body: body.into_bytes(),
                    end_of_stream: true,
                    ..Default::default()
                })),
                ..Default::default()
            })
            .await;
        assert_eq!(set_header(common(&r), "x-ai-eg-model"), Some(model));

        let mut up = self.open().await;
        let backend_name = self.backends[backend].clone();
        let mut fields = std::collections::HashMap::new();
        fields.insert(
            wire::ATTR_HOST_BACKEND.to_owned(),
            Value {
                kind: Some(Kind::StringValue(backend_name)),
            },
        );
        let mut msg = headers_msg(
            &[
                &pairs[..],
                &[
                    (wire::INTERNAL_REQUEST_ID, id.as_str()),
                    (":authority", "x"),
                ],
            ]
            .concat(),
        );
        msg.attributes
            .insert("envoy.filters.http.ext_proc".into(), Struct { fields });
        // As Envoy does: the upstream filter forwards no namespace and sends it empty.
        msg.metadata_context = Some(Metadata::default());
        let reply = up.send(msg).await;
        drop(router);
        reply
    }
}

impl Stream {
    async fn send(&mut self, req: ProcessingRequest) -> ProcessingResponse {
        self.tx.send(req).await.unwrap();
        self.rx.message().await.unwrap().expect("a reply")
    }
}

fn headers_msg(pairs: &[(&str, &str)]) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: pairs
                    .iter()
                    .map(|(k, v)| HeaderValue {
                        key: (*k).into(),
                        value: String::new(),
                        raw_value: v.as_bytes().to_vec(),
                    })
                    .collect(),
            }),
            end_of_stream: false,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn common(r: &ProcessingResponse) -> &CommonResponse {
    match r.response.as_ref().unwrap() {
        Reply::RequestHeaders(h) | Reply::ResponseHeaders(h) => h.response.as_ref().unwrap(),
        Reply::RequestBody(b) | Reply::ResponseBody(b) => b.response.as_ref().unwrap(),
        other => panic!("not a common response: {other:?}"),
    }
}

fn set_header<'a>(c: &'a CommonResponse, name: &str) -> Option<&'a str> {
    c.header_mutation
        .as_ref()?
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| std::str::from_utf8(&h.raw_value).unwrap())
}

fn removed(c: &CommonResponse, name: &str) -> bool {
    c.header_mutation
        .as_ref()
        .is_some_and(|m| m.remove_headers.iter().any(|h| h == name))
}

fn no_internal_header_set(c: &CommonResponse) {
    let Some(m) = c.header_mutation.as_ref() else {
        return;
    };
    for h in m.set_headers.iter().filter_map(|o| o.header.as_ref()) {
        assert!(
            !h.key.starts_with("x-aigw-"),
            "{} would reach the backend",
            h.key
        );
    }
}

fn metadata(key: &str, value: Kind) -> Metadata {
    let mut inner = Struct::default();
    inner.fields.insert(key.into(), Value { kind: Some(value) });
    let mut m = Metadata::default();
    m.filter_metadata.insert(AUTHZ_NS.into(), inner);
    m
}

fn immediate_status(r: &ProcessingResponse) -> Option<i32> {
    match r.response.as_ref()? {
        Reply::ImmediateResponse(i) => i.status.as_ref().map(|s| s.code),
        _ => None,
    }
}

#[tokio::test]
async fn gcp_route_gets_project_prefix_and_metadata_token() {
    let mut h = start().await;
    let md = metadata(
        "x-aigw-gcp-access-token",
        Kind::StringValue("ya29.from-authz".into()),
    );
    // A client trying to supply the metadata credential itself is ignored.
    let r = h
        .request(
            "gemini-2.0-flash",
            "vertex",
            &[("x-aigw-internal-metadata-credential", "ya29.client")],
            Some(md),
        )
        .await;
    let c = common(&r);
    assert_eq!(
        set_header(c, ":path"),
        Some(
            "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent"
        )
    );
    assert_eq!(
        set_header(c, ":authority"),
        Some("us-central1-aiplatform.googleapis.com")
    );
    assert_eq!(
        set_header(c, "authorization"),
        Some("Bearer ya29.from-authz")
    );
    assert!(removed(c, "x-aigw-internal-metadata-credential"));
    no_internal_header_set(c);
}

#[tokio::test]
async fn metadata_override_without_fallback_is_401_when_absent() {
    let mut h = start().await;
    // A client-sent staging header must not count as the metadata credential.
    let r = h
        .request(
            "byok",
            "byok",
            &[("x-aigw-internal-metadata-credential", "sk-client")],
            None,
        )
        .await;
    assert_eq!(immediate_status(&r), Some(401), "{r:?}");

    let md = metadata("user-key", Kind::StringValue("sk-user".into()));
    let r = h.request("byok", "byok", &[], Some(md)).await;
    let c = common(&r);
    assert_eq!(set_header(c, "authorization"), Some("Bearer sk-user"));
    no_internal_header_set(c);
}

#[tokio::test]
async fn aws_metadata_struct_signs_the_request() {
    let mut h = start().await;
    let mut creds = Struct::default();
    for (k, v) in [
        ("accessKeyId", "AKIAFROMAUTHZ"),
        ("secretAccessKey", "secret"),
        ("sessionToken", "session"),
    ] {
        creds.fields.insert(
            k.into(),
            Value {
                kind: Some(Kind::StringValue(v.into())),
            },
        );
    }
    let md = metadata("x-aigw-aws-credentials", Kind::StructValue(creds));
    let r = h
        .request("anthropic.claude-3-haiku", "bedrock", &[], Some(md))
        .await;
    let c = common(&r);
    let auth = set_header(c, "authorization").expect("signed");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAFROMAUTHZ/"),
        "{auth}"
    );
    assert_eq!(set_header(c, "x-amz-security-token"), Some("session"));
    assert_eq!(
        set_header(c, ":authority"),
        Some("bedrock-runtime.us-east-1.amazonaws.com")
    );
    no_internal_header_set(c);
}

#[tokio::test]
async fn request_header_override_is_used_and_never_forwarded() {
    let mut h = start().await;
    let r = h
        .request("gpt-4o", "oai", &[("x-aigw-api-key", "sk-caller")], None)
        .await;
    let c = common(&r);
    assert_eq!(set_header(c, "authorization"), Some("Bearer sk-caller"));
    assert!(
        removed(c, "x-aigw-api-key"),
        "override header must not leak"
    );

    let r = h.request("gpt-4o", "oai", &[], None).await;
    assert_eq!(
        set_header(common(&r), "authorization"),
        Some("Bearer sk-configured")
    );
}

/// A reload keeps the providers of unchanged policies (their token caches and refresh
/// state) and rebuilds those whose document or Secret changed.
#[tokio::test]
async fn reload_keeps_unchanged_providers() {
    use aigw_auth::AuthOptions;
    use aigw_extproc::Catalog;
    use aigw_extproc::credentials::ProviderCache;
    let cache = ProviderCache::default();
    let load = |yaml: &str| {
        let config = Config::from_yaml_str(yaml, "credentials.yaml").unwrap();
        let names: HashMap<String, String> = Plan::from_config(&config)
            .unwrap()
            .clusters
            .iter()
            .flat_map(|c| &c.endpoints)
            .map(|e| {
                let name = e.backend_name.split('/').nth(1).unwrap().to_owned();
                (name, e.backend_name.clone())
            })
            .collect();
        let catalog = ConfigCatalog::build(&config, &AuthOptions::default(), Some(&cache)).unwrap();
        let provider = |b: &str| {
            catalog
                .target(&names[b])
                .unwrap()
                .credential
                .clone()
                .unwrap()
        };
        (provider("oai"), provider("vertex"))
    };
    let (oai1, vertex1) = load(CONFIG);
    let (oai2, vertex2) = load(CONFIG);
    assert!(Arc::ptr_eq(&oai1, &oai2), "unchanged policy was rebuilt");
    assert!(Arc::ptr_eq(&vertex1, &vertex2));

    let rotated = CONFIG.replace("apiKey: sk-configured", "apiKey: sk-rotated");
    let (oai3, vertex3) = load(&rotated);
    assert!(!Arc::ptr_eq(&oai2, &oai3), "a changed Secret must rebuild");
    // Same namespace, so every policy there is rebuilt: conservative, never stale.
    assert!(!Arc::ptr_eq(&vertex2, &vertex3));

    let moved = rotated.replace("projectName: my-proj", "projectName: other-proj");
    let (oai4, vertex4) = load(&moved);
    assert!(Arc::ptr_eq(&oai3, &oai4));
    assert!(
        !Arc::ptr_eq(&vertex2, &vertex4),
        "a changed policy must rebuild"
    );
}
