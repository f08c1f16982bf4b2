//! [`ChatRequest`] → Bedrock Converse request body.
//!
//! Field names and shapes follow the Converse API reference
//! (`Message`, `ContentBlock`, `SystemContentBlock`, `InferenceConfiguration`,
//! `ToolConfiguration`, `OutputConfig`/`OutputFormat`, `CachePointBlock`).

use crate::canonical::{Block, ChatRequest, Reasoning, ResponseFormat, Role, ToolChoice};
use aigw_core::{Error, Result};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

mod write;

/// The backend name used in 422 errors.
pub const BACKEND: &str = "AWSBedrock";

/// The body. The derives define the wire form the hand writer ([`write`]) produces;
/// the body is written by it, and a property test checks the two agree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Converse<'a> {
    messages: Vec<Msg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<ContentBlock<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    additional_model_request_fields: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guardrail_config: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    performance_config: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_variables: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'static str,
    content: Vec<ContentBlock<'a>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<ToolEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolEntry<'a> {
    ToolSpec(ToolSpec<'a>),
    CachePoint(CachePoint),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: &'a RawValue,
}

#[derive(Serialize)]
struct CachePoint {
    #[serde(rename = "type")]
    kind: &'static str,
}

const CACHE_POINT: CachePoint = CachePoint { kind: "default" };

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ContentBlock<'a> {
    Text(&'a str),
    Image(Image<'a>),
    Document(Document<'a>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
    ReasoningContent(ReasoningBlock<'a>),
    CachePoint(CachePoint),
}

#[derive(Serialize)]
struct Image<'a> {
    format: &'static str,
    source: ImageSource<'a>,
}

#[derive(Serialize)]
struct ImageSource<'a> {
    bytes: &'a str,
}

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    /// Converse requires a name (letters, digits, single spaces, hyphens, brackets).
    name: String,
    source: ImageSource<'a>,
}

/// Converse's document `format` for a MIME type.
fn document_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => return None,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    tool_use_id: &'a str,
    content: Vec<ContentBlock<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ReasoningBlock<'a> {
    ReasoningText {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
    },
    RedactedContent(&'a str),
}

/// Converse's image `format` for a MIME type.
fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn content<'a>(
    blocks: &'a [Block],
    out: &mut Vec<ContentBlock<'a>>,
    field: &dyn Fn() -> String,
) -> Result<()> {
    for (j, block) in blocks.iter().enumerate() {
        match block {
            Block::Text { text, cache } => {
                out.push(ContentBlock::Text(text));
                if *cache {
                    out.push(ContentBlock::CachePoint(CACHE_POINT));
                }
            }
            Block::Image {
                media_type,
                data,
                cache,
            } => {
                let format = image_format(media_type).ok_or_else(|| {
                    Error::untranslatable(
                        format!("{}[{j}]", field()),
                        BACKEND,
                        format!("image type {media_type:?} is not one of png, jpeg, gif, webp"),
                    )
                })?;
                out.push(ContentBlock::Image(Image {
                    format,
                    source: ImageSource { bytes: data },
                }));
                if *cache {
                    out.push(ContentBlock::CachePoint(CACHE_POINT));
                }
            }
            Block::Document {
                media_type,
                data,
                cache,
            } => {
                let format = document_format(media_type).ok_or_else(|| {
                    Error::untranslatable(
                        format!("{}[{j}]", field()),
                        BACKEND,
                        format!("document type {media_type:?} has no Converse format"),
                    )
                })?;
                out.push(ContentBlock::Document(Document {
                    format,
                    name: format!("document {j} {}", data.len()),
                    source: ImageSource { bytes: data },
                }));
                if *cache {
                    out.push(ContentBlock::CachePoint(CACHE_POINT));
                }
            }
            Block::ImageUrl { field, .. } => {
                return Err(Error::untranslatable(
                    field.clone(),
                    BACKEND,
                    "Bedrock needs image bytes; send the image as a base64 data URL",
                ));
            }
            Block::ToolUse { id, name, input } => out.push(ContentBlock::ToolUse(ToolUse {
                tool_use_id: id,
                name,
                input,
            })),
            Block::ToolResult {
                id,
                content: inner,
                is_error,
                cache,
            } => {
                let mut c = Vec::with_capacity(inner.len());
                content(inner, &mut c, &|| format!("{}[{j}].content", field()))?;
                // A cache point inside a tool result is not allowed; it goes after it.
                c.retain(|b| !matches!(b, ContentBlock::CachePoint(_)));
                if c.is_empty() {
                    c.push(ContentBlock::Text(""));
                }
                out.push(ContentBlock::ToolResult(ToolResult {
                    tool_use_id: id,
                    content: c,
                    status: is_error.then_some("error"),
                }));
                if *cache {
                    out.push(ContentBlock::CachePoint(CACHE_POINT));
                }
            }
            Block::Thinking { text, signature } => {
                out.push(ContentBlock::ReasoningContent(
                    ReasoningBlock::ReasoningText {
                        text,
                        signature: signature.as_deref(),
                    },
                ));
            }
            Block::RedactedThinking { data } => {
                out.push(ContentBlock::ReasoningContent(
                    ReasoningBlock::RedactedContent(data),
                ));
            }
        }
    }
    Ok(())
}

/// Percent-encodes a model id as a URI path label, the way the AWS SDKs do: every byte
/// outside `A-Za-z0-9-_.~` is escaped, so `:` becomes `%3A` and an ARN's `/` `%2F`.
pub fn encode_model_id(id: &str) -> String {
    // Runs of unreserved bytes are copied whole (a `char` push per byte cost more than
    // the rest of the path); the result is ASCII.
    let bytes = id.as_bytes();
    let mut out = Vec::with_capacity(id.len() + 8);
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')) {
            out.extend_from_slice(&bytes[plain..i]);
            out.extend_from_slice(&[
                b'%',
                b"0123456789ABCDEF"[usize::from(b >> 4)],
                b"0123456789ABCDEF"[usize::from(b & 0xf)],
            ]);
            plain = i + 1;
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    String::from_utf8(out).unwrap_or_default()
}

/// Which reasoning dialect a Bedrock model speaks.
fn reasoning_fields(model: &str, r: &Reasoning, fields: &mut Map<String, Value>) {
    let is_claude = model.contains("anthropic.") || model.contains("claude");
    if is_claude {
        match r {
            // Claude models that think adaptively take Anthropic's own fields through
            // `additionalModelRequestFields`; the client only sends `adaptive` to them.
            Reasoning::Adaptive(effort) => {
                fields.insert("thinking".into(), json!({"type": "adaptive"}));
                if let Some(e) = effort {
                    fields.insert("output_config".into(), json!({"effort": e}));
                }
            }
            _ => match r.budget_tokens() {
                Some(budget) => {
                    fields.insert(
                        "thinking".into(),
                        json!({"type": "enabled", "budget_tokens": budget}),
                    );
                }
                None => {
                    fields.insert("thinking".into(), json!({"type": "disabled"}));
                }
            },
        }
    } else if model.contains("nova") {
        let Some(effort) = r.effort() else {
            fields.insert("reasoningConfig".into(), json!({"type": "disabled"}));
            return;
        };
        fields.insert(
            "reasoningConfig".into(),
            json!({"type": "enabled", "maxReasoningEffort": level3(effort)}),
        );
    } else if let Some(effort) = r.effort() {
        // Open-weight models (gpt-oss, DeepSeek, …) take OpenAI's field as-is.
        let effort = if effort == "minimal" {
            effort
        } else {
            level3(effort)
        };
        fields.insert("reasoning_effort".into(), effort.into());
    }
}

/// An effort on the three-level scale most reasoning controls have (`xhigh`/`max`
/// are the top of it; `minimal` the bottom).
pub(crate) fn level3(effort: &str) -> &'static str {
    match effort {
        "minimal" | "low" => "low",
        "medium" => "medium",
        _ => "high",
    }
}

/// Serialises the Converse body for `req`.
pub fn converse_body(req: &ChatRequest) -> Result<Vec<u8>> {
    with_converse(req, |body| {
        // The text dominates the body; a little over the client's request size holds it.
        let mut out = Vec::with_capacity(1024);
        body.write(&mut out);
        out
    })
}

/// Builds the Converse body for `req` and hands it to `f`.
fn with_converse<T>(req: &ChatRequest, f: impl FnOnce(&Converse<'_>) -> T) -> Result<T> {
    let reject = |field: &str, why: &str| Error::untranslatable(field, BACKEND, why);
    if req.n.is_some_and(|n| n > 1) {
        return Err(reject("n", "Bedrock Converse returns a single choice"));
    }
    if req.presence_penalty.is_some_and(|p| p != 0.0) {
        return Err(reject(
            "presence_penalty",
            "Converse has no presence penalty",
        ));
    }
    if req.frequency_penalty.is_some_and(|p| p != 0.0) {
        return Err(reject(
            "frequency_penalty",
            "Converse has no frequency penalty",
        ));
    }
    if req.seed.is_some() {
        return Err(reject("seed", "Converse has no sampling seed"));
    }
    if req.parallel_tool_calls == Some(false) && !req.tools.is_empty() {
        return Err(reject(
            "parallel_tool_calls",
            "Converse cannot forbid parallel tool calls",
        ));
    }

    let mut system = Vec::with_capacity(req.system.len() + 1);
    content(&req.system, &mut system, &|| "system".to_owned())?;
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let mut c = Vec::with_capacity(m.content.len());
        content(&m.content, &mut c, &|| format!("messages[{i}].content"))?;
        messages.push(Msg {
            role: match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: c,
        });
    }

    let object_schema: Box<RawValue> = if req.tools.iter().any(|t| t.parameters.is_none()) {
        RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_owned())
            .map_err(|e| Error::internal(e.to_string()))?
    } else {
        Box::default()
    };
    let tool_choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::Any) => Some(json!({"any": {}})),
        Some(ToolChoice::Tool(name)) => Some(json!({"tool": {"name": name}})),
        Some(ToolChoice::None) => None,
    };
    let drop_tools = req.tool_choice == Some(ToolChoice::None);
    if drop_tools && req.has_tool_history() {
        return Err(reject(
            "tool_choice",
            "Converse has no \"none\" tool choice, and the conversation's tool calls need the tool definitions",
        ));
    }
    let tool_config = (!req.tools.is_empty() && !drop_tools).then(|| {
        let mut tools = Vec::with_capacity(req.tools.len() + 1);
        for t in &req.tools {
            tools.push(ToolEntry::ToolSpec(ToolSpec {
                name: &t.name,
                description: t.description.as_deref(),
                input_schema: InputSchema {
                    json: t.parameters.as_deref().unwrap_or(&object_schema),
                },
            }));
            if t.cache {
                tools.push(ToolEntry::CachePoint(CACHE_POINT));
            }
        }
        ToolConfig { tools, tool_choice }
    });

    let mut additional = Map::new();
    if let Some(r) = &req.reasoning {
        reasoning_fields(&req.model, r, &mut additional);
    }
    if !req.anthropic_betas.is_empty()
        && (req.model.contains("anthropic.") || req.model.contains("claude"))
    {
        // Converse carries Claude's betas (interleaved thinking, …) in the model's own
        // request fields.
        additional.insert("anthropic_beta".into(), json!(req.anthropic_betas));
    }
    if let Some(k) = req.top_k {
        if req.model.contains("anthropic.") || req.model.contains("claude") {
            additional.insert("top_k".into(), k.into());
        } else if req.model.contains("nova") {
            additional.insert("inferenceConfig".into(), json!({"topK": k}));
        } else {
            return Err(reject(
                "top_k",
                "top_k is known only for Claude and Nova models on Bedrock",
            ));
        }
    }

    // Vendor `additionalModelRequestFields` are the client's own model-specific knobs:
    // merged over the ones derived from OpenAI fields.
    if let Some(extra) = &req.vendor.additional_model_request_fields {
        let fields: Map<String, Value> = serde_json::from_str(extra.get()).map_err(|e| {
            Error::bad_request(format!(
                "`additionalModelRequestFields` must be a JSON object: {e}"
            ))
        })?;
        additional.extend(fields);
    }
    if req.vendor.google_search.is_some() {
        return Err(reject(
            "tools",
            "the google_search tool is Gemini's; Converse has no web search tool",
        ));
    }

    let output_config = match &req.response_format {
        None => None,
        Some(ResponseFormat::JsonObject) => Some(json!({"textFormat": {
            "type": "json_schema",
            "structure": {"jsonSchema": {"name": "json_object", "schema": "{\"type\":\"object\"}"}},
        }})),
        Some(ResponseFormat::JsonSchema {
            name,
            description,
            schema,
        }) => {
            // `schema` is a JSON document in a string; send it compact.
            let compact = serde_json::from_str::<Value>(schema.get())
                .map_err(|e| Error::bad_request(format!("response_format schema: {e}")))?
                .to_string();
            let mut js = json!({"name": name, "schema": compact});
            if let Some(d) = description {
                js["description"] = d.as_str().into();
            }
            Some(json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": js}}}))
        }
    };

    let body = Converse {
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: &req.stop,
        },
        tool_config,
        additional_model_request_fields: additional,
        output_config,
        guardrail_config: req.vendor.guardrail_config.as_deref(),
        performance_config: req.vendor.performance_config.as_deref(),
        prompt_variables: req.vendor.prompt_variables.as_deref(),
    };
    Ok(f(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Byte for byte the per-byte encoding, whatever the id.
        #[test]
        fn model_ids_are_escaped_byte_by_byte(id in "[a-z0-9.:/_~ %-]{0,24}|\\PC{0,8}") {
            let mut expected = String::new();
            for b in id.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    expected.push(char::from(b));
                } else {
                    expected.push_str(&format!("%{b:02X}"));
                }
            }
            proptest::prop_assert_eq!(encode_model_id(&id), expected);
        }
    }

    #[test]
    fn model_ids_are_escaped_like_the_sdk() {
        assert_eq!(
            encode_model_id("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(
            encode_model_id("arn:aws:bedrock:us-east-1:1:inference-profile/x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx"
        );
    }
}
