//! Credentials and the `Authorization` header of one repository (distribution `token.md`):
//! answering `WWW-Authenticate` challenges, the token exchange (anonymous, HTTP Basic, or an
//! identity token by `grant_type=refresh_token`), and refreshing a token before it expires.
//!
//! Credentials are looked up once, on the first 401, through the caller's
//! [`crate::source::Credentials`]; secrets only ever go into header values marked sensitive
//! and into the token request itself, never into errors or logs.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::parse::{self, Challenge};
use super::transport::Transport;
use crate::error::SourceError;
use crate::limits::MAX_TOKEN_RESPONSE_BYTES;
use crate::source::options::RegistryAuth;

/// Tokens are refreshed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(5);

/// A repository's credentials and current header, shared by the stores of a pool.
#[derive(Default)]
pub(super) struct AuthState {
    /// Looked up once, on the first 401.
    creds: Option<RegistryAuth>,
    header: Option<HeaderValue>,
    expires: Option<Instant>,
    /// The Bearer challenge the current token answers, to refresh it before it expires.
    bearer: Option<Challenge>,
}

/// Authentication for one repository of one registry.
pub(super) struct RepoAuth {
    pub(super) state: Arc<Mutex<AuthState>>,
    /// The registry as written in the reference (`docker.io`); credentials are keyed by it.
    pub(super) registry: String,
    /// The repository; empty for the registry's catalog.
    pub(super) repository: String,
}

impl RepoAuth {
    fn state(&self) -> MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `Authorization` value to send, refreshing a Bearer token about to expire.
    pub(super) async fn header(&self, net: &Transport) -> Result<Option<HeaderValue>, SourceError> {
        let refresh = {
            let s = self.state();
            match (s.expires, &s.bearer) {
                (Some(exp), Some(ch)) if Instant::now() + TOKEN_MARGIN >= exp => Some(ch.clone()),
                _ => None,
            }
        };
        if let Some(ch) = refresh {
            let creds = self.creds(net)?;
            self.bearer(net, &ch, &creds).await?;
        }
        Ok(self.state().header.clone())
    }

    fn creds(&self, net: &Transport) -> Result<RegistryAuth, SourceError> {
        if let Some(c) = &self.state().creds {
            return Ok(c.clone());
        }
        let registry = self.registry.as_str();
        let c = match &net.opts.credentials {
            None => RegistryAuth::Anonymous,
            Some(p) => p.lookup(registry).map_err(|e| SourceError::Credentials {
                registry: registry.to_string(),
                reason: parse::one_line(&e.to_string(), 300),
            })?,
        };
        tracing::debug!(
            registry,
            anonymous = c.is_anonymous(),
            "credentials looked up"
        );
        self.state().creds = Some(c.clone());
        Ok(c)
    }

    /// The error for a 401 that credentials did not (or could not) answer.
    pub(super) fn unauthorized(&self, host: &str) -> SourceError {
        let anonymous = self
            .state()
            .creds
            .as_ref()
            .is_none_or(RegistryAuth::is_anonymous);
        let reason = if anonymous {
            let what = if self.repository.is_empty() {
                "list the repositories".to_string()
            } else {
                format!("pull {}", self.repository)
            };
            format!(
                "authentication required to {what} and no credentials were found for {} (or the repository does not exist)",
                self.registry
            )
        } else {
            format!("credentials for {} were rejected (HTTP 401)", self.registry)
        };
        SourceError::Unauthorized {
            registry: host.to_string(),
            reason,
        }
    }

    /// Answers the challenges of a 401 response.
    pub(super) async fn answer(
        &self,
        net: &Transport,
        headers: &HeaderMap,
    ) -> Result<(), SourceError> {
        let chs: Vec<Challenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse::challenges)
            .collect();
        let creds = self.creds(net)?;
        let host = net.host.as_str();
        if let Some(ch) = chs.iter().find(|c| c.scheme == "bearer") {
            return match &creds {
                RegistryAuth::Bearer(t) => {
                    if self.state().header.is_some() {
                        return Err(self.unauthorized(host));
                    }
                    self.set_header(host, format!("Bearer {}", t.expose()), None, None)
                }
                _ => self.bearer(net, ch, &creds).await,
            };
        }
        if chs.iter().any(|c| c.scheme == "basic") {
            return match &creds {
                RegistryAuth::Basic { username, password } => {
                    if self.state().header.is_some() {
                        return Err(self.unauthorized(host));
                    }
                    use base64::Engine as _;
                    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()));
                    self.set_header(host, format!("Basic {enc}"), None, None)
                }
                RegistryAuth::Anonymous => Err(self.unauthorized(host)),
                _ => Err(SourceError::Unauthorized {
                    registry: host.to_string(),
                    reason: "the registry wants a user name and password (Basic auth), but only a token is configured".into(),
                }),
            };
        }
        if chs.is_empty() {
            return Err(self.unauthorized(host));
        }
        let schemes: Vec<&str> = chs.iter().map(|c| c.scheme.as_str()).collect();
        Err(SourceError::Unauthorized {
            registry: host.to_string(),
            reason: format!("unsupported authentication scheme {}", schemes.join(", ")),
        })
    }

    fn set_header(
        &self,
        host: &str,
        value: String,
        expires: Option<Instant>,
        bearer: Option<Challenge>,
    ) -> Result<(), SourceError> {
        let mut h = HeaderValue::from_str(&value).map_err(|_| SourceError::Unauthorized {
            registry: host.to_string(),
            reason: "the credentials contain characters that cannot be sent in an HTTP header"
                .into(),
        })?;
        h.set_sensitive(true);
        let mut s = self.state();
        s.header = Some(h);
        s.expires = expires;
        s.bearer = bearer;
        Ok(())
    }

    /// Fetches a token from a Bearer challenge's realm.
    async fn bearer(
        &self,
        net: &Transport,
        ch: &Challenge,
        creds: &RegistryAuth,
    ) -> Result<(), SourceError> {
        let host = net.host.as_str();
        let bad = |reason: String| SourceError::Registry {
            registry: host.to_string(),
            reason,
        };
        let realm = ch
            .param("realm")
            .ok_or_else(|| bad("Bearer challenge without a realm".into()))?;
        let mut url = Url::parse(realm).map_err(|_| {
            bad(format!(
                "token realm {:?} is not a URL",
                parse::one_line(realm, 100)
            ))
        })?;
        let realm_host = url.host_str().unwrap_or("").to_string();
        let realm_hostport = url
            .port()
            .map_or_else(|| realm_host.clone(), |p| format!("{realm_host}:{p}"));
        match url.scheme() {
            "https" => {}
            "http"
                if net.insecure()
                    && (realm_hostport == host || net.opts.is_insecure(&realm_hostport)) => {}
            s => {
                return Err(bad(format!(
                    "token realm uses {s}://, which is only accepted for hosts given as insecure"
                )))
            }
        }
        let service = ch.param("service").map(str::to_string);
        let scopes: Vec<String> = match ch.param("scope") {
            Some(s) if !s.is_empty() => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            _ if self.repository.is_empty() => vec!["registry:catalog:*".to_string()],
            _ => vec![format!("repository:{}:pull", self.repository)],
        };
        let client = net.client_for(&url);
        let what = format!("token from {realm_host}");
        let resp = match creds {
            RegistryAuth::IdentityToken(tok) => {
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", tok.expose().to_string()),
                    ("client_id", "imgaudit".into()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(s) = &service {
                    form.push(("service", s.clone()));
                }
                net.send(&what, || client.post(url.clone()).form(&form))
                    .await?
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = &service {
                        q.append_pair("service", s);
                    }
                    for s in &scopes {
                        q.append_pair("scope", s);
                    }
                }
                net.send(&what, || {
                    let r = client.get(url.clone());
                    match creds {
                        RegistryAuth::Basic { username, password } => {
                            r.basic_auth(username, Some(password.expose()))
                        }
                        _ => r,
                    }
                })
                .await?
            }
        };
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(SourceError::Unauthorized {
                    registry: host.to_string(),
                    reason: format!(
                        "credentials for {} were rejected by the token service {realm_host}",
                        self.registry
                    ),
                })
            }
            st => {
                let detail = net.error_detail(resp).await;
                return Err(bad(format!(
                    "token service {realm_host} answered HTTP {}{detail}",
                    st.as_u16()
                )));
            }
        }
        let body = net
            .read_bounded(resp, MAX_TOKEN_RESPONSE_BYTES, &what)
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("token service {realm_host}: invalid JSON: {e}")))?;
        let token = t
            .token
            .filter(|s| !s.is_empty())
            .or(t.access_token.filter(|s| !s.is_empty()))
            .ok_or_else(|| bad(format!("token service {realm_host} returned no token")))?;
        let ttl = Duration::from_secs(t.expires_in.unwrap_or(60).max(10));
        tracing::debug!(host = %host, ttl_s = ttl.as_secs(), "bearer token obtained");
        self.set_header(
            host,
            format!("Bearer {token}"),
            Some(Instant::now() + ttl),
            Some(ch.clone()),
        )
    }
}
