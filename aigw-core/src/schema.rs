//! Backend API schemas (`AIServiceBackend.spec.schema`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The API a backend speaks, as named by `AIServiceBackend.spec.schema.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub enum ApiSchema {
    /// OpenAI, or any OpenAI-compatible server (vLLM, Ollama, Groq, …) via `prefix`.
    OpenAI,
    /// Cohere (rerank).
    Cohere,
    /// AWS Bedrock Converse / ConverseStream (and InvokeModel for embeddings).
    AWSBedrock,
    /// Azure OpenAI (`/openai/deployments/{model}/…?api-version=`).
    AzureOpenAI,
    /// GCP Vertex AI Gemini models.
    GCPVertexAI,
    /// Anthropic models on GCP Vertex AI (rawPredict / streamRawPredict).
    GCPAnthropic,
    /// The native Anthropic Messages API.
    Anthropic,
    /// Anthropic models on AWS Bedrock through InvokeModel.
    AWSAnthropic,
}

impl ApiSchema {
    /// The `gen_ai.provider.name` value used in metrics for this schema.
    pub const fn provider_name(self) -> &'static str {
        match self {
            Self::OpenAI => "openai",
            Self::Cohere => "cohere",
            Self::AWSBedrock => "aws.bedrock",
            Self::AzureOpenAI => "azure.openai",
            Self::GCPVertexAI => "gcp.vertex_ai",
            Self::GCPAnthropic => "gcp.anthropic",
            Self::Anthropic => "anthropic",
            Self::AWSAnthropic => "aws.anthropic",
        }
    }

    /// The schema name exactly as written in YAML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAI => "OpenAI",
            Self::Cohere => "Cohere",
            Self::AWSBedrock => "AWSBedrock",
            Self::AzureOpenAI => "AzureOpenAI",
            Self::GCPVertexAI => "GCPVertexAI",
            Self::GCPAnthropic => "GCPAnthropic",
            Self::Anthropic => "Anthropic",
            Self::AWSAnthropic => "AWSAnthropic",
        }
    }
}

impl fmt::Display for ApiSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema with its optional version (Azure `api-version`, Anthropic `anthropic_version`)
/// and path prefix (for OpenAI-compatible servers mounted under a sub-path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VersionedSchema {
    /// The schema name.
    pub name: ApiSchema,
    /// The API version, where the schema has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A path prefix placed before the API's own paths (e.g. `/v1beta/openai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Whether `/v1/responses` is translated to Chat Completions instead of passed
    /// through: an OpenAI-compatible server without the Responses API (vLLM, Ollama).
    /// Not a field of upstream's `schema`: set from the AIServiceBackend annotation
    /// [`RESPONSES_ANNOTATION`] (`translate`).
    #[serde(skip)]
    #[cfg_attr(feature = "schema", schemars(skip))]
    pub responses_over_chat: bool,
}

/// The AIServiceBackend annotation saying how an OpenAI-schema backend serves
/// `/v1/responses`: `passthrough` (the default: the server has the Responses API) or
/// `translate` (it has only Chat Completions; the gateway translates).
pub const RESPONSES_ANNOTATION: &str = "aigw.run/responses";

impl VersionedSchema {
    /// A schema with neither version nor prefix.
    pub const fn new(name: ApiSchema) -> Self {
        Self {
            name,
            version: None,
            prefix: None,
            responses_over_chat: false,
        }
    }
}
