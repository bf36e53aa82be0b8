//! Admission decisions: findings + policy → [`Verdict`]. Pure and synchronous; the webhook
//! (HTTP, TLS, the AdmissionReview envelope, caches and deadlines) lives in the CLI's
//! `imgaudit serve`, and the CLI's `--fail-on` exit status uses the same [`decide`].
//!
//! A verdict sorts findings into three piles by two thresholds:
//! * `deny_on` and above: **blocking** — the request is denied (in `warn` mode they are
//!   returned as warnings and the request is allowed);
//! * `warn_on` up to `deny_on`: **warnings**, returned to the client without blocking;
//! * below `warn_on`: ignored.
//!
//! The `[admission]` table of a policy file ([`AdmissionPolicy`]) adds namespace exemptions,
//! per-namespace thresholds, allowed registries and what to do when no verdict can be had in
//! time (`failure_policy`).
//!
//! ```
//! use audit_core::admission::{decide, Decision, Mode, Thresholds};
//! use audit_core::finding::Severity;
//!
//! let t = Thresholds { deny_on: Some(Severity::High), warn_on: Some(Severity::Medium), mode: Mode::Enforce };
//! assert_eq!(decide(&[], &t).decision, Decision::Allow);
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::PolicyError;
use crate::finding::{Finding, Severity};
use crate::source::ImageReference;

/// Whether blocking findings deny the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Deny on blocking findings.
    #[default]
    Enforce,
    /// Never deny: blocking findings become warnings (a dry run of a policy).
    Warn,
}

/// What the webhook answers when it has no verdict in time (audit still running, registry
/// unreachable, image not auditable): like the API server's `failurePolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Allow, with a warning saying why.
    #[default]
    FailOpen,
    /// Deny, saying why.
    FailClosed,
}

/// The thresholds in force for one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Findings at or above this severity block (`None`: nothing blocks).
    pub deny_on: Option<Severity>,
    /// Findings at or above this severity, and below `deny_on`, are warnings.
    pub warn_on: Option<Severity>,
    /// Enforce or only warn.
    pub mode: Mode,
}

/// The outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to say.
    Allow,
    /// Allowed, with warnings.
    Warn,
    /// Denied.
    Deny,
}

/// A decision with the findings behind it, most severe first.
#[derive(Clone, Debug)]
pub struct Verdict<'a> {
    /// The outcome.
    pub decision: Decision,
    /// Findings at or above `deny_on` (they deny unless the mode is `warn`).
    pub blocking: Vec<&'a Finding>,
    /// Findings between `warn_on` and `deny_on`.
    pub warnings: Vec<&'a Finding>,
}

impl Verdict<'_> {
    /// Whether the request is denied (the CLI exits 1).
    pub fn denied(&self) -> bool {
        self.decision == Decision::Deny
    }
}

/// Sorts findings by the thresholds and decides.
pub fn decide<'a>(findings: &'a [Finding], t: &Thresholds) -> Verdict<'a> {
    let mut blocking = Vec::new();
    let mut warnings = Vec::new();
    for f in findings {
        if t.deny_on.is_some_and(|d| f.severity >= d) {
            blocking.push(f);
        } else if t.warn_on.is_some_and(|w| f.severity >= w) {
            warnings.push(f);
        }
    }
    blocking.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    warnings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let decision = match (blocking.is_empty(), warnings.is_empty(), t.mode) {
        (false, _, Mode::Enforce) => Decision::Deny,
        (false, _, Mode::Warn) | (true, false, _) => Decision::Warn,
        (true, true, _) => Decision::Allow,
    };
    Verdict {
        decision,
        blocking,
        warnings,
    }
}

/// Default `warn_on` of the webhook: `medium` (low and info findings are hygiene that would
/// only add noise to every `kubectl apply`).
pub const DEFAULT_WARN_ON: Severity = Severity::Medium;

/// Default `deny_on` of the webhook when neither `[admission] deny_on` nor `fail_on` is set.
pub const DEFAULT_DENY_ON: Severity = Severity::High;

/// A glob as written and compiled.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// As written.
    pub text: String,
    matcher: globset::GlobMatcher,
}

impl Pattern {
    /// Compiles `text` (named `key` in errors); with `literal_separator`, `*` does not match
    /// `/`.
    pub(crate) fn new(key: &str, text: &str, literal_separator: bool) -> Result<Self, PolicyError> {
        if text.is_empty() {
            return Err(PolicyError::Invalid {
                key: key.to_string(),
                reason: "empty pattern".into(),
            });
        }
        let matcher = globset::GlobBuilder::new(text)
            .literal_separator(literal_separator)
            .build()
            .map_err(|e| PolicyError::Invalid {
                key: key.to_string(),
                reason: format!("bad glob {text:?}: {e}"),
            })?
            .compile_matcher();
        Ok(Self {
            text: text.to_string(),
            matcher,
        })
    }

    /// Whether `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.matcher.is_match(s)
    }
}

/// Thresholds for the namespaces a glob matches (first matching entry wins).
#[derive(Clone, Debug)]
pub struct NamespaceRule {
    /// Namespace glob.
    pub name: Pattern,
    /// Overrides; `None` keeps the global value.
    pub deny_on: Option<Severity>,
    /// Overrides; `None` keeps the global value.
    pub warn_on: Option<Severity>,
    /// Overrides; `None` keeps the global value.
    pub mode: Option<Mode>,
}

/// What a namespace gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceDecision {
    /// Exempt: allowed without looking at images.
    Exempt,
    /// Judged with these thresholds.
    Judge(Thresholds),
}

/// The validated `[admission]` table.
#[derive(Clone, Debug)]
pub struct AdmissionPolicy {
    /// Global thresholds.
    pub thresholds: Thresholds,
    /// Namespaces (globs) that are never checked.
    pub exempt_namespaces: Vec<Pattern>,
    /// Per-namespace thresholds, first match wins.
    pub namespaces: Vec<NamespaceRule>,
    /// When not empty, images must come from these registries or repositories.
    pub allowed_registries: Vec<Pattern>,
    /// What to answer without a verdict.
    pub failure_policy: FailurePolicy,
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        Self {
            thresholds: Thresholds {
                deny_on: Some(DEFAULT_DENY_ON),
                warn_on: Some(DEFAULT_WARN_ON),
                mode: Mode::Enforce,
            },
            exempt_namespaces: Vec::new(),
            namespaces: Vec::new(),
            allowed_registries: Vec::new(),
            failure_policy: FailurePolicy::FailOpen,
        }
    }
}

impl AdmissionPolicy {
    /// Exempt, or the thresholds for `namespace` (empty for cluster-scoped objects).
    pub fn for_namespace(&self, namespace: &str) -> NamespaceDecision {
        if self.exempt_namespaces.iter().any(|p| p.is_match(namespace)) {
            return NamespaceDecision::Exempt;
        }
        let mut t = self.thresholds;
        if let Some(r) = self.namespaces.iter().find(|r| r.name.is_match(namespace)) {
            t.deny_on = r.deny_on.or(t.deny_on);
            t.warn_on = r.warn_on.or(t.warn_on);
            t.mode = r.mode.unwrap_or(t.mode);
        }
        NamespaceDecision::Judge(t)
    }

    /// Whether the image's registry (and repository) is allowed. An entry without `/` names
    /// a registry host (`registry.example.com`, `host:5000`, `docker.io`); otherwise it is a
    /// glob over `registry/repository` (`ghcr.io/acme/*`, `docker.io/library/**`), where `*`
    /// stays within one path component and `**` crosses them.
    pub fn registry_allowed(&self, image: &ImageReference) -> bool {
        if self.allowed_registries.is_empty() {
            return true;
        }
        let name = image.name();
        self.allowed_registries.iter().any(|p| {
            if p.text.contains('/') {
                p.is_match(&name)
            } else {
                p.text.eq_ignore_ascii_case(image.registry())
            }
        })
    }

    /// The decision when no verdict is available, given the thresholds in force.
    pub fn without_verdict(&self, t: &Thresholds) -> Decision {
        match (self.failure_policy, t.mode) {
            (FailurePolicy::FailClosed, Mode::Enforce) => Decision::Deny,
            _ => Decision::Warn,
        }
    }
}

/// The `[admission]` table as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionFile {
    /// Severity at and above which findings deny (default: `fail_on`, else `high`).
    pub deny_on: Option<String>,
    /// Severity at and above which findings become warnings (default `medium`).
    pub warn_on: Option<String>,
    /// `enforce` (default) or `warn`.
    pub mode: Option<String>,
    /// `fail-open` (default) or `fail-closed`.
    pub failure_policy: Option<String>,
    /// Namespace globs never checked.
    #[serde(default)]
    pub exempt_namespaces: Vec<String>,
    /// Registry hosts or `registry/repository` globs images must come from.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
    /// Per-namespace thresholds.
    #[serde(default)]
    pub namespace: Vec<NamespaceFile>,
}

/// One `[[admission.namespace]]` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFile {
    /// Namespace glob.
    pub name: String,
    /// Override of `deny_on`.
    pub deny_on: Option<String>,
    /// Override of `warn_on`.
    pub warn_on: Option<String>,
    /// Override of `mode`.
    pub mode: Option<String>,
}

fn severity(key: &str, v: &Option<String>) -> Result<Option<Severity>, PolicyError> {
    v.as_deref()
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|reason| PolicyError::Invalid {
                    key: key.to_string(),
                    reason,
                })
        })
        .transpose()
}

fn mode(key: &str, v: &Option<String>) -> Result<Option<Mode>, PolicyError> {
    v.as_deref()
        .map(|s| match s {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            _ => Err(PolicyError::Invalid {
                key: key.to_string(),
                reason: format!("unknown mode {s:?} (expected enforce or warn)"),
            }),
        })
        .transpose()
}

impl AdmissionFile {
    /// Validates the table; `fail_on` is the policy's, the default of `deny_on`. Errors name
    /// the key (`admission.namespace[1].deny_on: …`).
    pub fn validate(&self, fail_on: Option<Severity>) -> Result<AdmissionPolicy, PolicyError> {
        let mut p = AdmissionPolicy::default();
        p.thresholds.deny_on = severity("admission.deny_on", &self.deny_on)?
            .or(fail_on)
            .or(Some(DEFAULT_DENY_ON));
        if let Some(w) = severity("admission.warn_on", &self.warn_on)? {
            p.thresholds.warn_on = Some(w);
        }
        p.thresholds.mode = mode("admission.mode", &self.mode)?.unwrap_or_default();
        p.failure_policy = match self.failure_policy.as_deref() {
            None | Some("fail-open") => FailurePolicy::FailOpen,
            Some("fail-closed") => FailurePolicy::FailClosed,
            Some(s) => {
                return Err(PolicyError::Invalid {
                    key: "admission.failure_policy".into(),
                    reason: format!(
                        "unknown failure policy {s:?} (expected fail-open or fail-closed)"
                    ),
                })
            }
        };
        for (i, n) in self.exempt_namespaces.iter().enumerate() {
            p.exempt_namespaces.push(Pattern::new(
                &format!("admission.exempt_namespaces[{i}]"),
                n,
                true,
            )?);
        }
        for (i, r) in self.allowed_registries.iter().enumerate() {
            let key = format!("admission.allowed_registries[{i}]");
            let r = r.trim_end_matches('/');
            if r.contains("://") || r.contains('@') || r.chars().any(char::is_whitespace) {
                return Err(PolicyError::Invalid {
                    key,
                    reason: format!("{r:?} is not a registry host or a registry/repository glob"),
                });
            }
            p.allowed_registries.push(Pattern::new(&key, r, true)?);
        }
        let mut seen = BTreeMap::new();
        for (i, n) in self.namespace.iter().enumerate() {
            let key = format!("admission.namespace[{i}]");
            if let Some(j) = seen.insert(n.name.clone(), i) {
                return Err(PolicyError::Invalid {
                    key: format!("{key}.name"),
                    reason: format!("{:?} is already admission.namespace[{j}]", n.name),
                });
            }
            p.namespaces.push(NamespaceRule {
                name: Pattern::new(&format!("{key}.name"), &n.name, true)?,
                deny_on: severity(&format!("{key}.deny_on"), &n.deny_on)?,
                warn_on: severity(&format!("{key}.warn_on"), &n.warn_on)?,
                mode: mode(&format!("{key}.mode"), &n.mode)?,
            });
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, PolicyFile};

    fn f(rule: &'static str, severity: Severity) -> Finding {
        Finding {
            rule,
            name: "x",
            severity,
            message: format!("{rule} fired"),
            evidence: vec![],
            remediation: "".into(),
        }
    }

    fn t(deny: Option<Severity>, warn: Option<Severity>, mode: Mode) -> Thresholds {
        Thresholds {
            deny_on: deny,
            warn_on: warn,
            mode,
        }
    }

    #[test]
    fn thresholds_sort_findings_into_blocking_and_warnings() {
        use Severity::*;
        let fs = vec![
            f("FS001", Low),
            f("GO001", Critical),
            f("CFG001", Medium),
            f("GO003", High),
            f("FS007", Info),
        ];
        let v = decide(&fs, &t(Some(High), Some(Medium), Mode::Enforce));
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(
            v.blocking.iter().map(|f| f.rule).collect::<Vec<_>>(),
            ["GO001", "GO003"],
            "most severe first"
        );
        assert_eq!(
            v.warnings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            ["CFG001"]
        );
        assert!(v.denied());

        let v = decide(&fs, &t(Some(High), Some(Low), Mode::Warn));
        assert_eq!(v.decision, Decision::Warn, "warn mode never denies");
        assert_eq!((v.blocking.len(), v.warnings.len()), (2, 2));

        let v = decide(&fs, &t(Some(Critical), Some(Critical), Mode::Enforce));
        assert_eq!(
            (v.decision, v.warnings.len()),
            (Decision::Deny, 0),
            "warn_on at deny_on: nothing in between"
        );

        let v = decide(&fs[..1], &t(Some(High), Some(Low), Mode::Enforce));
        assert_eq!(v.decision, Decision::Warn);
        let v = decide(&fs[..1], &t(Some(High), Some(Medium), Mode::Enforce));
        assert_eq!(v.decision, Decision::Allow);
        let v = decide(&fs, &t(None, None, Mode::Enforce));
        assert_eq!(v.decision, Decision::Allow, "no thresholds: nothing to say");
        assert_eq!(
            decide(&[], &t(Some(Info), Some(Info), Mode::Enforce)).decision,
            Decision::Allow
        );
    }

    fn load(text: &str) -> Result<Policy, String> {
        PolicyFile::parse(text)
            .and_then(PolicyFile::validate)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn admission_table_defaults_and_namespaces() {
        let p = load("").unwrap().admission;
        assert_eq!(
            p.thresholds,
            t(Some(Severity::High), Some(Severity::Medium), Mode::Enforce)
        );
        assert_eq!(p.failure_policy, FailurePolicy::FailOpen);
        let p = load("fail_on = \"critical\"").unwrap().admission;
        assert_eq!(
            p.thresholds.deny_on,
            Some(Severity::Critical),
            "deny_on defaults to fail_on"
        );

        let p = load(
            r#"
            fail_on = "critical"
            [admission]
            deny_on = "high"
            warn_on = "low"
            failure_policy = "fail-closed"
            exempt_namespaces = ["kube-*", "imgaudit"]
            allowed_registries = ["registry.example.com", "ghcr.io/acme/*", "docker.io/library/**"]
            [[admission.namespace]]
            name = "dev-*"
            mode = "warn"
            [[admission.namespace]]
            name = "payments"
            deny_on = "medium"
            "#,
        )
        .unwrap()
        .admission;
        assert_eq!(p.failure_policy, FailurePolicy::FailClosed);
        assert_eq!(p.for_namespace("kube-system"), NamespaceDecision::Exempt);
        assert_eq!(p.for_namespace("imgaudit"), NamespaceDecision::Exempt);
        assert_eq!(
            p.for_namespace("default"),
            NamespaceDecision::Judge(t(Some(Severity::High), Some(Severity::Low), Mode::Enforce))
        );
        assert_eq!(
            p.for_namespace("dev-alice"),
            NamespaceDecision::Judge(t(Some(Severity::High), Some(Severity::Low), Mode::Warn))
        );
        assert_eq!(
            p.for_namespace("payments"),
            NamespaceDecision::Judge(t(
                Some(Severity::Medium),
                Some(Severity::Low),
                Mode::Enforce
            ))
        );
        let warn = t(Some(Severity::High), None, Mode::Warn);
        assert_eq!(
            p.without_verdict(&warn),
            Decision::Warn,
            "warn mode never denies, even fail-closed"
        );
        assert_eq!(
            p.without_verdict(&t(Some(Severity::High), None, Mode::Enforce)),
            Decision::Deny
        );

        let r = |s: &str| ImageReference::parse(s).unwrap();
        assert!(p.registry_allowed(&r("registry.example.com/any/depth/app:1")));
        assert!(p.registry_allowed(&r("ghcr.io/acme/app@sha256:0123456789012345678901234567890123456789012345678901234567890123")));
        assert!(
            !p.registry_allowed(&r("ghcr.io/acme/team/app:1")),
            "* stays in one component"
        );
        assert!(!p.registry_allowed(&r("ghcr.io/evil/app:1")));
        assert!(
            p.registry_allowed(&r("nginx:1.27")),
            "docker.io/library/nginx"
        );
        assert!(!p.registry_allowed(&r("bitnami/nginx")));
        assert!(!p.registry_allowed(&r("registry.example.com.evil.io/app")));
        assert!(AdmissionPolicy::default().registry_allowed(&r("anything.io/x")));
    }

    #[test]
    fn admission_errors_name_the_key() {
        let cases = [
            ("[admission]\ndeny_on = \"loud\"", "admission.deny_on: unknown severity"),
            ("[admission]\nmode = \"audit\"", "admission.mode: unknown mode \"audit\""),
            ("[admission]\nfailure_policy = \"Ignore\"", "admission.failure_policy: unknown failure policy"),
            ("[admission]\nallowed_registries = [\"https://x.io\"]", "admission.allowed_registries[0]:"),
            ("[admission]\nexempt_namespaces = [\"a\", \"[\"]", "admission.exempt_namespaces[1]: bad glob"),
            (
                "[[admission.namespace]]\nname = \"a\"\n[[admission.namespace]]\nname = \"b\"\nwarn_on = \"x\"",
                "admission.namespace[1].warn_on: unknown severity",
            ),
            (
                "[[admission.namespace]]\nname = \"a\"\n[[admission.namespace]]\nname = \"a\"",
                "admission.namespace[1].name: \"a\" is already admission.namespace[0]",
            ),
            ("[admission]\ndeadline = 3", "unknown field `deadline`"),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
