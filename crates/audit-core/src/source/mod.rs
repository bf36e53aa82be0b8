//! Where images come from, and how an index is narrowed down to image manifests.
//!
//! Every source that stores blobs (OCI layout directory, skopeo `dir:` directory, `docker
//! save` or oci-archive tarball, a registry) implements [`BlobStore`]: it names a root object
//! (index or manifest) and opens blobs by descriptor as raw, unverified byte streams.
//! Everything else — index walking, platform choice, bounded and verified reads of manifests
//! and configs — is shared here, and layer blobs are verified by the layer pipeline while they
//! stream. An unpacked root filesystem is the one source without blobs.
//!
//! Transport names are skopeo's (`containers-transports(5)`): `oci:`, `oci-archive:`,
//! `docker-archive:`, `dir:` and `docker://`; the unpacked root filesystem, which skopeo has
//! no transport for, is `rootfs:`.

mod archive;
pub mod engine;
mod oci_layout;
mod options;
mod reference;
#[cfg(feature = "registry")]
pub(crate) mod registry;
mod skopeo_dir;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use archive::{ArchiveFormat, TarArchive};
pub use engine::{ArchiveStream, EngineHost, EngineOptions, EngineTls, ImageSrc};
pub use oci_layout::OciLayout;
pub use options::{
    Credentials, CredentialsError, RegistryAuth, RegistryLimits, Secret, SourceOptions,
};
pub use reference::{
    ImageReference, DOCKER_HUB, DOCKER_HUB_API_HOST, MAX_NAME_BYTES, MAX_TAG_BYTES,
};
#[cfg(feature = "registry")]
pub use registry::{RegistryPool, RegistryStore, POOL_AUTH_MAX_AGE, POOL_MAX_ENTRIES};
pub use skopeo_dir::SkopeoDir;

use crate::digest::{Digest, Hasher};
use crate::error::{LayerError, SourceError};
use crate::hostfs;
use crate::layer::LayerAnalysis;
use crate::limits::Limits;
use crate::oci::{self, Descriptor, ImageConfig, Manifest, ManifestKind};
use crate::platform::Platform;

/// The top object a reference names.
#[derive(Clone, Debug)]
pub struct RootObject {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Declared media type, if known.
    pub media_type: Option<String>,
    /// Its digest, when it was read through a descriptor (verified) or served with one.
    pub digest: Option<Digest>,
    /// The manifest was synthesised (classic `docker save` archives have none): there is
    /// no manifest digest to report.
    pub synthetic: bool,
}

/// A store of content-addressed blobs.
pub trait BlobStore: Send + Sync {
    /// Human-readable location, for messages.
    fn location(&self) -> String;
    /// The index or manifest the reference names.
    fn root(&self) -> Result<RootObject, SourceError>;
    /// Opens a blob as a raw stream. The caller verifies digest and size.
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError>;
    /// What kind of source this is, for reports: `oci-layout`, `oci-archive`,
    /// `docker-archive`, `dir`, `registry`.
    fn kind(&self) -> &'static str;
    /// Whether layer digests in this store's manifests can be verified. Classic
    /// `docker save` archives have no manifest: their layer identity is the diff_id, which
    /// is verified on the uncompressed stream instead.
    fn verifies_layer_digests(&self) -> bool {
        true
    }
    /// The analysis of a layer blob made while the store read its input in one pass (an
    /// archive streamed from an engine, whose manifest comes last): the blob's bytes are
    /// gone, and the pipeline checks the analysis against the manifest's descriptor and the
    /// config's diff_id as it would check a fresh one ([`crate::layer::check_analysis`]).
    fn analysed(&self, _desc: &Descriptor) -> Option<Result<Arc<LayerAnalysis>, LayerError>> {
        None
    }
}

/// An image source.
pub enum Source {
    /// A store of blobs with manifests.
    Blobs(Box<dyn BlobStore>),
    /// An unpacked root filesystem: no config, no layers.
    Rootfs(PathBuf),
    /// An image archive read once as it streams from an engine (`docker save` over the
    /// Engine API).
    Stream(Box<dyn ArchiveStream>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Blobs(b) => write!(f, "Blobs({})", b.location()),
            Self::Rootfs(p) => write!(f, "Rootfs({})", p.display()),
            Self::Stream(s) => write!(f, "Stream({})", s.location()),
        }
    }
}

/// Which platforms of a multi-platform index to audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformChoice {
    /// The host's platform; a single-platform image is audited whatever its platform.
    Default,
    /// Exactly this platform (best match in an index); an error if the image has none.
    Exact(Platform),
    /// Every image in the index (attestations excluded).
    All,
}

/// One image manifest, resolved and verified, with its config.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// Digest of the index it was chosen from.
    pub index_digest: Option<Digest>,
    /// Digest of the manifest (absent for synthesised manifests).
    pub manifest_digest: Option<Digest>,
    /// The manifest.
    pub manifest: Manifest,
    /// Digest of the config blob (the image ID).
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
    /// Platform from the config.
    pub platform: Platform,
}

/// The local transports, with skopeo's names (and `rootfs:`, which skopeo lacks).
const LOCAL_TRANSPORTS: [&str; 5] = ["oci:", "oci-archive:", "docker-archive:", "dir:", "rootfs:"];

/// skopeo transports imgaudit does not read, with what to do instead.
const UNSUPPORTED_TRANSPORTS: [(&str, &str); 3] = [
    (
        "ostree:",
        "export it first: skopeo copy ostree:REF oci-archive:image.tar",
    ),
    (
        "sif:",
        "export it first: skopeo copy sif:PATH oci-archive:image.tar",
    ),
    (
        "tarball:",
        "export it first: skopeo copy tarball:PATH oci-archive:image.tar",
    ),
];

/// The engine transports: skopeo's `docker-daemon:` and `containers-storage:` (read through
/// Podman's API service, which serves the same store), `podman:`, and `containerd:`.
const ENGINE_TRANSPORTS: [(&str, Engine); 4] = [
    ("docker-daemon:", Engine::Docker),
    ("podman:", Engine::Podman),
    ("containers-storage:", Engine::Podman),
    ("containerd:", Engine::Containerd),
];

/// The engines a transport names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Docker,
    Podman,
    Containerd,
}

/// Opens any source: a local one (see [`open_local`]), an image in a container engine, or
/// an image in a registry.
///
/// * `docker://REF` (and `registry:REF`) always name a registry image;
/// * `oci:`, `oci-archive:`, `docker-archive:`, `dir:` and `rootfs:` always name local
///   sources;
/// * `docker-daemon:NAME`, `podman:NAME` (alias `containers-storage:NAME`) and
///   `containerd:NAME` name an image in that engine ([`engine`]); an engine that cannot be
///   reached or lacks the image is an error;
/// * anything else that exists locally is local (a path wins over a reference);
/// * otherwise a valid reference (`alpine`, `ghcr.io/org/app:tag`,
///   `host:5000/ns/app@sha256:…`) is looked up in the sources of
///   [`EngineOptions::order`], by default the local engines first (Docker, Podman, then
///   containerd: the first whose socket answers and that has the image; one that cannot be reached or
///   lacks the image is skipped without a word), then its registry — unless its first path
///   component is a local directory and no registry host is written, which is far more
///   likely a mistyped path (write `docker://…` to pull it).
///
/// Opening asks local engines whether they have the image; nothing goes to a registry until
/// the image is resolved.
pub fn open(spec: &str, opts: &SourceOptions) -> Result<Source, SourceError> {
    if let Some(r) = spec
        .strip_prefix("docker://")
        .or_else(|| spec.strip_prefix("registry:"))
    {
        return open_registry(ImageReference::parse(r)?, opts);
    }
    if LOCAL_TRANSPORTS.iter().any(|p| spec.starts_with(p)) {
        return open_local(spec);
    }
    if let Some((name, src)) = ENGINE_TRANSPORTS
        .iter()
        .find_map(|(t, e)| spec.strip_prefix(t).map(|n| (n, *e)))
    {
        return open_engine(src, name, opts);
    }
    if let Some((t, hint)) = UNSUPPORTED_TRANSPORTS
        .iter()
        .find(|(t, _)| spec.starts_with(t))
    {
        return Err(SourceError::BadReference {
            reference: spec.to_string(),
            reason: format!("transport {t} is not supported; {hint}"),
        });
    }
    match open_local(spec) {
        Err(SourceError::Io { path, error }) if error.kind() == std::io::ErrorKind::NotFound => {
            let Ok(r) = ImageReference::parse(spec) else {
                return Err(SourceError::Io { path, error });
            };
            let explicit_registry = spec
                .split('/')
                .next()
                .is_some_and(|first| first.contains(['.', ':']) || first == "localhost");
            if !explicit_registry {
                if let Some((first, _)) = spec.split_once('/') {
                    if Path::new(first).is_dir() {
                        return Err(SourceError::BadReference {
                            reference: spec.to_string(),
                            reason: format!("no such local path (there is a directory {first:?} here); to pull it from Docker Hub write docker://{spec}"),
                        });
                    }
                }
            }
            open_in_order(spec, r, opts)
        }
        other => other,
    }
}

/// A bare reference, looked up in the sources of [`EngineOptions::order`].
fn open_in_order(
    spec: &str,
    r: ImageReference,
    opts: &SourceOptions,
) -> Result<Source, SourceError> {
    let order = &opts.engines.order;
    for src in order {
        let which = match src {
            ImageSrc::Remote => return open_registry(r, opts),
            ImageSrc::Docker => Engine::Docker,
            ImageSrc::Podman => Engine::Podman,
            ImageSrc::Containerd => Engine::Containerd,
        };
        match open_engine(which, spec, opts) {
            Ok(s) => return Ok(s),
            Err(
                e @ (SourceError::EngineUnreachable { .. }
                | SourceError::EngineImageNotFound { .. }
                | SourceError::EnginesUnsupported { .. }
                | SourceError::ContainerdUnsupported { .. }),
            ) => tracing::debug!(source = src.name(), error = %e, "image source skipped"),
            Err(e) => return Err(e),
        }
    }
    let names: Vec<_> = order.iter().map(|s| s.name()).collect();
    Err(SourceError::BadReference {
        reference: spec.to_string(),
        reason: format!(
            "no such image in {} (the sources --image-src names)",
            names.join(", ")
        ),
    })
}

/// An image in an engine, checked to be there (the engine answered and has it).
#[cfg(feature = "engines")]
fn open_engine(which: Engine, name: &str, opts: &SourceOptions) -> Result<Source, SourceError> {
    let e = &opts.engines;
    let d = match which {
        Engine::Docker => engine::DockerEngine::new("docker-daemon", "docker", &e.docker, name, e)?,
        Engine::Podman => {
            let host = e
                .podman
                .iter()
                .find(|h| match h {
                    EngineHost::Unix(p) => p.exists(),
                    EngineHost::Tcp { .. } => true,
                })
                .ok_or_else(|| SourceError::EngineUnreachable {
                    engine: "podman".into(),
                    reason: format!(
                        "no API socket at {} (start it with: podman system service --time=0)",
                        e.podman
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            engine::DockerEngine::new("podman", "podman", host, name, e)?
        }
        Engine::Containerd => return open_containerd(name, e),
    };
    d.inspect()?;
    Ok(Source::Stream(Box::new(d)))
}

/// An image in containerd, checked to be there.
#[cfg(feature = "containerd")]
fn open_containerd(name: &str, e: &EngineOptions) -> Result<Source, SourceError> {
    let s = engine::ContainerdStore::new(name, e)?;
    s.lookup()?;
    Ok(Source::Blobs(Box::new(s)))
}

#[cfg(all(feature = "engines", not(feature = "containerd")))]
fn open_containerd(name: &str, _e: &EngineOptions) -> Result<Source, SourceError> {
    Err(SourceError::ContainerdUnsupported {
        reference: format!("containerd:{name}"),
    })
}

#[cfg(not(feature = "engines"))]
fn open_engine(which: Engine, name: &str, _opts: &SourceOptions) -> Result<Source, SourceError> {
    let t = ENGINE_TRANSPORTS
        .iter()
        .find(|(_, e)| *e == which)
        .map_or("", |(t, _)| *t);
    Err(SourceError::EnginesUnsupported {
        reference: format!("{t}{name}"),
    })
}

#[cfg(feature = "registry")]
fn open_registry(r: ImageReference, opts: &SourceOptions) -> Result<Source, SourceError> {
    Ok(Source::Blobs(Box::new(RegistryStore::new(r, opts)?)))
}

#[cfg(not(feature = "registry"))]
fn open_registry(r: ImageReference, _opts: &SourceOptions) -> Result<Source, SourceError> {
    Err(SourceError::RegistryUnsupported {
        reference: r.to_string(),
    })
}

/// What a local directory holds, judged from its top-level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirKind {
    /// `index.json` or `oci-layout`: an OCI image layout (image-layout.md).
    OciLayout,
    /// `manifest.json` holding a JSON object, or a `version` file of skopeo's directory
    /// transport: a skopeo `dir:` image.
    SkopeoDir,
    /// `manifest.json` holding a JSON array: an unpacked `docker save` tarball.
    DockerSaveTree,
    /// A `blobs/` directory and none of the above: a layout that lost its `index.json`.
    BlobsOnly,
    /// Anything else: a root filesystem.
    Other,
}

/// Tells image directories from root filesystems (used for bare paths and for messages).
pub(crate) fn describe_dir(p: &Path) -> DirKind {
    if p.join("index.json").exists() || p.join("oci-layout").exists() {
        return DirKind::OciLayout;
    }
    let version = read_host_file(&p.join("version"), 256, "version file").ok();
    if version.is_some_and(|v| v.starts_with(skopeo_dir::VERSION_PREFIX.as_bytes())) {
        return DirKind::SkopeoDir;
    }
    if p.join("manifest.json").exists() {
        let head =
            read_host_file(&p.join("manifest.json"), 4096, "manifest.json").unwrap_or_default();
        return match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => DirKind::DockerSaveTree,
            _ => DirKind::SkopeoDir,
        };
    }
    if p.join("blobs").is_dir() {
        return DirKind::BlobsOnly;
    }
    DirKind::Other
}

/// Reads a small file from the host: a regular file (never a FIFO or device), at most
/// `limit` bytes.
pub(crate) fn read_host_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, SourceError> {
    let io_err = |source| SourceError::Io {
        path: path.to_path_buf(),
        error: source,
    };
    let f = hostfs::open_regular(path).map_err(io_err)?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(io_err)?;
    if buf.len() as u64 > limit {
        return Err(SourceError::TooLarge {
            what: format!("{} ({what})", path.display()),
            limit,
        });
    }
    Ok(buf)
}

/// Opens a local source: `oci:PATH[:TAG|@DIGEST]`, `oci-archive:PATH[:TAG]`,
/// `docker-archive:PATH[:REF|:@N]`, `dir:PATH` (skopeo's directory image), `rootfs:PATH`
/// (an unpacked root filesystem), or a bare path, whose kind is detected. A path that looks
/// like an image but cannot be read as one is an error, never an empty root filesystem.
pub fn open_local(spec: &str) -> Result<Source, SourceError> {
    if let Some(rest) = spec.strip_prefix("oci:") {
        let (p, sel) = split_selector(rest, true);
        return Ok(Source::Blobs(Box::new(OciLayout::open_dir(&p, sel)?)));
    }
    if let Some(rest) = spec.strip_prefix("docker-archive:") {
        let (p, sel) = split_selector(rest, false);
        return Ok(Source::Blobs(TarArchive::open(
            &p,
            sel,
            Some(ArchiveFormat::Docker),
        )?));
    }
    if let Some(rest) = spec.strip_prefix("oci-archive:") {
        let (p, sel) = split_selector(rest, false);
        return Ok(Source::Blobs(TarArchive::open(
            &p,
            sel,
            Some(ArchiveFormat::Oci),
        )?));
    }
    if let Some(rest) = spec.strip_prefix("dir:") {
        return Ok(Source::Blobs(Box::new(SkopeoDir::open(Path::new(rest))?)));
    }
    if let Some(rest) = spec.strip_prefix("rootfs:") {
        let p = PathBuf::from(rest);
        let md = std::fs::metadata(&p).map_err(|source| SourceError::Io {
            path: p.clone(),
            error: source,
        })?;
        if !md.is_dir() {
            return Err(SourceError::WrongFormat {
                path: p,
                expected: "a root filesystem directory",
                reason: "not a directory".into(),
            });
        }
        return Ok(Source::Rootfs(p));
    }
    let p = Path::new(spec);
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => open_dir_detected(p),
        Ok(_) => Ok(Source::Blobs(TarArchive::open(p, None, None)?)),
        Err(_) => {
            // `PATH:TAG` or `PATH@sha256:…` on a bare layout path.
            let (base, sel) = split_selector(spec, true);
            if sel.is_some() && base.is_dir() {
                return Ok(Source::Blobs(Box::new(OciLayout::open_dir(&base, sel)?)));
            }
            let (base, sel) = split_selector(spec, false);
            if sel.is_some() && base.is_file() {
                return Ok(Source::Blobs(TarArchive::open(&base, sel, None)?));
            }
            Err(SourceError::Io {
                path: p.to_path_buf(),
                error: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            })
        }
    }
}

/// A bare directory: an OCI layout, a skopeo `dir:` image, or a root filesystem.
fn open_dir_detected(p: &Path) -> Result<Source, SourceError> {
    let unknown = |reason: &str| SourceError::UnknownFormat {
        path: p.to_path_buf(),
        reason: reason.to_string(),
    };
    match describe_dir(p) {
        DirKind::OciLayout => Ok(Source::Blobs(Box::new(OciLayout::open_dir(p, None)?))),
        DirKind::SkopeoDir => Ok(Source::Blobs(Box::new(SkopeoDir::open(p)?))),
        DirKind::DockerSaveTree => Err(unknown(
            "an unpacked docker save archive (manifest.json lists images); audit the tarball itself, or pack it again with tar -cf image.tar -C DIR .",
        )),
        DirKind::BlobsOnly => Err(unknown(
            "it has a blobs/ directory but no index.json: an OCI image layout without its index (to audit the files as a root filesystem write rootfs:PATH)",
        )),
        DirKind::Other => Ok(Source::Rootfs(p.to_path_buf())),
    }
}

/// Splits `PATH[:NAME|@DIGEST]`. The longest existing prefix wins, so paths containing `:`
/// still work. For layouts the name is a tag; for archives a `repo:tag` reference.
fn split_selector(s: &str, layout: bool) -> (PathBuf, Option<String>) {
    if Path::new(s).exists() {
        return (PathBuf::from(s), None);
    }
    if let Some(i) = s.find("@sha256:") {
        return (PathBuf::from(&s[..i]), Some(s[i + 1..].to_string()));
    }
    let colons: Vec<usize> = s.match_indices(':').map(|(i, _)| i).collect();
    let order: Vec<usize> = if layout {
        colons.into_iter().rev().collect()
    } else {
        colons
    };
    for i in order {
        if Path::new(&s[..i]).exists() {
            return (
                PathBuf::from(&s[..i]),
                Some(s[i + 1..].to_string()).filter(|t| !t.is_empty()),
            );
        }
    }
    (PathBuf::from(s), None)
}

/// Reads a small blob (manifest, config) with a size bound and digest verification.
pub(crate) fn read_verified(
    store: &dyn BlobStore,
    desc: &Descriptor,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, SourceError> {
    if desc.size > limit {
        return Err(SourceError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut r = store.open(desc)?;
    let mut buf = Vec::with_capacity(desc.size as usize);
    (&mut r)
        .take(desc.size + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SourceError::Registry {
            registry: store.location(),
            reason: format!("reading {what} {}: {e}", desc.digest),
        })?;
    if buf.len() as u64 != desc.size {
        return Err(SourceError::InvalidJson {
            what: format!("{what} {}", desc.digest),
            reason: format!(
                "size is {} bytes, its descriptor says {}",
                buf.len(),
                desc.size
            ),
        });
    }
    verify(&buf, &desc.digest, what)?;
    Ok(buf)
}

fn verify(bytes: &[u8], expected: &Digest, what: &str) -> Result<(), SourceError> {
    let mut h = Hasher::new(expected.algorithm());
    h.update(bytes);
    let actual = h.finish();
    if &actual != expected {
        return Err(SourceError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.platform().is_unknown())
}

struct Candidate {
    desc: Descriptor,
    index_digest: Option<Digest>,
}

/// Resolves the store's root object to the image manifests to audit.
pub fn resolve(
    store: &dyn BlobStore,
    choice: &PlatformChoice,
    limits: &Limits,
) -> Result<Vec<ResolvedImage>, SourceError> {
    let root = store.root()?;
    if root.bytes.len() as u64 > limits.max_manifest_bytes {
        return Err(SourceError::TooLarge {
            what: "root manifest".into(),
            limit: limits.max_manifest_bytes,
        });
    }
    if let Some(d) = &root.digest {
        verify(&root.bytes, d, "manifest")?;
    }
    let kind =
        oci::parse_manifest_like(&root.bytes, root.media_type.as_deref()).map_err(|reason| {
            SourceError::InvalidJson {
                what: format!("{} root manifest", store.location()),
                reason,
            }
        })?;
    match kind {
        ManifestKind::Manifest(m) => {
            let manifest_digest = if root.synthetic {
                None
            } else {
                Some(
                    root.digest
                        .clone()
                        .unwrap_or_else(|| Digest::sha256_of(&root.bytes)),
                )
            };
            let img = finish(store, m, manifest_digest, None, limits)?;
            if let PlatformChoice::Exact(want) = choice {
                if want.match_rank(&img.platform).is_none() {
                    return Err(SourceError::NoMatchingPlatform {
                        wanted: want.to_string(),
                        available: img.platform.to_string(),
                    });
                }
            }
            Ok(vec![img])
        }
        ManifestKind::Index(idx) => {
            let index_digest = root
                .digest
                .clone()
                .unwrap_or_else(|| Digest::sha256_of(&root.bytes));
            let mut cands = Vec::new();
            let mut ignored = Vec::new();
            collect(
                store,
                &idx,
                Some(index_digest),
                0,
                limits,
                &mut cands,
                &mut ignored,
            )?;
            if cands.is_empty() {
                ignored.sort_unstable();
                ignored.dedup();
                return Err(SourceError::NotAnImage {
                    reason: if ignored.is_empty() {
                        "the index lists no image manifests".into()
                    } else {
                        format!(
                            "the index lists no image manifests, only media types imgaudit does not know ({}), which the image spec says to ignore",
                            ignored.join(", ")
                        )
                    },
                });
            }
            let chosen: Vec<&Candidate> = match choice {
                PlatformChoice::All => {
                    let mut seen = std::collections::HashSet::new();
                    cands
                        .iter()
                        .filter(|c| seen.insert(c.desc.digest.clone()))
                        .collect()
                }
                PlatformChoice::Default | PlatformChoice::Exact(_) => {
                    let want = match choice {
                        PlatformChoice::Exact(p) => p.clone(),
                        _ => Platform::host(),
                    };
                    let best = cands
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| {
                            let p = c.desc.platform.as_ref()?.platform();
                            want.match_rank(&p).map(|r| (r, i, c))
                        })
                        .min_by_key(|(r, i, _)| (*r, *i));
                    match best {
                        Some((_, _, c)) => vec![c],
                        None if cands.len() == 1 && cands[0].desc.platform.is_none() => {
                            vec![&cands[0]]
                        }
                        None => {
                            let available: Vec<String> = cands
                                .iter()
                                .map(|c| {
                                    c.desc.platform.as_ref().map_or_else(
                                        || "unspecified".to_string(),
                                        |p| p.platform().to_string(),
                                    )
                                })
                                .collect();
                            return Err(SourceError::NoMatchingPlatform {
                                wanted: want.to_string(),
                                available: available.join(", "),
                            });
                        }
                    }
                }
            };
            let mut out = Vec::new();
            for c in chosen {
                let bytes = read_verified(store, &c.desc, limits.max_manifest_bytes, "manifest")?;
                let m = match oci::parse_manifest_like(&bytes, Some(&c.desc.media_type)) {
                    Ok(ManifestKind::Manifest(m)) => m,
                    Ok(ManifestKind::Index(_)) => {
                        return Err(SourceError::InvalidJson {
                            what: format!("manifest {}", c.desc.digest),
                            reason: "an index where an image manifest was expected".into(),
                        })
                    }
                    Err(reason) => {
                        return Err(SourceError::InvalidJson {
                            what: format!("manifest {}", c.desc.digest),
                            reason,
                        })
                    }
                };
                out.push(finish(
                    store,
                    m,
                    Some(c.desc.digest.clone()),
                    c.index_digest.clone(),
                    limits,
                )?);
            }
            Ok(out)
        }
    }
}

/// Gathers the image manifests of an index, recursively; entries of unknown media types
/// are ignored (image-index.md) and their types noted in `ignored`.
fn collect(
    store: &dyn BlobStore,
    idx: &oci::Index,
    index_digest: Option<Digest>,
    depth: usize,
    limits: &Limits,
    out: &mut Vec<Candidate>,
    ignored: &mut Vec<String>,
) -> Result<(), SourceError> {
    if depth >= limits.max_index_depth {
        return Err(SourceError::IndexTooDeep {
            limit: limits.max_index_depth,
        });
    }
    for d in &idx.manifests {
        if is_attestation(d) {
            continue;
        }
        match d.media_type.as_str() {
            oci::media::OCI_INDEX | oci::media::DOCKER_LIST => {
                let bytes = read_verified(store, d, limits.max_manifest_bytes, "index")?;
                match oci::parse_manifest_like(&bytes, Some(&d.media_type)) {
                    Ok(ManifestKind::Index(inner)) => collect(
                        store,
                        &inner,
                        Some(d.digest.clone()),
                        depth + 1,
                        limits,
                        out,
                        ignored,
                    )?,
                    Ok(ManifestKind::Manifest(_)) => out.push(Candidate {
                        desc: d.clone(),
                        index_digest: index_digest.clone(),
                    }),
                    Err(reason) => {
                        return Err(SourceError::InvalidJson {
                            what: format!("index {}", d.digest),
                            reason,
                        })
                    }
                }
            }
            oci::media::OCI_MANIFEST | oci::media::DOCKER_MANIFEST | "" => {
                out.push(Candidate {
                    desc: d.clone(),
                    index_digest: index_digest.clone(),
                });
            }
            // Artifacts (signatures, SBOMs, Helm charts) are not images.
            other => ignored.push(other.to_string()),
        }
    }
    Ok(())
}

fn finish(
    store: &dyn BlobStore,
    manifest: Manifest,
    manifest_digest: Option<Digest>,
    index_digest: Option<Digest>,
    limits: &Limits,
) -> Result<ResolvedImage, SourceError> {
    if !oci::is_image_config(&manifest.config.media_type) {
        return Err(SourceError::NotAnImage {
            reason: format!("config media type is {}", manifest.config.media_type),
        });
    }
    if manifest.layers.len() > limits.max_layers {
        return Err(SourceError::BadLayers {
            reason: format!(
                "{} layers, more than the limit of {}",
                manifest.layers.len(),
                limits.max_layers
            ),
        });
    }
    let bytes = read_verified(store, &manifest.config, limits.max_config_bytes, "config")?;
    let config: ImageConfig =
        serde_json::from_slice(&bytes).map_err(|e| SourceError::InvalidJson {
            what: format!("config {}", manifest.config.digest),
            reason: e.to_string(),
        })?;
    if !config.rootfs.diff_ids.is_empty() && config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(SourceError::BadLayers {
            reason: format!(
                "manifest lists {} layers but the config has {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    let platform = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
    Ok(ResolvedImage {
        index_digest,
        manifest_digest,
        config_digest: manifest.config.digest.clone(),
        manifest,
        config,
        platform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_split() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lay:out");
        std::fs::create_dir(&p).unwrap();
        let s = p.to_str().unwrap();
        assert_eq!(split_selector(s, true), (p.clone(), None));
        assert_eq!(
            split_selector(&format!("{s}:v1"), true),
            (p.clone(), Some("v1".into()))
        );
        let d = format!("{s}@sha256:{}", "a".repeat(64));
        assert_eq!(
            split_selector(&d, true).1.unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        let f = dir.path().join("img.tar");
        std::fs::write(&f, b"").unwrap();
        let fs = f.to_str().unwrap();
        assert_eq!(
            split_selector(&format!("{fs}:repo/app:1.0"), false),
            (f, Some("repo/app:1.0".into()))
        );
    }
}
