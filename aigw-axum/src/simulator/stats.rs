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

/// Requests seen per path (query excluded), and per path with its query for the
/// requests that had one (so tests can check which query reached a backend).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    paths: Mutex<HashMap<String, u64>>,
    queries: Mutex<HashMap<String, u64>>,
}

fn bump(map: &Mutex<HashMap<String, u64>>, key: &str) {
    let mut map = match map.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else {
        map.insert(key.to_owned(), 1);
    }
}

impl Stats {
    fn record(&self, path: &str, query: Option<&str>) {
        bump(&self.paths, path);
        if let Some(q) = query {
            bump(&self.queries, &format!("{path}?{q}"));
        }
    }

    fn queries(&self) -> BTreeMap<String, u64> {
        let q = match self.queries.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        q.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        let paths = match self.paths.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        paths.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn clear(&self) {
        for m in [&self.paths, &self.queries] {
            match m.lock() {
                Ok(mut p) => p.clear(),
                Err(poisoned) => poisoned.into_inner().clear(),
            }
        }
    }
}

/// Middleware: counts every request except the simulator's own `/__sim/*` routes.
pub(crate) async fn count(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !path.starts_with("/__sim/") {
        shared.stats.record(path, req.uri().query());
    }
    next.run(req).await
}

/// `GET /__sim/stats`: `{"total": N, "paths": {"/v1/chat/completions": 3, …},
/// "queries": {"/v1/messages?beta=true": 1, …}}`.
pub(crate) async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    let paths = shared.stats.snapshot();
    let total: u64 = paths.values().sum();
    let queries = shared.stats.queries();
    json_response(
        StatusCode::OK,
        &json!({"total": total, "paths": paths, "queries": queries}),
    )
}

/// `DELETE /__sim/stats`: zero the counters.
pub(crate) async fn reset_stats(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.stats.clear();
    StatusCode::NO_CONTENT
}
