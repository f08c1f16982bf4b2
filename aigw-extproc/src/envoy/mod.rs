//! Envoy bootstrap generation: Envoy + `aigw-extproc` as a complete gateway on one host,
//! without Kubernetes or Envoy Gateway.
//!
//! [`Plan`] is the Envoy-shaped view of the configuration (routes on `x-ai-eg-model`,
//! one cluster per rule with endpoints by priority and weight); [`Plan::bootstrap`]
//! renders it with the two ext_proc filters exactly as upstream's extension server
//! patches them in (see the inventory §5.1).

mod bootstrap;
mod plan;

pub use plan::{
    ClusterPlan, EndpointPlan, HeaderMatch, Options, Plan, PoolPlan, Protection, RetryPlan,
    RoutePlan,
};
