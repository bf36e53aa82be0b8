//! How to reach registries: credentials, trust and bounds, as plain values.
//!
//! The library never reads `$HOME`, the environment or credential helpers itself: the caller
//! (the CLI) resolves them and hands them over here. Credentials are asked for lazily, per
//! registry, only when a registry answers 401, so an anonymous pull never runs a credential
//! helper.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::limits;

/// A secret string (password, token). Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials for one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryAuth {
    /// No credentials: anonymous tokens only.
    #[default]
    Anonymous,
    /// User name and password: sent as HTTP Basic to a `Basic` challenge, or to the token
    /// service of a `Bearer` challenge.
    Basic {
        /// User name.
        username: String,
        /// Password (or a personal access token used as one).
        password: Secret,
    },
    /// A registry token sent as is (`Authorization: Bearer …`, Docker's `registrytoken`).
    Bearer(Secret),
    /// An OAuth2 refresh token (Docker's `identitytoken`, or a credential helper answering
    /// with user `<token>`), exchanged at the token service with
    /// `grant_type=refresh_token`.
    IdentityToken(Secret),
}

impl RegistryAuth {
    /// `true` for [`RegistryAuth::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous)
    }
}

/// Error of a [`Credentials`] lookup; its message must not contain a secret.
pub type CredentialsError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies credentials for a registry (`docker.io`, `ghcr.io`, `host:5000`) when it asks
/// for them. "No credentials" is `Ok(RegistryAuth::Anonymous)`, not an error.
pub trait Credentials: Send + Sync {
    /// Credentials for `registry`.
    fn lookup(&self, registry: &str) -> Result<RegistryAuth, CredentialsError>;
}

/// The same credentials for every registry.
impl Credentials for RegistryAuth {
    fn lookup(&self, _registry: &str) -> Result<RegistryAuth, CredentialsError> {
        Ok(self.clone())
    }
}

/// Time and retry bounds of registry pulls. `Default` gives the documented constants of
/// [`crate::limits`] (`REGISTRY_*`); tests lower them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryLimits {
    /// See [`limits::REGISTRY_CONNECT_TIMEOUT_SECS`].
    pub connect_timeout: Duration,
    /// See [`limits::REGISTRY_REQUEST_TIMEOUT_SECS`].
    pub request_timeout: Duration,
    /// See [`limits::REGISTRY_IDLE_TIMEOUT_SECS`].
    pub idle_timeout: Duration,
    /// See [`limits::REGISTRY_MIN_BYTES_PER_SEC`].
    pub min_bytes_per_sec: u64,
    /// See [`limits::REGISTRY_RATE_WINDOW_SECS`].
    pub rate_window: Duration,
    /// See [`limits::REGISTRY_TOTAL_TIMEOUT_SECS`].
    pub total_timeout: Duration,
    /// See [`limits::REGISTRY_MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// See [`limits::REGISTRY_BACKOFF_BASE_MS`].
    pub backoff_base: Duration,
    /// See [`limits::REGISTRY_BACKOFF_MAX_MS`].
    pub backoff_max: Duration,
    /// See [`limits::REGISTRY_MAX_RETRY_AFTER_SECS`].
    pub max_retry_after: Duration,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(limits::REGISTRY_CONNECT_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(limits::REGISTRY_REQUEST_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(limits::REGISTRY_IDLE_TIMEOUT_SECS),
            min_bytes_per_sec: limits::REGISTRY_MIN_BYTES_PER_SEC,
            rate_window: Duration::from_secs(limits::REGISTRY_RATE_WINDOW_SECS),
            total_timeout: Duration::from_secs(limits::REGISTRY_TOTAL_TIMEOUT_SECS),
            max_attempts: limits::REGISTRY_MAX_ATTEMPTS,
            backoff_base: Duration::from_millis(limits::REGISTRY_BACKOFF_BASE_MS),
            backoff_max: Duration::from_millis(limits::REGISTRY_BACKOFF_MAX_MS),
            max_retry_after: Duration::from_secs(limits::REGISTRY_MAX_RETRY_AFTER_SECS),
        }
    }
}

/// Options for [`super::open`]: everything a registry pull needs besides the reference.
/// Local sources ignore them.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SourceOptions {
    /// Where credentials come from; `None` pulls anonymously.
    pub credentials: Option<Arc<dyn Credentials>>,
    /// PEM certificates trusted as roots in addition to the system's (`--ca-file`,
    /// `--cert-dir`).
    pub ca_pem: Vec<Vec<u8>>,
    /// Registry hosts (`host[:port]`, as in references) that may be reached over plain HTTP
    /// or TLS without certificate verification. Nothing else ever is.
    pub insecure_hosts: Vec<String>,
    /// Time and retry bounds.
    pub limits: RegistryLimits,
    /// Where the container engines listen, and the order a bare reference tries.
    pub engines: super::EngineOptions,
}

impl SourceOptions {
    /// Options with defaults: anonymous, system roots, no insecure host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the credential source.
    pub fn credentials(mut self, c: Arc<dyn Credentials>) -> Self {
        self.credentials = Some(c);
        self
    }

    /// Adds PEM root certificates.
    pub fn ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_pem.push(pem);
        self
    }

    /// Allows plain HTTP or unverified TLS for one registry host.
    pub fn insecure_host(mut self, host: impl Into<String>) -> Self {
        self.insecure_hosts.push(host.into());
        self
    }

    /// Sets the engines' addresses and the source order.
    pub fn engines(mut self, e: super::EngineOptions) -> Self {
        self.engines = e;
        self
    }

    /// Sets the bounds.
    pub fn limits(mut self, l: RegistryLimits) -> Self {
        self.limits = l;
        self
    }

    /// Whether `host` was declared insecure (`docker.io` also matches its API host).
    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }
}

impl fmt::Debug for SourceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceOptions")
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<provider>"),
            )
            .field("ca_pem", &self.ca_pem.len())
            .field("insecure_hosts", &self.insecure_hosts)
            .field("limits", &self.limits)
            .field("engines", &self.engines)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let a = RegistryAuth::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        let dbg = format!(
            "{a:?} {} {:?}",
            Secret::new("hunter2"),
            RegistryAuth::Bearer(Secret::new("tok-hunter2"))
        );
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let o = SourceOptions::new()
            .credentials(Arc::new(a))
            .insecure_host("h:5000");
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(o.is_insecure("H:5000") && !o.is_insecure("h"));
    }
}
