//! Policy: severity overrides, ignores and the failure threshold, applied to findings in
//! one place after the rules ran. Rule code never looks at policy.

use std::collections::BTreeMap;

use crate::error::PolicyError;
use crate::finding::{Finding, Severity};
use crate::report::Suppressed;
use crate::rules;

/// One ignore entry: a rule id, optionally only for paths matching a glob, with an
/// optional reason and expiry date (`YYYY-MM-DD`; expired ignores stop applying).
#[derive(Clone, Debug)]
pub struct Ignore {
    /// Rule id.
    pub rule: &'static str,
    /// Path glob (`/usr/local/bin/*`), matched against evidence paths.
    pub path: Option<globset::GlobMatcher>,
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
}

/// Resolves a rule id, naming the key on failure.
pub fn rule_id(key: &str, id: &str) -> Result<&'static str, PolicyError> {
    rules::find(id).map(|r| r.id).ok_or_else(|| PolicyError::UnknownRule { key: key.to_string(), id: id.to_string() })
}

impl Ignore {
    /// Builds an ignore, validating the rule id, glob and date.
    pub fn new(key: &str, rule: &str, path: Option<&str>, reason: Option<String>, expires: Option<String>) -> Result<Self, PolicyError> {
        let rule = rule_id(key, rule)?;
        let path = match path {
            Some(p) => Some(
                globset::GlobBuilder::new(p)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| PolicyError::Invalid { key: key.to_string(), reason: format!("bad glob {p:?}: {e}") })?
                    .compile_matcher(),
            ),
            None => None,
        };
        if let Some(d) = &expires {
            let ok = d.len() == 10
                && d.as_bytes()[4] == b'-'
                && d.as_bytes()[7] == b'-'
                && d.bytes().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
            if !ok {
                return Err(PolicyError::Invalid { key: key.to_string(), reason: format!("expiry {d:?} is not a YYYY-MM-DD date") });
            }
        }
        Ok(Self { rule, path, reason, expires })
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
            Some(g) => f.evidence.iter().filter_map(|e| e.path.as_deref()).any(|p| g.is_match(p) || g.is_match(p.trim_start_matches('/'))),
        }
    }
}

impl Policy {
    /// Applies overrides and ignores; sorts the findings deterministically. `today` is
    /// `YYYY-MM-DD` (the caller's clock) for expiring ignores.
    pub fn apply(&self, findings: Vec<Finding>, today: Option<&str>) -> (Vec<Finding>, Vec<Suppressed>) {
        let mut kept = Vec::new();
        let mut suppressed = Vec::new();
        for mut f in findings {
            if let Some(s) = self.overrides.get(f.rule) {
                f.severity = *s;
            }
            match self.ignores.iter().find(|i| i.matches(&f, today)) {
                Some(i) => suppressed.push(Suppressed { finding: f, reason: i.reason.clone() }),
                None => kept.push(f),
            }
        }
        for f in &mut kept {
            f.evidence.sort();
        }
        kept.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        (kept, suppressed)
    }

    /// Whether findings fail the audit (`--fail-on`).
    pub fn fails(&self, findings: &[Finding]) -> bool {
        self.fail_on.is_some_and(|t| findings.iter().any(|f| f.severity >= t))
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
            evidence: vec![Evidence { path: Some(path.into()), ..Evidence::default() }],
            remediation: "".into(),
        }
    }

    #[test]
    fn overrides_ignores_and_threshold() {
        let mut p = Policy::default();
        p.overrides.insert("FS001", Severity::High);
        p.ignores.push(Ignore::new("ignore[0]", "fs007", Some("/src/**"), Some("vendored".into()), Some("2030-01-01".into())).unwrap());
        p.fail_on = Some(Severity::High);
        let (kept, sup) = p.apply(vec![finding("FS001", "/bin/sh"), finding("FS007", "/src/app"), finding("FS007", "/app")], Some("2026-11-27"));
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].severity, Severity::High);
        assert_eq!(sup.len(), 1);
        assert!(p.fails(&kept));
        let (kept, _) = p.apply(vec![finding("FS007", "/src/app")], Some("2031-01-01"));
        assert_eq!(kept.len(), 1, "expired ignores do not apply");
    }

    #[test]
    fn validation_names_the_key() {
        let e = Ignore::new("ignore[3]", "XX999", None, None, None).unwrap_err();
        assert_eq!(e.to_string(), "ignore[3]: unknown rule id \"XX999\"");
        assert!(Ignore::new("k", "GO001", Some("[bad"), None, None).is_err());
        assert!(Ignore::new("k", "GO001", None, None, Some("tomorrow".into())).is_err());
    }
}
