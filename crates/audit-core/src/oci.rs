//! The OCI / Docker image JSON documents: descriptors, manifests, indexes and image configs.
//!
//! Unknown fields are ignored and optional fields default, as the image-spec requires of
//! consumers. Media types are kept as strings: the pipeline sniffs layer bytes instead of
//! trusting them (skopeo labels uncompressed layers `+gzip` in one mode).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// Media type strings this crate recognises.
pub(crate) mod media {
    /// OCI image index.
    pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker manifest list.
    pub(crate) const DOCKER_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 2 manifest.
    pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker schema 1 (signed); obsolete and not supported.
    pub(crate) const DOCKER_SCHEMA1: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

/// A content descriptor (`descriptor.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the referenced bytes.
    pub digest: Digest,
    /// Size of the referenced bytes.
    pub size: u64,
    /// Platform, in index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<RawPlatform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Alternative download locations (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// The `platform` object of an index entry, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPlatform {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl RawPlatform {
    /// The normalised platform.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

/// An image manifest (`manifest.md`, Docker schema 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, when written.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An image index or Docker manifest list (`image-index.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, when written.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Entries. `null` reads as none (Docker 25.0 writes `"manifests": null` in the
    /// `index.json` of some `docker save` archives, next to a valid `manifest.json`).
    #[serde(deserialize_with = "null_default")]
    pub manifests: Vec<Descriptor>,
}

/// What a manifest-ish JSON document turned out to be.
#[derive(Debug)]
pub enum ManifestKind {
    /// An image manifest.
    Manifest(Manifest),
    /// An index / manifest list.
    Index(Index),
}

/// Decides manifest vs. index from the declared media type, the JSON `mediaType` field, and
/// finally the shape (`manifests` array → index; `config` + `layers` → manifest), because an
/// OCI manifest may omit `mediaType`.
pub(crate) fn parse_manifest_like(
    bytes: &[u8],
    declared: Option<&str>,
) -> Result<ManifestKind, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mt = declared
        .filter(|m| !m.is_empty())
        .or(probe.media_type.as_deref())
        .unwrap_or("");
    if mt == media::DOCKER_SCHEMA1 || probe.schema_version == Some(1) {
        return Err("Docker schema 1 manifests are obsolete and not supported".into());
    }
    let is_index = match mt {
        media::OCI_INDEX | media::DOCKER_LIST => true,
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => false,
        _ if probe.manifests.is_some() => true,
        _ if probe.config.is_some() => false,
        other => {
            return Err(format!(
                "not an image manifest or index (media type {other:?})"
            ))
        }
    };
    if is_index {
        serde_json::from_slice(bytes)
            .map(ManifestKind::Index)
            .map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(bytes)
            .map(ManifestKind::Manifest)
            .map_err(|e| e.to_string())
    }
}

/// Whether a config media type is an image config (not an artifact such as a Helm chart).
pub(crate) fn is_image_config(media_type: &str) -> bool {
    media_type.is_empty() || media_type == media::OCI_CONFIG || media_type == media::DOCKER_CONFIG
}

/// The image config (`config.md`, plus Docker's extensions).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Runtime defaults.
    #[serde(default)]
    pub config: RuntimeConfig,
    /// Layer identities.
    #[serde(default)]
    pub rootfs: RootFs,
    /// Build steps, base first.
    #[serde(default)]
    pub history: Vec<History>,
}

/// The value of an `ExposedPorts` or `Volumes` entry. The image spec defines it as an empty
/// object (<https://github.com/opencontainers/image-spec/blob/main/config.md>); only the keys
/// matter, so any JSON value is accepted and dropped, and it serialises as `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmptyObject;

impl<'de> Deserialize<'de> for EmptyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

impl Serialize for EmptyObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// The `config` object of an image config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// `user[:group]`; empty means root.
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    /// `NAME=value` pairs.
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    /// Entrypoint argv.
    #[serde(default, deserialize_with = "null_default")]
    pub entrypoint: Vec<String>,
    /// Default arguments.
    #[serde(default, deserialize_with = "null_default")]
    pub cmd: Vec<String>,
    /// Working directory.
    #[serde(default, deserialize_with = "null_default")]
    pub working_dir: String,
    /// Labels.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// Exposed ports (`8080/tcp` → `{}`).
    #[serde(default, deserialize_with = "null_default")]
    pub exposed_ports: BTreeMap<String, EmptyObject>,
    /// Volumes.
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: BTreeMap<String, EmptyObject>,
    /// Stop signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker's `SHELL` (used for shell-form commands).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
}

impl RuntimeConfig {
    /// The value of an environment variable (last definition wins, like the runtime).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            (k == name).then_some(v)
        })
    }

    /// Entrypoint followed by Cmd, the argv the runtime starts.
    pub fn argv(&self) -> Vec<&str> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .map(String::as_str)
            .collect()
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootFs {
    /// Must be `layers`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

/// One build step.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command (`RUN /bin/sh -c …`, `COPY … # buildkit`, `/bin/sh -c #(nop) …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step produced no layer.
    #[serde(default)]
    pub empty_layer: bool,
}

impl History {
    /// The Dockerfile instruction of this step, upper case, read from `created_by` in the
    /// BuildKit (`COPY … # buildkit`, `ENV …`), classic and buildah (`/bin/sh -c #(nop) ENV …`,
    /// `/bin/sh -c CMD` for `RUN`) forms; `None` when it is not recognisable.
    pub fn instruction(&self) -> Option<String> {
        let s = self.created_by.as_deref()?.trim();
        let s = s.strip_suffix("# buildkit").unwrap_or(s).trim();
        if let Some(p) = s.find("#(nop)") {
            return s[p + 6..]
                .split_whitespace()
                .next()
                .map(str::to_ascii_uppercase);
        }
        let first = s.split_whitespace().next()?;
        if first.len() > 1 && first.bytes().all(|b| b.is_ascii_uppercase()) {
            return Some(first.to_string());
        }
        let base = first.rsplit('/').next().unwrap_or(first);
        (first.starts_with('|')
            || matches!(base, "sh" | "bash" | "ash" | "dash" | "zsh" | "busybox"))
        .then(|| "RUN".to_string())
    }

    /// Whether the step can write files. Only instructions known to touch nothing (`CMD`,
    /// `ENTRYPOINT`, `ENV`, `ARG`, `LABEL`, `USER`, `EXPOSE` …) say no; unknown ones say yes.
    pub fn writes_files(&self) -> bool {
        !matches!(
            self.instruction().as_deref(),
            Some(
                "CMD"
                    | "ENTRYPOINT"
                    | "ENV"
                    | "ARG"
                    | "LABEL"
                    | "USER"
                    | "EXPOSE"
                    | "STOPSIGNAL"
                    | "HEALTHCHECK"
                    | "SHELL"
                    | "VOLUME"
                    | "ONBUILD"
                    | "MAINTAINER"
            )
        )
    }
}

impl ImageConfig {
    /// The build steps whose content each layer holds.
    ///
    /// The n-th non-empty history entry belongs to the n-th layer; when the counts disagree
    /// the mapping is not trustworthy and every layer gets no step. One builder needs more:
    /// `buildah bud` without `--layers` commits a single layer, marks every instruction
    /// `empty_layer` and credits the last one — often `CMD` — with the layer (seen with
    /// buildah 1.28, `tests/builders.rs`). A layer credited to a step that cannot write files, after `empty_layer`
    /// steps that can (`RUN`, `COPY`, `ADD`), holds the content of those steps, and they are
    /// what it maps to.
    pub fn layer_steps(&self, layer_count: usize) -> Vec<Vec<usize>> {
        let producing: Vec<usize> = self
            .history
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.empty_layer)
            .map(|(i, _)| i)
            .collect();
        if producing.len() != layer_count {
            return vec![Vec::new(); layer_count];
        }
        let mut out = Vec::with_capacity(layer_count);
        let mut first = 0;
        for i in producing {
            let squashed: Vec<usize> = (first..i)
                .filter(|&j| self.history[j].writes_files())
                .collect();
            if !self.history[i].writes_files() && !squashed.is_empty() {
                out.push(squashed);
            } else {
                out.push(vec![i]);
            }
            first = i + 1;
        }
        out
    }

    /// Maps each layer index to the history entry that produced it, when exactly one did
    /// (see [`Self::layer_steps`]); `None` for squashed layers and untrustworthy histories.
    pub fn layer_history(&self, layer_count: usize) -> Vec<Option<usize>> {
        self.layer_steps(layer_count)
            .into_iter()
            .map(|s| if s.len() == 1 { Some(s[0]) } else { None })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_manifest_without_media_type() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        assert!(matches!(
            parse_manifest_like(m, None),
            Ok(ManifestKind::Manifest(_))
        ));
        let i = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse_manifest_like(i, None),
            Ok(ManifestKind::Index(_))
        ));
        assert!(parse_manifest_like(br#"{"schemaVersion":1}"#, None).is_err());
        assert!(parse_manifest_like(b"not json", None).is_err());
    }

    #[test]
    fn config_nulls_and_env() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":["a"],"User":"","Labels":null},
               "rootfs":{"type":"layers","diff_ids":[]},
               "history":[{"created_by":"a"},{"created_by":"b","empty_layer":true},{"created_by":"c"}]}"#,
        )
        .unwrap();
        assert!(c.config.env.is_empty());
        assert_eq!(c.config.argv(), vec!["a"]);
        assert_eq!(c.layer_history(2), vec![Some(0), Some(2)]);
        assert_eq!(c.layer_history(3), vec![None, None, None]);
        // buildah without --layers: one layer, credited to CMD.
        let h = |c: &str, e: bool| History {
            created_by: Some(c.into()),
            empty_layer: e,
            ..History::default()
        };
        let squash = ImageConfig {
            history: vec![
                h("/bin/sh -c #(nop) COPY file:01b0 in /bin/busybox ", true),
                h("/bin/sh -c #(nop) ENV A=b", true),
                h("|1 T=x /bin/sh -c go install x@latest", true),
                h("/bin/sh -c #(nop) CMD [\"/bin/sh\"]", false),
            ],
            ..ImageConfig::default()
        };
        assert_eq!(squash.layer_steps(1), vec![vec![0, 2]]);
        assert_eq!(squash.layer_history(1), vec![None]);
        assert_eq!(squash.history[3].instruction().as_deref(), Some("CMD"));
        assert_eq!(
            h("COPY . /src # buildkit", false).instruction().as_deref(),
            Some("COPY")
        );
        assert_eq!(
            h("/bin/busybox sh -c true", false).instruction().as_deref(),
            Some("RUN")
        );
        let rc = RuntimeConfig {
            env: vec!["A=1".into(), "B".into(), "A=2".into()],
            ..RuntimeConfig::default()
        };
        assert_eq!(rc.env_var("A"), Some("2"));
        assert_eq!(rc.env_var("B"), Some(""));
    }
}
