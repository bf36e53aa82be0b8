//! Image tarballs, read in place: `docker save` output (the classic `manifest.json` form and
//! Docker 25+'s OCI layout inside the tar) and oci-archive. Nothing is unpacked: one pass
//! over the tar headers records where each member's bytes start, and blobs are then read
//! with a seek and a bounded read, concurrently, each from its own file handle.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::oci_layout::{LayoutFiles, OciLayout};
use super::{BlobStore, RootObject};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::fs::path;
use crate::limits::{MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES};
use crate::oci::{self, Descriptor, ImageConfig};

/// Most members indexed in an archive: 1,000,000 (each costs ~64 bytes).
const MAX_MEMBERS: usize = 1_000_000;
/// Symlinked members (shared `layer.tar`s) are followed at most this many times.
const MAX_MEMBER_LINKS: usize = 8;

#[derive(Clone, Debug)]
struct Member {
    offset: u64,
    size: u64,
    link: Option<String>,
}

/// The member index of an image tarball.
pub struct TarArchive {
    path: PathBuf,
    members: HashMap<String, Member>,
}

impl TarArchive {
    /// Opens a `docker save` or oci-archive tarball; `selector` names an image
    /// (`repo:tag`, a tag, or a digest) when it holds several.
    pub fn open(path: &Path, selector: Option<String>) -> Result<Box<dyn BlobStore>, SourceError> {
        let io_err = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let n = f.read(&mut magic).map_err(io_err)?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(SourceError::BadReference {
                reference: path.display().to_string(),
                reason: "the archive is compressed; decompress it first (gunzip / zstd -d)".into(),
            });
        }
        f.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let tar = Arc::new(Self::index(path, f)?);
        if tar.members.contains_key("index.json") {
            // Docker 25+ writes an OCI layout plus the legacy manifest.json.
            let kind = if tar.members.contains_key("manifest.json") {
                "docker-archive"
            } else {
                "oci-archive"
            };
            let files = TarFiles(tar);
            return Ok(Box::new(OciLayout::with_files(
                Box::new(files),
                selector,
                kind,
            )));
        }
        if tar.members.contains_key("manifest.json") {
            return Ok(Box::new(DockerArchive {
                tar,
                selector,
                blobs: Mutex::new(HashMap::new()),
            }));
        }
        Err(SourceError::UnknownFormat {
            path: path.to_path_buf(),
        })
    }

    fn index(path: &Path, f: File) -> Result<Self, SourceError> {
        let bad = |e: io::Error| SourceError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let mut ar = tar::Archive::new(f);
        let mut members = HashMap::new();
        for entry in ar.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            if members.len() >= MAX_MEMBERS {
                return Err(SourceError::TooLarge {
                    what: format!("{} (member count)", path.display()),
                    limit: MAX_MEMBERS as u64,
                });
            }
            let Ok(name) = path::clean(&entry.path_bytes(), 4096) else {
                continue;
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
                continue;
            };
            members.insert(
                name,
                Member {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                    link,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            members,
        })
    }

    fn member(&self, name: &str) -> io::Result<&Member> {
        let mut name = name.to_string();
        for _ in 0..=MAX_MEMBER_LINKS {
            let m = self.members.get(&name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name}: not in the archive"),
                )
            })?;
            match &m.link {
                Some(t) => name = t.clone(),
                None => return Ok(m),
            }
        }
        Err(io::Error::other(format!("{name}: too many links")))
    }

    fn open_member(&self, name: &str) -> io::Result<(u64, Box<dyn Read + Send>)> {
        let m = self.member(name)?.clone();
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(m.offset))?;
        Ok((m.size, Box::new(f.take(m.size))))
    }

    fn read_member(&self, name: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let err = |source| SourceError::Io {
            path: PathBuf::from(format!("{}:{name}", self.path.display())),
            source,
        };
        let (size, r) = self.open_member(name).map_err(err)?;
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
}

struct TarFiles(Arc<TarArchive>);

impl LayoutFiles for TarFiles {
    fn location(&self) -> String {
        self.0.path.display().to_string()
    }
    fn open(&self, rel: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(self.0.open_member(rel)?.1)
    }
}

/// One image in a classic `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A classic `docker save` tarball: no OCI manifest, so one is synthesised from
/// `manifest.json` and the config. Layer blobs are identified by the config's diff_ids,
/// which the layer pipeline verifies on the uncompressed stream.
struct DockerArchive {
    tar: Arc<TarArchive>,
    selector: Option<String>,
    /// digest → member, filled by `root`.
    blobs: Mutex<HashMap<Digest, String>>,
}

impl BlobStore for DockerArchive {
    fn location(&self) -> String {
        self.tar.path.display().to_string()
    }

    fn kind(&self) -> &'static str {
        "docker-archive"
    }

    fn verifies_layer_digests(&self) -> bool {
        false
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        let raw = self.tar.read_member("manifest.json", MAX_MANIFEST_BYTES)?;
        let images: Vec<SavedImage> =
            serde_json::from_slice(&raw).map_err(|e| SourceError::InvalidJson {
                what: format!("{}:manifest.json", self.location()),
                reason: e.to_string(),
            })?;
        let tags = |i: &SavedImage| i.repo_tags.clone().unwrap_or_default();
        let img = match &self.selector {
            Some(sel) => images
                .iter()
                .find(|i| {
                    tags(i).iter().any(|t| {
                        t == sel
                            || t.strip_prefix("docker.io/library/") == Some(sel)
                            || t.rsplit_once(':').is_some_and(|(_, tag)| tag == sel)
                    })
                })
                .ok_or_else(|| SourceError::ImageNotFound {
                    wanted: sel.clone(),
                    location: self.location(),
                    available: images.iter().flat_map(tags).collect::<Vec<_>>().join(", "),
                })?,
            None => match images.as_slice() {
                [one] => one,
                [] => {
                    return Err(SourceError::NotAnImage {
                        reason: "manifest.json lists no images".into(),
                    })
                }
                many => {
                    return Err(SourceError::Ambiguous {
                        location: self.location(),
                        choices: many.iter().flat_map(tags).collect::<Vec<_>>().join(", "),
                    })
                }
            },
        };
        let config_bytes = self.tar.read_member(&img.config, MAX_CONFIG_BYTES)?;
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
            let m = self.tar.member(member).map_err(|source| SourceError::Io {
                path: PathBuf::from(format!("{}:{member}", self.location())),
                source,
            })?;
            blobs.insert(diff_id.clone(), member.clone());
            layers.push(serde_json::json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                "digest": diff_id.to_string(),
                "size": m.size,
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
                source,
            })
    }
}
