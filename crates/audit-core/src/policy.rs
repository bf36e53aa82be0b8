//! Policy: severity overrides, ignores and the failure threshold, applied to findings in
//! one place after the rules ran; plus the distroless profile DL rules compare with. Rule code
//! never looks at policy.
//!
//! A policy file (`imgaudit.toml`, documented in `docs/policy.md`) is read in two steps: the
//! raw serde [`PolicyFile`] (unknown keys are errors), then [`PolicyFile::validate`] into a
//! [`Policy`]: every rule id, glob, date, severity and profile is checked once, and an error
//! names the key (`ignore[2].path: bad glob …`). The library takes the file's text; finding
//! and reading the file is the caller's business.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::admission::{self, AdmissionFile, AdmissionPolicy, Pattern};
use crate::error::PolicyError;
use crate::finding::{Finding, Severity};
use crate::profile::{ProfileChoice, ProfileSpec, Profiles};
use crate::report::{Report, Suppressed};
use crate::rules;

/// One ignore entry: a rule id, optionally only for paths matching a glob, with an
/// optional reason and expiry date (`YYYY-MM-DD`; expired ignores stop applying).
#[derive(Clone, Debug)]
pub struct Ignore {
    /// Rule id.
    pub rule: &'static str,
    /// Path glob (`/usr/local/bin/*`), matched against evidence paths.
    pub path: Option<Pattern>,
    /// Why.
    pub reason: Option<String>,
    /// Last day it applies.
    pub expires: Option<String>,
}

/// A validated policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Severity per rule id.
    pub overrides: BTreeMap<&'static str, Severity>,
    /// Ignores.
    pub ignores: Vec<Ignore>,
    /// Findings at or above this severity fail the audit.
    pub fail_on: Option<Severity>,
    /// The profile DL rules compare with (`None`: DL rules stay silent).
    pub profile: Option<ProfileChoice>,
    /// Known profiles: the built-ins plus the file's `[profiles.NAME]`.
    pub profiles: Profiles,
    /// The webhook's `[admission]` settings (`imgaudit serve`).
    pub admission: AdmissionPolicy,
}

/// A policy file as written (TOML). Validate it with [`PolicyFile::validate`].
///
/// ```
/// use audit_core::policy::PolicyFile;
///
/// let policy = PolicyFile::parse(r#"
///     fail_on = "high"
///     profile = "static:nonroot"
///     [severity]
///     CFG008 = "low"
///     [[ignore]]
///     rule = "FS007"
///     path = "/src/**"
///     reason = "sources are shipped on purpose"
///     expires = 2027-06-30
/// "#)?.validate()?;
/// assert_eq!(policy.ignores.len(), 1);
/// # Ok::<(), audit_core::error::PolicyError>(())
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Findings at or above this severity fail the audit.
    pub fail_on: Option<String>,
    /// Profile for DL rules: `auto`, a built-in or one of `profiles`.
    pub profile: Option<String>,
    /// Severity per rule id.
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    /// Ignores.
    #[serde(default)]
    pub ignore: Vec<IgnoreSpec>,
    /// User-defined profiles.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// Admission webhook settings (`imgaudit serve`).
    #[serde(default)]
    pub admission: AdmissionFile,
}

/// One `[[ignore]]` entry as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreSpec {
    /// Rule id or name.
    pub rule: String,
    /// Path glob.
    pub path: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Last day it applies, as written: a TOML date (`2027-01-31`) or a `"2027-01-31"` string.
    /// [`PolicyFile::validate`] checks it.
    #[serde(default, deserialize_with = "date_text")]
    pub expires: Option<String>,
}

/// A date written as a TOML date or a string. Kept private so that the toml crate's
/// `Datetime` does not become part of this crate's API; its name shows in the error for a
/// value of neither kind.
#[derive(Deserialize)]
#[serde(untagged)]
enum DateValue {
    Text(String),
    Date(toml::value::Datetime),
}

fn date_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<DateValue>::deserialize(d)?.map(|v| match v {
        DateValue::Text(t) => t,
        DateValue::Date(d) => d.to_string(),
    }))
}

impl PolicyFile {
    /// Parses TOML text. Syntax errors and unknown keys name the line and the key.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {col}: ")
            });
            PolicyError::Syntax {
                message: format!("{}{}", at.unwrap_or_default(), e.message().trim_end()),
            }
        })
    }

    /// Checks every value once; the error names the key.
    pub fn validate(self) -> Result<Policy, PolicyError> {
        let mut p = Policy::default();
        if let Some(f) = &self.fail_on {
            p.fail_on = Some(
                f.parse::<Severity>()
                    .map_err(|reason| PolicyError::Invalid {
                        key: "fail_on".into(),
                        reason,
                    })?,
            );
        }
        for (id, sev) in &self.severity {
            let key = format!("severity.{id}");
            let rule = rule_id(&key, id)?;
            let s = sev
                .parse::<Severity>()
                .map_err(|reason| PolicyError::Invalid {
                    key: key.clone(),
                    reason,
                })?;
            p.overrides.insert(rule, s);
        }
        for (i, ig) in self.ignore.iter().enumerate() {
            let key = format!("ignore[{i}]");
            let expires = ig.expires.clone();
            if ig.path.as_deref() == Some("") {
                return Err(PolicyError::Invalid {
                    key: format!("{key}.path"),
                    reason: "empty glob".into(),
                });
            }
            p.ignores.push(Ignore::new(
                &key,
                &ig.rule,
                ig.path.as_deref(),
                ig.reason.clone(),
                expires,
            )?);
        }
        p.profiles = Profiles::default().with_specs("profiles", &self.profiles)?;
        if let Some(name) = &self.profile {
            p.profile = Some(p.profiles.choose("profile", name)?);
        }
        p.admission = self.admission.validate(p.fail_on)?;
        Ok(p)
    }
}

/// Resolves a rule id, naming the key on failure.
pub fn rule_id(key: &str, id: &str) -> Result<&'static str, PolicyError> {
    rules::find(id)
        .map(|r| r.id)
        .ok_or_else(|| PolicyError::UnknownRule {
            key: key.to_string(),
            id: id.to_string(),
        })
}

impl Ignore {
    /// Builds an ignore, validating the rule id, glob and date.
    pub fn new(
        key: &str,
        rule: &str,
        path: Option<&str>,
        reason: Option<String>,
        expires: Option<String>,
    ) -> Result<Self, PolicyError> {
        let rule = rule_id(&format!("{key}.rule"), rule)?;
        let path = path
            .map(|p| Pattern::new(&format!("{key}.path"), p, false))
            .transpose()?;
        if let Some(d) = &expires {
            if crate::date::parse(d).is_none() {
                return Err(PolicyError::Invalid {
                    key: format!("{key}.expires"),
                    reason: format!("expiry {d:?} is not a YYYY-MM-DD date"),
                });
            }
        }
        Ok(Self {
            rule,
            path,
            reason,
            expires,
        })
    }

    fn matches(&self, f: &Finding, today: Option<&str>) -> bool {
        if f.rule != self.rule {
            return false;
        }
        if let (Some(exp), Some(today)) = (&self.expires, today) {
            if today > exp.as_str() {
                return false;
            }
        }
        match &self.path {
            None => true,
            Some(g) => f
                .evidence
                .iter()
                .filter_map(|e| e.path.as_deref())
                .any(|p| g.is_match(p) || g.is_match(p.trim_start_matches('/'))),
        }
    }
}

impl Policy {
    /// Applies overrides and ignores; sorts the findings deterministically. `today` is
    /// `YYYY-MM-DD` (the caller's clock) for expiring ignores.
    pub fn apply(
        &self,
        findings: Vec<Finding>,
        today: Option<&str>,
    ) -> (Vec<Finding>, Vec<Suppressed>) {
        let mut kept = Vec::new();
        let mut suppressed = Vec::new();
        for mut f in findings {
            if let Some(s) = self.overrides.get(f.rule) {
                f.severity = *s;
            }
            match self.ignores.iter().find(|i| i.matches(&f, today)) {
                Some(i) => suppressed.push(Suppressed {
                    finding: f,
                    reason: i.reason.clone(),
                }),
                None => kept.push(f),
            }
        }
        // Evidence keeps the order rules give it (largest first, target before its
        // links …); rules are deterministic themselves.
        kept.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        (kept, suppressed)
    }

    /// The CLI's decision for a report (`--fail-on`): [`admission::decide`] with `fail_on`
    /// blocking, nothing warning, enforced.
    pub fn verdict<'a>(&self, report: &'a Report) -> admission::Verdict<'a> {
        admission::decide(
            &report.findings,
            &admission::Thresholds {
                deny_on: self.fail_on,
                warn_on: None,
                mode: admission::Mode::Enforce,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Evidence;

    fn finding(rule: &'static str, path: &str) -> Finding {
        Finding {
            rule,
            name: "x",
            severity: Severity::Low,
            message: String::new(),
            evidence: vec![Evidence {
                path: Some(path.into()),
                ..Evidence::default()
            }],
            remediation: "".into(),
        }
    }

    #[test]
    fn overrides_ignores_and_threshold() {
        let mut p = Policy::default();
        p.overrides.insert("FS001", Severity::High);
        p.ignores.push(
            Ignore::new(
                "ignore[0]",
                "fs007",
                Some("/src/**"),
                Some("vendored".into()),
                Some("2030-01-01".into()),
            )
            .unwrap(),
        );
        p.fail_on = Some(Severity::High);
        let (kept, sup) = p.apply(
            vec![
                finding("FS001", "/bin/sh"),
                finding("FS007", "/src/app"),
                finding("FS007", "/app"),
            ],
            Some("2026-11-27"),
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].severity, Severity::High);
        assert_eq!(sup.len(), 1);
        let report = |findings| Report {
            findings,
            ..Report::default()
        };
        assert!(p.verdict(&report(kept)).denied());
        let (kept, _) = p.apply(vec![finding("FS007", "/src/app")], Some("2031-01-01"));
        assert_eq!(kept.len(), 1, "expired ignores do not apply");
    }

    #[test]
    fn cli_verdict_is_fail_on() {
        let mut p = Policy::default();
        let mut high = finding("GO003", "/app");
        high.severity = Severity::High;
        let r = Report {
            findings: vec![high],
            ..Report::default()
        };
        assert!(!p.verdict(&r).denied(), "no fail_on: never fails");
        p.fail_on = Some(Severity::High);
        assert!(p.verdict(&r).denied());
        p.fail_on = Some(Severity::Critical);
        assert!(!p.verdict(&r).denied());
        assert!(p.verdict(&r).warnings.is_empty(), "the CLI has no warnings");
    }

    #[test]
    fn validation_names_the_key() {
        let e = Ignore::new("ignore[3]", "XX999", None, None, None).unwrap_err();
        assert_eq!(e.to_string(), "ignore[3].rule: unknown rule id \"XX999\"");
        assert!(Ignore::new("k", "GO001", Some("[bad"), None, None).is_err());
        assert!(Ignore::new("k", "GO001", None, None, Some("tomorrow".into())).is_err());
    }

    fn load(t: &str) -> Result<Policy, String> {
        PolicyFile::parse(t)
            .and_then(PolicyFile::validate)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn policy_file_round_trip() {
        let p = load(
            r#"
            fail_on = "medium"
            profile = "corp:nonroot"
            [severity]
            fs007 = "info"
            runs-as-root = "high"
            [[ignore]]
            rule = "FS001"
            [[ignore]]
            rule = "FS007"
            path = "/src/**"
            reason = "demo sources"
            expires = 2030-01-01
            [[ignore]]
            rule = "GO005"
            expires = "2020-01-01"
            [profiles.corp]
            extends = "static"
            packages = ["corp-ca-certs"]
            "#,
        )
        .unwrap();
        assert_eq!(p.fail_on, Some(Severity::Medium));
        assert_eq!(p.overrides.get("FS007"), Some(&Severity::Info));
        assert_eq!(p.overrides.get("CFG001"), Some(&Severity::High));
        assert_eq!(p.ignores.len(), 3);
        assert_eq!(p.ignores[1].expires.as_deref(), Some("2030-01-01"));
        match &p.profile {
            Some(ProfileChoice::Named(pr)) => {
                assert_eq!(pr.name, "corp:nonroot");
                assert!(pr.packages.contains(&"corp-ca-certs".to_string()));
            }
            other => panic!("{other:?}"),
        }
        let (kept, sup) = p.apply(
            vec![
                finding("FS007", "/src/app/main.go"),
                finding("GO005", "/app"),
                finding("FS001", "/bin/sh"),
            ],
            Some("2026-11-27"),
        );
        assert_eq!(
            kept.iter().map(|f| f.rule).collect::<Vec<_>>(),
            vec!["GO005"],
            "the GO005 ignore expired"
        );
        assert_eq!(sup.len(), 2);
        assert_eq!(kept[0].severity, Severity::Low);
    }

    #[test]
    fn policy_file_errors_name_the_key() {
        assert_eq!(
            load(
                "[severity]
XX001 = \"low\""
            )
            .unwrap_err(),
            "severity.XX001: unknown rule id \"XX001\""
        );
        assert!(load(
            "[severity]
GO001 = \"urgent\""
        )
        .unwrap_err()
        .starts_with("severity.GO001: unknown severity"));
        assert!(load("fail_on = \"loud\"")
            .unwrap_err()
            .starts_with("fail_on: unknown severity"));
        assert_eq!(
            load(
                "[[ignore]]
rule = \"FS999\""
            )
            .unwrap_err(),
            "ignore[0].rule: unknown rule id \"FS999\""
        );
        assert!(load(
            "[[ignore]]
rule = \"FS001\"
path = \"/a/[\""
        )
        .unwrap_err()
        .starts_with("ignore[0].path: bad glob"));
        assert!(load(
            "[[ignore]]
rule = \"FS001\"
expires = \"soon\""
        )
        .unwrap_err()
        .starts_with("ignore[0].expires:"));
        assert!(load("profile = \"tiny\"")
            .unwrap_err()
            .starts_with("profile: unknown profile \"tiny\""));
        assert_eq!(
            load(
                "[profiles.x]
extends = \"y\""
            )
            .unwrap_err(),
            "profiles.x.extends: unknown profile \"y\""
        );
        let e = load(
            "fail_on = \"high\"
failon = 1",
        )
        .unwrap_err();
        assert!(
            e.starts_with("line 2, column 1: unknown field `failon`"),
            "{e}"
        );
        let e = load(
            "[[ignore]]
rule = \"FS001\"
paths = \"x\"",
        )
        .unwrap_err();
        assert!(e.contains("unknown field `paths`"), "{e}");
    }
}
