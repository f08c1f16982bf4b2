//! What the simulator verifies and how it shapes its replies when a request does not say.

use std::time::Duration;

use aigw_core::Secret;

/// AWS credentials the simulator verifies SigV4 signatures against.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    /// The access key id every signature must name in its credential scope.
    pub access_key_id: String,
    /// The secret the simulator recomputes signatures with.
    pub secret_access_key: Secret,
    /// When set, requests must carry exactly this `x-amz-security-token`.
    pub session_token: Option<Secret>,
    /// The region every credential scope must name (e.g. `us-east-1`).
    pub region: String,
}

impl AwsCredentials {
    /// Long-term credentials (no session token).
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            region: region.into(),
        }
    }

    /// Requires requests to carry this session token (temporary STS credentials).
    #[must_use]
    pub fn with_session_token(mut self, token: impl Into<Secret>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

/// Configuration of a [`Simulator`](super::Simulator).
///
/// For every credential kind, `None` means "accept anything" (including no credential at
/// all) and `Some(list)` means the request must present one of the listed values, or it
/// is refused with the provider's own 401/403 shape.
///
/// ```
/// use std::time::Duration;
/// use aigw_axum::simulator::{AwsCredentials, SimulatorConfig};
///
/// let cfg = SimulatorConfig::default()
///     .with_openai_keys(["sk-test"])
///     .with_aws(AwsCredentials::new("AKIDEXAMPLE", "secret", "us-east-1"))
///     .with_chunks(4)
///     .with_chunk_interval(Duration::from_millis(5));
/// assert_eq!(cfg.chunks, 4);
/// ```
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// OpenAI `Authorization: Bearer` keys (also used by the OpenAI-compatible prefixes).
    pub openai_keys: Option<Vec<Secret>>,
    /// Azure OpenAI `api-key` header values.
    pub azure_api_keys: Option<Vec<Secret>>,
    /// Azure OpenAI `Authorization: Bearer` tokens (Entra ID); checked together with
    /// [`azure_api_keys`](Self::azure_api_keys): a request passes if either matches.
    pub azure_bearer_tokens: Option<Vec<Secret>>,
    /// Anthropic API keys, presented as `x-api-key` or `Authorization: Bearer`.
    pub anthropic_keys: Option<Vec<Secret>>,
    /// AWS credentials for Bedrock SigV4 verification.
    pub aws: Option<AwsCredentials>,
    /// GCP `Authorization: Bearer` access tokens for Vertex AI.
    pub gcp_tokens: Option<Vec<Secret>>,
    /// Delay before the response headers of every request (added to `x-sim-delay-ms`).
    pub latency: Duration,
    /// Number of content chunks a streamed reply is split into (`x-sim-chunks` overrides).
    pub chunks: usize,
    /// Pause between two streamed chunks (`x-sim-chunk-interval-ms` overrides).
    pub chunk_interval: Duration,
    /// When set, every request fails with this status in the provider's error shape, as
    /// if `x-sim-status` were sent (used to make one backend of a gateway config fail).
    pub fail_status: Option<u16>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            openai_keys: None,
            azure_api_keys: None,
            azure_bearer_tokens: None,
            anthropic_keys: None,
            aws: None,
            gcp_tokens: None,
            latency: Duration::ZERO,
            chunks: 4,
            chunk_interval: Duration::ZERO,
            fail_status: None,
        }
    }
}

fn secrets<I, S>(values: I) -> Option<Vec<Secret>>
where
    I: IntoIterator<Item = S>,
    S: Into<Secret>,
{
    Some(values.into_iter().map(Into::into).collect())
}

impl SimulatorConfig {
    /// Accepts only these OpenAI bearer keys.
    #[must_use]
    pub fn with_openai_keys<I: IntoIterator<Item = S>, S: Into<Secret>>(mut self, keys: I) -> Self {
        self.openai_keys = secrets(keys);
        self
    }

    /// Accepts only these Azure `api-key` values.
    #[must_use]
    pub fn with_azure_api_keys<I: IntoIterator<Item = S>, S: Into<Secret>>(
        mut self,
        keys: I,
    ) -> Self {
        self.azure_api_keys = secrets(keys);
        self
    }

    /// Accepts only these Azure bearer tokens.
    #[must_use]
    pub fn with_azure_bearer_tokens<I: IntoIterator<Item = S>, S: Into<Secret>>(
        mut self,
        tokens: I,
    ) -> Self {
        self.azure_bearer_tokens = secrets(tokens);
        self
    }

    /// Accepts only these Anthropic `x-api-key` values.
    #[must_use]
    pub fn with_anthropic_keys<I: IntoIterator<Item = S>, S: Into<Secret>>(
        mut self,
        keys: I,
    ) -> Self {
        self.anthropic_keys = secrets(keys);
        self
    }

    /// Verifies Bedrock SigV4 signatures against these credentials.
    #[must_use]
    pub fn with_aws(mut self, aws: AwsCredentials) -> Self {
        self.aws = Some(aws);
        self
    }

    /// Accepts only these GCP bearer tokens on Vertex AI routes.
    #[must_use]
    pub fn with_gcp_tokens<I: IntoIterator<Item = S>, S: Into<Secret>>(
        mut self,
        tokens: I,
    ) -> Self {
        self.gcp_tokens = secrets(tokens);
        self
    }

    /// Delay before every response's headers.
    #[must_use]
    pub const fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Default number of streamed content chunks.
    #[must_use]
    pub const fn with_chunks(mut self, chunks: usize) -> Self {
        self.chunks = chunks;
        self
    }

    /// Default pause between streamed chunks.
    #[must_use]
    pub const fn with_chunk_interval(mut self, interval: Duration) -> Self {
        self.chunk_interval = interval;
        self
    }

    /// Fails every request with this status.
    #[must_use]
    pub const fn with_fail_status(mut self, status: u16) -> Self {
        self.fail_status = Some(status);
        self
    }
}
