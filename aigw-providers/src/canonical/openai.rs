//! OpenAI Chat Completions request → [`ChatRequest`].

use super::{
    Block, ChatRequest, Reasoning, ResponseFormat, Role, Tool, ToolChoice, VendorFields,
    parse_data_url, raw_json,
};
use crate::anthropic::fields::system_reminder;
use aigw_core::{DroppedField, Error, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

mod scan;

#[derive(Deserialize, Debug, Default)]
struct Request<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    messages: Vec<Msg<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(borrow, default)]
    stop: Option<Stop<'a>>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(borrow, default)]
    logit_bias: Option<&'a RawValue>,
    #[serde(borrow, default)]
    audio: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prediction: Option<&'a RawValue>,
    #[serde(borrow, default)]
    modalities: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    web_search_options: Option<&'a RawValue>,
    #[serde(borrow, default)]
    verbosity: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    functions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    function_call: Option<&'a RawValue>,
    /// Bookkeeping fields with no effect on the generation (see [`bookkeeping`]).
    #[serde(borrow, default)]
    user: Option<&'a RawValue>,
    #[serde(borrow, default)]
    safety_identifier: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    store: Option<&'a RawValue>,
    #[serde(borrow, default)]
    service_tier: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt_cache_key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt_cache_retention: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<Vec<ToolDef<'a>>>,
    #[serde(borrow, default)]
    tool_choice: Option<ToolChoiceIn<'a>>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(borrow, default)]
    response_format: Option<ResponseFormatIn<'a>>,
    #[serde(borrow, default)]
    reasoning_effort: Option<Cow<'a, str>>,
    /// The vendor extension the upstream gateway accepts on OpenAI requests:
    /// `{"type":"enabled","budget_tokens":N}`.
    #[serde(borrow, default)]
    thinking: Option<Thinking<'a>>,
    #[serde(borrow, default, rename = "safetySettings", alias = "safety_settings")]
    safety_settings: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "cachedContent", alias = "cached_content")]
    cached_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    labels: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "generationConfig",
        alias = "generation_config"
    )]
    generation_config: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "additionalModelRequestFields",
        alias = "additional_model_request_fields"
    )]
    additional_model_request_fields: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "guardrailConfig",
        alias = "guardrail_config"
    )]
    guardrail_config: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "performanceConfig",
        alias = "performance_config"
    )]
    performance_config: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "promptVariables",
        alias = "prompt_variables"
    )]
    prompt_variables: Option<&'a RawValue>,
}

#[derive(Deserialize, Debug)]
pub(super) struct Thinking<'a> {
    #[serde(borrow, rename = "type")]
    pub(super) kind: Cow<'a, str>,
    #[serde(default)]
    pub(super) budget_tokens: Option<u64>,
}

#[derive(Deserialize, Debug)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

type Stop<'a> = super::TextOr<'a, Cow<'a, str>>;

#[derive(Deserialize, Debug)]
struct Msg<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow, default)]
    tool_call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_signature: Option<Cow<'a, str>>,
    /// A participant name; no backend here has one.
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    /// Not in OpenAI's schema; accepted on tool messages so an error result survives
    /// translation to backends that have an error flag.
    #[serde(default)]
    is_error: Option<bool>,
}

type Content<'a> = super::TextOr<'a, Part<'a>>;

#[derive(Deserialize, Debug)]
struct Part<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<ImageUrl<'a>>,
    #[serde(borrow, default)]
    file: Option<FileIn<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize, Debug)]
struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow, default)]
    detail: Option<Cow<'a, str>>,
}

/// A `file` content part: inline data (a data URL) or an id in OpenAI's Files API.
#[derive(Deserialize, Debug)]
struct FileIn<'a> {
    #[serde(borrow, default)]
    file_data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    file_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug)]
struct ToolCall<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    function: FunctionCall<'a>,
}

#[derive(Deserialize, Debug)]
struct FunctionCall<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Cow<'a, str>,
}

#[derive(Deserialize, Debug)]
struct ToolDef<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Cow<'a, str>,
    /// Gemini's grounding tool: `{"type":"google_search"}`, optionally with its config
    /// under `google_search`, or `{"googleSearch":{…}}`.
    #[serde(borrow, default, alias = "googleSearch")]
    google_search: Option<&'a RawValue>,
    #[serde(borrow, default)]
    function: Option<FunctionDef<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize, Debug)]
struct FunctionDef<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    parameters: Option<&'a RawValue>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum ToolChoiceIn<'a> {
    Mode(#[serde(borrow)] Cow<'a, str>),
    Named {
        #[serde(borrow)]
        function: NamedFn<'a>,
    },
}

#[derive(Deserialize, Debug)]
struct NamedFn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize, Debug)]
struct ResponseFormatIn<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    json_schema: Option<JsonSchemaIn<'a>>,
}

#[derive(Deserialize, Debug)]
struct JsonSchemaIn<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
}

/// `user`: an end-user id for OpenAI's abuse monitoring.
pub const DROP_USER: DroppedField = DroppedField::new(
    "user",
    "an end-user id for abuse monitoring: the answer is the same",
);
/// `safety_identifier`: the successor of `user`.
pub const DROP_SAFETY_IDENTIFIER: DroppedField = DroppedField::new(
    "safety_identifier",
    "an end-user id for abuse monitoring: the answer is the same",
);
/// `metadata`: tags for OpenAI's stored completions.
pub const DROP_METADATA: DroppedField = DroppedField::new(
    "metadata",
    "tags for OpenAI's stored completions: the answer is the same",
);
/// `store`: whether OpenAI keeps the completion.
pub const DROP_STORE: DroppedField = DroppedField::new(
    "store",
    "whether OpenAI stores the completion: the answer is the same",
);
/// `service_tier`: OpenAI's processing tiers.
pub const DROP_SERVICE_TIER: DroppedField = DroppedField::new(
    "service_tier",
    "an OpenAI capacity and price tier: the generated answer is the same",
);
/// `prompt_cache_key`: OpenAI's cache routing hint.
pub const DROP_PROMPT_CACHE_KEY: DroppedField = DroppedField::new(
    "prompt_cache_key",
    "a prompt-cache routing hint: the answer is the same",
);
/// `prompt_cache_retention`: OpenAI's cache lifetime.
pub const DROP_PROMPT_CACHE_RETENTION: DroppedField = DroppedField::new(
    "prompt_cache_retention",
    "a prompt-cache lifetime: the answer is the same",
);
/// `messages[].name`: a participant label the backends have no field for.
pub const DROP_MESSAGE_NAME: DroppedField = DroppedField::new(
    "messages.name",
    "a participant label; the backend has no field for it and the turn's role and content are kept",
);
/// `image_url.detail`: OpenAI's image resolution switch.
pub const DROP_IMAGE_DETAIL: DroppedField = DroppedField::new(
    "image_url.detail",
    "an OpenAI image-resolution setting; the backend uses its own resolution for the same image",
);

/// The fields of the request that cannot change the answer and that no backend of this
/// module has a field for: recorded as dropped (logged and counted by the exchange).
fn bookkeeping(req: &Request<'_>, dropped: &mut Vec<DroppedField>) {
    for (v, d) in [
        (req.user, DROP_USER),
        (req.safety_identifier, DROP_SAFETY_IDENTIFIER),
        (req.metadata, DROP_METADATA),
        (req.store, DROP_STORE),
        (req.service_tier, DROP_SERVICE_TIER),
        (req.prompt_cache_key, DROP_PROMPT_CACHE_KEY),
        (req.prompt_cache_retention, DROP_PROMPT_CACHE_RETENTION),
    ] {
        if v.is_some_and(|v| v.get() != "null") {
            dropped.push(d);
        }
    }
}

/// Fields that change the answer and have no counterpart: a 422 naming the field.
fn reject_untranslatable(req: &Request<'_>, backend: &str) -> Result<()> {
    let reject = |field: &str, why: &str| Err(Error::untranslatable(field, backend, why));
    if req.logprobs == Some(true) {
        return reject("logprobs", "the backend does not return log probabilities");
    }
    if req.top_logprobs.is_some_and(|n| n > 0) {
        return reject(
            "top_logprobs",
            "the backend does not return log probabilities",
        );
    }
    if is_set(req.logit_bias) {
        return reject("logit_bias", "the backend has no logit bias");
    }
    if is_set(req.audio) {
        return reject("audio", "the backend does not produce audio");
    }
    if req
        .modalities
        .as_ref()
        .is_some_and(|m| m.iter().any(|m| m != "text"))
    {
        return reject("modalities", "the backend produces text only");
    }
    if is_set(req.prediction) {
        return reject("prediction", "the backend has no predicted outputs");
    }
    if req.verbosity.as_ref().is_some_and(|v| v != "medium") {
        return reject(
            "verbosity",
            "the backend has no answer-length control besides max_tokens",
        );
    }
    if is_set(req.functions) || is_set(req.function_call) {
        return reject(
            if is_set(req.functions) {
                "functions"
            } else {
                "function_call"
            },
            "legacy function calling is not translated; use tools and tool_choice",
        );
    }
    Ok(())
}

/// `web_search_options`: Gemini's Google Search grounding is the same capability (the
/// model decides when to search and cites its sources); other backends have no web
/// search. Options other than the defaults (a user location, a non-medium context
/// size) have no Gemini counterpart and would change the results.
fn web_search(v: Option<&RawValue>, backend: &str) -> Result<Option<Box<RawValue>>> {
    #[derive(Deserialize)]
    struct Options<'a> {
        #[serde(borrow, default)]
        search_context_size: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        user_location: Option<&'a RawValue>,
    }
    let Some(v) = v.filter(|v| v.get() != "null") else {
        return Ok(None);
    };
    if backend != crate::vertex::request::BACKEND {
        return Err(Error::untranslatable(
            "web_search_options",
            backend,
            "the backend has no web search",
        ));
    }
    let o: Options<'_> = serde_json::from_str(v.get())
        .map_err(|e| Error::bad_request(format!("invalid web_search_options: {e}")))?;
    if o.user_location.is_some_and(|l| l.get() != "null") {
        return Err(Error::untranslatable(
            "web_search_options.user_location",
            backend,
            "Google Search grounding takes no user location",
        ));
    }
    if o.search_context_size.is_some_and(|s| s != "medium") {
        return Err(Error::untranslatable(
            "web_search_options.search_context_size",
            backend,
            "Google Search grounding has no context size",
        ));
    }
    raw_json("{}", String::new).map(Some)
}

fn is_set(v: Option<&RawValue>) -> bool {
    v.is_some_and(|v| {
        let s = v.get();
        s != "null" && s != "{}"
    })
}

/// Parses an OpenAI chat request. `backend` names the target in 422 errors.
pub fn parse(body: &[u8], backend: &str) -> Result<ChatRequest> {
    // UTF-8 checked once over the whole body spares serde_json checking every string
    // of it; a body that is not UTF-8 gets serde_json's own error, as before.
    // The usual request is walked by hand (see [`scan`]); serde reads what the walk is
    // not sure of, and stays the definition of every error.
    let req: Request<'_> = match std::str::from_utf8(body) {
        Ok(text) => scan::request(text).map_or_else(|| serde_json::from_str(text), Ok),
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(|e| Error::bad_request(format!("invalid chat completion request: {e}")))?;
    let reject = |field: &str, why: &str| Error::untranslatable(field, backend, why);
    reject_untranslatable(&req, backend)?;
    let web_search = web_search(req.web_search_options, backend)?;
    let mut dropped = Vec::new();
    bookkeeping(&req, &mut dropped);

    let mut out = ChatRequest {
        model: req.model.into_owned(),
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        n: req.n,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        seed: req.seed,
        stream: req.stream.unwrap_or(false),
        include_usage: req
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        parallel_tool_calls: req.parallel_tool_calls,
        dropped,
        ..ChatRequest::default()
    };
    out.stop = match req.stop {
        None => Vec::new(),
        Some(super::TextOr::Text(s)) => vec![s.into_owned()],
        Some(super::TextOr::List(v)) => v.into_iter().map(Cow::into_owned).collect(),
    };
    out.reasoning = match (req.thinking, req.reasoning_effort) {
        (Some(t), _) if t.kind == "disabled" => Some(Reasoning::Disabled),
        (Some(t), _) if t.budget_tokens.is_some() => t.budget_tokens.map(Reasoning::Budget),
        (_, Some(e)) if e == "none" => Some(Reasoning::Disabled),
        (_, Some(e)) => Some(Reasoning::Effort(e.into_owned())),
        _ => None,
    };
    out.response_format = match req.response_format {
        None => None,
        Some(f) => match f.kind.as_ref() {
            "text" => None,
            "json_object" => Some(ResponseFormat::JsonObject),
            "json_schema" => {
                let js = f.json_schema.ok_or_else(|| {
                    Error::bad_request(
                        "response_format.json_schema is required for type json_schema",
                    )
                })?;
                let schema = js.schema.ok_or_else(|| {
                    Error::bad_request("response_format.json_schema.schema is required")
                })?;
                Some(ResponseFormat::JsonSchema {
                    name: js
                        .name
                        .map_or_else(|| "response".to_owned(), Cow::into_owned),
                    description: js.description.map(Cow::into_owned),
                    schema: schema.to_owned(),
                })
            }
            other => {
                return Err(reject(
                    "response_format.type",
                    &format!("unknown response format {other:?}"),
                ));
            }
        },
    };
    let keep = |v: Option<&RawValue>| v.filter(|v| v.get() != "null").map(RawValue::to_owned);
    out.vendor = VendorFields {
        safety_settings: keep(req.safety_settings),
        cached_content: keep(req.cached_content),
        labels: keep(req.labels),
        generation_config: keep(req.generation_config),
        google_search: web_search,
        additional_model_request_fields: keep(req.additional_model_request_fields),
        guardrail_config: keep(req.guardrail_config),
        performance_config: keep(req.performance_config),
        prompt_variables: keep(req.prompt_variables),
    };
    for (i, tool) in req.tools.into_iter().flatten().enumerate() {
        if tool.kind == "google_search" || tool.kind.is_empty() && tool.google_search.is_some() {
            out.vendor.google_search = Some(match tool.google_search {
                Some(cfg) if cfg.get() != "null" => cfg.to_owned(),
                _ => raw_json("{}", String::new)?,
            });
            continue;
        }
        let Some(f) = tool.function.filter(|_| tool.kind == "function") else {
            return Err(reject(
                &format!("tools[{i}].type"),
                &format!("only function tools are supported, not {:?}", tool.kind),
            ));
        };
        out.tools.push(Tool {
            name: f.name.into_owned(),
            description: f.description.map(Cow::into_owned),
            parameters: f.parameters.map(RawValue::to_owned),
            cache: tool.cache_control.is_some(),
        });
    }
    out.tool_choice = match req.tool_choice {
        None => None,
        Some(ToolChoiceIn::Mode(m)) => Some(match m.as_ref() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Any,
            "none" => ToolChoice::None,
            other => {
                return Err(Error::bad_request(format!(
                    "tool_choice {other:?} is not one of auto, required, none"
                )));
            }
        }),
        Some(ToolChoiceIn::Named { function }) => {
            Some(ToolChoice::Tool(function.name.into_owned()))
        }
    };

    out.messages.reserve(req.messages.len());
    for (i, msg) in req.messages.into_iter().enumerate() {
        convert_message(&mut out, i, msg, backend)?;
    }
    Ok(out)
}

fn convert_message(out: &mut ChatRequest, i: usize, msg: Msg<'_>, backend: &str) -> Result<()> {
    if msg.name.is_some_and(|n| n.get() != "null") && !out.dropped.contains(&DROP_MESSAGE_NAME) {
        out.dropped.push(DROP_MESSAGE_NAME);
    }
    match msg.role.as_ref() {
        "system" | "developer" => {
            let mut blocks = content_blocks(msg.content, i, backend, &mut out.dropped)?;
            for b in &mut blocks {
                let Block::Text { text, .. } = b else {
                    return Err(Error::untranslatable(
                        format!("messages[{i}].content"),
                        backend,
                        "system messages may only contain text",
                    ));
                };
                // Instructions that open the conversation are its system prompt; later
                // ones keep their position as user-turn text in the form Anthropic
                // clients use for the same purpose (none of these backends has a
                // system role inside the conversation).
                if !out.messages.is_empty() {
                    *text = system_reminder(text);
                }
            }
            if out.messages.is_empty() {
                if out.system.is_empty() {
                    out.system = blocks;
                } else {
                    out.system.extend(blocks);
                }
            } else {
                out.push(Role::User, blocks);
            }
        }
        "user" => {
            let blocks = content_blocks(msg.content, i, backend, &mut out.dropped)?;
            out.push(Role::User, blocks);
        }
        "assistant" => {
            let content = content_blocks(msg.content, i, backend, &mut out.dropped)?;
            let mut blocks = match msg.reasoning_content {
                Some(text) => {
                    let mut b = Vec::with_capacity(content.len() + 1);
                    b.push(Block::Thinking {
                        text: text.into_owned(),
                        signature: msg.reasoning_signature.map(Cow::into_owned),
                    });
                    b.extend(content);
                    b
                }
                // The usual turn: its content is the list, no copy.
                None => content,
            };
            for (j, call) in msg.tool_calls.into_iter().flatten().enumerate() {
                blocks.push(Block::ToolUse {
                    id: call.id.into_owned(),
                    name: call.function.name.into_owned(),
                    input: raw_json(&call.function.arguments, || {
                        format!("messages[{i}].tool_calls[{j}].function.arguments")
                    })?,
                });
            }
            out.push(Role::Assistant, blocks);
        }
        "tool" | "function" => {
            let id = msg.tool_call_id.ok_or_else(|| {
                Error::bad_request(format!(
                    "messages[{i}].tool_call_id is required for tool messages"
                ))
            })?;
            let content = content_blocks(msg.content, i, backend, &mut out.dropped)?;
            out.push(
                Role::User,
                vec![Block::ToolResult {
                    id: id.into_owned(),
                    content,
                    is_error: msg.is_error.unwrap_or(false),
                    cache: false,
                }],
            );
        }
        other => {
            return Err(Error::bad_request(format!(
                "messages[{i}].role {other:?} is not a chat role"
            )));
        }
    }
    Ok(())
}

fn content_blocks(
    content: Option<Content<'_>>,
    i: usize,
    backend: &str,
    dropped: &mut Vec<DroppedField>,
) -> Result<Vec<Block>> {
    Ok(match content {
        None => Vec::new(),
        Some(super::TextOr::Text(t)) if t.is_empty() => Vec::new(),
        Some(super::TextOr::Text(t)) => vec![Block::Text {
            text: t.into_owned(),
            cache: false,
        }],
        Some(super::TextOr::List(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                let cache = part.cache_control.is_some();
                match part.kind.as_ref() {
                    "text" => blocks.push(Block::Text {
                        text: part.text.map(Cow::into_owned).unwrap_or_default(),
                        cache,
                    }),
                    "image_url" => {
                        let field = format!("messages[{i}].content[{j}].image_url.url");
                        let image = part
                            .image_url
                            .ok_or_else(|| Error::bad_request(format!("{field} is required")))?;
                        if image.detail.is_some_and(|d| d != "auto")
                            && !dropped.contains(&DROP_IMAGE_DETAIL)
                        {
                            dropped.push(DROP_IMAGE_DETAIL);
                        }
                        let url = image.url;
                        match parse_data_url(&url) {
                            Some((media, data)) => blocks.push(Block::Image {
                                media_type: media.to_owned(),
                                data: data.to_owned(),
                                cache,
                            }),
                            None => blocks.push(Block::ImageUrl {
                                url: url.into_owned(),
                                field,
                            }),
                        }
                    }
                    "file" => blocks.push(file_block(part.file, i, j, backend, cache)?),
                    other => {
                        return Err(Error::untranslatable(
                            format!("messages[{i}].content[{j}].type"),
                            backend,
                            format!("content parts of type {other:?} are not supported"),
                        ));
                    }
                }
            }
            blocks
        }
    })
}

/// A `file` part with inline data: a document block (an image when the data is one).
/// A `file_id` names a file in OpenAI's Files API, which no other backend can read.
fn file_block(
    file: Option<FileIn<'_>>,
    i: usize,
    j: usize,
    backend: &str,
    cache: bool,
) -> Result<Block> {
    let field = format!("messages[{i}].content[{j}].file");
    let file = file.ok_or_else(|| Error::bad_request(format!("{field} is required")))?;
    let Some(data) = file.file_data else {
        if file.file_id.is_some() {
            return Err(Error::untranslatable(
                format!("{field}.file_id"),
                backend,
                "a file stored in OpenAI's Files API cannot be read by this backend; send file_data",
            ));
        }
        return Err(Error::bad_request(format!("{field}.file_data is required")));
    };
    let (media_type, data) = parse_data_url(&data).ok_or_else(|| {
        Error::bad_request(format!(
            "{field}.file_data must be a base64 data URL (data:MIME;base64,...)"
        ))
    })?;
    let (media_type, data) = (media_type.to_owned(), data.to_owned());
    Ok(if media_type.starts_with("image/") {
        Block::Image {
            media_type,
            data,
            cache,
        }
    } else {
        Block::Document {
            media_type,
            data,
            cache,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_utf8_gets_serde_jsons_error() {
        let body = b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}";
        let err = parse(body, "AWSBedrock").err().unwrap().to_string();
        let serde = serde_json::from_slice::<Request<'_>>(body)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&serde), "{err}");
    }

    #[test]
    fn tool_messages_merge_into_one_user_turn() {
        let body = br#"{"model":"m","messages":[
            {"role":"user","content":"hi"},
            {"role":"assistant","content":null,"tool_calls":[
              {"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
              {"id":"b","type":"function","function":{"name":"f","arguments":""}}]},
            {"role":"tool","tool_call_id":"a","content":"1"},
            {"role":"tool","tool_call_id":"b","content":"2"}]}"#;
        let r = parse(body, "AWSBedrock").unwrap();
        assert_eq!(r.messages.len(), 3);
        assert_eq!(r.messages[2].content.len(), 2);
        match &r.messages[1].content[1] {
            Block::ToolUse { input, .. } => assert_eq!(input.get(), "{}"),
            b => panic!("{b:?}"),
        }
    }

    #[test]
    fn logprobs_is_untranslatable() {
        let e = parse(
            br#"{"model":"m","messages":[],"logprobs":true}"#,
            "AWSBedrock",
        )
        .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.to_string().contains("logprobs"));
    }
}
