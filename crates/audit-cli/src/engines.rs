//! Where the container engines listen, from the environment and Docker's client
//! configuration, as the engines' own clients find them:
//!
//! * Docker: `$DOCKER_HOST` (with `$DOCKER_TLS_VERIFY` and `$DOCKER_CERT_PATH` for
//!   `tcp://`), else the context `$DOCKER_CONTEXT` or `currentContext` of
//!   `$DOCKER_CONFIG/config.json` (`~/.docker`) names, else `unix:///var/run/docker.sock`
//!   (<https://docs.docker.com/engine/manage-resources/contexts/>; a context's endpoint is in
//!   `contexts/meta/<sha256 of its name>/meta.json`, its TLS files in
//!   `contexts/tls/<sha256 of its name>/docker/`).
//! * Podman: `$CONTAINER_HOST`, else `$XDG_RUNTIME_DIR/podman/podman.sock` (rootless), then
//!   `/run/podman/podman.sock` (root), as podman-remote looks
//!   (<https://docs.podman.io/en/latest/markdown/podman-system-service.1.html>).
//! * containerd: `--containerd-address` / `$CONTAINERD_ADDRESS` (the CLI's flags), a path or
//!   `unix://` path as `ctr` and nerdctl take it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use audit_core::source::{EngineHost, EngineOptions, EngineTls, ImageSrc};
use audit_core::Digest;
use serde::Deserialize;

/// Largest Docker client file read (config.json, a context's meta.json, a PEM file).
const MAX_CLIENT_FILE_BYTES: u64 = 1 << 20;

/// The engines' addresses; `env` reads the environment.
pub(crate) fn options(env: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<EngineOptions> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut o = EngineOptions::default();
    let config_dir = var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker")));
    if let Some(h) = var("DOCKER_HOST") {
        let h = h.to_string_lossy();
        let mut host = EngineHost::parse(&h)
            .map_err(anyhow::Error::msg)
            .context("$DOCKER_HOST")?;
        if let (EngineHost::Tcp { tls, .. }, Some(_)) = (&mut host, var("DOCKER_TLS_VERIFY")) {
            let certs = var("DOCKER_CERT_PATH")
                .map(PathBuf::from)
                .or_else(|| config_dir.clone());
            let Some(certs) = certs else {
                bail!("$DOCKER_TLS_VERIFY is set but neither $DOCKER_CERT_PATH nor $HOME is");
            };
            *tls = Some(tls_files(&certs, true).context("$DOCKER_CERT_PATH")?);
        }
        o.docker = host;
    } else if let Some(dir) = &config_dir {
        if let Some(host) = context_host(dir, var("DOCKER_CONTEXT"))? {
            o.docker = host;
        }
    }
    let mut podman = Vec::new();
    if let Some(h) = var("CONTAINER_HOST") {
        podman.push(
            EngineHost::parse(&h.to_string_lossy())
                .map_err(anyhow::Error::msg)
                .context("$CONTAINER_HOST")?,
        );
    } else {
        if let Some(d) = var("XDG_RUNTIME_DIR") {
            podman.push(EngineHost::Unix(
                PathBuf::from(d).join("podman/podman.sock"),
            ));
        }
        podman.push(EngineHost::Unix("/run/podman/podman.sock".into()));
    }
    o.podman = podman;
    Ok(o)
}

/// `--image-src`: sources in order, each once.
pub(crate) fn order(list: &str) -> anyhow::Result<Vec<ImageSrc>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim) {
        let src: ImageSrc = name.parse().map_err(anyhow::Error::msg)?;
        if out.contains(&src) {
            bail!("{name} is named twice");
        }
        out.push(src);
    }
    Ok(out)
}

/// `--containerd-address`: a socket path, also written `unix:///PATH` (as nerdctl takes it).
pub(crate) fn containerd_socket(s: &str) -> anyhow::Result<PathBuf> {
    let p = s.strip_prefix("unix://").unwrap_or(s);
    if !p.starts_with('/') {
        bail!("{s}: expected the absolute path of containerd's socket");
    }
    Ok(PathBuf::from(p))
}

/// Reads a small client file; `None` when it does not exist.
fn read_small(p: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = match std::fs::File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| p.display().to_string()),
    };
    let mut buf = Vec::new();
    f.take(MAX_CLIENT_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .with_context(|| p.display().to_string())?;
    if buf.len() as u64 > MAX_CLIENT_FILE_BYTES {
        bail!("{}: larger than {MAX_CLIENT_FILE_BYTES} bytes", p.display());
    }
    Ok(Some(buf))
}

/// `ca.pem`, `cert.pem` and `key.pem` of a Docker TLS directory (each optional).
fn tls_files(dir: &Path, verify: bool) -> anyhow::Result<EngineTls> {
    let ca_pem = read_small(&dir.join("ca.pem"))?;
    let identity_pem = match (
        read_small(&dir.join("cert.pem"))?,
        read_small(&dir.join("key.pem"))?,
    ) {
        (Some(mut c), Some(k)) => {
            c.push(b'\n');
            c.extend_from_slice(&k);
            Some(c)
        }
        _ => None,
    };
    Ok(EngineTls {
        ca_pem,
        identity_pem,
        verify,
    })
}

/// The Docker endpoint of the current context (`None`: the default context).
fn context_host(dir: &Path, named: Option<OsString>) -> anyhow::Result<Option<EngineHost>> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "currentContext", default)]
        current: Option<String>,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "Endpoints")]
        endpoints: Endpoints,
    }
    #[derive(Deserialize)]
    struct Endpoints {
        docker: Option<Endpoint>,
    }
    #[derive(Deserialize)]
    struct Endpoint {
        #[serde(rename = "Host")]
        host: String,
        #[serde(rename = "SkipTLSVerify", default)]
        skip_verify: bool,
    }
    let name = match named {
        Some(n) => n.to_string_lossy().into_owned(),
        None => {
            let path = dir.join("config.json");
            let Some(raw) = read_small(&path)? else {
                return Ok(None);
            };
            let c: Config = serde_json::from_slice(&raw)
                .with_context(|| format!("{}: not a Docker client config", path.display()))?;
            match c.current {
                Some(n) if !n.is_empty() => n,
                _ => return Ok(None),
            }
        }
    };
    if name == "default" {
        return Ok(None);
    }
    let id = Digest::sha256_of(name.as_bytes());
    let path = dir.join("contexts/meta").join(id.hex()).join("meta.json");
    let raw = read_small(&path)?
        .with_context(|| format!("docker context {name:?}: {} does not exist", path.display()))?;
    let meta: Meta = serde_json::from_slice(&raw)
        .with_context(|| format!("docker context {name:?}: {}", path.display()))?;
    let Some(ep) = meta.endpoints.docker else {
        bail!("docker context {name:?} has no docker endpoint");
    };
    let mut host = EngineHost::parse(&ep.host)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("docker context {name:?}"))?;
    if let EngineHost::Tcp { tls, .. } = &mut host {
        // A context speaks TLS when it has TLS material (`docker context create --docker
        // host=…,ca=…,cert=…,key=…`), as the docker CLI decides.
        let tls_dir = dir.join("contexts/tls").join(id.hex()).join("docker");
        if tls_dir.is_dir() {
            *tls = Some(tls_files(&tls_dir, !ep.skip_verify)?);
        }
    }
    Ok(Some(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn defaults_and_environment() {
        let o = options(env(&[])).unwrap();
        assert_eq!(o.docker.to_string(), "unix:///var/run/docker.sock");
        assert_eq!(o.podman.len(), 1);
        let o = options(env(&[
            ("DOCKER_HOST", "unix:///tmp/d.sock"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]))
        .unwrap();
        assert_eq!(o.docker.to_string(), "unix:///tmp/d.sock");
        assert_eq!(
            o.podman[0].to_string(),
            "unix:///run/user/1000/podman/podman.sock"
        );
        let o = options(env(&[("CONTAINER_HOST", "unix:///tmp/p.sock")])).unwrap();
        assert_eq!(o.podman.len(), 1);
        assert!(options(env(&[("DOCKER_HOST", "ssh://me@host")])).is_err());
    }

    #[test]
    fn image_source_order() {
        assert_eq!(
            order("docker,podman,containerd,remote").unwrap(),
            ImageSrc::DEFAULT_ORDER
        );
        assert_eq!(order("remote").unwrap(), [ImageSrc::Remote]);
        assert!(order("docker,docker").is_err());
        assert!(format!("{:#}", order("dockr").unwrap_err()).contains("unknown image source"));
        assert_eq!(
            containerd_socket("unix:///run/c.sock").unwrap(),
            PathBuf::from("/run/c.sock")
        );
        assert!(containerd_socket("c.sock").is_err());
    }

    #[test]
    fn docker_contexts() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".docker");
        let id = Digest::sha256_of(b"remote").hex().to_string();
        let meta = dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.0.5:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let tls = dir.join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "CA").unwrap();
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"remote"}"#).unwrap();
        let h = home.path().to_str().unwrap();
        let o = options(env(&[("HOME", h)])).unwrap();
        let EngineHost::Tcp { addr, tls: Some(t) } = &o.docker else {
            panic!("{:?}", o.docker)
        };
        assert_eq!(addr, "10.0.0.5:2376");
        assert_eq!(t.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert!(t.verify);
        // $DOCKER_HOST wins; DOCKER_CONTEXT=default is the default socket.
        let o = options(env(&[("HOME", h), ("DOCKER_HOST", "unix:///x.sock")])).unwrap();
        assert_eq!(o.docker.to_string(), "unix:///x.sock");
        let o = options(env(&[("HOME", h), ("DOCKER_CONTEXT", "default")])).unwrap();
        assert_eq!(o.docker.to_string(), "unix:///var/run/docker.sock");
        let e = options(env(&[("HOME", h), ("DOCKER_CONTEXT", "gone")])).unwrap_err();
        assert!(format!("{e:#}").contains("\"gone\""), "{e:#}");
    }
}
