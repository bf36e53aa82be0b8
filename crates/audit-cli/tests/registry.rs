//! `imgaudit REF` against the real distribution registry (issue #3): anonymous and
//! authenticated pulls, every credential source, TLS, platforms, Docker v2s2, zstd, and the
//! failures a user must see as one clear line (404, 401, TLS, digest mismatch, a registry
//! that dies mid-pull). Faults the real registry cannot produce (429, truncation, drip) are
//! tested against an in-process server in audit-core's `source::registry` tests.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The report without the fields that name where the image came from.
fn comparable(mut r: Value) -> Value {
    r["image"]["reference"] = Value::Null;
    r["image"]["source"] = Value::Null;
    r
}

fn local(name: &str, extra: &[&str]) -> Vec<Value> {
    let spec = format!("oci:{}", fixture(name).display());
    let mut args = vec!["-f", "json"];
    args.extend_from_slice(extra);
    args.push(&spec);
    json(&imgaudit(&args, &[]))
}

fn one_line_error(o: &std::process::Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {} stderr: {}",
        out(o),
        err(o)
    );
    assert!(o.stdout.is_empty(), "no report on failure: {}", out(o));
    let e = err(o);
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn anonymous_pull_matches_the_local_layout() {
    let reg = Registry::plain();
    reg.push(&fixture("clean"), "ns/clean:v1", &["--preserve-digests"]);
    let host = reg.host();
    let reference = format!("{host}/ns/clean:v1");
    let o = imgaudit(&["-f", "json", "--insecure", &host, &reference], &[]);
    assert!(
        o.stderr.is_empty(),
        "no progress or noise on a non-TTY stderr: {}",
        err(&o)
    );
    let remote = json(&o);
    let want = local("clean", &[]);
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0]["image"]["source"], "registry");
    assert_eq!(remote[0]["image"]["reference"], reference.as_str());
    let m = remote[0]["image"]["manifest_digest"].as_str().unwrap();
    assert_eq!(
        m,
        want[0]["image"]["manifest_digest"].as_str().unwrap(),
        "the tag is pinned to the manifest digest"
    );
    assert_eq!(comparable(remote[0].clone()), comparable(want[0].clone()));

    // By digest, with docker:// and with tag+digest: the same image.
    for spec in [
        format!("docker://{host}/ns/clean@{m}"),
        format!("{host}/ns/clean:v1@{m}"),
    ] {
        let r = json(&imgaudit(&["-f", "json", "--insecure", &host, &spec], &[]));
        assert_eq!(r[0]["image"]["manifest_digest"], m);
    }
    // Plain HTTP needs --insecure: the TLS failure says what to do.
    let e = one_line_error(&imgaudit(&[&reference], &[]));
    assert!(
        e.contains("TLS handshake failed") && e.contains(&format!("--insecure {host}")),
        "{e}"
    );
}

#[test]
fn multi_arch_index_platforms() {
    let reg = Registry::plain();
    reg.push(
        &fixture("clean-multiarch"),
        "ns/multi:1",
        &["--all", "--preserve-digests"],
    );
    let host = reg.host();
    let reference = format!("{host}/ns/multi:1");
    let arm = json(&imgaudit(
        &[
            "-f",
            "json",
            "--insecure",
            &host,
            "--platform",
            "linux/arm64",
            &reference,
        ],
        &[],
    ));
    assert_eq!(arm.len(), 1);
    assert_eq!(arm[0]["image"]["platform"], "linux/arm64");
    let want = local("clean-multiarch", &["--platform", "linux/arm64"]);
    assert_eq!(
        arm[0]["image"]["index_digest"],
        want[0]["image"]["index_digest"]
    );
    assert!(arm[0]["image"]["index_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(comparable(arm[0].clone()), comparable(want[0].clone()));

    let all = json(&imgaudit(
        &[
            "-f",
            "json",
            "--insecure",
            &host,
            "--all-platforms",
            &reference,
        ],
        &[],
    ));
    let platforms: Vec<&str> = all
        .iter()
        .map(|r| r["image"]["platform"].as_str().unwrap())
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64"],
        "the attestation manifest is skipped"
    );

    let e = one_line_error(&imgaudit(
        &["--insecure", &host, "--platform", "linux/s390x", &reference],
        &[],
    ));
    assert!(e.contains("no image for platform linux/s390x"), "{e}");
}

#[test]
fn docker_v2s2_and_zstd_layers() {
    let reg = Registry::plain();
    let host = reg.host();
    reg.push(&fixture("clean"), "ns/v2s2:1", &["--format", "v2s2"]);
    let v2 = json(&imgaudit(
        &[
            "-f",
            "json",
            "--insecure",
            &host,
            &format!("{host}/ns/v2s2:1"),
        ],
        &[],
    ));
    assert_eq!(
        v2[0]["layers"][0]["media_type"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        comparable(v2[0].clone())["findings"],
        comparable(local("clean", &[])[0].clone())["findings"]
    );

    // A fresh registry: skopeo would otherwise reuse the gzip blobs it already pushed.
    let zreg = Registry::plain();
    let zhost = zreg.host();
    zreg.push(&fixture("clean-zstd"), "ns/zstd:1", &["--preserve-digests"]);
    let z = json(&imgaudit(
        &[
            "-f",
            "json",
            "--insecure",
            &zhost,
            &format!("{zhost}/ns/zstd:1"),
        ],
        &[],
    ));
    assert!(
        z[0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["compression"] == "zstd"),
        "{}",
        z[0]["layers"]
    );
    assert_eq!(
        comparable(z[0].clone()),
        comparable(local("clean-zstd", &[])[0].clone())
    );
}

#[test]
fn missing_tag_and_repository_are_404() {
    let reg = Registry::plain();
    reg.push(&fixture("clean"), "ns/clean:v1", &[]);
    let host = reg.host();
    for (spec, shown) in [
        (format!("{host}/ns/clean:nope"), "ns/clean:nope"),
        (format!("{host}/ns/absent:v1"), "ns/absent:v1"),
    ] {
        let e = one_line_error(&imgaudit(&["--insecure", &host, &spec], &[]));
        assert!(e.contains(&format!("manifest {shown} not found")), "{e}");
    }
}

#[test]
fn corrupted_blob_is_a_hard_error_naming_the_layer() {
    let reg = Registry::plain();
    reg.push(&fixture("clean"), "ns/clean:v1", &["--preserve-digests"]);
    let host = reg.host();
    let manifest = local("clean", &[]);
    let layer = manifest[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap();
    let digest = layer["digest"].as_str().unwrap();
    let index = layer["index"].as_u64().unwrap();
    let file = reg.blob_file(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let e = one_line_error(&imgaudit(
        &["--insecure", &host, &format!("{host}/ns/clean:v1")],
        &[],
    ));
    assert!(
        e.contains(&format!("layer {index} ({digest}, ")) && e.contains("): blob digest mismatch"),
        "{e}"
    );
}

#[test]
fn registry_stopped_mid_pull() {
    let mut reg = Registry::plain();
    reg.push(&fixture("clean"), "ns/clean:v1", &[]);
    let pid = reg.pid();
    // Past the manifest and config, 1 MB into the largest layer: kill the registry.
    let proxy = Proxy::start(
        reg.port,
        1 << 20,
        Box::new(move || {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }),
    );
    let host = format!("127.0.0.1:{}", proxy.port);
    let t = Instant::now();
    let e = one_line_error(&imgaudit(
        &[
            "-j",
            "1",
            "--insecure",
            &host,
            &format!("{host}/ns/clean:v1"),
        ],
        &[],
    ));
    assert!(proxy.fired.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        e.contains("layer 7 (sha256:") && e.contains("after 5 attempts"),
        "{e}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "bounded by the retry budget"
    );
    reg.kill();
}

#[test]
fn a_cut_connection_is_resumed_with_a_range_request() {
    let reg = Registry::plain();
    reg.push(&fixture("clean"), "ns/clean:v1", &["--preserve-digests"]);
    let proxy = Proxy::start(reg.port, 1 << 20, Box::new(|| {}));
    let host = format!("127.0.0.1:{}", proxy.port);
    let r = json(&imgaudit(
        &[
            "-j",
            "1",
            "-f",
            "json",
            "--insecure",
            &host,
            &format!("{host}/ns/clean:v1"),
        ],
        &[],
    ));
    assert!(
        proxy.fired.load(std::sync::atomic::Ordering::SeqCst),
        "the connection was cut"
    );
    assert_eq!(
        comparable(r[0].clone()),
        comparable(local("clean", &[])[0].clone())
    );
}

/// TLS + htpasswd registry with `clean` pushed; returns it and the reference.
fn tls_registry() -> (Registry, String) {
    let reg = Registry::tls_auth();
    reg.push(&fixture("clean"), "ns/clean:v1", &["--preserve-digests"]);
    let r = format!("{}/ns/clean:v1", reg.host());
    (reg, r)
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn auth_json(host: &str, user: &str, pass: &str) -> String {
    serde_json::json!({"auths": {host: {"auth": b64(&format!("{user}:{pass}"))}}}).to_string()
}

#[test]
fn tls_and_basic_auth_with_flags() {
    let (reg, r) = tls_registry();
    let ca = reg.cert().display().to_string();
    let creds = format!("{USER}:{PASS}");
    let ok = json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, "--creds", &creds, &r],
        &[],
    ));
    assert_eq!(
        ok[0]["image"]["manifest_digest"],
        local("clean", &[])[0]["image"]["manifest_digest"]
    );
    let cert_dir = reg.cert_dir().display().to_string();
    json(&imgaudit(
        &["-f", "json", "--cert-dir", &cert_dir, "--creds", &creds, &r],
        &[],
    ));
    // --insecure: TLS without verification, still authenticated.
    json(&imgaudit(
        &[
            "-f",
            "json",
            "--insecure",
            &reg.host(),
            "--creds",
            &creds,
            &r,
        ],
        &[],
    ));

    let e = one_line_error(&imgaudit(&["--creds", &creds, &r], &[]));
    assert!(
        e.contains("TLS handshake failed: invalid peer certificate") && e.contains("--ca-file"),
        "{e}"
    );
    let e = one_line_error(&imgaudit(&["--ca-file", &ca, &r], &[]));
    assert!(
        e.contains("authentication required") && e.contains("no credentials were found"),
        "{e}"
    );
    let o = imgaudit(
        &[
            "--ca-file",
            &ca,
            "--creds",
            &format!("{USER}:wrong-hunter2"),
            &r,
        ],
        &[],
    );
    let e = one_line_error(&o);
    assert!(e.contains("were rejected"), "{e}");
    assert!(
        !e.contains("hunter2") && !e.contains(PASS),
        "no secret in messages: {e}"
    );
    // Not even in trace-level diagnostics.
    let o = imgaudit(
        &[
            "-vvv",
            "-f",
            "json",
            "-o",
            "/dev/null",
            "--ca-file",
            &ca,
            "--creds",
            &creds,
            &r,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let log = err(&o);
    assert!(
        log.contains("bearer token") || log.contains("registry GET"),
        "diagnostics at -vvv: {log}"
    );
    assert!(
        !log.contains(PASS) && !log.contains(&b64(&creds)),
        "no secret in diagnostics"
    );
}

#[test]
fn credentials_from_each_auth_file_in_order() {
    let (reg, r) = tls_registry();
    let ca = reg.cert().display().to_string();
    let host = reg.host();
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.json");
    let bad = d.path().join("bad.json");
    std::fs::write(&good, auth_json(&host, USER, PASS)).unwrap();
    std::fs::write(
        &bad,
        auth_json(&format!("https://{host}/v2/"), USER, "wrong"),
    )
    .unwrap();
    let docker_config = d.path().join("dc");
    std::fs::create_dir(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        auth_json(&host, USER, PASS),
    )
    .unwrap();
    let home = d.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        auth_json(&host, USER, PASS),
    )
    .unwrap();
    let (good, bad, dc, home) = (
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        docker_config.to_str().unwrap(),
        home.to_str().unwrap(),
    );

    json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, "--authfile", good, &r],
        &[],
    ));
    json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, &r],
        &[("REGISTRY_AUTH_FILE", good)],
    ));
    json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, &r],
        &[("DOCKER_CONFIG", dc)],
    ));
    json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, &r],
        &[("HOME", home)],
    ));
    // The first file that knows the registry wins, even with wrong credentials (keys match
    // by host: `https://HOST/v2/` is HOST).
    let e = one_line_error(&imgaudit(
        &["--ca-file", &ca, "--authfile", bad, &r],
        &[("HOME", home)],
    ));
    assert!(e.contains("rejected"), "{e}");
    let e = one_line_error(&imgaudit(
        &["--ca-file", &ca, &r],
        &[("REGISTRY_AUTH_FILE", bad), ("DOCKER_CONFIG", dc)],
    ));
    assert!(e.contains("rejected"), "{e}");
    // --creds beats every file.
    json(&imgaudit(
        &[
            "-f",
            "json",
            "--ca-file",
            &ca,
            "--creds",
            &format!("{USER}:{PASS}"),
            "--authfile",
            bad,
            &r,
        ],
        &[],
    ));
    // A missing --authfile is an error, not anonymous.
    let e = one_line_error(&imgaudit(
        &["--ca-file", &ca, "--authfile", "/nonexistent/auth.json", &r],
        &[],
    ));
    assert!(
        e.contains("credential lookup failed") && e.contains("/nonexistent/auth.json"),
        "{e}"
    );
}

#[test]
fn credential_helpers_on_path() {
    let (reg, r) = tls_registry();
    let ca = reg.cert().display().to_string();
    let host = reg.host();
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = d.path().join("helper.log");
    // A real helper speaking the docker-credential-helpers protocol: server URL on stdin.
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r url\necho \"$url\" >> {log}\nif [ \"$url\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}' \"$url\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        log = log.display()
    );
    let helper = bin.join("docker-credential-imgtest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let dc = d.path().join("dc");
    std::fs::create_dir(&dc).unwrap();
    let dcs = dc.to_str().unwrap();

    std::fs::write(
        dc.join("config.json"),
        serde_json::json!({"credHelpers": {&host: "imgtest"}}).to_string(),
    )
    .unwrap();
    json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, &r],
        &[("PATH", &path), ("DOCKER_CONFIG", dcs)],
    ));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim(),
        host,
        "the helper got the server URL on stdin"
    );

    std::fs::write(
        dc.join("config.json"),
        serde_json::json!({"credsStore": "imgtest"}).to_string(),
    )
    .unwrap();
    json(&imgaudit(
        &["-f", "json", "--ca-file", &ca, &r],
        &[("PATH", &path), ("DOCKER_CONFIG", dcs)],
    ));

    // "credentials not found" is anonymous, which this registry refuses.
    std::fs::write(
        dc.join("config.json"),
        serde_json::json!({"credHelpers": {&host: "imgtest"}}).to_string(),
    )
    .unwrap();
    let other = format!("localhost:{}/ns/clean:v1", reg.port);
    let e = one_line_error(&imgaudit(
        &["--insecure", &format!("localhost:{}", reg.port), &other],
        &[("PATH", &path), ("DOCKER_CONFIG", dcs)],
    ));
    assert!(
        e.contains("no credentials were found for localhost:"),
        "{e}"
    );

    // A helper that is not installed is an error naming it.
    std::fs::write(
        dc.join("config.json"),
        serde_json::json!({"credsStore": "imgaudit-absent"}).to_string(),
    )
    .unwrap();
    let e = one_line_error(&imgaudit(
        &["--ca-file", &ca, &r],
        &[("PATH", &path), ("DOCKER_CONFIG", dcs)],
    ));
    assert!(e.contains("docker-credential-imgaudit-absent"), "{e}");
}

#[test]
fn local_paths_win_over_references() {
    let d = tempfile::tempdir().unwrap();
    let ns = d.path().join("ns");
    std::fs::create_dir(&ns).unwrap();
    let clean = fixture("clean");
    std::os::unix::fs::symlink(&clean, ns.join("clean")).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_imgaudit"))
            .args(args)
            .current_dir(d.path())
            .env("XDG_CACHE_HOME", d.path().join("cache"))
            .output()
            .unwrap()
    };
    // `ns/clean` is a valid Docker Hub reference, but the local layout wins.
    let o = run(&["-f", "json", "ns/clean"]);
    assert_eq!(json(&o)[0]["image"]["source"], "oci-layout");
    // A mistyped path under an existing directory is not sent to Docker Hub.
    let e = one_line_error(&run(&["ns/clena"]));
    assert!(
        e.contains("no such local path") && e.contains("docker://ns/clena"),
        "{e}"
    );
}

#[test]
fn progress_bars_only_on_a_terminal() {
    let reg = Registry::plain();
    reg.push(&fixture("go-rules"), "ns/go:1", &[]);
    let host = reg.host();
    let bin = env!("CARGO_BIN_EXE_imgaudit");
    let d = tempfile::tempdir().unwrap();
    let report = d.path().join("r.json");
    // `script` gives imgaudit a pseudo-terminal for stdout and stderr.
    let cmd = format!(
        "{bin} -f json -o {} --insecure {host} {host}/ns/go:1",
        report.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("total"), "progress drawn on a TTY: {tty:?}");
    assert!(
        serde_json::from_slice::<Value>(&std::fs::read(&report).unwrap()).is_ok(),
        "the report is not mixed with bars"
    );
    let cmd = format!(
        "{bin} -q -f json -o {} --insecure {host} {host}/ns/go:1",
        report.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("total"),
        "--quiet hides the bars"
    );
}
