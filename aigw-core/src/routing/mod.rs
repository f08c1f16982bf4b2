//! Routing: the compiled, immutable snapshot requests are matched against.
//!
//! [`Snapshot::compile`] turns a validated [`Config`] into matchers, priority groups of
//! weighted candidates, resolved credentials, merged mutations, costs and traffic
//! settings. It is built once per configuration and swapped atomically by the adapters;
//! matching takes no locks and allocates only the result's attempt order.
//!
//! Rule precedence follows the Gateway API for routes that differ only in header
//! matches: the match with the most header conditions wins; ties go to the route loaded
//! first, then to the earlier rule.

pub(crate) mod models;
mod pool;
pub(crate) mod target;

pub use models::{ModelInfo, unix_to_rfc3339};
pub use pool::{InferencePoolTarget, PickerFailureMode};
pub use target::{BackendTarget, Endpoint, H2C_APP_PROTOCOL, TlsRoots, TlsSettings};

use crate::config::traffic::{ClientSettings, TrafficSettings};
use crate::config::{
    BackendSecurityPolicySpec, BodyMutation, Config, HeaderMatchType, HeaderMutationConfig,
    MODEL_HEADER, ResolvedSecurityPolicy, Resource, SecretSource, non_empty, parse_duration,
};
use crate::cost::CostSet;
use crate::error::{ConfigIssue, Error, Result};
use crate::schema::{RESPONSES_ANNOTATION, VersionedSchema};
use http::HeaderMap;
use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The request timeout when a rule sets none (upstream's default, not Envoy Gateway's
/// 15 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A compiled header condition.
#[derive(Debug, Clone)]
enum HeaderMatcher {
    Exact { name: String, value: String },
    Regex { name: String, re: Regex },
}

impl HeaderMatcher {
    fn name(&self) -> &str {
        match self {
            Self::Exact { name, .. } | Self::Regex { name, .. } => name,
        }
    }

    fn matches(&self, model: &str, headers: &HeaderMap) -> bool {
        let value = if self.name() == MODEL_HEADER {
            Some(model)
        } else {
            headers.get(self.name()).and_then(|v| v.to_str().ok())
        };
        let Some(value) = value else { return false };
        match self {
            Self::Exact { value: want, .. } => value == want,
            Self::Regex { re, .. } => re.is_match(value),
        }
    }
}

/// One backend of a rule, ready to try.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The backend.
    pub target: Arc<BackendTarget>,
    /// `ns/name/route/{route}/rule/{i}/ref/{j}`, upstream's per-rule backend name.
    pub backend_name: String,
    /// Model sent upstream instead of the client's.
    pub model_name_override: Option<String>,
    /// Weight (0 = disabled).
    pub weight: u32,
    /// Priority (lower first).
    pub priority: u32,
    /// Route-level over backend-level header mutation.
    pub header_mutation: HeaderMutationConfig,
    /// Route-level over backend-level body mutation.
    pub body_mutation: BodyMutation,
}

/// Candidates sharing a priority.
#[derive(Debug, Clone)]
pub struct PriorityGroup {
    /// The priority.
    pub priority: u32,
    /// Candidates in rule order (including weight-0 ones).
    pub candidates: Vec<Candidate>,
}

/// Rule timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleTimeouts {
    /// Whole request, default 60 s; `None` when set to `0s` (disabled).
    pub request: Option<Duration>,
    /// Per upstream attempt.
    pub backend_request: Option<Duration>,
    /// Maximum silence from the upstream.
    pub stream_idle: Option<Duration>,
}

#[derive(Debug)]
struct CompiledRule {
    name: Option<String>,
    index: usize,
    /// Each entry is one match (headers AND-ed); empty = match all.
    matches: Vec<Vec<HeaderMatcher>>,
    groups: Vec<PriorityGroup>,
    timeouts: RuleTimeouts,
}

#[derive(Debug)]
struct CompiledRoute {
    name: String,
    hostnames: Vec<String>,
    rules: Vec<CompiledRule>,
    costs: Arc<CostSet>,
    traffic: Option<Arc<TrafficSettings>>,
}

/// A configuration resolved elsewhere, for [`Snapshot::assemble`].
#[derive(Debug, Default)]
pub struct Assembled {
    /// Routes with their rules' candidates.
    pub routes: Vec<AssembledRoute>,
    /// The `/v1/models` list.
    pub models: Vec<ModelInfo>,
    /// Costs for requests on routes not listed (global costs only).
    pub default_costs: CostSet,
}

/// One route of an [`Assembled`] configuration.
#[derive(Debug)]
pub struct AssembledRoute {
    /// `ns/name` (or whatever name the data plane reports).
    pub name: String,
    /// `(rule index, candidates)`.
    pub rules: Vec<(usize, Vec<Candidate>)>,
    /// The route's costs over the global ones.
    pub costs: CostSet,
}

/// The result of matching a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The AIGatewayRoute, `ns/name`.
    pub route_name: &'a str,
    /// The rule's name, if it has one.
    pub rule_name: Option<&'a str>,
    /// The rule's index.
    pub rule_index: usize,
    /// Timeouts.
    pub timeouts: RuleTimeouts,
    /// The costs to compute at the end of the request.
    pub costs: &'a CostSet,
    /// Retry, timeout and rate-limit settings from a BackendTrafficPolicy.
    pub traffic: Option<&'a TrafficSettings>,
    /// Priority groups, ascending.
    pub groups: &'a [PriorityGroup],
}

impl<'a> RouteMatch<'a> {
    /// The order to try candidates in: for each priority group (ascending), a weighted
    /// pick first, then the rest of the group by descending weight; weight-0 candidates
    /// are skipped. `random` makes the pick reproducible.
    pub fn attempt_order(&self, random: u64) -> Vec<&'a Candidate> {
        let mut out = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let mut live: Vec<&'a Candidate> =
                group.candidates.iter().filter(|c| c.weight > 0).collect();
            if live.is_empty() {
                continue;
            }
            let total: u64 = live.iter().map(|c| u64::from(c.weight)).sum();
            let r = if g == 0 {
                random
            } else {
                splitmix64(random.wrapping_add(g as u64))
            };
            let mut pick = r % total;
            let mut chosen = 0;
            for (i, c) in live.iter().enumerate() {
                let w = u64::from(c.weight);
                if pick < w {
                    chosen = i;
                    break;
                }
                pick -= w;
            }
            let first = live.remove(chosen);
            out.push(first);
            live.sort_by_key(|c| std::cmp::Reverse(c.weight));
            out.extend(live);
        }
        out
    }

    /// The first candidate of [`RouteMatch::attempt_order`].
    pub fn pick(&self, random: u64) -> Option<&'a Candidate> {
        self.attempt_order(random).into_iter().next()
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    routes: Vec<CompiledRoute>,
    /// Rules whose every match requires an exact model, by model: only these and
    /// `unindexed` can match a request, so lookups stay cheap with thousands of routes.
    /// Rules by exact model name, looked up on every request: foldhash with a
    /// per-process seed rather than SipHash (the stored names come from the
    /// configuration; a client's model name is only looked up).
    by_model: ByModel,
    /// Rules that can match any model (regex, other headers only, no matches).
    unindexed: Vec<RulePos>,
    models: Vec<ModelInfo>,
    client: BTreeMap<String, ClientSettings>,
}

/// (route index, rule index), ordered as loaded.
type RulePos = (usize, usize);

type ByModel = HashMap<String, Vec<RulePos>, foldhash::fast::RandomState>;

fn index_rules(routes: &[CompiledRoute]) -> (ByModel, Vec<RulePos>) {
    let mut by_model = ByModel::default();
    let mut unindexed = Vec::new();
    for (ri, route) in routes.iter().enumerate() {
        for (ui, rule) in route.rules.iter().enumerate() {
            let models: Option<Vec<&str>> = if rule.matches.is_empty() {
                None
            } else {
                rule.matches
                    .iter()
                    .map(|m| {
                        m.iter().find_map(|h| match h {
                            HeaderMatcher::Exact { name, value } if name == MODEL_HEADER => {
                                Some(value.as_str())
                            }
                            _ => None,
                        })
                    })
                    .collect()
            };
            match models {
                Some(mut models) => {
                    models.sort_unstable();
                    models.dedup();
                    for m in models {
                        by_model.entry(m.to_string()).or_default().push((ri, ui));
                    }
                }
                None => unindexed.push((ri, ui)),
            }
        }
    }
    (by_model, unindexed)
}

/// Merges two ascending position lists.
fn merged<'a>(a: &'a [RulePos], b: &'a [RulePos]) -> impl Iterator<Item = RulePos> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x <= y => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                *y
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (None, None) => return None,
        };
        Some(next)
    })
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl Snapshot {
    /// Compiles with secrets from the configuration's Secret documents (with `${VAR}`
    /// expansion). Every secret a policy references must resolve.
    pub fn compile(config: &Config) -> Result<Self> {
        Self::compile_with_secrets(config, &SecretSource::from_config(config))
    }

    /// Compiles with an explicit secret source (files, environment).
    pub fn compile_with_secrets(config: &Config, secrets: &SecretSource) -> Result<Self> {
        let mut issues: Vec<ConfigIssue> = Vec::new();
        // One target per AIServiceBackend, shared by every rule that references it.
        let mut targets: BTreeMap<String, Arc<BackendTarget>> = BTreeMap::new();
        let mut policies: BTreeMap<String, Arc<ResolvedSecurityPolicy>> = BTreeMap::new();
        for b in &config.ai_service_backends {
            let policy = config
                .security_policy_for(b.namespace(), b.name())
                .and_then(|p| {
                    let needed_by = format!("AIServiceBackend {}", b.key());
                    resolve_policy(p, secrets, &mut policies, &mut issues, &needed_by)
                });
            let r = &b.spec.backend_ref;
            let ns = non_empty(r.namespace.as_deref()).unwrap_or(b.namespace());
            let Some(eg) = config.backend(ns, &r.name) else {
                issues.push(ConfigIssue {
                    file: b.source.file.clone(),
                    line: None,
                    document: b.label(),
                    field: "spec.backendRef.name".into(),
                    message: format!("Backend {ns}/{} is not defined", r.name),
                });
                continue;
            };
            targets.insert(
                b.key(),
                Arc::new(BackendTarget {
                    name: b.key(),
                    schema: VersionedSchema {
                        responses_over_chat: b
                            .metadata
                            .annotations
                            .get(RESPONSES_ANNOTATION)
                            .is_some_and(|v| v == "translate"),
                        ..b.spec.schema.clone()
                    },
                    backend: eg.key(),
                    endpoints: target::endpoints(eg),
                    tls: target::tls_for_backend(config, eg, &mut issues),
                    http2_prior_knowledge: target::http2_prior_knowledge(eg),
                    security_policy: policy,
                    request_timeout: b
                        .spec
                        .timeouts
                        .as_ref()
                        .and_then(|t| t.request.as_deref())
                        .and_then(|t| parse_duration(t).ok()),
                    inference_pool: None,
                }),
            );
        }
        let pools = pool_targets(config, secrets, &mut policies, &mut issues);

        let mut routes = Vec::new();
        for route in &config.ai_gateway_routes {
            let route_name = route.key();
            let global = config
                .gateway_config_for_route(route)
                .map(|g| g.spec.global_llm_request_costs.as_slice())
                .unwrap_or(&[]);
            let costs = match CostSet::compile(&route.spec.llm_request_costs, global) {
                Ok(c) => c,
                Err(e) => {
                    issues.push(ConfigIssue {
                        file: route.source.file.clone(),
                        line: None,
                        document: route.label(),
                        field: format!("spec.llmRequestCosts ({})", e.field),
                        message: e.message,
                    });
                    CostSet::default()
                }
            };
            let mut rules = Vec::new();
            for (i, rule) in route.spec.rules.iter().enumerate() {
                let mut matches = Vec::new();
                for m in &rule.matches {
                    let mut hs = Vec::new();
                    for h in &m.headers {
                        let name = h.name.to_ascii_lowercase();
                        hs.push(match h.match_type {
                            HeaderMatchType::Exact => HeaderMatcher::Exact {
                                name,
                                value: h.value.clone(),
                            },
                            HeaderMatchType::RegularExpression => {
                                // Gateway API regexes match the whole value.
                                match Regex::new(&format!("^(?:{})$", h.value)) {
                                    Ok(re) => HeaderMatcher::Regex { name, re },
                                    Err(_) => continue,
                                }
                            }
                        });
                    }
                    matches.push(hs);
                }
                let mut groups: BTreeMap<u32, Vec<Candidate>> = BTreeMap::new();
                for (j, b) in rule.backend_refs.iter().enumerate() {
                    let ns = non_empty(b.namespace.as_deref()).unwrap_or(route.namespace());
                    let key = format!("{ns}/{}", b.name);
                    // A pool's endpoint picker names the pod per request: Envoy asks it
                    // (wired by the operator's extension server), `aigw run` and the
                    // axum layer through their own ext_proc client.
                    let found = if b.is_inference_pool() {
                        pools.get(&key)
                    } else {
                        targets.get(&key)
                    };
                    let Some(t) = found else { continue };
                    let backend = config.ai_service_backend(ns, &b.name);
                    let priority = u32::try_from(b.priority.unwrap_or(0)).unwrap_or(0);
                    groups.entry(priority).or_default().push(Candidate {
                        target: t.clone(),
                        backend_name: format!("{key}/route/{}/rule/{i}/ref/{j}", route.name()),
                        model_name_override: b
                            .model_name_override
                            .clone()
                            .filter(|m| !m.is_empty()),
                        weight: u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0),
                        priority,
                        header_mutation: HeaderMutationConfig::merge(
                            b.header_mutation.as_ref(),
                            backend.and_then(|x| x.spec.header_mutation.as_ref()),
                        ),
                        body_mutation: BodyMutation::merge(
                            b.body_mutation.as_ref(),
                            backend.and_then(|x| x.spec.body_mutation.as_ref()),
                        ),
                    });
                }
                let dur = |s: &Option<String>| s.as_deref().and_then(|s| parse_duration(s).ok());
                let t = rule.timeouts.as_ref();
                let request = match t.and_then(|t| dur(&t.request)) {
                    Some(d) if d.is_zero() => None,
                    Some(d) => Some(d),
                    None => Some(DEFAULT_REQUEST_TIMEOUT),
                };
                rules.push(CompiledRule {
                    name: rule.name.clone(),
                    index: i,
                    matches,
                    groups: groups
                        .into_iter()
                        .map(|(priority, candidates)| PriorityGroup {
                            priority,
                            candidates,
                        })
                        .collect(),
                    timeouts: RuleTimeouts {
                        request,
                        backend_request: t.and_then(|t| dur(&t.backend_request)),
                        stream_idle: dur(&rule.stream_idle_timeout),
                    },
                });
            }
            routes.push(CompiledRoute {
                name: route_name,
                hostnames: route.spec.hostnames.clone(),
                rules,
                costs: Arc::new(costs),
                traffic: TrafficSettings::for_route(config, route).map(Arc::new),
            });
        }
        if !issues.is_empty() {
            return Err(Error::InvalidConfig { issues });
        }
        let mut client = BTreeMap::new();
        for gw in &config.gateways {
            if let Some(c) = ClientSettings::for_gateway(config, gw.namespace(), gw.name()) {
                client.insert(gw.key(), c);
            }
        }
        let (by_model, unindexed) = index_rules(&routes);
        Ok(Self {
            models: models::collect(config),
            routes,
            by_model,
            unindexed,
            client,
        })
    }

    /// A snapshot of a configuration resolved elsewhere (upstream's filter
    /// configuration): its per-rule candidates, costs and models, without matchers —
    /// Envoy routes, so [`Snapshot::route`] finds nothing and the data plane looks
    /// candidates up by per-rule backend name ([`Snapshot::rules`]).
    pub fn assemble(config: Assembled) -> Self {
        let routes = config
            .routes
            .into_iter()
            .map(|r| CompiledRoute {
                name: r.name,
                hostnames: Vec::new(),
                rules: r
                    .rules
                    .into_iter()
                    .map(|(index, candidates)| {
                        let mut groups: BTreeMap<u32, Vec<Candidate>> = BTreeMap::new();
                        for c in candidates {
                            groups.entry(c.priority).or_default().push(c);
                        }
                        CompiledRule {
                            name: None,
                            index,
                            matches: Vec::new(),
                            groups: groups
                                .into_iter()
                                .map(|(priority, candidates)| PriorityGroup {
                                    priority,
                                    candidates,
                                })
                                .collect(),
                            timeouts: RuleTimeouts {
                                request: None,
                                backend_request: None,
                                stream_idle: None,
                            },
                        }
                    })
                    .collect(),
                costs: Arc::new(r.costs),
                traffic: None,
            })
            .collect();
        Self {
            routes,
            by_model: ByModel::default(),
            unindexed: Vec::new(),
            models: config.models,
            client: BTreeMap::new(),
        }
    }

    /// Matches a request. `model` is the request body's model (the value of
    /// `x-ai-eg-model`; a client-sent header of that name is ignored). The `host`
    /// header scopes routes with hostnames; without one, hostnames do not restrict.
    pub fn route(&self, model: &str, headers: &HeaderMap) -> Result<RouteMatch<'_>> {
        // Looked up once the first route that names hostnames needs it (most name none).
        let mut host: Option<Option<&str>> = None;
        let mut best: Option<(usize, &CompiledRoute, &CompiledRule)> = None;
        let indexed = self.by_model.get(model).map_or(&[][..], Vec::as_slice);
        for (ri, ui) in merged(indexed, &self.unindexed) {
            let route = &self.routes[ri];
            if !route.hostnames.is_empty()
                && let Some(host) = *host.get_or_insert_with(|| {
                    headers
                        .get(http::header::HOST)
                        .and_then(|v| v.to_str().ok())
                })
                && !route.hostnames.iter().any(|p| host_matches(p, host))
            {
                continue;
            }
            let rule = &route.rules[ui];
            let score = if rule.matches.is_empty() {
                Some(0)
            } else {
                rule.matches
                    .iter()
                    .filter(|m| m.iter().all(|h| h.matches(model, headers)))
                    .map(Vec::len)
                    .max()
            };
            if let Some(score) = score
                && best.as_ref().is_none_or(|(s, _, _)| score > *s)
            {
                best = Some((score, route, rule));
            }
        }
        match best {
            Some((_, route, rule)) => Ok(RouteMatch {
                route_name: &route.name,
                rule_name: rule.name.as_deref(),
                rule_index: rule.index,
                timeouts: rule.timeouts,
                costs: &route.costs,
                traffic: route.traffic.as_deref(),
                groups: &rule.groups,
            }),
            None => Err(Error::NoRoute {
                model: model.to_string(),
            }),
        }
    }

    /// Models for `/v1/models`: from Exact `x-ai-eg-model` matches, deduplicated by id,
    /// restricted to routes serving `host` when given (routes without hostnames serve
    /// every host).
    pub fn models(&self, host: Option<&str>) -> Vec<&ModelInfo> {
        let mut seen = std::collections::BTreeSet::new();
        self.models
            .iter()
            .filter(|m| match host {
                Some(h) if !m.hostnames.is_empty() => {
                    m.hostnames.iter().any(|p| host_matches(p, h))
                }
                _ => true,
            })
            .filter(|m| seen.insert(m.id.clone()))
            .collect()
    }

    /// Client settings (body buffer limit) for a Gateway `namespace/name`.
    pub fn client_settings(&self, gateway: &str) -> Option<&ClientSettings> {
        self.client.get(gateway)
    }

    /// The smallest body buffer limit configured for any Gateway, if any.
    pub fn body_limit(&self) -> Option<u64> {
        self.client.values().filter_map(|c| c.buffer_limit).min()
    }

    /// Each route's costs, in load order (routes without rules included).
    pub fn route_costs(&self) -> impl Iterator<Item = (&str, &Arc<CostSet>)> {
        self.routes.iter().map(|r| (r.name.as_str(), &r.costs))
    }

    /// Route names, `ns/name`, in load order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.name.as_str())
    }

    /// Every rule as a [`RouteMatch`], in load order: for data planes that route by
    /// themselves (Envoy) and look candidates up by their per-rule backend name.
    pub fn rules(&self) -> impl Iterator<Item = RouteMatch<'_>> {
        self.routes.iter().flat_map(|route| {
            route.rules.iter().map(move |rule| RouteMatch {
                route_name: &route.name,
                rule_name: rule.name.as_deref(),
                rule_index: rule.index,
                timeouts: rule.timeouts,
                costs: &route.costs,
                traffic: route.traffic.as_deref(),
                groups: &rule.groups,
            })
        })
    }
}

/// Resolves a security policy once however many backends it serves; a failure is an
/// issue naming the backend that needs it.
fn resolve_policy(
    p: &Resource<BackendSecurityPolicySpec>,
    secrets: &SecretSource,
    policies: &mut BTreeMap<String, Arc<ResolvedSecurityPolicy>>,
    issues: &mut Vec<ConfigIssue>,
    needed_by: &str,
) -> Option<Arc<ResolvedSecurityPolicy>> {
    if let Some(r) = policies.get(&p.key()) {
        return Some(r.clone());
    }
    match ResolvedSecurityPolicy::resolve(p, secrets) {
        Ok(r) => {
            let r = Arc::new(r);
            policies.insert(p.key(), r.clone());
            Some(r)
        }
        Err((field, message)) => {
            issues.push(ConfigIssue {
                file: p.source.file.clone(),
                line: None,
                document: p.label(),
                field,
                message: format!("{message} (needed by {needed_by})"),
            });
            None
        }
    }
}

/// One target per InferencePool: OpenAI-compatible model servers (what the Inference
/// Extension serves), no endpoint until the picker names one, the security policy that
/// targets the pool.
fn pool_targets(
    config: &Config,
    secrets: &SecretSource,
    policies: &mut BTreeMap<String, Arc<ResolvedSecurityPolicy>>,
    issues: &mut Vec<ConfigIssue>,
) -> BTreeMap<String, Arc<BackendTarget>> {
    let mut out = BTreeMap::new();
    for pool in &config.inference_pools {
        let target = match InferencePoolTarget::from_resource(pool) {
            Ok(t) => t,
            Err((field, message)) => {
                issues.push(ConfigIssue {
                    file: pool.source.file.clone(),
                    line: None,
                    document: pool.label(),
                    field,
                    message,
                });
                continue;
            }
        };
        let policy = config
            .backend_security_policies
            .iter()
            .find(|p| {
                p.namespace() == pool.namespace()
                    && p.spec
                        .target_refs
                        .iter()
                        .any(|t| t.kind == "InferencePool" && t.name == pool.name())
            })
            .and_then(|p| {
                let needed_by = format!("InferencePool {}", pool.key());
                resolve_policy(p, secrets, policies, issues, &needed_by)
            });
        out.insert(
            pool.key(),
            Arc::new(BackendTarget {
                name: pool.key(),
                schema: VersionedSchema::new(crate::schema::ApiSchema::OpenAI),
                backend: pool.key(),
                endpoints: Vec::new(),
                tls: None,
                http2_prior_knowledge: false,
                security_policy: policy,
                request_timeout: None,
                inference_pool: Some(Arc::new(target)),
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Snapshot>();
    }

    fn group(priority: u32, weights: &[u32]) -> PriorityGroup {
        let target = Arc::new(BackendTarget {
            name: "ns/b".into(),
            schema: crate::schema::VersionedSchema::new(crate::schema::ApiSchema::OpenAI),
            backend: "ns/b".into(),
            endpoints: vec![],
            tls: None,
            http2_prior_knowledge: false,
            security_policy: None,
            request_timeout: None,
            inference_pool: None,
        });
        PriorityGroup {
            priority,
            candidates: weights
                .iter()
                .enumerate()
                .map(|(j, w)| Candidate {
                    target: target.clone(),
                    backend_name: format!("p{priority}/ref/{j}"),
                    model_name_override: None,
                    weight: *w,
                    priority,
                    header_mutation: HeaderMutationConfig::default(),
                    body_mutation: BodyMutation::default(),
                })
                .collect(),
        }
    }

    proptest::proptest! {
        /// Every enabled candidate is tried exactly once, groups in priority order.
        #[test]
        fn attempt_order_is_a_permutation_of_live_candidates(
            w0 in proptest::collection::vec(0u32..5, 0..6),
            w1 in proptest::collection::vec(0u32..5, 0..6),
            random in proptest::prelude::any::<u64>(),
        ) {
            let groups = vec![group(0, &w0), group(3, &w1)];
            let costs = CostSet::default();
            let m = RouteMatch {
                route_name: "ns/r",
                rule_name: None,
                rule_index: 0,
                timeouts: RuleTimeouts { request: None, backend_request: None, stream_idle: None },
                costs: &costs,
                traffic: None,
                groups: &groups,
            };
            let order = m.attempt_order(random);
            let live = w0.iter().chain(&w1).filter(|w| **w > 0).count();
            proptest::prop_assert_eq!(order.len(), live);
            let mut names: Vec<&str> = order.iter().map(|c| c.backend_name.as_str()).collect();
            proptest::prop_assert!(order.iter().all(|c| c.weight > 0));
            proptest::prop_assert!(order.windows(2).all(|p| p[0].priority <= p[1].priority));
            names.sort_unstable();
            names.dedup();
            proptest::prop_assert_eq!(names.len(), live);
        }
    }

    #[test]
    fn hosts() {
        assert!(host_matches("api.example.com", "API.example.com:8080"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
    }
}
