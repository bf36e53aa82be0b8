//! From an AdmissionReview to a response: namespace and registry policy, tag → digest
//! resolution, the audit-result cache keyed by digest, single-flight audits on their own
//! threads, the deadline, and the words of the answer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use audit_core::admission::{self, Decision, Mode, NamespaceDecision, Thresholds};
use audit_core::error::{Error, SourceError};
use audit_core::source::{ImageReference, RegistryPool, Source};
use audit_core::store::LayerStore;
use audit_core::AuditorBuilder;
use audit_core::Digest;
use audit_core::Finding;
use audit_core::Policy;
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;

use super::memo::{self, Lookup, Memo};
use super::metrics::Metrics;
use super::review::{self, BadReview, Request, Response, Status, Subject};
use super::shared::{Shared, Turn};

/// Most tag resolutions cached, in bytes (about 200 bytes each): 4 MiB.
const RESOLVE_CACHE_BYTES: u64 = 4 << 20;
/// Most tag resolutions in flight at once.
const MAX_RESOLUTIONS: usize = 1024;
/// How long a resolution that missed its request's deadline is still waited for in the
/// background before the audit is started: 10 minutes (the registry's own timeouts end it
/// sooner).
const BACKGROUND_WAIT: Duration = Duration::from_secs(600);
/// Most distinct images judged per request (a pod has a few; more is abuse).
pub(crate) const MAX_IMAGES_PER_REQUEST: usize = 64;

/// Timing and capacity of the audits behind the answers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Answer within this time, by the failure policy when an audit is not done.
    pub deadline: Duration,
    /// How long a tag's resolved digest is reused (zero: resolved on every admission).
    pub resolve_ttl: Duration,
    /// How long an audit result is kept (by manifest digest).
    pub cache_ttl: Duration,
    /// How long a failed audit is remembered before it is tried again.
    pub error_ttl: Duration,
    /// Bytes of audit results kept (estimated; least recently used go first).
    pub cache_bytes: u64,
    /// Audits run at once.
    pub max_audits: usize,
    /// Audits waiting or running at most; more are answered by the failure policy.
    pub max_queued_audits: usize,
    /// Gatekeeper's external-data requests are answered within this time (keep it below the
    /// `Provider`'s `timeout`).
    pub provider_deadline: Duration,
}

/// An audit's result, as cached.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Audited(Arc<Audited>),
    Failed(Arc<str>),
}

/// What is kept of an audit: the manifests audited and their findings (one evidence item
/// each, enough to sort and to name a path).
#[derive(Debug)]
pub(crate) struct Audited {
    /// `(platform, manifest digest)` per image audited.
    pub(crate) manifests: Vec<(String, String)>,
    pub(crate) findings: Vec<Finding>,
}

impl Audited {
    pub(crate) fn from_reports(reports: Vec<audit_core::Report>) -> Self {
        let several = reports.len() > 1;
        let mut manifests = Vec::new();
        let mut findings = Vec::new();
        for r in reports {
            let platform = r.image.platform.clone().unwrap_or_default();
            manifests.push((
                platform.clone(),
                r.image
                    .manifest_digest
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ));
            for mut f in r.findings {
                f.evidence.truncate(1);
                for e in &mut f.evidence {
                    e.detail = None;
                    e.history = None;
                }
                if several {
                    f.message = format!("[{platform}] {}", f.message);
                }
                findings.push(f);
            }
        }
        Self {
            manifests,
            findings,
        }
    }

    /// Estimated bytes held.
    fn weight(&self) -> u64 {
        256 + self
            .manifests
            .iter()
            .map(|(p, d)| 64 + p.len() + d.len())
            .sum::<usize>() as u64
            + self
                .findings
                .iter()
                .map(|f| {
                    256 + f.message.len()
                        + f.evidence
                            .iter()
                            .map(|e| 128 + e.path.as_ref().map_or(0, String::len))
                            .sum::<usize>()
                })
                .sum::<usize>() as u64
    }
}

/// Why an image has no verdict, or why it is refused outright.
pub(crate) enum Judged {
    Disallowed,
    Verdict(Digest, Arc<Audited>),
    NoVerdict(Option<Digest>, String),
}

/// What [`Engine::plan`] decided.
pub(crate) enum Planned {
    /// Answered without looking at images.
    Answer(Response),
    /// These images must be judged first.
    Judge(Plan),
}

/// A request whose images must be judged.
pub(crate) struct Plan {
    pub(crate) req: Request,
    /// `Kind namespace/name (subresource)`, for messages.
    what: String,
    t: Thresholds,
    /// Distinct images, in order, with where each is used.
    pub(crate) images: Vec<(String, Vec<String>)>,
}

pub(crate) struct Engine {
    pub(crate) policy: Policy,
    /// Built per audit, so the date for expiring ignores and the Go support table is today's.
    auditor: AuditorBuilder,
    pool: RegistryPool,
    pub(crate) layers: Arc<dyn LayerStore>,
    /// Verdicts shared with other replicas (`--cache redis://…`).
    shared: Option<Shared>,
    resolved: Memo<String, Result<Digest, Arc<str>>>,
    verdicts: Memo<Digest, Outcome>,
    slots: Arc<Semaphore>,
    pub(crate) settings: Settings,
    pub(crate) metrics: Metrics,
    /// The Harbor adapter's gauges, when it runs.
    pub(crate) harbor: std::sync::OnceLock<std::sync::Weak<crate::harbor::Harbor>>,
    /// Today's date, `YYYY-MM-DD`, asked once per audit.
    today: fn() -> String,
    prefetching: AtomicUsize,
    stopping: AtomicBool,
}

impl Engine {
    pub(crate) fn new(
        policy: Policy,
        auditor: AuditorBuilder,
        pool: RegistryPool,
        layers: Arc<dyn LayerStore>,
        shared: Option<Shared>,
        settings: Settings,
        today: fn() -> String,
    ) -> Self {
        Self {
            policy,
            auditor,
            pool,
            layers,
            shared,
            resolved: Memo::new(RESOLVE_CACHE_BYTES, MAX_RESOLUTIONS),
            verdicts: Memo::new(settings.cache_bytes, settings.max_queued_audits),
            slots: Arc::new(Semaphore::new(settings.max_audits.max(1))),
            settings,
            metrics: Metrics::new(),
            harbor: std::sync::OnceLock::new(),
            today,
            prefetching: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Ready: the start-up prefetch is done and no shutdown has begun.
    pub(crate) fn ready(&self) -> bool {
        self.prefetching.load(Ordering::SeqCst) == 0 && !self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// One of the `--max-audits` slots, shared by the webhook's audits and Harbor's scans.
    pub(crate) async fn audit_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// An auditor with today's date, the policy and the layer store.
    pub(crate) fn auditor(&self) -> audit_core::Auditor {
        self.auditor.clone().today((self.today)()).build()
    }

    /// Gauges for /metrics.
    pub(crate) fn render_metrics(&self) -> String {
        let (entries, bytes, flights) = self.verdicts.occupancy();
        let l = self.layers.stats();
        let running = self.settings.max_audits.max(1) - self.slots.available_permits();
        let harbor = self
            .harbor
            .get()
            .and_then(std::sync::Weak::upgrade)
            .map(|h| h.metrics())
            .unwrap_or_default();
        let mut gauges = vec![
            (
                "imgaudit_verdict_cache_entries",
                "Audit results cached.",
                entries as f64,
            ),
            (
                "imgaudit_verdict_cache_bytes",
                "Estimated bytes of cached audit results.",
                bytes as f64,
            ),
            (
                "imgaudit_verdict_cache_max_bytes",
                "Bound of the audit-result cache.",
                self.settings.cache_bytes as f64,
            ),
            (
                "imgaudit_audits_in_flight",
                "Audits queued or running.",
                flights as f64,
            ),
            ("imgaudit_audits_running", "Audits running.", running as f64),
            (
                "imgaudit_layer_cache_hits",
                "Layers served from the layer cache.",
                l.hits as f64,
            ),
            (
                "imgaudit_layer_cache_misses",
                "Layers analysed afresh.",
                l.misses as f64,
            ),
            (
                "imgaudit_layer_store_rejected",
                "Stored layer analyses not used: corrupt, forged, foreign version, oversized.",
                l.rejected as f64,
            ),
            (
                "imgaudit_layer_store_errors",
                "Layer store failures (Redis down or slow: lookups skipped while the circuit is open).",
                l.errors as f64,
            ),
            (
                "imgaudit_layer_store_writes",
                "Layer analyses written to the store.",
                l.writes as f64,
            ),
            (
                "imgaudit_layer_cache_entries",
                "Layer analyses cached.",
                l.entries as f64,
            ),
            (
                "imgaudit_layer_cache_bytes",
                "Estimated bytes of cached layer analyses.",
                l.bytes as f64,
            ),
            (
                "imgaudit_ready",
                "1 when /readyz answers 200.",
                if self.ready() { 1.0 } else { 0.0 },
            ),
        ];
        gauges.extend(harbor);
        self.metrics.render(&gauges)
    }

    /// Answers one AdmissionReview; a body that is not one is a [`BadReview`] (HTTP 400).
    pub(crate) async fn validate(
        self: &Arc<Self>,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Response, BadReview> {
        let plan = match self.plan(body)? {
            Planned::Answer(r) => return Ok(r),
            Planned::Judge(p) => p,
        };
        let mut tasks = Vec::with_capacity(plan.images.len());
        for (image, _) in &plan.images {
            let me = Arc::clone(self);
            let image = image.clone();
            tasks.push(tokio::spawn(
                async move { me.judge(&image, deadline).await },
            ));
        }
        let mut judged = Vec::with_capacity(tasks.len());
        for t in tasks {
            judged.push(
                t.await
                    .unwrap_or_else(|e| Judged::NoVerdict(None, format!("internal error: {e}"))),
            );
        }
        Ok(self.answer(&plan, judged))
    }

    /// Everything about a request that needs no registry: parse it, find its images, apply
    /// the namespace policy. Either the answer, or the distinct images to judge.
    pub(crate) fn plan(&self, body: &[u8]) -> Result<Planned, BadReview> {
        let req = review::parse(body)?;
        let subject = review::subject(&req)?;
        let ns = req.namespace.clone().unwrap_or_default();
        let sub = req
            .sub_resource
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        // The object as the answer's message and the log name it: text from the request,
        // made one printable line (a newline in a name would add lines to the message).
        let what = audit_core::error::one_line(&format!(
            "{} {}{}{sub}",
            req.kind.kind,
            if ns.is_empty() {
                String::new()
            } else {
                format!("{ns}/")
            },
            req.name.clone().unwrap_or_default()
        ))
        .into_owned();
        let allow = |decision: &str| {
            self.metrics.requests.inc(decision);
            Ok(Planned::Answer(Response {
                uid: req.uid.clone(),
                allowed: true,
                status: None,
                warnings: Vec::new(),
                audit_annotations: BTreeMap::new(),
            }))
        };
        let uses = match subject {
            Subject::Nothing => return allow("allow"),
            Subject::Unsupported(kind) => {
                tracing::info!(uid = %req.uid, %kind, "kind not inspected; allowed");
                return allow("allow");
            }
            Subject::Images(u) => u,
        };
        let t = match self.policy.admission.for_namespace(&ns) {
            NamespaceDecision::Exempt => {
                tracing::info!(uid = %req.uid, namespace = %ns, "namespace exempt; allowed");
                return allow("exempt");
            }
            NamespaceDecision::Judge(t) => t,
        };
        // Distinct images, in order, with where each is used.
        let mut images: Vec<(String, Vec<String>)> = Vec::new();
        for u in uses {
            match images.iter_mut().find(|(i, _)| *i == u.image) {
                Some((_, at)) => at.push(u.at),
                None => images.push((u.image, vec![u.at])),
            }
        }
        if images.len() > MAX_IMAGES_PER_REQUEST {
            return Err(BadReview(format!(
                "{} distinct images, more than the limit of {MAX_IMAGES_PER_REQUEST}",
                images.len()
            )));
        }
        Ok(Planned::Judge(Plan {
            req,
            what,
            t,
            images,
        }))
    }

    /// Turns per-image results into the response.
    pub(crate) fn answer(&self, plan: &Plan, judged: Vec<Judged>) -> Response {
        let Plan {
            req,
            what,
            t,
            images,
        } = plan;
        let a = &self.policy.admission;
        let mut lines: Vec<String> = Vec::new();
        let mut warnings: Vec<String> = Vec::new();
        let mut digests: Vec<String> = Vec::new();
        let mut denied_images = 0;
        let fp = match a.failure_policy {
            admission::FailurePolicy::FailOpen => "fail-open",
            admission::FailurePolicy::FailClosed => "fail-closed",
        };
        for ((image, _at), j) in images.iter().zip(judged) {
            let before = lines.len();
            match j {
                Judged::Disallowed => {
                    let why = "registry is not in the policy's allowed_registries";
                    match t.mode {
                        Mode::Enforce => lines.push(format!("{image}: {why}")),
                        Mode::Warn => warnings.push(format!("{}: {why}", short(image))),
                    }
                }
                Judged::NoVerdict(d, reason) => {
                    if let Some(d) = d {
                        digests.push(format!("{}@{d}", strip_digest(image)));
                    }
                    match a.without_verdict(t) {
                        Decision::Deny => lines.push(format!(
                            "{image}: no verdict ({reason}); denied by failure_policy {fp}"
                        )),
                        _ => warnings.push(format!(
                            "imgaudit: {} not checked ({reason}); allowed by failure_policy {fp}",
                            short(image)
                        )),
                    }
                }
                Judged::Verdict(d, audited) => {
                    let platforms: Vec<String> = audited
                        .manifests
                        .iter()
                        .filter(|(_, m)| *m != d.to_string())
                        .map(|(p, m)| format!("{p} {m}"))
                        .collect();
                    digests.push(if platforms.is_empty() {
                        format!("{}@{d}", strip_digest(image))
                    } else {
                        format!("{}@{d} ({})", strip_digest(image), platforms.join(", "))
                    });
                    let v = admission::decide(&audited.findings, t);
                    let pinned = format!("{}@{}", strip_digest(image), short_digest(&d));
                    for f in &v.blocking {
                        match t.mode {
                            Mode::Enforce => lines.push(format!(
                                "{pinned}: {} {} ({}): {}",
                                f.rule, f.name, f.severity, f.message
                            )),
                            Mode::Warn => warnings.push(warning(image, f)),
                        }
                    }
                    warnings.extend(v.warnings.iter().map(|f| warning(image, f)));
                }
            }
            if lines.len() > before {
                denied_images += 1;
            }
        }
        let allowed = lines.is_empty();
        let mut annotations = BTreeMap::new();
        if !digests.is_empty() {
            annotations.insert("images".to_string(), digests.join(", "));
        }
        let decision = if !allowed {
            "deny"
        } else if !warnings.is_empty() {
            "warn"
        } else {
            "allow"
        };
        annotations.insert("decision".to_string(), decision.to_string());
        self.metrics.requests.inc(decision);
        tracing::info!(uid = %req.uid, object = %what, operation = %req.operation, decision, images = images.len(), blocking = lines.len(), warnings = warnings.len(), "admission");
        let status = (!allowed).then(|| {
            let threshold = t.deny_on.map_or_else(|| "-".to_string(), |s| s.to_string());
            let headline = format!("imgaudit denied {what}: {denied_images} of {} images fail the policy (deny_on {threshold}):", images.len());
            Status { code: 403, reason: "Forbidden", message: review::message(&headline, &lines) }
        });
        Response {
            uid: req.uid.clone(),
            allowed,
            status,
            warnings: review::bound_warnings(warnings),
            audit_annotations: annotations,
        }
    }

    /// One image: allowed registry, digest, then a cached or fresh audit within the deadline.
    pub(crate) async fn judge(self: Arc<Self>, image: &str, deadline: Instant) -> Judged {
        let r = match ImageReference::parse(image) {
            Ok(r) => r,
            Err(e) => return Judged::NoVerdict(None, e.to_string()),
        };
        if !self.policy.admission.registry_allowed(&r) {
            return Judged::Disallowed;
        }
        let digest = match self.resolve(&r, deadline).await {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Judged::NoVerdict(None, e.to_string()),
            None => {
                self.metrics
                    .deadline_exceeded
                    .fetch_add(1, Ordering::Relaxed);
                // Finish in the background: the resolution (joined, not repeated), then start
                // the audit, so a later admission finds the verdict.
                let (me, r) = (Arc::clone(&self), r.clone());
                tokio::spawn(async move {
                    if let Some(Ok(d)) = me.resolve(&r, Instant::now() + BACKGROUND_WAIT).await {
                        let _ = me.outcome(&r, &d, Instant::now()).await;
                    }
                });
                return Judged::NoVerdict(
                    None,
                    "resolving the tag took longer than the deadline".into(),
                );
            }
        };
        match self.outcome(&r, &digest, deadline).await {
            Some(Outcome::Audited(a)) => Judged::Verdict(digest, a),
            Some(Outcome::Failed(e)) => Judged::NoVerdict(Some(digest), e.to_string()),
            None => {
                self.metrics
                    .deadline_exceeded
                    .fetch_add(1, Ordering::Relaxed);
                Judged::NoVerdict(Some(digest), "audit still running; retry shortly".into())
            }
        }
    }

    /// The digest a reference names now (single-flight, cached for `resolve_ttl`); `None`
    /// when the deadline passed first (the resolution goes on and is cached).
    async fn resolve(
        self: &Arc<Self>,
        r: &ImageReference,
        deadline: Instant,
    ) -> Option<Result<Digest, Arc<str>>> {
        if let Some(d) = r.digest() {
            return Some(Ok(d.clone()));
        }
        let key = r.to_string();
        let rx = match self.resolved.lookup(&key) {
            Lookup::Hit(v) => {
                self.metrics.resolve_hits.fetch_add(1, Ordering::Relaxed);
                return Some(v);
            }
            Lookup::Busy => return Some(Err("too many tag resolutions in flight".into())),
            Lookup::Wait(rx) => rx,
            Lookup::Start(rx) => {
                let me = Arc::clone(self);
                let fut = self.pool.resolve_digest(r.clone());
                tokio::spawn(async move {
                    let res = fut.await;
                    let (v, ttl) = match res {
                        Ok(d) => (Ok(d), me.settings.resolve_ttl),
                        Err(e) => {
                            me.metrics.registry_errors.inc(classify(&e));
                            (Err(Arc::from(e.to_string())), Duration::ZERO)
                        }
                    };
                    me.resolved.complete(&key, v, ttl, 200);
                });
                rx
            }
        };
        self.metrics.resolve_misses.fetch_add(1, Ordering::Relaxed);
        memo::wait(rx, deadline).await
    }

    /// The audit result for `digest`: cached, joined, or started.
    async fn outcome(
        self: &Arc<Self>,
        r: &ImageReference,
        digest: &Digest,
        deadline: Instant,
    ) -> Option<Outcome> {
        let rx = match self.verdicts.lookup(digest) {
            Lookup::Hit(o) => {
                self.metrics.verdict_hits.fetch_add(1, Ordering::Relaxed);
                return Some(o);
            }
            Lookup::Busy => {
                return Some(Outcome::Failed(
                    format!(
                        "more than {} audits queued",
                        self.settings.max_queued_audits
                    )
                    .into(),
                ))
            }
            Lookup::Wait(rx) => rx,
            Lookup::Start(rx) => {
                self.start_audit(r.with_digest(digest.clone()), digest.clone());
                rx
            }
        };
        self.metrics.verdict_misses.fetch_add(1, Ordering::Relaxed);
        memo::wait(rx, deadline).await
    }

    /// Audits `pinned` on its own thread once a slot is free, then completes the flight.
    fn start_audit(self: &Arc<Self>, pinned: ImageReference, digest: Digest) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _slot = Arc::clone(&me.slots).acquire_owned().await;
            let started = std::time::Instant::now();
            let (worker, target, d) = (Arc::clone(&me), pinned.clone(), digest.clone());
            let result = on_audit_thread("imgaudit-audit", move || {
                // Another replica may have audited it, or be auditing it now.
                let turn = worker.shared.as_ref().map(|s| s.turn(&d));
                let locked = match turn {
                    Some(Turn::Verdict(a)) => return Ok((a, true)),
                    Some(Turn::Audit { locked }) => locked,
                    None => false,
                };
                let auditor = worker.auditor.clone().today((worker.today)()).build();
                let r = worker
                    .pool
                    .store(target.clone())
                    .map_err(Error::from)
                    .and_then(|s| auditor.audit(&Source::Blobs(Box::new(s)), &target.to_string()))
                    .map(|reports| (Audited::from_reports(reports), false));
                if let Some(s) = &worker.shared {
                    let a = r.as_ref().ok().map(|(a, _)| a);
                    s.publish(&d, a, worker.settings.cache_ttl, locked);
                }
                r
            })
            .await;
            me.metrics.audit_seconds.observe(started.elapsed());
            let (outcome, ttl, weight) = match result {
                Ok((a, from_replica)) => {
                    me.metrics
                        .audits
                        .inc(if from_replica { "shared" } else { "ok" });
                    let w = a.weight();
                    tracing::info!(image = %pinned, findings = a.findings.len(), ms = started.elapsed().as_millis() as u64, shared = from_replica, "audited");
                    (Outcome::Audited(Arc::new(a)), me.settings.cache_ttl, w)
                }
                Err(e) => {
                    me.metrics.audits.inc("error");
                    if let Error::Source(s) = &e {
                        me.metrics.registry_errors.inc(classify(s));
                    }
                    tracing::warn!(image = %pinned, error = %e, "audit failed");
                    (
                        Outcome::Failed(Arc::from(e.to_string())),
                        me.settings.error_ttl,
                        512,
                    )
                }
            };
            me.verdicts.complete(&digest, outcome, ttl, weight);
        });
    }

    /// Resolves and audits `image` to completion (no deadline): the prefetch.
    pub(crate) async fn warm(self: Arc<Self>, image: String) -> Result<(), String> {
        let r = ImageReference::parse(&image).map_err(|e| e.to_string())?;
        if !self.policy.admission.registry_allowed(&r) {
            return Err("registry is not in the policy's allowed_registries".into());
        }
        let far = Instant::now() + BACKGROUND_WAIT;
        let d = match self.resolve(&r, far).await {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("resolution did not finish".into()),
        };
        match self.outcome(&r, &d, far).await {
            Some(Outcome::Audited(_)) => Ok(()),
            Some(Outcome::Failed(e)) => Err(e.to_string()),
            None => Err("audit did not finish".into()),
        }
    }

    /// Audits a list at start-up; readiness waits for it.
    pub(crate) fn prefetch_at_start(self: &Arc<Self>, images: Vec<String>) {
        self.prefetching.store(1, Ordering::SeqCst);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let n = images.len();
            let tasks: Vec<_> = images
                .into_iter()
                .map(|i| (i.clone(), tokio::spawn(Arc::clone(&me).warm(i))))
                .collect();
            let mut failed = 0;
            for (image, t) in tasks {
                if let Ok(Err(e)) = t.await {
                    failed += 1;
                    tracing::warn!(%image, error = %e, "prefetch failed");
                }
            }
            tracing::info!(images = n, failed, "prefetch done");
            me.prefetching.store(0, Ordering::SeqCst);
        });
    }
}

/// A warning line: `app:1: GO003 high: message`.
fn warning(image: &str, f: &Finding) -> String {
    format!("{}: {} {}: {}", short(image), f.rule, f.severity, f.message)
}

/// The last path component of a reference, without digest (`app:1`), for warnings.
fn short(image: &str) -> &str {
    let base = strip_digest(image);
    base.rsplit('/').next().unwrap_or(base)
}

fn strip_digest(image: &str) -> &str {
    image.split('@').next().unwrap_or(image)
}

fn short_digest(d: &Digest) -> String {
    d.to_string().chars().take(7 + 12).collect()
}

/// The metrics label of a registry failure.
fn classify(e: &SourceError) -> &'static str {
    match e {
        SourceError::Unreachable { .. } => "unreachable",
        SourceError::Timeout { .. } => "timeout",
        SourceError::Unauthorized { .. }
        | SourceError::Forbidden { .. }
        | SourceError::Credentials { .. } => "unauthorized",
        SourceError::ManifestUnknown { .. } | SourceError::MissingBlob { .. } => "not_found",
        SourceError::Tls { .. } => "tls",
        SourceError::RateLimited { .. } => "rate_limited",
        _ => "other",
    }
}

/// Runs `work` (an audit: CPU-bound and blocking I/O, which must not hold a runtime worker) on
/// its own OS thread named `name`, and waits for its result. A thread that cannot be started
/// or dies without an answer is an audit error.
pub(crate) async fn on_audit_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(work());
        });
    match spawned {
        Ok(_) => rx.await.unwrap_or_else(|_| {
            Err(Error::Source(SourceError::BadLayers {
                reason: "the audit thread failed".into(),
            }))
        }),
        Err(e) => Err(Error::Source(SourceError::BadLayers {
            reason: format!("starting an audit thread: {e}"),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short("127.0.0.1:5000/ns/app:1@sha256:abc"), "app:1");
        assert_eq!(short("nginx"), "nginx");
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(short_digest(&d), "sha256:abababababab");
    }
}
