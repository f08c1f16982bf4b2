//! `aigw run` without a configuration file: a configuration generated from the
//! environment (as upstream's `aigw run` does), or, when no provider is configured,
//! routes to the bundled simulator.
//!
//! The generated text is the same Kubernetes YAML users write, loaded through the same
//! loader. Keys from the environment stay `${VAR}` references, expanded by the loader's
//! secret resolution, so the generated text itself never holds a secret.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The simulator's OpenAI bearer key in simulator mode (a public, fixed test value).
pub const SIM_OPENAI_KEY: &str = "sk-aigw-simulator";
/// The simulator's Anthropic key in simulator mode.
pub const SIM_ANTHROPIC_KEY: &str = "sk-ant-aigw-simulator";
/// The simulator's AWS access key id in simulator mode.
pub const SIM_AWS_ACCESS_KEY_ID: &str = "AKIDAIGWSIMULATOR";
/// The simulator's AWS secret key in simulator mode.
pub const SIM_AWS_SECRET_KEY: &str = "aigw-simulator-secret-key";
/// The region the simulator verifies signatures for.
pub const SIM_AWS_REGION: &str = "us-east-1";

/// Which providers an environment configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoConfig {
    /// The generated YAML.
    pub yaml: String,
    /// One line per provider, for the log (`openai -> https://api.openai.com`).
    pub providers: Vec<String>,
}

/// A parsed base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BaseUrl {
    tls: bool,
    host: String,
    port: u16,
    prefix: Option<String>,
}

fn parse_base_url(url: &str) -> Option<BaseUrl> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return None;
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            (h.to_owned(), p.parse().ok()?)
        }
        _ => (authority.to_owned(), if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return None;
    }
    let path = path.trim_end_matches('/');
    // The OpenAI schema adds `/v1/...` itself; a base URL ending in `/v1` is the norm.
    let path = path
        .strip_suffix("v1")
        .unwrap_or(path)
        .trim_end_matches('/');
    Some(BaseUrl {
        tls,
        host,
        port,
        prefix: (!path.is_empty()).then(|| format!("/{path}")),
    })
}

struct Builder {
    yaml: String,
    rules: Vec<String>,
    providers: Vec<String>,
}

struct Backend<'a> {
    name: &'a str,
    schema: &'a str,
    version: Option<&'a str>,
    prefix: Option<&'a str>,
    url: &'a BaseUrl,
    policy: String,
    secret: Vec<(&'a str, String)>,
}

impl Builder {
    fn new() -> Self {
        Self {
            yaml: String::new(),
            rules: Vec::new(),
            providers: Vec::new(),
        }
    }

    fn backend(&mut self, b: &Backend<'_>) {
        let y = &mut self.yaml;
        let _ = write!(
            y,
            "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: {n}\n  namespace: default\nspec:\n  endpoints:\n    - {kind}:\n        {field}: {host}\n        port: {port}\n",
            n = b.name,
            kind = if b.url.host.parse::<std::net::IpAddr>().is_ok() {
                "ip"
            } else {
                "fqdn"
            },
            field = if b.url.host.parse::<std::net::IpAddr>().is_ok() {
                "address"
            } else {
                "hostname"
            },
            host = b.url.host,
            port = b.url.port,
        );
        let _ = write!(
            y,
            "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata:\n  name: {n}\n  namespace: default\nspec:\n  schema:\n    name: {s}\n",
            n = b.name,
            s = b.schema
        );
        if let Some(v) = b.version {
            let _ = writeln!(y, "    version: \"{v}\"");
        }
        if let Some(p) = b.prefix {
            let _ = writeln!(y, "    prefix: \"{p}\"");
        }
        let _ = write!(
            y,
            "  backendRef:\n    name: {n}\n    kind: Backend\n    group: gateway.envoyproxy.io\n",
            n = b.name
        );
        if b.url.tls {
            let _ = write!(
                y,
                "---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\nmetadata:\n  name: {n}-tls\n  namespace: default\nspec:\n  targetRefs:\n    - group: gateway.envoyproxy.io\n      kind: Backend\n      name: {n}\n  validation:\n    wellKnownCACertificates: System\n    hostname: {h}\n",
                n = b.name,
                h = b.url.host
            );
        }
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {n}-credentials\n  namespace: default\ntype: Opaque\nstringData:\n",
            n = b.name
        );
        for (k, v) in &b.secret {
            if v.contains('\n') {
                let _ = writeln!(y, "  {k}: |");
                for line in v.lines() {
                    let _ = writeln!(y, "    {line}");
                }
            } else {
                let _ = writeln!(y, "  {k}: \"{v}\"");
            }
        }
        let _ = write!(
            y,
            "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: BackendSecurityPolicy\nmetadata:\n  name: {n}-credentials\n  namespace: default\nspec:\n  targetRefs:\n    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: {n}\n{p}",
            n = b.name,
            p = b.policy
        );
        self.providers.push(format!(
            "{} ({}) -> {}://{}:{}",
            b.name,
            b.schema,
            if b.url.tls { "https" } else { "http" },
            b.url.host,
            b.url.port
        ));
    }

    fn rule(&mut self, model_regex: &str, backend: &str) {
        self.rules.push(format!(
            "    - matches:\n        - headers:\n            - type: RegularExpression\n              name: x-ai-eg-model\n              value: \"{model_regex}\"\n      backendRefs:\n        - name: {backend}\n      timeouts:\n        request: 120s\n"
        ));
    }

    /// A rule for one model name (Exact match, listed by `GET /v1/models`) whose
    /// backendRef sends `upstream_model` instead (`modelNameOverride`).
    fn model_with_override(&mut self, model: &str, backend: &str, upstream_model: &str) {
        self.rules.push(format!(
            "    - matches:\n        - headers:\n            - type: Exact\n              name: x-ai-eg-model\n              value: \"{model}\"\n      backendRefs:\n        - name: {backend}\n          modelNameOverride: \"{upstream_model}\"\n      modelsOwnedBy: aigw-simulator\n      timeouts:\n        request: 120s\n"
        ));
    }

    /// A rule for a list of model names (Exact matches), so `GET /v1/models` lists
    /// them with `owned_by`; other names still route by the pattern rules after it.
    fn models(&mut self, models: &[&str], backend: &str, owned_by: &str) {
        if models.is_empty() {
            return;
        }
        let mut rule = String::from("    - matches:\n");
        for m in models {
            let _ = write!(
                rule,
                "        - headers:\n            - type: Exact\n              name: x-ai-eg-model\n              value: \"{m}\"\n"
            );
        }
        let _ = write!(
            rule,
            "      backendRefs:\n        - name: {backend}\n      modelsOwnedBy: {owned_by}\n      timeouts:\n        request: 120s\n"
        );
        self.rules.push(rule);
    }

    fn finish(mut self) -> AutoConfig {
        let _ = write!(
            self.yaml,
            "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: aigw-run\n  namespace: default\nspec:\n  rules:\n{}  llmRequestCosts:\n    - metadataKey: llm_input_token\n      type: InputToken\n    - metadataKey: llm_output_token\n      type: OutputToken\n    - metadataKey: llm_total_token\n      type: TotalToken\n",
            self.rules.concat()
        );
        AutoConfig {
            yaml: self.yaml,
            providers: self.providers,
        }
    }
}

const API_KEY_POLICY: &str =
    "  type: APIKey\n  apiKey:\n    secretRef:\n      name: {n}-credentials\n";

fn policy(template: &str, name: &str) -> String {
    template.replace("{n}", name)
}

/// OpenAI models listed by `GET /v1/models` when OpenAI (or Azure OpenAI, as
/// deployment names) is configured from the environment.
pub const OPENAI_MODELS: &[&str] = &[
    "gpt-5",
    "gpt-5-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "gpt-image-1",
    "tts-1",
    "whisper-1",
];

/// Anthropic models listed by `GET /v1/models` when `ANTHROPIC_API_KEY` is set.
pub const ANTHROPIC_MODELS: &[&str] = &[
    "claude-opus-4-1",
    "claude-sonnet-4-5",
    "claude-sonnet-4-0",
    "claude-haiku-4-5",
];

/// Bedrock model ids listed by `GET /v1/models` when AWS credentials are set.
pub const BEDROCK_MODELS: &[&str] = &[
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "us.amazon.nova-pro-v1:0",
    "us.meta.llama4-maverick-17b-instruct-v1:0",
];

/// Models the simulator mode lists (every other name routes by prefix as well).
pub const SIMULATOR_MODELS: [(&str, &[&str]); 5] = [
    ("sim-cohere", &["rerank-v3.5"]),
    (
        "sim-bedrock",
        &[
            "bedrock/anthropic.claude-sonnet-4",
            "bedrock/amazon.nova-pro-v1:0",
            "bedrock/amazon.titan-image-generator-v2:0",
        ],
    ),
    (
        "sim-vertex",
        &[
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "imagen-4.0-generate-001",
            "semantic-ranker-default-004",
        ],
    ),
    ("sim-anthropic", &["claude-sonnet-4", "claude-haiku-4-5"]),
    (
        "sim-openai",
        &[
            "gpt-4o-mini",
            "gpt-4o",
            "text-embedding-3-small",
            "gpt-3.5-turbo-instruct",
        ],
    ),
];

/// Bedrock model ids (`anthropic.claude-…`, `us.amazon.nova-…`): routed to Bedrock when
/// AWS credentials are configured.
pub const BEDROCK_MODEL_REGEX: &str = "((us|eu|apac|global)\\\\.)?(anthropic|amazon|meta|mistral|cohere|ai21|deepseek|writer|qwen)\\\\..*";

/// Generates a configuration from the environment, or `None` when no provider is set.
///
/// * `OPENAI_API_KEY` (+ `OPENAI_BASE_URL`, default `https://api.openai.com/v1`): every
///   model not matched by another provider;
/// * `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_ENDPOINT` + `OPENAI_API_VERSION`: every model
///   when OpenAI is not configured;
/// * `ANTHROPIC_API_KEY` (+ `ANTHROPIC_BASE_URL`): `claude-*` models, or every model
///   when it is the only provider;
/// * `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` + `AWS_REGION`/`AWS_DEFAULT_REGION`:
///   Bedrock model ids (see [`BEDROCK_MODEL_REGEX`]), or every model when alone.
pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<AutoConfig> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let mut b = Builder::new();
    let mut catch_all: Option<&str> = None;

    let aws_region = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"));
    if let (Some(_), Some(_), Some(region)) = (
        set("AWS_ACCESS_KEY_ID"),
        set("AWS_SECRET_ACCESS_KEY"),
        aws_region.as_deref(),
    ) {
        let url = BaseUrl {
            tls: true,
            host: format!("bedrock-runtime.{region}.amazonaws.com"),
            port: 443,
            prefix: None,
        };
        let session = if set("AWS_SESSION_TOKEN").is_some() {
            "\naws_session_token = ${AWS_SESSION_TOKEN}"
        } else {
            ""
        };
        b.backend(&Backend {
            name: "bedrock",
            schema: "AWSBedrock",
            version: None,
            prefix: None,
            url: &url,
            policy: format!(
                "  type: AWSCredentials\n  awsCredentials:\n    region: {region}\n    credentialsFile:\n      secretRef:\n        name: bedrock-credentials\n"
            ),
            secret: vec![(
                "credentials",
                format!(
                    "[default]\naws_access_key_id = ${{AWS_ACCESS_KEY_ID}}\naws_secret_access_key = ${{AWS_SECRET_ACCESS_KEY}}{session}\n"
                ),
            )],
        });
    }
    let bedrock = !b.providers.is_empty();

    let anthropic = set("ANTHROPIC_API_KEY").is_some();
    if anthropic {
        let base = set("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into());
        let url = parse_base_url(&base)?;
        b.backend(&Backend {
            name: "anthropic",
            schema: "Anthropic",
            version: None,
            prefix: None,
            url: &url,
            policy: policy(
                "  type: AnthropicAPIKey\n  anthropicAPIKey:\n    secretRef:\n      name: {n}-credentials\n",
                "anthropic",
            ),
            secret: vec![("apiKey", "${ANTHROPIC_API_KEY}".into())],
        });
    }

    if set("OPENAI_API_KEY").is_some() {
        let base = set("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into());
        let url = parse_base_url(&base)?;
        b.backend(&Backend {
            name: "openai",
            schema: "OpenAI",
            version: None,
            prefix: url.prefix.as_deref(),
            url: &url,
            policy: policy(API_KEY_POLICY, "openai"),
            secret: vec![("apiKey", "${OPENAI_API_KEY}".into())],
        });
        catch_all = Some("openai");
    } else if let (Some(_), Some(endpoint), Some(version)) = (
        set("AZURE_OPENAI_API_KEY"),
        set("AZURE_OPENAI_ENDPOINT"),
        set("OPENAI_API_VERSION"),
    ) {
        let url = parse_base_url(&endpoint)?;
        b.backend(&Backend {
            name: "azure-openai",
            schema: "AzureOpenAI",
            version: Some(&version),
            prefix: None,
            url: &url,
            policy: policy(
                "  type: AzureAPIKey\n  azureAPIKey:\n    secretRef:\n      name: {n}-credentials\n",
                "azure-openai",
            ),
            secret: vec![("apiKey", "${AZURE_OPENAI_API_KEY}".into())],
        });
        catch_all = Some("azure-openai");
    }

    if b.providers.is_empty() {
        return None;
    }
    // The models `GET /v1/models` lists: each provider's current ones (any other name
    // still routes by the patterns below).
    if bedrock {
        b.models(BEDROCK_MODELS, "bedrock", "aws-bedrock");
    }
    if anthropic {
        b.models(ANTHROPIC_MODELS, "anthropic", "anthropic");
    }
    match catch_all {
        Some("openai") => b.models(OPENAI_MODELS, "openai", "openai"),
        Some(azure) => b.models(OPENAI_MODELS, azure, "azure-openai"),
        None => {}
    }
    if bedrock {
        if catch_all.is_none() && !anthropic {
            catch_all = Some("bedrock");
        } else {
            b.rule(BEDROCK_MODEL_REGEX, "bedrock");
        }
    }
    if anthropic {
        if catch_all.is_none() {
            catch_all = Some("anthropic");
        } else {
            b.rule("claude-.*", "anthropic");
        }
    }
    if let Some(all) = catch_all {
        b.rule(".*", all);
    }
    Some(b.finish())
}

/// The simulator mode's Bedrock reranker (Cohere Rerank 3.5 through the Agent Runtime
/// `Rerank` API, addressed by its ARN).
pub const SIM_BEDROCK_RERANK: &str = "bedrock/cohere.rerank-v3-5:0";

/// The GCP project of the simulator's Vertex backend.
pub const SIM_GCP_PROJECT: &str = "sim-project";
/// The GCP region of the simulator's Vertex backend.
pub const SIM_GCP_REGION: &str = "us-central1";

/// Routes to a simulator at `addr`: `bedrock/…` models to Bedrock (SigV4 verified),
/// `gemini-…`, `imagen-…` and `semantic-ranker-…` to Vertex AI (a GCP access token from the simulator's
/// metadata endpoint, verified), `anthropic/…` and `claude-…` to Anthropic (`x-api-key`
/// verified), `cohere/…` and `rerank-…` to Cohere (bearer key verified), everything
/// else to OpenAI (bearer key verified).
pub fn simulator(addr: SocketAddr) -> AutoConfig {
    let url = BaseUrl {
        tls: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        prefix: None,
    };
    let mut b = Builder::new();
    b.backend(&Backend {
        name: "sim-bedrock",
        schema: "AWSBedrock",
        version: None,
        prefix: None,
        url: &url,
        policy: format!(
            "  type: AWSCredentials\n  awsCredentials:\n    region: {SIM_AWS_REGION}\n    credentialsFile:\n      secretRef:\n        name: sim-bedrock-credentials\n"
        ),
        secret: vec![(
            "credentials",
            format!(
                "[default]\naws_access_key_id = {SIM_AWS_ACCESS_KEY_ID}\naws_secret_access_key = {SIM_AWS_SECRET_KEY}\n"
            ),
        )],
    });
    b.backend(&Backend {
        name: "sim-anthropic",
        schema: "Anthropic",
        version: None,
        prefix: None,
        url: &url,
        policy: policy(
            "  type: AnthropicAPIKey\n  anthropicAPIKey:\n    secretRef:\n      name: {n}-credentials\n",
            "sim-anthropic",
        ),
        secret: vec![("apiKey", SIM_ANTHROPIC_KEY.into())],
    });
    b.backend(&Backend {
        name: "sim-openai",
        schema: "OpenAI",
        version: None,
        prefix: None,
        url: &url,
        policy: policy(API_KEY_POLICY, "sim-openai"),
        secret: vec![("apiKey", SIM_OPENAI_KEY.into())],
    });
    b.backend(&Backend {
        name: "sim-vertex",
        schema: "GCPVertexAI",
        version: None,
        prefix: None,
        url: &url,
        // Application default credentials: the gateway asks the simulator's metadata
        // endpoint for a token (see `credentials::resolver_with_gcp_metadata`).
        policy: format!(
            "  type: GCPCredentials\n  gcpCredentials:\n    projectName: {SIM_GCP_PROJECT}\n    region: {SIM_GCP_REGION}\n"
        ),
        secret: vec![("unused", String::new())],
    });
    b.backend(&Backend {
        name: "sim-cohere",
        schema: "Cohere",
        version: None,
        prefix: None,
        url: &url,
        policy: policy(API_KEY_POLICY, "sim-cohere"),
        secret: vec![("apiKey", SIM_OPENAI_KEY.into())],
    });
    for (backend, models) in SIMULATOR_MODELS {
        b.models(models, backend, "aigw-simulator");
    }
    // Bedrock's Rerank API takes the model's ARN.
    b.model_with_override(
        SIM_BEDROCK_RERANK,
        "sim-bedrock",
        &format!("arn:aws:bedrock:{SIM_AWS_REGION}::foundation-model/cohere.rerank-v3-5:0"),
    );
    b.rule("bedrock/.*", "sim-bedrock");
    // Vertex puts the model in the URL path, so a `vertex/` prefix cannot pass through.
    b.rule("(gemini-.*|imagen-.*|semantic-ranker-.*)", "sim-vertex");
    b.rule("(anthropic/.*|claude-.*)", "sim-anthropic");
    b.rule("(cohere/.*|rerank-.*)", "sim-cohere");
    b.rule(".*", "sim-openai");
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::config::Config;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn nothing_set_is_none() {
        assert!(from_env(env(&[])).is_none());
    }

    #[test]
    fn base_urls() {
        let u = parse_base_url("http://localhost:11434/v1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.prefix),
            (false, "localhost", 11434, None)
        );
        let u = parse_base_url("https://gw.example.com/openai/v1/").unwrap();
        assert_eq!((u.port, u.prefix.as_deref()), (443, Some("/openai")));
        assert!(parse_base_url("ftp://x").is_none());
    }

    #[test]
    fn simulator_config_loads_and_routes_by_prefix() {
        let c = simulator("127.0.0.1:4000".parse().unwrap());
        let config = Config::from_yaml_str(&c.yaml, "simulator").unwrap();
        let snap = aigw_core::routing::Snapshot::compile(&config).unwrap();
        let h = http::HeaderMap::new();
        for (model, backend) in [
            ("bedrock/anthropic.claude-3-haiku", "sim-bedrock"),
            ("claude-3-5-sonnet", "sim-anthropic"),
            ("gemini-1.5-flash", "sim-vertex"),
            ("gpt-4o-mini", "sim-openai"),
        ] {
            let m = snap.route(model, &h).unwrap();
            let picked = m.pick(1).unwrap();
            assert_eq!(
                picked.target.backend,
                format!("default/{backend}"),
                "{model}"
            );
        }
        // Simulator mode lists models too, each routed to its backend.
        let models = snap.models(None);
        assert!(models.len() >= 8, "{models:?}");
        for m in models {
            assert_eq!(m.owned_by, "aigw-simulator");
            let backend = &snap
                .route(&m.id, &h)
                .unwrap()
                .pick(1)
                .unwrap()
                .target
                .backend;
            let expected = SIMULATOR_MODELS
                .iter()
                .find(|(_, ms)| ms.contains(&m.id.as_str()))
                .map_or("sim-bedrock", |(b, _)| *b);
            assert_eq!(*backend, format!("default/{expected}"), "{}", m.id);
        }
    }

    #[test]
    fn env_config_keeps_keys_out_of_the_text_and_loads() {
        let c = from_env(env(&[
            ("OPENAI_API_KEY", "sk-secret-value"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "sekrit"),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .unwrap();
        assert!(!c.yaml.contains("sk-secret-value"));
        assert!(!c.yaml.contains("sekrit"));
        assert_eq!(c.providers.len(), 3);
        assert!(c.yaml.contains("bedrock-runtime.eu-west-1.amazonaws.com"));
        let config = Config::from_yaml_str(&c.yaml, "env").unwrap();
        assert_eq!(config.ai_gateway_routes.len(), 1);
        // One rule of listed models per provider, then the patterns.
        assert_eq!(config.ai_gateway_routes[0].spec.rules.len(), 6);
        let listed: Vec<(&str, &str)> = config.ai_gateway_routes[0]
            .spec
            .rules
            .iter()
            .flat_map(|r| {
                let owner = r.models_owned_by.as_deref().unwrap_or_default();
                r.matches
                    .iter()
                    .flat_map(|m| &m.headers)
                    .filter(|h| h.match_type == aigw_core::config::HeaderMatchType::Exact)
                    .map(move |h| (h.value.as_str(), owner))
            })
            .collect();
        assert!(listed.contains(&("gpt-4o", "openai")), "{listed:?}");
        assert!(
            listed.contains(&("claude-sonnet-4-5", "anthropic")),
            "{listed:?}"
        );
        assert!(
            listed.contains(&("us.amazon.nova-pro-v1:0", "aws-bedrock")),
            "{listed:?}"
        );
    }
}
