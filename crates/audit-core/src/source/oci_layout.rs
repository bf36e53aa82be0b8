//! OCI image layouts (`image-layout.md`): a directory, or the same tree inside a tarball
//! (oci-archive, and `docker save` since Docker 25).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{read_verified, BlobStore, RootObject};
use crate::error::SourceError;
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
}

struct DirFiles(PathBuf);

impl LayoutFiles for DirFiles {
    fn location(&self) -> String {
        self.0.display().to_string()
    }
    fn open(&self, rel: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(std::fs::File::open(self.0.join(rel))?))
    }
}

/// An OCI image layout.
pub struct OciLayout {
    files: Box<dyn LayoutFiles>,
    selector: Option<String>,
    kind: &'static str,
}

impl OciLayout {
    /// Opens a layout directory; `selector` is a tag (`ref.name`) or a digest.
    pub fn open_dir(path: &Path, selector: Option<String>) -> Result<Self, SourceError> {
        if !path.join("index.json").is_file() {
            return Err(SourceError::UnknownFormat {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            files: Box::new(DirFiles(path.to_path_buf())),
            selector,
            kind: "oci-layout",
        })
    }

    pub(crate) fn with_files(
        files: Box<dyn LayoutFiles>,
        selector: Option<String>,
        kind: &'static str,
    ) -> Self {
        Self {
            files,
            selector,
            kind,
        }
    }

    fn read_small(&self, rel: &str) -> Result<Vec<u8>, SourceError> {
        let io_err = |source| SourceError::Io {
            path: PathBuf::from(format!("{}/{rel}", self.files.location())),
            source,
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

fn names(d: &Descriptor) -> Vec<&str> {
    [REF_NAME, IMAGE_NAME]
        .iter()
        .filter_map(|k| d.annotations.get(*k).map(String::as_str))
        .collect()
}

/// Whether descriptor `d` is what the user named: its tag, its full name, or the name
/// with Docker Hub's implicit `docker.io/library/` prefix.
fn matches_name(d: &Descriptor, want: &str) -> bool {
    names(d).iter().any(|n| {
        *n == want
            || n.strip_prefix("docker.io/library/") == Some(want)
            || n.strip_prefix("docker.io/") == Some(want)
            || (!want.contains(':')
                && n.rsplit_once(':').is_some_and(|(_, t)| t == want)
                && !n.contains('/'))
    })
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
                .flat_map(|d| names(d).into_iter().map(str::to_string))
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
        match &self.selector {
            Some(sel) if sel.starts_with("sha256:") || sel.starts_with("sha512:") => {
                let digest = sel.parse().map_err(|e: crate::digest::DigestParseError| {
                    SourceError::BadReference {
                        reference: sel.clone(),
                        reason: e.to_string(),
                    }
                })?;
                if let Some(d) = idx.manifests.iter().find(|d| d.digest == digest) {
                    return self.read_descriptor(d);
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
                        source,
                    })?;
                Ok(RootObject {
                    bytes,
                    media_type: None,
                    digest: Some(d.digest),
                    synthetic: false,
                })
            }
            Some(sel) => {
                let hits: Vec<&Descriptor> = idx
                    .manifests
                    .iter()
                    .filter(|d| matches_name(d, sel))
                    .collect();
                match hits.first() {
                    Some(d) => self.read_descriptor(d),
                    None => Err(SourceError::ImageNotFound {
                        wanted: sel.clone(),
                        location: self.location(),
                        available: available(),
                    }),
                }
            }
            None => {
                if idx.manifests.len() == 1 {
                    return self.read_descriptor(&idx.manifests[0]);
                }
                let mut distinct: Vec<&str> = idx
                    .manifests
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

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let rel = format!(
            "blobs/{}/{}",
            desc.digest.algorithm().name(),
            desc.digest.hex()
        );
        self.files.open(&rel).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SourceError::MissingBlob {
                    digest: desc.digest.clone(),
                    location: self.location(),
                }
            } else {
                SourceError::Io {
                    path: PathBuf::from(format!("{}/{rel}", self.location())),
                    source: e,
                }
            }
        })
    }
}
