//! [`ChatRequest`] → Gemini `GenerateContentRequest` (Vertex AI).
//!
//! Shapes follow the Vertex AI Gemini API reference: `contents[].parts[]` with `text`,
//! `inlineData`, `fileData`, `functionCall`, `functionResponse`, `thought` and
//! `thoughtSignature`; `systemInstruction`; `tools[].functionDeclarations[]` with
//! `parametersJsonSchema`; `toolConfig.functionCallingConfig`; `generationConfig` with
//! `responseMimeType` / `responseJsonSchema` and `thinkingConfig`.

use crate::canonical::{Block, ChatRequest, Reasoning, ResponseFormat, Role, ToolChoice};
use aigw_core::{Error, Result};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The backend name used in 422 errors.
pub const BACKEND: &str = "GCPVertexAI";

/// Separator between a tool-call id and the Gemini `thoughtSignature` that belongs to
/// the call. Gemini signs function calls and requires the signature back with the call
/// in later turns; OpenAI and Anthropic tool calls have nowhere else to carry it, so it
/// rides inside the id the client echoes.
pub const SIGNATURE_SEPARATOR: &str = "__thought__";

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

// The body is written from borrowed typed structs (field order = the wire order the
// goldens pin) rather than a `serde_json::Value` tree: schemas and arguments stay raw
// JSON and nothing is re-parsed, which is most of the cost of a request.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<System<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<Generation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_settings: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<Part<'a>>,
}

#[derive(Serialize)]
struct System<'a> {
    parts: Vec<Part<'a>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    mime_type: &'a str,
    file_uri: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    id: &'a str,
    name: &'a str,
    args: &'a RawValue,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    id: &'a str,
    name: &'a str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResponseOut<'a> {
    Object(&'a RawValue),
    OwnedObject(Box<RawValue>),
    Error { error: Cow<'a, str> },
    Content { content: Cow<'a, str> },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolOut<'a> {
    FunctionDeclarations(Vec<Declaration<'a>>),
    GoogleSearch(&'a RawValue),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Declaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: CallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Generation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
    /// Vendor `generationConfig` fields, after ours (a vendor field replaces ours).
    #[serde(flatten)]
    vendor: Pairs<'a>,
}

impl Generation<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.candidate_count.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.seed.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.thinking_config.is_none()
            && self.vendor.0.is_empty()
    }

    /// Makes room for a vendor field: the client spelled it out in Gemini terms, so it
    /// is more specific than the OpenAI field we derived.
    fn yield_to(&mut self, key: &str) {
        match key {
            "temperature" => self.temperature = None,
            "topP" => self.top_p = None,
            "topK" => self.top_k = None,
            "candidateCount" => self.candidate_count = None,
            "maxOutputTokens" => self.max_output_tokens = None,
            "stopSequences" => self.stop_sequences = None,
            "presencePenalty" => self.presence_penalty = None,
            "frequencyPenalty" => self.frequency_penalty = None,
            "seed" => self.seed = None,
            "responseMimeType" => self.response_mime_type = None,
            "responseJsonSchema" => self.response_json_schema = None,
            "thinkingConfig" => self.thinking_config = None,
            _ => {}
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
}

/// Gemini's thinking control for a reasoning request. Gemini 2.x takes a token budget
/// (`-1`: dynamic, the model decides — Anthropic's `adaptive`); later models take a
/// `thinkingLevel`, which an effort maps onto directly.
fn thinking_config(model: &str, r: &Reasoning, omitted: bool) -> ThinkingConfig {
    let budget_model = model.starts_with("gemini-2") || model.starts_with("gemini-1");
    let (budget, level) = match r {
        Reasoning::Disabled => {
            return ThinkingConfig {
                thinking_budget: Some(0),
                thinking_level: None,
                include_thoughts: None,
            };
        }
        Reasoning::Adaptive(None) => (Some(-1), None),
        Reasoning::Adaptive(Some(_)) if !budget_model => (
            None,
            Some(crate::bedrock::request::level3(
                r.effort().unwrap_or("medium"),
            )),
        ),
        _ => (
            Some(i64::try_from(r.budget_tokens().unwrap_or(0)).unwrap_or(i64::MAX)),
            None,
        ),
    };
    ThinkingConfig {
        thinking_budget: budget,
        thinking_level: level,
        // Anthropic `thinking.display: omitted`: the client wants no thinking text.
        include_thoughts: Some(!omitted),
    }
}

fn parts<'a>(
    blocks: &'a [Block],
    names: &[(&'a str, &'a str)],
    field: &dyn Fn() -> String,
    out: &mut Vec<Part<'a>>,
) -> Result<()> {
    for (j, b) in blocks.iter().enumerate() {
        match b {
            // Gemini has implicit caching only; explicit breakpoints have no field.
            Block::Text { text, .. } => out.push(Part {
                text: Some(text),
                ..Part::default()
            }),
            Block::Image {
                media_type, data, ..
            } => out.push(Part {
                inline_data: Some(Blob {
                    mime_type: media_type,
                    data,
                }),
                ..Part::default()
            }),
            Block::Document {
                media_type, data, ..
            } => out.push(Part {
                inline_data: Some(Blob {
                    mime_type: media_type,
                    data,
                }),
                ..Part::default()
            }),
            Block::ImageUrl { url, field } => {
                let mime = mime_from_url(url).ok_or_else(|| {
                    Error::untranslatable(
                        field.clone(),
                        BACKEND,
                        "the image URL has no recognisable extension and Gemini needs a MIME type; send a data URL",
                    )
                })?;
                out.push(Part {
                    file_data: Some(FileData {
                        mime_type: mime,
                        file_uri: url,
                    }),
                    ..Part::default()
                });
            }
            Block::ToolUse { id, name, input } => {
                let (id, signature) = match id.split_once(SIGNATURE_SEPARATOR) {
                    Some((id, sig)) => (id, Some(sig)),
                    None => (id.as_str(), None),
                };
                out.push(Part {
                    function_call: Some(FunctionCall {
                        id,
                        name,
                        args: input,
                    }),
                    thought_signature: signature,
                    ..Part::default()
                });
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
                            "{}[{j}]: tool result {id:?} answers no earlier tool call; Gemini needs the function name",
                            field()
                        ))
                    })?;
                let mut text: Cow<'a, str> = Cow::Borrowed("");
                // Function responses are JSON: images a tool returned (a screenshot, a
                // file it read) follow the response as parts of the same turn.
                let mut images = Vec::new();
                for (k, c) in content.iter().enumerate() {
                    let t = match c {
                        Block::Text { text: t, .. } => t,
                        Block::Image { .. } | Block::ImageUrl { .. } | Block::Document { .. } => {
                            parts(std::slice::from_ref(c), names, field, &mut images)?;
                            continue;
                        }
                        _ => {
                            return Err(Error::untranslatable(
                                format!("{}[{j}].content[{k}]", field()),
                                BACKEND,
                                "Gemini function responses carry JSON, text, images and documents only",
                            ));
                        }
                    };
                    if text.is_empty() {
                        text = Cow::Borrowed(t);
                    } else {
                        text.to_mut().push_str(t);
                    }
                }
                // `response` must be an object: a JSON object result is passed as is,
                // anything else is wrapped, under `error` for failed calls.
                let response = if *is_error {
                    ResponseOut::Error { error: text }
                } else {
                    match text {
                        Cow::Borrowed(t) => match json_object(t) {
                            Some(obj) => ResponseOut::Object(obj),
                            None => ResponseOut::Content { content: text },
                        },
                        Cow::Owned(ref t) => match json_object(t) {
                            Some(obj) => ResponseOut::OwnedObject(obj.to_owned()),
                            None => ResponseOut::Content { content: text },
                        },
                    }
                };
                let id = id
                    .split_once(SIGNATURE_SEPARATOR)
                    .map_or(id.as_str(), |(i, _)| i);
                out.push(Part {
                    function_response: Some(FunctionResponse { id, name, response }),
                    ..Part::default()
                });
                out.extend(images);
            }
            Block::Thinking { text, signature } => out.push(Part {
                text: Some(text),
                thought: Some(true),
                thought_signature: signature.as_deref(),
                ..Part::default()
            }),
            Block::RedactedThinking { .. } => {
                return Err(Error::untranslatable(
                    format!("{}[{j}]", field()),
                    BACKEND,
                    "redacted thinking from another provider cannot be replayed to Gemini",
                ));
            }
        }
    }
    Ok(())
}

/// `text` as raw JSON when it is a JSON object.
fn json_object(text: &str) -> Option<&RawValue> {
    let t = text.trim();
    if !t.starts_with('{') {
        return None;
    }
    serde_json::from_str::<&RawValue>(t).ok()
}

/// The members of a JSON object in order, values kept raw.
#[derive(Default)]
struct Pairs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), *v)))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

fn vendor_object<'a>(v: &'a RawValue, field: &str) -> Result<Pairs<'a>> {
    serde_json::from_str::<Pairs<'a>>(v.get())
        .map_err(|e| Error::bad_request(format!("`{field}` must be a JSON object: {e}")))
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
    let mut contents = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let mut p = Vec::with_capacity(m.content.len());
        parts(
            &m.content,
            &names,
            &|| format!("messages[{i}].content"),
            &mut p,
        )?;
        contents.push(Content {
            role: match m.role {
                Role::User => "user",
                Role::Assistant => "model",
            },
            parts: p,
        });
    }
    let system_instruction = if req.system.is_empty() {
        None
    } else {
        let mut p = Vec::with_capacity(req.system.len());
        parts(&req.system, &names, &|| "system".to_owned(), &mut p)?;
        Some(System { parts: p })
    };
    let mut tools = Vec::new();
    if !req.tools.is_empty() {
        tools.push(ToolOut::FunctionDeclarations(
            req.tools
                .iter()
                .map(|t| Declaration {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters_json_schema: t.parameters.as_deref(),
                })
                .collect(),
        ));
    }
    if let Some(cfg) = &req.vendor.google_search {
        tools.push(ToolOut::GoogleSearch(cfg));
    }
    let tool_config = req.tool_choice.as_ref().map(|tc| {
        let (mode, only) = match tc {
            ToolChoice::Auto => ("AUTO", None),
            ToolChoice::Any => ("ANY", None),
            ToolChoice::None => ("NONE", None),
            ToolChoice::Tool(name) => ("ANY", Some([name.as_str()])),
        };
        ToolConfig {
            function_calling_config: CallingConfig {
                mode,
                allowed_function_names: only,
            },
        }
    });

    let mut generation = Generation {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        candidate_count: req.n.filter(|n| *n > 1),
        max_output_tokens: req.max_tokens,
        stop_sequences: (!req.stop.is_empty()).then_some(req.stop.as_slice()),
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        seed: req.seed,
        ..Generation::default()
    };
    match &req.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => {
            generation.response_mime_type = Some("application/json")
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            generation.response_mime_type = Some("application/json");
            // `responseJsonSchema` takes JSON Schema as is ($ref, $defs, …), unlike the
            // OpenAPI-subset `responseSchema`.
            generation.response_json_schema = Some(schema);
        }
    }
    generation.thinking_config = req
        .reasoning
        .as_ref()
        .map(|r| thinking_config(&req.model, r, req.thinking_omitted == Some(true)));
    if let Some(extra) = &req.vendor.generation_config {
        generation.vendor = vendor_object(extra, "generationConfig")?;
        let keys: Vec<Cow<'_, str>> = generation.vendor.0.iter().map(|(k, _)| k.clone()).collect();
        for k in &keys {
            generation.yield_to(k);
        }
    }

    let body = Body {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config: (!generation.is_empty()).then_some(generation),
        safety_settings: req.vendor.safety_settings.as_deref(),
        cached_content: req.vendor.cached_content.as_deref(),
        labels: req.vendor.labels.as_deref(),
    };
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, &body)
        .map_err(|e| Error::internal(format!("serialising Gemini body: {e}")))?;
    Ok(out)
}
