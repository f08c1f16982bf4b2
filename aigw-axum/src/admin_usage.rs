//! The spend API of the admin listener, behind the admin token:
//!
//! * `GET /admin/usage?key=…&team=…&model=…&route=…&from=…&to=…&group_by=model` —
//!   requests, tokens and cost per group, from the spend store (shared by every
//!   replica when it is Redis); see [`aigw_core::budget::UsageQuery`];
//! * `GET /admin/budgets` — every budget's limit, spend, remainder, period and reset.
//!
//! Requests carry `Authorization: Bearer <admin token>`; the token is compared in
//! constant time. Without a configured token the API answers 403 and serves nothing.

use aigw_core::admin::AdminApi as CoreApi;
use aigw_core::budget::Spending;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

pub use crate::admin_api::AdminToken;

/// The spend API's routes, to merge into the admin router; the calls are the core's
/// ([`aigw_core::admin`]), which `aigw-extproc` serves too.
pub fn router(spending: Arc<Spending>, token: Option<AdminToken>) -> Router {
    let api = Arc::new(CoreApi::new(token).spending(spending));
    Router::new()
        .route("/admin/usage", get(serve))
        .route("/admin/budgets", get(serve))
        .with_state(api)
}

async fn serve(State(api): State<Arc<CoreApi>>, request: Request) -> Response {
    crate::admin_api::serve_core(&api, request).await
}
