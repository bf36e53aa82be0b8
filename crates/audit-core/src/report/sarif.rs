//! SARIF 2.1.0 output, shaped for GitHub code scanning.
//!
//! One run for all audited images. `tool.driver.rules` is the whole registry, in table order,
//! with the rule docs as help (text and Markdown); a rule's level and GitHub
//! `security-severity` come from the severity its findings carry after policy overrides
//! (the registry default when it has none). Each result points at the image itself as its
//! artifact (`artifactLocation.uri` = the image path or reference as given, scheme prefix and
//! tag removed) with `region.startLine` 1, because GitHub needs a physical location; the paths
//! inside the image are logical locations (`kind: resource`), and layers, build steps and
//! typed evidence go into the result's property bag. `partialFingerprints` hash the rule, the
//! image, the platform and the evidence paths or config fields — never layer digests, sizes or
//! message text — so the same problem keeps its identity across rebuilds.
//!
//! Schema: <https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json>
//! (committed as `testdata/schemas/sarif-schema-2.1.0.json`, checked in tests). GitHub's
//! constraints: <https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning>.

use std::collections::BTreeMap;
use std::io;

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::{Format, Report};
use crate::finding::{Detail, Finding, Severity, Visibility};
use crate::rules::{self, Rule, RULES};

/// The SARIF format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sarif;

/// Where the docs of a rule live, for `helpUri`.
const DOCS_BASE: &str = "https://github.com/imgaudit/imgaudit/blob/main/docs/rules/";

/// SARIF `level` of a severity.
pub(super) fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score of a severity (its bands: critical > 9.0, high 7.0–8.9,
/// medium 4.0–6.9, low 0.1–3.9).
pub(super) fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

impl Format for Sarif {
    fn id(&self) -> &'static str {
        "sarif"
    }

    fn write(&self, reports: &[Report], out: &mut dyn io::Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &document(reports)).map_err(io::Error::other)?;
        out.write_all(b"\n")
    }
}

/// The SARIF log as a JSON value.
pub(super) fn document(reports: &[Report]) -> Value {
    // Effective severity per rule: what its findings carry (policy overrides are per rule).
    let mut effective: BTreeMap<&str, Severity> = BTreeMap::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        effective.entry(f.rule).or_insert(f.severity);
    }
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| rule(r, effective.get(r.id).copied().unwrap_or(r.severity)))
        .collect();
    let mut artifacts = Vec::new();
    let mut results = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let uri = image_uri(&r.image.reference);
        let mut desc = format!("container image {}", r.image.reference);
        if let Some(p) = &r.image.platform {
            desc.push_str(&format!(" ({p})"));
        }
        if let Some(d) = &r.image.manifest_digest {
            desc.push_str(&format!(", manifest {d}"));
        }
        artifacts.push(json!({
            "location": { "uri": uri },
            "roles": ["analysisTarget"],
            "description": { "text": desc },
        }));
        for f in &r.findings {
            results.push(result(f, r, &uri, i));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "imgaudit",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/imgaudit/imgaudit",
                "rules": rules,
            }},
            "artifacts": artifacts,
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn rule(r: &Rule, sev: Severity) -> Value {
    let text = format!(
        "{}\n\nWhy it matters: {}\n\nHow to fix: {}",
        r.doc.what, r.doc.why, r.doc.fix
    );
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": { "text": r.summary },
        "fullDescription": { "text": r.doc.what },
        "help": { "text": text, "markdown": rules::render_markdown(r) },
        "helpUri": format!("{DOCS_BASE}{}.md", r.id),
        "defaultConfiguration": { "level": level(sev) },
        "properties": {
            "tags": ["security", "container", r.family.as_str()],
            "precision": "high",
            "problem.severity": level(sev),
            "security-severity": security_severity(sev),
        },
    })
}

fn result(f: &Finding, r: &Report, uri: &str, artifact: usize) -> Value {
    let rule_index = RULES.iter().position(|x| x.id == f.rule);
    let mut logical: Vec<Value> = Vec::new();
    for e in &f.evidence {
        if let Some(p) = &e.path {
            if !logical
                .iter()
                .any(|l| l["fullyQualifiedName"] == p.as_str())
            {
                let name = p.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(p);
                logical.push(json!({ "name": name, "fullyQualifiedName": p, "kind": "resource" }));
            }
        }
    }
    let mut location = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri, "index": artifact },
            "region": { "startLine": 1 },
        },
    });
    if !logical.is_empty() {
        location["logicalLocations"] = Value::Array(logical);
    }
    let evidence: Vec<Value> = f
        .evidence
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    let mut props = Map::new();
    props.insert("severity".into(), json!(f.severity));
    props.insert("ruleName".into(), json!(f.name));
    props.insert("remediation".into(), json!(f.remediation));
    props.insert("image".into(), json!(r.image.reference));
    if let Some(p) = &r.image.platform {
        props.insert("platform".into(), json!(p));
    }
    if let Some(d) = &r.image.manifest_digest {
        props.insert("manifestDigest".into(), json!(d));
    }
    props.insert("evidence".into(), Value::Array(evidence));
    let mut v = json!({
        "ruleId": f.rule,
        "level": level(f.severity),
        "message": { "text": f.message },
        "locations": [location],
        "partialFingerprints": { "imgauditFinding/v1": fingerprint(f, r) },
        "properties": props,
    });
    if let Some(i) = rule_index {
        v["ruleIndex"] = json!(i);
    }
    v
}

/// A hash that survives rebuilds: rule, image (without tag or digest), platform, and the
/// evidence's paths and config fields.
pub(super) fn fingerprint(f: &Finding, r: &Report) -> String {
    let mut keys: Vec<String> = f
        .evidence
        .iter()
        .filter_map(|e| {
            let vis = match e.visibility {
                Visibility::Final => "",
                Visibility::DeletedIn(_) => "deleted",
                Visibility::OverwrittenIn(_) => "overwritten",
            };
            match (&e.path, &e.detail) {
                (Some(p), _) => Some(format!("path:{p}:{vis}")),
                (None, Some(Detail::ConfigField { field, value })) => {
                    Some(format!("config:{field}={value}"))
                }
                (None, _) => e
                    .history
                    .as_ref()
                    .map(|h| format!("history:{}", h.created_by)),
            }
        })
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        keys.push(format!("message:{}", f.message));
    }
    let mut h = Sha256::new();
    for part in [
        f.rule,
        &image_uri(&r.image.reference),
        r.image.platform.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for k in &keys {
        h.update(k.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The image as a SARIF URI: the path or reference without the source scheme and tag,
/// percent-encoded; absolute paths become `file://` URIs.
pub(super) fn image_uri(reference: &str) -> String {
    let mut s = reference;
    if let Some(rest) = ["docker-archive:", "oci-archive:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
    {
        // `FILE[:REF]`: the archive is everything before the first ':'.
        s = rest.split(':').next().unwrap_or(rest);
    } else if let Some(rest) = ["dir:", "rootfs:"].iter().find_map(|p| s.strip_prefix(p)) {
        // Directories without a tag.
        s = rest;
    } else {
        s = s.strip_prefix("oci:").unwrap_or(s);
        // `PATH:tag` / `PATH@sha256:…`: the tag follows a ':' or '@' after the last '/'.
        let cut = s.rfind('/').map_or(0, |i| i + 1);
        if let Some(i) = s[cut..].find(['@', ':']) {
            if cut + i > 0 {
                s = &s[..cut + i];
            }
        }
    }
    let s = s.trim_start_matches("./").trim_end_matches('/');
    let enc = encode(s);
    if s.starts_with('/') {
        format!("file://{enc}")
    } else {
        enc
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_uris() {
        assert_eq!(image_uri("testdata/demo"), "testdata/demo");
        assert_eq!(image_uri("oci:build/layout:v1.2"), "build/layout");
        assert_eq!(image_uri("docker-archive:app.tar:repo/app:v1"), "app.tar");
        assert_eq!(image_uri("./out/img/"), "out/img");
        assert_eq!(image_uri("/abs/my image"), "file:///abs/my%20image");
        assert_eq!(image_uri("oci:img@sha256:abcd"), "img");
        assert_eq!(image_uri("dir:out/skopeo:dir"), "out/skopeo%3Adir");
        assert_eq!(image_uri("rootfs:/srv/root/"), "file:///srv/root");
    }

    #[test]
    fn levels_and_scores() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Info), "note");
        assert!(
            security_severity(Severity::Critical)
                .parse::<f32>()
                .unwrap()
                > 9.0
        );
        assert!((7.0..9.0).contains(&security_severity(Severity::High).parse::<f32>().unwrap()));
    }
}
