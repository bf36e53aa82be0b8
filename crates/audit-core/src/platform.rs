//! Image platforms (`os/architecture/variant`), normalised the way containerd does it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OCI platform. Values are normalised on construction: `x86_64` → `amd64`,
/// `aarch64` → `arm64`, `arm64/v8` → `arm64`, `arm` without variant → `arm/v7`
/// (containerd `platforms/database.go`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in GOARCH spelling, e.g. `amd64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v7` for `arm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Why a `--platform` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64")]
pub struct PlatformParseError(pub String);

impl Platform {
    /// Builds and normalises a platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let os = os.to_ascii_lowercase();
        let (architecture, variant) =
            normalize_arch(architecture, variant.filter(|v| !v.is_empty()));
        Self {
            os,
            architecture,
            variant,
        }
    }

    /// The platform this program was compiled for (`linux/amd64` on the usual CI machine).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            other => other,
        };
        Self::new("linux", arch, None)
    }

    /// Whether this is the placeholder BuildKit uses for attestation manifests.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }

    /// How well an image built for `candidate` serves a request for `self`: `None` when it
    /// cannot run, lower is better. An exact match ranks first; `arm/v7` accepts `v6` and
    /// `v5`, `amd64/vN` accepts lower levels (containerd `platforms/compare.go`, strict mode:
    /// 32-bit arm images are not offered to arm64 requests).
    pub fn match_rank(&self, candidate: &Self) -> Option<u32> {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return None;
        }
        if self.variant == candidate.variant {
            return Some(0);
        }
        let level = |v: &Option<String>| -> Option<u32> {
            v.as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse().ok())
        };
        match self.architecture.as_str() {
            "arm" | "amd64" => {
                // amd64 without a variant means v1.
                let want = level(&self.variant).unwrap_or(1);
                let have = level(&candidate.variant).unwrap_or(1);
                (have <= want).then(|| want - have)
            }
            // Variants of other architectures are informational; accept any, rank below exact.
            _ => Some(1),
        }
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase);
    match (arch.as_str(), variant.as_deref()) {
        ("x86_64" | "x86-64" | "amd64", v) => {
            ("amd64".into(), v.filter(|v| *v != "v1").map(Into::into))
        }
        ("aarch64" | "arm64", Some("8" | "v8" | "v8.0") | None) => ("arm64".into(), None),
        ("aarch64" | "arm64", v) => ("arm64".into(), v.map(Into::into)),
        ("armhf", _) => ("arm".into(), Some("v7".into())),
        ("armel", _) => ("arm".into(), Some("v6".into())),
        ("arm", None) => ("arm".into(), Some("v7".into())),
        ("arm", Some(v)) => {
            let v = if v.starts_with('v') {
                v.to_string()
            } else {
                format!("v{v}")
            };
            ("arm".into(), Some(v))
        }
        ("i386" | "i486" | "i586" | "i686" | "386", _) => ("386".into(), None),
        (a, v) => (a.into(), v.map(Into::into)),
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Self::new(os, arch, None)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Self::new(os, arch, Some(variant)))
            }
            _ => Err(PlatformParseError(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A config without `os` or `architecture` shows `unknown`, not an empty part.
        let part = |s: &str| if s.is_empty() { "unknown" } else { s }.to_string();
        write!(f, "{}/{}", part(&self.os), part(&self.architecture))?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_display_as_unknown() {
        assert_eq!(Platform::new("", "", None).to_string(), "unknown/unknown");
        assert_eq!(
            Platform::new("linux", "", None).to_string(),
            "linux/unknown"
        );
    }

    #[test]
    fn normalises() {
        assert_eq!(
            Platform::new("linux", "x86_64", None).to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::new("linux", "aarch64", Some("v8")).to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::new("linux", "arm", None).to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            "linux/arm/7".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            "linux/armhf".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v2/x".parse::<Platform>().is_err());
    }

    #[test]
    fn ranks() {
        let arm7: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(arm7.match_rank(&"linux/arm/v7".parse().unwrap()), Some(0));
        assert_eq!(arm7.match_rank(&"linux/arm/v6".parse().unwrap()), Some(1));
        assert_eq!(arm7.match_rank(&"linux/arm/v8".parse().unwrap()), None);
        let amd: Platform = "linux/amd64".parse().unwrap();
        assert_eq!(amd.match_rank(&"linux/amd64/v3".parse().unwrap()), None);
        assert_eq!(amd.match_rank(&"linux/arm64".parse().unwrap()), None);
        assert!(Platform::new("unknown", "unknown", None).is_unknown());
    }
}
