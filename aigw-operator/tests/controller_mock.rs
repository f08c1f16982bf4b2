//! Kubernetes interactions over a `tower-test` mock service: the exact requests the
//! controller makes (server-side apply with its field manager, leader election on a
//! Lease with optimistic concurrency) and how it reads the answers (404, 409).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_operator::controller::{
    self,
    lease::{Elector, Outcome},
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{Value, json};
use std::time::Duration;
use tower_test::mock::{Handle, pair};

type MockHandle = Handle<Request<Body>, Response<Body>>;

fn client() -> (Client, MockHandle) {
    let (service, handle) = pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

async fn body_json(req: Request<Body>) -> (http::request::Parts, Value) {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts, v)
}

fn respond(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn status(code: u16, reason: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": reason })
}

fn lease(holder: &str, renewed: &str, rv: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "aigw-operator", "namespace": "aigw-system", "resourceVersion": rv },
        "spec": {
            "holderIdentity": holder, "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00Z", "renewTime": renewed, "leaseTransitions": transitions
        }
    })
}

fn elector(client: Client) -> Elector {
    Elector::new(
        Api::<Lease>::namespaced(client, "aigw-system"),
        "aigw-operator",
        "me",
        Duration::from_secs(15),
    )
}

const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/aigw-system/leases/aigw-operator";

fn now() -> Timestamp {
    "2026-01-01T00:01:00Z".parse().unwrap()
}

#[tokio::test]
async fn a_missing_lease_is_created() {
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        let (req, send) = handle.next_request().await.unwrap();
        assert_eq!((req.method(), req.uri().path()), (&Method::GET, LEASE_PATH));
        send.send_response(respond(StatusCode::NOT_FOUND, status(404, "NotFound")));
        let (req, send) = handle.next_request().await.unwrap();
        let (parts, body) = body_json(req).await;
        assert_eq!(parts.method, Method::POST);
        assert_eq!(
            parts.uri.path(),
            "/apis/coordination.k8s.io/v1/namespaces/aigw-system/leases"
        );
        assert_eq!(body["spec"]["holderIdentity"], "me");
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        send.send_response(respond(StatusCode::CREATED, body));
    });
    assert_eq!(
        elector(client).try_acquire(now()).await.unwrap(),
        Outcome::Leader
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_live_lease_of_another_replica_is_respected() {
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.unwrap();
        // Renewed 10 s ago, valid for 15 s.
        send.send_response(respond(
            StatusCode::OK,
            lease("other", "2026-01-01T00:00:50Z", "7", 3),
        ));
    });
    assert_eq!(
        elector(client).try_acquire(now()).await.unwrap(),
        Outcome::Follower
    );
    server.await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_its_resource_version() {
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(
            StatusCode::OK,
            lease("other", "2026-01-01T00:00:30Z", "7", 3),
        ));
        let (req, send) = handle.next_request().await.unwrap();
        let (parts, body) = body_json(req).await;
        assert_eq!((parts.method, parts.uri.path()), (Method::PUT, LEASE_PATH));
        assert_eq!(
            body["metadata"]["resourceVersion"], "7",
            "optimistic concurrency"
        );
        assert_eq!(body["spec"]["holderIdentity"], "me");
        assert_eq!(body["spec"]["leaseTransitions"], 4);
        assert_eq!(body["spec"]["acquireTime"], body["spec"]["renewTime"]);
        send.send_response(respond(StatusCode::OK, body));
    });
    assert_eq!(
        elector(client).try_acquire(now()).await.unwrap(),
        Outcome::Leader
    );
    server.await.unwrap();
}

#[tokio::test]
async fn losing_the_race_for_an_expired_lease_is_a_conflict_not_an_error() {
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(
            StatusCode::OK,
            lease("other", "2026-01-01T00:00:30Z", "7", 3),
        ));
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(StatusCode::CONFLICT, status(409, "Conflict")));
    });
    assert_eq!(
        elector(client).try_acquire(now()).await.unwrap(),
        Outcome::Follower
    );
    server.await.unwrap();
}

#[tokio::test]
async fn the_holder_renews_and_keeps_its_acquire_time() {
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(
            StatusCode::OK,
            lease("me", "2026-01-01T00:00:55Z", "9", 2),
        ));
        let (req, send) = handle.next_request().await.unwrap();
        let (_, body) = body_json(req).await;
        assert_eq!(body["spec"]["acquireTime"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(
            body["spec"]["leaseTransitions"], 2,
            "a renewal is no transition"
        );
        assert_eq!(body["metadata"]["resourceVersion"], "9");
        send.send_response(respond(StatusCode::OK, body));
    });
    assert_eq!(
        elector(client).try_acquire(now()).await.unwrap(),
        Outcome::Leader
    );
    server.await.unwrap();
}

#[tokio::test]
async fn hand_over_when_the_leader_stops_renewing() {
    // Replica A holds the Lease; it stops renewing; B takes over once it expired.
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        // B at 00:00:20: A renewed at 00:00:10 → still A's.
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(
            StatusCode::OK,
            lease("a", "2026-01-01T00:00:10Z", "1", 0),
        ));
        // B at 00:00:30: expired (10 + 15 < 30) → B writes.
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(
            StatusCode::OK,
            lease("a", "2026-01-01T00:00:10Z", "1", 0),
        ));
        let (req, send) = handle.next_request().await.unwrap();
        let (_, body) = body_json(req).await;
        assert_eq!(body["spec"]["holderIdentity"], "b");
        send.send_response(respond(StatusCode::OK, body));
    });
    let b = Elector::new(
        Api::<Lease>::namespaced(client, "aigw-system"),
        "aigw-operator",
        "b",
        Duration::from_secs(15),
    );
    assert_eq!(
        b.try_acquire("2026-01-01T00:00:20Z".parse().unwrap())
            .await
            .unwrap(),
        Outcome::Follower
    );
    assert_eq!(
        b.try_acquire("2026-01-01T00:00:30Z".parse().unwrap())
            .await
            .unwrap(),
        Outcome::Leader
    );
    server.await.unwrap();
}

#[tokio::test]
async fn objects_are_written_by_server_side_apply_with_the_field_manager() {
    let (client, mut handle) = client();
    let obj = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": "r", "namespace": "team-a" },
        "spec": { "rules": [] }
    });
    let sent = obj.clone();
    let server = tokio::spawn(async move {
        let (req, send) = handle.next_request().await.unwrap();
        let (parts, body) = body_json(req).await;
        assert_eq!(parts.method, Method::PATCH);
        assert_eq!(
            parts.uri.path(),
            "/apis/gateway.networking.k8s.io/v1/namespaces/team-a/httproutes/r"
        );
        let query = parts.uri.query().unwrap();
        assert!(query.contains("fieldManager=aigw-operator"), "{query}");
        assert!(query.contains("force=true"), "{query}");
        assert_eq!(
            parts.headers["content-type"],
            "application/apply-patch+yaml"
        );
        assert_eq!(body, sent);
        send.send_response(respond(StatusCode::OK, body));
    });
    controller::apply(&client, &obj).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_apply_the_server_refuses_is_an_error_for_the_backoff() {
    let (client, mut handle) = client();
    let server = tokio::spawn(async move {
        let (_req, send) = handle.next_request().await.unwrap();
        send.send_response(respond(StatusCode::CONFLICT, status(409, "Conflict")));
    });
    let obj = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s", "namespace": "ns" } });
    let err = controller::apply(&client, &obj).await.unwrap_err();
    assert!(err.to_string().contains("Conflict"), "{err}");
    assert_eq!(controller::backoff(3), Duration::from_secs(4));
    server.await.unwrap();
}

/// What the mock API server saw, in order.
#[derive(Debug, Default)]
struct Seen {
    /// The watcher's `list` or `watch` of Gateways, with the query.
    gateway_calls: Vec<(String, String)>,
    /// Reconciles of Gateway default/gw (each lists its configuration Secrets by label),
    /// with the number of Gateway calls made before it.
    reconciles: Vec<usize>,
}

fn gateway_list(rv: &str, generation: i64) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayList",
        "metadata": { "resourceVersion": rv },
        "items": [{
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": { "name": "gw", "namespace": "default", "uid": "u1",
                          "resourceVersion": rv, "generation": generation },
            "spec": { "gatewayClassName": "eg", "listeners": [{ "name": "http", "protocol": "HTTP", "port": 80 }] }
        }]
    })
}

/// The watch of Gateways ends (the API server's timeout), then answers 410 Gone (its
/// resourceVersion compacted away): the controller watches again, then re-lists, and
/// keeps reconciling the Gateway it lists.
#[tokio::test]
async fn a_watch_that_ends_or_expires_is_restarted_and_reconciling_goes_on() {
    use std::sync::{Arc, Mutex};
    let (client, mut handle) = client();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    let server = tokio::spawn(async move {
        // Watches kept open for the rest of the test.
        let mut open = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or_default().to_string();
            let watch = query.contains("watch=true");
            let empty = json!({ "apiVersion": "v1", "kind": "List", "metadata": { "resourceVersion": "1" }, "items": [] });
            // The watcher pages its lists (`limit`); a reconcile's snapshot does not.
            if path == "/apis/gateway.networking.k8s.io/v1/gateways"
                && (watch || query.contains("limit="))
            {
                let mut s = log.lock().unwrap();
                s.gateway_calls
                    .push((if watch { "watch" } else { "list" }.into(), query.clone()));
                let watches = s.gateway_calls.iter().filter(|(k, _)| k == "watch").count();
                let lists = s.gateway_calls.iter().filter(|(k, _)| k == "list").count();
                drop(s);
                if !watch {
                    // The re-list sees the Gateway changed meanwhile.
                    let (rv, generation) = if lists == 1 { ("10", 1) } else { ("20", 2) };
                    send.send_response(respond(StatusCode::OK, gateway_list(rv, generation)));
                    continue;
                }
                match watches {
                    // The first watch ends without an event.
                    1 => send
                        .send_response(respond(StatusCode::OK, Value::Null).map(|_| Body::empty())),
                    // The second is told its resourceVersion is gone.
                    2 => {
                        let event = json!({ "type": "ERROR", "object": status(410, "Expired") });
                        let mut line = serde_json::to_vec(&event).unwrap();
                        line.push(b'\n');
                        send.send_response(
                            Response::builder()
                                .status(StatusCode::OK)
                                .header("content-type", "application/json")
                                .body(Body::from(line))
                                .unwrap(),
                        );
                    }
                    _ => open.push(send),
                }
                continue;
            }
            if watch {
                open.push(send);
                continue;
            }
            if req.method() == Method::GET
                && path.ends_with("/secrets")
                && query.contains("default.gw")
            {
                let mut s = log.lock().unwrap();
                let calls = s.gateway_calls.len();
                s.reconciles.push(calls);
            }
            let answer = match *req.method() {
                Method::GET if path == "/apis/gateway.networking.k8s.io/v1/gateways" => {
                    gateway_list("20", 2)
                }
                Method::GET => empty,
                _ => body_json(req).await.1,
            };
            send.send_response(respond(StatusCode::OK, answer));
        }
    });

    let ctx = Arc::new(controller::Context::new(
        client,
        aigw_operator::render::Options::default(),
        controller::metrics::Metrics::default(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(controller::run(ctx, async {
        let _ = stopped.await;
    }));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        {
            let s = seen.lock().unwrap();
            let lists = s.gateway_calls.iter().filter(|(k, _)| k == "list").count();
            let expired_at = s
                .gateway_calls
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| k == "watch")
                .nth(1)
                .map(|(i, _)| i + 1);
            let after = expired_at.is_some_and(|at| s.reconciles.iter().any(|r| *r > at));
            if lists >= 2 && after {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no re-list and reconcile after the watch expired: {s:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let s = seen.lock().unwrap();
        let kinds: Vec<&str> = s.gateway_calls.iter().map(|(k, _)| k.as_str()).collect();
        // list → watch (ends) → watch again from the same point → 410 → list → watch.
        assert_eq!(
            &kinds[..5],
            ["list", "watch", "watch", "list", "watch"],
            "{s:?}"
        );
        assert!(
            s.gateway_calls[1..3]
                .iter()
                .all(|(_, q)| q.contains("resourceVersion=10")),
            "an ended watch resumes from the same resourceVersion: {s:?}"
        );
        assert!(s.gateway_calls[4].1.contains("resourceVersion=20"), "{s:?}");
        assert!(!s.reconciles.is_empty() && s.reconciles[0] >= 1, "{s:?}");
    }
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), controller).await;
    server.abort();
}
