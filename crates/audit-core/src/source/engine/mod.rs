//! Images where users have them: the Docker Engine and Podman (the Docker Engine API), and
//! containerd (its own gRPC API, incl. a Kubernetes node's `k8s.io` namespace).
//!
//! * `docker-daemon:NAME` and `podman:NAME` (alias `containers-storage:NAME`, the same
//!   images) resolve the image with `GET /images/{name}/json` and stream
//!   `GET /images/{id}/get` — the engine's `docker save` — through `stream`: layers are
//!   analysed as they arrive, the manifest is matched when it comes, nothing is written to
//!   disk. Async stays in `docker` (feature `engines`), bridged like the registry's blobs.
//! * `containerd:NAME` is a `BlobStore` over containerd's images and content services
//!   (`containerd`, feature `containerd`): index, manifests, config and layers are read from
//!   the content store by digest; there is no export step.
//!
//! The library reads no environment: where each engine listens is an [`EngineOptions`]
//! value the caller builds (the CLI reads `DOCKER_HOST`, docker contexts, `CONTAINER_HOST`,
//! `CONTAINERD_ADDRESS` …).

#[cfg(feature = "containerd")]
mod containerd;
#[cfg(feature = "engines")]
mod docker;
pub(crate) mod stream;

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use super::{ArchiveFormat, BlobStore, ResolvedImage};
use crate::error::SourceError;
use crate::limits;

#[cfg(feature = "containerd")]
pub use containerd::ContainerdStore;
#[cfg(feature = "engines")]
pub use docker::DockerEngine;

/// An image archive that arrives as a stream, read once (`stream`).
pub trait ArchiveStream: Send + Sync {
    /// Where the stream comes from, for messages (`docker at unix:///var/run/docker.sock`).
    fn location(&self) -> String;
    /// The source kind reports show: `docker-daemon`, `podman`.
    fn kind(&self) -> &'static str;
    /// The archive's format, when known (`None`: detect as for a bare path).
    fn format(&self) -> Option<ArchiveFormat> {
        None
    }
    /// Starts the stream.
    fn open(&self) -> Result<Box<dyn Read + Send + '_>, SourceError>;
    /// The source's error for a failure reading the stream.
    fn stream_error(&self, e: io::Error) -> SourceError;
    /// Checks that the images read from the stream are the one that was asked for.
    fn check(&self, images: &[ResolvedImage]) -> Result<(), SourceError>;
}

/// Reads an [`ArchiveStream`] once and returns its image as a store whose layers were
/// analysed on the way ([`crate::source::BlobStore::analysed`]).
pub(crate) fn read_stream(
    s: &dyn ArchiveStream,
    pass: &stream::Pass<'_>,
) -> Result<Box<dyn BlobStore>, SourceError> {
    let r = s.open()?;
    let members = stream::Streamed::read(s.location(), r, pass, &|e| s.stream_error(e))?;
    super::archive::stores_for(std::sync::Arc::new(members), None, s.format())
}

/// Where an engine speaking the Docker Engine API listens.
#[derive(Clone, PartialEq, Eq)]
pub enum EngineHost {
    /// A unix socket (`unix:///var/run/docker.sock`).
    Unix(PathBuf),
    /// A TCP address `host:port` (`tcp://…`), plain or with TLS.
    Tcp {
        /// `host:port`.
        addr: String,
        /// TLS material, when the engine speaks TLS (`DOCKER_TLS_VERIFY`, a context's TLS
        /// files).
        tls: Option<EngineTls>,
    },
}

/// TLS to a Docker engine over TCP: the CA to trust and the client certificate Docker's TLS
/// mode asks for (`DOCKER_CERT_PATH`'s `ca.pem`, `cert.pem`, `key.pem`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EngineTls {
    /// PEM certificates trusted as roots (only these when given; else the system's).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key.
    pub identity_pem: Option<Vec<u8>>,
    /// Verify the engine's certificate (`DOCKER_TLS_VERIFY`, a context's `SkipTLSVerify`
    /// false).
    pub verify: bool,
}

impl fmt::Debug for EngineTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("verify", &self.verify)
            .finish()
    }
}

impl EngineHost {
    /// Parses `unix:///path` or `tcp://host:port` (as `DOCKER_HOST` and `CONTAINER_HOST`
    /// write them); a bare absolute path is a unix socket.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if !p.starts_with('/') {
                return Err(format!("{s}: a unix socket path must be absolute"));
            }
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            if a.is_empty() || a.contains('/') {
                return Err(format!("{s}: expected tcp://HOST:PORT"));
            }
            let addr = if a
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                && !a.ends_with(']')
            {
                a.to_string()
            } else {
                format!("{a}:2375")
            };
            return Ok(Self::Tcp { addr, tls: None });
        }
        if s.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(s)));
        }
        Err(format!(
            "{s}: unsupported engine address (unix:///PATH or tcp://HOST:PORT; ssh:// and npipe:// are not supported)"
        ))
    }
}

impl fmt::Display for EngineHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp { addr, .. } => write!(f, "tcp://{addr}"),
        }
    }
}

impl fmt::Debug for EngineHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(_) => write!(f, "{self}"),
            Self::Tcp { tls, .. } => write!(f, "{self} {tls:?}"),
        }
    }
}

/// Where a bare reference's image is looked for, for `--image-src` (trivy's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSrc {
    /// The Docker engine (`docker-daemon:`).
    Docker,
    /// Podman's API service (`podman:`).
    Podman,
    /// containerd (`containerd:`).
    Containerd,
    /// The registry the reference names (`docker://`).
    Remote,
}

impl ImageSrc {
    /// The default order for a bare reference: local engines first, as trivy does.
    pub const DEFAULT_ORDER: [Self; 4] =
        [Self::Docker, Self::Podman, Self::Containerd, Self::Remote];

    /// The name `--image-src` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::Containerd => "containerd",
            Self::Remote => "remote",
        }
    }
}

impl std::str::FromStr for ImageSrc {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::DEFAULT_ORDER
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::DEFAULT_ORDER.iter().map(|k| k.name()).collect();
                format!("{s}: unknown image source (one of {})", names.join(", "))
            })
    }
}

/// Where the engines listen, and the order a bare reference tries them in. `Default`: the
/// engines' default sockets, containerd's namespace `default`, trivy's order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineOptions {
    /// The Docker engine.
    pub docker: EngineHost,
    /// Podman's API service: the first of these whose socket exists is used.
    pub podman: Vec<EngineHost>,
    /// containerd's socket (`ctr --address`).
    pub containerd: PathBuf,
    /// The containerd namespace images are looked up in (`ctr -n`; `k8s.io` is a kubelet's).
    pub containerd_namespace: String,
    /// Sources a bare reference is looked up in, in order.
    pub order: Vec<ImageSrc>,
    /// See [`limits::ENGINE_IDLE_TIMEOUT_SECS`].
    pub idle_timeout: Duration,
    /// See [`limits::ENGINE_CONNECT_TIMEOUT_SECS`].
    pub connect_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            docker: EngineHost::Unix("/var/run/docker.sock".into()),
            podman: vec![EngineHost::Unix("/run/podman/podman.sock".into())],
            containerd: "/run/containerd/containerd.sock".into(),
            containerd_namespace: "default".into(),
            order: ImageSrc::DEFAULT_ORDER.to_vec(),
            idle_timeout: Duration::from_secs(limits::ENGINE_IDLE_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(limits::ENGINE_CONNECT_TIMEOUT_SECS),
        }
    }
}

/// An image name as engines take it: a reference, an image ID (`sha256:HEX`) or an ID
/// prefix. Refused: empty, longer than [`super::MAX_NAME_BYTES`], or with characters no
/// image name has (they would change the request path).
#[cfg_attr(not(feature = "engines"), allow(dead_code))]
pub(crate) fn check_name(name: &str) -> Result<(), SourceError> {
    let bad = |reason: &str| SourceError::BadReference {
        reference: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty image name"));
    }
    if name.len() > super::MAX_NAME_BYTES {
        return Err(bad("image name too long"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/:@+".contains(&b))
    {
        return Err(bad(
            "an image name has only letters, digits and . _ - / : @",
        ));
    }
    if name.starts_with(['/', '.', '-', ':', '@']) || name.contains("..") {
        return Err(bad("not an image name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_addresses_parse_like_docker_host() {
        assert_eq!(
            EngineHost::parse("unix:///var/run/docker.sock").unwrap(),
            EngineHost::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            EngineHost::parse("tcp://127.0.0.1:2376")
                .unwrap()
                .to_string(),
            "tcp://127.0.0.1:2376"
        );
        assert_eq!(
            EngineHost::parse("tcp://docker.example")
                .unwrap()
                .to_string(),
            "tcp://docker.example:2375"
        );
        assert!(EngineHost::parse("ssh://u@h")
            .unwrap_err()
            .contains("not supported"));
        assert!(EngineHost::parse("unix://rel.sock").is_err());
    }

    #[test]
    fn image_names_cannot_change_the_request_path() {
        for ok in [
            "myapp:dev",
            "ghcr.io/org/app:v1",
            "sha256:abc",
            "app@sha256:0f",
            "a1b2",
        ] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            "../x",
            "a?b",
            "a#b",
            "a b",
            "a%2f",
            "/etc",
            "x/../../v1",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name(&"a".repeat(super::super::MAX_NAME_BYTES + 1)).is_err());
    }
}
