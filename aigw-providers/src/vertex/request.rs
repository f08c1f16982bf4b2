//! [`ChatRequest`] → Gemini `GenerateContentRequest` (Vertex AI).
//!
//! Shapes follow the Vertex AI Gemini API reference: `contents[].parts[]` with `text`,
//! `inlineData`, `fileData`, `functionCall`, `functionResponse`, `thought` and
//! `thoughtSignature`; `systemInstruction`; `tools[].functionDeclarations[]` with
//! `parametersJsonSchema`; `toolConfig.functionCallingConfig`; `generationConfig` with
//! `responseMimeType` / `responseJsonSchema` and `thinkingConfig`.

use crate::canonical::{Block, ChatRequest, Reasoning, ResponseFormat, Role, ToolChoice};
use aigw_core::{Error, Result};
use serde_json::{Map, Value, json};

/// The backend name used in 422 errors.
pub const BACKEND: &str = "GCPVertexAI";

/// Separator between a tool-call id and the Gemini `thoughtSignature` that belongs to
/// the call. Gemini signs function calls and requires the signature back with the call
/// in later turns; OpenAI and Anthropic tool calls have nowhere else to carry it, so it
/// rides inside the id the client echoes.
pub const SIGNATURE_SEPARATOR: &str = "__thought__";

fn raw(v: &serde_json::value::RawValue) -> Result<Value> {
    serde_json::from_str(v.get()).map_err(|e| Error::bad_request(format!("invalid JSON: {e}")))
}

/// Guesses an image MIME type from a URL's extension; Gemini's `fileData` needs one.
fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit('.').next()?;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// Tool-call ids → names, because Gemini's `functionResponse` is matched by name.
fn tool_names(req: &ChatRequest) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for m in &req.messages {
        for b in &m.content {
            if let Block::ToolUse { id, name, .. } = b {
                out.push((id.as_str(), name.as_str()));
            }
        }
    }
    out
}

fn parts(
    blocks: &[Block],
    names: &[(&str, &str)],
    field: &str,
    out: &mut Vec<Value>,
) -> Result<()> {
    for (j, b) in blocks.iter().enumerate() {
        match b {
            // Gemini has implicit caching only; explicit breakpoints have no field.
            Block::Text { text, .. } => out.push(json!({"text": text})),
            Block::Image {
                media_type, data, ..
            } => out.push(json!({"inlineData": {"mimeType": media_type, "data": data}})),
            Block::ImageUrl { url, field } => {
                let mime = mime_from_url(url).ok_or_else(|| {
                    Error::untranslatable(
                        field.clone(),
                        BACKEND,
                        "the image URL has no recognisable extension and Gemini needs a MIME type; send a data URL",
                    )
                })?;
                out.push(json!({"fileData": {"mimeType": mime, "fileUri": url}}));
            }
            Block::ToolUse { id, name, input } => {
                let (id, signature) = match id.split_once(SIGNATURE_SEPARATOR) {
                    Some((id, sig)) => (id, Some(sig)),
                    None => (id.as_str(), None),
                };
                let mut part =
                    json!({"functionCall": {"id": id, "name": name, "args": raw(input)?}});
                if let Some(sig) = signature {
                    part["thoughtSignature"] = sig.into();
                }
                out.push(part);
            }
            Block::ToolResult {
                id,
                content,
                is_error,
                ..
            } => {
                let name = names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, n)| *n)
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "{field}[{j}]: tool result {id:?} answers no earlier tool call; Gemini needs the function name"
                        ))
                    })?;
                if let Some(k) = content
                    .iter()
                    .position(|c| !matches!(c, Block::Text { .. }))
                {
                    return Err(Error::untranslatable(
                        format!("{field}[{j}].content[{k}]"),
                        BACKEND,
                        "Gemini function responses carry JSON only, not images",
                    ));
                }
                let text: String = content
                    .iter()
                    .filter_map(|c| match c {
                        Block::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                // `response` must be an object: a JSON object result is passed as is,
                // anything else is wrapped, under `error` for failed calls.
                let parsed = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object);
                let response = match (parsed, is_error) {
                    (Some(obj), false) => obj,
                    (_, true) => json!({"error": text}),
                    (None, false) => json!({"content": text}),
                };
                let id = id
                    .split_once(SIGNATURE_SEPARATOR)
                    .map_or(id.as_str(), |(i, _)| i);
                out.push(
                    json!({"functionResponse": {"id": id, "name": name, "response": response}}),
                );
            }
            Block::Thinking { text, signature } => {
                let mut part = json!({"text": text, "thought": true});
                if let Some(sig) = signature {
                    part["thoughtSignature"] = sig.as_str().into();
                }
                out.push(part);
            }
            Block::RedactedThinking { .. } => {
                return Err(Error::untranslatable(
                    format!("{field}[{j}]"),
                    BACKEND,
                    "redacted thinking from another provider cannot be replayed to Gemini",
                ));
            }
        }
    }
    Ok(())
}

/// Serialises the Gemini body for `req`.
pub fn generate_content_body(req: &ChatRequest) -> Result<Vec<u8>> {
    let reject = |field: &str, why: &str| Error::untranslatable(field, BACKEND, why);
    if req.stream && req.n.is_some_and(|n| n > 1) {
        return Err(reject("n", "streamed responses carry a single candidate"));
    }
    if req.parallel_tool_calls == Some(false) && !req.tools.is_empty() {
        return Err(reject(
            "parallel_tool_calls",
            "Gemini cannot forbid parallel function calls",
        ));
    }
    let names = tool_names(req);
    let mut body = Map::new();
    let mut contents = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let mut p = Vec::with_capacity(m.content.len());
        parts(
            &m.content,
            &names,
            &format!("messages[{i}].content"),
            &mut p,
        )?;
        contents.push(json!({
            "role": match m.role { Role::User => "user", Role::Assistant => "model" },
            "parts": p,
        }));
    }
    body.insert("contents".into(), contents.into());
    if !req.system.is_empty() {
        let mut p = Vec::new();
        parts(&req.system, &names, "system", &mut p)?;
        body.insert("systemInstruction".into(), json!({"parts": p}));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name});
                if let Some(desc) = &t.description {
                    d["description"] = desc.as_str().into();
                }
                if let Some(p) = &t.parameters {
                    d["parametersJsonSchema"] = raw(p)?;
                }
                Ok(d)
            })
            .collect::<Result<_>>()?;
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(tc) = &req.tool_choice {
        let cfg = match tc {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::Any => json!({"mode": "ANY"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert("toolConfig".into(), json!({"functionCallingConfig": cfg}));
    }

    let mut generation = Map::new();
    let mut put = |k: &str, v: Value| {
        generation.insert(k.into(), v);
    };
    if let Some(t) = req.temperature {
        put("temperature", t.into());
    }
    if let Some(t) = req.top_p {
        put("topP", t.into());
    }
    if let Some(k) = req.top_k {
        put("topK", k.into());
    }
    if let Some(n) = req.n.filter(|n| *n > 1) {
        put("candidateCount", n.into());
    }
    if let Some(m) = req.max_tokens {
        put("maxOutputTokens", m.into());
    }
    if !req.stop.is_empty() {
        put("stopSequences", json!(req.stop));
    }
    if let Some(p) = req.presence_penalty {
        put("presencePenalty", p.into());
    }
    if let Some(p) = req.frequency_penalty {
        put("frequencyPenalty", p.into());
    }
    if let Some(s) = req.seed {
        put("seed", s.into());
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => put("responseMimeType", "application/json".into()),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            put("responseMimeType", "application/json".into());
            // `responseJsonSchema` takes JSON Schema as is ($ref, $defs, …), unlike the
            // OpenAPI-subset `responseSchema`.
            put("responseJsonSchema", raw(schema)?);
        }
    }
    match &req.reasoning {
        None => {}
        Some(Reasoning::Disabled) => put("thinkingConfig", json!({"thinkingBudget": 0})),
        Some(r) => {
            let budget = r.budget_tokens().unwrap_or(0);
            put(
                "thinkingConfig",
                json!({"thinkingBudget": budget, "includeThoughts": true}),
            );
        }
    }
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    serde_json::to_vec(&body).map_err(|e| Error::internal(format!("serialising Gemini body: {e}")))
}
