//! The web console on the admin listener: one page, its stylesheet and its script,
//! compiled into the binary (plain HTML, CSS and JavaScript; nothing to build).
//!
//! The page itself holds no data: it asks for the admin token, keeps it in the tab's
//! `sessionStorage`, and reads everything it shows from the admin API with it — spend
//! and tokens over time by key, team and model (`GET /admin/usage`), budgets and what
//! is left of them, the virtual keys (create, revoke) and the routes with their
//! backends. Without the token the API refuses, and the page shows only its sign-in.

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderValue, header};

const INDEX: &str = include_str!("index.html");
const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// A script-free policy beyond the console's own files: nothing inline, nothing from
/// elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `/admin/console` (and `/console`, redirected) with its assets.
pub fn router() -> Router {
    Router::new()
        .route(
            "/admin/console",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/admin/console/",
            get(|| async { Redirect::permanent("/admin/console") }),
        )
        .route(
            "/console",
            get(|| async { Redirect::permanent("/admin/console") }),
        )
        .route(
            "/admin/console/console.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/admin/console/console.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
}
