//! Image tarballs, read in place: `docker save` output (the classic `manifest.json` form and
//! Docker 25+'s OCI layout inside the tar) and oci-archive, plain or compressed as a whole
//! (`docker save | gzip`, `| zstd`). Nothing is unpacked to disk.
//!
//! A plain tarball is indexed in one pass over its headers (member name → offset and size),
//! and blobs are then read with a seek and a bounded read, concurrently, each from its own
//! file handle. A compressed tarball cannot seek: the indexing pass decompresses it once,
//! keeping the small members (manifests, configs, `index.json`, small layers) in memory up
//! to a fixed budget, and every other member is read by decompressing the archive again from
//! its start up to the member. That costs one decompression of the archive's prefix per
//! large layer (what trivy does for `--input image.tar.gz`), and no temporary file.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::oci_layout::{same_image, LayoutFiles, Naming, OciLayout};
use super::{BlobStore, ImageReference, RootObject};
use crate::digest::Digest;
use crate::error::{LayerError, SourceError};
use crate::hostfs;
use crate::layer::{Compression, LayerAnalysis};
use crate::limits::{
    ARCHIVE_KEEP_BUDGET_BYTES, ARCHIVE_KEEP_MEMBER_BYTES, BOMB_MAX_RATIO, BOMB_MIN_BYTES,
    MAX_ARCHIVE_UNCOMPRESSED, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, ZSTD_WINDOW_LOG_MAX,
};
use crate::oci::{self, Descriptor, ImageConfig, Index};
use crate::path;

/// Most members indexed in an archive: 1,000,000 (each costs ~64 bytes).
const MAX_MEMBERS: usize = 1_000_000;
/// Symlinked members (shared `layer.tar`s) are followed at most this many times.
const MAX_MEMBER_LINKS: usize = 8;
/// Read buffer in front of an archive's decompressor.
const BUF_BYTES: usize = 256 << 10;

/// The archive format a transport names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker-archive:`: `docker save` output, with a `manifest.json`.
    Docker,
    /// `oci-archive:`: a tar of an OCI image layout, with an `index.json`.
    Oci,
}

/// How the tarball as a whole is compressed, decided from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packing {
    Plain,
    Gzip,
    Zstd,
}

impl Packing {
    /// The layer pipeline's sniffing (gzip, zstd with or without a leading skippable
    /// frame), plus the compressions `docker load` also accepts, for a clear error.
    fn sniff(head: &[u8]) -> Result<Self, &'static str> {
        Ok(match Compression::sniff(head) {
            Compression::Gzip => Self::Gzip,
            Compression::Zstd => Self::Zstd,
            Compression::None if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) => {
                return Err("the archive is xz-compressed; decompress it first (xz -d), or recompress it with gzip or zstd");
            }
            Compression::None if head.starts_with(b"BZh") => {
                return Err("the archive is bzip2-compressed; decompress it first (bunzip2), or recompress it with gzip or zstd");
            }
            Compression::None => Self::Plain,
        })
    }
}

#[derive(Clone, Debug)]
struct Member {
    offset: u64,
    size: u64,
    link: Option<String>,
}

/// The members of an image tarball, however it was read: indexed in place on disk
/// ([`TarArchive`]) or gathered from a stream ([`super::engine::stream`]). Names are
/// cleaned paths; links are followed.
pub(crate) trait Members: Send + Sync {
    /// Where the tarball came from, for messages.
    fn location(&self) -> String;
    /// Whether the archive has the member.
    fn contains(&self, name: &str) -> bool;
    /// A member's size.
    fn size(&self, name: &str) -> io::Result<u64>;
    /// A member's size and content.
    fn open_member(&self, name: &str) -> io::Result<(u64, Box<dyn Read + Send + '_>)>;
    /// The analysis of a member made while the archive streamed past, if it was analysed
    /// then (its bytes are gone).
    fn analysed(&self, _name: &str) -> Option<Result<Arc<LayerAnalysis>, LayerError>> {
        None
    }
}

/// Reads a small member whole, up to `limit` bytes.
fn read_member(m: &dyn Members, name: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
    let err = |source| SourceError::Io {
        path: PathBuf::from(format!("{}:{name}", m.location())),
        error: source,
    };
    let (size, r) = m.open_member(name).map_err(err)?;
    if size > limit {
        return Err(SourceError::TooLarge {
            what: name.to_string(),
            limit,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(limit).read_to_end(&mut buf).map_err(err)?;
    Ok(buf)
}

/// Whether `index.json` parses and lists at least one entry.
fn index_lists_images(m: &dyn Members) -> bool {
    read_member(m, "index.json", MAX_MANIFEST_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
        .is_some_and(|i| !i.manifests.is_empty())
}

/// The store for an image tarball's members: `format` is what the transport names (`None`:
/// detect); `selector` names an image when the archive holds several (see
/// [`TarArchive::open`]).
pub(crate) fn stores_for(
    tar: Arc<dyn Members>,
    selector: Option<String>,
    format: Option<ArchiveFormat>,
) -> Result<Box<dyn BlobStore>, SourceError> {
    let has_index = tar.contains("index.json");
    let has_manifest = tar.contains("manifest.json");
    let path = PathBuf::from(tar.location());
    let wrong = |expected: &'static str, reason: &str| SourceError::WrongFormat {
        path: path.clone(),
        expected,
        reason: reason.to_string(),
    };
    let layout = |naming: Naming, kind: &'static str| -> Box<dyn BlobStore> {
        Box::new(OciLayout::with_files(
            Box::new(MemberFiles(Arc::clone(&tar))),
            selector.clone(),
            kind,
            naming,
        ))
    };
    let classic = || -> Box<dyn BlobStore> {
        Box::new(DockerArchive {
            tar: Arc::clone(&tar),
            selector: selector.clone(),
            blobs: Mutex::new(HashMap::new()),
        })
    };
    match format {
        Some(ArchiveFormat::Oci) => {
            if !has_index {
                return Err(wrong(
                    "an oci-archive",
                    if has_manifest {
                        "it has no index.json; it is a docker save archive: write docker-archive:PATH"
                    } else {
                        "it has no index.json"
                    },
                ));
            }
            Ok(layout(Naming::RefName, "oci-archive"))
        }
        Some(ArchiveFormat::Docker) => {
            if !has_manifest {
                return Err(wrong(
                    "a docker-archive",
                    if has_index {
                        "it has no manifest.json; it is an OCI archive: write oci-archive:PATH"
                    } else {
                        "it has no manifest.json"
                    },
                ));
            }
            // Docker 25+ also writes an OCI layout, whose digests can be verified; an
            // `index.json` without images (Docker 25.0 writes `"manifests": null`)
            // leaves the legacy manifest.json, which `docker load` reads too.
            if has_index && index_lists_images(tar.as_ref()) {
                Ok(layout(Naming::DockerReference, "docker-archive"))
            } else {
                Ok(classic())
            }
        }
        None => {
            if has_manifest && !(has_index && index_lists_images(tar.as_ref())) {
                Ok(classic())
            } else if has_index {
                if has_manifest {
                    Ok(layout(Naming::DockerReference, "docker-archive"))
                } else {
                    Ok(layout(Naming::RefName, "oci-archive"))
                }
            } else {
                Err(SourceError::UnknownFormat {
                    path,
                    reason: "a tar archive with neither manifest.json nor index.json".into(),
                })
            }
        }
    }
}

/// The member index of an image tarball.
pub struct TarArchive {
    path: PathBuf,
    packing: Packing,
    members: HashMap<String, Member>,
    /// Members of a compressed archive kept whole from the indexing pass.
    kept: HashMap<String, Arc<[u8]>>,
}

/// Members of a compressed archive kept whole while indexing, and the bytes still allowed.
struct Keeper {
    kept: HashMap<String, Arc<[u8]>>,
    budget: u64,
}

/// Fails the indexing pass of a compressed archive that expands too far: past
/// [`MAX_ARCHIVE_UNCOMPRESSED`], or by more than [`BOMB_MAX_RATIO`] once past
/// [`BOMB_MIN_BYTES`] (the layer pipeline's bounds, applied to the archive as a whole).
struct Expansion<R, C> {
    inner: R,
    compressed: C,
    out: u64,
}

impl<R: Read, C: Fn() -> u64> Read for Expansion<R, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let c = (self.compressed)().max(1);
        if self.out > MAX_ARCHIVE_UNCOMPRESSED
            || (self.out > BOMB_MIN_BYTES && self.out / c > BOMB_MAX_RATIO)
        {
            return Err(io::Error::other(format!(
                "decompression bomb: {} bytes from {c} compressed bytes (limits: {MAX_ARCHIVE_UNCOMPRESSED} bytes, ratio {BOMB_MAX_RATIO})",
                self.out
            )));
        }
        Ok(n)
    }
}

/// Counts the compressed bytes the decoder takes.
struct Counted<R> {
    inner: R,
    n: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n
            .fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

fn decoder<'a, R: io::BufRead + Send + 'a>(
    packing: Packing,
    r: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match packing {
        Packing::Plain => Box::new(r),
        Packing::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Packing::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(r)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Box::new(d)
        }
    })
}

impl TarArchive {
    /// Opens a `docker save` or oci-archive tarball, plain or compressed with gzip or zstd.
    /// `format` is what the transport names (`None`: detect); `selector` names an image when
    /// the archive holds several: a Docker reference or `@N` (the N-th image, from 0) for
    /// `docker-archive:`, a tag (`ref.name`) or digest for `oci-archive:`.
    pub fn open(
        path: &Path,
        selector: Option<String>,
        format: Option<ArchiveFormat>,
    ) -> Result<Box<dyn BlobStore>, SourceError> {
        let io_err = |source| SourceError::Io {
            path: path.to_path_buf(),
            error: source,
        };
        let mut f = hostfs::open_regular(path).map_err(io_err)?;
        let mut head = [0u8; 6];
        let n = read_up_to(&mut f, &mut head).map_err(io_err)?;
        let packing = Packing::sniff(&head[..n]).map_err(|reason| SourceError::UnknownFormat {
            path: path.to_path_buf(),
            reason: reason.into(),
        })?;
        f.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let tar: Arc<dyn Members> = Arc::new(Self::index(path, f, packing)?);
        stores_for(tar, selector, format)
    }

    fn index(path: &Path, f: std::fs::File, packing: Packing) -> Result<Self, SourceError> {
        let bad = |e: io::Error| SourceError::Io {
            path: path.to_path_buf(),
            error: e,
        };
        let mut members = HashMap::new();
        let mut keeper = Keeper {
            kept: HashMap::new(),
            budget: ARCHIVE_KEEP_BUDGET_BYTES,
        };
        if packing == Packing::Plain {
            let mut ar = tar::Archive::new(f);
            for entry in ar.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                Self::add(path, &mut members, entry, None)?;
            }
        } else {
            let compressed = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counted = Counted {
                inner: f,
                n: Arc::clone(&compressed),
            };
            let dec =
                decoder(packing, BufReader::with_capacity(BUF_BYTES, counted)).map_err(bad)?;
            let guarded = Expansion {
                inner: dec,
                compressed: || compressed.load(std::sync::atomic::Ordering::Relaxed),
                out: 0,
            };
            let mut ar = tar::Archive::new(guarded);
            for entry in ar.entries().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                Self::add(path, &mut members, entry, Some(&mut keeper))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            packing,
            members,
            kept: keeper.kept,
        })
    }

    /// Records one member; with `keep`, reads small regular members into memory while the
    /// budget lasts.
    fn add<R: Read>(
        path: &Path,
        members: &mut HashMap<String, Member>,
        mut entry: tar::Entry<'_, R>,
        keep: Option<&mut Keeper>,
    ) -> Result<(), SourceError> {
        if members.len() >= MAX_MEMBERS {
            return Err(SourceError::TooLarge {
                what: format!("{} (member count)", path.display()),
                limit: MAX_MEMBERS as u64,
            });
        }
        let Ok(name) = path::clean(&entry.path_bytes(), 4096) else {
            return Ok(());
        };
        let t = entry.header().entry_type();
        let link = if t.is_symlink() {
            entry
                .link_name_bytes()
                .map(|l| path::join_clamped(path::parent(&name), &String::from_utf8_lossy(&l)))
        } else if t.is_hard_link() {
            entry
                .link_name_bytes()
                .and_then(|l| path::clean(&l, 4096).ok())
        } else if t.is_file() {
            None
        } else {
            return Ok(());
        };
        let size = entry.size();
        if let Some(k) = keep {
            if link.is_none() && size <= ARCHIVE_KEEP_MEMBER_BYTES && size <= k.budget {
                let mut buf = Vec::with_capacity(size as usize);
                entry
                    .by_ref()
                    .take(size)
                    .read_to_end(&mut buf)
                    .map_err(|source| SourceError::Io {
                        path: path.to_path_buf(),
                        error: source,
                    })?;
                k.budget -= buf.len() as u64;
                k.kept.insert(name.clone(), Arc::from(buf));
            }
        }
        members.insert(
            name,
            Member {
                offset: entry.raw_file_position(),
                size,
                link,
            },
        );
        Ok(())
    }

    fn member(&self, name: &str) -> io::Result<(&str, &Member)> {
        let mut name = name;
        for _ in 0..=MAX_MEMBER_LINKS {
            let (k, m) = self.members.get_key_value(name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name}: not in the archive"),
                )
            })?;
            match &m.link {
                Some(t) => name = t,
                None => return Ok((k, m)),
            }
        }
        Err(io::Error::other(format!("{name}: too many links")))
    }

    fn open_member(&self, name: &str) -> io::Result<(u64, Box<dyn Read + Send>)> {
        let (real, m) = self.member(name)?;
        if let Some(b) = self.kept.get(real) {
            return Ok((m.size, Box::new(io::Cursor::new(Arc::clone(b)))));
        }
        let mut f = hostfs::open_regular(&self.path)?;
        if self.packing == Packing::Plain {
            f.seek(SeekFrom::Start(m.offset))?;
            return Ok((m.size, Box::new(f.take(m.size))));
        }
        let mut dec = decoder(self.packing, BufReader::with_capacity(BUF_BYTES, f))?;
        let skipped = io::copy(&mut (&mut dec).take(m.offset), &mut io::sink())?;
        if skipped != m.offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: the archive ends before the member"),
            ));
        }
        Ok((m.size, Box::new(dec.take(m.size))))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl Members for TarArchive {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn contains(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }
    fn size(&self, name: &str) -> io::Result<u64> {
        Ok(self.member(name)?.1.size)
    }
    fn open_member(&self, name: &str) -> io::Result<(u64, Box<dyn Read + Send + '_>)> {
        Self::open_member(self, name)
    }
}

/// The files of an OCI layout inside a tarball.
struct MemberFiles(Arc<dyn Members>);

impl LayoutFiles for MemberFiles {
    fn location(&self) -> String {
        self.0.location()
    }
    fn open(&self, rel: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(self.0.open_member(rel)?.1)
    }
    fn analysed(&self, rel: &str) -> Option<Result<Arc<LayerAnalysis>, LayerError>> {
        self.0.analysed(rel)
    }
}

/// One image in a classic `manifest.json`.
#[derive(Debug)]
struct SavedImage {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Reads `manifest.json` the way `docker load` does: Go's `encoding/json` matches keys
/// case-insensitively when no exact match exists, so Jib's `config`, `repoTags`, `layers`
/// load like Docker's `Config`, `RepoTags`, `Layers` (moby `image/tarexport/load.go`).
fn saved_images(raw: &[u8]) -> Result<Vec<SavedImage>, String> {
    let items: Vec<serde_json::Map<String, Value>> =
        serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let get = |key: &str| {
                m.get(key).or_else(|| {
                    m.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v)
                })
            };
            let strings = |key: &str| -> Result<Vec<String>, String> {
                match get(key) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(v) => serde_json::from_value(v.clone())
                        .map_err(|e| format!("image {i}: {key}: {e}")),
                }
            };
            let config = match get("Config") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(format!("image {i}: no Config member name")),
            };
            Ok(SavedImage {
                config,
                repo_tags: strings("RepoTags")?,
                layers: strings("Layers")?,
            })
        })
        .collect()
}

/// A classic `docker save` tarball: no OCI manifest, so one is synthesised from
/// `manifest.json` and the config. Layer blobs are identified by the config's diff_ids,
/// which the layer pipeline verifies on the uncompressed stream.
struct DockerArchive {
    tar: Arc<dyn Members>,
    selector: Option<String>,
    /// digest → member, filled by `root`.
    blobs: Mutex<HashMap<Digest, String>>,
}

impl DockerArchive {
    /// A member's size (the layer blob's, in the synthesised manifest).
    fn member_size(&self, member: &str) -> Result<u64, SourceError> {
        self.tar.size(member).map_err(|source| SourceError::Io {
            path: PathBuf::from(format!("{}:{member}", self.location())),
            error: source,
        })
    }

    /// The image the selector names, as skopeo's `docker-archive:PATH:REF` does: a Docker
    /// reference matched after normalisation against each image's `RepoTags`, or `@N`, the
    /// N-th image (from 0) in `manifest.json`.
    fn select<'a>(&self, images: &'a [SavedImage]) -> Result<&'a SavedImage, SourceError> {
        let all_tags = || {
            let t: Vec<&str> = images
                .iter()
                .flat_map(|i| i.repo_tags.iter().map(String::as_str))
                .collect();
            if t.is_empty() {
                format!("{} untagged image(s): name one with @N", images.len())
            } else {
                t.join(", ")
            }
        };
        let not_found = |wanted: &str| SourceError::ImageNotFound {
            wanted: wanted.to_string(),
            location: self.location(),
            available: all_tags(),
        };
        match &self.selector {
            Some(sel) if sel.starts_with('@') => sel[1..]
                .parse::<usize>()
                .ok()
                .and_then(|n| images.get(n))
                .ok_or_else(|| not_found(sel)),
            Some(sel) => {
                let want = ImageReference::parse(sel)?;
                images
                    .iter()
                    .find(|i| {
                        i.repo_tags
                            .iter()
                            .any(|t| ImageReference::parse(t).is_ok_and(|t| same_image(&t, &want)))
                    })
                    .ok_or_else(|| not_found(sel))
            }
            None => match images {
                [one] => Ok(one),
                [] => Err(SourceError::NotAnImage {
                    reason: format!("{}: manifest.json lists no images", self.location()),
                }),
                _ => Err(SourceError::Ambiguous {
                    location: self.location(),
                    choices: all_tags(),
                }),
            },
        }
    }
}

impl BlobStore for DockerArchive {
    fn location(&self) -> String {
        self.tar.location()
    }

    fn kind(&self) -> &'static str {
        "docker-archive"
    }

    fn verifies_layer_digests(&self) -> bool {
        false
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        let raw = read_member(self.tar.as_ref(), "manifest.json", MAX_MANIFEST_BYTES)?;
        let images = saved_images(&raw).map_err(|reason| SourceError::InvalidJson {
            what: format!("{}:manifest.json", self.location()),
            reason,
        })?;
        let img = self.select(&images)?;
        let config_bytes = read_member(self.tar.as_ref(), &img.config, MAX_CONFIG_BYTES)?;
        let config_digest = Digest::sha256_of(&config_bytes);
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| SourceError::InvalidJson {
                what: format!("{}:{}", self.location(), img.config),
                reason: e.to_string(),
            })?;
        if config.rootfs.diff_ids.len() != img.layers.len() {
            return Err(SourceError::BadLayers {
                reason: format!(
                    "manifest.json lists {} layers but the config has {} diff_ids",
                    img.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let mut blobs = self
            .blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        blobs.insert(config_digest.clone(), img.config.clone());
        let mut layers = Vec::new();
        for (member, diff_id) in img.layers.iter().zip(&config.rootfs.diff_ids) {
            let size = self.member_size(member)?;
            blobs.insert(diff_id.clone(), member.clone());
            layers.push(serde_json::json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                "digest": diff_id.to_string(),
                "size": size,
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::media::DOCKER_MANIFEST,
            "config": {"mediaType": oci::media::DOCKER_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": layers,
        });
        Ok(RootObject {
            bytes: serde_json::to_vec(&manifest).expect("serialisable"),
            media_type: Some(oci::media::DOCKER_MANIFEST.into()),
            digest: None,
            synthetic: true,
        })
    }

    fn analysed(&self, desc: &Descriptor) -> Option<Result<Arc<LayerAnalysis>, LayerError>> {
        let member = self
            .blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&desc.digest)
            .cloned()?;
        self.tar.analysed(&member)
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let member = self
            .blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&desc.digest)
            .cloned();
        let member = member.ok_or_else(|| SourceError::MissingBlob {
            digest: desc.digest.clone(),
            location: self.location(),
        })?;
        self.tar
            .open_member(&member)
            .map(|(_, r)| r)
            .map_err(|source| SourceError::Io {
                path: PathBuf::from(format!("{}:{member}", self.location())),
                error: source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_json_keys_match_like_go() {
        // Jib's lower-case keys (forged: no tool here writes them), and Docker's.
        let jib = br#"[{"config":"config.json","repoTags":["app:1"],"layers":["a.tar","b.tar"]}]"#;
        let docker = br#"[{"Config":"c.json","RepoTags":null,"Layers":["l.tar"]}]"#;
        let i = saved_images(jib).unwrap();
        assert_eq!(
            (&i[0].config[..], &i[0].repo_tags[..], i[0].layers.len()),
            ("config.json", &["app:1".to_string()][..], 2)
        );
        let d = saved_images(docker).unwrap();
        assert!(d[0].repo_tags.is_empty() && d[0].layers == ["l.tar"]);
        // An exact match wins over a case-insensitive one, as in encoding/json.
        let both = br#"[{"config":"lower","Config":"exact","Layers":[]}]"#;
        assert_eq!(saved_images(both).unwrap()[0].config, "exact");
        assert!(saved_images(br#"[{"Layers":[]}]"#)
            .unwrap_err()
            .contains("no Config"));
    }

    #[test]
    fn compression_is_sniffed_from_the_first_bytes() {
        assert_eq!(Packing::sniff(b"\x1f\x8b\x08"), Ok(Packing::Gzip));
        assert_eq!(Packing::sniff(b"\x28\xb5\x2f\xfd"), Ok(Packing::Zstd));
        // pzstd starts with a skippable frame (RFC 8878 §3.1.2).
        assert_eq!(Packing::sniff(b"\x50\x2a\x4d\x18"), Ok(Packing::Zstd));
        assert_eq!(Packing::sniff(b"\x5f\x2a\x4d\x18"), Ok(Packing::Zstd));
        assert_eq!(Packing::sniff(b"manifest.json"), Ok(Packing::Plain));
        assert!(Packing::sniff(b"\xfd7zXZ\0").unwrap_err().contains("xz"));
        assert!(Packing::sniff(b"BZh9").unwrap_err().contains("bzip2"));
    }
}
