//! MCPRoute authorization rules and the backend selector, one engine for both (as
//! upstream's `compiledAuthorization`): rules are checked in order, the first whose CEL
//! condition, tool target and JWT source (scopes and claims) all match decides; none
//! matching, the default action (Deny unless set).
//!
//! A rule's `cel` sees the variable `request` with upstream's attributes: `method`,
//! `host`, `path`, `headers` (lower-cased names, first value), `headers_all` (every
//! value), `auth.jwt.claims` (without `scope`/`scp`), `auth.jwt.scopes`, and
//! `mcp.{method, backend, tool, params}`. An evaluation error or a result that is not a
//! boolean is "no match", logged with the expression.
//!
//! Expressions compile and run in one shared environment: the CEL standard library
//! with optional types (`request.?auth.jwt.claims.org`, `request.headers[?'x-a']`,
//! `optional.of(…)`, `.orValue(…)`, `.hasValue()`), as upstream's environment declares
//! them (`cel.OptionalTypes()`).

use crate::config::MCPRouteAuthorization;
use cel::objects::Key;
use cel::{Context, Env, Program, Value as Cel};
use http::HeaderMap;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Upstream's CEL environment declares this one variable.
const CEL_VARIABLE: &str = "request";

/// The CEL environment every rule compiles and runs in: the standard library with
/// optional types. Built once: a context of its own per evaluation would rebuild the
/// whole function table on every request.
fn cel_env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib().with_optional_support(true)))
}

/// One compiled rule.
struct Rule {
    scopes: Vec<String>,
    claims: Vec<(Vec<String>, Vec<String>)>,
    has_source: bool,
    tools: Vec<(String, String)>,
    cel: Option<(Arc<str>, Program)>,
    allow: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("scopes", &self.scopes)
            .field("tools", &self.tools)
            .field("cel", &self.cel.as_ref().map(|c| &c.0))
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

/// A route's authorization rules, or its backend selector.
#[derive(Debug)]
pub(crate) struct Authorization {
    rules: Vec<Rule>,
    default_allow: bool,
}

/// The decision for one check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go ahead.
    Allow,
    /// Refused; the smallest scope set an allow rule wanted, for the challenge.
    Deny(Vec<String>),
}

/// The MCP part of a check (`request.mcp`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct McpCall<'a> {
    pub(crate) method: &'a str,
    pub(crate) backend: &'a str,
    pub(crate) tool: &'a str,
    pub(crate) params: Option<&'a Map<String, Value>>,
}

/// The HTTP request and token a check is about, prepared once per request.
#[derive(Debug, Default)]
pub(crate) struct Subject {
    claims: Option<Arc<Map<String, Value>>>,
    scopes: Vec<String>,
    /// `request` without `mcp`; built only when a route has CEL rules.
    cel: Option<HashMap<Key, Cel>>,
}

impl Subject {
    /// `claims` are those of a verified token (`None` without one); the HTTP attributes
    /// are converted for CEL only when `with_cel`.
    pub(crate) fn new<B>(
        req: &http::Request<B>,
        claims: Option<Arc<Map<String, Value>>>,
        with_cel: bool,
    ) -> Self {
        let mut scopes: Vec<String> = claims
            .as_deref()
            .map(token_scopes)
            .unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect();
        scopes.sort();
        scopes.dedup();
        let cel = with_cel.then(|| {
            let host = req
                .uri()
                .host()
                .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
                .unwrap_or("");
            cel_request(
                req.method().as_str(),
                host,
                req.uri().path(),
                req.headers(),
                claims.as_deref(),
                &scopes,
            )
        });
        Self {
            claims,
            scopes,
            cel,
        }
    }
}

fn cel_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &HeaderMap,
    claims: Option<&Map<String, Value>>,
    scopes: &[String],
) -> HashMap<Key, Cel> {
    let mut first: HashMap<Key, Cel> = HashMap::new();
    let mut all: HashMap<String, Vec<Cel>> = HashMap::new();
    for (name, value) in headers {
        let Ok(v) = value.to_str() else { continue };
        let k = name.as_str().to_string();
        first
            .entry(Key::from(k.clone()))
            .or_insert_with(|| Cel::from(v.to_string()));
        all.entry(k).or_default().push(Cel::from(v.to_string()));
    }
    let all: HashMap<Key, Cel> = all
        .into_iter()
        .map(|(k, v)| (Key::from(k), Cel::List(Arc::new(v))))
        .collect();
    // Scopes are their own attribute; upstream removes them from the claims.
    let mut claims = claims.cloned().unwrap_or_default();
    claims.remove("scope");
    claims.remove("scp");
    let claims = cel::to_value(Value::Object(claims)).unwrap_or(Cel::Null);
    let scopes = Cel::List(Arc::new(
        scopes.iter().map(|s| Cel::from(s.clone())).collect(),
    ));
    let jwt = map([("claims", claims), ("scopes", scopes)]);
    HashMap::from([
        (
            Key::from("method".to_string()),
            Cel::from(method.to_string()),
        ),
        (Key::from("host".to_string()), Cel::from(host.to_string())),
        (Key::from("path".to_string()), Cel::from(path.to_string())),
        (Key::from("headers".to_string()), Cel::Map(first.into())),
        (Key::from("headers_all".to_string()), Cel::Map(all.into())),
        (Key::from("auth".to_string()), map([("jwt", jwt)])),
    ])
}

fn map<const N: usize>(entries: [(&str, Cel); N]) -> Cel {
    let m: HashMap<Key, Cel> = entries
        .into_iter()
        .map(|(k, v)| (Key::from(k.to_string()), v))
        .collect();
    Cel::Map(m.into())
}

fn action(value: Option<&str>, default: &str, field: &str) -> Result<bool, String> {
    match value.unwrap_or(default) {
        "Allow" => Ok(true),
        "Deny" => Ok(false),
        other => Err(format!("{field}: unknown action {other:?}")),
    }
}

/// Compiles a CEL condition: it must parse and name no variable but `request`.
fn compile_cel(expr: &str) -> Result<Program, String> {
    let program = cel_env().compile(expr).map_err(|e| {
        let parts: Vec<String> = e.errors.iter().map(|x| x.msg.clone()).collect();
        format!("CEL {expr:?} does not compile: {}", parts.join("; "))
    })?;
    // Comprehension variables (`exists(h, …)`) are not free variables of the program.
    let refs = program.references();
    let undeclared: Vec<&str> = refs
        .variables()
        .into_iter()
        .filter(|v| *v != CEL_VARIABLE && !binds(expr, v) && !is_namespace(v))
        .collect();
    if !undeclared.is_empty() {
        return Err(format!(
            "CEL {expr:?}: undeclared reference to {}; the only variable is `request`",
            undeclared.join(", ")
        ));
    }
    Ok(program)
}

/// Whether `name` is the function namespace of the optional types (`optional.of(…)`,
/// `optional.none()`, also what `.optMap` expands to), which the parser reports as a
/// variable.
fn is_namespace(name: &str) -> bool {
    name == "optional"
}

/// Whether `var` is bound by a macro in `expr` (`.all(var,`, `.exists(var,` …).
fn binds(expr: &str, var: &str) -> bool {
    let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    [
        "all",
        "exists",
        "exists_one",
        "map",
        "filter",
        "optMap",
        "optFlatMap",
    ]
    .iter()
    .any(|m| compact.contains(&format!(".{m}({var},")))
}

impl Authorization {
    /// `securityPolicy.authorization`.
    pub(crate) fn compile(a: &MCPRouteAuthorization) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (i, r) in a.rules.iter().enumerate() {
            let cel = match r.cel.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                Some(expr) => Some((
                    Arc::from(expr),
                    compile_cel(expr).map_err(|e| format!("rules[{i}].cel: {e}"))?,
                )),
                None => None,
            };
            let (scopes, claims) = match &r.source {
                Some(s) => (
                    s.jwt.scopes.clone(),
                    s.jwt
                        .claims
                        .iter()
                        .map(|c| {
                            (
                                c.name.split('.').map(str::to_string).collect(),
                                c.values.clone(),
                            )
                        })
                        .collect(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            let tools = r
                .target
                .iter()
                .flat_map(|t| &t.tools)
                .map(|t| (t.backend.clone(), t.tool.clone()))
                .collect();
            rules.push(Rule {
                scopes,
                claims,
                has_source: r.source.is_some(),
                tools,
                cel,
                allow: action(r.action.as_deref(), "Allow", &format!("rules[{i}].action"))?,
            });
        }
        Ok(Self {
            rules,
            default_allow: action(a.default_action.as_deref(), "Deny", "defaultAction")?,
        })
    }

    /// `spec.backendSelector`: rules of a CEL condition and an action.
    pub(crate) fn compile_selector(selector: &Value) -> Result<Self, String> {
        let obj = selector.as_object().ok_or("must be an object")?;
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "defaultAction" | "rules"))
        {
            return Err(format!("unknown field {k:?}"));
        }
        let as_str = |v: Option<&Value>, f: &str| -> Result<Option<String>, String> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{f} must be a string")),
            }
        };
        let mut rules = Vec::new();
        let list = match obj.get("rules") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err("rules must be a list".into()),
        };
        for (i, r) in list.iter().enumerate() {
            let r = r
                .as_object()
                .ok_or_else(|| format!("rules[{i}] must be an object"))?;
            if let Some(k) = r.keys().find(|k| !matches!(k.as_str(), "cel" | "action")) {
                return Err(format!("rules[{i}]: unknown field {k:?}"));
            }
            let cel = match as_str(r.get("cel"), &format!("rules[{i}].cel"))?
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                Some(expr) => Some((
                    Arc::from(expr),
                    compile_cel(expr).map_err(|e| format!("rules[{i}].cel: {e}"))?,
                )),
                None => None,
            };
            let act = as_str(r.get("action"), &format!("rules[{i}].action"))?;
            rules.push(Rule {
                scopes: Vec::new(),
                claims: Vec::new(),
                has_source: false,
                tools: Vec::new(),
                cel,
                allow: action(act.as_deref(), "Allow", &format!("rules[{i}].action"))?,
            });
        }
        let default = as_str(obj.get("defaultAction"), "defaultAction")?;
        Ok(Self {
            rules,
            default_allow: action(default.as_deref(), "Deny", "defaultAction")?,
        })
    }

    /// Whether any rule has a CEL condition (then the request is converted for CEL).
    pub(crate) fn uses_cel(&self) -> bool {
        self.rules.iter().any(|r| r.cel.is_some())
    }

    /// The first rule whose CEL condition, target and source match decides; none
    /// matching, the default action. A refusal names the smallest scope set an allow
    /// rule with matching claims asked for (upstream's challenge).
    pub(crate) fn decide(&self, who: &Subject, call: &McpCall<'_>) -> Decision {
        let mut wanted: Option<&[String]> = None;
        for r in &self.rules {
            if let Some((expr, program)) = &r.cel
                && !eval(expr, program, who, call)
            {
                continue;
            }
            if !r.tools.is_empty()
                && !r
                    .tools
                    .iter()
                    .any(|(b, t)| b == call.backend && t == call.tool)
            {
                continue;
            }
            if !r.has_source {
                return verdict(r.allow);
            }
            let claims = who.claims.as_deref();
            if !r
                .claims
                .iter()
                .all(|(path, values)| claim_matches(claims, path, values))
            {
                continue;
            }
            if r.scopes.iter().all(|s| who.scopes.contains(s)) {
                return verdict(r.allow);
            }
            if r.allow && wanted.is_none_or(|w| r.scopes.len() < w.len()) {
                wanted = Some(&r.scopes);
            }
        }
        if self.default_allow {
            Decision::Allow
        } else {
            Decision::Deny(wanted.map(<[String]>::to_vec).unwrap_or_default())
        }
    }
}

fn verdict(allow: bool) -> Decision {
    if allow {
        Decision::Allow
    } else {
        Decision::Deny(Vec::new())
    }
}

fn eval(expr: &str, program: &Program, who: &Subject, call: &McpCall<'_>) -> bool {
    let mut request = who.cel.clone().unwrap_or_default();
    let params = call
        .params
        .map(|p| cel::to_value(Value::Object(p.clone())).unwrap_or(Cel::Null))
        .unwrap_or(Cel::Null);
    request.insert(
        Key::from("mcp".to_string()),
        map([
            ("method", Cel::from(call.method.to_string())),
            ("backend", Cel::from(call.backend.to_string())),
            ("tool", Cel::from(call.tool.to_string())),
            ("params", params),
        ]),
    );
    let mut ctx = Context::with_env(cel_env().clone());
    ctx.add_variable_from_value(CEL_VARIABLE, Cel::Map(request.into()));
    match program.execute(&ctx) {
        Ok(Cel::Bool(b)) => b,
        Ok(other) => {
            tracing::error!(target: "aigw::mcp", expression = %expr, result = ?other.type_of(), "authorization CEL did not return a boolean; the rule does not match");
            false
        }
        Err(e) => {
            tracing::error!(target: "aigw::mcp", expression = %expr, error = %e, "failed to evaluate authorization CEL; the rule does not match");
            false
        }
    }
}

/// The claims of a JWT, signature not checked: only for tokens Envoy verified in front
/// of the gateway (upstream's topology, where its proxy does the same).
pub(crate) fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `scope` (space-separated) or `scp` (array or string).
fn token_scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    for k in ["scope", "scp"] {
        match claims.get(k) {
            Some(Value::String(s)) => out.extend(s.split_whitespace()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

fn claim_matches(claims: Option<&Map<String, Value>>, path: &[String], values: &[String]) -> bool {
    let mut cur = claims.and_then(|c| c.get(path.first()?));
    for p in path.iter().skip(1) {
        cur = cur.and_then(|v| v.get(p));
    }
    match cur {
        Some(Value::String(s)) => values.iter().any(|v| v == s),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|s| values.iter().any(|v| v == s)),
        _ => false,
    }
}

/// `WWW-Authenticate` for a refused call (upstream's format), `None` when no allow rule
/// named scopes the token lacks.
pub(crate) fn insufficient_scope(scopes: &[String], metadata_url: Option<&str>) -> Option<String> {
    if scopes.is_empty() {
        return None;
    }
    let mut s = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\"",
        scopes.join(" ")
    );
    if let Some(u) = metadata_url {
        s.push_str(&format!(", resource_metadata=\"{u}\""));
    }
    s.push_str(", error_description=\"The token is missing required scopes\"");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subject(claims: Value, headers: &[(&str, &str)]) -> Subject {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("http://gw.example:1975/mcp");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(()).unwrap();
        Subject::new(&req, claims.as_object().cloned().map(Arc::new), true)
    }

    fn call<'a>(backend: &'a str, tool: &'a str) -> McpCall<'a> {
        McpCall {
            method: "tools/call",
            backend,
            tool,
            params: None,
        }
    }

    #[test]
    fn first_match_wins_default_deny() {
        let a: MCPRouteAuthorization = serde_json::from_value(json!({
            "rules": [
                {"source": {"jwt": {"scopes": ["admin"]}}, "action": "Allow"},
                {"target": {"tools": [{"backend": "gh", "tool": "delete"}]}, "action": "Deny"},
                {"source": {"jwt": {"scopes": ["read"], "claims": [{"name": "org.id", "values": ["acme"]}]}},
                 "target": {"tools": [{"backend": "gh", "tool": "list"}]}}
            ]
        }))
        .unwrap();
        let a = Authorization::compile(&a).unwrap();
        assert!(!a.uses_cel());
        let admin = subject(json!({"scope": "admin"}), &[]);
        let reader = subject(json!({"scope": "read", "org": {"id": "acme"}}), &[]);
        let other_org = subject(json!({"scp": ["read"], "org": {"id": "evil"}}), &[]);
        let none = Subject::default();
        assert_eq!(a.decide(&admin, &call("gh", "delete")), Decision::Allow);
        assert_eq!(
            a.decide(&reader, &call("gh", "delete")),
            Decision::Deny(vec![])
        );
        assert_eq!(a.decide(&reader, &call("gh", "list")), Decision::Allow);
        // The admin rule matched on claims (none asked) but lacked its scope.
        assert_eq!(
            a.decide(&other_org, &call("gh", "list")),
            Decision::Deny(vec!["admin".into()])
        );
        assert_eq!(
            a.decide(&none, &call("gh", "list")),
            Decision::Deny(vec!["admin".into()])
        );
    }

    #[test]
    fn cel_sees_upstream_attributes() {
        let a: MCPRouteAuthorization = serde_json::from_value(json!({
            "rules": [
                {"cel": "request.mcp.tool in ['echo'] && request.headers['x-tenant'] == 'acme'"},
                {"cel": "request.auth.jwt.claims.org == 'evil'", "action": "Deny"},
                {"cel": "'admin' in request.auth.jwt.scopes && request.method == 'POST' && request.path == '/mcp' && request.host == 'gw.example'"},
                {"cel": "request.mcp.params.arguments.n > 3 && request.mcp.backend == 'b'"},
                {"cel": "size(request.headers_all['x-multi']) == 2 && !has(request.auth.jwt.claims.scope)"},
                {"cel": "'not a bool'"},
                {"cel": "request.nope.deeper == 1"}
            ]
        }))
        .unwrap();
        let a = Authorization::compile(&a).unwrap();
        assert!(a.uses_cel());
        let tenant = subject(json!({}), &[("x-tenant", "acme")]);
        assert_eq!(a.decide(&tenant, &call("b", "echo")), Decision::Allow);
        assert_eq!(
            a.decide(&tenant, &call("b", "other")),
            Decision::Deny(vec![])
        );
        let evil = subject(json!({"org": "evil", "scope": "admin"}), &[]);
        assert_eq!(a.decide(&evil, &call("b", "x")), Decision::Deny(vec![]));
        let admin = subject(json!({"scope": "admin other"}), &[]);
        assert_eq!(a.decide(&admin, &call("b", "x")), Decision::Allow);
        let params = json!({"name": "b__add", "arguments": {"n": 5}});
        let with_params = McpCall {
            params: params.as_object(),
            ..call("b", "add")
        };
        assert_eq!(a.decide(&tenant, &with_params), Decision::Allow);
        let multi = subject(json!({"scope": "x"}), &[("x-multi", "1"), ("x-multi", "2")]);
        assert_eq!(a.decide(&multi, &call("b", "x")), Decision::Allow);
    }

    #[test]
    fn cel_must_compile_and_name_only_request() {
        for bad in ["request.mcp.tool ==", "tool == 'x'", "req.path == '/'"] {
            let a: MCPRouteAuthorization =
                serde_json::from_value(json!({"rules": [{"cel": bad}]})).unwrap();
            let e = Authorization::compile(&a).unwrap_err();
            assert!(e.starts_with("rules[0].cel"), "{e}");
        }
        let ok: MCPRouteAuthorization = serde_json::from_value(
            json!({"rules": [{"cel": "request.headers.exists(h, h == 'x-a')"}]}),
        )
        .unwrap();
        Authorization::compile(&ok).unwrap();
    }

    /// Upstream declares optional types in its CEL environment; rules written with
    /// them load and evaluate here too.
    #[test]
    fn cel_optional_syntax() {
        let a: MCPRouteAuthorization = serde_json::from_value(json!({
            "rules": [
                {"cel": "request.auth.jwt.claims.?team.orValue('none') == 'blue'"},
                {"cel": "request.headers[?'x-tenant'].hasValue() && request.?mcp.?tool.orValue('') == 'echo'"},
                {"cel": "optional.of(request.mcp.backend).value() == 'c' && !optional.none().hasValue()"},
                {"cel": "request.auth.jwt.claims.?org.?id.optMap(o, o + '!').orValue('') == 'acme!'"}
            ]
        }))
        .unwrap();
        let a = Authorization::compile(&a).unwrap();
        let blue = subject(json!({"team": "blue"}), &[]);
        let anon = Subject::new(
            &http::Request::builder()
                .uri("http://gw/mcp")
                .header("x-tenant", "t")
                .body(())
                .unwrap(),
            None,
            true,
        );
        let acme = subject(json!({"org": {"id": "acme"}}), &[]);
        assert_eq!(a.decide(&blue, &call("b", "x")), Decision::Allow);
        assert_eq!(a.decide(&anon, &call("b", "echo")), Decision::Allow);
        assert_eq!(a.decide(&anon, &call("b", "x")), Decision::Deny(vec![]));
        assert_eq!(a.decide(&anon, &call("c", "x")), Decision::Allow);
        assert_eq!(a.decide(&acme, &call("b", "x")), Decision::Allow);
        assert_eq!(
            a.decide(&subject(json!({"org": {}}), &[]), &call("b", "x")),
            Decision::Deny(vec![])
        );
    }

    #[test]
    fn backend_selector() {
        let s = Authorization::compile_selector(&json!({
            "rules": [
                {"cel": "request.mcp.backend in request.auth.jwt.claims.mcp_backends"},
                {"cel": "(',' + request.headers['x-ai-eg-mcp-backend-subset'] + ',').contains(',' + request.mcp.backend + ',')"}
            ]
        }))
        .unwrap();
        let who = subject(
            json!({"mcp_backends": ["a"]}),
            &[("x-ai-eg-mcp-backend-subset", "b,c")],
        );
        let pick = |b: &str| {
            s.decide(
                &who,
                &McpCall {
                    backend: b,
                    ..Default::default()
                },
            ) == Decision::Allow
        };
        assert!(pick("a") && pick("b") && pick("c") && !pick("d"));
        assert!(Authorization::compile_selector(&json!({"rules": [{"cel": "x"}]})).is_err());
        assert!(Authorization::compile_selector(&json!({"rulez": []})).is_err());
        let allow_all =
            Authorization::compile_selector(&json!({"defaultAction": "Allow"})).unwrap();
        assert_eq!(
            allow_all.decide(&Subject::default(), &McpCall::default()),
            Decision::Allow
        );
    }
}
