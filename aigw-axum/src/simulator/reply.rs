//! Deterministic replies: the same model and conversation always get the same answer.
//!
//! The reply text depends only on the model and the last user message; usage counts
//! words (prompt tokens = words of all message text, completion tokens = words of the
//! reply and of its reasoning). When the request offers tools, the reply is a tool call
//! whose arguments are derived from the tool's JSON schema — unless `tool_choice` is
//! none, or the conversation ends with a tool result (then the model answers in text,
//! so an agent loop makes one tool round trip per user turn and ends). A user who
//! writes "call a tool: NAME key=value …" picks the offered tool NAME and the value of
//! its string argument `key` (how an agent CLI is driven through a real tool). A text
//! reply to a request with a JSON schema (`response_format`, `text.format`,
//! `output_config.format`, Converse `outputConfig`, Gemini `responseJsonSchema`) is a
//! JSON object conforming to it; a request that asks for reasoning gets a reasoning
//! text before the answer.

use serde_json::{Map, Value};

/// Filler appended when a stream must have more chunks than the sentence has words.
const FILLER: &str = " more";

/// How the request constrains tool use, normalised across providers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    /// The model decides (the simulator calls a tool when the user asks for one).
    Auto,
    /// Tools must not be called.
    Never,
    /// Some tool must be called.
    Any,
    /// This tool must be called.
    Named(String),
}

/// The provider-neutral view of a request the reply is computed from.
#[derive(Debug)]
pub(crate) struct Prompt<'a> {
    pub(crate) model: &'a str,
    /// Words of all system and message text.
    pub(crate) words: u64,
    /// Text of the last user message.
    pub(crate) last_user: String,
    /// Offered tools: name and JSON schema of the arguments.
    pub(crate) tools: Vec<(&'a str, Option<&'a Value>)>,
    pub(crate) tool_choice: ToolChoice,
    /// The conversation ends with a tool result (the model then answers in text unless
    /// a tool is forced).
    pub(crate) after_tool_result: bool,
    /// The JSON schema a text answer must conform to, if the request gives one.
    pub(crate) json_schema: Option<Value>,
    /// The request asks for reasoning (thinking) before the answer.
    pub(crate) reasoning: bool,
}

/// A deterministic tool call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToolCall {
    /// Suffix for provider-specific ids (`call_…`, `toolu_…`, `tooluse_…`).
    pub(crate) id: String,
    pub(crate) name: String,
    /// The arguments as compact JSON text.
    pub(crate) arguments: String,
}

/// What the simulated model answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    Text(String),
    Tool(ToolCall),
}

/// A complete reply with its usage.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// Stable id suffix derived from the request (for `chatcmpl-…`, `msg_…`, …).
    pub(crate) id: String,
    pub(crate) content: Content,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    /// The reasoning shown before the answer, when the request asked for it.
    pub(crate) reasoning: Option<String>,
}

impl Reply {
    pub(crate) fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The reply's text split into exactly `chunks` non-empty pieces (text replies), or
    /// the tool arguments split into at most `chunks` pieces.
    pub(crate) fn pieces(&self, chunks: usize) -> Vec<&str> {
        match &self.content {
            Content::Text(t) => split_words(t, chunks),
            Content::Tool(call) => split_chars(&call.arguments, chunks),
        }
    }
}

/// The schema of an OpenAI `response_format` / Responses `text.format` (`json_schema`
/// carries it under `json_schema.schema` or `schema`; `json_object` is any object).
pub(crate) fn format_schema(format: Option<&Value>) -> Option<Value> {
    let f = format?;
    match f.get("type").and_then(Value::as_str)? {
        "json_schema" => Some(
            f.pointer("/json_schema/schema")
                .or_else(|| f.get("schema"))
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"})),
        ),
        "json_object" => Some(serde_json::json!({"type": "object"})),
        _ => None,
    }
}

/// A stable signature for simulated reasoning (providers sign thinking for replay).
pub(crate) fn reasoning_signature(reasoning: &str) -> String {
    format!("sim-sig-{:016x}", fnv(&[reasoning.as_bytes()]))
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between releases).
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Counts whitespace-separated words.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Calls `f` with every text fragment of a message content in any provider's shape:
/// a string, an array of parts, or a part object with a `text` field (OpenAI content
/// parts, Anthropic blocks, Bedrock content blocks and Gemini parts all qualify), and
/// the nested `content` of tool results.
pub(crate) fn visit_text<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_text(v, f)),
        Value::Object(map) => {
            if let Some(Value::String(s)) = map.get("text") {
                f(s);
            }
            if let Some(inner) = map.get("content") {
                visit_text(inner, f);
            }
        }
        _ => {}
    }
}

/// Words in a content value.
pub(crate) fn content_words(value: &Value) -> u64 {
    let mut n = 0;
    visit_text(value, &mut |s| n += words(s));
    n
}

/// The text of a content value, fragments joined by a space.
pub(crate) fn content_text(value: &Value) -> String {
    let mut out = String::new();
    visit_text(value, &mut |s| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
    });
    out
}

impl Prompt<'_> {
    /// Computes the reply. `chunks` only matters for long streams: a text reply is padded
    /// so that it has at least that many words.
    pub(crate) fn reply(&self, chunks: usize) -> Reply {
        let hash = fnv(&[self.model.as_bytes(), self.last_user.as_bytes()]);
        let id = format!("sim{hash:016x}");
        let prompt_tokens = self.words.max(1);
        let reasoning = self.reasoning.then(|| {
            format!(
                "The user wrote {} words to {}; the simulator answers deterministically.",
                words(&self.last_user),
                self.model
            )
        });
        let reasoning_tokens = reasoning.as_deref().map_or(0, words);
        if let Some(call) = self.tool_call(hash) {
            let completion_tokens = words(&call.arguments) + 1 + reasoning_tokens;
            return Reply {
                id,
                content: Content::Tool(call),
                prompt_tokens,
                completion_tokens,
                reasoning,
            };
        }
        if let Some(schema) = &self.json_schema {
            let text = sample_json(schema);
            return Reply {
                id,
                completion_tokens: words(&text).max(1) + reasoning_tokens,
                content: Content::Text(text),
                prompt_tokens,
                reasoning,
            };
        }
        let mut text = format!(
            "Hello from the aigw simulator. Model {} received {} words.",
            self.model,
            words(&self.last_user)
        );
        let mut n = words(&text);
        while n < chunks as u64 {
            text.push_str(FILLER);
            n += 1;
        }
        Reply {
            id,
            content: Content::Text(text),
            prompt_tokens,
            completion_tokens: n + reasoning_tokens,
            reasoning,
        }
    }

    fn tool_call(&self, hash: u64) -> Option<ToolCall> {
        let mut named_by_user = false;
        let (name, schema) = match &self.tool_choice {
            ToolChoice::Never => return None,
            ToolChoice::Named(wanted) => *self.tools.iter().find(|(n, _)| n == wanted)?,
            ToolChoice::Any => *self.tools.first()?,
            ToolChoice::Auto => {
                if self.after_tool_result {
                    return None;
                }
                // Every request that offers tools gets a tool call: the one the user
                // named, else the first.
                match self.asked_tool().flatten() {
                    Some(asked) => {
                        named_by_user = true;
                        *self.tools.iter().find(|(n, _)| *n == asked)?
                    }
                    None => *self.tools.first()?,
                }
            }
        };
        let arguments = if named_by_user {
            self.directed_arguments(schema)
        } else {
            sample_arguments(schema)
        };
        Some(ToolCall {
            id: format!("sim{:016x}", fnv(&[&hash.to_be_bytes(), name.as_bytes()])),
            name: name.to_owned(),
            arguments,
        })
    }

    /// Arguments for a tool the user named: the `key=value` pairs they gave, and a
    /// sample value for every other required property (optional ones are left out, as
    /// a model would).
    fn directed_arguments(&self, schema: Option<&Value>) -> String {
        let required: Vec<&str> = schema
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        let props = schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        for (k, v) in props.into_iter().flatten() {
            if let Some(given) = self.given_value(k) {
                out.insert(k.clone(), Value::String(given.to_owned()));
            } else if required.contains(&k.as_str()) {
                out.insert(k.clone(), sample_value(v));
            }
        }
        Value::Object(out).to_string()
    }

    /// `None` unless the user asked to "call a tool"; then the tool named right after
    /// it (`call a tool: Read`), if any, as `Some(Some(name))`.
    fn asked_tool(&self) -> Option<Option<&str>> {
        let lower = self.last_user.to_ascii_lowercase();
        let at = lower.find("call a tool")? + "call a tool".len();
        let next = self.last_user[at..]
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'))
            .find(|w| !w.is_empty());
        Some(next.filter(|w| self.tools.iter().any(|(n, _)| n == w)))
    }

    /// The value the user gave for argument `key` as `key=value`.
    fn given_value(&self, key: &str) -> Option<&str> {
        let pattern = format!("{key}=");
        self.last_user
            .split_whitespace()
            .find_map(|w| w.strip_prefix(pattern.as_str()))
            .filter(|v| !v.is_empty())
    }
}

/// Arguments that satisfy the common shapes of a JSON schema: every declared property
/// gets a value of its type (the first `enum` value when there is one).
pub(crate) fn sample_arguments(schema: Option<&Value>) -> String {
    let value = schema.map_or_else(|| Value::Object(Map::new()), sample_value);
    let value = if value.is_object() {
        value
    } else {
        Value::Object(Map::new())
    };
    serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_owned())
}

/// A compact JSON object conforming to `schema` (the common subset structured outputs
/// use: types, `enum`, `const`, `required`, `$ref` to `$defs`/`definitions`, `anyOf`,
/// `minItems`).
pub(crate) fn sample_json(schema: &Value) -> String {
    serde_json::to_string(&sample_in(schema, schema, 0)).unwrap_or_else(|_| "{}".to_owned())
}

fn sample_in(schema: &Value, root: &Value, depth: u32) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(&Value::Null);
        return sample_in(target, root, depth + 1);
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|a| {
            a.iter()
                .find(|s| s.get("type") != Some(&Value::String("null".into())))
        }) {
            return sample_in(first, root, depth + 1);
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") | None if schema.get("properties").is_some() => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), sample_in(v, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let n = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            let item = schema.get("items").unwrap_or(&Value::Null);
            (0..n.min(8))
                .map(|_| sample_in(item, root, depth + 1))
                .collect()
        }
        _ => sample_value(schema),
    }
}

fn sample_value(schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty.to_ascii_lowercase().as_str() {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), sample_value(v));
                }
            }
            Value::Object(out)
        }
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        "null" => Value::Null,
        _ => Value::String("simulated".to_owned()),
    }
}

/// Splits `text` at word boundaries into exactly `n` pieces (fewer only if the text has
/// fewer words); concatenating the pieces gives `text` back.
pub(crate) fn split_words(text: &str, n: usize) -> Vec<&str> {
    let starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| i > 0 && c == ' ')
        .map(|(i, _)| i)
        .collect();
    let total = starts.len() + 1;
    let n = n.clamp(1, total);
    let mut out = Vec::with_capacity(n);
    let mut from = 0;
    for k in 1..n {
        let cut = starts[k * total / n - 1];
        out.push(&text[from..cut]);
        from = cut;
    }
    out.push(&text[from..]);
    out
}

/// Splits `text` at char boundaries into at most `n` non-empty pieces.
pub(crate) fn split_chars(text: &str, n: usize) -> Vec<&str> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let total = bounds.len();
    if total == 0 {
        return vec![text];
    }
    let n = n.clamp(1, total);
    let mut out = Vec::with_capacity(n);
    let mut from = 0;
    for k in 1..n {
        let cut = bounds[k * total / n];
        out.push(&text[from..cut]);
        from = cut;
    }
    out.push(&text[from..]);
    out
}

/// Whether a message content is a tool result rather than user text (OpenAI uses a
/// `tool` role instead; this covers Anthropic, Bedrock and Gemini).
pub(crate) fn is_tool_result(content: &Value) -> bool {
    content.as_array().is_some_and(|parts| {
        parts.iter().any(|p| {
            p.get("type").and_then(Value::as_str) == Some("tool_result")
                || p.get("toolResult").is_some()
                || p.get("functionResponse").is_some()
        })
    })
}

/// A deterministic unit-length embedding of `text` with `dims` dimensions.
pub(crate) fn embedding(text: &str, dims: usize) -> Vec<f32> {
    let seed = fnv(&[text.as_bytes()]);
    let mut v: Vec<f32> = (0..dims as u64)
        .map(|i| {
            let x = fnv(&[&seed.to_le_bytes(), &i.to_le_bytes()]);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Default embedding width (small: the simulator is a benchmark baseline).
pub(crate) const EMBEDDING_DIMS: usize = 8;

/// The requested embedding width, bounded.
pub(crate) fn dims(requested: Option<&Value>) -> usize {
    requested
        .and_then(Value::as_u64)
        .map_or(EMBEDDING_DIMS, |d| (d as usize).clamp(1, 4096))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt<'a>(
        tools: Vec<(&'a str, Option<&'a Value>)>,
        choice: ToolChoice,
        user: &str,
    ) -> Prompt<'a> {
        Prompt {
            model: "m",
            words: 7,
            last_user: user.to_owned(),
            tools,
            tool_choice: choice,
            after_tool_result: false,
            json_schema: None,
            reasoning: false,
        }
    }

    #[test]
    fn text_reply_is_deterministic_and_padded() {
        let a = prompt(vec![], ToolChoice::Auto, "hi there").reply(4);
        let b = prompt(vec![], ToolChoice::Auto, "hi there").reply(4);
        assert_eq!(a.content, b.content);
        assert_eq!(a.id, b.id);
        let Content::Text(t) = &a.content else {
            panic!("text expected")
        };
        assert_eq!(
            t,
            "Hello from the aigw simulator. Model m received 2 words."
        );
        assert_eq!(a.completion_tokens, 10);
        assert_eq!(a.prompt_tokens, 7);
        let long = prompt(vec![], ToolChoice::Auto, "hi").reply(15);
        assert_eq!(long.completion_tokens, 15);
        assert_eq!(long.pieces(15).len(), 15);
    }

    #[test]
    fn pieces_reassemble() {
        let text = "one two three four five";
        for n in 1..8 {
            let p = split_words(text, n);
            assert_eq!(p.concat(), text);
            assert_eq!(p.len(), n.min(5));
            assert!(p.iter().all(|s| !s.is_empty()));
        }
        let args = "{\"a\":\"é\"}";
        for n in 1..20 {
            let p = split_chars(args, n);
            assert_eq!(p.concat(), args);
            assert!(p.iter().all(|s| !s.is_empty()));
        }
    }

    #[test]
    fn tool_calls_follow_choice_and_schema() {
        let schema = json!({"type":"object","properties":{"location":{"type":"string"},"unit":{"enum":["celsius","f"]},"days":{"type":"integer"}}});
        let tools = vec![("first", None), ("get_weather", Some(&schema))];
        let named = prompt(tools.clone(), ToolChoice::Named("get_weather".into()), "x").reply(4);
        let Content::Tool(call) = named.content else {
            panic!("tool expected")
        };
        assert_eq!(call.name, "get_weather");
        assert_eq!(
            call.arguments,
            r#"{"location":"simulated","unit":"celsius","days":1}"#
        );
        let asked = prompt(tools.clone(), ToolChoice::Auto, "please Call a tool now").reply(4);
        assert!(
            matches!(asked.content, Content::Tool(ref c) if c.name == "first" && c.arguments == "{}")
        );
        // Offered tools are called even when the user does not ask, once per turn.
        let plain = prompt(tools.clone(), ToolChoice::Auto, "hello").reply(4);
        assert!(matches!(plain.content, Content::Tool(ref c) if c.name == "first"));
        let mut after = prompt(tools.clone(), ToolChoice::Auto, "hello");
        after.after_tool_result = true;
        assert!(matches!(after.reply(4).content, Content::Text(_)));
        let never = prompt(tools, ToolChoice::Never, "call a tool").reply(4);
        assert!(matches!(never.content, Content::Text(_)));
    }

    #[test]
    fn json_schema_answers_conform() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "temps": {"type": "array", "items": {"type": "number"}, "minItems": 2},
                "unit": {"enum": ["c", "f"]},
                "when": {"$ref": "#/$defs/when"},
                "note": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}
            },
            "required": ["city", "temps", "unit", "when", "note"],
            "$defs": {"when": {"type": "object", "properties": {"day": {"type": "integer"}}}}
        });
        let mut p = prompt(vec![], ToolChoice::Auto, "weather?");
        p.json_schema = Some(schema);
        p.reasoning = true;
        let r = p.reply(4);
        let Content::Text(t) = &r.content else {
            panic!("text expected")
        };
        assert_eq!(
            t,
            r#"{"city":"simulated","temps":[1,1],"unit":"c","when":{"day":1},"note":true}"#
        );
        assert!(r.reasoning.unwrap().starts_with("The user wrote 1 words"));
    }

    #[test]
    fn text_visitor_handles_every_shape() {
        let v = json!([{"type":"text","text":"a b"},{"text":"c"},"d e f",{"type":"tool_result","content":[{"type":"text","text":"g"}]}]);
        assert_eq!(content_words(&v), 7);
        assert_eq!(content_text(&v), "a b c d e f g");
    }
}
