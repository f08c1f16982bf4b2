//! Anthropic Messages fields that need one decision on every backend that is not
//! Anthropic's own API: mid-conversation system messages, per-turn `output_config`,
//! `context_management` and `thinking.display`. Each translation (OpenAI chat, Converse,
//! Gemini, Claude on Bedrock and Vertex) applies these rules to its own representation.

use aigw_core::{DroppedField, Error, Result};
use serde_json::{Map, Value, json};

/// How a mid-conversation `system` message reads on a backend that only has user and
/// assistant turns: the text at the same position in a user turn, wrapped in the tags
/// Claude Code itself uses for the same instructions when a model lacks the
/// `mid-conversation-system` beta (observed with `claude-sonnet-4-5`).
pub fn system_reminder(text: &str) -> String {
    format!("<system-reminder>\n{text}\n</system-reminder>")
}

/// `context_management` carried by a request whose backend has no context editing.
pub const DROP_CLEAR_THINKING_KEEP_ALL: DroppedField = DroppedField::new(
    "context_management.clear_thinking",
    "keep: all clears nothing, so the conversation is unchanged",
);

/// `thinking.display` on a backend that has no display switch.
pub const DROP_THINKING_DISPLAY: DroppedField = DroppedField::new(
    "thinking.display",
    "a display preference: the generated answer is the same",
);

/// `cache_control` on a backend that caches automatically and has no breakpoints.
pub const DROP_CACHE_CONTROL: DroppedField = DroppedField::new(
    "cache_control",
    "a prompt-cache hint: the backend caches prefixes itself and the answer is the same",
);

/// A cache breakpoint's `ttl` (`1h`) where breakpoints are kept but with the
/// backend's default lifetime.
pub const DROP_CACHE_TTL: DroppedField = DroppedField::new(
    "cache_control.ttl",
    "a cache lifetime: the breakpoint is kept with the default lifetime and the answer is the same",
);

/// `metadata.user_id` on a backend with no end-user id field.
pub const DROP_USER_ID: DroppedField = DroppedField::new(
    "metadata.user_id",
    "an abuse-tracking id: the answer is the same",
);

/// `service_tier` on a backend without Anthropic's capacity tiers.
pub const DROP_SERVICE_TIER: DroppedField = DroppedField::new(
    "service_tier",
    "a capacity preference: the generated answer is the same",
);

/// `inference_geo` on a backend whose region is the backend's own configuration.
pub const DROP_INFERENCE_GEO: DroppedField = DroppedField::new(
    "inference_geo",
    "where Anthropic runs inference; on this backend its configured region decides",
);

/// `speed` (fast mode) on a backend without it.
pub const DROP_SPEED: DroppedField = DroppedField::new(
    "speed",
    "an output-speed preference: the generated answer is the same",
);

/// What `context_management` asks of a backend without context editing, once the
/// gateway applies it itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ContextEdits {
    /// `clear_thinking`: keep the thinking of only the last N assistant turns that have
    /// any; `None` keeps it all.
    pub keep_thinking_turns: Option<usize>,
}

/// Reads `context_management` for a backend without context editing.
///
/// * `clear_thinking_20251015` is applied by the gateway (thinking blocks of older
///   assistant turns are left out, as Anthropic's API does); with `keep: "all"` it
///   changes nothing and is recorded in `dropped`.
/// * `clear_tool_uses_20250919` and unknown edits are a 422 naming the edit: clearing
///   tool results once the prompt passes a token threshold needs the backend's own token
///   count, and sending the full history instead could change the answer.
pub fn context_edits(
    value: &Value,
    backend: &str,
    dropped: &mut Vec<DroppedField>,
) -> Result<ContextEdits> {
    let mut out = ContextEdits::default();
    let Some(obj) = value.as_object() else {
        return Err(Error::bad_request("context_management must be an object"));
    };
    for (k, v) in obj {
        if k != "edits" {
            return Err(Error::untranslatable(
                format!("context_management.{k}"),
                backend,
                "no counterpart on this backend",
            ));
        }
        for (i, edit) in v.as_array().into_iter().flatten().enumerate() {
            match edit.get("type").and_then(Value::as_str) {
                Some("clear_thinking_20251015") => match keep_turns(edit.get("keep")) {
                    Some(KeepTurns::All) => dropped.push(DROP_CLEAR_THINKING_KEEP_ALL),
                    Some(KeepTurns::Last(n)) => out.keep_thinking_turns = Some(n),
                    None => {
                        return Err(Error::bad_request(format!(
                            "context_management.edits[{i}].keep must be \"all\" or {{\"type\":\"thinking_turns\",\"value\":N}}"
                        )));
                    }
                },
                other => {
                    return Err(Error::untranslatable(
                        format!("context_management.edits[{i}]"),
                        backend,
                        format!(
                            "context edit {:?} needs Anthropic's own token count to apply",
                            other.unwrap_or("?")
                        ),
                    ));
                }
            }
        }
    }
    Ok(out)
}

enum KeepTurns {
    All,
    Last(usize),
}

fn keep_turns(keep: Option<&Value>) -> Option<KeepTurns> {
    match keep {
        // Anthropic's default keeps the last assistant turn's thinking.
        None => Some(KeepTurns::Last(1)),
        Some(Value::String(s)) if s == "all" => Some(KeepTurns::All),
        Some(Value::Object(o))
            if o.get("type").and_then(Value::as_str) == Some("thinking_turns") =>
        {
            o.get("value")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .map(KeepTurns::Last)
        }
        _ => None,
    }
}

/// Rewrites a Messages body (as a JSON map) for Claude on Bedrock or Vertex, whose
/// Messages APIs take only `user` and `assistant` roles: every `system` message becomes
/// user-turn text wrapped by [`system_reminder`] (cache breakpoints kept), appended to
/// the user turn before it when there is one (the API joins consecutive user turns
/// anyway), and message-level `output_config` (per-turn control) is lifted: the last
/// one's `effort` becomes the request's `output_config.effort`. Other fields stay as
/// sent.
pub fn fold_for_claude_platform(body: &mut Map<String, Value>) {
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    let mut effort = None;
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    for mut m in std::mem::take(messages) {
        let Some(obj) = m.as_object_mut() else {
            out.push(m);
            continue;
        };
        if let Some(e) = obj
            .remove("output_config")
            .and_then(|c| c.get("effort").cloned())
        {
            effort = Some(e);
        }
        if obj.get("role").and_then(Value::as_str) != Some("system") {
            out.push(m);
            continue;
        }
        let blocks = reminder_blocks(obj.remove("content"));
        match out.last_mut().and_then(Value::as_object_mut) {
            Some(prev) if prev.get("role").and_then(Value::as_str) == Some("user") => {
                let content = prev.entry("content").or_insert(Value::Null);
                let mut joined = match content.take() {
                    Value::String(t) => vec![json!({"type": "text", "text": t})],
                    Value::Array(b) => b,
                    _ => Vec::new(),
                };
                joined.extend(blocks);
                *content = Value::Array(joined);
            }
            _ => out.push(json!({"role": "user", "content": blocks})),
        }
    }
    *messages = out;
    if let Some(e) = effort {
        let config = body
            .entry("output_config")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(c) = config.as_object_mut() {
            c.insert("effort".into(), e);
        }
    }
}

/// A system message's content as text blocks wrapped by [`system_reminder`].
fn reminder_blocks(content: Option<Value>) -> Vec<Value> {
    match content {
        Some(Value::String(t)) => vec![json!({"type": "text", "text": system_reminder(&t)})],
        Some(Value::Array(blocks)) => blocks
            .into_iter()
            .map(|mut b| {
                if let Some(Value::String(t)) = b.get_mut("text") {
                    *t = system_reminder(t);
                }
                b
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_all_is_a_counted_no_op() {
        let mut d = Vec::new();
        let v = json!({"edits":[{"type":"clear_thinking_20251015","keep":"all"}]});
        assert_eq!(
            context_edits(&v, "X", &mut d).unwrap(),
            ContextEdits::default()
        );
        assert_eq!(d, vec![DROP_CLEAR_THINKING_KEEP_ALL]);
    }

    #[test]
    fn keep_turns_and_default() {
        let mut d = Vec::new();
        let v = json!({"edits":[{"type":"clear_thinking_20251015","keep":{"type":"thinking_turns","value":2}}]});
        assert_eq!(
            context_edits(&v, "X", &mut d).unwrap().keep_thinking_turns,
            Some(2)
        );
        let v = json!({"edits":[{"type":"clear_thinking_20251015"}]});
        assert_eq!(
            context_edits(&v, "X", &mut d).unwrap().keep_thinking_turns,
            Some(1)
        );
        assert!(d.is_empty());
    }

    #[test]
    fn clearing_tool_uses_is_a_422_naming_the_edit() {
        let v = json!({"edits":[{"type":"clear_tool_uses_20250919"}]});
        let e = context_edits(&v, "AWSBedrock", &mut Vec::new()).unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
        assert!(e.to_string().contains("context_management.edits[0]"), "{e}");
    }

    #[test]
    fn fold_wraps_system_turns_and_lifts_effort() {
        let mut v = json!({"messages":[
            {"role":"user","content":"q"},
            {"role":"system","content":[{"type":"text","text":"env","cache_control":{"type":"ephemeral"}}],
             "output_config":{"effort":"low"}},
            {"role":"assistant","content":"a"},
            {"role":"system","content":"later"}]});
        let Value::Object(map) = &mut v else { panic!() };
        fold_for_claude_platform(map);
        assert_eq!(
            v,
            json!({"messages":[
            {"role":"user","content":[{"type":"text","text":"q"},
                {"type":"text","text":"<system-reminder>\nenv\n</system-reminder>","cache_control":{"type":"ephemeral"}}]},
            {"role":"assistant","content":"a"},
            {"role":"user","content":[{"type":"text","text":"<system-reminder>\nlater\n</system-reminder>"}]}],
            "output_config":{"effort":"low"}})
        );
    }
}
