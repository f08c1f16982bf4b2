//! `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`,
//! `GET /v1/responses/{id}/input_items` and `POST /v1/responses/{id}/cancel` for
//! responses a translated backend produced, answered from the conversation [`store`]
//! in OpenAI's shapes.
//!
//! These requests carry no `model`, so they cannot be routed like `POST /v1/responses`;
//! every packaging asks [`parse`] first and, when the store [`held`] it, answers with
//! [`answer`] without an upstream. Responses passed through to OpenAI or Azure live in
//! that provider's own store: the packagings send those requests to the backend that
//! produced them (`aigw_core::owners`, `Planner::plan_stored_response`).
//!
//! [`store`]: super::store

use super::store::{self, Stored};
use aigw_core::api::responses::{Item, MessageContent};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// A request on a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `GET /v1/responses/{id}`.
    Get(&'a str),
    /// `DELETE /v1/responses/{id}`.
    Delete(&'a str),
    /// `GET /v1/responses/{id}/input_items`.
    InputItems(&'a str),
    /// `POST /v1/responses/{id}/cancel`.
    Cancel(&'a str),
}

/// Matches a request on a stored response (`path` may carry a query string).
///
/// ```
/// use aigw_providers::responses::retrieve::{parse, Op};
/// use http::Method;
/// assert_eq!(parse(&Method::GET, "/v1/responses/resp_1?x=1"), Some(Op::Get("resp_1")));
/// assert_eq!(parse(&Method::GET, "/v1/responses/resp_1/input_items"), Some(Op::InputItems("resp_1")));
/// assert_eq!(parse(&Method::POST, "/v1/responses/input_tokens"), None);
/// assert_eq!(parse(&Method::POST, "/v1/responses"), None);
/// ```
pub fn parse<'a>(method: &Method, path: &'a str) -> Option<Op<'a>> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix("/v1/responses/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() || id == "input_tokens" {
        return None;
    }
    match (method, tail) {
        (&Method::GET, "") => Some(Op::Get(id)),
        (&Method::DELETE, "") => Some(Op::Delete(id)),
        (&Method::GET, "input_items") => Some(Op::InputItems(id)),
        (&Method::POST, "cancel") => Some(Op::Cancel(id)),
        _ => None,
    }
}

/// A local answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Bytes,
}

impl Reply {
    fn json(status: StatusCode, v: &Value) -> Self {
        Self {
            status,
            body: Bytes::from(v.to_string()),
        }
    }

    fn error(status: StatusCode, message: String, param: Option<&str>) -> Self {
        Self::json(
            status,
            &json!({"error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": null,
            }}),
        )
    }

    fn not_found(id: &str) -> Self {
        Self::error(
            StatusCode::NOT_FOUND,
            format!(
                "Response with id '{id}' not found. (The gateway holds responses of \
                 translated backends it answered with `store` not false, for a limited \
                 time, in the process that answered them.)"
            ),
            None,
        )
    }
}

impl Op<'_> {
    /// The response id the request names.
    pub const fn id(&self) -> &str {
        match self {
            Self::Get(id) | Self::Delete(id) | Self::InputItems(id) | Self::Cancel(id) => id,
        }
    }
}

/// Whether the process-wide conversation store holds the response `op` names (else it
/// may be a passed-through one, held by the backend that produced it).
pub fn held(op: Op<'_>) -> bool {
    let now = std::time::Instant::now();
    store::with(|s| s.response(op.id(), now).is_some())
}

/// Answers `op` from the process-wide conversation store.
pub fn answer(op: Op<'_>, query: Option<&str>) -> Reply {
    let now = std::time::Instant::now();
    match op {
        Op::Delete(id) => {
            if store::with(|s| s.delete(id, now)) {
                Reply::json(
                    StatusCode::OK,
                    &json!({"id": id, "object": "response", "deleted": true}),
                )
            } else {
                Reply::not_found(id)
            }
        }
        Op::Get(id) => match store::with(|s| s.response(id, now)) {
            Some(Stored { response, .. }) => Reply::json(StatusCode::OK, &response),
            None => Reply::not_found(id),
        },
        Op::Cancel(id) => match store::with(|s| s.response(id, now)) {
            // Translated responses are never background ones: by the time the client
            // has an id the response is finished.
            Some(_) => Reply::error(
                StatusCode::BAD_REQUEST,
                "Only responses created with background set to true can be cancelled.".into(),
                None,
            ),
            None => Reply::not_found(id),
        },
        Op::InputItems(id) => match store::with(|s| s.response(id, now)) {
            Some(Stored { input, .. }) => input_items_page(id, &input, query),
            None => Reply::not_found(id),
        },
    }
}

/// One page of `GET /v1/responses/{id}/input_items` over `input` in OpenAI's list
/// shape, for the query's `limit`, `order` and `after` (a 400 naming a bad one).
pub fn input_items_page(response_id: &str, input: &[Item], query: Option<&str>) -> Reply {
    match ListQuery::parse(query) {
        Ok(q) => Reply::json(StatusCode::OK, &list(response_id, input, &q)),
        Err(r) => r,
    }
}

/// `limit`, `order` and `after` of an `input_items` list (`include` needs nothing: the
/// gateway keeps whole items).
#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    limit: usize,
    ascending: bool,
    after: Option<String>,
}

impl ListQuery {
    fn parse(query: Option<&str>) -> Result<Self, Reply> {
        let mut q = Self {
            limit: 20,
            ascending: false,
            after: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |what: &str| {
                Reply::error(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid '{k}': {what}."),
                    Some(k),
                )
            };
            match k {
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| bad("expected an integer from 1 to 100"))?;
                }
                "order" => {
                    q.ascending = match v {
                        "asc" => true,
                        "desc" => false,
                        _ => return Err(bad("expected 'asc' or 'desc'")),
                    };
                }
                "after" => q.after = Some(v.to_owned()),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The items of a stored input as OpenAI lists them: each with an `id` (generated from
/// the response id and position when the client sent none) and message text as parts.
fn listed(response_id: &str, input: &[Item]) -> Vec<Value> {
    let stem = response_id.strip_prefix("resp_").unwrap_or(response_id);
    input
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
            if let Item::Message(m) = item {
                if let MessageContent::Text(t) = &m.content {
                    let part = if m.role == "assistant" {
                        "output_text"
                    } else {
                        "input_text"
                    };
                    v["content"] = json!([{"type": part, "text": t}]);
                }
                if v.get("type").is_none_or(Value::is_null) {
                    v["type"] = json!("message");
                }
            }
            if v.get("id").is_none_or(Value::is_null) {
                v["id"] = json!(format!("msg_{stem}_{i}"));
            }
            v
        })
        .collect()
}

fn list(response_id: &str, input: &[Item], q: &ListQuery) -> Value {
    let mut items = listed(response_id, input);
    if !q.ascending {
        items.reverse();
    }
    let start = q.after.as_deref().map_or(0, |after| {
        items
            .iter()
            .position(|v| v["id"] == after)
            .map_or(items.len(), |p| p + 1)
    });
    let rest = items.get(start..).unwrap_or_default();
    let page: Vec<Value> = rest.iter().take(q.limit).cloned().collect();
    json!({
        "object": "list",
        "data": page,
        "first_id": page.first().map(|v| v["id"].clone()),
        "last_id": page.last().map(|v| v["id"].clone()),
        "has_more": rest.len() > page.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::api::responses::Response;

    fn stored(id: &str, texts: &[&str]) {
        let input: Vec<Item> = texts
            .iter()
            .map(|t| serde_json::from_value(json!({"role": "user", "content": t})).unwrap())
            .collect();
        let r: Response = serde_json::from_value(json!({
            "id": id, "object": "response", "status": "completed", "model": "m",
            "output": [{"type": "message", "id": "msg_out", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "hi", "annotations": []}]}],
        }))
        .unwrap();
        store::with(|s| s.put_response(input, &r, std::time::Instant::now()));
    }

    fn body(r: &Reply) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn get_list_page_and_delete() {
        stored("resp_t1", &["a", "b", "c"]);
        let r = answer(Op::Get("resp_t1"), None);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(body(&r)["output"][0]["content"][0]["text"], "hi");

        let r = answer(Op::InputItems("resp_t1"), Some("limit=2&order=asc"));
        let v = body(&r);
        assert_eq!(v["object"], "list");
        assert_eq!(
            v["data"][0]["content"][0],
            json!({"type": "input_text", "text": "a"})
        );
        assert_eq!(v["first_id"], "msg_t1_0");
        assert_eq!(v["last_id"], "msg_t1_1");
        assert_eq!(v["has_more"], true);
        let r = answer(Op::InputItems("resp_t1"), Some("order=asc&after=msg_t1_1"));
        let v = body(&r);
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert_eq!(v["has_more"], false);
        // Newest first by default, as OpenAI lists them.
        let v = body(&answer(Op::InputItems("resp_t1"), None));
        assert_eq!(v["first_id"], "msg_t1_2");

        let r = answer(Op::InputItems("resp_t1"), Some("limit=0"));
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(body(&r)["error"]["param"], "limit");

        let r = answer(Op::Cancel("resp_t1"), None);
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        let r = answer(Op::Delete("resp_t1"), None);
        assert_eq!(
            body(&r),
            json!({"id": "resp_t1", "object": "response", "deleted": true})
        );
        for op in [
            Op::Get("resp_t1"),
            Op::Delete("resp_t1"),
            Op::InputItems("resp_t1"),
        ] {
            let r = answer(op, None);
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert_eq!(body(&r)["error"]["type"], "invalid_request_error");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse(&Method::DELETE, "/v1/responses/r/"),
            Some(Op::Delete("r"))
        );
        assert_eq!(
            parse(&Method::POST, "/v1/responses/r/cancel"),
            Some(Op::Cancel("r"))
        );
        assert_eq!(parse(&Method::POST, "/v1/responses/r"), None);
        assert_eq!(parse(&Method::GET, "/v1/responses/"), None);
        assert_eq!(parse(&Method::GET, "/v1/responses/r/x"), None);
    }
}
