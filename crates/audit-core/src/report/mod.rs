//! The report: a serde model that is the JSON schema (versioned by [`SCHEMA_VERSION`]), and
//! the formats that render it.
//!
//! The JSON schema is documented in `docs/report-schema.md`; fields are only ever added in
//! a minor version, and a change that removes or renames one bumps `schema_version`.

mod cyclonedx;
mod json;
mod markdown;
mod sarif;
mod text;

use std::collections::BTreeMap;
use std::io;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub use cyclonedx::Cyclonedx;
pub use json::Json;
pub use markdown::Markdown;
pub use sarif::Sarif;
pub use text::Text;

// The types a report's fields hold, named here so an embedder can use them without reaching
// into the pipeline's modules.
pub use crate::inspect::elf::Relro;
pub use crate::inspect::go::{BuildInfo, BuildInfoSource, BuildSetting, GoUses, GoVersion, Module};
pub use crate::inspect::Linkage;
pub use crate::layer::Compression;
pub use crate::rules::ProfileSummary;
pub use crate::system::ldso::{
    InterpreterStatus, LoaderKind, MissingLibrary, MissingVersion, ResolvedLibrary, Runnability,
};
pub use crate::system::pkgdb::{Distro, OsPackage};

use crate::digest::Digest;
use crate::finding::{Finding, Severity};
use crate::inspect::ElfInfo;

/// Version of the JSON report schema.
pub const SCHEMA_VERSION: u32 = 1;

/// One audited image.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The tool that wrote it.
    pub tool: Tool,
    /// The image.
    pub image: ImageSummary,
    /// Layers, base first.
    pub layers: Vec<LayerSummary>,
    /// Every ELF file of the final filesystem, path order.
    pub binaries: Vec<BinaryReport>,
    /// Findings after policy, most severe first.
    pub findings: Vec<Finding>,
    /// Findings a policy ignore matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<Suppressed>,
    /// Rules that could not apply (e.g. config rules on a bare root filesystem).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<&'static str>,
    /// Files or entries that could not be fully examined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<Unknown>,
    /// The distribution, from os-release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    /// Installed OS packages (dpkg status, distroless status.d, apk), for the SBOM.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<OsPackage>,
    /// The distroless profile comparison (DL rules), when a profile was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileSummary>,
    /// Counts.
    pub summary: Summary,
}

impl Default for Report {
    /// An empty report of the current schema (nothing audited, no findings).
    fn default() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            tool: Tool::default(),
            image: ImageSummary::default(),
            layers: Vec::new(),
            binaries: Vec::new(),
            findings: Vec::new(),
            suppressed: Vec::new(),
            not_applicable: Vec::new(),
            unknowns: Vec::new(),
            distro: None,
            packages: Vec::new(),
            profile: None,
            summary: Summary::default(),
        }
    }
}

/// Tool identity.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    /// `imgaudit`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

impl Default for Tool {
    fn default() -> Self {
        Self {
            name: "imgaudit",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The image's identity and config highlights.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImageSummary {
    /// What the user asked for.
    pub reference: String,
    /// `oci-layout`, `docker-archive`, `oci-archive`, `rootfs`, `registry`.
    pub source: String,
    /// `os/arch[/variant]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Index the manifest was chosen from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// Manifest digest (pins a tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// Config digest (image ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<Digest>,
    /// `created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `User`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `Entrypoint`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// `WorkingDir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Names of `Env` variables (values are not reported: they may be secrets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_names: Vec<String>,
    /// `Labels`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Sum of layer blob sizes.
    pub size: u64,
    /// Sum of uncompressed layer sizes.
    pub uncompressed_size: u64,
    /// Entries in the merged filesystem.
    pub files: usize,
}

/// One layer.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    /// Index, base = 0.
    pub index: usize,
    /// Blob digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Uncompressed digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// Declared media type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Detected compression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Blob bytes.
    pub size: u64,
    /// Uncompressed bytes.
    pub uncompressed_size: u64,
    /// Tar entries.
    pub entries: usize,
    /// The build step that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Bytes in this layer that later layers delete or overwrite.
    pub wasted_bytes: u64,
}

/// One ELF file.
#[derive(Clone, Debug, Serialize)]
pub struct BinaryReport {
    /// Absolute path.
    pub path: String,
    /// Layer that wrote it.
    pub layer: usize,
    /// Bytes.
    pub size: u64,
    /// Mode, octal.
    pub mode: String,
    /// ELF facts.
    #[serde(flatten)]
    pub elf: ElfView,
    /// Go build info, under the names `go version -m` prints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<GoView>,
    /// Loader check (dynamically linked executables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loader: Option<Runnability>,
    /// Whether it can start, as far as the image's loader and libraries go: only for
    /// executables something can start (an execute bit, or the image's command) that are
    /// not foreign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runnable: Option<bool>,
    /// The platform it is built for when that is not the image's (`freebsd/386`, `ppc64`):
    /// listed, not judged by whether it can start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<String>,
}

/// The ELF part of a [`BinaryReport`].
#[derive(Clone, Debug, Serialize)]
pub struct ElfView {
    /// `elf32`/`elf64`.
    pub class: &'static str,
    /// Architecture (`amd64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<&'static str>,
    /// The OS its `EI_OSABI` names (`linux`, `freebsd` …); absent for System V (0), which
    /// names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<&'static str>,
    /// `static`, `static-pie`, `dynamic`, `shared-library`, …
    pub linkage: Linkage,
    /// `PT_INTERP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// `DT_NEEDED`.
    pub needed: Vec<String>,
    /// Needed libraries that do not resolve in the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    /// `DT_RPATH`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rpath: Vec<String>,
    /// `DT_RUNPATH`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runpath: Vec<String>,
    /// `DT_SONAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soname: Option<String>,
    /// No `.symtab`.
    pub stripped: bool,
    /// DWARF present.
    pub dwarf: bool,
    /// PIE.
    pub pie: bool,
    /// RELRO.
    pub relro: Relro,
    /// BIND_NOW.
    pub bind_now: bool,
    /// Non-executable stack.
    pub nx_stack: bool,
    /// GNU build ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Highest `GLIBC_2.x` needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glibc_required: Option<String>,
    /// UPX-packed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upx: bool,
    /// Facts that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
}

impl ElfView {
    /// Builds the view; `unresolved` comes from the loader check.
    pub fn new(e: &ElfInfo, unresolved: Vec<String>) -> Self {
        Self {
            class: match e.class {
                crate::inspect::elf::ElfClass::Elf32 => "elf32",
                crate::inspect::elf::ElfClass::Elf64 => "elf64",
            },
            architecture: e.architecture,
            os: e.os(),
            linkage: e.linkage,
            interpreter: e.interpreter.clone(),
            needed: e.needed.clone(),
            unresolved,
            rpath: e.rpath.clone(),
            runpath: e.runpath.clone(),
            soname: e.soname.clone(),
            stripped: !e.symtab,
            dwarf: e.debug.dwarf,
            pie: e.pie,
            relro: e.relro,
            bind_now: e.bind_now,
            nx_stack: e.nx_stack,
            build_id: e.build_id.clone(),
            glibc_required: highest_glibc(e),
            upx: e.upx,
            incomplete: e.incomplete.clone(),
        }
    }
}

/// The highest `GLIBC_2.x` version an object needs.
pub fn highest_glibc(e: &ElfInfo) -> Option<String> {
    e.version_needs
        .iter()
        .flat_map(|n| n.versions.iter())
        .filter_map(|v| {
            let rest = v.strip_prefix("GLIBC_")?;
            let nums: Vec<u32> = rest
                .split('.')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            Some((nums, v.clone()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v)
}

/// Go facts under `go version -m`'s names: `go`, `path`, `mod`, `dep`, `build`; a
/// replacement (`=>` line) is `replace`.
#[derive(Clone, Debug)]
pub struct GoView {
    /// Build info, if readable.
    pub info: Option<BuildInfo>,
    /// Where it came from.
    pub source: Option<BuildInfoSource>,
    /// Go build ID.
    pub build_id: Option<String>,
    /// pclntab version range.
    pub pclntab: Option<&'static str>,
    /// Packages linked.
    pub uses: Option<GoUses>,
    /// Why build info is missing or partial.
    pub error: Option<String>,
}

struct ModuleView<'a>(&'a Module);

impl Serialize for ModuleView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("path", &m.path)?;
        map.serialize_entry("version", &m.version)?;
        if !m.sum.is_empty() {
            map.serialize_entry("sum", &m.sum)?;
        }
        if let Some(r) = &m.replace {
            map.serialize_entry("replace", &ModuleView(r))?;
        }
        map.end()
    }
}

struct Settings<'a>(&'a BuildInfo);

impl Serialize for Settings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // In build order; a repeated key keeps its last value, like BuildInfo::setting.
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for b in &self.0.settings {
            match seen.iter_mut().find(|(k, _)| *k == b.key) {
                Some(e) => e.1 = &b.value,
                None => seen.push((&b.key, &b.value)),
            }
        }
        let mut map = s.serialize_map(Some(seen.len()))?;
        for (k, v) in seen {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for GoView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(bi) = &self.info {
            if !bi.go_version.is_empty() {
                map.serialize_entry("go", &bi.go_version)?;
            }
            if let Some(p) = &bi.path {
                map.serialize_entry("path", p)?;
            }
            if let Some(m) = &bi.main {
                map.serialize_entry("mod", &ModuleView(m))?;
            }
            let deps: Vec<ModuleView<'_>> = bi.deps.iter().map(ModuleView).collect();
            map.serialize_entry("dep", &deps)?;
            map.serialize_entry("build", &Settings(bi))?;
        }
        if let Some(src) = &self.source {
            map.serialize_entry("build_info_source", src)?;
        }
        if let Some(b) = &self.build_id {
            map.serialize_entry("build_id", b)?;
        }
        if let Some(p) = &self.pclntab {
            map.serialize_entry("pclntab", p)?;
        }
        if let Some(u) = &self.uses {
            map.serialize_entry("uses", u)?;
        }
        if let Some(e) = &self.error {
            map.serialize_entry("build_info_error", e)?;
        }
        map.end()
    }
}

/// A finding a policy ignore matched.
#[derive(Clone, Debug, Serialize)]
pub struct Suppressed {
    /// The finding.
    pub finding: Finding,
    /// The ignore's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Something that could not be fully examined.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unknown {
    /// Path, when about a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Layer index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// What happened.
    pub reason: String,
}

/// Counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Findings per severity.
    pub critical: usize,
    /// High.
    pub high: usize,
    /// Medium.
    pub medium: usize,
    /// Low.
    pub low: usize,
    /// Info.
    pub info: usize,
    /// ELF files.
    pub binaries: usize,
    /// Go binaries.
    pub go_binaries: usize,
    /// Executables that cannot start.
    pub not_runnable: usize,
    /// ELF files built for another OS or machine than the image's platform.
    pub foreign: usize,
}

impl Summary {
    /// Counts findings per severity.
    pub fn count(&mut self, findings: &[Finding]) {
        for f in findings {
            match f.severity {
                Severity::Critical => self.critical += 1,
                Severity::High => self.high += 1,
                Severity::Medium => self.medium += 1,
                Severity::Low => self.low += 1,
                Severity::Info => self.info += 1,
            }
        }
    }

    /// Total findings.
    pub fn total(&self) -> usize {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

/// An output format.
pub trait Format {
    /// Its name (`json`).
    fn id(&self) -> &'static str;
    /// Writes all reports.
    fn write(&self, reports: &[Report], out: &mut dyn io::Write) -> io::Result<()>;
}
