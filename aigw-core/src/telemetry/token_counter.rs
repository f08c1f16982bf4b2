//! OpenInference attributes of the token-counting endpoints, as the upstream's
//! recorders write them (`internal/tracing/openinference/openai/tokenize.go`,
//! `…/openai/responses_input_tokens.go`, `…/anthropic/count_tokens.go`): a
//! `TOKEN_COUNTER` span with the model and the request as `input.value` (left out, not
//! redacted, when inputs are hidden); the count as `llm.token_count.prompt`, and for
//! tokenize the `tokenize.*` request options and result sizes with the answer as
//! `output.value`.

use super::Outcome;
use super::attr::{Attrs, AttrsExt, REDACTED};
use super::config::OpenInferenceConfig;
use crate::api::Endpoint;
use serde_json::Value;

const JSON: &str = "application/json";

/// Whether this module records the endpoint's attributes.
pub(crate) const fn handles(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::Tokenize | Endpoint::CountTokens | Endpoint::ResponsesInputTokens
    )
}

const fn system(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::CountTokens => "anthropic",
        _ => "openai",
    }
}

/// The request's attributes.
pub(crate) fn request(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    let empty = Value::Null;
    let req = o.request.unwrap_or(&empty);
    let model = req.get("model").and_then(Value::as_str).unwrap_or_default();
    a.str("openinference.span.kind", "TOKEN_COUNTER");
    a.str("llm.system", system(o.endpoint));
    // Upstream writes the model even when empty, except for tokenize.
    if o.endpoint != Endpoint::Tokenize || !model.is_empty() {
        a.str("llm.model_name", model);
    }
    if !c.hide_inputs {
        a.str("input.value", String::from_utf8_lossy(o.request_raw));
        a.str("input.mime_type", JSON);
    }
    if o.endpoint == Endpoint::Tokenize {
        tokenize_request(req, a);
    }
}

fn flag(req: &Value, key: &str) -> Option<bool> {
    req.get(key).and_then(Value::as_bool)
}

/// vLLM's tokenize request is a completion (`prompt`) or a chat (`messages`) form,
/// with different defaults for `add_special_tokens`.
fn tokenize_request(req: &Value, a: &mut Attrs) {
    if let Some(messages) = req.get("messages").and_then(Value::as_array) {
        a.str("tokenize.request_type", "chat");
        a.bool(
            "tokenize.add_generation_prompt",
            flag(req, "add_generation_prompt").unwrap_or(true),
        );
        a.bool(
            "tokenize.continue_final_message",
            flag(req, "continue_final_message").unwrap_or(false),
        );
        a.bool(
            "tokenize.add_special_tokens",
            flag(req, "add_special_tokens").unwrap_or(false),
        );
        if let Some(b) = flag(req, "return_token_strs") {
            a.bool("tokenize.return_token_strs", b);
        }
        if !messages.is_empty() {
            a.int("tokenize.message_count", len_i64(messages.len()));
        }
    } else if req.get("prompt").is_some() {
        a.str("tokenize.request_type", "completion");
        a.bool(
            "tokenize.add_special_tokens",
            flag(req, "add_special_tokens").unwrap_or(true),
        );
        if let Some(b) = flag(req, "return_token_strs") {
            a.bool("tokenize.return_token_strs", b);
        }
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn array_len(r: &Value, key: &str) -> usize {
    r.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

/// The answer's attributes (a successful one).
pub(crate) fn response(c: &OpenInferenceConfig, o: &Outcome<'_>, a: &mut Attrs) {
    let empty = Value::Null;
    let resp = o.response.unwrap_or(&empty);
    if o.endpoint != Endpoint::Tokenize {
        a.int("llm.token_count.prompt", int(resp.get("input_tokens")));
        return;
    }
    a.int("tokenize.token_count", int(resp.get("count")));
    let max = int(resp.get("max_model_len"));
    if max > 0 {
        a.int("tokenize.max_model_len", max);
    }
    let tokens = array_len(resp, "tokens");
    if tokens > 0 {
        a.int("tokenize.tokens_returned", len_i64(tokens));
    }
    let strs = array_len(resp, "token_strs");
    if strs > 0 {
        a.int("tokenize.token_strings_returned", len_i64(strs));
    }
    a.str("output.mime_type", JSON);
    let v = if c.hide_outputs {
        REDACTED.to_owned()
    } else {
        resp.to_string()
    };
    a.str("output.value", v);
}
