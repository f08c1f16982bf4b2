//! Error bodies for the replies Envoy makes itself when an external processor fails.
//!
//! When an InferencePool's endpoint picker (or the AI Gateway ExtProc sidecar) cannot be
//! reached, times out or breaks its gRPC stream, Envoy's ext_proc filter answers the
//! client itself: status 500 with an empty body (upstream's behaviour), which the
//! OpenAI and Anthropic SDKs report as an unparseable error. The listeners that carry
//! those filters get a local-reply mapping that gives exactly those replies (their
//! response code details start with `ext_proc_error`) a body in the client API's error
//! shape: Anthropic's for the Messages endpoint, OpenAI's otherwise. The status stays
//! Envoy's; the message carries Envoy's details (the gRPC status and connection error).
//! Replies the ExtProc sends on purpose (limits, bad requests) carry their own details
//! and body and are not touched.

use envoy_types::pb::envoy::config::accesslog::v3::{
    AccessLogFilter, ExtensionFilter, access_log_filter::FilterSpecifier, extension_filter,
};
use envoy_types::pb::envoy::config::core::v3::{
    SubstitutionFormatString, substitution_format_string::Format,
};
use envoy_types::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, LocalReplyConfig, ResponseMapper,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

use super::to_any;

/// Envoy's response-code-details prefix of an ext_proc failure.
const FAILED: &str = "response.code_details.startsWith('ext_proc_error')";
/// The client API's path of Anthropic's Messages endpoint (under any prefix).
const ANTHROPIC: &str = "request.path.contains('/v1/messages')";
const MESSAGE: &str = "the gateway's request processing failed (InferencePool endpoint picker or AI Gateway ExtProc unavailable): %RESPONSE_CODE_DETAILS%";

/// Adds the mappers to `hcm` unless they are there (idempotent); mappers Envoy Gateway
/// or a user put there first keep precedence.
pub fn insert(hcm: &mut HttpConnectionManager) {
    let config = hcm
        .local_reply_config
        .get_or_insert_with(LocalReplyConfig::default);
    let ours = mappers();
    if config.mappers.iter().any(|m| ours.contains(m)) {
        return;
    }
    config.mappers.extend(ours);
}

fn mappers() -> Vec<ResponseMapper> {
    let anthropic = object([
        ("type", string("error")),
        (
            "error",
            object([("type", string("api_error")), ("message", string(MESSAGE))]),
        ),
    ]);
    let openai = object([(
        "error",
        object([
            ("message", string(MESSAGE)),
            ("type", string("server_error")),
            ("param", null()),
            ("code", string("gateway_processing_failed")),
        ]),
    )]);
    vec![
        mapper(&format!("{FAILED} && {ANTHROPIC}"), anthropic),
        mapper(FAILED, openai),
    ]
}

fn mapper(expression: &str, body: Value) -> ResponseMapper {
    let Some(Kind::StructValue(body)) = body.kind else {
        return ResponseMapper::default();
    };
    ResponseMapper {
        filter: Some(AccessLogFilter {
            filter_specifier: Some(FilterSpecifier::ExtensionFilter(ExtensionFilter {
                name: "envoy.access_loggers.extension_filters.cel".into(),
                config_type: Some(extension_filter::ConfigType::TypedConfig(to_any(
                    &ExpressionFilter {
                        expression: expression.into(),
                        ..Default::default()
                    },
                ))),
            })),
        }),
        body_format_override: Some(SubstitutionFormatString {
            format: Some(Format::JsonFormat(body)),
            content_type: "application/json".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn null() -> Value {
    Value {
        kind: Some(Kind::NullValue(0)),
    }
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        })),
    }
}
