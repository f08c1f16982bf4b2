//! The mutating admission webhook over HTTPS: `POST /mutate` answers AdmissionReviews
//! with [`crate::sidecar::review`].
//!
//! The certificate and key are PEM files (mounted from a Secret that cert-manager or
//! the cluster's own tooling maintains); they are read once at start. The configuration
//! each review needs comes from a [`Source`], so the server is tested without a cluster.

use crate::render::Manifests;
use crate::sidecar::{self, SidecarOptions};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Where the configuration of a review comes from (`None`: it could not be read, and
/// the pod is admitted unchanged).
pub type Source = Arc<dyn Fn() -> BoxFuture<'static, Option<Manifests>> + Send + Sync>;

#[derive(Clone)]
struct AppState {
    source: Source,
    options: SidecarOptions,
}

async fn mutate(State(state): State<AppState>, Json(review): Json<Value>) -> Json<Value> {
    let manifests = (state.source)().await;
    if manifests.is_none() {
        tracing::warn!("configuration unreadable: pod admitted without the sidecar");
    }
    Json(sidecar::review(&review, manifests.as_ref(), &state.options))
}

/// The webhook's routes.
pub fn router(source: Source, options: SidecarOptions) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .with_state(AppState { source, options })
}

/// A TLS server configuration from PEM certificate chain and key.
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("webhook certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("webhook key: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("webhook certificate and key: {e}"))
}

/// Serves `router` over TLS on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: rustls::ServerConfig, router: Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    router.clone().oneshot(req.map(axum::body::Body::new))
                });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "webhook connection ended");
            }
        });
    }
}
