//! Image models and rerankers in the wire shapes of the providers that are not OpenAI:
//! Bedrock InvokeModel for Amazon Titan Image Generator / Nova Canvas
//! (`taskType: TEXT_IMAGE`) and Stability (`mode: text-to-image`), the Bedrock Agent
//! Runtime `POST /rerank`, Imagen `:predict` and the Vertex AI Ranking API
//! (`rankingConfigs/{config}:rank`). Each checks the documented request shape strictly
//! and answers 400 in the provider's error shape otherwise.

use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::errors::{self, Provider};
use super::media::PNG_1X1;
use super::reply::fnv;
use super::stream;
use super::{Sim, SimRequest, begin};

/// Every simulated image, base64.
fn png() -> String {
    base64::engine::general_purpose::STANDARD.encode(PNG_1X1)
}

/// Fails on any key of `obj` not in `allowed` (how the providers' validators answer).
fn only(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "Malformed input request: #/{what}: extraneous key [{k}] is not permitted, please reformat your input and try again."
        )),
        None => Ok(()),
    }
}

/// Titan Image Generator / Nova Canvas `TEXT_IMAGE`: the images, or the validation
/// message.
fn amazon_image(body: &Value) -> Result<Value, String> {
    let obj = body
        .as_object()
        .ok_or("Malformed input request: body is not an object")?;
    only(
        obj,
        &["taskType", "textToImageParams", "imageGenerationConfig"],
        "",
    )?;
    if body.get("taskType").and_then(Value::as_str) != Some("TEXT_IMAGE") {
        return Err("Malformed input request: #/taskType: TEXT_IMAGE expected".into());
    }
    let params = body
        .get("textToImageParams")
        .and_then(Value::as_object)
        .ok_or("Malformed input request: #: required key [textToImageParams] not found")?;
    only(
        params,
        &["text", "negativeText", "style"],
        "textToImageParams",
    )?;
    if !params.get("text").is_some_and(Value::is_string) {
        return Err(
            "Malformed input request: #/textToImageParams: required key [text] not found".into(),
        );
    }
    let config = body.get("imageGenerationConfig").and_then(Value::as_object);
    if let Some(c) = config {
        only(
            c,
            &[
                "numberOfImages",
                "width",
                "height",
                "quality",
                "cfgScale",
                "seed",
            ],
            "imageGenerationConfig",
        )?;
        if let Some(q) = c.get("quality").and_then(Value::as_str)
            && q != "standard"
            && q != "premium"
        {
            return Err(format!(
                "Malformed input request: #/imageGenerationConfig/quality: {q} is not a valid enum value"
            ));
        }
    }
    let n = config
        .and_then(|c| c.get("numberOfImages"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    if !(1..=5).contains(&n) {
        return Err("Malformed input request: #/imageGenerationConfig/numberOfImages: must be between 1 and 5".into());
    }
    Ok(json!({"images": vec![png(); n as usize], "error": null}))
}

/// Stability `text-to-image` on Bedrock: one image.
fn stability_image(body: &Value) -> Result<Value, String> {
    let obj = body
        .as_object()
        .ok_or("Malformed input request: body is not an object")?;
    only(
        obj,
        &[
            "prompt",
            "mode",
            "aspect_ratio",
            "output_format",
            "seed",
            "negative_prompt",
        ],
        "",
    )?;
    if !obj.get("prompt").is_some_and(Value::is_string) {
        return Err("Malformed input request: #: required key [prompt] not found".into());
    }
    let seed = obj.get("seed").and_then(Value::as_u64).unwrap_or(0);
    Ok(json!({"seeds": [seed], "finish_reasons": [null], "images": [png()]}))
}

/// The answer of an image model on InvokeModel, if `model` is one.
pub(crate) fn bedrock_image(model: &str, body: &Value) -> Option<Result<Value, String>> {
    if model.contains("titan-image") || model.contains("nova-canvas") {
        Some(amazon_image(body))
    } else if model.contains("stability.") {
        Some(stability_image(body))
    } else {
        None
    }
}

/// The text of a Bedrock rerank source (text or JSON document).
fn source_text(s: &Value) -> Option<String> {
    let doc = s.get("inlineDocumentSource")?;
    match doc.get("type")?.as_str()? {
        "TEXT" => Some(doc.get("textDocument")?.get("text")?.as_str()?.to_owned()),
        "JSON" => Some(doc.get("jsonDocument")?.to_string()),
        _ => None,
    }
}

/// Relevance: the share of the query's words found in the document (stable, and
/// orders documents the way a reader expects).
fn score(query: &str, doc: &str) -> f64 {
    let doc = doc.to_lowercase();
    let q: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let hits = q.iter().filter(|w| doc.contains(w.as_str())).count();
    let tie = (fnv(&[doc.as_bytes()]) % 1000) as f64 / 1.0e6;
    hits as f64 / q.len().max(1) as f64 * 0.9 + tie
}

fn ranked(query: &str, docs: &[String], top: Option<u64>) -> Vec<(usize, f64)> {
    let mut r: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (i, score(query, d)))
        .collect();
    r.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some(n) = top {
        r.truncate(n as usize);
    }
    r
}

fn bedrock_rerank_body(body: &Value) -> Result<Value, String> {
    let invalid = |m: &str| format!("1 validation error detected: {m}");
    let query = body
        .pointer("/queries/0/textQuery/text")
        .and_then(Value::as_str)
        .filter(|_| body.pointer("/queries/0/type") == Some(&json!("TEXT")))
        .ok_or_else(|| invalid("Value at 'queries' failed to satisfy constraint"))?;
    let cfg = body
        .pointer("/rerankingConfiguration/bedrockRerankingConfiguration")
        .filter(|_| {
            body.pointer("/rerankingConfiguration/type") == Some(&json!("BEDROCK_RERANKING_MODEL"))
        })
        .ok_or_else(|| invalid("Value at 'rerankingConfiguration' failed to satisfy constraint"))?;
    let arn = cfg
        .pointer("/modelConfiguration/modelArn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !arn.starts_with("arn:aws") || !arn.contains(":bedrock:") {
        return Err(invalid(
            "Value at 'rerankingConfiguration.bedrockRerankingConfiguration.modelConfiguration.modelArn' failed to satisfy constraint: Member must satisfy regular expression pattern",
        ));
    }
    let sources = body
        .get("sources")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Value at 'sources' failed to satisfy constraint"))?;
    let docs = sources
        .iter()
        .map(|s| {
            (s.get("type") == Some(&json!("INLINE")))
                .then(|| source_text(s))
                .flatten()
        })
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| invalid("Value at 'sources' failed to satisfy constraint"))?;
    let top = cfg.get("numberOfResults").and_then(Value::as_u64);
    let results: Vec<Value> = ranked(query, &docs, top)
        .into_iter()
        .map(|(i, s)| json!({"index": i, "relevanceScore": s}))
        .collect();
    Ok(json!({"results": results}))
}

/// `POST /rerank` (Bedrock Agent Runtime).
pub(crate) async fn bedrock_rerank(State(shared): Sim, req: SimRequest) -> Response {
    let script = match begin(&shared, Provider::Bedrock, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match req.json(Provider::Bedrock) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    match bedrock_rerank_body(&body) {
        Ok(out) => {
            let mut resp = stream::json(
                serde_json::to_vec(&out).unwrap_or_default(),
                &script,
                req.reset,
            );
            // AWS answers every call with its request id.
            let id = format!("{:016x}", fnv(&[&req.body]));
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amzn-requestid", v);
            }
            resp
        }
        Err(msg) => errors::bad_request(Provider::Bedrock, &msg),
    }
}

/// Imagen `:predict`: `{"instances":[{"prompt"}],"parameters":{…}}`.
pub(crate) fn imagen(body: &Value) -> Result<Value, String> {
    let prompt = body
        .pointer("/instances/0/prompt")
        .and_then(Value::as_str)
        .ok_or("Invalid JSON payload: 'instances[0].prompt' is required.")?;
    let params = body.get("parameters").cloned().unwrap_or(json!({}));
    if let Some(p) = params.as_object() {
        only(
            p,
            &[
                "sampleCount",
                "aspectRatio",
                "sampleImageSize",
                "outputOptions",
                "negativePrompt",
                "seed",
                "addWatermark",
                "enhancePrompt",
                "personGeneration",
                "safetySetting",
                "language",
                "storageUri",
                "includeRaiReason",
            ],
            "parameters",
        )
        .map_err(|_| "Invalid JSON payload received. Unknown name in 'parameters'.".to_owned())?;
    }
    if params.get("seed").is_some() && params.get("addWatermark") != Some(&json!(false)) {
        return Err("Seed is not supported when addWatermark is enabled.".into());
    }
    let n = params
        .get("sampleCount")
        .and_then(Value::as_u64)
        .unwrap_or(4);
    if !(1..=4).contains(&n) {
        return Err("sampleCount must be between 1 and 4.".into());
    }
    let mime = params
        .pointer("/outputOptions/mimeType")
        .and_then(Value::as_str)
        .unwrap_or("image/png");
    let predictions: Vec<Value> = (0..n)
        .map(|i| {
            let mut p = json!({"bytesBase64Encoded": png(), "mimeType": mime});
            if i == 0 {
                p["prompt"] = format!("{prompt}, simulated").into();
            }
            p
        })
        .collect();
    Ok(json!({"predictions": predictions}))
}

/// Path parameters of `/{version}/projects/{p}/locations/{l}/rankingConfigs/{config:rank}`.
#[derive(serde::Deserialize)]
pub(crate) struct RankPath {
    version: String,
    #[allow(dead_code)]
    project: String,
    #[allow(dead_code)]
    location: String,
    action: String,
}

fn vertex_rank_body(body: &Value) -> Result<Value, String> {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .ok_or("Invalid JSON payload: 'query' is required.")?;
    let records = body
        .get("records")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or("Invalid JSON payload: 'records' is required.")?;
    let mut ids = Vec::with_capacity(records.len());
    let mut docs = Vec::with_capacity(records.len());
    for r in records {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .ok_or("Record id is required.")?;
        let title = r.get("title").and_then(Value::as_str).unwrap_or_default();
        let content = r.get("content").and_then(Value::as_str).unwrap_or_default();
        if title.is_empty() && content.is_empty() {
            return Err("Either title or content is required in a record.".into());
        }
        ids.push(id.to_owned());
        docs.push(format!("{title} {content}"));
    }
    let top = body.get("topN").and_then(Value::as_u64);
    let details = body.get("ignoreRecordDetailsInResponse") != Some(&json!(true));
    let out: Vec<Value> = ranked(query, &docs, top)
        .into_iter()
        .map(|(i, s)| {
            let mut r = json!({"id": ids[i], "score": s});
            if details {
                r["content"] = records[i].get("content").cloned().unwrap_or(Value::Null);
            }
            r
        })
        .collect();
    Ok(json!({"records": out}))
}

/// `POST /v1/projects/{p}/locations/{l}/rankingConfigs/{config}:rank`.
pub(crate) async fn vertex_rank(
    State(shared): Sim,
    Path(path): Path<RankPath>,
    req: SimRequest,
) -> Response {
    let script = match begin(&shared, Provider::Vertex, &req).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    if path.version != "v1" || !path.action.ends_with(":rank") {
        return errors::error(
            Provider::Vertex,
            http::StatusCode::NOT_FOUND,
            "The requested URL was not found on this server.",
        );
    }
    let body = match req.json(Provider::Vertex) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    match vertex_rank_body(&body) {
        Ok(out) => stream::json(
            serde_json::to_vec(&out).unwrap_or_default(),
            &script,
            req.reset,
        ),
        Err(msg) => errors::bad_request(Provider::Vertex, &msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_with_the_query_words_ranks_first() {
        let docs = vec![
            "the sky is blue".to_owned(),
            "capital of France is Paris".to_owned(),
        ];
        let r = ranked("capital France", &docs, None);
        assert_eq!(r[0].0, 1);
    }

    #[test]
    fn unknown_titan_fields_are_rejected() {
        let e = amazon_image(
            &json!({"taskType":"TEXT_IMAGE","textToImageParams":{"text":"a","bogus":1}}),
        )
        .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }
}
