//! The Harbor scanner adapter and the Gatekeeper external-data provider of `imgaudit serve`
//! end to end (issue #10): the built binary, the real distribution registry with htpasswd
//! auth holding fixture images, requests shaped as Harbor and Gatekeeper send them, and every
//! Harbor response body validated against the schemas of the committed OpenAPI document
//! (testdata/harbor/scanner-adapter-openapi-v1.2.yaml, read with PyYAML).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::server::*;
use support::*;

const SPEC: &str = "../../testdata/harbor/scanner-adapter-openapi-v1.2.yaml";
const VULN: &str = "application/vnd.security.vulnerability.report; version=1.1";
const VULN_1_0: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
const SBOM: &str = "application/vnd.security.sbom.report+json; version=1.0";
const SCAN_REQUEST: &str = "application/vnd.scanner.adapter.scan.request+json; version=1.1";
const ADAPTER_USER: &str = "harbor";
const ADAPTER_PASS: &str = "adapter-pass-7f3a";

/// The OpenAPI document as JSON (PyYAML reads the YAML).
fn spec() -> Value {
    require("python3");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC);
    let o = Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python3 with PyYAML (python3-yaml) is needed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Validators for the spec's component schemas: OpenAPI 3.0 schemas are JSON Schema (draft 4
/// to 7 keywords) once `#/components/schemas/X` refers into `definitions` and `nullable` is
/// dropped.
struct Schemas(Value);

impl Schemas {
    fn load() -> Self {
        let mut text = spec()["components"]["schemas"].to_string();
        text = text.replace("#/components/schemas/", "#/definitions/");
        let mut defs: Value = serde_json::from_str(&text).unwrap();
        strip_nullable(&mut defs);
        Self(defs)
    }

    fn check(&self, name: &str, doc: &Value) {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": self.0,
            "allOf": [{"$ref": format!("#/definitions/{name}")}],
        });
        let v = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles");
        let errors: Vec<String> = v
            .iter_errors(doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .take(10)
            .collect();
        assert!(
            errors.is_empty(),
            "{name} does not validate:\n{}\n{doc:#}",
            errors.join("\n")
        );
    }
}

fn strip_nullable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("nullable");
            m.values_mut().for_each(strip_nullable);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}

/// The manifest digest of a fixture's OCI layout (skopeo copies it unchanged).
fn digest_of(fixture_name: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(fixture(fixture_name).join("index.json")).unwrap())
            .unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// An HTTP client for the adapter's plain-HTTP listener (no redirects followed: the 302s
/// are part of the protocol).
fn plain_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Harbor's side of the conversation with one adapter.
struct Harbor<'a> {
    base: String,
    client: reqwest::blocking::Client,
    auth: Option<String>,
    server: &'a Server,
}

struct Answer {
    code: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl<'a> Harbor<'a> {
    fn plain(server: &'a Server, auth: Option<String>) -> Self {
        Self {
            base: format!("http://127.0.0.1:{}", server.harbor_port.unwrap()),
            client: plain_client(),
            auth,
            server,
        }
    }

    /// The adapter's HTTPS listener (serve's certificate, no `--harbor-plain-http`).
    fn tls(server: &'a Server, auth: Option<String>) -> Self {
        Self {
            base: format!("https://127.0.0.1:{}", server.harbor_port.unwrap()),
            client: tls_builder(&[&server.cert])
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            auth,
            server,
        }
    }

    fn send(&self, r: reqwest::blocking::RequestBuilder) -> Answer {
        let r = match &self.auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        let resp = r.send().unwrap();
        Answer {
            code: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            headers: resp.headers().clone(),
            body: resp.text().unwrap(),
        }
    }

    fn get(&self, path: &str, accept: Option<&str>) -> Answer {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        self.send(r)
    }

    fn post_scan(&self, body: &Value) -> Answer {
        self.send(
            self.client
                .post(format!("{}/api/v1/scan", self.base))
                .header("Content-Type", SCAN_REQUEST)
                .body(body.to_string()),
        )
    }

    /// Polls a report through its 302s; returns the final answer and the number of 302s.
    fn poll(&self, id: &str, accept: &str, query: &str) -> (Answer, usize) {
        let t = Instant::now();
        let mut redirects = 0;
        loop {
            let a = self.get(&format!("/api/v1/scan/{id}/report{query}"), Some(accept));
            if a.code != 302 {
                return (a, redirects);
            }
            redirects += 1;
            let refresh: u64 = a.headers["refresh-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&refresh));
            assert!(
                t.elapsed() < Duration::from_secs(240),
                "scan {id} still running\n{}",
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A scan request as Harbor's job service sends it.
fn scan_request(registry: &str, auth: Option<&str>, repo: &str, digest: &str) -> Value {
    json!({
        "registry": {"url": format!("https://{registry}"), "authorization": auth},
        "artifact": {
            "repository": repo,
            "digest": digest,
            "tag": "1",
            "mime_type": "application/vnd.oci.image.manifest.v1+json",
        },
        "enabled_capabilities": [
            {"type": "vulnerability", "produces_mime_types": [VULN]},
            {"type": "sbom", "produces_mime_types": [SBOM], "parameters": {"sbom_media_types": ["application/vnd.cyclonedx+json"]}},
        ],
    })
}

/// The adapter's Basic credential file in `dir`.
fn adapter_credential(dir: &std::path::Path) -> String {
    let p = dir.join("adapter-credential");
    std::fs::write(&p, format!("{ADAPTER_USER}:{ADAPTER_PASS}\n")).unwrap();
    p.display().to_string()
}

fn adapter_flags<'a>(reg: &'a Registry, auth_file: &'a str) -> Vec<&'a str> {
    let _ = reg;
    vec![
        "--harbor-listen",
        "127.0.0.1:0",
        "--harbor-plain-http",
        "--harbor-auth",
        "basic",
        "--harbor-auth-file",
        auth_file,
    ]
}

#[test]
fn harbor_flow_over_a_real_registry() {
    let schemas = Schemas::load();
    let reg = Registry::tls_auth();
    reg.push(&fixture("cfg-entry"), "library/bad", &[]); // CFG003 critical
    reg.push(&fixture("go-rules"), "library/go", &[]);
    reg.push(&fixture("clean"), "library/clean", &[]);
    let d = tempfile::tempdir().unwrap();
    let auth_file = adapter_credential(d.path());
    let ca = reg.cert().display().to_string();
    let mut flags = adapter_flags(&reg, &auth_file);
    flags.extend(["--ca-file", ca.as_str()]);
    let s = Server::start("", &flags);
    let h = Harbor::plain(&s, Some(basic(ADAPTER_USER, ADAPTER_PASS)));
    let host = reg.host();
    let creds = basic(USER, PASS);

    // Metadata, as Harbor reads it when the scanner is registered.
    let m = h.get("/api/v1/metadata", None);
    assert_eq!(m.code, 200, "{}", m.body);
    assert_eq!(
        m.content_type,
        "application/vnd.scanner.adapter.metadata+json; version=1.1"
    );
    let meta = m.json();
    schemas.check("ScannerAdapterMetadata", &meta);
    let caps = meta["capabilities"].as_array().unwrap();
    assert_eq!(caps[0]["type"], "vulnerability");
    assert_eq!(caps[1]["type"], "sbom");
    assert_eq!(
        caps[1]["additional_attributes"]["sbom_media_types"],
        json!(["application/vnd.cyclonedx+json"])
    );

    // The adapter's own authentication: nothing, or wrong credentials, is 401.
    for auth in [None, Some(basic(ADAPTER_USER, "wrong"))] {
        let a = Harbor::plain(&s, auth).get("/api/v1/metadata", None);
        assert_eq!(a.code, 401, "{}", a.body);
        schemas.check("ErrorResponse", &a.json());
    }
    // Probes need no credential.
    assert_eq!(Harbor::plain(&s, None).get("/healthz", None).code, 200);

    // A scan with the registry credentials in registry.authorization; polled through 302s.
    let bad = digest_of("cfg-entry");
    let a = h.post_scan(&scan_request(&host, Some(&creds), "library/bad", &bad));
    assert_eq!(a.code, 202, "{}", a.body);
    assert_eq!(
        a.content_type,
        "application/vnd.scanner.adapter.scan.response+json; version=1.0"
    );
    schemas.check("ScanResponse", &a.json());
    let id = a.json()["id"].as_str().unwrap().to_string();
    let (r, redirects) = h.poll(&id, VULN, "");
    assert_eq!(r.code, 200, "{}\n{}", r.body, s.log());
    assert_eq!(r.content_type, VULN);
    let report = r.json();
    schemas.check("HarborVulnerabilityReport", &report);
    eprintln!("first scan: {redirects} redirects before the report");
    assert_eq!(report["artifact"]["digest"], bad.as_str());
    assert_eq!(report["artifact"]["repository"], "library/bad");
    assert_eq!(report["scanner"]["name"], "imgaudit");
    assert_eq!(report["severity"], "Critical");
    let items = report["vulnerabilities"].as_array().unwrap();
    let cfg003 = items
        .iter()
        .find(|v| v["id"] == "CFG003")
        .unwrap_or_else(|| panic!("no CFG003 in {report:#}"));
    assert_eq!(cfg003["severity"], "Critical");
    assert_eq!(
        cfg003["links"][0],
        "https://github.com/imgaudit/imgaudit/blob/main/docs/rules/CFG003.md"
    );
    assert!(cfg003["description"]
        .as_str()
        .unwrap()
        .contains("Remediation: "));
    assert_eq!(cfg003["vendor_attributes"]["rule"], "CFG003");
    // The older media type carries the same items.
    let (old, _) = h.poll(&id, VULN_1_0, "");
    assert_eq!(old.code, 200);
    assert_eq!(old.content_type, VULN_1_0);
    schemas.check("HarborVulnerabilityReport", &old.json());
    assert_eq!(old.json()["vulnerabilities"], report["vulnerabilities"]);

    // The SBOM: the same CycloneDX document as `imgaudit audit --format cyclonedx`.
    let q = "?sbom_media_type=application%2Fvnd.cyclonedx%2Bjson";
    let (sb, _) = h.poll(&id, SBOM, q);
    assert_eq!(sb.code, 200, "{}", sb.body);
    assert_eq!(sb.content_type, SBOM);
    let sbom = sb.json();
    schemas.check("HarborSbomReport", &sbom);
    assert_eq!(sbom["media_type"], "application/vnd.cyclonedx+json");
    let reference = format!("{host}/library/bad@{bad}");
    let cli = imgaudit(
        &[
            "-q",
            "--format",
            "cyclonedx",
            "--creds",
            &format!("{USER}:{PASS}"),
            "--ca-file",
            &ca,
            &reference,
        ],
        &[],
    );
    let cli: Value =
        serde_json::from_slice(&cli.stdout).unwrap_or_else(|e| panic!("{e}: {}", err(&cli)));
    assert_eq!(
        sbom["sbom"], cli,
        "the adapter's SBOM is the CLI's CycloneDX"
    );

    // What the report operation refuses.
    let no_type = h.get(&format!("/api/v1/scan/{id}/report"), Some(SBOM));
    assert_eq!(no_type.code, 400, "{}", no_type.body);
    schemas.check("ErrorResponse", &no_type.json());
    let spdx = h.get(
        &format!("/api/v1/scan/{id}/report?sbom_media_type=application/spdx%2Bjson"),
        Some(SBOM),
    );
    assert_eq!(spdx.code, 501, "{}", spdx.body);
    schemas.check("ErrorResponse", &spdx.json());
    let raw = h.get(
        &format!("/api/v1/scan/{id}/report"),
        Some("application/vnd.scanner.adapter.vuln.report.raw"),
    );
    assert_eq!(raw.code, 501);
    let unknown = h.get(
        "/api/v1/scan/3fa85f64-5717-4562-b3fc-2c963f66afa6/report",
        Some(VULN),
    );
    assert_eq!(unknown.code, 404);

    // Invalid scan requests: 400 for what is not one, 422 for invalid fields.
    let post_raw = |body: &str| {
        h.send(
            h.client
                .post(format!("{}/api/v1/scan", h.base))
                .header("Content-Type", SCAN_REQUEST)
                .body(body.to_string()),
        )
    };
    for (body, code) in [
        ("{", 400),
        ("[]", 400),
        (r#"{"registry": {"url": 1}, "artifact": {}}"#, 400),
        (
            r#"{"registry": {"url": "https://h"}, "artifact": {"repository": "a"}}"#,
            422,
        ),
        (
            r#"{"registry": {"url": "ftp://h"}, "artifact": {"repository": "a", "digest": "sha256:00"}}"#,
            422,
        ),
    ] {
        let a = post_raw(body);
        assert_eq!(a.code, code, "{body}: {}", a.body);
        schemas.check("ErrorResponse", &a.json());
    }

    // A Go image: its Go findings name the Go main module as the package.
    let go = digest_of("go-rules");
    let a = h.post_scan(&scan_request(&host, Some(&creds), "library/go", &go));
    assert_eq!(a.code, 202, "{}", a.body);
    let (r, _) = h.poll(a.json()["id"].as_str().unwrap(), VULN, "");
    assert_eq!(r.code, 200, "{}", r.body);
    let report = r.json();
    schemas.check("HarborVulnerabilityReport", &report);
    let go_items: Vec<&Value> = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["id"].as_str().unwrap().starts_with("GO"))
        .collect();
    assert!(!go_items.is_empty(), "{report:#}");
    assert!(
        go_items
            .iter()
            .any(|v| !v["package"].as_str().unwrap().starts_with('/')),
        "a Go finding names its module: {go_items:#?}"
    );

    // Wrong registry credentials: the scan fails with the spec's error document, and the
    // password appears nowhere.
    let clean = digest_of("clean");
    let wrong = basic(USER, "not-the-password-5150");
    let a = h.post_scan(&scan_request(&host, Some(&wrong), "library/clean", &clean));
    assert_eq!(a.code, 202);
    let (r, _) = h.poll(a.json()["id"].as_str().unwrap(), VULN, "");
    assert_eq!(r.code, 500, "{}", r.body);
    schemas.check("ErrorResponse", &r.json());
    assert!(!r.body.contains("not-the-password-5150"));

    // A scan of an image scanned before is answered from the store: no second audit.
    let a = h.post_scan(&scan_request(&host, Some(&creds), "library/bad", &bad));
    let (r, redirects) = h.poll(a.json()["id"].as_str().unwrap(), VULN, "");
    assert_eq!((r.code, redirects), (200, 0));
    assert_eq!(s.metric("imgaudit_harbor_scans_from_store"), 1.0);
    assert_eq!(s.metric("imgaudit_harbor_scans_done"), 2.0);

    let log = s.log();
    for secret in [PASS, "not-the-password-5150", ADAPTER_PASS, creds.as_str()] {
        assert!(!log.contains(secret), "a credential reached the log");
    }
}

#[test]
fn a_burst_of_scans_is_answered_202_or_429_and_every_accepted_scan_completes() {
    let reg = Registry::tls_auth();
    let names = ["clean", "cfg-entry", "cfg-user", "cfg-root"];
    for n in names {
        reg.push(&fixture(n), &format!("burst/{n}"), &[]);
    }
    let d = tempfile::tempdir().unwrap();
    let auth_file = adapter_credential(d.path());
    let ca = reg.cert().display().to_string();
    let mut flags = adapter_flags(&reg, &auth_file);
    flags.extend(["--ca-file", ca.as_str(), "--harbor-max-queue", "8"]);
    let s = Server::start("", &flags);
    let host = reg.host();
    let creds = basic(USER, PASS);
    let h = Harbor::plain(&s, Some(basic(ADAPTER_USER, ADAPTER_PASS)));
    let requests: Vec<Value> = (0..200)
        .map(|i| {
            let n = names[i % names.len()];
            scan_request(&host, Some(&creds), &format!("burst/{n}"), &digest_of(n))
        })
        .collect();
    let answers: Vec<(u16, Option<String>, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = requests
            .chunks(10)
            .map(|chunk| {
                let h = &h;
                sc.spawn(move || {
                    chunk
                        .iter()
                        .map(|r| {
                            let a = h.post_scan(r);
                            let retry = a
                                .headers
                                .get("retry-after")
                                .map(|v| v.to_str().unwrap().to_string());
                            (a.code, retry, a.json())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut accepted = Vec::new();
    let mut refused = 0;
    for (code, retry, body) in &answers {
        match code {
            202 => accepted.push(body["id"].as_str().unwrap().to_string()),
            429 => {
                refused += 1;
                assert!(retry.as_deref().unwrap().parse::<u64>().unwrap() > 0);
                assert!(body["error"]["message"].is_string());
            }
            other => panic!("answered {other}: {body}"),
        }
    }
    eprintln!(
        "burst of 200: {} accepted, {refused} refused",
        accepted.len()
    );
    assert!(
        refused > 0,
        "a queue of 8 refuses some of 200 concurrent scans"
    );
    assert!(accepted.len() >= 8);
    for id in &accepted {
        let (r, _) = h.poll(id, VULN, "");
        assert_eq!(r.code, 200, "scan {id}: {}", r.body);
    }
    assert_eq!(s.metric("imgaudit_harbor_queue"), 0.0);
    assert_eq!(s.metric("imgaudit_http_responses_total{code=\"500\"}"), 0.0);
}

#[test]
fn two_adapter_replicas_share_jobs_through_redis_one_over_https() {
    let redis = Redis::start(None);
    let reg = Registry::tls_auth();
    reg.push(&fixture("cfg-user"), "shared/high", &[]);
    let d = tempfile::tempdir().unwrap();
    let key = key_file(d.path());
    let auth_file = adapter_credential(d.path());
    let ca = reg.cert().display().to_string();
    let url = redis.url();
    let mut flags = adapter_flags(&reg, &auth_file);
    flags.extend([
        "--ca-file",
        ca.as_str(),
        "--cache",
        url.as_str(),
        "--cache-key-file",
        key.as_str(),
    ]);
    let a = Server::start("", &flags);
    // Replica B serves the adapter over HTTPS with serve's certificate.
    flags.retain(|f| *f != "--harbor-plain-http");
    let b = Server::start("", &flags);
    let auth = Some(basic(ADAPTER_USER, ADAPTER_PASS));
    let (ha, hb) = (Harbor::plain(&a, auth.clone()), Harbor::tls(&b, auth));
    assert_eq!(hb.get("/api/v1/metadata", None).code, 200);
    let digest = digest_of("cfg-user");
    let req = scan_request(
        &reg.host(),
        Some(&basic(USER, PASS)),
        "shared/high",
        &digest,
    );

    // Accepted by A, reported by B (while running: 302 from B too).
    let r = ha.post_scan(&req);
    assert_eq!(r.code, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let (report, _) = hb.poll(&id, VULN, "");
    assert_eq!(report.code, 200, "{}\nA: {}", report.body, a.log());
    let v = report.json();
    assert!(v["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == "CFG002"));
    // A scan of the same image on B is answered from the result A stored.
    let r = hb.post_scan(&req);
    let (again, redirects) = hb.poll(r.json()["id"].as_str().unwrap(), VULN, "");
    assert_eq!((again.code, redirects), (200, 0));
    assert_eq!(again.json()["vulnerabilities"], v["vulnerabilities"]);
    assert_eq!(b.metric("imgaudit_harbor_scans_from_store"), 1.0);
    assert_eq!(b.metric("imgaudit_harbor_scans_done"), 0.0);
    // Jobs are sealed in Redis under the documented names.
    let keys = redis.cli(&["--scan", "--pattern", "imgaudit::harbor:job:*"]);
    assert!(keys.contains(&id), "{keys}");
}

/// Gatekeeper's external-data request for `keys`.
fn provider_request(keys: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": keys},
    }))
    .unwrap()
}

#[test]
fn gatekeeper_provider() {
    let mut reg = Registry::tls_auth();
    reg.push(&fixture("cfg-entry"), "gk/bad:1", &[]);
    reg.push(&fixture("clean"), "gk/good:1", &[]);
    reg.push(&fixture("cfg-user"), "gk/high:1", &[]);
    let ca = reg.cert().display().to_string();
    let creds = format!("{USER}:{PASS}");
    let policy = "[admission]\ndeny_on = \"high\"\nfailure_policy = \"fail-closed\"\n";
    let s = Server::start(
        policy,
        &[
            "--ca-file",
            &ca,
            "--creds",
            &creds,
            "--provider-deadline",
            "20",
            "--resolve-ttl",
            "300",
        ],
    );
    let host = reg.host();
    let ask = |keys: &[String]| -> (Value, Duration) {
        let t = Instant::now();
        let (code, body) = s.post("/gatekeeper/images", provider_request(keys));
        let took = t.elapsed();
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["apiVersion"], "externaldata.gatekeeper.sh/v1beta1");
        assert_eq!(v["kind"], "ProviderResponse");
        assert_eq!(v["response"]["systemError"], "");
        let items = v["response"]["items"].as_array().unwrap();
        assert_eq!(items.len(), keys.len());
        for (i, k) in items.iter().zip(keys) {
            assert_eq!(i["key"], k.as_str());
        }
        (v["response"].clone(), took)
    };
    let bad = format!("{host}/gk/bad:1");
    let good = format!("{host}/gk/good:1");
    let high = format!("{host}/gk/high:1");

    // One key.
    let (r, _) = ask(std::slice::from_ref(&bad));
    let item = &r["items"][0];
    assert_eq!(item["error"], "");
    assert_eq!(item["value"]["verdict"], "deny", "{r:#}");
    assert!(item["value"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(item["value"]["blocking"][0]
        .as_str()
        .unwrap()
        .starts_with("CFG003"));
    assert_eq!(r["idempotent"], true);

    // 100 keys: the three images, repeated, an image that does not exist and a key that is
    // not a reference.
    let missing = format!("{host}/gk/missing:1");
    let mut keys: Vec<String> = (0..97)
        .map(|i| [&bad, &good, &high][i % 3].clone())
        .collect();
    keys.push(missing.clone());
    keys.push("NOT A REFERENCE".into());
    keys.push(good.clone());
    let (r, took) = ask(&keys);
    eprintln!("100 keys answered in {took:?}");
    let by_key = |k: &str| {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(by_key(&good)["value"]["verdict"], "allow");
    assert_eq!(by_key(&high)["value"]["verdict"], "deny");
    assert!(by_key(&high)["value"]["blocking"][0]
        .as_str()
        .unwrap()
        .starts_with("CFG002"));
    let m = by_key(&missing);
    assert_eq!(m["value"]["verdict"], "deny", "fail-closed: {m}");
    assert!(m["value"]["reason"]
        .as_str()
        .unwrap()
        .contains("no verdict"));
    let n = by_key("NOT A REFERENCE");
    assert!(n["value"].is_null() && !n["error"].as_str().unwrap().is_empty());
    assert_eq!(
        r["idempotent"], false,
        "an answer without a verdict is not cached"
    );

    // Malformed bodies: 400 with a systemError.
    for body in [
        b"{".to_vec(),
        br#"{"apiVersion": "v1", "kind": "ProviderRequest", "request": {"keys": []}}"#.to_vec(),
        br#"{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": "x"}}"#.to_vec(),
    ] {
        let (code, text) = s.post("/gatekeeper/images", body);
        assert_eq!(code, 400, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(!v["response"]["systemError"].as_str().unwrap().is_empty());
    }
    let too_many: Vec<String> = (0..=audit_server::MAX_PROVIDER_KEYS)
        .map(|i| format!("{host}/gk/n{i}:1"))
        .collect();
    assert_eq!(
        s.post("/gatekeeper/images", provider_request(&too_many)).0,
        400
    );

    // Registry down: images already judged are answered from the verdict cache, a new one by
    // the failure policy — within the provider deadline, never hanging.
    reg.kill();
    let fresh = format!("{host}/gk/never-seen:1");
    let (r, took) = ask(&[bad.clone(), fresh.clone()]);
    assert_eq!(r["items"][0]["value"]["verdict"], "deny");
    assert_eq!(r["items"][1]["value"]["verdict"], "deny");
    assert!(r["items"][1]["value"]["reason"]
        .as_str()
        .unwrap()
        .contains("no verdict"));
    assert!(took < Duration::from_secs(21), "{took:?}");
}

#[test]
fn deploy_artefacts_for_harbor_and_gatekeeper_match_the_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let help = Command::new(env!("CARGO_BIN_EXE_imgaudit"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    // Every flag the Harbor overlay adds exists.
    let harbor = read("harbor/kustomization.yaml");
    let flags: Vec<&str> = harbor
        .lines()
        .filter_map(|l| l.trim().strip_prefix("value: --"))
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert!(flags.len() >= 5, "{flags:?}");
    for f in flags {
        assert!(
            help.contains(&format!("--{f} ")) || help.contains(&format!("--{f}\n")),
            "--{f} is not an `imgaudit serve` flag"
        );
    }
    assert!(
        harbor.contains("containerPort: 8080") && read("harbor/harbor.yaml").contains("port: 8080")
    );
    // The Provider points at the route the server answers, with a timeout above the default
    // --provider-deadline (2.5 s), and the template asks that provider.
    let provider = read("gatekeeper/provider.yaml");
    assert!(provider.contains("url: https://imgaudit.imgaudit.svc:443/gatekeeper/images"));
    assert!(provider.contains("name: imgaudit") && provider.contains("timeout: 3"));
    assert!(
        help.contains("[default: 2.5]"),
        "--provider-deadline default"
    );
    let template = read("gatekeeper/template.yaml");
    assert!(template.contains(r#"external_data({"provider": "imgaudit""#));
    assert!(template.contains(r#"verdict == "deny""#));
    assert!(read("gatekeeper/constraint.yaml").contains("kind: ImgauditImages"));
}
