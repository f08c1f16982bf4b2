//! Request counters per path, so tests can assert which backend a gateway hit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::Shared;
use super::errors::json_response;

/// Requests seen per path (query excluded).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    paths: Mutex<HashMap<String, u64>>,
}

impl Stats {
    fn record(&self, path: &str) {
        let mut paths = match self.paths.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(n) = paths.get_mut(path) {
            *n += 1;
        } else {
            paths.insert(path.to_owned(), 1);
        }
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        let paths = match self.paths.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        paths.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn clear(&self) {
        match self.paths.lock() {
            Ok(mut p) => p.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }
}

/// Middleware: counts every request except the simulator's own `/__sim/*` routes.
pub(crate) async fn count(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !path.starts_with("/__sim/") {
        shared.stats.record(path);
    }
    next.run(req).await
}

/// `GET /__sim/stats`: `{"total": N, "paths": {"/v1/chat/completions": 3, …}}`.
pub(crate) async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    let paths = shared.stats.snapshot();
    let total: u64 = paths.values().sum();
    json_response(StatusCode::OK, &json!({"total": total, "paths": paths}))
}

/// `DELETE /__sim/stats`: zero the counters.
pub(crate) async fn reset_stats(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.stats.clear();
    StatusCode::NO_CONTENT
}
