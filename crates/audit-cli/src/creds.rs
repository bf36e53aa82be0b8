//! Registry credential lookup: the I/O policy the library leaves to its caller.
//!
//! Order (the first source that configures the registry wins; none means anonymous):
//! 1. `--creds USER:PASS` or `--registry-token TOKEN`;
//! 2. `--authfile PATH` (must exist), else `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`
//!    and `~/.docker/config.json`, each skipped when absent.
//!
//! Within one Docker config file (`docker/cli` `configfile/file.go`): `credHelpers[host]`,
//! else `credsStore`, else `auths` (exact key, then any key whose host matches; Docker Hub is
//! filed under `https://index.docker.io/v1/`). Helpers are run with the
//! `docker-credential-NAME get` protocol under a timeout; "credentials not found" means
//! anonymous. Lookups happen only when a registry asks for credentials (HTTP 401), and no
//! secret is ever printed or logged.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use audit_core::source::{Credentials, CredentialsError, RegistryAuth, Secret, DOCKER_HUB};
use base64::Engine as _;
use serde_json::Value;

/// Longest a credential helper may run: 30 s (a keychain prompt may take a while). Past it
/// the helper is killed and the lookup fails with an error naming the helper.
pub(crate) const CRED_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes read from a credential helper's stdout or stderr: 1 MiB. More is an error.
pub(crate) const MAX_HELPER_OUTPUT: u64 = 1 << 20;

/// Largest auth file read: 4 MiB. Larger is an error.
pub(crate) const MAX_AUTH_FILE_BYTES: u64 = 4 << 20;

/// Docker Hub's key in credential stores.
const HUB_SERVER_KEY: &str = "https://index.docker.io/v1/";

/// Credentials from flags, auth files and helpers.
pub(crate) struct CliCredentials {
    explicit: Option<RegistryAuth>,
    /// Files in order, and whether a missing one is an error.
    files: Vec<(PathBuf, bool)>,
    helper_timeout: Duration,
}

impl CliCredentials {
    /// From the flags and the environment (`env` is `std::env::var_os` in production).
    pub(crate) fn new(
        creds: Option<&str>,
        token: Option<&str>,
        authfile: Option<&Path>,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> anyhow::Result<Self> {
        let explicit = match (creds, token) {
            (Some(c), _) => {
                let (u, p) = c
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--creds: expected USER:PASS"))?;
                Some(RegistryAuth::Basic {
                    username: u.to_string(),
                    password: Secret::new(p),
                })
            }
            (None, Some(t)) => Some(RegistryAuth::Bearer(Secret::new(t))),
            (None, None) => None,
        };
        let mut files = Vec::new();
        if let Some(p) = authfile {
            files.push((p.to_path_buf(), true));
        } else {
            if let Some(p) = env("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
                files.push((PathBuf::from(p), false));
            }
            if let Some(d) = env("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
                files.push((PathBuf::from(d).join("config.json"), false));
            }
            if let Some(h) = env("HOME").filter(|p| !p.is_empty()) {
                files.push((PathBuf::from(h).join(".docker/config.json"), false));
            }
        }
        Ok(Self {
            explicit,
            files,
            helper_timeout: CRED_HELPER_TIMEOUT,
        })
    }
}

impl Credentials for CliCredentials {
    fn lookup(&self, registry: &str) -> Result<RegistryAuth, CredentialsError> {
        if let Some(a) = &self.explicit {
            return Ok(a.clone());
        }
        for (path, required) in &self.files {
            let bytes = match std::fs::File::open(path) {
                Ok(f) => {
                    let mut b = Vec::new();
                    f.take(MAX_AUTH_FILE_BYTES + 1)
                        .read_to_end(&mut b)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    if b.len() as u64 > MAX_AUTH_FILE_BYTES {
                        return Err(format!(
                            "{}: larger than {MAX_AUTH_FILE_BYTES} bytes",
                            path.display()
                        )
                        .into());
                    }
                    b
                }
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{}: {e}", path.display()).into()),
            };
            let cfg: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
            if let Some(a) = from_config(&cfg, registry, self.helper_timeout)
                .map_err(|e| format!("{}: {e}", path.display()))?
            {
                tracing::debug!(registry, file = %path.display(), anonymous = a.is_anonymous(), "credentials source");
                return Ok(a);
            }
        }
        Ok(RegistryAuth::Anonymous)
    }
}

/// The host part of a credential-store key: `https://host:5000/v1/` → `host:5000`.
fn key_host(key: &str) -> &str {
    let k = key.split_once("://").map_or(key, |(_, r)| r);
    k.split('/').next().unwrap_or(k)
}

/// Hosts a registry may be filed under.
fn candidate_hosts(registry: &str) -> Vec<&str> {
    if registry == DOCKER_HUB {
        vec!["index.docker.io", "docker.io", "registry-1.docker.io"]
    } else {
        vec![registry]
    }
}

/// Looks `registry` up in one Docker config document. `None`: this file does not configure
/// it.
fn from_config(
    cfg: &Value,
    registry: &str,
    timeout: Duration,
) -> Result<Option<RegistryAuth>, String> {
    let server_url = if registry == DOCKER_HUB {
        HUB_SERVER_KEY
    } else {
        registry
    };
    let hosts = candidate_hosts(registry);
    let find = |map: &serde_json::Map<String, Value>| -> Option<(String, Value)> {
        let exact = map
            .get(server_url)
            .or_else(|| map.get(registry))
            .map(|v| (server_url.to_string(), v.clone()));
        exact.or_else(|| {
            map.iter()
                .find(|(k, _)| hosts.contains(&key_host(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
        })
    };
    if let Some((_, helper)) = cfg
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(find)
    {
        let name = helper
            .as_str()
            .ok_or("credHelpers values must be strings")?;
        return run_helper(name, server_url, timeout).map(Some);
    }
    if let Some(name) = cfg
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return run_helper(name, server_url, timeout).map(Some);
    }
    let Some((key, entry)) = cfg.get("auths").and_then(Value::as_object).and_then(find) else {
        return Ok(None);
    };
    let s = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = s("identitytoken") {
        return Ok(Some(RegistryAuth::IdentityToken(Secret::new(t))));
    }
    if let Some(t) = s("registrytoken") {
        return Ok(Some(RegistryAuth::Bearer(Secret::new(t))));
    }
    if let Some(a) = s("auth") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|_| format!("auths[{key:?}].auth is not base64"))?;
        let text =
            String::from_utf8(raw).map_err(|_| format!("auths[{key:?}].auth is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| format!("auths[{key:?}].auth is not USER:PASS"))?;
        return Ok(Some(RegistryAuth::Basic {
            username: u.to_string(),
            password: Secret::new(p.trim_end_matches('\0')),
        }));
    }
    if let (Some(u), Some(p)) = (s("username"), s("password")) {
        return Ok(Some(RegistryAuth::Basic {
            username: u.to_string(),
            password: Secret::new(p),
        }));
    }
    Ok(None)
}

/// `docker-credential-NAME get` (docker-credential-helpers `client/client.go`).
fn run_helper(name: &str, server_url: &str, timeout: Duration) -> Result<RegistryAuth, String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!("invalid credential helper name {name:?}"));
    }
    run_program(&format!("docker-credential-{name}"), server_url, timeout)
}

fn run_program(prog: &str, server_url: &str, timeout: Duration) -> Result<RegistryAuth, String> {
    let mut child = Command::new(prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is not an error here.
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = (&mut r).take(MAX_HELPER_OUTPUT + 1).read_to_end(&mut buf);
                // Keep draining so a chatty helper can exit; the excess is an error below.
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            }
            buf
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{prog} did not answer within {} s",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {prog}: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if stdout.len() as u64 > MAX_HELPER_OUTPUT || stderr.len() as u64 > MAX_HELPER_OUTPUT {
        return Err(format!("{prog} wrote more than {MAX_HELPER_OUTPUT} bytes"));
    }
    if !status.success() {
        let msg = String::from_utf8_lossy(if stdout.is_empty() { &stderr } else { &stdout })
            .trim()
            .to_string();
        if msg.contains("credentials not found") {
            return Ok(RegistryAuth::Anonymous);
        }
        let first: String = msg.lines().next().unwrap_or("").chars().take(200).collect();
        return Err(format!("{prog} failed ({status}): {first}"));
    }
    #[derive(serde::Deserialize)]
    struct HelperCreds {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    // serde_json's message never quotes the input, so no secret leaks through it.
    let c: HelperCreds =
        serde_json::from_slice(&stdout).map_err(|e| format!("{prog}: invalid answer: {e}"))?;
    Ok(match (c.username.as_str(), c.secret.is_empty()) {
        (_, true) => RegistryAuth::Anonymous,
        ("<token>", false) => RegistryAuth::IdentityToken(Secret::new(c.secret)),
        (_, false) => RegistryAuth::Basic {
            username: c.username,
            password: Secret::new(c.secret),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_entries() {
        let cfg = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:pw\0\0")},
            "https://ghcr.io": {"identitytoken": "refresh"},
            "reg:5000": {"registrytoken": "tok"},
            "plain.example": {"username": "u", "password": "p"},
            "empty.example": {}
        }});
        let t = Duration::from_secs(1);
        assert_eq!(
            from_config(&cfg, "docker.io", t).unwrap(),
            Some(RegistryAuth::Basic {
                username: "hub".into(),
                password: Secret::new("pw")
            })
        );
        assert_eq!(
            from_config(&cfg, "ghcr.io", t).unwrap(),
            Some(RegistryAuth::IdentityToken(Secret::new("refresh")))
        );
        assert_eq!(
            from_config(&cfg, "reg:5000", t).unwrap(),
            Some(RegistryAuth::Bearer(Secret::new("tok")))
        );
        assert_eq!(
            from_config(&cfg, "plain.example", t).unwrap(),
            Some(RegistryAuth::Basic {
                username: "u".into(),
                password: Secret::new("p")
            })
        );
        assert_eq!(from_config(&cfg, "empty.example", t).unwrap(), None);
        assert_eq!(from_config(&cfg, "other", t).unwrap(), None);
        let bad = json!({"auths": {"x": {"auth": "!!"}}});
        let e = from_config(&bad, "x", t).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
    }

    #[test]
    fn file_order_and_explicit() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(
            &a,
            json!({"auths": {"r:1": {"auth": b64("a:1")}}}).to_string(),
        )
        .unwrap();
        std::fs::write(
            home.join(".docker/config.json"),
            json!({"auths": {"r:1": {"auth": b64("h:1")}, "r:2": {"auth": b64("h:2")}}})
                .to_string(),
        )
        .unwrap();
        let env = |k: &str| match k {
            "REGISTRY_AUTH_FILE" => Some(a.clone().into_os_string()),
            "HOME" => Some(home.clone().into_os_string()),
            "DOCKER_CONFIG" => Some(dir.path().join("missing").into_os_string()),
            _ => None,
        };
        let c = CliCredentials::new(None, None, None, env).unwrap();
        assert_eq!(
            c.lookup("r:1").unwrap(),
            RegistryAuth::Basic {
                username: "a".into(),
                password: Secret::new("1")
            }
        );
        assert_eq!(
            c.lookup("r:2").unwrap(),
            RegistryAuth::Basic {
                username: "h".into(),
                password: Secret::new("2")
            }
        );
        assert_eq!(c.lookup("r:3").unwrap(), RegistryAuth::Anonymous);
        let c = CliCredentials::new(Some("x:y:z"), None, None, env).unwrap();
        assert_eq!(
            c.lookup("r:1").unwrap(),
            RegistryAuth::Basic {
                username: "x".into(),
                password: Secret::new("y:z")
            }
        );
        let c = CliCredentials::new(None, None, Some(&dir.path().join("nope.json")), env).unwrap();
        assert!(
            c.lookup("r:1").is_err(),
            "an explicit --authfile must exist"
        );
    }

    #[test]
    fn helper_timeout_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("docker-credential-slow");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 5\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let t0 = Instant::now();
        let e = run_program(script.to_str().unwrap(), "h", Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("did not answer within"), "{e}");
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the helper is killed at the timeout"
        );
        let noisy = dir.path().join("docker-credential-noisy");
        std::fs::write(&noisy, "#!/bin/sh\nhead -c 2000000 /dev/zero\n").unwrap();
        std::fs::set_permissions(&noisy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let e = run_program(noisy.to_str().unwrap(), "h", Duration::from_secs(10)).unwrap_err();
        assert!(e.contains("more than"), "{e}");
        assert!(run_helper("../x", "h", Duration::from_millis(100))
            .unwrap_err()
            .contains("invalid credential helper name"));
        let e = run_helper("imgaudit-test-missing", "h", Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("docker-credential-imgaudit-test-missing"), "{e}");
    }
}
