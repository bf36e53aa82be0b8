//! SARIF, CycloneDX and Markdown output on real fixtures: SARIF validates against the
//! official SARIF 2.1.0 schema and meets GitHub code scanning's constraints; CycloneDX
//! validates against the official CycloneDX 1.6 schema and the `cyclonedx-bom` crate's
//! semantic validation, and lists what the images really contain.

mod common;

use std::collections::BTreeSet;

use audit_core::profile::{self, ProfileChoice};
use audit_core::report::{Cyclonedx, Format, Markdown, Report, Sarif};
use audit_core::rules::{RuleSettings, RULES};
use audit_core::source;
use audit_core::Auditor;
use audit_core::Policy;
use serde_json::Value;

fn audit(spec: &str, reference: &str, profile: Option<&str>) -> Vec<Report> {
    let src = source::open_local(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let settings = RuleSettings {
        profile: profile.map(|p| profile::builtin().choose("--profile", p).unwrap()),
        ..RuleSettings::default()
    };
    Auditor::builder()
        .settings(settings)
        .today("2026-11-27")
        .build()
        .audit(&src, reference)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn image(name: &str) -> String {
    common::out(&format!("images/{name}")).display().to_string()
}

fn render(f: &dyn Format, reports: &[Report]) -> Vec<u8> {
    let mut out = Vec::new();
    f.write(reports, &mut out).unwrap();
    out
}

fn schema(name: &str) -> Value {
    let p = common::testdata().join("schemas").join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn check_schema(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(20)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

/// Reports that exercise every kind of evidence: files, layers, deleted content, config
/// fields, profiles, several images in one document.
fn corpus() -> Vec<Report> {
    let mut all = Vec::new();
    all.extend(audit(
        &common::testdata().join("demo").display().to_string(),
        "testdata/demo",
        None,
    ));
    all.extend(audit(
        &image("fs-rules"),
        "oci:testdata/out/images/fs-rules:latest",
        Some("auto"),
    ));
    all.extend(audit(&image("cfg-user"), "cfg-user", None));
    all.extend(audit(
        &image("dl-static-gaps"),
        "dl-static-gaps",
        Some("static:nonroot"),
    ));
    all
}

#[test]
fn sarif_validates_against_the_official_schema_and_github_constraints() {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema("sarif-schema-2.1.0.json"))
        .expect("schema compiles");
    let reports = corpus();
    let doc: Value = serde_json::from_slice(&render(&Sarif, &reports)).unwrap();
    check_schema(&validator, &doc, "SARIF");
    // Also a run without any result.
    let clean: Value =
        serde_json::from_slice(&render(&Sarif, &audit(&image("clean"), "clean", None))).unwrap();
    check_schema(&validator, &clean, "SARIF (no results)");
    assert_eq!(clean["runs"][0]["results"].as_array().unwrap().len(), 0);

    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), RULES.len(), "every registry rule is described");
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for r in rules {
        assert!(
            !r["help"]["markdown"].as_str().unwrap().is_empty()
                && !r["help"]["text"].as_str().unwrap().is_empty()
        );
        assert!(r["shortDescription"]["text"].as_str().unwrap().len() <= 1024);
        let score: f64 = r["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&score));
        assert!(["error", "warning", "note"]
            .contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
        assert!(r["helpUri"].as_str().unwrap().starts_with("https://"));
    }
    let results = run["results"].as_array().unwrap();
    let total: usize = reports.iter().map(|r| r.findings.len()).sum();
    assert_eq!(results.len(), total);
    let mut fingerprints = BTreeSet::new();
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        assert_eq!(ids[res["ruleIndex"].as_u64().unwrap() as usize], id);
        let loc = &res["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.is_empty() && !uri.contains(' '), "{uri}");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(!res["message"]["text"].as_str().unwrap().is_empty());
        let fp = res["partialFingerprints"]["imgauditFinding/v1"]
            .as_str()
            .unwrap();
        assert!(
            fingerprints.insert((uri.to_string(), fp.to_string())),
            "duplicate fingerprint {fp} for {id} in {uri}"
        );
    }
    // The image reference without scheme and tag, and a logical location for in-image paths.
    assert!(results.iter().any(
        |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "testdata/out/images/fs-rules"
    ));
    let go001 = results.iter().find(|r| r["ruleId"] == "GO001").unwrap();
    assert_eq!(
        go001["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "/app"
    );
    assert_eq!(go001["level"], "error");
    // Fingerprints are stable across runs.
    let again: Value = serde_json::from_slice(&render(&Sarif, &corpus())).unwrap();
    let fp = |d: &Value| {
        d["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["partialFingerprints"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(fp(&doc), fp(&again));
}

#[test]
fn sarif_levels_follow_policy_overrides() {
    let src = source::open_local(&common::testdata().join("demo").display().to_string()).unwrap();
    let mut policy = Policy::default();
    policy.overrides.insert("GO001", audit_core::Severity::Low);
    let r = Auditor::builder()
        .policy(policy)
        .today("2026-11-27")
        .build()
        .audit(&src, "demo")
        .unwrap();
    let doc: Value = serde_json::from_slice(&render(&Sarif, &r)).unwrap();
    let run = &doc["runs"][0];
    let rule = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "GO001")
        .unwrap();
    assert_eq!(rule["defaultConfiguration"]["level"], "note");
    assert_eq!(rule["properties"]["security-severity"], "3.0");
    let res = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "GO001")
        .unwrap();
    assert_eq!(res["level"], "note");
}

fn cyclonedx_validator() -> jsonschema::Validator {
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.schema.json",
            schema("spdx.schema.json"),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            schema("jsf-0.82.schema.json"),
        )
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&schema("bom-1.6.schema.json"))
        .expect("schema compiles")
}

/// The `cyclonedx-bom` crate reads and validates up to CycloneDX 1.5; the document uses no
/// 1.6-only field, so its semantic checks (purls, bom-ref uniqueness, dependency references,
/// serial number) run on it as 1.5.
fn check_cyclonedx_bom_crate(doc: &Value) {
    use cyclonedx_bom::models::bom::{Bom, SpecVersion};
    use cyclonedx_bom::validation::Validate;
    let mut v = doc.clone();
    v["specVersion"] = Value::from("1.5");
    let bom = Bom::parse_from_json_v1_5(serde_json::to_vec(&v).unwrap().as_slice())
        .expect("cyclonedx-bom parses it");
    let result = bom.validate_version(SpecVersion::V1_5);
    assert!(
        result.passed(),
        "cyclonedx-bom validation: {:?}",
        result.errors().collect::<Vec<_>>()
    );
}

#[test]
fn cyclonedx_validates_and_lists_modules_stdlib_and_os_packages() {
    let validator = cyclonedx_validator();
    let go = audit(&image("go-rules"), "go-rules", None);
    let doc: Value = serde_json::from_slice(&render(&Cyclonedx, &go)).unwrap();
    check_schema(&validator, &doc, "CycloneDX go-rules");
    check_cyclonedx_bom_crate(&doc);
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(doc["metadata"]["component"]["type"], "container");
    assert!(doc["metadata"]["component"]["purl"]
        .as_str()
        .unwrap()
        .starts_with("pkg:oci/go-rules@sha256%3A"));
    let comps = doc["components"].as_array().unwrap();
    let purls: BTreeSet<&str> = comps.iter().filter_map(|c| c["purl"].as_str()).collect();
    for want in [
        "pkg:golang/example.com/greet@v1.2.0",
        "pkg:golang/stdlib@v1.27.3",
        "pkg:golang/stdlib@v1.19.8",
        "pkg:golang/example.com/app@v1.0.0",
    ] {
        assert!(purls.contains(want), "{want} missing from {purls:?}");
    }
    // app-replace: example.com/localmod => ../localmod (a directory): no version, the directory as a property.
    let local = comps
        .iter()
        .find(|c| c["name"] == "example.com/localmod" && c["version"].is_null())
        .expect("locally replaced module");
    assert!(local["properties"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "imgaudit:go_replaced_by_directory" && p["value"] == "../localmod"));
    // Every Go binary with build info is an application that depends on its modules.
    let apps: Vec<&Value> = comps
        .iter()
        .filter(|c| c["type"] == "application")
        .collect();
    let with_info = go[0]
        .binaries
        .iter()
        .filter(|b| b.go.as_ref().is_some_and(|g| g.info.is_some()))
        .count();
    assert_eq!(apps.len(), with_info);
    let deps = doc["dependencies"].as_array().unwrap();
    let refs: BTreeSet<&str> = comps
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .chain(["image"])
        .collect();
    for d in deps {
        assert!(refs.contains(d["ref"].as_str().unwrap()));
        for x in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(x.as_str().unwrap()), "dangling {x}");
        }
    }
    let static_app = deps
        .iter()
        .find(|d| d["ref"] == "file:/usr/local/bin/app-dirty")
        .unwrap();
    let on: Vec<&str> = static_app["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        on.contains(&"pkg:golang/example.com/greet@v1.2.0")
            && on.contains(&"pkg:golang/stdlib@v1.27.3"),
        "{on:?}"
    );

    // OS packages from distroless status.d, with the distro qualifier.
    let base = audit(&image("dl-base"), "dl-base", None);
    let doc: Value = serde_json::from_slice(&render(&Cyclonedx, &base)).unwrap();
    check_schema(&validator, &doc, "CycloneDX dl-base");
    check_cyclonedx_bom_crate(&doc);
    let comps = doc["components"].as_array().unwrap();
    let os = comps
        .iter()
        .find(|c| c["type"] == "operating-system")
        .unwrap();
    assert_eq!(
        (os["name"].as_str(), os["version"].as_str()),
        (Some("debian"), Some("12"))
    );
    let libc = comps.iter().find(|c| c["name"] == "libc6").expect("libc6");
    let purl = libc["purl"].as_str().unwrap();
    assert!(
        purl.starts_with("pkg:deb/debian/libc6@2.36-")
            && purl.ends_with("?arch=amd64&distro=debian-12"),
        "{purl}"
    );
    let names: BTreeSet<&str> = comps
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:deb/"))
        })
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "base-files",
            "ca-certificates",
            "libc6",
            "libssl3",
            "netbase",
            "tzdata"
        ]
        .into_iter()
        .collect()
    );

    // Several images (an index, every platform) in one document.
    let src = source::open_local(&image("clean-multiarch")).unwrap();
    let both = Auditor::builder()
        .platform(source::PlatformChoice::All)
        .build()
        .audit(&src, "clean-multiarch")
        .unwrap();
    let doc: Value = serde_json::from_slice(&render(&Cyclonedx, &both)).unwrap();
    check_schema(&validator, &doc, "CycloneDX multi-platform");
    check_cyclonedx_bom_crate(&doc);
    let containers = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "container")
        .count();
    assert_eq!(containers, 2);
    // Deterministic.
    assert_eq!(render(&Cyclonedx, &both), render(&Cyclonedx, &both));
}

/// A main module built from a checkout is `(devel)` in Go before 1.24: its component still
/// gets a purl — the pseudo-version of its `vcs.revision` and `vcs.time` (what syft derives),
/// checked against the version Go 1.27 itself stamps into a build of the same commit; without
/// VCS settings a purl without version. See: issue #12.
#[test]
fn cyclonedx_gives_devel_main_modules_a_purl() {
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(
        src.join("go.mod"),
        "module example.com/devel/v2\n\ngo 1.19\n",
    )
    .unwrap();
    std::fs::write(
        src.join("main.go"),
        "package main\n\nfunc main() { println(\"hi\") }\n",
    )
    .unwrap();
    let env = |c: &mut Command| {
        c.current_dir(&src)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_AUTHOR_DATE", "2024-03-04T05:06:07Z")
            .env("GIT_COMMITTER_DATE", "2024-03-04T05:06:07Z")
            .env("GOTOOLCHAIN", "local")
            .env("GOENV", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("HOME", tmp.path())
            .env("GOPATH", tmp.path().join("gopath"))
            .env("GOCACHE", common::testdata().join(".tools/gocache"));
    };
    let run = |cmd: &str, args: &[&str]| -> String {
        let mut c = Command::new(cmd);
        c.args(args);
        env(&mut c);
        let (ok, out, err) = common::run(&mut c);
        assert!(ok, "{cmd} {args:?}: {err}");
        out
    };
    run("git", &["init", "-q", "-b", "main", "."]);
    run("git", &["add", "-A"]);
    run("git", &["commit", "-q", "-m", "untagged"]);
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let go119 = "/usr/lib/go-1.19/bin/go";
    let go127 = common::go_tool().display().to_string();
    let out = |name: &str| rootfs.join(name).display().to_string();
    run(go119, &["build", "-o", &out("devel-vcs"), "."]);
    run(
        go119,
        &["build", "-buildvcs=false", "-o", &out("devel-novcs"), "."],
    );
    let stamped = tmp.path().join("stamped");
    run(
        &go127,
        &["build", "-o", &stamped.display().to_string(), "."],
    );
    let version_of = |bin: &str| -> String {
        let m = run(&go127, &["version", "-m", bin]);
        m.lines()
            .find_map(|l| l.trim().strip_prefix("mod\texample.com/devel/v2\t"))
            .unwrap()
            .split('\t')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(version_of(&out("devel-vcs")), "(devel)");
    let want = version_of(&stamped.display().to_string());
    assert!(want.starts_with("v2.0.0-20240304050607-"), "{want}");

    let reports = audit(&format!("rootfs:{}", rootfs.display()), "devel", None);
    let doc: Value = serde_json::from_slice(&render(&Cyclonedx, &reports)).unwrap();
    check_schema(&cyclonedx_validator(), &doc, "CycloneDX devel");
    check_cyclonedx_bom_crate(&doc);
    let app = |name: &str| {
        doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("/{name}"))
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let vcs = app("devel-vcs");
    assert_eq!(
        vcs["purl"],
        format!(
            "pkg:golang/example.com/devel/v2@{}",
            want.replace('+', "%2B")
        )
    );
    assert_eq!(vcs["version"], want.as_str());
    assert!(vcs["properties"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "imgaudit:go_main_version" && p["value"] == "(devel)"));
    let novcs = app("devel-novcs");
    assert_eq!(novcs["purl"], "pkg:golang/example.com/devel/v2");
    assert_eq!(novcs["version"], "(devel)");
}

#[test]
fn markdown_summary_for_pull_requests() {
    let reports = corpus();
    let md = String::from_utf8(render(&Markdown, &reports)).unwrap();
    assert!(
        md.contains("### imgaudit: <code>testdata/demo</code> (linux/amd64)"),
        "{md}"
    );
    assert!(md.contains("| critical | high | medium | low | info | suppressed |"));
    assert!(md.contains("<details open><summary><b>critical</b>"));
    assert!(md.contains("<details><summary><b>medium</b>"));
    assert!(md.contains("- **GO001** <code>interpreter-missing</code>"));
    assert!(
        md.contains("Profile <code>cc:nonroot</code>"),
        "the fs-rules report carries the profile comparison"
    );
    assert_eq!(
        md.matches("<details").count(),
        md.matches("</details>").count()
    );
    let clean =
        String::from_utf8(render(&Markdown, &audit(&image("clean"), "clean", None))).unwrap();
    assert!(clean.contains("No findings."));
}

#[test]
fn profile_choice_from_the_policy_reaches_the_rules() {
    let policy = Policy {
        profile: Some(ProfileChoice::Auto),
        ..Policy::default()
    };
    let src = source::open_local(&image("dl-extra")).unwrap();
    let r = &Auditor::builder()
        .policy(policy)
        .today("2026-11-27")
        .build()
        .audit(&src, "dl-extra")
        .unwrap()[0];
    let p = r.profile.as_ref().expect("profile summary");
    assert_eq!(
        (p.name.as_str(), p.requested.as_str()),
        ("static:nonroot", "auto")
    );
    assert!(r.findings.iter().any(|f| f.rule == "DL003"));
}
