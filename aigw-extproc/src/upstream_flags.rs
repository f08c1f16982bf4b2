//! The upstream ExtProc binary's command line (`cmd/extproc/mainlib/main.go`), so this
//! binary can take its place in the sidecar the upstream controller injects unchanged.
//!
//! Go's `flag` package: `-name value`, `-name=value`, `--name` equally; booleans as
//! `-name` or `-name=true|false`. Every upstream flag is accepted and honoured (the
//! MCP ones that are not say so where they are read).

use std::path::PathBuf;

/// The upstream flags, with upstream's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFlags {
    /// `-configPath`: one filter configuration file.
    pub config_path: Option<PathBuf>,
    /// `-configBundlePath`: a bundle directory.
    pub config_bundle_path: Option<PathBuf>,
    /// `-extProcAddr` (`:1063`, `unix:///path`).
    pub ext_proc_addr: String,
    /// `-adminPort` (1064): `/metrics` and `/health`, on every interface as upstream.
    pub admin_port: u16,
    /// `-logLevel`: `debug`, `info`, `warn`, `error`.
    pub log_level: String,
    /// `-logFormat`: `text` or `json`.
    pub log_format: String,
    /// `-enableRedaction`.
    pub enable_redaction: bool,
    /// `-rootPrefix` (`/`).
    pub root_prefix: String,
    /// `-endpointPrefixes` (empty: `openai:/,cohere:/cohere,anthropic:/anthropic`).
    pub endpoint_prefixes: String,
    /// `-maxRecvMsgSize` (unlimited).
    pub max_recv_msg_size: usize,
    /// Header → attribute maps (`-requestHeaderAttributes`, `-spanRequestHeaderAttributes`,
    /// `-metricsRequestHeaderAttributes`, `-logRequestHeaderAttributes`), when set.
    pub header_attributes: Vec<(String, String)>,
    /// `-mcpAddr` and the MCP session flags (`-mcpSessionEncryptionSeed`, …), when set.
    pub mcp: Vec<(String, String)>,
}

impl Default for UpstreamFlags {
    fn default() -> Self {
        Self {
            config_path: None,
            config_bundle_path: None,
            ext_proc_addr: ":1063".into(),
            admin_port: 1064,
            log_level: "info".into(),
            log_format: "text".into(),
            enable_redaction: false,
            root_prefix: "/".into(),
            endpoint_prefixes: String::new(),
            max_recv_msg_size: usize::MAX,
            header_attributes: Vec::new(),
            mcp: Vec::new(),
        }
    }
}

/// The `OTEL_AIGW_*` variable a header-attribute flag stands for (upstream's `aigw run`
/// passes those variables to its ExtProc as these flags).
pub fn header_attribute_env(flag: &str) -> Option<&'static str> {
    match flag {
        "requestHeaderAttributes" => Some("OTEL_AIGW_REQUEST_HEADER_ATTRIBUTES"),
        "spanRequestHeaderAttributes" => Some("OTEL_AIGW_SPAN_REQUEST_HEADER_ATTRIBUTES"),
        "metricsRequestHeaderAttributes" => Some("OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES"),
        "logRequestHeaderAttributes" => Some("OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES"),
        _ => None,
    }
}

/// Every flag name upstream defines.
const NAMES: [&str; 20] = [
    "configPath",
    "configBundlePath",
    "extProcAddr",
    "logLevel",
    "logFormat",
    "enableRedaction",
    "adminPort",
    "requestHeaderAttributes",
    "spanRequestHeaderAttributes",
    "metricsRequestHeaderAttributes",
    "logRequestHeaderAttributes",
    "rootPrefix",
    "endpointPrefixes",
    "maxRecvMsgSize",
    "mcpAddr",
    "mcpSessionEncryptionSeed",
    "mcpSessionEncryptionIterations",
    "mcpFallbackSessionEncryptionSeed",
    "mcpFallbackSessionEncryptionIterations",
    "mcpWriteTimeout",
];

fn flag_name(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    let name = rest.split_once('=').map_or(rest, |(n, _)| n);
    NAMES.contains(&name).then_some(name)
}

/// Whether `args` (without the program name) are upstream's: any argument is one of
/// upstream's flag names.
pub fn is_upstream_style(args: &[String]) -> bool {
    args.iter().any(|a| flag_name(a).is_some())
}

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {v:?} for -{name}")),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("invalid value {v:?} for flag -{name}"))
}

impl UpstreamFlags {
    /// Parses upstream's flags, as its `flag.FlagSet` does, and validates them as its
    /// `parseAndValidateFlags` does.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut f = Self::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(name) = flag_name(arg) else {
                return Err(format!("flag provided but not defined: {arg}"));
            };
            let inline = arg.split_once('=').map(|(_, v)| v.to_owned());
            let value = if name == "enableRedaction" {
                inline.unwrap_or_else(|| "true".into())
            } else {
                match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
                }
            };
            f.set(name, value)?;
        }
        f.validate()?;
        Ok(f)
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), String> {
        match name {
            "configPath" => self.config_path = Some(value.into()),
            "configBundlePath" => self.config_bundle_path = Some(value.into()),
            "extProcAddr" => self.ext_proc_addr = value,
            "logLevel" => self.log_level = value,
            "logFormat" => self.log_format = value,
            "enableRedaction" => self.enable_redaction = parse_bool(name, &value)?,
            "adminPort" => self.admin_port = parse_num(name, &value)?,
            "rootPrefix" => self.root_prefix = value,
            "endpointPrefixes" => self.endpoint_prefixes = value,
            "maxRecvMsgSize" => {
                let n: i64 = parse_num(name, &value)?;
                self.max_recv_msg_size = usize::try_from(n).unwrap_or(0);
            }
            n if n.ends_with("RequestHeaderAttributes") => {
                self.header_attributes.push((n.to_owned(), value));
            }
            n => self.mcp.push((n.to_owned(), value)),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.config_path.is_none() && self.config_bundle_path.is_none() {
            errs.push("either configPath or configBundlePath must be provided".to_owned());
        }
        if !["debug", "info", "warn", "error"]
            .contains(&self.log_level.to_ascii_lowercase().as_str())
        {
            errs.push(format!(
                "failed to unmarshal log level: {:?}",
                self.log_level
            ));
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            errs.push(format!(
                "invalid log format {:?}: use text or json",
                self.log_format
            ));
        }
        if self.max_recv_msg_size == 0 {
            errs.push("maxRecvMsgSize must be positive".into());
        }
        for (name, v) in &self.header_attributes {
            if !v.is_empty()
                && v.split(',').any(|p| {
                    p.split_once(':')
                        .is_none_or(|(h, a)| h.trim().is_empty() || a.trim().is_empty())
                })
            {
                errs.push(format!(
                    "failed to parse -{name} {v:?}: expected header:attribute pairs"
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    /// The `tracing` filter for `-logLevel`.
    pub fn tracing_level(&self) -> &'static str {
        match self.log_level.to_ascii_lowercase().as_str() {
            "debug" => "debug",
            "warn" => "warn",
            "error" => "error",
            _ => "info",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn controller_command_line() {
        // What the controller's sidecar mutator passes (gateway_mutator.go).
        let f = UpstreamFlags::parse(&args(
            "-configPath /etc/filter-config/filter-config.yaml -extProcAddr unix:///etc/ai-gateway-extproc-uds/run.sock \
             -adminPort 1064 -logLevel info -logFormat json -enableRedaction=false -maxRecvMsgSize 536870912 \
             -rootPrefix / -endpointPrefixes openai:/,cohere:/cohere,anthropic:/anthropic \
             -mcpAddr :9856 -mcpSessionEncryptionSeed s3cret -mcpSessionEncryptionIterations=100000 --mcpWriteTimeout 120s",
        ))
        .unwrap();
        assert_eq!(
            f.config_path.as_deref(),
            Some(std::path::Path::new(
                "/etc/filter-config/filter-config.yaml"
            ))
        );
        assert_eq!(
            f.ext_proc_addr,
            "unix:///etc/ai-gateway-extproc-uds/run.sock"
        );
        assert_eq!(f.max_recv_msg_size, 536_870_912);
        assert_eq!(f.log_format, "json");
        assert!(!f.enable_redaction);
        assert_eq!(f.mcp.len(), 4);
    }

    #[test]
    fn bools_and_errors() {
        let f = UpstreamFlags::parse(&args("-configBundlePath /b -enableRedaction")).unwrap();
        assert!(f.enable_redaction && f.config_bundle_path.is_some());
        assert!(UpstreamFlags::parse(&args("-adminPort 1064")).is_err());
        assert!(UpstreamFlags::parse(&args("-configPath x -logFormat xml")).is_err());
        assert!(UpstreamFlags::parse(&args("-configPath x -nope 1")).is_err());
        assert!(UpstreamFlags::parse(&args("-configPath")).is_err());
        assert!(is_upstream_style(&args("-configPath x")));
        assert!(!is_upstream_style(&args("--config x --listen :1")));
    }
}
