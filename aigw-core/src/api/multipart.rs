//! `multipart/form-data` requests (audio transcriptions and translations, image edits):
//! the fields routing needs (`model`, `stream`) read with a streaming parser ([`multer`])
//! that drains file parts chunk by chunk without collecting them, and the `model`
//! field replaced in place for a `modelNameOverride`.
//!
//! The body is already held by the adapter within the configured body limit (as for
//! JSON requests: every packaging reads a request before routing it), so parsing adds
//! no buffering of its own: file contents are skipped, and the small text fields are
//! bounded.

use crate::error::{Error, Result};
use bytes::Bytes;
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The largest text field read (`model`, `stream`).
const MAX_TEXT_FIELD: u64 = 4096;

/// Pieces the body is fed to the parser in.
const PIECE: usize = 64 << 10;

/// What routing needs from a form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormInfo {
    /// The `model` field.
    pub model: Option<String>,
    /// The `stream` field is `true`.
    pub stream: bool,
    /// Every field's name, in order (for errors and records).
    pub fields: Vec<String>,
}

/// The boundary of a `multipart/form-data` content type, or a 400.
pub fn boundary(content_type: Option<&str>) -> Result<String> {
    let ct = content_type.ok_or_else(|| {
        Error::bad_request(
            "this endpoint takes multipart/form-data; the request has no content-type",
        )
    })?;
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(Error::bad_request(format!(
            "this endpoint takes multipart/form-data, not {ct}"
        )));
    }
    multer::parse_boundary(ct)
        .map_err(|e| Error::bad_request(format!("invalid multipart content-type: {e}")))
}

/// Polls a future over an in-memory stream to completion: every poll is ready, as the
/// stream never waits.
pub(crate) fn ready<F: Future>(f: F) -> Result<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(Error::internal(
            "multipart parser waited on an in-memory body",
        )),
    }
}

fn bad(e: &multer::Error) -> Error {
    Error::bad_request(format!("malformed multipart/form-data body: {e}"))
}

/// Reads `model` and `stream` from a form, draining every other part.
pub fn sniff(content_type: Option<&str>, body: &Bytes) -> Result<FormInfo> {
    let boundary = boundary(content_type)?;
    let pieces: Vec<std::result::Result<Bytes, Infallible>> = (0..body.len())
        .step_by(PIECE)
        .map(|i| Ok(body.slice(i..(i + PIECE).min(body.len()))))
        .collect();
    let limits = multer::SizeLimit::new()
        .for_field("model", MAX_TEXT_FIELD)
        .for_field("stream", MAX_TEXT_FIELD);
    let mut form = multer::Multipart::with_constraints(
        futures_util::stream::iter(pieces),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut info = FormInfo::default();
    while let Some(mut field) = ready(form.next_field())?.map_err(|e| bad(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "model" | "stream" => {
                let text = ready(field.text())?.map_err(|e| bad(&e))?;
                if name == "model" {
                    // The first one counts, as for the rewrite.
                    info.model.get_or_insert_with(|| text.trim().to_owned());
                } else {
                    info.stream = text.trim().eq_ignore_ascii_case("true");
                }
            }
            _ => while ready(field.chunk())?.map_err(|e| bad(&e))?.is_some() {},
        }
        info.fields.push(name);
    }
    Ok(info)
}

/// The body with the `model` field's value replaced by `model` (the other bytes
/// untouched), for a `modelNameOverride`. A form without a `model` field is a 400.
pub fn replace_model(content_type: Option<&str>, body: &[u8], model: &str) -> Result<Bytes> {
    let boundary = boundary(content_type)?;
    let delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    // The first delimiter may open the body without the leading CRLF.
    let first = format!("--{boundary}");
    let mut at = if body.starts_with(first.as_bytes()) {
        first.len()
    } else {
        finder
            .find(body)
            .map(|i| i + delimiter.len())
            .ok_or_else(|| Error::bad_request("malformed multipart/form-data body: no boundary"))?
    };
    loop {
        let rest = body.get(at..).unwrap_or_default();
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = memchr::memmem::find(rest, b"\r\n\r\n").ok_or_else(|| {
            Error::bad_request("malformed multipart/form-data body: part headers")
        })?;
        let value_start = at + head_end + 4;
        let value_end = finder
            .find(body.get(value_start..).unwrap_or_default())
            .map(|i| value_start + i)
            .ok_or_else(|| {
                Error::bad_request("malformed multipart/form-data body: unterminated part")
            })?;
        let head = String::from_utf8_lossy(rest.get(..head_end).unwrap_or_default());
        if names_model(&head) {
            let mut out = Vec::with_capacity(body.len() + model.len());
            out.extend_from_slice(body.get(..value_start).unwrap_or_default());
            out.extend_from_slice(model.as_bytes());
            out.extend_from_slice(body.get(value_end..).unwrap_or_default());
            return Ok(Bytes::from(out));
        }
        at = value_end + delimiter.len();
    }
    Err(Error::bad_request("the form has no `model` field"))
}

/// Whether a part's headers name it `model` (`Content-Disposition: form-data;
/// name="model"`, the parameter itself — not `filename="model"`).
fn names_model(head: &str) -> bool {
    head.split("\r\n").any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("content-disposition")
            && value.split(';').skip(1).any(|p| {
                let Some((k, v)) = p.split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("name") && v.trim().trim_matches('"') == "model"
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn form(model: &str, file: &[u8]) -> Bytes {
        let mut b = Vec::new();
        b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n");
        b.extend_from_slice(file);
        b.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n");
        b.extend_from_slice(model.as_bytes());
        b.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\ntrue\r\n--XyZ--\r\n");
        Bytes::from(b)
    }

    #[test]
    fn reads_model_and_stream_past_a_large_file() {
        let file = vec![7u8; 300_000];
        let info = sniff(Some(CT), &form("whisper-1", &file)).unwrap();
        assert_eq!(info.model.as_deref(), Some("whisper-1"));
        assert!(info.stream);
        assert_eq!(info.fields, ["file", "model", "stream"]);
    }

    #[test]
    fn replaces_only_the_model_value() {
        let body = form("whisper-1", b"RIFF--XyZ-not-a-boundary");
        let out = replace_model(Some(CT), &body, "my-deployment").unwrap();
        let info = sniff(Some(CT), &out).unwrap();
        assert_eq!(info.model.as_deref(), Some("my-deployment"));
        assert_eq!(
            out.len(),
            body.len() - "whisper-1".len() + "my-deployment".len()
        );
        assert!(replace_model(Some(CT), b"--XyZ--\r\n", "m").is_err());
        // `filename="model"` is not the model field.
        let tricky = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model\"\r\n\r\nF\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nw\r\n--XyZ--\r\n";
        let out = replace_model(Some(CT), tricky, "n").unwrap();
        assert!(out.windows(3).any(|w| w == b"\nF\r"), "file part untouched");
        let read = sniff(Some(CT), &out).unwrap();
        assert_eq!(read.model.as_deref(), Some("n"));
    }

    #[test]
    fn bad_forms_are_400s() {
        for (ct, body) in [
            (None, &b""[..]),
            (Some("application/json"), b"{}"),
            (
                Some(CT),
                b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm",
            ),
        ] {
            let e = sniff(ct, &Bytes::copy_from_slice(body)).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{e}");
        }
        let long = "m".repeat(5000);
        assert!(
            sniff(Some(CT), &form(&long, b"x")).is_err(),
            "bounded text fields"
        );
    }
}
