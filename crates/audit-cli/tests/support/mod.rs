//! Real registries for end-to-end tests: the distribution registry (`docker-registry`) on a
//! random loopback port, plain HTTP or TLS (self-signed `CA:FALSE` certificate) with htpasswd
//! basic auth; images pushed with skopeo. A missing tool fails the test: nothing is skipped.

#![allow(dead_code)]

pub(crate) mod server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const USER: &str = "testuser";
pub(crate) const PASS: &str = "s3cret-pass-word";

/// Fails loudly when a tool the registry tests need is missing.
pub(crate) fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    assert!(found, "{tool} is not installed: the registry tests need docker-registry, skopeo, htpasswd and openssl (see .ci/run)");
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/out/images")
        .join(name);
    assert!(
        p.join("index.json").is_file(),
        "{} is missing: run `make fixtures`",
        p.display()
    );
    p
}

pub(crate) struct Registry {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    child: Child,
}

impl Registry {
    /// Plain HTTP, anonymous.
    pub(crate) fn plain() -> Self {
        Self::start(false)
    }

    /// TLS with a self-signed `CA:FALSE` certificate and htpasswd basic auth.
    pub(crate) fn tls_auth() -> Self {
        Self::start(true)
    }

    fn start(tls: bool) -> Self {
        for t in ["docker-registry", "skopeo", "htpasswd", "openssl"] {
            require(t);
        }
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        let mut cfg = format!(
            "version: 0.1\nlog: {{level: info, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}/data}}, delete: {{enabled: true}}}}\n",
            w.display()
        );
        if tls {
            let (cert, key) = server::make_cert(w, "registry");
            let h = Command::new("htpasswd")
                .args(["-Bbn", USER, PASS])
                .output()
                .unwrap();
            assert!(h.status.success());
            std::fs::write(w.join("htpasswd"), &h.stdout).unwrap();
            std::fs::create_dir(w.join("certs.d")).unwrap();
            std::fs::copy(&cert, w.join("certs.d/ca.crt")).unwrap();
            cfg += &format!(
                "http: {{addr: \"127.0.0.1:0\", secret: s, tls: {{certificate: {1}, key: {2}}}}}\nauth: {{htpasswd: {{realm: basic-realm, path: {0}/htpasswd}}}}\n",
                w.display(),
                cert.display(),
                key.display()
            );
        } else {
            cfg += "http: {addr: \"127.0.0.1:0\", secret: s}\n";
        }
        std::fs::write(w.join("config.yml"), cfg).unwrap();
        let mut child = Command::new("docker-registry")
            .args(["serve", "config.yml"])
            .current_dir(w)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(i) = line.find("listening on 127.0.0.1:") {
                        let port: String = line[i + 23..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        let _ = tx.send(port.parse::<u16>().unwrap());
                        sent = true;
                    }
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("docker-registry did not report its port");
        Self {
            dir,
            port,
            tls,
            child,
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn cert(&self) -> PathBuf {
        self.dir.path().join("registry.crt")
    }

    pub(crate) fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// `skopeo copy` of an OCI layout (tag `latest`) to `repo:tag`, digests preserved.
    pub(crate) fn push(&self, layout: &Path, repo_tag: &str, extra: &[&str]) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "-q", "--retry-times", "2"]).args(extra);
        if self.tls {
            c.arg(format!("--dest-creds={USER}:{PASS}"))
                .arg(format!("--dest-cert-dir={}", self.cert_dir().display()));
        } else {
            c.arg("--dest-tls-verify=false");
        }
        c.arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "skopeo push: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Path of a blob's data file in the registry's storage.
    pub(crate) fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs imgaudit with a clean credential environment (HOME is an empty directory) and so an
/// empty layer store (`$HOME/.cache/imgaudit`): every run audits cold unless it names a
/// `--cache-dir`.
pub(crate) fn imgaudit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgaudit"));
    c.args(args)
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    // No engine but those a test starts: bare references go to the registry, as before
    // engines were looked in first (crates/audit-cli/tests/engines.rs tests the order).
    c.env("IMGAUDIT_IMAGE_SRC", "remote");
    for k in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "CONTAINER_HOST",
        "XDG_RUNTIME_DIR",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run imgaudit")
}

pub(crate) fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn json(o: &Output) -> Vec<serde_json::Value> {
    assert_eq!(o.status.code(), Some(0), "imgaudit failed: {}", err(o));
    match serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out(o)))
    {
        serde_json::Value::Array(a) => a,
        v => vec![v],
    }
}

/// A TCP proxy in front of a registry that counts the bytes it relays back and, once past
/// `after` bytes, runs `action` once (stop the registry, or just cut the connections).
pub(crate) struct Proxy {
    pub(crate) port: u16,
    pub(crate) relayed: Arc<AtomicU64>,
    pub(crate) fired: Arc<AtomicBool>,
}

impl Proxy {
    pub(crate) fn start(upstream: u16, after: u64, action: Box<dyn FnOnce() + Send>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let relayed = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicBool::new(false));
        let action = Arc::new(Mutex::new(Some(action)));
        let (r2, f2) = (Arc::clone(&relayed), Arc::clone(&fired));
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_r, &mut s_w);
                    let _ = s_w.shutdown(Shutdown::Write);
                });
                let (relayed, fired, action) =
                    (Arc::clone(&r2), Arc::clone(&f2), Arc::clone(&action));
                std::thread::spawn(move || {
                    let (mut s_r, mut c_w) = (server, client);
                    let mut buf = [0u8; 16 << 10];
                    loop {
                        let n = match s_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = relayed.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if total > after && !fired.swap(true, Ordering::SeqCst) {
                            if let Some(a) = action.lock().unwrap().take() {
                                a();
                            }
                            // Cut this connection mid-body.
                            let _ = c_w.shutdown(Shutdown::Both);
                            let _ = s_r.shutdown(Shutdown::Both);
                            break;
                        }
                        if c_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_w.shutdown(Shutdown::Both);
                });
            }
        });
        Self {
            port,
            relayed,
            fired,
        }
    }
}

/// Waits until `f` holds or the timeout passes.
pub(crate) fn wait_for(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// A `redis-server` on a free loopback port, its data in a temporary directory.
pub(crate) struct Redis {
    pub(crate) port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) fn start(password: Option<&str>) -> Self {
        require("redis-server");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Command::new("redis-server");
        c.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--proto-max-bulk-len", "512mb"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(p) = password {
            c.args(["--requirepass", p]);
        }
        let child = c.spawn().expect("start redis-server");
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "redis-server did not start"
        );
        Self {
            port,
            child,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let o = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A shared layer-store key file (32 bytes) in `dir`.
pub(crate) fn key_file(dir: &Path) -> String {
    let p = dir.join("key");
    std::fs::write(&p, "0123456789abcdef0123456789abcdef\n").unwrap();
    p.display().to_string()
}
