//! `imgaudit serve` end to end (issue #5): the built binary behind a self-signed `CA:FALSE`
//! certificate, the real distribution registry holding good and bad images, and
//! AdmissionReview requests written here for every workload kind. Covers allow, deny, warn,
//! the uid echo, namespaces, allowed registries, the deadline and failure policy with the
//! registry down, bad requests, single-flight, prefetch, certificate reload and SIGTERM.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::server::*;
use support::*;

static UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An AdmissionReview as the API server sends it.
#[allow(clippy::too_many_arguments)]
fn review(
    group: &str,
    kind: &str,
    resource: &str,
    op: &str,
    sub: Option<&str>,
    ns: &str,
    object: Value,
    old: Option<Value>,
) -> Value {
    let uid = format!(
        "705ab4f5-6393-11e8-b7cc-42010a80{:04}",
        UID.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "subResource": sub,
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "requestResource": {"group": group, "version": "v1", "resource": resource},
            "name": "web",
            "namespace": ns,
            "operation": op,
            "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": if op == "CREATE" { "CreateOptions" } else { "UpdateOptions" }}
        }
    })
}

fn containers(images: &[&str]) -> Value {
    Value::Array(images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im, "imagePullPolicy": "IfNotPresent"})).collect())
}

fn pod_spec(images: &[&str]) -> Value {
    json!({"containers": containers(images), "restartPolicy": "Always", "serviceAccountName": "default"})
}

fn pod(ns: &str, images: &[&str]) -> Value {
    review(
        "",
        "Pod",
        "pods",
        "CREATE",
        None,
        ns,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns}, "spec": pod_spec(images)}),
        None,
    )
}

fn template(images: &[&str]) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(images)})
}

/// Every workload kind carrying `image` (in an init container for the Job, to cover those).
fn workloads(ns: &str, image: &str) -> Vec<(&'static str, Value)> {
    let sel = json!({"matchLabels": {"app": "web"}});
    let obj = |api: &str, kind: &str, spec: Value| json!({"apiVersion": api, "kind": kind, "metadata": {"name": "web", "namespace": ns}, "spec": spec});
    let mut job_tpl = template(&[]);
    job_tpl["spec"]["initContainers"] = containers(&[image]);
    job_tpl["spec"]["restartPolicy"] = json!("Never");
    vec![
        (
            "Deployment",
            review(
                "apps",
                "Deployment",
                "deployments",
                "CREATE",
                None,
                ns,
                obj(
                    "apps/v1",
                    "Deployment",
                    json!({"replicas": 2, "selector": sel, "template": template(&[image])}),
                ),
                None,
            ),
        ),
        (
            "ReplicaSet",
            review(
                "apps",
                "ReplicaSet",
                "replicasets",
                "CREATE",
                None,
                ns,
                obj(
                    "apps/v1",
                    "ReplicaSet",
                    json!({"selector": sel, "template": template(&[image])}),
                ),
                None,
            ),
        ),
        (
            "StatefulSet",
            review(
                "apps",
                "StatefulSet",
                "statefulsets",
                "CREATE",
                None,
                ns,
                obj(
                    "apps/v1",
                    "StatefulSet",
                    json!({"serviceName": "web", "selector": sel, "template": template(&[image])}),
                ),
                None,
            ),
        ),
        (
            "DaemonSet",
            review(
                "apps",
                "DaemonSet",
                "daemonsets",
                "CREATE",
                None,
                ns,
                obj(
                    "apps/v1",
                    "DaemonSet",
                    json!({"selector": sel, "template": template(&[image])}),
                ),
                None,
            ),
        ),
        (
            "Job",
            review(
                "batch",
                "Job",
                "jobs",
                "CREATE",
                None,
                ns,
                obj(
                    "batch/v1",
                    "Job",
                    json!({"backoffLimit": 1, "template": job_tpl}),
                ),
                None,
            ),
        ),
        (
            "CronJob",
            review(
                "batch",
                "CronJob",
                "cronjobs",
                "CREATE",
                None,
                ns,
                obj(
                    "batch/v1",
                    "CronJob",
                    json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template(&[image])}}}),
                ),
                None,
            ),
        ),
    ]
}

fn auth_file(dir: &Path, host: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    let p = dir.join("config.json");
    std::fs::write(&p, json!({"auths": {host: {"auth": auth}}}).to_string()).unwrap();
    p
}

/// The policy of the main test: images only from `host`.
fn policy(host: &str) -> String {
    format!(
        r#"
fail_on = "critical"
[admission]
deny_on = "high"
warn_on = "medium"
exempt_namespaces = ["kube-system", "imgaudit"]
allowed_registries = ["{host}"]
[[admission.namespace]]
name = "dev-*"
mode = "warn"
[[admission.namespace]]
name = "legacy"
deny_on = "critical"
"#
    )
}

#[test]
fn admission_over_a_real_registry() {
    // A TLS + htpasswd registry; the webhook reads its credentials from a mounted docker
    // config, like in a cluster.
    let reg = Registry::tls_auth();
    let host = reg.host();
    reg.push(&fixture("clean"), "apps/good:1", &[]);
    reg.push(&fixture("cfg-entry"), "apps/bad:1", &[]); // CFG003 critical: the entrypoint is missing
    reg.push(&fixture("cfg-user"), "apps/high:1", &[]); // CFG002 high
    reg.push(&fixture("cfg-root"), "apps/root:1", &[]); // CFG001 medium (+ info)
    let auth = auth_file(reg.dir.path(), &host);
    let s = Server::start(
        &policy(&host),
        &[
            "--authfile",
            auth.to_str().unwrap(),
            "--ca-file",
            reg.cert().to_str().unwrap(),
            "--deadline",
            "20",
        ],
    );
    let (good, bad, high, root) = (
        format!("{host}/apps/good:1"),
        format!("{host}/apps/bad:1"),
        format!("{host}/apps/high:1"),
        format!("{host}/apps/root:1"),
    );

    // A good Pod: allowed, nothing to say, the digest in the audit annotations.
    let r = s.review(&pod("default", &[&good]));
    assert_eq!(r["allowed"], true, "{r}\n{}", s.log());
    assert!(
        r.get("warnings").is_none() && r.get("status").is_none(),
        "{r}"
    );
    let ann = r["auditAnnotations"]["images"].as_str().unwrap();
    assert!(ann.starts_with(&format!("{good}@sha256:")), "{ann}");
    assert_eq!(r["auditAnnotations"]["decision"], "allow");

    // A bad Pod: denied with a message naming the image and the rule.
    let r = s.review(&pod("default", &[&good, &bad]));
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 403);
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "imgaudit denied Pod default/web: 1 of 2 images fail the policy (deny_on high):"
        ),
        "{msg}"
    );
    let line = msg.lines().nth(1).unwrap();
    assert!(
        line.starts_with(&format!("{host}/apps/bad:1@sha256:"))
            && line.contains(": CFG003 entrypoint-unresolvable (critical): "),
        "{line}"
    );

    // Every workload kind, including a CronJob and a Job's init container.
    for (kind, rv) in workloads("default", &bad) {
        let r = s.review(&rv);
        assert_eq!(r["allowed"], false, "{kind}: {r}");
        let m = r["status"]["message"].as_str().unwrap();
        assert!(
            m.starts_with(&format!("imgaudit denied {kind} default/web:")) && m.contains("CFG003"),
            "{kind}: {m}"
        );
    }
    for (kind, rv) in workloads("default", &good) {
        assert_eq!(s.review(&rv)["allowed"], true, "{kind}");
    }

    // `kubectl debug`: an ephemeral container arrives as an UPDATE of pods/ephemeralcontainers.
    let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": pod_spec(&[&good])});
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] = json!([{"name": "debugger", "image": bad, "targetContainerName": "c0", "stdin": true, "tty": true}]);
    let r = s.review(&review(
        "",
        "Pod",
        "pods",
        "UPDATE",
        Some("ephemeralcontainers"),
        "default",
        new.clone(),
        Some(old.clone()),
    ));
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("imgaudit denied Pod default/web (ephemeralcontainers):"),
        "{r}"
    );
    new["spec"]["ephemeralContainers"][0]["image"] = json!(good);
    assert_eq!(
        s.review(&review(
            "",
            "Pod",
            "pods",
            "UPDATE",
            Some("ephemeralcontainers"),
            "default",
            new,
            Some(old)
        ))["allowed"],
        true
    );

    // Findings between warn_on and deny_on are warnings (each ≤ 120 characters).
    let r = s.review(&pod("default", &[&root]));
    assert_eq!(r["allowed"], true, "{r}");
    let w: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        w.len() == 1 && w[0].starts_with("root:1: CFG001 medium: ") && w[0].chars().count() <= 120,
        "{w:?}"
    );
    assert_eq!(r["auditAnnotations"]["decision"], "warn");

    // Namespaces: exempt, warn-only, a looser threshold.
    let r = s.review(&pod("kube-system", &[&bad]));
    assert!(r["allowed"] == true && r.get("warnings").is_none(), "{r}");
    let r = s.review(&pod("dev-alice", &[&bad]));
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("bad:1: CFG003 critical: "),
        "{r}"
    );
    assert_eq!(s.review(&pod("default", &[&high]))["allowed"], false);
    assert_eq!(
        s.review(&pod("legacy", &[&high]))["allowed"],
        true,
        "legacy denies only critical"
    );

    // Allowed registries: anything else is refused before any network request.
    let r = s.review(&pod("default", &["docker.io/library/nginx:1.27"]));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"].as_str().unwrap().contains(
            "docker.io/library/nginx:1.27: registry is not in the policy's allowed_registries"
        ),
        "{r}"
    );

    // Other kinds and DELETEs pass through.
    let cm = review(
        "",
        "ConfigMap",
        "configmaps",
        "CREATE",
        None,
        "default",
        json!({"data": {}}),
        None,
    );
    assert_eq!(s.review(&cm)["allowed"], true);
    assert_eq!(
        s.review(&review(
            "apps",
            "Deployment",
            "deployments",
            "DELETE",
            None,
            "default",
            Value::Null,
            None
        ))["allowed"],
        true
    );

    // Each image was audited once: everything after the first audit came from the cache.
    assert_eq!(
        s.metric("imgaudit_audits_total{result=\"ok\"}"),
        4.0,
        "{}",
        s.get("/metrics").1
    );
    assert_eq!(
        (
            s.metric("imgaudit_verdict_cache_hits_total"),
            s.metric("imgaudit_verdict_cache_misses_total")
        ),
        (16.0, 4.0)
    );
    assert!(
        s.metric("imgaudit_layer_cache_hits") > 0.0,
        "the fixtures share base layers"
    );
    assert!(s.metric("imgaudit_admission_requests_total{decision=\"deny\"}") >= 10.0);

    // Requests that are not AdmissionReviews: 4xx, and the server goes on.
    let ok_review = serde_json::to_vec(&pod("default", &[&good])).unwrap();
    for (body, code, want) in [
        (b"{\"apiVersion\": ".to_vec(), 400, "not an AdmissionReview"),
        (br#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#.to_vec(), 400, "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":7}}}}"#.to_vec(), 400, "object/spec"),
        (vec![b' '; 5 << 20], 413, "larger than"),
    ] {
        let (c, text) = s.post("/validate", body);
        assert_eq!(c, code, "{text}");
        assert!(text.contains(want), "{text}");
    }
    let (c, _) = s.get("/validate");
    assert_eq!(c, 405);
    let r = s
        .client
        .post(s.url("/validate"))
        .header("Content-Type", "text/plain")
        .body(ok_review.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(s.get("/nope").0, 404);
    assert_eq!(s.get("/healthz"), (200, "ok\n".into()));
    assert_eq!(s.get("/readyz").0, 200);
    assert_eq!(s.post("/validate", ok_review).0, 200, "still serving");
    // The log is JSON lines and holds no credential.
    let log = s.log();
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{log}"
    );
    assert!(!log.contains(PASS), "{log}");
    assert!(log.contains("\"decision\":\"deny\""), "{log}");
}

#[test]
fn single_flight_deadline_and_background_warming() {
    let reg = Registry::plain();
    let host = reg.host();
    reg.push(&fixture("go-rules"), "apps/slow:1", &[]);
    reg.push(&fixture("musl"), "apps/musl:1", &[]);
    let policy = "[admission]\nfailure_policy = \"fail-closed\"\n";
    let s = Server::start(
        policy,
        &[
            "--insecure",
            &host,
            "--deadline",
            "0.1",
            "--max-audits",
            "1",
        ],
    );
    let slow = format!("{host}/apps/slow:1");

    // Eight concurrent admissions of a fresh image: one audit; the answers come at the
    // deadline, by the failure policy (fail-closed).
    let t = Instant::now();
    let answers: Vec<Value> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| s.review(&pod("default", &[&slow]))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "answered at the deadline, not after the audit: {:?}",
        t.elapsed()
    );
    for r in &answers {
        assert_eq!(r["allowed"], false, "{r}");
        let m = r["status"]["message"].as_str().unwrap();
        // Usually the tag is resolved and the audit is running; under load the HEAD itself may
        // miss the deadline — then the audit starts in the background all the same.
        assert!(
            m.contains("no verdict (") && m.ends_with("); denied by failure_policy fail-closed"),
            "{m}"
        );
    }
    // The audit goes on in the background and warms the cache.
    let warmed = wait_for(Duration::from_secs(120), || {
        s.metric("imgaudit_audits_total{result=\"ok\"}") == 1.0
    });
    assert!(warmed, "{}", s.log());
    let r = s.review(&pod("default", &[&slow]));
    assert!(
        r["allowed"] == false && r["status"]["message"].as_str().unwrap().contains("GO001"),
        "{r}"
    );
    assert_eq!(
        s.metric("imgaudit_audits_total{result=\"ok\"}"),
        1.0,
        "single flight: one audit for nine requests"
    );
    assert!(s.metric("imgaudit_deadline_exceeded_total") >= 8.0);

    // POST /prefetch warms ahead of a deploy.
    let (c, body) = s.post(
        "/prefetch",
        serde_json::to_vec(&json!({"images": [format!("{host}/apps/musl:1"), "UPPER/Case:!"]}))
            .unwrap(),
    );
    assert_eq!(c, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["invalid"].as_array().unwrap().len(), 1);
    assert!(
        wait_for(Duration::from_secs(120), || s
            .metric("imgaudit_audits_total{result=\"ok\"}")
            == 2.0),
        "{}",
        s.log()
    );
    let r = s.review(&pod("default", &[&format!("{host}/apps/musl:1")]));
    assert!(
        r["status"]["message"].as_str().unwrap().contains("GO001"),
        "{r}"
    );
}

#[test]
fn registry_down_answers_by_the_failure_policy_within_the_deadline() {
    let mut reg = Registry::plain();
    let host = reg.host();
    reg.push(&fixture("clean"), "apps/good:1", &[]);
    let good = format!("{host}/apps/good:1");
    let open = Server::start("", &["--insecure", &host, "--deadline", "1.5"]);
    let closed = Server::start(
        "[admission]\nfailure_policy = \"fail-closed\"\n",
        &["--insecure", &host, "--deadline", "1.5"],
    );
    assert_eq!(open.review(&pod("default", &[&good]))["allowed"], true);
    reg.kill();
    // Tags are resolved on every request (--resolve-ttl 0), so the outage shows at once.
    let t = Instant::now();
    let r = open.review(&pod("default", &[&good]));
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r["allowed"], true, "{r}");
    let w = r["warnings"][0].as_str().unwrap();
    assert!(w.starts_with("imgaudit: good:1 not checked ("), "{w}");
    let t = Instant::now();
    let r = closed.review(&pod("default", &[&good]));
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("denied by failure_policy fail-closed"),
        "{r}"
    );
    assert!(
        open.metric("imgaudit_registry_errors_total{kind=\"unreachable\"}")
            + open.metric("imgaudit_deadline_exceeded_total")
            >= 1.0
    );
}

#[test]
fn prefetch_list_readiness_cert_reload_and_sigterm() {
    let reg = Registry::plain();
    let host = reg.host();
    reg.push(&fixture("clean"), "apps/good:1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("prefetch.txt");
    std::fs::write(
        &list,
        format!("# warmed before /readyz turns 200\n{host}/apps/good:1\n\n"),
    )
    .unwrap();
    let mut s = Server::start(
        "",
        &[
            "--insecure",
            &host,
            "--prefetch",
            list.to_str().unwrap(),
            "--shutdown-grace",
            "60",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(60), || s.get("/readyz").0 == 200),
        "{}",
        s.log()
    );
    assert_eq!(s.metric("imgaudit_audits_total{result=\"ok\"}"), 1.0);
    assert_eq!(
        s.review(&pod("default", &[&format!("{host}/apps/good:1")]))["allowed"],
        true
    );
    assert_eq!(
        s.metric("imgaudit_verdict_cache_hits_total"),
        1.0,
        "served from the prefetched result"
    );

    // Certificate rotation: new files, same paths; new connections get the new certificate.
    let peer = |c: &reqwest::blocking::Client| -> Vec<u8> {
        let r = c.get(s.url("/healthz")).send().unwrap();
        r.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .unwrap()
            .peer_certificate()
            .unwrap()
            .to_vec()
    };
    let (cert, key) = (s.dir.path().join("tls.crt"), s.dir.path().join("tls.key"));
    let (new_cert, new_key) = make_cert(s.dir.path(), "rotated");
    let before = peer(&client(&[&cert]));
    let old_cert = s.dir.path().join("old.crt");
    std::fs::copy(&cert, &old_cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    let both = [old_cert.as_path(), new_cert.as_path()];
    assert!(
        wait_for(Duration::from_secs(10), || peer(&client(&both)) != before),
        "{}",
        s.log()
    );
    assert!(s.log().contains("TLS certificate reloaded"));
    // A broken pair on disk keeps the current one.
    std::fs::write(&cert, "garbage").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        client(&[&new_cert])
            .get(s.url("/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // SIGTERM: an open request still gets its answer, then the process exits 0.
    reg.push(&fixture("go-rules"), "apps/slow:1", &[]);
    let slow = format!("{host}/apps/slow:1");
    let pid = s.child.id().to_string();
    let t = Instant::now();
    let answer = std::thread::scope(|sc| {
        let h = sc.spawn(|| s.review(&pod("default", &[&slow])));
        std::thread::sleep(Duration::from_millis(150));
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        h.join().unwrap()
    });
    assert!(answer.get("allowed").is_some(), "{answer}");
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(65),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(100));
    let log = s.log();
    assert!(
        log.contains("\"signal\":\"SIGTERM\"") && log.contains("\"message\":\"stopped\""),
        "{log}"
    );
    let down: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "shutting down")
        .unwrap();
    assert!(
        down["open"].as_u64().unwrap() >= 1,
        "the request was in flight at SIGTERM: {down}"
    );
    assert!(
        answer["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("GO001")),
        "answered with the verdict: {answer}"
    );
}

#[test]
fn deploy_artefacts_match_the_binary() {
    // deploy/make-cert.sh's CA-signed leaf is served, and a client that trusts only the CA
    // reaches the webhook by its Service name, as the API server does with the caBundle.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let certs = tempfile::tempdir().unwrap();
    let o = Command::new("bash")
        .arg(root.join("make-cert.sh"))
        .arg(certs.path())
        .args(["imgaudit", "imgaudit"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("kubectl -n imgaudit create secret tls imgaudit-tls")
            && out.contains("/webhooks/0/clientConfig/caBundle"),
        "{out}"
    );
    let pair = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    let s = Server::start_with("", &[], Some(pair));
    let c = tls_builder(&[&certs.path().join("ca.crt")])
        .resolve(
            "imgaudit.imgaudit.svc",
            std::net::SocketAddr::from(([127, 0, 0, 1], s.port)),
        )
        .build()
        .unwrap();
    let r = c
        .get(format!("https://imgaudit.imgaudit.svc:{}/healthz", s.port))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Every flag the manifests pass exists.
    let help = Command::new(env!("CARGO_BIN_EXE_imgaudit"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let (deployment, dockerfile, webhook) = (
        read("deployment.yaml"),
        read("Dockerfile"),
        read("webhook.yaml"),
    );
    let flags: Vec<&str> = deployment
        .lines()
        .chain(dockerfile.lines().filter(|l| l.starts_with("CMD")))
        .flat_map(|l| l.split(['"', ' ', '[']))
        .filter(|w| w.starts_with("--") && w.contains('='))
        .map(|w| w.split('=').next().unwrap())
        .collect();
    assert!(flags.len() >= 8, "{flags:?}");
    for f in flags {
        assert!(
            help.contains(&format!("{f} ")) || help.contains(&format!("{f}\n")),
            "{f} is not an `imgaudit serve` flag"
        );
    }
    // The webhook sends every kind the server inspects, answers before the API server gives
    // up, and never judges kube-system or its own namespace.
    for r in [
        "pods,",
        "pods/ephemeralcontainers",
        "replicationcontrollers",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
    ] {
        assert!(webhook.contains(r), "webhook.yaml lacks {r}");
    }
    assert!(webhook.contains("timeoutSeconds: 10") && deployment.contains("--deadline=8"));
    assert!(
        webhook.contains("values: [kube-system, imgaudit]") && webhook.contains("path: /validate")
    );
    assert!(
        webhook.contains("admissionReviewVersions: [\"v1\"]")
            && webhook.contains("sideEffects: None")
    );
}

#[test]
fn replicas_share_layers_and_verdicts_through_redis() {
    let redis = Redis::start(None);
    let reg = Registry::plain();
    reg.push(&fixture("go-rules"), "share/go:1", &[]);
    reg.push(&fixture("fs-rules"), "share/fs:1", &[]);
    // Every registry byte the replicas get goes through this counting proxy.
    let proxy = Proxy::start(reg.port, u64::MAX, Box::new(|| {}));
    let host = format!("127.0.0.1:{}", proxy.port);
    let d = tempfile::tempdir().unwrap();
    let key = key_file(d.path());
    let url = redis.url();
    let policy = "[admission]\nfailure_policy = \"fail-closed\"\n";
    let flags = [
        "--insecure",
        host.as_str(),
        "--cache",
        url.as_str(),
        "--cache-key-file",
        key.as_str(),
        "--deadline",
        "20",
    ];
    let a = Server::start(policy, &flags);
    let b = Server::start(policy, &flags);
    let relayed = || proxy.relayed.load(std::sync::atomic::Ordering::SeqCst);

    // Replica A audits an image; replica B then answers it from Redis: the same answer, no
    // audit of its own, and no blob byte from the registry (a tag costs one manifest HEAD).
    let go = format!("{host}/share/go:1");
    let first = a.review(&pod("default", &[&go]));
    let before = relayed();
    let t = Instant::now();
    let second = b.review(&pod("default", &[&go]));
    let took = t.elapsed();
    assert_eq!(first["allowed"], second["allowed"]);
    assert_eq!(first["status"], second["status"]);
    assert_eq!(first["warnings"], second["warnings"]);
    let pulled = relayed() - before;
    assert!(pulled < 16 << 10, "replica B pulled {pulled} bytes");
    assert_eq!(a.metric("imgaudit_audits_total{result=\"ok\"}"), 1.0);
    assert_eq!(b.metric("imgaudit_audits_total{result=\"ok\"}"), 0.0);
    assert_eq!(b.metric("imgaudit_audits_total{result=\"shared\"}"), 1.0);
    eprintln!("replica B's first answer on an image A audited: {took:?}");

    // Five concurrent admissions of a new image across both replicas: one audit in all.
    let fs = format!("{host}/share/fs:1");
    let answers: Vec<Value> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let s = if i % 2 == 0 { &a } else { &b };
                let fs = &fs;
                sc.spawn(move || s.review(&pod("default", &[fs])))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &answers {
        assert_eq!(r["allowed"], answers[0]["allowed"], "{r}");
    }
    let total = |name: &str| a.metric(name) + b.metric(name);
    assert_eq!(
        total("imgaudit_audits_total{result=\"ok\"}"),
        2.0,
        "go-rules once, fs-rules once: {}{}",
        a.get("/metrics").1,
        b.get("/metrics").1
    );
    assert_eq!(total("imgaudit_audits_total{result=\"shared\"}"), 2.0);
    assert!(
        b.metric("imgaudit_layer_store_writes") + a.metric("imgaudit_layer_store_writes") > 0.0
    );
}
