//! # aigw-auth
//!
//! [`CredentialProvider`](aigw_core::CredentialProvider) implementations for every
//! BackendSecurityPolicy type (API keys, AWS SigV4 with STS, Azure Entra ID, GCP service
//! accounts and workload identity) and one rotation wrapper that makes all of them
//! refresh ahead of expiry, single-flight and retry safely.
