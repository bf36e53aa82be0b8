//! The built `imgaudit` binary: exit codes, formats, output file, rule docs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs imgaudit with a fresh layer store (each run audits cold, as before the store).
fn imgaudit(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_imgaudit"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .expect("run imgaudit")
}

fn demo() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/demo")
        .display()
        .to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn demo_text_report_and_exit_codes() {
    let o = imgaudit(&[&demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("GO001 interpreter-missing"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("findings: 1 critical"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour when not a terminal");

    let o = imgaudit(&["--fail-on", "high", &demo()]);
    assert_eq!(o.status.code(), Some(1));
    let o = imgaudit(&["--fail-on", "critical", "--ignore", "GO001", &demo()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "ignored rules do not fail: {}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("1 suppressed by policy"));
}

#[test]
fn unauditable_input_exits_2_with_one_line() {
    let o = imgaudit(&["/nonexistent/image"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("imgaudit: error: /nonexistent/image: no such file or directory"),
        "{e}"
    );
    // Inputs that look like images but cannot be read as one: exit 2, never a clean report.
    // See: issue #12.
    let (tmp, empty) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rootfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/out/rootfs/clean");
    let fifo = tmp.path().join("image.tar");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (spec, want) in [
        (format!("dir:{}", rootfs.display()), "write rootfs:PATH"),
        (format!("oci:{}", demo()), ""),
        (empty.path().display().to_string(), "the directory is empty"),
        (fifo.display().to_string(), "a FIFO, not a regular file"),
    ] {
        let o = imgaudit(&[&spec]);
        let e = stderr(&o);
        if want.is_empty() {
            assert_eq!(o.status.code(), Some(0), "{spec}: {e}");
            continue;
        }
        assert_eq!(o.status.code(), Some(2), "{spec}: {}", stdout(&o));
        assert!(e.contains(want) && e.lines().count() == 1, "{spec}: {e}");
    }
    let o = imgaudit(&["--fail-on", "severe", &demo()]);
    assert_eq!(o.status.code(), Some(2));
    let o = imgaudit(&["--ignore", "XX123", &demo()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown rule id \"XX123\""));
}

#[test]
fn json_report_schema_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("r.json");
    let o = imgaudit(&[
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
        &demo(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["image"]["platform"], "linux/amd64");
    let app = v["binaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["path"] == "/app")
        .unwrap();
    assert_eq!(app["linkage"], "dynamic");
    assert_eq!(app["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(app["needed"][0], "libc.so.6");
    assert_eq!(app["unresolved"][0], "libc.so.6");
    assert_eq!(app["runnable"], false);
    assert_eq!(app["go"]["go"], "go1.27.3");
    assert_eq!(app["go"]["path"], "example.com/app");
    assert_eq!(app["go"]["build"]["CGO_ENABLED"], "1");
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "GO001");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["evidence"][0]["path"], "/app");
    assert!(f["evidence"][0]["layer"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(!f["remediation"].as_str().unwrap().is_empty());
}

#[test]
fn rules_and_explain() {
    let o = imgaudit(&["rules"]);
    assert_eq!(o.status.code(), Some(0));
    let t = stdout(&o);
    assert!(t.contains("GO001") && t.contains("CFG008"));
    let o = imgaudit(&["explain", "go001"]);
    assert!(stdout(&o).starts_with("# GO001 `interpreter-missing`"));
    let o = imgaudit(&["explain", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_lists_image_forms() {
    let o = imgaudit(&["--help"]);
    let t = stdout(&o);
    for needle in [
        "oci:PATH",
        "docker-archive:PATH",
        "dir:PATH",
        "rootfs:PATH",
        "oci-archive:PATH",
        "docker://REF",
        "--fail-on",
        "--platform",
        "--all-platforms",
    ] {
        assert!(t.contains(needle), "--help lacks {needle}");
    }
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/out/images")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make -C testdata fixtures` first",
        p.display()
    );
    p.display().to_string()
}

#[test]
fn sarif_cyclonedx_and_markdown_formats() {
    let o = imgaudit(&["--format", "sarif", &demo()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "GO001");
    let o = imgaudit(&["--format", "cyclonedx", &demo()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["bomFormat"].as_str(), v["specVersion"].as_str()),
        (Some("CycloneDX"), Some("1.6"))
    );
    assert!(v["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["purl"] == "pkg:golang/stdlib@v1.27.3"));
    let o = imgaudit(&["--format", "markdown", &demo()]);
    let t = stdout(&o);
    assert!(t.starts_with("### imgaudit: <code>"), "{t}");
    assert!(
        t.contains("<details open><summary><b>critical</b> (1)</summary>"),
        "{t}"
    );
}

#[test]
fn profile_flag_runs_dl_rules() {
    let clean = fixture("clean");
    let o = imgaudit(&["--profile", "auto", "--fail-on", "info", &clean]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "clean is silent under auto: {}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("profile static:nonroot (auto chose static:nonroot"),
        "{}",
        stdout(&o)
    );
    let o = imgaudit(&[
        "--profile",
        "static:nonroot",
        "--fail-on",
        "medium",
        &fixture("dl-extra"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = stdout(&o);
    assert!(
        t.contains("DL002 profile-extra-content") && t.contains("DL003 profile-extra-bytes"),
        "{t}"
    );
    let o = imgaudit(&["--profile", "tiny", &clean]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--profile: unknown profile \"tiny\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn policy_file_from_flag_and_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let extra = fixture("dl-extra");
    std::fs::write(
        dir.path().join("imgaudit.toml"),
        "fail_on = \"medium\"\nprofile = \"mine\"\n[severity]\nFS001 = \"low\"\n[[ignore]]\nrule = \"DL002\"\npath = \"/bin/*\"\nreason = \"debug shell, removed in the next release\"\n[profiles.mine]\nextends = \"static\"\nuser = \"nonroot\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_imgaudit"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    // Found in the working directory: FS001 lowered to low, DL002 on /bin/busybox ignored,
    // nothing left at medium or above.
    let o = run(&["--format", "json", &extra]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profile"]["name"], "mine");
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["FS001", "DL003"]);
    assert_eq!(v["findings"][0]["severity"], "low");
    assert_eq!(v["suppressed"][0]["finding"]["rule"], "DL002");
    // CLI flags override (--fail-on) and extend (--ignore) the file.
    let o = run(&["--fail-on", "low", &extra]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["--fail-on", "low", "--ignore", "FS001", &extra]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // --config names another file; errors name the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[ignore]]\nrule = \"FS001\"\npath = \"/a/[\"\n").unwrap();
    let o = run(&["--config", bad.to_str().unwrap(), &extra]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("ignore[0].path: bad glob"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&bad, "fail_on = \"high\"\nfail-on = \"low\"\n").unwrap();
    let o = run(&["-c", bad.to_str().unwrap(), &extra]);
    assert!(
        stderr(&o).contains("line 2, column 1: unknown field `fail-on`"),
        "{}",
        stderr(&o)
    );
    // The commented example file is valid.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../imgaudit.example.toml");
    let o = run(&["--config", example.to_str().unwrap(), &fixture("clean")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}
