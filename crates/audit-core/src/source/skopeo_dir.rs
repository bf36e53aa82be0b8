//! skopeo's `dir:` transport (containers/image `directory/`): one image in a directory, the
//! manifest in `manifest.json`, a `version` file (`Directory Transport Version: 1.1`), and
//! every blob in a file named by its digest's hex (`<algorithm>-<hex>` for algorithms other
//! than sha256 in newer releases). `skopeo copy --all` stores the index as `manifest.json`
//! and each platform's manifest as `<hex>.manifest.json`.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{read_host_file, BlobStore, RootObject};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::hostfs;
use crate::limits::MAX_MANIFEST_BYTES;
use crate::oci::Descriptor;

/// The first words of the `version` file (containers/image `directory/directory_dest.go`).
pub(crate) const VERSION_PREFIX: &str = "Directory Transport Version: ";
/// Longest `version` file read.
const MAX_VERSION_BYTES: u64 = 256;

/// A skopeo `dir:` image.
pub struct SkopeoDir {
    path: PathBuf,
}

impl SkopeoDir {
    /// Opens a `dir:` directory: it must hold `manifest.json`, and its `version` file, when
    /// there is one, must be the directory transport's.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let wrong = |reason: String| SourceError::WrongFormat {
            path: path.to_path_buf(),
            expected: "a skopeo dir: image",
            reason,
        };
        let md = std::fs::metadata(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        if !md.is_dir() {
            return Err(wrong("not a directory".into()));
        }
        if !path.join("manifest.json").exists() {
            return Err(wrong(match super::describe_dir(path) {
                super::DirKind::OciLayout => {
                    "no manifest.json; it is an OCI image layout: write oci:PATH".into()
                }
                _ => "no manifest.json (for an unpacked root filesystem write rootfs:PATH)".into(),
            }));
        }
        let version = path.join("version");
        if version.exists() {
            let v = read_host_file(&version, MAX_VERSION_BYTES, "version file")?;
            if !v.starts_with(VERSION_PREFIX.as_bytes()) {
                return Err(wrong(format!(
                    "its version file does not start with {VERSION_PREFIX:?}"
                )));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// File names a blob may have: `<hex>` (sha256) or `<algorithm>-<hex>`, and for
    /// manifests of a copied index, the same with `.manifest.json`.
    fn names(d: &Digest) -> [String; 2] {
        let base = if d.algorithm().name() == "sha256" {
            d.hex().to_string()
        } else {
            format!("{}-{}", d.algorithm().name(), d.hex())
        };
        let manifest = format!("{base}.manifest.json");
        [base, manifest]
    }
}

impl BlobStore for SkopeoDir {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn kind(&self) -> &'static str {
        "dir"
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        let bytes = read_host_file(
            &self.path.join("manifest.json"),
            MAX_MANIFEST_BYTES,
            "manifest.json",
        )?;
        Ok(RootObject {
            bytes,
            media_type: None,
            digest: None,
            synthetic: false,
        })
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        for name in Self::names(&desc.digest) {
            let p = self.path.join(&name);
            match hostfs::open_regular(&p) {
                Ok(f) => return Ok(Box::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(SourceError::Io {
                        path: p,
                        error: source,
                    })
                }
            }
        }
        Err(SourceError::MissingBlob {
            digest: desc.digest.clone(),
            location: self.location(),
        })
    }
}
