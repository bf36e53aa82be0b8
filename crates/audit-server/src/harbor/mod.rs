//! Harbor's Pluggable Scanner API v1.2 (`goharbor/pluggable-scanner-spec`,
//! `api/spec/scanner-adapter-openapi-v1.2.yaml`; the copy tested against is
//! `testdata/harbor/scanner-adapter-openapi-v1.2.yaml`): `GET /api/v1/metadata`,
//! `POST /api/v1/scan` (202 with a job id, or 429 + `Retry-After` when the queue is full),
//! `GET /api/v1/scan/{id}/report` (302 + `Refresh-After` while the audit runs, then the
//! report in the media type asked for). The audit pulls with the registry URL and the
//! `Authorization` value of the request (Harbor's short-lived robot credentials); they go to
//! that registry only and never to a log, an error, a report or a metric.
//!
//! Capabilities: `vulnerability` (imgaudit's findings as vulnerability items,
//! [`report`]) and `sbom` (the CycloneDX document of `--format cyclonedx`). Jobs are kept in
//! [`jobs::Jobs`] (memory, and Redis shared by the replicas). docs/harbor.md is the user's
//! side of all this.

mod jobs;
mod report;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use audit_core::source::{
    ImageReference, RegistryAuth, RegistryStore, Secret, Source, SourceOptions,
};
use audit_core::Error;
use base64::Engine as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::engine::Engine;
use super::http;
pub(crate) use jobs::Jobs;
use jobs::{unix_now, Artifact, Job, State};

/// Media types of the spec.
pub(crate) mod mime {
    pub(crate) const METADATA: &str = "application/vnd.scanner.adapter.metadata+json; version=1.1";
    pub(crate) const SCAN_RESPONSE: &str =
        "application/vnd.scanner.adapter.scan.response+json; version=1.0";
    pub(crate) const ERROR: &str = "application/vnd.scanner.adapter.error+json; version=1.0";
    pub(crate) const VULN_1_1: &str = "application/vnd.security.vulnerability.report; version=1.1";
    pub(crate) const VULN_1_0: &str =
        "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
    pub(crate) const SBOM: &str = "application/vnd.security.sbom.report+json; version=1.0";
    pub(crate) const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
    pub(crate) const SPDX: &str = "application/spdx+json";
    pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
}

/// Seconds Harbor is told to wait before polling a running scan again (`Refresh-After`).
pub const REFRESH_AFTER_SECS: u64 = 2;
/// Seconds a refused scan (queue full) is told to wait (`Retry-After`).
pub const QUEUE_FULL_RETRY_AFTER_SECS: u64 = 10;
/// How long a queued job may wait for an audit slot before it counts as abandoned: 30 minutes
/// (Harbor's job service gives up on a scan job after 30 minutes, goharbor/harbor #20219).
pub const MAX_QUEUED: Duration = Duration::from_secs(1800);
/// Margin past the registry's whole-pull bound before a running job counts as abandoned.
const RUNNING_MARGIN: Duration = Duration::from_secs(60);
/// Longest registry URL, repository, digest, tag or Authorization value accepted (bytes).
pub const MAX_FIELD_BYTES: usize = 8 << 10;

/// How Harbor authenticates to the adapter, as registered in its "Interrogation Services →
/// Scanners" form: no credential, HTTP Basic, a Bearer token, or an API key in
/// `X-ScannerAdapter-API-Key`.
#[derive(Clone)]
pub enum AdapterAuth {
    /// Anyone who reaches the listener.
    None,
    /// `Authorization: Basic base64(USER:PASSWORD)`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer(Secret),
    /// `X-ScannerAdapter-API-Key: KEY`.
    ApiKey(Secret),
}

impl std::fmt::Debug for AdapterAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Basic { .. } => "Basic(<redacted>)",
            Self::Bearer(_) => "Bearer(<redacted>)",
            Self::ApiKey(_) => "ApiKey(<redacted>)",
        })
    }
}

/// The header Harbor sends an API key in.
pub const API_KEY_HEADER: &str = "x-scanneradapter-api-key";

/// The adapter's settings (`imgaudit serve --harbor-listen …`).
#[derive(Clone, Debug)]
pub struct HarborConfig {
    /// Address of the adapter's own listener.
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with `serve`'s certificate (else plain HTTP, for in-cluster traffic behind
    /// a network policy or a mesh).
    pub tls: bool,
    /// How Harbor authenticates.
    pub auth: AdapterAuth,
    /// Scans accepted and not finished at most, per replica; more are refused with 429.
    pub max_queue: usize,
    /// How long a job's record and a finished result are kept.
    pub job_ttl: Duration,
    /// Bytes of job records kept in this replica's memory.
    pub job_memory_bytes: u64,
}

/// Counters of the adapter.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    from_store: AtomicU64,
    refused: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

/// The adapter: one per process, next to the webhook on the same engine.
pub(crate) struct Harbor {
    engine: Arc<Engine>,
    jobs: Jobs,
    /// The registry options of `serve` (CAs, limits); credentials come from each request.
    opts: SourceOptions,
    auth: AdapterAuth,
    max_queue: usize,
    /// Accepted and not finished here.
    pending: AtomicUsize,
    /// Results by digest are shared only between equal scopes (policy, profile, platforms,
    /// version, analysis fingerprint).
    scope: String,
    counters: Counters,
}

/// A request refused: status and message for the spec's error document.
struct Refusal(StatusCode, String);

impl Harbor {
    pub(crate) fn new(
        engine: Arc<Engine>,
        config: &HarborConfig,
        opts: SourceOptions,
        redis: Option<Arc<audit_core::store::RedisStore>>,
        scope: &str,
    ) -> Self {
        use sha2::Digest as _;
        let scope = hex::encode(sha2::Sha256::digest(
            format!("{}\n{scope}", env!("CARGO_PKG_VERSION")).as_bytes(),
        ))[..32]
            .to_string();
        Self {
            engine,
            jobs: Jobs::new(config.job_memory_bytes, redis, config.job_ttl),
            opts,
            auth: config.auth.clone(),
            max_queue: config.max_queue.max(1),
            pending: AtomicUsize::new(0),
            scope,
            counters: Counters::default(),
        }
    }

    /// Gauges and counters for `/metrics` on either listener.
    pub(crate) fn metrics(&self) -> Vec<(&'static str, &'static str, f64)> {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let (entries, bytes) = self.jobs.occupancy();
        vec![
            (
                "imgaudit_harbor_scans_accepted",
                "Harbor scan requests accepted (202), including those answered from the store.",
                get(&c.accepted),
            ),
            (
                "imgaudit_harbor_scans_from_store",
                "Harbor scans answered from a result kept for the same digest.",
                get(&c.from_store),
            ),
            (
                "imgaudit_harbor_scans_refused",
                "Harbor scan requests refused with 429 (queue full).",
                get(&c.refused),
            ),
            (
                "imgaudit_harbor_scans_done",
                "Harbor scans finished with a report.",
                get(&c.done),
            ),
            (
                "imgaudit_harbor_scans_failed",
                "Harbor scans finished without a report.",
                get(&c.failed),
            ),
            (
                "imgaudit_harbor_queue",
                "Harbor scans accepted by this replica and not finished.",
                self.pending.load(Ordering::Relaxed) as f64,
            ),
            (
                "imgaudit_harbor_job_entries",
                "Harbor job records and results held in memory.",
                entries as f64,
            ),
            (
                "imgaudit_harbor_job_bytes",
                "Bytes of Harbor job records and results held in memory.",
                bytes as f64,
            ),
        ]
    }

    /// Whether the request carries the credential Harbor was registered with.
    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
        let eq = |got: Option<&[u8]>, want: &[u8]| got.is_some_and(|g| bool::from(g.ct_eq(want)));
        match &self.auth {
            AdapterAuth::None => true,
            AdapterAuth::Basic { user, password } => {
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{}", password.expose()))
                );
                eq(header("authorization"), want.as_bytes())
            }
            AdapterAuth::Bearer(t) => eq(
                header("authorization"),
                format!("Bearer {}", t.expose()).as_bytes(),
            ),
            AdapterAuth::ApiKey(k) => eq(header(API_KEY_HEADER), k.expose().as_bytes()),
        }
    }
}

type Answer = Response<Full<Bytes>>;

fn error(engine: &Engine, code: StatusCode, msg: &str) -> Answer {
    http::reply(
        engine,
        code,
        mime::ERROR,
        json!({"error": {"message": msg}}).to_string(),
    )
}

/// Routes of the adapter's listener: the three API operations, and `/healthz`, `/readyz`,
/// `/metrics` as on the webhook's listener.
pub(crate) async fn handle(
    harbor: Arc<Harbor>,
    req: Request<Incoming>,
    max_body: u64,
) -> Result<Answer, Infallible> {
    let path = req.uri().path().to_string();
    let e = &*harbor.engine;
    if let Some(a) = http::probe(e, req.method(), &path) {
        return Ok(a);
    }
    let Some(api) = path.strip_prefix("/api/v1/") else {
        return Ok(error(e, StatusCode::NOT_FOUND, "not found"));
    };
    if !harbor.authorized(&req) {
        let mut a = error(e, StatusCode::UNAUTHORIZED, "unauthorized");
        if matches!(harbor.auth, AdapterAuth::Basic { .. }) {
            a.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"imgaudit\""),
            );
        }
        return Ok(a);
    }
    let report_id = api
        .strip_prefix("scan/")
        .and_then(|r| r.strip_suffix("/report"));
    Ok(match (req.method(), api, report_id) {
        (&Method::GET, "metadata", _) => {
            http::reply(e, StatusCode::OK, mime::METADATA, metadata().to_string())
        }
        (&Method::POST, "scan", _) => scan(&harbor, req, max_body).await,
        (&Method::GET, _, Some(id)) => report(&harbor, &req, id),
        (_, "metadata" | "scan", _) | (_, _, Some(_)) => {
            error(e, StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(e, StatusCode::NOT_FOUND, "not found"),
    })
}

/// The scanner and its capabilities.
fn metadata() -> Value {
    let consumes = [mime::OCI_MANIFEST, mime::DOCKER_MANIFEST];
    json!({
        "scanner": {"name": "imgaudit", "vendor": "imgaudit", "version": env!("CARGO_PKG_VERSION")},
        "capabilities": [
            {
                "type": "vulnerability",
                "consumes_mime_types": consumes,
                "produces_mime_types": [mime::VULN_1_1, mime::VULN_1_0],
            },
            {
                "type": "sbom",
                "consumes_mime_types": consumes,
                "produces_mime_types": [mime::SBOM],
                "additional_attributes": {"sbom_media_types": [mime::CYCLONEDX]},
            },
        ],
        "properties": {
            "harbor.scanner-adapter/scanner-type": "image-audit",
            "imgaudit/rules": audit_core::rules::RULES.len().to_string(),
            "imgaudit/findings-as": "vulnerabilities (one item per finding; id = rule id)",
        },
    })
}

#[derive(Deserialize)]
struct ScanRequest {
    registry: RegistryField,
    artifact: ArtifactField,
    #[serde(default)]
    enabled_capabilities: Option<Vec<CapabilityField>>,
}

#[derive(Deserialize)]
struct RegistryField {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    authorization: Option<String>,
}

#[derive(Deserialize)]
struct ArtifactField {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
}

#[derive(Deserialize)]
struct CapabilityField {
    #[serde(rename = "type")]
    kind: String,
}

/// What a valid scan request asks for.
struct Wanted {
    reference: ImageReference,
    plain_http: bool,
    auth: RegistryAuth,
    artifact: Artifact,
}

/// Checks a scan request; 400 for what is not its JSON, 422 for invalid fields.
fn parse_scan(body: &[u8]) -> Result<Wanted, Refusal> {
    let r: ScanRequest = serde_json::from_slice(body).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            format!("not a scan request: {}", one_line(&e.to_string())),
        )
    })?;
    let invalid = |m: String| Refusal(StatusCode::UNPROCESSABLE_ENTITY, m);
    for (name, v) in [
        ("registry.url", &r.registry.url),
        ("registry.authorization", &r.registry.authorization),
        ("artifact.repository", &r.artifact.repository),
        ("artifact.digest", &r.artifact.digest),
        ("artifact.tag", &r.artifact.tag),
        ("artifact.mime_type", &r.artifact.mime_type),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_FIELD_BYTES) {
            return Err(invalid(format!(
                "{name}: longer than {MAX_FIELD_BYTES} bytes"
            )));
        }
    }
    if let Some(caps) = &r.enabled_capabilities {
        if let Some(c) = caps
            .iter()
            .find(|c| c.kind != "vulnerability" && c.kind != "sbom")
        {
            return Err(invalid(format!(
                "enabled_capabilities: unknown type {:?}",
                one_line(&c.kind)
            )));
        }
    }
    let url = r
        .registry
        .url
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid("registry.url: missing".into()))?;
    let (host, plain_http) = registry_host(url).map_err(invalid)?;
    let repository = r
        .artifact
        .repository
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("artifact.repository: missing".into()))?;
    let digest = r
        .artifact
        .digest
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("artifact.digest: missing".into()))?;
    let parsed: audit_core::Digest = digest
        .parse()
        .map_err(|_| invalid("artifact.digest: not an algorithm:hex digest".into()))?;
    let reference = ImageReference::parse(&format!("{host}/{repository}@{parsed}"))
        .ok()
        .filter(|r| r.api_host() == host || r.registry() == host)
        .ok_or_else(|| invalid("artifact.repository: not a repository name".into()))?;
    let auth = registry_auth(r.registry.authorization.as_deref()).map_err(invalid)?;
    Ok(Wanted {
        reference,
        plain_http,
        auth,
        artifact: Artifact {
            repository: repository.to_string(),
            digest: parsed.to_string(),
            tag: r.artifact.tag,
            mime_type: r.artifact.mime_type,
        },
    })
}

/// `HOST[:PORT]` of an `http(s)://HOST[:PORT][/]` registry URL, and whether it is plain HTTP.
fn registry_host(url: &str) -> Result<(String, bool), String> {
    let (rest, plain) = if let Some(r) = url.strip_prefix("https://") {
        (r, false)
    } else if let Some(r) = url.strip_prefix("http://") {
        (r, true)
    } else {
        return Err("registry.url: not an http:// or https:// URL".into());
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !ok {
        return Err("registry.url: expected scheme://host[:port] (no path, user or query)".into());
    }
    Ok((host.to_ascii_lowercase(), plain))
}

/// Harbor's `Authorization` value for the registry: Basic or Bearer, or none.
fn registry_auth(v: Option<&str>) -> Result<RegistryAuth, String> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let (scheme, value) = v.split_once(' ').unwrap_or((v, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("registry.authorization: Basic credentials are not base64 of USER:PASSWORD")?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or("registry.authorization: Basic credentials are not base64 of USER:PASSWORD")?;
        return Ok(RegistryAuth::Basic {
            username: user.to_string(),
            password: Secret::new(pass),
        });
    }
    if scheme.eq_ignore_ascii_case("bearer") && !value.is_empty() {
        return Ok(RegistryAuth::Bearer(Secret::new(value)));
    }
    Err("registry.authorization: expected \"Basic …\" or \"Bearer …\"".into())
}

/// A message on one line, at most 300 characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

async fn scan(harbor: &Arc<Harbor>, req: Request<Incoming>, max: u64) -> Answer {
    let e = &*harbor.engine;
    let bytes = match http::body_of(
        e,
        req,
        max,
        &[
            "application/json",
            "application/vnd.scanner.adapter.scan.request+json",
        ],
    )
    .await
    {
        Ok(b) => b,
        Err(a) => return a,
    };
    let w = match parse_scan(&bytes) {
        Ok(w) => w,
        Err(Refusal(code, msg)) => return error(e, code, &msg),
    };
    if e.stopping() {
        return error(e, StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let accepted = |harbor: &Harbor| {
        harbor.counters.accepted.fetch_add(1, Ordering::Relaxed);
        http::reply(
            e,
            StatusCode::ACCEPTED,
            mime::SCAN_RESPONSE,
            json!({ "id": id }).to_string(),
        )
    };
    if let Some(s) = harbor.jobs.result(&harbor.scope, &w.artifact.digest) {
        harbor.counters.from_store.fetch_add(1, Ordering::Relaxed);
        harbor.jobs.put_job(
            &id,
            &Job {
                state: State::Done,
                artifact: w.artifact,
                deadline: unix_now(),
                error: None,
                result: Some(s),
            },
        );
        return accepted(harbor);
    }
    // Reserve a place in the queue, or refuse.
    let taken = harbor
        .pending
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < harbor.max_queue).then_some(n + 1)
        });
    if taken.is_err() {
        harbor.counters.refused.fetch_add(1, Ordering::Relaxed);
        let mut a = error(
            e,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "{} scans queued, the most this adapter takes; retry later",
                harbor.max_queue
            ),
        );
        a.headers_mut()
            .insert(RETRY_AFTER, QUEUE_FULL_RETRY_AFTER_SECS.into());
        return a;
    }
    harbor.jobs.put_job(
        &id,
        &Job {
            state: State::Queued,
            artifact: w.artifact.clone(),
            deadline: unix_now() + MAX_QUEUED.as_secs(),
            error: None,
            result: None,
        },
    );
    tracing::info!(job = %id, image = %w.reference, "harbor scan accepted");
    tokio::spawn(Arc::clone(harbor).run(id.clone(), w));
    accepted(harbor)
}

impl Harbor {
    /// Runs one accepted scan to its end, writing each state to the job store.
    async fn run(self: Arc<Self>, id: String, w: Wanted) {
        let started = std::time::Instant::now();
        let slot = self.engine.audit_slot().await;
        let total = self.opts.limits.total_timeout;
        self.jobs.put_job(
            &id,
            &Job {
                state: State::Running,
                artifact: w.artifact.clone(),
                deadline: unix_now() + (total + RUNNING_MARGIN).as_secs(),
                error: None,
                result: None,
            },
        );
        let mut opts = self.opts.clone().credentials(Arc::new(w.auth));
        if w.plain_http {
            opts = opts.insecure_host(w.reference.api_host().to_string());
        }
        let (engine, target) = (Arc::clone(&self.engine), w.reference.clone());
        let result = crate::engine::on_audit_thread("imgaudit-harbor", move || {
            RegistryStore::new(target.clone(), &opts)
                .map_err(Error::from)
                .and_then(|s| {
                    engine
                        .auditor()
                        .audit(&Source::Blobs(Box::new(s)), &target.to_string())
                })
        })
        .await;
        drop(slot);
        self.engine.metrics.audit_seconds.observe(started.elapsed());
        let job = match result {
            Ok(reports) => {
                let s = report::scanned(&reports, rfc3339_now());
                self.jobs.put_result(&self.scope, &w.artifact.digest, &s);
                self.counters.done.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job = %id, image = %w.reference, findings = s.vulnerabilities.len(), ms = started.elapsed().as_millis() as u64, "harbor scan done");
                Job {
                    state: State::Done,
                    artifact: w.artifact,
                    deadline: unix_now(),
                    error: None,
                    result: Some(s),
                }
            }
            Err(err) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                let msg = one_line(&err.to_string());
                tracing::warn!(job = %id, image = %w.reference, error = %msg, "harbor scan failed");
                Job {
                    state: State::Failed,
                    artifact: w.artifact,
                    deadline: unix_now(),
                    error: Some(msg),
                    result: None,
                }
            }
        };
        self.jobs.put_job(&id, &job);
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Now in RFC 3339 (UTC).
fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The report kinds a request may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Vulnerability(&'static str),
    Sbom,
}

/// The media type asked for in `Accept` (the first one known; none or `*/*` means the
/// vulnerability report, version 1.1), or the refusal.
fn wanted_kind(accept: Option<&str>, query: Option<&str>) -> Result<Kind, Refusal> {
    let norm = |s: &str| {
        s.split(';')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.starts_with("q="))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut kind = None;
    let mut unknown = Vec::new();
    for a in accept
        .unwrap_or("")
        .split(',')
        .map(norm)
        .filter(|a| !a.is_empty())
    {
        kind = match a.as_str() {
            x if x == mime::VULN_1_1 => Some(Kind::Vulnerability(mime::VULN_1_1)),
            x if x == mime::VULN_1_0 => Some(Kind::Vulnerability(mime::VULN_1_0)),
            x if x == mime::SBOM => Some(Kind::Sbom),
            "*/*" | "application/*" => Some(Kind::Vulnerability(mime::VULN_1_1)),
            _ => {
                unknown.push(a);
                continue;
            }
        };
        break;
    }
    let kind = match kind {
        Some(k) => k,
        None if unknown.is_empty() => Kind::Vulnerability(mime::VULN_1_1),
        None => {
            return Err(Refusal(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "no report in {}; this adapter produces {}, {} and {}",
                    one_line(&unknown.join(", ")),
                    mime::VULN_1_1,
                    mime::VULN_1_0,
                    mime::SBOM
                ),
            ))
        }
    };
    if kind == Kind::Sbom {
        let asked = query
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("sbom_media_type="))
            .map(percent_decode);
        match asked.as_deref() {
            Some(mime::CYCLONEDX) => {}
            Some(mime::SPDX) => {
                return Err(Refusal(
                    StatusCode::NOT_IMPLEMENTED,
                    format!(
                        "SBOM as {}: not produced; ask for {}",
                        mime::SPDX,
                        mime::CYCLONEDX
                    ),
                ))
            }
            Some(other) => {
                return Err(Refusal(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "sbom_media_type {:?}: expected {}",
                        one_line(other),
                        mime::CYCLONEDX
                    ),
                ))
            }
            None => {
                return Err(Refusal(
                    StatusCode::BAD_REQUEST,
                    format!("an SBOM report needs ?sbom_media_type={}", mime::CYCLONEDX),
                ))
            }
        }
    }
    Ok(kind)
}

/// `%XX` decoded (invalid escapes kept as they are). A `+` stays a `+` (RFC 3986 gives it no
/// meaning in a query; only HTML forms use it for a space), so an unescaped
/// `application/vnd.cyclonedx+json` is understood too.
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn report(harbor: &Harbor, req: &Request<Incoming>, id: &str) -> Answer {
    let e = &*harbor.engine;
    let job = (!id.is_empty() && id.len() <= 64)
        .then(|| harbor.jobs.job(id))
        .flatten();
    let Some(job) = job else {
        return error(e, StatusCode::NOT_FOUND, "no scan with this id");
    };
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let kind = match wanted_kind(accept, req.uri().query()) {
        Ok(k) => k,
        Err(Refusal(code, msg)) => return error(e, code, &msg),
    };
    match (job.state, &job.result) {
        (State::Queued | State::Running, _) if job.deadline < unix_now() => error(
            e,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the scan was abandoned (the adapter replica running it stopped); scan again",
        ),
        (State::Queued | State::Running, _) => {
            let mut a = http::reply(e, StatusCode::FOUND, "text/plain; charset=utf-8", "");
            let h = a.headers_mut();
            h.insert("refresh-after", REFRESH_AFTER_SECS.into());
            if let Ok(v) = req.uri().to_string().parse() {
                h.insert(LOCATION, v);
            }
            a
        }
        (State::Done, Some(s)) => {
            let artifact = json!(job.artifact);
            let scanner = json!({"name": "imgaudit", "vendor": "imgaudit", "version": env!("CARGO_PKG_VERSION")});
            let (media, body) = match kind {
                Kind::Vulnerability(media) => (
                    media,
                    json!({
                        "generated_at": s.generated_at,
                        "artifact": artifact,
                        "scanner": scanner,
                        "severity": s.severity,
                        "vulnerabilities": s.vulnerabilities,
                    }),
                ),
                Kind::Sbom => (
                    mime::SBOM,
                    json!({
                        "generated_at": s.generated_at,
                        "artifact": artifact,
                        "scanner": scanner,
                        "media_type": mime::CYCLONEDX,
                        "sbom": s.sbom,
                    }),
                ),
            };
            http::reply(e, StatusCode::OK, media, body.to_string())
        }
        (State::Failed, _) | (State::Done, None) => error(
            e,
            StatusCode::INTERNAL_SERVER_ERROR,
            job.error.as_deref().unwrap_or("the scan failed"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls() {
        assert_eq!(
            registry_host("https://core.harbor.domain").unwrap(),
            ("core.harbor.domain".into(), false)
        );
        assert_eq!(
            registry_host("http://harbor-core:8080/").unwrap(),
            ("harbor-core:8080".into(), true)
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@host",
            "https://host/v2/",
            "https://host?x",
            "host:5000",
        ] {
            assert!(registry_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_authorization_values() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("robot$x:p:w")
        );
        match registry_auth(Some(&basic)).unwrap() {
            RegistryAuth::Basic { username, password } => {
                assert_eq!(username, "robot$x");
                assert_eq!(password.expose(), "p:w");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            registry_auth(Some("Bearer abc.def")).unwrap(),
            RegistryAuth::Bearer(_)
        ));
        assert!(registry_auth(None).unwrap().is_anonymous());
        for bad in ["Basic !!!", "Basic Zm9v", "Digest x", "Bearer"] {
            let e = registry_auth(Some(bad)).unwrap_err();
            assert!(!e.contains("Zm9v") && !e.contains("!!!"), "{e}");
        }
    }

    #[test]
    fn accept_and_sbom_media_type() {
        use Kind::*;
        let k = |a: Option<&str>, q: Option<&str>| wanted_kind(a, q).map_err(|r| r.0);
        assert_eq!(k(None, None), Ok(Vulnerability(mime::VULN_1_1)));
        assert_eq!(k(Some("*/*"), None), Ok(Vulnerability(mime::VULN_1_1)));
        assert_eq!(
            k(
                Some("application/vnd.scanner.adapter.vuln.report.harbor+json;version=1.0"),
                None
            ),
            Ok(Vulnerability(mime::VULN_1_0))
        );
        let cdx = "sbom_media_type=application%2Fvnd.cyclonedx%2Bjson";
        assert_eq!(k(Some(mime::SBOM), Some(cdx)), Ok(Sbom));
        assert_eq!(
            k(
                Some(mime::SBOM),
                Some("sbom_media_type=application/vnd.cyclonedx+json")
            ),
            Ok(Sbom)
        );
        assert_eq!(k(Some(mime::SBOM), None), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            k(Some(mime::SBOM), Some("sbom_media_type=text/plain")),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            k(
                Some(mime::SBOM),
                Some("sbom_media_type=application/spdx%2Bjson")
            ),
            Err(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(
            k(
                Some("application/vnd.scanner.adapter.vuln.report.raw"),
                None
            ),
            Err(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn scan_requests() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let ok = json!({"registry": {"url": "https://127.0.0.1:5000", "authorization": "Bearer t"}, "artifact": {"repository": "library/app", "digest": d}});
        let w = parse_scan(ok.to_string().as_bytes()).ok().unwrap();
        assert_eq!(
            w.reference.to_string(),
            format!("127.0.0.1:5000/library/app@{d}")
        );
        let code = |v: Value| parse_scan(v.to_string().as_bytes()).err().unwrap().0;
        assert_eq!(code(json!([])), StatusCode::BAD_REQUEST);
        assert_eq!(code(json!({"registry": {}})), StatusCode::BAD_REQUEST);
        assert_eq!(
            code(json!({"registry": {"url": 5}, "artifact": {}})),
            StatusCode::BAD_REQUEST
        );
        for bad in [
            json!({"registry": {}, "artifact": {"repository": "a", "digest": d}}),
            json!({"registry": {"url": "https://h"}, "artifact": {"digest": d}}),
            json!({"registry": {"url": "https://h"}, "artifact": {"repository": "a"}}),
            json!({"registry": {"url": "https://h"}, "artifact": {"repository": "a", "digest": "sha256:12"}}),
            json!({"registry": {"url": "https://h"}, "artifact": {"repository": "A//b", "digest": d}}),
            json!({"registry": {"url": "https://h", "authorization": "Negotiate x"}, "artifact": {"repository": "a", "digest": d}}),
            json!({"registry": {"url": "https://h"}, "artifact": {"repository": "a", "digest": d}, "enabled_capabilities": [{"type": "malware"}]}),
            json!({"registry": {"url": "https://h"}, "artifact": {"repository": "a".repeat(MAX_FIELD_BYTES + 1), "digest": d}}),
        ] {
            assert_eq!(code(bad.clone()), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
    }
}
