//! Verdicts shared by replicas through Redis (`--cache redis://…`), and the cross-replica
//! single-flight lock.
//!
//! Keys (after the store's `imgaudit::` prefix): `verdict:<scope>:<manifest digest>` holds the
//! findings of an audit, sealed with the shared key like layer entries; `lock:<scope>:<digest>`
//! is taken with `SET NX PX` by the replica that audits, so N replicas asked about one new image
//! at once audit it once: the others poll for the verdict until the lock is gone, then take it
//! themselves (the holder failed or died). `<scope>` is a SHA-256 of everything besides the
//! image that decides findings: the imgaudit version, the policy, the platform choice and the
//! layer analysis fingerprint.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_core::finding::{Evidence, Finding, LayerRef, Severity};
use audit_core::store::RedisStore;
use audit_core::Digest;
use serde::{Deserialize, Serialize};

use super::engine::Audited;

/// How long a lock lives when its holder dies without releasing it: 10 minutes (the
/// registry's whole-pull bound is longer, but a verdict that takes that long is past every
/// admission deadline anyway).
const LOCK_TTL: Duration = Duration::from_secs(600);
/// How often a waiting replica looks for the verdict: 50 ms.
const POLL: Duration = Duration::from_millis(50);

/// The shared verdicts of one scope.
pub(crate) struct Shared {
    redis: Arc<RedisStore>,
    scope: String,
    token: String,
}

/// What a replica should do about an image.
pub(crate) enum Turn {
    /// Another replica audited it.
    Verdict(Audited),
    /// Audit it (the lock is held, or Redis is unavailable); then [`Shared::publish`].
    Audit { locked: bool },
}

#[derive(Serialize, Deserialize)]
struct Wire {
    manifests: Vec<(String, String)>,
    findings: Vec<WireFinding>,
}

#[derive(Serialize, Deserialize)]
struct WireFinding {
    rule: String,
    severity: Severity,
    message: String,
    path: Option<String>,
    layer: Option<(usize, Digest)>,
    remediation: String,
}

impl Shared {
    pub(crate) fn new(redis: Arc<RedisStore>, scope_parts: &str) -> Self {
        use sha2::Digest as _;
        let scope = hex::encode(sha2::Sha256::digest(
            format!("{}\n{scope_parts}", env!("CARGO_PKG_VERSION")).as_bytes(),
        ));
        let token = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        Self {
            redis,
            scope: scope[..32].to_string(),
            token,
        }
    }

    fn verdict_name(&self, d: &Digest) -> String {
        format!("verdict:{}:{d}", self.scope)
    }

    fn lock_name(&self, d: &Digest) -> String {
        format!("lock:{}:{d}", self.scope)
    }

    /// The verdict another replica published, if any.
    pub(crate) fn lookup(&self, d: &Digest) -> Option<Audited> {
        let bytes = self.redis.get_sealed(&self.verdict_name(d))?;
        let w: Wire = serde_json::from_slice(&bytes).ok()?;
        let findings = w
            .findings
            .into_iter()
            .map(|f| {
                let rule = audit_core::rules::find(&f.rule)?;
                Some(Finding {
                    rule: rule.id,
                    name: rule.name,
                    severity: f.severity,
                    message: f.message,
                    evidence: vec![Evidence {
                        path: f.path,
                        layer: f.layer.map(|(index, digest)| LayerRef { index, digest }),
                        ..Evidence::default()
                    }],
                    remediation: Cow::Owned(f.remediation),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Audited {
            manifests: w.manifests,
            findings,
        })
    }

    /// Blocks (on an audit thread) until this replica should audit `d`, or another replica's
    /// verdict arrives. Waits at most [`LOCK_TTL`].
    pub(crate) fn turn(&self, d: &Digest) -> Turn {
        let started = Instant::now();
        loop {
            if let Some(v) = self.lookup(d) {
                return Turn::Verdict(v);
            }
            match self
                .redis
                .try_lock(&self.lock_name(d), &self.token, LOCK_TTL)
            {
                Some(true) => {
                    // The verdict may have been published between the lookup and the lock.
                    if let Some(v) = self.lookup(d) {
                        self.redis.unlock(&self.lock_name(d), &self.token);
                        return Turn::Verdict(v);
                    }
                    return Turn::Audit { locked: true };
                }
                None => return Turn::Audit { locked: false },
                Some(false) if started.elapsed() > LOCK_TTL => {
                    return Turn::Audit { locked: false }
                }
                Some(false) => std::thread::sleep(POLL),
            }
        }
    }

    /// Publishes a verdict for `ttl` (or only releases the lock when the audit failed: a
    /// failure is not shared, each replica retries after its error TTL).
    pub(crate) fn publish(
        &self,
        d: &Digest,
        audited: Option<&Audited>,
        ttl: Duration,
        locked: bool,
    ) {
        if let Some(a) = audited {
            let w = Wire {
                manifests: a.manifests.clone(),
                findings: a
                    .findings
                    .iter()
                    .map(|f| {
                        let e = f.evidence.first();
                        WireFinding {
                            rule: f.rule.to_string(),
                            severity: f.severity,
                            message: f.message.clone(),
                            path: e.and_then(|e| e.path.clone()),
                            layer: e
                                .and_then(|e| e.layer.as_ref())
                                .map(|l| (l.index, l.digest.clone())),
                            remediation: f.remediation.to_string(),
                        }
                    })
                    .collect(),
            };
            if let Ok(bytes) = serde_json::to_vec(&w) {
                self.redis
                    .put_sealed(&self.verdict_name(d), &bytes, Some(ttl));
            }
        }
        if locked {
            self.redis.unlock(&self.lock_name(d), &self.token);
        }
    }
}
