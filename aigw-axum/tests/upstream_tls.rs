//! Upstream TLS from a BackendTLSPolicy: the backend's own CA bundle (ConfigMap
//! `ca.crt`) and `validation.hostname` as SNI, against a local rustls server whose
//! certificate a freshly generated CA signed; and every endpoint of a Backend is tried
//! when the first refuses the connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_axum::{Gateway, config, credentials};
use aigw_core::config::{Config, SecretSource};
use bytes::Bytes;
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls;

struct Pki {
    ca_pem: String,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn make_pki(server_name: &str) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "aigw test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params = rcgen::CertificateParams::new(vec![server_name.to_owned()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// A TLS upstream answering chat completions; records the SNI of each handshake.
async fn tls_upstream(pki: &Pki) -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let snis = Arc::new(Mutex::new(Vec::new()));
    let seen = snis.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                seen.lock()
                    .unwrap()
                    .push(tls.get_ref().1.server_name().map(str::to_owned));
                let service = hyper::service::service_fn(|_req| async {
                    let body = serde_json::json!({
                        "id": "x", "object": "chat.completion", "created": 0, "model": "up",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "over tls"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
                    });
                    let mut r = http::Response::new(Full::new(Bytes::from(body.to_string())));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (addr, snis)
}

fn yaml(ports: &[u16], validation: &str, ca_pem: &str) -> String {
    let endpoints: String = ports
        .iter()
        .map(|p| format!("    - ip:\n        address: 127.0.0.1\n        port: {p}\n"))
        .collect();
    let ca: String = ca_pem.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata:
  name: r
  namespace: default
spec:
  rules:
    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: m
      backendRefs:
        - name: b
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata:
  name: b
  namespace: default
spec:
  schema:
    name: OpenAI
  backendRef:
    name: b
    kind: Backend
    group: gateway.envoyproxy.io
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: b
  namespace: default
spec:
  endpoints:
{endpoints}---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: BackendTLSPolicy
metadata:
  name: b-tls
  namespace: default
spec:
  targetRefs:
    - group: gateway.envoyproxy.io
      kind: Backend
      name: b
  validation:
{validation}    hostname: upstream.test
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: upstream-ca
  namespace: default
data:
  ca.crt: |
{ca}"#
    )
}

async fn gateway(yaml: &str) -> String {
    let config = Config::from_yaml_str(yaml, "tls.yaml").unwrap();
    let snapshot = config::snapshot_with_secrets(
        &config,
        &SecretSource::from_config(&config),
        Arc::new(aigw_providers::ProviderFactory),
        &credentials::default_resolver(),
    )
    .unwrap();
    let gw = Gateway::builder(snapshot)
        .settings(support::fast_settings())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = gw.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn chat(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

const CA_REF: &str = "    caCertificateRefs:\n      - group: \"\"\n        kind: ConfigMap\n        name: upstream-ca\n";

#[tokio::test]
async fn backend_ca_and_sni_from_the_policy_and_every_endpoint_tried() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = make_pki("upstream.test");
    let (addr, snis) = tls_upstream(&pki).await;
    let dead = support::refused_addr().await;
    // The first endpoint refuses connections; the second is the TLS upstream, whose
    // certificate is for upstream.test (not 127.0.0.1) and signed by the test CA only.
    let url = gateway(&yaml(&[dead.port(), addr.port()], CA_REF, &pki.ca_pem)).await;
    let r = chat(&url).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "over tls");
    assert_eq!(
        snis.lock().unwrap().first().cloned().flatten().as_deref(),
        Some("upstream.test")
    );
}

#[tokio::test]
async fn certificate_from_an_untrusted_ca_is_refused() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = make_pki("upstream.test");
    let (addr, _) = tls_upstream(&pki).await;
    // System roots only: the test CA is unknown, the handshake fails, nothing is served.
    let url = gateway(&yaml(
        &[addr.port()],
        "    wellKnownCACertificates: System\n",
        &pki.ca_pem,
    ))
    .await;
    let r = chat(&url).await;
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // A CA bundle for another CA is refused too.
    let other = make_pki("upstream.test");
    let url = gateway(&yaml(&[addr.port()], CA_REF, &other.ca_pem)).await;
    assert_eq!(chat(&url).await.status(), 502);
}

#[tokio::test]
async fn backend_tls_insecure_skip_verify_accepts_any_certificate() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = make_pki("upstream.test");
    let (addr, _) = tls_upstream(&pki).await;
    // The Backend's own `tls` instead of a BackendTLSPolicy.
    let full = yaml(&[addr.port()], CA_REF, &pki.ca_pem);
    let base = full
        .split("---\napiVersion: gateway.networking.k8s.io/v1alpha3")
        .next()
        .unwrap()
        .to_owned();
    let insecure = base.replace(
        "spec:\n  endpoints:\n",
        "spec:\n  tls:\n    insecureSkipVerify: true\n  endpoints:\n",
    );
    assert_ne!(insecure, base);
    let url = gateway(&insecure).await;
    assert_eq!(chat(&url).await.status(), 200);
}
