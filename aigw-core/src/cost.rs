//! Cost: `llmRequestCosts`, including CEL expressions.
//!
//! Costs are compiled once, when configuration loads: a CEL expression that does not
//! parse, or that does not evaluate to a non-negative integer on sample usage, rejects
//! the configuration (as upstream does with its dry run). At the end of a request the
//! adapter calls [`CostSet::evaluate`] and writes each `(metadataKey, value)` into the
//! `io.envoy.ai_gateway` metadata / its token meter.
//!
//! ```
//! use aigw_core::config::{LlmRequestCost, LlmRequestCostType};
//! use aigw_core::cost::{CostInput, CostSet};
//! use aigw_core::TokenUsage;
//!
//! let route = vec![LlmRequestCost {
//!     metadata_key: "weighted".into(),
//!     cost_type: LlmRequestCostType::Cel,
//!     cel: Some("input_tokens + output_tokens * 2u".into()),
//! }];
//! let costs = CostSet::compile(&route, &[]).unwrap();
//! let usage = TokenUsage { input: Some(10), output: Some(5), ..Default::default() };
//! let out = costs.evaluate(&CostInput { model: "m", backend: "b", route_name: "ns/r", usage: &usage });
//! assert_eq!(out, vec![("weighted".to_string(), 20)]);
//! ```

use crate::config::{LlmRequestCost, LlmRequestCostType};
pub use crate::meter::CostInput;
use crate::meter::RouteCosts;
use crate::usage::TokenUsage;
use cel::{Context, Program, Value};
use std::fmt;
use std::sync::Arc;

/// The variables a cost expression may use.
pub const CEL_VARIABLES: [&str; 12] = [
    "model",
    "backend",
    "route_name",
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
    "total_tokens",
    "reasoning_tokens",
    "audio_seconds",
    "input_characters",
    "images",
];

/// Why a cost entry was rejected at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostError {
    /// Which field of the entry (`cel`, `metadataKey`, `type`).
    pub field: &'static str,
    /// What is wrong, with the position in the expression when it is a parse error.
    pub message: String,
}

impl fmt::Display for CostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A compiled CEL cost expression.
#[derive(Clone)]
pub struct CelCost {
    source: Arc<str>,
    program: Arc<Program>,
}

impl fmt::Debug for CelCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelCost").field(&self.source).finish()
    }
}

impl CelCost {
    /// Compiles an expression and dry-runs it on sample usage; the result must be an
    /// int or uint that is not negative.
    pub fn compile(expression: &str) -> Result<Self, CostError> {
        let program = Program::compile(expression).map_err(|errors| CostError {
            field: "cel",
            message: describe_parse_errors(expression, &errors),
        })?;
        for var in program.references().variables() {
            if !CEL_VARIABLES.contains(&var) {
                return Err(CostError {
                    field: "cel",
                    message: format!(
                        "undeclared variable `{var}` in {expression:?}; available: {}",
                        CEL_VARIABLES.join(", ")
                    ),
                });
            }
        }
        let cost = Self {
            source: Arc::from(expression),
            program: Arc::new(program),
        };
        let sample = TokenUsage {
            input: Some(100),
            cached_input: Some(10),
            cache_creation_input: Some(5),
            output: Some(50),
            total: Some(150),
            reasoning: Some(20),
            audio_ms: Some(3_500),
            characters: Some(42),
            images: Some(2),
        };
        let input = CostInput {
            model: "dry-run-model",
            backend: "default/dry-run/route/dry-run/rule/0/ref/0",
            route_name: "default/dry-run",
            usage: &sample,
        };
        cost.eval(&input).map_err(|message| CostError {
            field: "cel",
            message: format!("{expression:?} fails its dry run: {message}"),
        })?;
        Ok(cost)
    }

    /// The expression text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression.
    pub fn eval(&self, input: &CostInput<'_>) -> Result<u64, String> {
        let mut ctx = Context::default();
        ctx.add_variable_from_value("model", input.model.to_string());
        ctx.add_variable_from_value("backend", input.backend.to_string());
        ctx.add_variable_from_value("route_name", input.route_name.to_string());
        let u = input.usage;
        let vars = [
            ("input_tokens", u.input),
            ("cached_input_tokens", u.cached_input),
            ("cache_creation_input_tokens", u.cache_creation_input),
            ("output_tokens", u.output),
            ("total_tokens", u.total_or_sum()),
            ("reasoning_tokens", u.reasoning),
            ("audio_seconds", u.audio_seconds()),
            ("input_characters", u.characters),
            ("images", u.images),
        ];
        for (name, value) in vars {
            ctx.add_variable_from_value(name, Value::UInt(value.unwrap_or(0)));
        }
        match self.program.execute(&ctx) {
            Ok(Value::UInt(v)) => Ok(v),
            Ok(Value::Int(v)) if v >= 0 => Ok(v.unsigned_abs()),
            Ok(Value::Int(v)) => Err(format!("the result {v} is negative")),
            Ok(other) => Err(format!(
                "the result must be an int or uint, got {:?}",
                other.type_of()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn describe_parse_errors(expression: &str, errors: &cel::ParseErrors) -> String {
    let parts: Vec<String> = errors
        .errors
        .iter()
        .map(|e| {
            format!(
                "line {}, column {}: {}",
                e.pos.0.max(1),
                e.pos.1.max(1),
                e.msg
            )
        })
        .collect();
    format!(
        "CEL expression {expression:?} does not compile: {}",
        parts.join("; ")
    )
}

/// How one metadata key is computed.
#[derive(Debug, Clone)]
pub enum CostKind {
    /// A token counter.
    Tokens(LlmRequestCostType),
    /// A CEL expression.
    Cel(CelCost),
}

/// One compiled cost.
#[derive(Debug, Clone)]
pub struct CompiledCost {
    /// The metadata key.
    pub metadata_key: String,
    /// How it is computed.
    pub kind: CostKind,
    /// When it applies (always, unless narrowed).
    pub scope: CostScope,
}

/// Narrows a route's cost entry to one backend or one model, as upstream's QuotaPolicy
/// controller writes them into the filter configuration: entries sharing a metadata key
/// then compute it differently per backend or model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostScope {
    /// The serving AIServiceBackend, `ns/name`.
    pub backend: Option<String>,
    /// The request's (effective) model.
    pub model: Option<String>,
}

impl CostScope {
    /// Whether an exchange on `backend` (a per-rule name or `ns/name`) for `model`
    /// is in scope.
    pub fn admits(&self, backend: &str, model: &str) -> bool {
        self.backend
            .as_deref()
            .is_none_or(|b| b == short_backend_name(backend))
            && self.model.as_deref().is_none_or(|m| m == model)
    }
}

/// The AIServiceBackend `ns/name` of a per-rule backend name
/// (`{ns}/{name}/route/…`); other names as they are.
pub fn short_backend_name(backend: &str) -> &str {
    let mut slashes = backend.match_indices('/').map(|(i, _)| i);
    match (slashes.next(), slashes.next()) {
        (Some(_), Some(second)) => &backend[..second],
        _ => backend,
    }
}

impl CompiledCost {
    /// Compiles one `llmRequestCosts` entry.
    pub fn compile(cost: &LlmRequestCost) -> Result<Self, CostError> {
        if cost.metadata_key.is_empty() {
            return Err(CostError {
                field: "metadataKey",
                message: "metadataKey must not be empty".into(),
            });
        }
        let kind = match cost.cost_type {
            LlmRequestCostType::Cel => match cost.cel.as_deref() {
                Some(expr) if !expr.trim().is_empty() => CostKind::Cel(CelCost::compile(expr)?),
                _ => {
                    return Err(CostError {
                        field: "cel",
                        message: "type CEL requires a `cel` expression".into(),
                    });
                }
            },
            other => CostKind::Tokens(other),
        };
        Ok(Self {
            metadata_key: cost.metadata_key.clone(),
            kind,
            scope: CostScope::default(),
        })
    }

    /// Narrows the entry.
    #[must_use]
    pub fn scoped(mut self, scope: CostScope) -> Self {
        self.scope = scope;
        self
    }

    /// Computes the value, `None` when a CEL expression fails on this input.
    pub fn value(&self, input: &CostInput<'_>) -> Option<u64> {
        let u = input.usage;
        match &self.kind {
            CostKind::Tokens(t) => Some(
                match t {
                    LlmRequestCostType::InputToken => u.input,
                    LlmRequestCostType::CachedInputToken => u.cached_input,
                    LlmRequestCostType::CacheCreationInputToken => u.cache_creation_input,
                    LlmRequestCostType::OutputToken => u.output,
                    LlmRequestCostType::TotalToken => u.total_or_sum(),
                    LlmRequestCostType::ReasoningToken => u.reasoning,
                    LlmRequestCostType::Cel => None,
                }
                .unwrap_or(0),
            ),
            CostKind::Cel(cel) => match cel.eval(input) {
                Ok(v) => Some(v),
                Err(message) => {
                    tracing::warn!(
                        metadata_key = %self.metadata_key,
                        expression = cel.source(),
                        %message,
                        "cost expression failed; the cost is not recorded"
                    );
                    None
                }
            },
        }
    }
}

/// The costs of one route: route-level entries override global ones per metadata key.
/// A route entry narrowed by a [`CostScope`] only overrides when it applies, so the
/// precedence is decided per request, as upstream does.
#[derive(Debug, Clone, Default)]
pub struct CostSet {
    route: Vec<CompiledCost>,
    global: Vec<CompiledCost>,
}

impl CostSet {
    /// Compiles route costs over global (GatewayConfig) costs. The first failing entry
    /// is returned; configuration validation reports every entry with its path.
    pub fn compile(route: &[LlmRequestCost], global: &[LlmRequestCost]) -> Result<Self, CostError> {
        let route = route
            .iter()
            .map(CompiledCost::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let global = global
            .iter()
            .map(CompiledCost::compile)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::merge(route, global))
    }

    /// Merges already-compiled entries: route keys win over global keys.
    pub fn merge(route: Vec<CompiledCost>, global: Vec<CompiledCost>) -> Self {
        Self { route, global }
    }

    /// Whether no cost is configured (then usage need not be forced on streams).
    pub fn is_empty(&self) -> bool {
        self.route.is_empty() && self.global.is_empty()
    }

    /// The compiled entries, route ones first.
    pub fn entries(&self) -> impl Iterator<Item = &CompiledCost> {
        self.route.iter().chain(&self.global)
    }

    /// Computes every cost: route entries in scope (a later one with the same key
    /// wins), then global entries for keys no route entry set. Entries whose CEL
    /// expression fails are left out.
    pub fn evaluate(&self, input: &CostInput<'_>) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        let set = |key: &str, v: u64, out: &mut Vec<(String, u64)>| match out
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some(slot) => slot.1 = v,
            None => out.push((key.to_owned(), v)),
        };
        let mut populated: Vec<&str> = Vec::new();
        for c in self
            .route
            .iter()
            .filter(|c| c.scope.admits(input.backend, input.model))
        {
            populated.push(&c.metadata_key);
            if let Some(v) = c.value(input) {
                set(&c.metadata_key, v, &mut out);
            }
        }
        for c in &self.global {
            if populated.contains(&c.metadata_key.as_str()) {
                continue;
            }
            if let Some(v) = c.value(input) {
                set(&c.metadata_key, v, &mut out);
            }
        }
        out
    }
}

impl RouteCosts for CostSet {
    fn evaluate(&self, input: &CostInput<'_>) -> Vec<(String, u64)> {
        Self::evaluate(self, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn cost_set_is_shareable() {
        assert_send_sync::<CostSet>();
    }

    #[test]
    fn parse_error_names_position() {
        let e = CelCost::compile("input_tokens +* 2").unwrap_err();
        assert!(e.message.contains("line 1, column 15"), "{}", e.message);
    }

    #[test]
    fn negative_result_rejected() {
        let e = CelCost::compile("-1").unwrap_err();
        assert!(e.message.contains("negative"), "{}", e.message);
    }

    #[test]
    fn images_are_priced_per_image() {
        let c = CelCost::compile("images * 40u").unwrap();
        let usage = TokenUsage {
            images: Some(3),
            ..TokenUsage::default()
        };
        let input = CostInput {
            model: "imagen-4.0-generate-001",
            backend: "b",
            route_name: "r",
            usage: &usage,
        };
        assert_eq!(c.eval(&input), Ok(120));
    }

    #[test]
    fn audio_is_priced_by_started_second_and_character() {
        let c = CelCost::compile("audio_seconds * 100u + input_characters").unwrap();
        let usage = TokenUsage {
            audio_ms: Some(2_001),
            characters: Some(7),
            ..TokenUsage::default()
        };
        let input = CostInput {
            model: "whisper-1",
            backend: "b",
            route_name: "r",
            usage: &usage,
        };
        assert_eq!(c.eval(&input), Ok(307));
    }

    #[test]
    fn unknown_variable_rejected() {
        let e = CelCost::compile("foo + 1").unwrap_err();
        assert!(e.message.contains("`foo`"), "{}", e.message);
    }
}
