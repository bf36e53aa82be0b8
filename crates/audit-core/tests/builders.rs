//! Images built from testdata/dockerfiles/hist by REAL builders (testdata/realbuild.py:
//! docker 20.10's classic builder and BuildKit, buildah with and without `--layers`) give the
//! expected findings — the history forms differ per builder, the rules read them all. These
//! fixtures are part of `make fixtures`; when docker or buildah is missing the fixture build
//! fails, and these tests fail on the missing files (they never skip).

mod common;

use std::collections::BTreeSet;

use audit_core::finding::{Finding, Visibility};
use audit_core::source::{self, PlatformChoice};
use audit_core::Auditor;
use audit_core::Report;

fn audit(rel: &str) -> Report {
    let spec = common::out(rel).display().to_string();
    let src = source::open_local(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut r = Auditor::builder()
        .platform(PlatformChoice::Default)
        .today("2026-11-27")
        .build()
        .audit(&src, &spec)
        .unwrap_or_else(|e| panic!("{spec}: {e}"));
    assert_eq!(r.len(), 1);
    r.remove(0)
}

const IMAGES: &[(&str, &str)] = &[
    ("classic", "archives/real-docker-classic.tar"),
    ("buildkit", "archives/real-docker-buildkit.tar"),
    ("buildah-layers", "images/real-buildah-layers"),
    ("buildah-squash", "images/real-buildah-squash"),
];

/// What the Dockerfile does wrong, whatever the builder. Besides the HIST rules: busybox
/// (FS001 shell, FS002/FS009 applets), `COPY . .` leaves the sources and the stubs in /src
/// (FS001 for /src/busybox, FS002 for /src/stubs/apt-get, FS007), the stub `go install` and
/// `go mod download` leave /go/bin and /go/pkg/mod (FS006, FS004), ENV GOPATH/GOCACHE
/// (CFG005) and no labels (CFG008).
const COMMON: &[&str] = &[
    "CFG005", "CFG008", "FS001", "FS002", "FS004", "FS006", "FS007", "FS009", "HIST001", "HIST002",
    "HIST003", "HIST004", "HIST005", "HIST006", "HIST007", "SEC002", "SEC003", "SEC004",
];

fn rules(r: &Report) -> BTreeSet<&'static str> {
    r.findings.iter().map(|f| f.rule).collect()
}

fn of<'r>(r: &'r Report, rule: &str) -> Vec<&'r Finding> {
    r.findings.iter().filter(|f| f.rule == rule).collect()
}

#[test]
fn every_builder_yields_the_expected_findings() {
    let mut failures = Vec::new();
    for (name, rel) in IMAGES {
        let r = audit(rel);
        let mut want: BTreeSet<&str> = COMMON.iter().copied().collect();
        // The credential written in one RUN and removed in the next stays in the first
        // step's layer — except when the whole build is squashed into one layer.
        if *name != "buildah-squash" {
            want.insert("SEC001");
        }
        let got = rules(&r);
        if got != want {
            failures.push(format!("{name}: fired {got:?}, expected {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn history_forms_are_read_per_builder() {
    for (name, rel) in IMAGES {
        let r = audit(rel);
        let msg = |rule: &str| {
            of(&r, rule)
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join(" | ")
        };
        // HIST007: BuildKit records the URL; the classic builder and buildah record only
        // `ADD <content hash> in DEST` for a URL.
        let h7 = msg("HIST007");
        if *name == "buildkit" {
            assert!(h7.contains("ADD http://127.0.0.1:"), "{name}: {h7}");
        } else {
            assert!(
                h7.contains("recorded only its content hash"),
                "{name}: {h7}"
            );
        }
        // HIST005: `COPY . .` in BuildKit form; `COPY dir:<hash> in /src` elsewhere, found by
        // the layer holding go.mod with the sources.
        let h5 = msg("HIST005");
        if *name == "buildkit" {
            assert!(h5.contains("(COPY . .)"), "{name}: {h5}");
        } else {
            assert!(
                h5.contains("go.mod and sources in one layer"),
                "{name}: {h5}"
            );
        }
        // HIST002 on the piped download only, not on the verified one.
        let h2 = of(&r, "HIST002");
        assert_eq!(h2.len(), 1, "{name}: {}", msg("HIST002"));
        assert!(h2[0].message.contains("piped into tar"), "{name}");
        // HIST003 on the VERSION endpoint and on @latest; HIST001 on golang-go only.
        assert_eq!(of(&r, "HIST003").len(), 2, "{name}: {}", msg("HIST003"));
        let h1 = msg("HIST001");
        assert!(
            h1.contains("(golang-go)") && !h1.contains("golang-github"),
            "{name}: {h1}"
        );
        // SEC003: the two RUN steps after `ARG GITHUB_TOKEN`, masked.
        let s3 = of(&r, "SEC003");
        assert_eq!(s3.len(), 2, "{name}: {}", msg("SEC003"));
        for f in s3 {
            assert!(
                f.message.contains("ghp_…(40 chars)"),
                "{name}: {}",
                f.message
            );
            let cb = &f.evidence[0].history.as_ref().unwrap().created_by;
            assert!(
                cb.contains("GITHUB_TOKEN=ghp_…(40 chars)") && !cb.contains("R8q7"),
                "{name}: {cb}"
            );
        }
    }
}

/// The credential file removed by a later RUN is reported with both layers; the squashed
/// build never wrote it into a blob.
#[test]
fn deleted_credential_is_found_in_layered_builds() {
    for (name, rel) in IMAGES.iter().filter(|(n, _)| *n != "buildah-squash") {
        let r = audit(rel);
        let s1 = of(&r, "SEC001");
        assert_eq!(s1.len(), 1, "{name}");
        let e = &s1[0].evidence[0];
        assert_eq!(e.path.as_deref(), Some("/root/.netrc"), "{name}");
        let added = e.layer.as_ref().unwrap().index;
        assert_eq!(e.visibility, Visibility::DeletedIn(added + 1), "{name}");
        assert!(
            e.history
                .as_ref()
                .unwrap()
                .created_by
                .contains("printf 'machine git.example.com"),
            "{name}"
        );
    }
}

/// buildah without `--layers`: one layer, every instruction but the
/// last `empty_layer`, and the layer credited to `CMD`. Nothing is blamed on `CMD`: file
/// findings name the layer without a step, history findings name their own step and the
/// layer that holds its content.
#[test]
fn squashed_build_does_not_blame_cmd() {
    let r = audit("images/real-buildah-squash");
    assert_eq!(r.layers.len(), 1);
    assert_eq!(
        r.layers[0].created_by, None,
        "a squashed layer has no single step"
    );
    for f in &r.findings {
        for e in &f.evidence {
            if let Some(h) = &e.history {
                assert!(
                    !h.created_by.contains("CMD"),
                    "{} blames CMD: {}",
                    f.rule,
                    f.message
                );
            }
        }
    }
    let h4 = &of(&r, "HIST004")[0].evidence[0];
    assert_eq!(h4.layer.as_ref().map(|l| l.index), Some(0));
    assert!(h4
        .history
        .as_ref()
        .unwrap()
        .created_by
        .contains("go install"));
    let fs6 = &of(&r, "FS006")[0].evidence[0];
    assert!(fs6.history.is_none() && fs6.layer.is_some(), "{fs6:?}");
}
