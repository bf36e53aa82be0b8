//! OCI image layouts (`image-layout.md`): a directory, or the same tree inside a tarball
//! (oci-archive, and `docker save` since Docker 25).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{read_verified, BlobStore, DirKind, ImageReference, RootObject};
use crate::digest::Digest;
use crate::error::{LayerError, SourceError};
use crate::hostfs;
use crate::layer::LayerAnalysis;
use crate::limits::MAX_MANIFEST_BYTES;
use crate::oci::{self, Descriptor, Index};

/// Annotation holding a descriptor's tag in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker 25+ write with the full image name.
const IMAGE_NAME: &str = "io.containerd.image.name";

/// Read access to the files of a layout, wherever they live.
pub(crate) trait LayoutFiles: Send + Sync {
    fn location(&self) -> String;
    fn open(&self, rel: &str) -> io::Result<Box<dyn Read + Send + '_>>;
    /// A blob analysed while its archive streamed past (see [`BlobStore::analysed`]).
    fn analysed(&self, _rel: &str) -> Option<Result<Arc<LayerAnalysis>, LayerError>> {
        None
    }
}

struct DirFiles(PathBuf);

impl LayoutFiles for DirFiles {
    fn location(&self) -> String {
        self.0.display().to_string()
    }
    fn open(&self, rel: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(hostfs::open_regular(&self.0.join(rel))?))
    }
}

/// How a name selects an image from `index.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Naming {
    /// skopeo's `oci:PATH:NAME`: the `org.opencontainers.image.ref.name` annotation, as
    /// written; a Docker reference in `io.containerd.image.name` also matches.
    RefName,
    /// skopeo's and `docker load`'s `docker-archive:PATH:REF`: a Docker reference, matched
    /// after normalisation (`app` = `app:latest` = `docker.io/library/app:latest`) against
    /// `io.containerd.image.name` (Docker 25+ archives).
    DockerReference,
}

/// An OCI image layout.
pub struct OciLayout {
    files: Box<dyn LayoutFiles>,
    selector: Option<String>,
    kind: &'static str,
    naming: Naming,
}

impl OciLayout {
    /// Opens a layout directory; `selector` is a tag (`ref.name`) or a digest.
    pub fn open_dir(path: &Path, selector: Option<String>) -> Result<Self, SourceError> {
        let wrong = |reason: &str| SourceError::WrongFormat {
            path: path.to_path_buf(),
            expected: "an OCI image layout",
            reason: reason.to_string(),
        };
        let md = std::fs::metadata(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        if !md.is_dir() {
            return Err(wrong(
                "not a directory (for a tarball of a layout write oci-archive:PATH)",
            ));
        }
        if !path.join("index.json").exists() {
            return Err(wrong(match super::describe_dir(path) {
                DirKind::SkopeoDir => "no index.json; it is a skopeo dir: image (manifest.json and version): write dir:PATH",
                DirKind::DockerSaveTree => "no index.json; it is an unpacked docker save archive (manifest.json lists images)",
                DirKind::OciLayout | DirKind::BlobsOnly => "no index.json",
                DirKind::Other => "no index.json, oci-layout or blobs/ (for an unpacked root filesystem write rootfs:PATH)",
            }));
        }
        Ok(Self {
            files: Box::new(DirFiles(path.to_path_buf())),
            selector,
            kind: "oci-layout",
            naming: Naming::RefName,
        })
    }

    pub(crate) fn with_files(
        files: Box<dyn LayoutFiles>,
        selector: Option<String>,
        kind: &'static str,
        naming: Naming,
    ) -> Self {
        Self {
            files,
            selector,
            kind,
            naming,
        }
    }

    fn read_small(&self, rel: &str) -> Result<Vec<u8>, SourceError> {
        let io_err = |source| SourceError::Io {
            path: PathBuf::from(format!("{}/{rel}", self.files.location())),
            error: source,
        };
        let r = self.files.open(rel).map_err(io_err)?;
        let mut buf = Vec::new();
        r.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(io_err)?;
        if buf.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(SourceError::TooLarge {
                what: rel.to_string(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        Ok(buf)
    }

    fn read_descriptor(&self, d: &Descriptor) -> Result<RootObject, SourceError> {
        let bytes = read_verified(self, d, MAX_MANIFEST_BYTES, "manifest")?;
        Ok(RootObject {
            bytes,
            media_type: Some(d.media_type.clone()).filter(|m| !m.is_empty()),
            digest: Some(d.digest.clone()),
            synthetic: false,
        })
    }
}

/// Where a layout keeps a blob (image-layout.md, "Blobs").
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

fn names(d: &Descriptor, naming: Naming) -> Vec<&str> {
    let keys: &[&str] = match naming {
        Naming::RefName => &[REF_NAME, IMAGE_NAME],
        Naming::DockerReference => &[IMAGE_NAME],
    };
    keys.iter()
        .filter_map(|k| d.annotations.get(*k).map(String::as_str))
        .collect()
}

/// Two Docker references name the same image: same registry and repository after
/// normalisation, same tag (`latest` when none is written), same digest when one is written.
pub(crate) fn same_image(a: &ImageReference, b: &ImageReference) -> bool {
    a.registry() == b.registry()
        && a.repository() == b.repository()
        && a.tag().unwrap_or("latest") == b.tag().unwrap_or("latest")
        && (a.digest().is_none() || b.digest().is_none() || a.digest() == b.digest())
}

/// Whether descriptor `d` is what the user named (see [`Naming`]).
fn matches_name(d: &Descriptor, want: &str, naming: Naming) -> bool {
    if naming == Naming::RefName && d.annotations.get(REF_NAME).is_some_and(|n| n == want) {
        return true;
    }
    let Ok(want) = ImageReference::parse(want) else {
        return false;
    };
    d.annotations
        .get(IMAGE_NAME)
        .and_then(|n| ImageReference::parse(n).ok())
        .is_some_and(|n| same_image(&n, &want))
}

/// Whether an index entry can name an image: an image manifest or index, or a descriptor
/// without a media type. Entries of any other media type are ignored (image-index.md: "If
/// encountering an unknown mediaType, it MUST be ignored").
pub(crate) fn is_image_entry(d: &Descriptor) -> bool {
    matches!(
        d.media_type.as_str(),
        oci::media::OCI_MANIFEST
            | oci::media::DOCKER_MANIFEST
            | oci::media::OCI_INDEX
            | oci::media::DOCKER_LIST
            | ""
    )
}

impl BlobStore for OciLayout {
    fn location(&self) -> String {
        self.files.location()
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        let bytes = self.read_small("index.json")?;
        let idx: Index = serde_json::from_slice(&bytes).map_err(|e| SourceError::InvalidJson {
            what: format!("{}/index.json", self.location()),
            reason: e.to_string(),
        })?;
        let available = || {
            let mut n: Vec<String> = idx
                .manifests
                .iter()
                .flat_map(|d| names(d, self.naming).into_iter().map(str::to_string))
                .collect();
            n.dedup();
            if n.is_empty() {
                idx.manifests
                    .iter()
                    .map(|d| d.digest.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                n.join(", ")
            }
        };
        // The entry a name or digest picked must be an image (or index) itself.
        let chosen = |d: &Descriptor| {
            if is_image_entry(d) {
                self.read_descriptor(d)
            } else {
                Err(SourceError::NotAnImage {
                    reason: format!(
                        "{} in {}/index.json has media type {}, not an image manifest or index",
                        d.digest,
                        self.location(),
                        d.media_type
                    ),
                })
            }
        };
        match &self.selector {
            Some(sel) if sel.starts_with("sha256:") || sel.starts_with("sha512:") => {
                let digest = sel.parse().map_err(|e: crate::digest::DigestParseError| {
                    SourceError::BadReference {
                        reference: sel.clone(),
                        reason: e.to_string(),
                    }
                })?;
                if let Some(d) = idx.manifests.iter().find(|d| d.digest == digest) {
                    return chosen(d);
                }
                // Any manifest blob in the store.
                let d = Descriptor {
                    media_type: String::new(),
                    digest,
                    size: MAX_MANIFEST_BYTES,
                    platform: None,
                    annotations: Default::default(),
                    urls: Vec::new(),
                };
                let mut r = self.open(&d)?;
                let mut bytes = Vec::new();
                (&mut r)
                    .take(MAX_MANIFEST_BYTES)
                    .read_to_end(&mut bytes)
                    .map_err(|source| SourceError::Io {
                        path: self.location().into(),
                        error: source,
                    })?;
                Ok(RootObject {
                    bytes,
                    media_type: None,
                    digest: Some(d.digest),
                    synthetic: false,
                })
            }
            Some(sel) => {
                let hit = idx
                    .manifests
                    .iter()
                    .find(|d| matches_name(d, sel, self.naming));
                match hit {
                    Some(d) => chosen(d),
                    None => Err(SourceError::ImageNotFound {
                        wanted: sel.clone(),
                        location: self.location(),
                        available: available(),
                    }),
                }
            }
            None => {
                let images: Vec<&Descriptor> =
                    idx.manifests.iter().filter(|d| is_image_entry(d)).collect();
                match images.as_slice() {
                    [] if !idx.manifests.is_empty() => {
                        let mut types: Vec<&str> = idx
                            .manifests
                            .iter()
                            .map(|d| d.media_type.as_str())
                            .collect();
                        types.sort_unstable();
                        types.dedup();
                        return Err(SourceError::NotAnImage {
                            reason: format!(
                                "{}/index.json lists no image manifests, only media types imgaudit does not know ({}), which the image spec says to ignore",
                                self.location(),
                                types.join(", ")
                            ),
                        });
                    }
                    [one] => return self.read_descriptor(one),
                    _ => {}
                }
                let mut distinct: Vec<&str> = images
                    .iter()
                    .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
                    .collect();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() > 1 {
                    return Err(SourceError::Ambiguous {
                        location: self.location(),
                        choices: distinct.join(", "),
                    });
                }
                // Per-platform manifests listed directly in index.json: treat it as the index.
                Ok(RootObject {
                    bytes,
                    media_type: Some(oci::media::OCI_INDEX.into()),
                    digest: None,
                    synthetic: false,
                })
            }
        }
    }

    fn analysed(&self, desc: &Descriptor) -> Option<Result<Arc<LayerAnalysis>, LayerError>> {
        self.files.analysed(&blob_path(&desc.digest))
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let rel = blob_path(&desc.digest);
        self.files.open(&rel).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SourceError::MissingBlob {
                    digest: desc.digest.clone(),
                    location: self.location(),
                }
            } else {
                SourceError::Io {
                    path: PathBuf::from(format!("{}/{rel}", self.location())),
                    error: e,
                }
            }
        })
    }
}
