//! The Responses stream events that carry whole objects, written as bytes.
//!
//! `response.created`, `response.in_progress` and `response.completed` repeat the whole
//! response object (the echoed request parameters included) and the `.done` events
//! repeat the item's whole text. Built as [`StreamEvent`] values they cost a clone of
//! the echoed parameters and of every finished item per event, and the text of an item
//! was escaped four times (text done, part done, item done, completed). Here each part
//! is serialised once: the echoed parameters when the stream starts, an item when it
//! is done, an item's text once for all of its `.done` events. The bytes are those
//! serialising the [`StreamEvent`] writes (the goldens hold them): fields in
//! declaration order, flattened extras last.
//!
//! [`StreamEvent`]: aigw_core::api::responses::StreamEvent

use crate::json_out::{push_members, push_num, push_serde as push_json, push_str};
use aigw_core::api::responses::ResponseUsage;
use serde_json::Value;

/// `event: {kind}` and the opening of its data object up to the `type` member.
///
/// Always inlined, with the heads that call it: the kind is a literal at almost every
/// call, and the two copies of it are then moves of a known length instead of calls to
/// `memcpy`.
#[inline(always)]
pub fn event_head(out: &mut Vec<u8>, seq: u64, kind: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"sequence_number\":");
    push_num(out, seq);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
}

/// Closes an event opened by [`event_head`].
pub fn event_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"}\n\n");
}

/// A string's JSON form, for writing it more than once.
pub fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_str(&mut out, s);
    out
}

/// The echoed request parameters as the members that follow the response object's
/// own fields: `,"k":v,…` (empty when there are none).
pub fn echo_tail(echo: &serde_json::Map<String, Value>) -> Vec<u8> {
    if echo.is_empty() {
        return Vec::new();
    }
    let mut obj = Vec::with_capacity(512);
    // The members without their braces, after a comma.
    push_members(&mut obj, b',', echo, b'}');
    obj.pop();
    obj
}

/// The parts of a response object, borrowed.
#[derive(Debug)]
pub struct ResponseParts<'a> {
    /// `resp_…`.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// `in_progress`, `completed`, …
    pub status: &'a str,
    /// The model.
    pub model: &'a str,
    /// The serialised finished items, in output order.
    pub output: &'a [Vec<u8>],
    /// Usage, once completed.
    pub usage: Option<&'a ResponseUsage>,
    /// The error of a failed response.
    pub error: Option<&'a Value>,
    /// Why the response is incomplete.
    pub incomplete: Option<&'a Value>,
    /// From [`echo_tail`].
    pub echo: &'a [u8],
}

/// A `response.*` event carrying the response object.
pub fn response_event(out: &mut Vec<u8>, seq: u64, kind: &str, r: &ResponseParts<'_>) {
    let items: usize = r.output.iter().map(Vec::len).sum();
    out.reserve(items + r.echo.len() + r.id.len() + r.model.len() + 512);
    event_head(out, seq, kind);
    response_body(out, r);
    event_end(out);
}

/// `response.created` and `response.in_progress`, which carry the same object: it is
/// written once and copied.
pub fn opening_events(out: &mut Vec<u8>, seq: &mut u64, r: &ResponseParts<'_>) {
    out.reserve(2 * (r.echo.len() + r.id.len() + r.model.len() + 400));
    event_head(out, *seq, "response.created");
    let body = out.len();
    response_body(out, r);
    let end = out.len();
    event_end(out);
    *seq += 1;
    event_head(out, *seq, "response.in_progress");
    out.extend_from_within(body..end);
    event_end(out);
    *seq += 1;
}

/// The `response` member of a `response.*` event.
fn response_body(out: &mut Vec<u8>, r: &ResponseParts<'_>) {
    out.extend_from_slice(b",\"response\":{\"id\":");
    push_str(out, r.id);
    out.extend_from_slice(b",\"object\":\"response\",\"created_at\":");
    push_num(out, r.created);
    out.extend_from_slice(b",\"status\":");
    push_str(out, r.status);
    out.extend_from_slice(b",\"model\":");
    push_str(out, r.model);
    out.extend_from_slice(b",\"output\":[");
    let mut first = true;
    for item in r.output.iter().filter(|i| !i.is_empty()) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"],\"usage\":");
    match r.usage {
        Some(u) => push_usage(out, u),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    push_opt(out, r.error);
    out.extend_from_slice(b",\"incomplete_details\":");
    push_opt(out, r.incomplete);
    out.extend_from_slice(r.echo);
    out.push(b'}');
}

/// An optional value as serde writes it (`null` without going through its serializer).
fn push_opt(out: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        Some(v) => push_json(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// Usage as its [`ResponseUsage`] serialises.
pub fn push_usage(out: &mut Vec<u8>, u: &ResponseUsage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_num(out, u.input_tokens);
    out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
    push_num(out, u.input_tokens_details.cached_tokens);
    out.extend_from_slice(b"},\"output_tokens\":");
    push_num(out, u.output_tokens);
    out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
    push_num(out, u.output_tokens_details.reasoning_tokens);
    out.extend_from_slice(b"},\"total_tokens\":");
    push_num(out, u.total_tokens);
    out.push(b'}');
}

/// `response.output_item.done` with an item already serialised.
pub fn item_done(out: &mut Vec<u8>, seq: u64, output_index: u32, item: &[u8]) {
    item_event(out, seq, "response.output_item.done", output_index, item);
}

/// `response.output_item.added` or `.done` with an item already serialised.
#[inline(always)]
pub fn item_event(out: &mut Vec<u8>, seq: u64, kind: &str, output_index: u32, item: &[u8]) {
    out.reserve(item.len() + 128);
    item_event_head(out, seq, kind, output_index);
    out.extend_from_slice(item);
    event_end(out);
}

/// [`event_head`], the `output_index` and the `item` key of an event carrying a whole
/// item: the item itself follows.
#[inline(always)]
fn item_event_head(out: &mut Vec<u8>, seq: u64, kind: &str, output_index: u32) {
    event_head(out, seq, kind);
    out.extend_from_slice(b",\"output_index\":");
    push_num(out, u64::from(output_index));
    out.extend_from_slice(b",\"item\":");
}

/// `response.function_call_arguments.done`, from the item id and arguments in JSON form.
pub fn arguments_done(
    out: &mut Vec<u8>,
    seq: u64,
    item_id: &[u8],
    output_index: u32,
    arguments: &[u8],
) {
    item_head(
        out,
        seq,
        "response.function_call_arguments.done",
        item_id,
        output_index,
    );
    out.extend_from_slice(b",\"arguments\":");
    out.extend_from_slice(arguments);
    event_end(out);
}

/// The two events that open a message item (`response.output_item.added` with the
/// empty in-progress item, `response.content_part.added` with an empty
/// `output_text` part), from its id in JSON form.
pub fn message_added(out: &mut Vec<u8>, seq: &mut u64, item_id: &[u8], output_index: u32) {
    item_event_head(out, *seq, "response.output_item.added", output_index);
    out.extend_from_slice(b"{\"type\":\"message\",\"id\":");
    out.extend_from_slice(item_id);
    out.extend_from_slice(b",\"role\":\"assistant\",\"content\":[],\"status\":\"in_progress\"}");
    event_end(out);
    *seq += 1;
    content_head(
        out,
        *seq,
        "response.content_part.added",
        item_id,
        output_index,
    );
    out.extend_from_slice(b",\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}");
    event_end(out);
    *seq += 1;
}

/// [`event_head`] and the `item_id` (in JSON form) and `output_index` members of an
/// event about one item.
#[inline(always)]
pub fn item_head(out: &mut Vec<u8>, seq: u64, kind: &str, item_id: &[u8], output_index: u32) {
    event_head(out, seq, kind);
    out.extend_from_slice(b",\"item_id\":");
    out.extend_from_slice(item_id);
    out.extend_from_slice(b",\"output_index\":");
    push_num(out, u64::from(output_index));
}

/// [`item_head`] and the `content_index` of the item's only part.
#[inline(always)]
fn content_head(out: &mut Vec<u8>, seq: u64, kind: &str, item_id: &[u8], output_index: u32) {
    item_head(out, seq, kind, item_id, output_index);
    out.extend_from_slice(b",\"content_index\":0");
}

/// The three `.done` events of a message item with one `output_text` part, from its
/// id in JSON form and its text; returns the finished item's bytes (for the output
/// list). The item is written first and the events copy its part and text, so the text
/// is escaped once and no other buffer is needed.
pub fn message_done(
    out: &mut Vec<u8>,
    seq: &mut u64,
    item_id: &[u8],
    output_index: u32,
    text: &str,
) -> Vec<u8> {
    // The item's fixed bytes are 124 and a few escapes: no growing on the way.
    let mut item = Vec::with_capacity(text.len() + item_id.len() + 160);
    item.extend_from_slice(b"{\"type\":\"message\",\"id\":");
    item.extend_from_slice(item_id);
    item.extend_from_slice(b",\"role\":\"assistant\",\"content\":[");
    let part_at = item.len();
    item.extend_from_slice(b"{\"type\":\"output_text\",\"text\":");
    let text_at = item.len();
    push_str(&mut item, text);
    let text_end = item.len();
    item.extend_from_slice(b",\"annotations\":[]}");
    let part_end = item.len();
    item.extend_from_slice(b"],\"status\":\"completed\"}");
    // Three events: the text, the part, the item, each with a head naming the item.
    let text_len = text_end - text_at;
    out.reserve(2 * text_len + item.len() + 3 * item_id.len() + 448);
    content_head(
        out,
        *seq,
        "response.output_text.done",
        item_id,
        output_index,
    );
    out.extend_from_slice(b",\"text\":");
    out.extend_from_slice(&item[text_at..text_end]);
    out.extend_from_slice(b",\"logprobs\":[]");
    event_end(out);
    *seq += 1;
    content_head(
        out,
        *seq,
        "response.content_part.done",
        item_id,
        output_index,
    );
    out.extend_from_slice(b",\"part\":");
    out.extend_from_slice(&item[part_at..part_end]);
    event_end(out);
    *seq += 1;
    item_done(out, *seq, output_index, &item);
    *seq += 1;
    item
}

/// A `function_call` item as its [`FunctionCallItem`] serialises (no extras), from
/// its id and arguments already in JSON form.
///
/// [`FunctionCallItem`]: aigw_core::api::responses::FunctionCallItem
pub fn function_call_item(
    item_id: &[u8],
    call_id: &str,
    name: &str,
    namespace: Option<&str>,
    arguments: &[u8],
    status: &str,
) -> Vec<u8> {
    let names = name.len() + namespace.map_or(0, |n| n.len() + 16);
    let mut out = Vec::with_capacity(item_id.len() + call_id.len() + names + arguments.len() + 112);
    let call = FunctionCall {
        item_id,
        call_id,
        name,
        namespace,
        status,
    };
    push_function_call(&mut out, &call, |o| o.extend_from_slice(arguments));
    out
}

/// The members of a `function_call` item other than its arguments.
#[derive(Debug)]
pub struct FunctionCall<'a> {
    /// The item id in JSON form.
    pub item_id: &'a [u8],
    /// The call id.
    pub call_id: &'a str,
    /// The function name.
    pub name: &'a str,
    /// The tool's namespace, if any.
    pub namespace: Option<&'a str>,
    /// `in_progress` or `completed`.
    pub status: &'a str,
}

/// Writes a `function_call` item as [`function_call_item`] does, its arguments by
/// `arguments`; returns where the arguments' JSON is in `out`.
pub fn push_function_call(
    out: &mut Vec<u8>,
    c: &FunctionCall<'_>,
    arguments: impl FnOnce(&mut Vec<u8>),
) -> std::ops::Range<usize> {
    out.extend_from_slice(b"{\"type\":\"function_call\",\"id\":");
    out.extend_from_slice(c.item_id);
    out.extend_from_slice(b",\"call_id\":");
    push_str(out, c.call_id);
    out.extend_from_slice(b",\"name\":");
    push_str(out, c.name);
    if let Some(ns) = c.namespace {
        out.extend_from_slice(b",\"namespace\":");
        push_str(out, ns);
    }
    out.extend_from_slice(b",\"arguments\":");
    let at = out.len();
    arguments(out);
    let end = out.len();
    out.extend_from_slice(b",\"status\":");
    push_str(out, c.status);
    out.push(b'}');
    at..end
}

/// `response.output_item.added` with a new `function_call` item (empty arguments).
pub fn function_call_added(out: &mut Vec<u8>, seq: u64, output_index: u32, c: &FunctionCall<'_>) {
    out.reserve(c.item_id.len() + c.call_id.len() + c.name.len() + 224);
    item_event_head(out, seq, "response.output_item.added", output_index);
    push_function_call(out, c, |o| o.extend_from_slice(b"\"\""));
    event_end(out);
}

/// `response.output_item.added` with a new `reasoning` item (no summary, nothing
/// sealed): [`reasoning_item`] written in place.
pub fn reasoning_added(out: &mut Vec<u8>, seq: u64, output_index: u32, item_id: &[u8]) {
    out.reserve(item_id.len() + 160);
    item_event_head(out, seq, "response.output_item.added", output_index);
    out.extend_from_slice(b"{\"type\":\"reasoning\",\"id\":");
    out.extend_from_slice(item_id);
    out.extend_from_slice(b",\"summary\":[]}");
    event_end(out);
}

/// A `reasoning` item as its [`ReasoningItem`] serialises (no extras, no raw content,
/// no status): one `summary_text` part when `summary` is given.
///
/// [`ReasoningItem`]: aigw_core::api::responses::ReasoningItem
pub fn reasoning_item(
    item_id: &[u8],
    summary: Option<&str>,
    encrypted_content: Option<&str>,
) -> Vec<u8> {
    let extra = summary.map_or(0, str::len) + encrypted_content.map_or(0, str::len);
    let mut out = Vec::with_capacity(item_id.len() + extra + 96);
    out.extend_from_slice(b"{\"type\":\"reasoning\",\"id\":");
    out.extend_from_slice(item_id);
    out.extend_from_slice(b",\"summary\":[");
    if let Some(text) = summary {
        out.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":");
        push_str(&mut out, text);
        out.push(b'}');
    }
    out.push(b']');
    if let Some(e) = encrypted_content {
        out.extend_from_slice(b",\"encrypted_content\":");
        push_str(&mut out, e);
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aigw_core::api::responses::{Extra, FunctionCallItem, Item, ReasoningItem, SummaryPart};
    use proptest::prelude::*;

    fn serde_bytes(item: &Item) -> Vec<u8> {
        serde_json::to_vec(item).unwrap()
    }

    proptest! {
        #[test]
        fn function_call_item_is_what_serde_writes(
            id in "\\PC{0,12}",
            call_id in "\\PC{0,12}",
            name in "[a-z_\"\\\\\u{1}]{0,10}",
            namespace in proptest::option::of("\\PC{0,8}"),
            arguments in "\\PC{0,24}",
            status in "in_progress|completed",
        ) {
            let item = Item::FunctionCall(FunctionCallItem {
                kind: "function_call".into(),
                id: Some(id.clone()),
                call_id: call_id.clone(),
                name: name.clone(),
                namespace: namespace.clone(),
                arguments: arguments.clone(),
                status: Some(status.clone()),
                extra: Extra::new(),
            });
            let ours = function_call_item(
                &json_string(&id),
                &call_id,
                &name,
                namespace.as_deref(),
                &json_string(&arguments),
                &status,
            );
            prop_assert_eq!(ours, serde_bytes(&item));
        }

        #[test]
        fn usage_is_what_serde_writes(n in proptest::array::uniform5(any::<u64>())) {
            let u = ResponseUsage {
                input_tokens: n[0],
                input_tokens_details: aigw_core::api::responses::InputTokensDetails {
                    cached_tokens: n[1],
                },
                output_tokens: n[2],
                output_tokens_details: aigw_core::api::responses::OutputTokensDetails {
                    reasoning_tokens: n[3],
                },
                total_tokens: n[4],
            };
            let mut ours = Vec::new();
            push_usage(&mut ours, &u);
            prop_assert_eq!(ours, serde_json::to_vec(&u).unwrap());
        }

        #[test]
        fn reasoning_item_is_what_serde_writes(
            id in "\\PC{0,12}",
            summary in proptest::option::of("\\PC{0,24}"),
            sealed in proptest::option::of("[A-Za-z0-9._-]{0,24}"),
        ) {
            let item = Item::Reasoning(ReasoningItem {
                kind: "reasoning".into(),
                id: Some(id.clone()),
                summary: summary
                    .iter()
                    .map(|t| SummaryPart {
                        kind: "summary_text".into(),
                        text: t.clone(),
                        extra: Extra::new(),
                    })
                    .collect(),
                content: None,
                encrypted_content: sealed.clone(),
                status: None,
                extra: Extra::new(),
            });
            let ours = reasoning_item(&json_string(&id), summary.as_deref(), sealed.as_deref());
            prop_assert_eq!(ours, serde_bytes(&item));
        }
    }
}
