//! imgaudit's reports as Harbor reads them (Pluggable Scanner API v1.2,
//! `testdata/harbor/scanner-adapter-openapi-v1.2.yaml`): findings as the items of a
//! `HarborVulnerabilityReport`, the CycloneDX document as the `sbom` of a `HarborSbomReport`.
//! docs/harbor.md explains the mapping field by field.

use audit_core::finding::{Detail, Finding, Severity};
use audit_core::report::{Cyclonedx, Format, Report};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where a rule's documentation lives (the same pages as SARIF's `helpUri`).
const DOCS_BASE: &str = "https://github.com/imgaudit/imgaudit/blob/main/docs/rules/";

/// What a finished scan keeps: enough to answer every report media type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Scanned {
    /// RFC 3339, when the audit finished.
    pub(crate) generated_at: String,
    /// The highest severity on Harbor's scale (`Unknown` without findings).
    pub(crate) severity: String,
    /// `VulnerabilityItem`s.
    pub(crate) vulnerabilities: Vec<Value>,
    /// The CycloneDX document (as `imgaudit audit --format cyclonedx` writes it).
    pub(crate) sbom: Value,
}

/// Harbor's severity scale for an imgaudit severity: the five levels map one to one, `info`
/// to `Negligible`.
pub(crate) fn harbor_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Negligible",
    }
}

/// Builds what the reports of one scan answer (several reports: an index, one per platform).
pub(crate) fn scanned(reports: &[Report], generated_at: String) -> Scanned {
    let several = reports.len() > 1;
    let mut items = Vec::new();
    let mut top: Option<Severity> = None;
    for r in reports {
        for f in &r.findings {
            top = top.max(Some(f.severity));
            items.push(item(r, f, several));
        }
    }
    let mut sbom = Vec::new();
    let sbom = match Cyclonedx.write(reports, &mut sbom) {
        Ok(()) => serde_json::from_slice(&sbom).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    Scanned {
        generated_at,
        severity: top.map_or("Unknown", harbor_severity).to_string(),
        vulnerabilities: items,
        sbom,
    }
}

/// One finding as a `VulnerabilityItem`.
fn item(r: &Report, f: &Finding, several: bool) -> Value {
    let e = f.evidence.first();
    let path = e.and_then(|e| e.path.clone());
    let (package, version) = package_of(r, f);
    let layer = e.and_then(|e| e.layer.as_ref());
    let mut description = f.message.clone();
    if several {
        if let Some(p) = &r.image.platform {
            description = format!("[{p}] {description}");
        }
    }
    description.push_str("\n\nRemediation: ");
    description.push_str(&f.remediation);
    let mut vendor = json!({
        "rule": f.rule,
        "rule_name": f.name,
        "imgaudit_severity": f.severity.to_string(),
        "message": f.message,
        "remediation": f.remediation,
        "evidence_count": f.evidence.len(),
    });
    if let Some(p) = &path {
        vendor["path"] = json!(p);
    }
    if let Some(l) = layer {
        vendor["layer_index"] = json!(l.index);
        vendor["layer_digest"] = json!(l.digest.to_string());
    }
    if let Some(p) = &r.image.platform {
        vendor["platform"] = json!(p);
    }
    if let Some(d) = &r.image.manifest_digest {
        vendor["manifest_digest"] = json!(d.to_string());
    }
    json!({
        "id": f.rule,
        "package": package,
        "version": version,
        "severity": harbor_severity(f.severity),
        "description": description,
        "links": [format!("{DOCS_BASE}{}.md", f.rule)],
        "vendor_attributes": vendor,
    })
}

/// The package a finding is about, and its version: the Go main module of a Go binary (its
/// build info), else the file path with the layer it is in (`layer N`), else the image
/// config field (`config:Env`), else the image itself.
fn package_of(r: &Report, f: &Finding) -> (String, String) {
    let e = f.evidence.first();
    if let Some(Detail::GoBinary { path, version, .. }) = e.and_then(|e| e.detail.as_ref()) {
        if !path.is_empty() {
            return (path.clone(), version.clone());
        }
    }
    let path = e.and_then(|e| e.path.as_deref());
    if let Some(p) = path {
        let module = r
            .binaries
            .iter()
            .find(|b| b.path == p)
            .and_then(|b| b.go.as_ref())
            .and_then(|g| g.info.as_ref())
            .and_then(|i| i.main.as_ref().filter(|m| !m.path.is_empty()));
        if let Some(m) = module {
            return (m.path.clone(), m.version.clone());
        }
        let layer = e
            .and_then(|e| e.layer.as_ref())
            .map(|l| format!("layer {}", l.index))
            .unwrap_or_default();
        return (p.to_string(), layer);
    }
    if let Some(Detail::ConfigField { field, .. }) = e.and_then(|e| e.detail.as_ref()) {
        return (format!("config:{field}"), String::new());
    }
    ("image".to_string(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_onto_harbors_scale() {
        let all = [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ];
        let mapped: Vec<_> = all.iter().map(|s| harbor_severity(*s)).collect();
        assert_eq!(mapped, ["Negligible", "Low", "Medium", "High", "Critical"]);
    }
}
