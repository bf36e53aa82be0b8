//! `imgaudit serve` as a child process behind a self-signed certificate, and HTTPS clients
//! trusting it: shared by the webhook, Gatekeeper and Harbor adapter tests; `make_cert` also
//! serves the TLS registry (support/mod.rs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::require;

/// Runs `openssl ARGS` in `dir`; panics with its stderr when it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is not installed (see .ci/run)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A self-signed `CA:FALSE` serving certificate for 127.0.0.1 (rustls refuses a CA
/// certificate as an end-entity certificate: `CaUsedAsEndEntity`).
pub(crate) fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
    let subject = format!("/CN=imgaudit-{name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            &subject,
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:imgaudit.imgaudit.svc",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
    );
    (dir.join(cert), dir.join(key))
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) log: Arc<Mutex<String>>,
    pub(crate) client: reqwest::blocking::Client,
    /// The Harbor adapter's port, with `--harbor-listen`.
    pub(crate) harbor_port: Option<u16>,
    /// The serving certificate.
    pub(crate) cert: PathBuf,
}

impl Server {
    /// Starts `imgaudit serve` with `policy` as its policy file and extra flags.
    pub(crate) fn start(policy: &str, extra: &[&str]) -> Self {
        Self::start_with(policy, extra, None)
    }

    /// The same with a given certificate pair (else a fresh self-signed one).
    pub(crate) fn start_with(
        policy: &str,
        extra: &[&str],
        pair: Option<(PathBuf, PathBuf)>,
    ) -> Self {
        require("openssl");
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair.unwrap_or_else(|| make_cert(dir.path(), "tls"));
        std::fs::write(dir.path().join("imgaudit.toml"), policy).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_imgaudit"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-reload-interval",
                "0.2",
            ])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--config")
            .arg(dir.path().join("imgaudit.toml"))
            .args(extra)
            .env("HOME", &home)
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start imgaudit serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stderr, log2) = (child.stderr.take().unwrap(), Arc::clone(&log));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "harbor adapter listening" {
                        let port = v["addr"].as_str().unwrap().rsplit(':').next().unwrap();
                        let _ = htx.send(port.parse::<u16>().unwrap());
                    }
                    if v["message"] == "listening" {
                        let port = v["addr"]
                            .as_str()
                            .unwrap()
                            .rsplit(':')
                            .next()
                            .unwrap()
                            .parse::<u16>()
                            .unwrap();
                        let _ = tx.send(port);
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let Ok(port) = rx.recv_timeout(Duration::from_secs(30)) else {
            panic!("imgaudit serve did not start: {}", log.lock().unwrap())
        };
        let client = client(&[&cert]);
        let harbor_port = hrx.try_recv().ok();
        Self {
            child,
            port,
            dir,
            log,
            client,
            harbor_port,
            cert,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn post(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Sends a review; returns its `response`.
    pub(crate) fn review(&self, review: &Value) -> Value {
        let (code, body) = self.post("/validate", serde_json::to_vec(review).unwrap());
        assert_eq!(code, 200, "{body}\nlog: {}", self.log());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(
            v["response"]["uid"], review["request"]["uid"],
            "the uid is echoed"
        );
        v["response"].clone()
    }

    /// A metric's value (`name` or `name{labels}`), 0 when absent.
    pub(crate) fn metric(&self, name: &str) -> f64 {
        let (_, m) = self.get("/metrics");
        m.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .map_or(0.0, |v| v.parse().unwrap())
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A rustls client builder trusting `certs` only. reqwest's `rustls-no-provider` needs a
/// process-wide crypto provider: ring, as in imgaudit.
pub(crate) fn tls_builder(certs: &[&Path]) -> reqwest::blocking::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only(
            certs
                .iter()
                .map(|c| reqwest::Certificate::from_pem(&std::fs::read(c).unwrap()).unwrap()),
        )
        .no_proxy()
}

/// An HTTPS client trusting these certificates only.
pub(crate) fn client(certs: &[&Path]) -> reqwest::blocking::Client {
    tls_builder(certs)
        .tls_info(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}
