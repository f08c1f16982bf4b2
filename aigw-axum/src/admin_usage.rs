//! The spend API of the admin listener, behind the admin token:
//!
//! * `GET /admin/usage?key=…&team=…&model=…&route=…&from=…&to=…&group_by=model` —
//!   requests, tokens and cost per group, from the spend store (shared by every
//!   replica when it is Redis); see [`aigw_core::budget::UsageQuery`];
//! * `GET /admin/budgets` — every budget's limit, spend, remainder, period and reset.
//!
//! Requests carry `Authorization: Bearer <admin token>`; the token is compared in
//! constant time. Without a configured token the API answers 403 and serves nothing.

use aigw_core::budget::{Spending, UsageQuery};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use std::sync::Arc;

pub use crate::admin_api::AdminToken;

#[derive(Clone)]
struct ApiState {
    spending: Arc<Spending>,
    token: Option<AdminToken>,
}

/// The spend API's routes, to merge into the admin router.
pub fn router(spending: Arc<Spending>, token: Option<AdminToken>) -> Router {
    Router::new()
        .route("/admin/usage", get(usage))
        .route("/admin/budgets", get(budgets))
        .with_state(ApiState { spending, token })
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message}});
    (status, axum::Json(body)).into_response()
}

/// `None` when the request may proceed, else the refusal.
fn refuse(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    match &state.token {
        None => Some(json_error(
            StatusCode::FORBIDDEN,
            "the admin API is disabled: start the gateway with --admin-token",
        )),
        Some(t) if t.admits(headers) => None,
        Some(_) => {
            let mut r = json_error(StatusCode::UNAUTHORIZED, "a valid admin token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            Some(r)
        }
    }
}

async fn usage(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = refuse(&s, &headers) {
        return r;
    }
    let now = aigw_core::pricing::unix_now();
    let q = match UsageQuery::parse(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), now) {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    match s.spending.usage(&q).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn budgets(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse(&s, &headers) {
        return r;
    }
    match s.spending.budget_states().await {
        Ok(b) => axum::Json(serde_json::json!({ "budgets": b })).into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::Secret;

    #[test]
    fn token_is_compared_whole_and_never_printed() {
        let t = AdminToken::new(&Secret::new("s3cret-admin".to_owned())).unwrap();
        let mut h = HeaderMap::new();
        assert!(!t.admits(&h));
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-admin".parse().unwrap(),
        );
        assert!(t.admits(&h));
        h.insert(header::AUTHORIZATION, "Bearer s3cret-admi".parse().unwrap());
        assert!(!t.admits(&h));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(AdminToken::new(&Secret::new(" ".to_owned())).is_none());
    }
}
