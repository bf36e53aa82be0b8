//! Every rule fires on the fixture built for it and stays silent on the clean,
//! distroless-style image and its format variants. The expected sets are exact: a rule that
//! starts firing where it should not fails this test too. They are read from
//! `testdata/expectations.toml`, the one place fixture results are written down. DL rules run
//! only with a profile: `fires` is without one (DL silent everywhere), `profiles` with each
//! profile named.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use audit_core::profile;
use audit_core::rules::{RuleSettings, RULES};
use audit_core::source::{self, PlatformChoice};
use audit_core::Auditor;
use audit_core::Report;

fn audit_with(spec: &str, platform: PlatformChoice) -> Vec<Report> {
    audit_profile(spec, platform, None)
}

fn audit_profile(spec: &str, platform: PlatformChoice, profile: Option<&str>) -> Vec<Report> {
    let src = source::open_local(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let settings = RuleSettings {
        profile: profile.map(|p| profile::builtin().choose("--profile", p).unwrap()),
        ..RuleSettings::default()
    };
    Auditor::builder()
        .platform(platform)
        .settings(settings)
        .today("2026-11-27")
        .build()
        .audit(&src, spec)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn fired(r: &Report) -> BTreeSet<&'static str> {
    r.findings.iter().map(|f| f.rule).collect()
}

fn image(name: &str) -> String {
    common::out(&format!("images/{name}")).display().to_string()
}

/// What a fixture must report (`testdata/expectations.toml`, which documents the fields).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    fires: BTreeSet<String>,
    #[serde(default)]
    profiles: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    files: BTreeMap<String, BTreeSet<String>>,
}

/// Every fixture's expectations, by fixture name.
fn expectations() -> BTreeMap<String, Expect> {
    let path = common::testdata().join("expectations.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Where fixture `name` is: `demo` is committed, the others are built; `NAME:TAG` names one
/// image of a layout that holds several.
fn fixture(name: &str) -> String {
    match name.split_once(':') {
        _ if name == "demo" => common::testdata().join("demo").display().to_string(),
        Some((layout, tag)) => format!("{}:{tag}", image(layout)),
        None => image(name),
    }
}

fn ids(set: BTreeSet<&str>) -> BTreeSet<String> {
    set.into_iter().map(str::to_string).collect()
}

#[test]
fn each_fixture_fires_exactly_its_rules_under_a_profile() {
    let mut failures = Vec::new();
    for (name, e) in expectations() {
        for (profile, want) in &e.profiles {
            let reports = audit_profile(&fixture(&name), PlatformChoice::Default, Some(profile));
            let got = ids(fired(&reports[0]));
            if got != *want {
                failures.push(format!(
                    "{name} --profile {profile}: fired {got:?}, expected {want:?}"
                ));
            }
            assert!(
                reports[0].profile.is_some(),
                "{name}: the report carries the profile comparison"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What DL001 reports on the static image that lacks everything, one fact per finding.
#[test]
fn dl001_names_each_missing_fact() {
    let r = &audit_profile(
        &image("dl-static-gaps"),
        PlatformChoice::Default,
        Some("static:nonroot"),
    )[0];
    let msgs: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "DL001")
        .map(|f| f.message.as_str())
        .collect();
    for want in [
        "CA certificate bundle /etc/ssl/certs/ca-certificates.crt is missing",
        "time zone database (tzdata) /usr/share/zoneinfo is missing",
        "temporary directory /tmp has mode 0755, expected 1777",
        "/etc/passwd has no user nonroot (65532)",
        "/etc/group has no group nonroot (65532)",
        "config Env has no SSL_CERT_FILE",
        "the image runs as root (User is \"0\")",
        "dpkg metadata (/var/lib/dpkg/status.d/) of 1 package is missing: tzdata",
    ] {
        assert!(
            msgs.iter().any(|m| m.contains(want)),
            "no DL001 saying {want:?} in {msgs:#?}"
        );
    }
    // The root variant does not ask for a non-root user.
    let r = &audit_profile(
        &image("dl-static-gaps"),
        PlatformChoice::Default,
        Some("static"),
    )[0];
    assert!(!r
        .findings
        .iter()
        .any(|f| f.rule == "DL001" && f.message.contains("runs as root")));
}

#[test]
fn auto_profile_and_rebase_estimate() {
    let r = &audit_profile(&image("dl-cc"), PlatformChoice::Default, Some("auto"))[0];
    let p = r.profile.as_ref().unwrap();
    assert_eq!(p.name, "cc:nonroot");
    assert!(
        p.reason.as_deref().unwrap().contains("C++ runtime"),
        "{:?}",
        p.reason
    );
    let r = &audit_profile(&image("dl-base"), PlatformChoice::Default, Some("auto"))[0];
    assert_eq!(r.profile.as_ref().unwrap().name, "base:nonroot");
    let r = &audit_profile(
        &image("dl-static-gaps"),
        PlatformChoice::Default,
        Some("auto"),
    )[0];
    assert_eq!(
        r.profile.as_ref().unwrap().name,
        "static",
        "runs as root: the root variant"
    );

    // dl-base on static: glibc and OpenSSL are extra; the app needs glibc, nothing needs OpenSSL.
    let r = &audit_profile(
        &image("dl-base"),
        PlatformChoice::Default,
        Some("static:nonroot"),
    )[0];
    let dl1: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "DL001")
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        dl1.iter().any(|m| m.contains("/app is dynamically linked")),
        "{dl1:?}"
    );
    let dl2 = r.findings.iter().find(|f| f.rule == "DL002").unwrap();
    assert!(
        dl2.message.contains("libc.so.6, needed by /app") && dl2.message.contains("libcrypto.so.3"),
        "{}",
        dl2.message
    );
    let p = r.profile.as_ref().unwrap();
    assert!(p.removable_bytes > 1 << 20, "OpenSSL is dropped: {p:?}");
    assert_eq!(p.estimated_bytes, p.baseline_bytes + p.application_bytes);
    let dl3 = r.findings.iter().find(|f| f.rule == "DL003").unwrap();
    assert!(
        dl3.message
            .contains("; largest: /usr/lib/x86_64-linux-gnu/libcrypto.so.3 4."),
        "largest first: {}",
        dl3.message
    );
    assert!(dl3
        .evidence
        .iter()
        .any(|e| e.path.as_deref() == Some("/usr/lib/x86_64-linux-gnu/libcrypto.so.3")));

    // dl-extra: busybox, apt lists and locales are dropped; /app travels.
    let r = &audit_profile(
        &image("dl-extra"),
        PlatformChoice::Default,
        Some("static:nonroot"),
    )[0];
    let dl3 = r.findings.iter().find(|f| f.rule == "DL003").unwrap();
    let paths: Vec<&str> = dl3
        .evidence
        .iter()
        .filter_map(|e| e.path.as_deref())
        .collect();
    assert!(
        dl3.message
            .contains("; largest: /var/lib/apt 2.0 MiB, /bin/busybox 1.9 MiB (FS001)"),
        "{}",
        dl3.message
    );
    assert!(
        paths.contains(&"/bin/busybox") && paths.contains(&"/usr/share/locale"),
        "{paths:?}"
    );
    assert!(dl3.message.contains("estimated size"), "{}", dl3.message);
    let p = r.profile.as_ref().unwrap();
    let app = r.binaries.iter().find(|b| b.path == "/app").unwrap().size;
    assert!(
        p.application_bytes >= app && p.application_bytes < app + 4096,
        "{p:?}"
    );
}

/// The clean image in every other shape the sources accept: zstd, mixed and uncompressed
/// (mislabelled) layers, Docker v2s2, multi-arch indexes, and the four archive forms.
fn clean_variant_specs() -> Vec<String> {
    let layouts = [
        "clean-zstd",
        "clean-mixed",
        "clean-v2s2",
        "clean-uncompressed-mislabelled",
        "clean-multiarch",
        "clean-multiarch-flat",
    ];
    let archives = [
        "clean-docker.tar",
        "clean-docker25.tar",
        "clean-oci.tar",
        "clean-skopeo.tar",
    ];
    let layouts = layouts.iter().map(|n| image(n));
    layouts
        .chain(
            archives
                .iter()
                .map(|a| common::out(&format!("archives/{a}")).display().to_string()),
        )
        .collect()
}

/// The clean image in every format and compression stays silent under `auto`.
#[test]
fn clean_variants_are_silent_under_auto() {
    for spec in &std::iter::once(image("clean"))
        .chain(clean_variant_specs())
        .collect::<Vec<_>>()
    {
        for r in audit_profile(spec, PlatformChoice::All, Some("auto")) {
            assert!(
                r.findings.is_empty(),
                "{spec} {:?}: {:?}",
                r.image.platform,
                fired(&r)
            );
            assert_eq!(r.profile.as_ref().unwrap().name, "static:nonroot");
        }
    }
    let rootfs = format!("rootfs:{}", common::out("rootfs/clean").display());
    let r = &audit_profile(&rootfs, PlatformChoice::Default, Some("static:nonroot"))[0];
    assert!(r.findings.is_empty(), "{:?}", fired(r));
}

#[test]
fn each_fixture_fires_exactly_its_rules() {
    let mut failures = Vec::new();
    for (name, e) in expectations() {
        let reports = audit_with(&fixture(&name), PlatformChoice::Default);
        assert_eq!(reports.len(), 1);
        let got = ids(fired(&reports[0]));
        if got != e.fires {
            failures.push(format!("{name}: fired {got:?}, expected {:?}", e.fires));
        }
        for (path, want) in &e.files {
            let got: BTreeSet<String> = reports[0]
                .findings
                .iter()
                .filter(|f| f.evidence.iter().any(|ev| ev.path.as_deref() == Some(path)))
                .map(|f| f.rule.to_string())
                .collect();
            if got != *want {
                failures.push(format!("{name} {path}: fired {got:?}, expected {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_firing_fixture() {
    let covered: BTreeSet<String> = expectations()
        .into_values()
        .flat_map(|e| {
            e.fires
                .into_iter()
                .chain(e.profiles.into_values().flatten())
        })
        .collect();
    for r in RULES {
        assert!(
            covered.contains(r.id),
            "{} has no fixture that fires it",
            r.id
        );
    }
}

/// The clean image in every container format and compression: same files, no findings.
#[test]
fn clean_image_is_clean_in_every_format() {
    let base = &audit_with(&image("clean"), PlatformChoice::Default)[0];
    for spec in &clean_variant_specs() {
        let r = &audit_with(spec, PlatformChoice::Default)[0];
        assert!(r.findings.is_empty(), "{spec}: {:?}", fired(r));
        assert_eq!(
            r.image.files, base.image.files,
            "{spec}: merged file count differs"
        );
        assert_eq!(r.binaries.len(), base.binaries.len(), "{spec}");
        assert_eq!(r.image.platform.as_deref(), Some("linux/amd64"), "{spec}");
        let b = &r
            .binaries
            .iter()
            .find(|b| b.path == "/app")
            .expect("/app")
            .go
            .as_ref()
            .unwrap()
            .info
            .as_ref()
            .unwrap()
            .go_version;
        assert_eq!(b, "go1.27.3");
    }
    // Same image, same identity, whatever the layout.
    {
        let (a, b) = ("clean-oci.tar", "clean");
        let ra = &audit_with(
            &common::out(&format!("archives/{a}")).display().to_string(),
            PlatformChoice::Default,
        )[0];
        let rb = &audit_with(&image(b), PlatformChoice::Default)[0];
        assert_eq!(ra.image.manifest_digest, rb.image.manifest_digest);
    }
}

#[test]
fn rootfs_directory_applies_filesystem_rules_only() {
    let spec = format!("rootfs:{}", common::out("rootfs/clean").display());
    let r = &audit_with(&spec, PlatformChoice::Default)[0];
    assert!(r.findings.is_empty(), "{:?}", fired(r));
    let cfg: Vec<&str> = RULES
        .iter()
        .filter(|r| r.needs_config)
        .map(|r| r.id)
        .collect();
    assert!(
        cfg.iter().any(|id| id.starts_with("CFG")) && cfg.iter().any(|id| id.starts_with("HIST"))
    );
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
    let platforms: Vec<_> = all
        .iter()
        .map(|r| r.image.platform.clone().unwrap())
        .collect();
    assert_eq!(
        platforms,
        vec!["linux/amd64", "linux/arm64"],
        "attestation manifests are skipped"
    );
    let src = source::open_local(&spec).unwrap();
    let err = Auditor::builder()
        .platform(PlatformChoice::Exact("linux/s390x".parse().unwrap()))
        .build()
        .audit(&src, &spec)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no image for platform linux/s390x"),
        "{err}"
    );
}

fn findings_of<'r>(r: &'r Report, rule: &str) -> Vec<&'r audit_core::Finding> {
    r.findings.iter().filter(|f| f.rule == rule).collect()
}

/// SEC001 reads every layer: files a later layer deleted or replaced are reported with the
/// layer that holds them and the one that removed them.
#[test]
fn sec001_reports_files_in_every_layer_with_their_fate() {
    use audit_core::finding::Visibility;
    let r = &audit_with(&image("sec-rules"), PlatformChoice::Default)[0];
    let mut got: Vec<(String, Visibility)> = findings_of(r, "SEC001")
        .iter()
        .map(|f| {
            (
                f.evidence[0].path.clone().unwrap(),
                f.evidence[0].visibility,
            )
        })
        .collect();
    got.sort();
    let creds = 8; // the `COPY creds/ /` layer; the next one deletes and replaces
    let want: Vec<(String, Visibility)> = vec![
        ("/root/.aws/credentials".into(), Visibility::Final),
        ("/root/.docker/config.json".into(), Visibility::Final),
        (
            "/root/.git-credentials".into(),
            Visibility::OverwrittenIn(creds + 1),
        ),
        ("/root/.netrc".into(), Visibility::DeletedIn(creds + 1)),
        ("/root/.npmrc".into(), Visibility::Final),
        ("/root/.pypirc".into(), Visibility::Final),
        ("/root/.ssh/id_ed25519".into(), Visibility::Final),
        ("/srv/app/.env".into(), Visibility::DeletedIn(creds + 1)),
        ("/srv/app/config/settings.yaml".into(), Visibility::Final),
    ];
    assert_eq!(got, want);
    for f in findings_of(r, "SEC001") {
        let e = &f.evidence[0];
        assert_eq!(
            e.layer.as_ref().map(|l| l.index),
            Some(creds),
            "{}",
            f.message
        );
        assert!(
            e.history
                .as_ref()
                .is_some_and(|h| h.created_by.starts_with("COPY creds/")),
            "{}",
            f.message
        );
    }
    let netrc = findings_of(r, "SEC001")
        .into_iter()
        .find(|f| f.message.starts_with("/root/.netrc"))
        .unwrap();
    assert!(
        netrc.message.contains("deleted in layer 9")
            && netrc.message.contains("machine git.example.com"),
        "{}",
        netrc.message
    );
    // SEC002 per variable, SEC004 per setting; the near misses (GPG_KEY fingerprint,
    // TLS_KEY_FILE path, empty API_KEY, SESSION_SECRET=changeme) stay silent.
    let sec2: Vec<&str> = findings_of(r, "SEC002")
        .iter()
        .map(|f| f.message.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(sec2, vec!["GITHUB_TOKEN", "GOPROXY"]);
    let sec4: Vec<&str> = findings_of(r, "SEC004")
        .iter()
        .map(|f| f.message.split(['=', ' ']).nth(1).unwrap())
        .collect();
    assert_eq!(sec4, vec!["GOINSECURE", "GOSUMDB"]);
    let mut sec3: Vec<&str> = findings_of(r, "SEC003")
        .iter()
        .map(|f| {
            f.evidence[0]
                .history
                .as_ref()
                .unwrap()
                .created_by
                .split_whitespace()
                .next()
                .unwrap()
        })
        .collect();
    sec3.sort_unstable();
    assert_eq!(sec3, vec!["ARG", "ENV", "LABEL", "RUN"]);
    // Labels are shown in reports; a token in one is masked there too.
    assert_eq!(
        r.image
            .labels
            .get("org.example.ci-token")
            .map(String::as_str),
        Some("ghp_…(40 chars)")
    );
}

/// No credential value reaches any output: the JSON and text reports of the SEC fixture
/// hold masks (`ghp_…(40 chars)`) only. The values are the fixture's (testdata/images.py
/// FAKE), assembled from pieces here as there.
#[test]
fn secret_values_never_reach_reports() {
    use audit_core::report::{Format, Json, Text};
    let r = audit_with(&image("sec-rules"), PlatformChoice::Default);
    let mut out = Vec::new();
    Json { pretty: true }.write(&r, &mut out).unwrap();
    Text {
        color: false,
        all_binaries: true,
    }
    .write(&r, &mut out)
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    let values = [
        format!("ghp_{}{}", "R8q7P6o5N4m3L2k1", "J0i9H8g7F6e5D4c3B2a1"),
        format!("ghp_{}{}", "Zz9Yy8Xx7Ww6Vv5U", "u4Tt3Ss2Rr1Qq0Pp9Oo8"),
        format!("glpat-{}{}", "Xy3zW8vU5t", "S2rQ9pO6nM"),
        format!("AKIA{}{}", "Q3EGRT5W", "XZ2YBN7K"),
        format!("{}{}", "Zq8rT2vX9pL4mN6b", "C1dF3gH5/sW0eR2tY4uI6oP8"),
        format!("npm_{}{}", "Xq9LrT2mV8bN4cK7dF1g", "H3jW5sZ0aE6yU2iO"),
        format!("s3cr3t-{}", "Pa55w0rd-42"),
        format!("r3g-{}", "Pa55-w0rd-7731"),
        format!("tok3n-{}", "Va1ue-9931-xq"),
        format!("hunter2-{}", "hunter2"),
        "pypi-AgEIcHlwaS5vcmc".to_string(),
        "b3BlbnNzaC1rZXktdjE".to_string(), // the key body
    ];
    for v in &values {
        assert!(!out.contains(v.as_str()), "report leaks {v}");
    }
    assert!(out.contains("ghp_…(40 chars)"));
}

/// HIST rules fire on the anti-pattern steps of hist-rules and not on their near misses
/// (verified download, library package, `echo`, `ADD --checksum`, a private GOCACHE).
#[test]
fn hist_rules_fire_on_the_bad_steps_only() {
    let r = &audit_with(&image("hist-rules"), PlatformChoice::Default)[0];
    // Each rule's findings, as the distinctive part of the step they point at.
    let steps = |rule: &str, marks: &[&str]| {
        let got: Vec<String> = findings_of(r, rule)
            .iter()
            .map(|f| f.evidence[0].history.as_ref().unwrap().created_by.clone())
            .collect();
        assert_eq!(got.len(), marks.len(), "{rule}: {got:?}");
        for (g, m) in got.iter().zip(marks) {
            assert!(g.contains(m), "{rule}: {g:?} should be the step with {m:?}");
        }
    };
    steps(
        "HIST001",
        &["apt-get install -y --no-install-recommends golang-go"],
    );
    steps(
        "HIST002",
        &[
            "curl -fsSL https://go.dev/dl/go1.22.5.linux-amd64.tar.gz | tar",
            "wget -qO- http://get.example.com/install.sh | sh",
        ],
    );
    steps(
        "HIST003",
        &["https://go.dev/VERSION?m=text", "goimports@latest"],
    );
    steps(
        "HIST004",
        &["go install golang.org/x/tools/cmd/goimports@latest"],
    );
    steps("HIST005", &["COPY . ."]);
    steps("HIST006", &["ENV GOPATH=/go"]);
    steps("HIST007", &["ADD https://example.com/tool.tgz"]);
    // HIST005 names both steps and the layers that hold them.
    let h5 = &findings_of(r, "HIST005")[0];
    assert_eq!(h5.evidence.len(), 2);
    assert!(h5.evidence.iter().all(|e| e.layer.is_some()));
}

/// Every file whose content some code reads is declared (`audit_core::inspect::reads`):
/// `MergedFs::content` checks each path against the declarations in builds with debug
/// assertions, and this test drives every rule, the profile comparison, the loader check and
/// the package readers over every fixture image, archive and root filesystem (every platform,
/// `--profile auto`). An undeclared read panics here instead of silently seeing no file.
#[test]
fn every_content_read_is_declared() {
    const {
        assert!(
            cfg!(debug_assertions),
            "the declaration check is a debug assertion: build this test without --release"
        );
    }
    let mut specs: Vec<String> = Vec::new();
    for dir in ["images", "archives"] {
        let mut found: Vec<String> = std::fs::read_dir(common::out(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "tar"))
            .map(|p| p.display().to_string())
            .collect();
        found.sort();
        specs.extend(found);
    }
    specs.push(format!("rootfs:{}", common::out("rootfs/clean").display()));
    let mut audited = 0;
    while let Some(spec) = specs.pop() {
        let run = source::open_local(&spec)
            .map_err(audit_core::Error::from)
            .and_then(|src| {
                let settings = RuleSettings {
                    profile: Some(profile::builtin().choose("--profile", "auto").unwrap()),
                    ..RuleSettings::default()
                };
                Auditor::builder()
                    .platform(PlatformChoice::All)
                    .settings(settings)
                    .build()
                    .audit(&src, &spec)
            });
        match run {
            Ok(reports) => audited += reports.len(),
            Err(audit_core::Error::Source(audit_core::SourceError::Ambiguous {
                choices, ..
            })) => specs.extend(choices.split(", ").map(|c| format!("{spec}:{c}"))),
            Err(e) => panic!("{spec}: {e}"),
        }
    }
    assert!(audited > 40, "{audited} images audited");
}
