//! Configuration: the upstream project's Kubernetes YAML, loaded and validated.
