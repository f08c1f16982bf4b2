//! Span attributes, events and status as plain data: what the conventions produce and
//! a [`super::SpanSink`] exports, with no OpenTelemetry types in between.

use std::borrow::Cow;

/// What a hidden value is replaced with (the upstream's OpenInference marker).
pub const REDACTED: &str = "__REDACTED__";

/// An attribute value (the OTLP `AnyValue` kinds the conventions use).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A signed integer.
    Int(i64),
    /// A double.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// An array of strings.
    StrList(Vec<String>),
    /// An array of doubles (embedding vectors).
    F64List(Vec<f64>),
}

/// One attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// The attribute's key.
    pub key: Cow<'static, str>,
    /// Its value.
    pub value: AttrValue,
}

/// An ordered attribute list; a later value of a key replaces an earlier one when the
/// span is exported ([`dedupe`]).
pub type Attrs = Vec<Attr>;

/// Builds attributes without ceremony.
pub(crate) trait AttrsExt {
    fn str(&mut self, key: impl Into<Cow<'static, str>>, v: impl Into<String>);
    fn int(&mut self, key: impl Into<Cow<'static, str>>, v: i64);
    fn bool(&mut self, key: impl Into<Cow<'static, str>>, v: bool);
    fn f64(&mut self, key: impl Into<Cow<'static, str>>, v: f64);
    fn list(&mut self, key: impl Into<Cow<'static, str>>, v: Vec<String>);
}

impl AttrsExt for Attrs {
    fn str(&mut self, key: impl Into<Cow<'static, str>>, v: impl Into<String>) {
        self.push(Attr {
            key: key.into(),
            value: AttrValue::Str(v.into()),
        });
    }
    fn int(&mut self, key: impl Into<Cow<'static, str>>, v: i64) {
        self.push(Attr {
            key: key.into(),
            value: AttrValue::Int(v),
        });
    }
    fn bool(&mut self, key: impl Into<Cow<'static, str>>, v: bool) {
        self.push(Attr {
            key: key.into(),
            value: AttrValue::Bool(v),
        });
    }
    fn f64(&mut self, key: impl Into<Cow<'static, str>>, v: f64) {
        self.push(Attr {
            key: key.into(),
            value: AttrValue::F64(v),
        });
    }
    fn list(&mut self, key: impl Into<Cow<'static, str>>, v: Vec<String>) {
        self.push(Attr {
            key: key.into(),
            value: AttrValue::StrList(v),
        });
    }
}

/// Keeps the last value of every key, in first-seen order (as an OpenTelemetry span
/// does when an attribute is set twice).
pub fn dedupe(attrs: Attrs) -> Attrs {
    let mut out: Attrs = Vec::with_capacity(attrs.len());
    for a in attrs {
        match out.iter_mut().find(|o| o.key == a.key) {
            Some(o) => o.value = a.value,
            None => out.push(a),
        }
    }
    out
}

/// A span's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// OpenInference spans (the upstream's choice).
    Internal,
    /// GenAI spans and upstream attempts.
    Client,
}

/// A span's final status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// Not set.
    Unset,
    /// Success.
    Ok,
    /// Failure, with a description.
    Error(String),
}

/// A span event.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// The event's name.
    pub name: Cow<'static, str>,
    /// When it happened.
    pub time: std::time::SystemTime,
    /// Its attributes.
    pub attrs: Attrs,
}
