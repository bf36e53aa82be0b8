//! Every GO/FS/CFG rule fires on the fixture built for it and stays silent on the clean,
//! distroless-style image and its format variants. The expected sets are exact: a rule that
//! starts firing where it should not fails this test too.

mod common;

use std::collections::BTreeSet;

use audit_core::audit::Auditor;
use audit_core::report::Report;
use audit_core::rules::RULES;
use audit_core::source::{self, PlatformChoice};

fn audit_with(spec: &str, platform: PlatformChoice) -> Vec<Report> {
    let src = source::open_local(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    Auditor::builder().platform(platform).today("2026-11-27").build().audit(&src, spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn fired(r: &Report) -> BTreeSet<&'static str> {
    r.findings.iter().map(|f| f.rule).collect()
}

fn image(name: &str) -> String {
    common::out(&format!("images/{name}")).display().to_string()
}

/// (fixture, rules it must fire — exactly).
const CASES: &[(&str, &[&str])] = &[
    ("clean", &[]),
    ("go-rules", &["GO001", "GO003", "GO004", "GO005", "GO006", "GO007", "GO008", "GO009", "GO010", "GO011", "GO012"]),
    ("go-libs", &["GO002"]),
    ("go-oldglibc", &["GO002"]),
    ("musl", &["GO001"]),
    (
        "fs-rules",
        &[
            "FS001", "FS002", "FS003", "FS004", "FS005", "FS006", "FS007", "FS008", "FS009", "FS010", "FS011", "FS012", "FS013", "FS014", "GO005",
            "GO006", "GO008",
        ],
    ),
    ("cfg-root", &["CFG001", "CFG007", "CFG008"]),
    ("cfg-user", &["CFG002"]),
    ("cfg-entry", &["CFG003"]),
    ("cfg-entry-path", &[]),
    ("cfg-shell", &["CFG004"]),
    ("cfg-script", &["CFG004"]),
    ("cfg-env", &["CFG005", "CFG006"]),
];

#[test]
fn each_fixture_fires_exactly_its_rules() {
    let mut failures = Vec::new();
    for (name, want) in CASES {
        let reports = audit_with(&image(name), PlatformChoice::Default);
        assert_eq!(reports.len(), 1);
        let got = fired(&reports[0]);
        let want: BTreeSet<&str> = want.iter().copied().collect();
        if got != want {
            failures.push(format!("{name}: fired {got:?}, expected {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_go_fs_cfg_rule_has_a_firing_fixture() {
    let covered: BTreeSet<&str> = CASES.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    for r in RULES {
        assert!(covered.contains(r.id), "{} has no fixture that fires it", r.id);
    }
}

#[test]
fn the_committed_demo_image_shows_what_it_is_for() {
    let spec = common::testdata().join("demo").display().to_string();
    let r = &audit_with(&spec, PlatformChoice::Default)[0];
    let want: BTreeSet<&str> = ["GO001", "GO004", "GO005", "GO006", "FS001", "FS009", "FS010", "FS011", "CFG001", "CFG008"].into_iter().collect();
    assert_eq!(fired(r), want);
}

/// The clean image in every container format and compression: same files, no findings.
#[test]
fn clean_image_is_clean_in_every_format() {
    let base = &audit_with(&image("clean"), PlatformChoice::Default)[0];
    let mut specs: Vec<String> = ["clean-zstd", "clean-mixed", "clean-v2s2", "clean-uncompressed-mislabelled", "clean-multiarch", "clean-multiarch-flat"]
        .iter()
        .map(|n| image(n))
        .collect();
    for a in ["clean-docker.tar", "clean-docker25.tar", "clean-oci.tar", "clean-skopeo.tar"] {
        specs.push(common::out(&format!("archives/{a}")).display().to_string());
    }
    for spec in &specs {
        let r = &audit_with(spec, PlatformChoice::Default)[0];
        assert!(r.findings.is_empty(), "{spec}: {:?}", fired(r));
        assert_eq!(r.image.files, base.image.files, "{spec}: merged file count differs");
        assert_eq!(r.binaries.len(), base.binaries.len(), "{spec}");
        assert_eq!(r.image.platform.as_deref(), Some("linux/amd64"), "{spec}");
        let b = &r.binaries.iter().find(|b| b.path == "/app").expect("/app").go.as_ref().unwrap().info.as_ref().unwrap().go_version;
        assert_eq!(b, "go1.27.3");
    }
    // Same image, same identity, whatever the layout.
    for (a, b) in [("clean-oci.tar", "clean")] {
        let ra = &audit_with(&common::out(&format!("archives/{a}")).display().to_string(), PlatformChoice::Default)[0];
        let rb = &audit_with(&image(b), PlatformChoice::Default)[0];
        assert_eq!(ra.image.manifest_digest, rb.image.manifest_digest);
    }
}

#[test]
fn rootfs_directory_applies_filesystem_rules_only() {
    let spec = format!("dir:{}", common::out("rootfs/clean").display());
    let r = &audit_with(&spec, PlatformChoice::Default)[0];
    assert!(r.findings.is_empty(), "{:?}", fired(r));
    let cfg: Vec<&str> = RULES.iter().filter(|r| r.id.starts_with("CFG")).map(|r| r.id).collect();
    assert_eq!(r.not_applicable, cfg);
    assert!(r.binaries.iter().any(|b| b.path == "/app"));
}

#[test]
fn multi_platform_selection() {
    let spec = image("clean-multiarch");
    let arm = &audit_with(&spec, PlatformChoice::Exact("linux/arm64".parse().unwrap()))[0];
    assert_eq!(arm.image.platform.as_deref(), Some("linux/arm64"));
    let app = arm.binaries.iter().find(|b| b.path == "/app").unwrap();
    assert_eq!(app.elf.architecture, Some("arm64"));
    assert!(arm.image.index_digest.is_some() && arm.image.manifest_digest.is_some());
    let all = audit_with(&spec, PlatformChoice::All);
    let platforms: Vec<_> = all.iter().map(|r| r.image.platform.clone().unwrap()).collect();
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"], "attestation manifests are skipped");
    let src = source::open_local(&spec).unwrap();
    let err = Auditor::builder().platform(PlatformChoice::Exact("linux/s390x".parse().unwrap())).build().audit(&src, &spec).unwrap_err();
    assert!(err.to_string().contains("no image for platform linux/s390x"), "{err}");
}
