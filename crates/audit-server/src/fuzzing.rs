//! Entry point for the cargo-fuzz target `admission_review` in `fuzz/` (feature `fuzzing`;
//! not a public API): a request body through everything the webhook does without a
//! registry. The unit test replays `testdata/fuzz-regressions/admission_review/`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use audit_core::finding::{Evidence, Finding, Severity};
use audit_core::source::{ImageReference, RegistryPool, SourceOptions};
use audit_core::store::MemoryStore;
use audit_core::Auditor;
use audit_core::Digest;
use audit_core::PolicyFile;

use crate::engine::{Audited, Engine, Judged, Planned, Settings};
use crate::review::{MAX_LINE_CHARS, MAX_MESSAGE_LINES, MAX_WARNINGS, MAX_WARNING_CHARS};

/// The policy the fuzzed requests meet: exempt and warn-mode namespaces, a stricter one,
/// allowed registries, and `fail-closed`, so every kind of answer can be reached.
const POLICY: &str = r#"
fail_on = "high"
[admission]
warn_on = "low"
failure_policy = "fail-closed"
exempt_namespaces = ["kube-*"]
allowed_registries = ["registry.example.com", "docker.io", "ghcr.io/acme/**"]
[[admission.namespace]]
name = "dev-*"
mode = "warn"
[[admission.namespace]]
name = "payments"
deny_on = "medium"
"#;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let policy = PolicyFile::parse(POLICY)
            .and_then(PolicyFile::validate)
            .expect("the fuzzing policy is valid");
        Engine::new(
            policy,
            Auditor::builder(),
            RegistryPool::new(&SourceOptions::new()).expect("a registry pool"),
            Arc::new(MemoryStore::new(1 << 20)),
            None,
            Settings {
                deadline: Duration::from_secs(1),
                resolve_ttl: Duration::ZERO,
                cache_ttl: Duration::ZERO,
                error_ttl: Duration::ZERO,
                cache_bytes: 1 << 20,
                max_audits: 1,
                max_queued_audits: 1,
                provider_deadline: Duration::from_secs(1),
            },
            || "2026-01-01".to_string(),
        )
    })
}

/// A request body: parsed and planned as the webhook does; its images judged without a
/// registry (a disallowed registry as the policy says, then by turns no verdict or a verdict
/// with a finding of each severity); the answer written. The answer must echo the uid and
/// keep the bounds on warnings and message lines.
pub fn admission_review(body: &[u8]) {
    let e = engine();
    let plan = match e.plan(body) {
        Ok(Planned::Judge(p)) => p,
        Ok(Planned::Answer(r)) => return check(&r.to_json(), None),
        Err(_) => return,
    };
    let judged = plan
        .images
        .iter()
        .enumerate()
        .map(|(i, (image, _))| match ImageReference::parse(image) {
            Err(err) => Judged::NoVerdict(None, err.to_string()),
            Ok(r) if !e.policy.admission.registry_allowed(&r) => Judged::Disallowed,
            Ok(_) if i % 2 == 0 => Judged::NoVerdict(None, "registry unreachable".into()),
            Ok(_) => Judged::Verdict(
                Digest::sha256_of(image.as_bytes()),
                Arc::new(Audited {
                    manifests: vec![("linux/amd64".into(), "sha256:fuzz".into())],
                    findings: findings(image),
                }),
            ),
        })
        .collect();
    let uid = plan.req.uid.clone();
    check(&e.answer(&plan, judged).to_json(), Some(&uid));
}

fn findings(image: &str) -> Vec<Finding> {
    audit_core::rules::RULES
        .iter()
        .zip(Severity::ALL)
        .map(|(r, severity)| Finding {
            rule: r.id,
            name: r.name,
            severity,
            message: format!("{image} {}", r.summary),
            evidence: vec![Evidence {
                path: Some(format!("/{image}")),
                ..Default::default()
            }],
            remediation: r.remediation.into(),
        })
        .collect()
}

fn check(answer: &[u8], uid: Option<&str>) {
    let v: serde_json::Value = serde_json::from_slice(answer).expect("the answer is JSON");
    assert_eq!(v["kind"], "AdmissionReview");
    let r = &v["response"];
    if let Some(uid) = uid {
        assert_eq!(r["uid"], uid, "the uid is echoed");
    }
    let warnings = r["warnings"].as_array().map_or(&[][..], Vec::as_slice);
    assert!(warnings.len() <= MAX_WARNINGS);
    for w in warnings {
        let w = w.as_str().expect("a warning is a string");
        assert!(w.chars().count() <= MAX_WARNING_CHARS, "{w:?}");
        assert!(!w.chars().any(char::is_control), "{w:?}");
    }
    if let Some(m) = r["status"]["message"].as_str() {
        let lines: Vec<&str> = m.split('\n').collect();
        assert!(lines.len() <= MAX_MESSAGE_LINES + 2, "{m:?}");
        // The headline is one line whatever the request's names hold.
        assert!(
            lines[0].starts_with("imgaudit denied ") && lines[0].ends_with("):"),
            "{m:?}"
        );
        assert!(!lines[0].chars().any(char::is_control), "{m:?}");
        for l in &lines[1..] {
            assert!(l.chars().count() <= MAX_LINE_CHARS, "{l:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays every kept fuzzer input through the target.
    #[test]
    fn fuzz_regressions_replay() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/fuzz-regressions/admission_review");
        let Ok(files) = std::fs::read_dir(&dir) else {
            return;
        };
        for f in files {
            let p = f.unwrap().path();
            eprintln!("replaying {}", p.display());
            super::admission_review(&std::fs::read(&p).unwrap());
        }
    }
}
