//! # aigw-operator
//!
//! A Kubernetes operator that reconciles the Envoy AI Gateway CRDs (AIGatewayRoute,
//! AIServiceBackend, BackendSecurityPolicy, …) into a running aigw deployment.
