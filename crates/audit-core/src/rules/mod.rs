//! The rule registry: one static table, in documentation order.
//!
//! A rule is data (id, name, family, default severity, docs) plus a check function over
//! the `RuleCx` of one image. Checks report through a `Sink`, which stamps each finding
//! with the rule's id, name, severity and remediation; policy (severity overrides, ignores)
//! is applied later in one place, never inside a check.

mod artifacts;
mod config;
mod distroless;
mod entrypoint;
mod files;
mod go;
mod history;
mod secrets;
mod shell;
mod steps;
mod user;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::finding::{Evidence, Finding, HistoryRef, LayerRef, Severity, Visibility};
use crate::fs::{MergedFs, Node};
use crate::inspect::reads::ContentRead;
use crate::inspect::{ElfInfo, FileFacts};
use crate::oci::ImageConfig;
use crate::path;
use crate::profile::ProfileChoice;
use crate::system::ldso::Runnability;

pub use distroless::ProfileSummary;
pub use go::GoReleases;
pub(crate) use steps::redact_created_by;

/// A rule family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Family {
    /// Go binaries (and every ELF executable's ability to start).
    #[serde(rename = "GO")]
    Go,
    /// What the final filesystem should not carry.
    #[serde(rename = "FS")]
    Fs,
    /// Credentials in layers, config and history.
    #[serde(rename = "SEC")]
    Sec,
    /// The image config.
    #[serde(rename = "CFG")]
    Cfg,
    /// Build history.
    #[serde(rename = "HIST")]
    Hist,
    /// Distroless profiles.
    #[serde(rename = "DL")]
    Dl,
}

impl Family {
    /// Short name (`GO`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Go => "GO",
            Self::Fs => "FS",
            Self::Sec => "SEC",
            Self::Cfg => "CFG",
            Self::Hist => "HIST",
            Self::Dl => "DL",
        }
    }

    /// Heading for docs.
    pub fn title(self) -> &'static str {
        match self {
            Self::Go => "Go binaries and loader checks",
            Self::Fs => "Final filesystem contents",
            Self::Sec => "Credentials",
            Self::Cfg => "Image config",
            Self::Hist => "Build history",
            Self::Dl => "Distroless profiles (run with --profile)",
        }
    }
}

/// Documentation of a rule, rendered by `imgaudit explain` and into `docs/rules/`.
#[derive(Clone, Copy, Debug)]
pub struct Doc {
    /// What it flags.
    pub what: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix (with Dockerfile lines).
    pub fix: &'static str,
    /// An example of a finding.
    pub example: &'static str,
    /// References.
    pub references: &'static [&'static str],
}

/// One rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Stable id, e.g. `GO001`.
    pub id: &'static str,
    /// Kebab-case name of what is flagged.
    pub name: &'static str,
    /// Family.
    pub family: Family,
    /// Default severity.
    pub severity: Severity,
    /// One line.
    pub summary: &'static str,
    /// Short remediation attached to findings.
    pub remediation: &'static str,
    /// Long documentation.
    pub doc: Doc,
    /// Whether the rule needs the image config (not applicable to a bare rootfs).
    pub needs_config: bool,
    /// The files whose content the rule reads (`crate::fs::MergedFs::content`): only
    /// these are kept as layers stream past ([`crate::audit::content_plan`]).
    pub reads: &'static [ContentRead],
    check: fn(&RuleCx<'_>, &mut Sink<'_>),
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every rule, in documentation order.
pub static RULES: &[Rule] = &[
    go::GO001,
    go::GO002,
    go::GO003,
    go::GO004,
    go::GO005,
    go::GO006,
    go::GO007,
    go::GO008,
    go::GO009,
    go::GO010,
    go::GO011,
    go::GO012,
    artifacts::FS001,
    artifacts::FS002,
    artifacts::FS003,
    artifacts::FS004,
    artifacts::FS005,
    artifacts::FS006,
    artifacts::FS007,
    artifacts::FS008,
    artifacts::FS009,
    files::FS010,
    files::FS011,
    files::FS012,
    files::FS013,
    files::FS014,
    secrets::SEC001,
    secrets::SEC002,
    secrets::SEC003,
    secrets::SEC004,
    user::CFG001,
    user::CFG002,
    entrypoint::CFG003,
    entrypoint::CFG004,
    config::CFG005,
    config::CFG006,
    config::CFG007,
    config::CFG008,
    history::HIST001,
    history::HIST002,
    history::HIST003,
    history::HIST004,
    history::HIST005,
    history::HIST006,
    history::HIST007,
    distroless::DL001,
    distroless::DL002,
    distroless::DL003,
];

/// Looks a rule up by id (case-insensitive) or name.
pub fn find(id_or_name: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id_or_name) || r.name == id_or_name)
}

/// A layer as rules see it.
#[derive(Clone, Debug)]
pub(crate) struct LayerFacts {
    /// Index.
    pub index: usize,
    /// Blob digest.
    pub digest: crate::digest::Digest,
    /// History entry that produced it, when the mapping is trustworthy and one step did.
    pub history: Option<usize>,
    /// Every history entry whose content the layer holds (several for a squashed build,
    /// see [`ImageConfig::layer_steps`]).
    pub steps: Vec<usize>,
}

/// The image, as rules see it.
#[derive(Debug)]
pub(crate) struct ImageFacts {
    /// The config (absent for a bare root filesystem).
    pub config: Option<ImageConfig>,
    /// Manifest annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Layers.
    pub layers: Vec<LayerFacts>,
}

/// An ELF file of the final filesystem.
#[derive(Clone, Debug)]
pub(crate) struct Binary {
    /// Root-relative path.
    pub path: String,
    /// Its node.
    pub node: Node,
    /// Inspection results (holds the [`ElfInfo`]).
    pub facts: Arc<FileFacts>,
    /// Loader check, for dynamically linked executables that can be started (see
    /// [`Binary::startable`]) and are not foreign.
    pub run: Option<Runnability>,
    /// Whether anything can start it: it has an execute bit, or it is the image's command
    /// (or what the command's `#!` line names). Runnability findings are about these only.
    pub startable: bool,
    /// The platform it is built for when that is not the image's (`freebsd/386`); such a
    /// file is listed, never judged by whether it can start (unless it is the command:
    /// CFG003).
    pub foreign: Option<String>,
}

impl Binary {
    /// ELF facts.
    pub(crate) fn elf(&self) -> &ElfInfo {
        self.facts.elf.as_ref().expect("binaries carry ELF facts")
    }
}

/// Settings rules take from the caller.
#[derive(Clone, Debug)]
pub struct RuleSettings {
    /// Go release table and the date to judge support at.
    pub go: GoReleases,
    /// The distroless profile DL rules compare with; `None` leaves them silent.
    pub profile: Option<ProfileChoice>,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            go: GoReleases::builtin(),
            profile: None,
        }
    }
}

/// What a rule check sees.
pub(crate) struct RuleCx<'a> {
    /// Image facts.
    pub image: &'a ImageFacts,
    /// Merged filesystem.
    pub fs: &'a MergedFs,
    /// ELF files of the final filesystem, path order.
    pub binaries: &'a [Binary],
    /// Settings.
    pub settings: &'a RuleSettings,
    /// Go toolchain trees found in the image (FS003); their binaries are the builder's,
    /// not the product's, so binary-hygiene rules skip them.
    pub(crate) goroots: Vec<artifacts::Goroot>,
    /// The profile DL rules compare with (resolved from `auto` once).
    profile: OnceLock<Option<distroless::Resolved>>,
    /// The byte comparison with it (DL003 and the report).
    comparison: OnceLock<Option<distroless::Comparison>>,
    /// The history, parsed.
    pub(crate) steps: Vec<steps::Step>,
    /// Each history entry's `created_by` with its secrets masked (evidence shows these).
    redacted: Vec<String>,
}

impl<'a> RuleCx<'a> {
    /// The context of one image.
    pub(crate) fn new(
        image: &'a ImageFacts,
        fs: &'a MergedFs,
        binaries: &'a [Binary],
        settings: &'a RuleSettings,
    ) -> Self {
        let steps = image
            .config
            .as_ref()
            .map(|c| steps::parse_all(&c.history))
            .unwrap_or_default();
        let redacted = image
            .config
            .as_ref()
            .map(|c| {
                c.history
                    .iter()
                    .map(|h| redact_created_by(h.created_by.as_deref().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            image,
            fs,
            binaries,
            settings,
            goroots: artifacts::goroots(fs),
            profile: OnceLock::new(),
            comparison: OnceLock::new(),
            steps,
            redacted,
        }
    }

    /// The profile DL rules compare with, if one was chosen.
    pub(crate) fn profile(&self) -> Option<&distroless::Resolved> {
        self.profile
            .get_or_init(|| {
                self.settings
                    .profile
                    .as_ref()
                    .map(|c| distroless::resolve(self, c))
            })
            .as_ref()
    }

    pub(crate) fn comparison(&self) -> Option<&distroless::Comparison> {
        self.comparison
            .get_or_init(|| self.profile().map(|r| distroless::compare(self, r)))
            .as_ref()
    }

    /// The profile comparison for the report.
    pub(crate) fn profile_summary(&self) -> Option<ProfileSummary> {
        self.comparison().map(|c| c.summary.clone())
    }

    /// Whether a binary belongs to a Go toolchain (inside a GOROOT, or `cmd/…` itself).
    pub(crate) fn is_toolchain(&self, b: &Binary) -> bool {
        self.goroots
            .iter()
            .any(|r| artifacts::under(&b.path, &r.dir))
            || b.elf()
                .go
                .as_ref()
                .and_then(|g| g.build_info.as_ref())
                .and_then(|bi| bi.path.as_deref())
                .is_some_and(|p| p.starts_with("cmd/"))
    }

    /// Go binaries of the product: Go, and not part of a toolchain.
    pub(crate) fn product_go_binaries(&self) -> impl Iterator<Item = &'a Binary> + '_ {
        self.binaries
            .iter()
            .filter(move |b| b.elf().go.is_some() && !self.is_toolchain(b))
    }

    /// Evidence for a file in the final filesystem written by `layer`.
    pub(crate) fn file(&self, p: &str, layer: usize) -> Evidence {
        Evidence {
            path: Some(path::display(p)),
            ..self.layer(layer)
        }
    }

    /// Evidence naming a layer and its build step.
    pub(crate) fn layer(&self, layer: usize) -> Evidence {
        let l = self.image.layers.get(layer);
        Evidence {
            path: None,
            layer: l.map(|l| LayerRef {
                index: l.index,
                digest: l.digest.clone(),
            }),
            history: l.and_then(|l| l.history).and_then(|h| self.history(h)),
            visibility: Visibility::Final,
            detail: None,
        }
    }

    /// A history entry as evidence, with the secrets it records masked.
    pub(crate) fn history(&self, index: usize) -> Option<HistoryRef> {
        Some(HistoryRef {
            index,
            created_by: self.redacted.get(index)?.clone(),
        })
    }

    /// The layer that holds a history entry's content (its own, or the squashed layer it
    /// went into).
    pub(crate) fn step_layer(&self, index: usize) -> Option<usize> {
        self.image
            .layers
            .iter()
            .find(|l| l.steps.contains(&index))
            .map(|l| l.index)
    }

    /// Evidence naming a build step and the layer that holds its content.
    pub(crate) fn step(&self, index: usize) -> Evidence {
        let mut e = match self.step_layer(index) {
            Some(l) => self.layer(l),
            None => Evidence::default(),
        };
        e.history = self.history(index);
        e
    }

    /// The config, when there is one.
    pub(crate) fn config(&self) -> Option<&ImageConfig> {
        self.image.config.as_ref()
    }

    /// The effective `PATH` for lookups: the config's, else the runtime default.
    pub(crate) fn path_env(&self) -> Vec<String> {
        path_env(self.config())
    }
}

/// The effective `PATH` of an image config: its own, else the runtime default.
fn path_env(config: Option<&ImageConfig>) -> Vec<String> {
    let v = config
        .and_then(|c| c.config.env_var("PATH"))
        .unwrap_or(DEFAULT_PATH);
    v.split(':')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The PATH runtimes use when the image sets none (Docker, containerd, CRI-O).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Collects findings of one rule.
pub(crate) struct Sink<'r> {
    rule: &'r Rule,
    out: Vec<Finding>,
}

impl Sink<'_> {
    /// Reports a finding with the rule's remediation.
    pub(crate) fn emit(&mut self, message: impl Into<String>, evidence: Vec<Evidence>) {
        self.emit_with(message, evidence, Cow::Borrowed(self.rule.remediation));
    }

    /// Reports a finding with a specific remediation.
    pub(crate) fn emit_with(
        &mut self,
        message: impl Into<String>,
        evidence: Vec<Evidence>,
        remediation: Cow<'static, str>,
    ) {
        self.out.push(Finding {
            rule: self.rule.id,
            name: self.rule.name,
            severity: self.rule.severity,
            message: message.into(),
            evidence,
            remediation,
        });
    }
}

/// Runs every rule over an image. Rules that need a config are skipped without one;
/// their ids are returned as not applicable.
pub(crate) fn run_all(cx: &RuleCx<'_>) -> (Vec<Finding>, Vec<&'static str>) {
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    for rule in RULES {
        if rule.needs_config && cx.image.config.is_none() {
            skipped.push(rule.id);
            continue;
        }
        let mut sink = Sink {
            rule,
            out: Vec::new(),
        };
        (rule.check)(cx, &mut sink);
        findings.extend(sink.out);
    }
    (findings, skipped)
}

/// Resolves a command name the way `execvp` does inside the image: a name with `/` is a
/// path (relative ones from `workdir`); otherwise each `PATH` entry is tried. Returns the
/// resolved path and node of the first regular file with an execute bit, or the first
/// non-executable candidate for diagnostics.
pub(crate) fn which<'f>(
    fs: &'f MergedFs,
    name: &str,
    path_env: &[String],
    workdir: &str,
) -> Lookup<'f> {
    let candidates: Vec<String> = if name.contains('/') {
        vec![path::join_clamped(workdir.trim_start_matches('/'), name)]
    } else {
        path_env
            .iter()
            .map(|d| path::child(d.trim_start_matches('/').trim_end_matches('/'), name))
            .collect()
    };
    let mut first_bad = None;
    for c in candidates {
        match fs.lookup(&c) {
            Ok(Some((p, n))) if n.is_file() && n.is_executable() => return Lookup::Found(p, n),
            Ok(Some((p, n))) => {
                if first_bad.is_none() {
                    first_bad = Some(Lookup::NotExecutable(p, n));
                }
            }
            Ok(None) => {}
            Err(_) => {
                if first_bad.is_none() {
                    first_bad = Some(Lookup::Loop(c));
                }
            }
        }
    }
    first_bad.unwrap_or(Lookup::Missing)
}

/// The files the image's command starts: the first word of `Entrypoint` + `Cmd` resolved
/// like `execvp` (also when it lacks an execute bit: starting it is still attempted), and
/// the interpreters its `#!` lines name, following scripts up to four levels as the kernel
/// does (`binfmt_script`), with `/usr/bin/env NAME` looked up on `PATH`. Root-relative
/// paths.
pub(crate) fn command_files(fs: &MergedFs, config: &ImageConfig) -> Vec<String> {
    /// Interpreter levels the kernel follows (`BINPRM_MAX_RECURSION` in fs/exec.c).
    const MAX_SCRIPT_LEVELS: usize = 4;
    let Some(argv0) = config.config.argv().first().copied() else {
        return Vec::new();
    };
    let path_env = path_env(Some(config));
    let workdir = match config.config.working_dir.as_str() {
        "" => "/",
        w => w,
    };
    let mut out = Vec::new();
    let mut next = match which(fs, argv0, &path_env, workdir) {
        Lookup::Found(p, n) | Lookup::NotExecutable(p, n) if n.is_file() => Some((p, n)),
        _ => None,
    };
    for _ in 0..=MAX_SCRIPT_LEVELS {
        let Some((p, n)) = next.take() else { break };
        out.push(p);
        let Some(line) = n.facts.as_deref().and_then(|f| f.shebang.as_deref()) else {
            break;
        };
        let mut words = line.split_whitespace();
        let Some(interp) = words.next() else { break };
        next = match fs.lookup(interp) {
            Ok(Some((ip, inode))) if inode.is_file() => {
                let env_name = words.next().filter(|a| !a.starts_with('-'));
                match env_name {
                    Some(name) if path::file_name(interp) == "env" => {
                        out.push(ip);
                        match which(fs, name, &path_env, "/") {
                            Lookup::Found(p, n) => Some((p, n)),
                            _ => None,
                        }
                    }
                    _ => Some((ip, inode)),
                }
            }
            _ => None,
        };
    }
    out
}

/// The outcome of [`which`].
pub(crate) enum Lookup<'f> {
    Found(String, &'f Node),
    NotExecutable(String, &'f Node),
    Loop(String),
    Missing,
}

/// Formats a byte count for messages.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The Markdown page of one rule (what `imgaudit explain` prints and `docs/rules/` holds).
pub fn render_markdown(r: &Rule) -> String {
    let mut s = format!("# {} `{}`\n\n", r.id, r.name);
    s.push_str(&format!(
        "Family: {} ({}) · Default severity: **{}**",
        r.family.as_str(),
        r.family.title(),
        r.severity
    ));
    if r.needs_config {
        s.push_str(" · Needs the image config");
    }
    s.push_str(&format!("\n\n{}\n\n", r.summary));
    s.push_str(&format!("## What it flags\n\n{}\n\n", r.doc.what));
    s.push_str(&format!("## Why it matters\n\n{}\n\n", r.doc.why));
    s.push_str(&format!("## How to fix\n\n{}\n\n", r.doc.fix));
    s.push_str(&format!(
        "## Example\n\n```text\n{} {}: {}\n```\n",
        r.id, r.severity, r.doc.example
    ));
    if !r.doc.references.is_empty() {
        s.push_str("\n## References\n\n");
        for x in r.doc.references {
            s.push_str(&format!("- {x}\n"));
        }
    }
    s
}

/// The Markdown index of all rules (`docs/rules/README.md`).
pub fn render_index() -> String {
    let mut s = String::from("# imgaudit rules\n\nGenerated from the rule registry by `imgaudit rules --markdown docs/rules`; do not edit.\n");
    let mut family = None;
    for r in RULES {
        if family != Some(r.family) {
            family = Some(r.family);
            s.push_str(&format!(
                "\n## {} — {}\n\n| id | name | severity | summary |\n|---|---|---|---|\n",
                r.family.as_str(),
                r.family.title()
            ));
        }
        s.push_str(&format!(
            "| [{}]({}.md) | `{}` | {} | {} |\n",
            r.id, r.id, r.name, r.severity, r.summary
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one rule over an image that has only a history (test helper for the HIST and SEC
    /// rules): each string is a `created_by`, every entry producing a layer.
    pub(crate) fn run_on_history(rule: &Rule, created_by: &[&str], env: &[&str]) -> Vec<Finding> {
        let config = ImageConfig {
            history: created_by
                .iter()
                .map(|c| crate::oci::History {
                    created_by: Some((*c).to_string()),
                    ..Default::default()
                })
                .collect(),
            config: crate::oci::RuntimeConfig {
                env: env.iter().map(|e| (*e).to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let image = ImageFacts {
            config: Some(config),
            annotations: Default::default(),
            layers: Vec::new(),
        };
        let fs = MergedFs::new(crate::audit::content_plan());
        let settings = RuleSettings::default();
        let cx = RuleCx::new(&image, &fs, &[], &settings);
        let mut sink = Sink {
            rule,
            out: Vec::new(),
        };
        (rule.check)(&cx, &mut sink);
        sink.out
    }

    #[test]
    fn ids_are_unique_named_and_documented() {
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for r in RULES {
            assert!(ids.insert(r.id), "duplicate id {}", r.id);
            assert!(names.insert(r.name), "duplicate name {}", r.name);
            assert!(
                r.id.starts_with(r.family.as_str()),
                "{} not in family {:?}",
                r.id,
                r.family
            );
            let digits = &r.id[r.family.as_str().len()..];
            assert!(
                digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                r.id
            );
            assert!(
                r.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                r.name
            );
            for bad in ["no-", "disallow-", "use-", "avoid-"] {
                assert!(
                    !r.name.starts_with(bad),
                    "{}: names say what is flagged, not the fix",
                    r.name
                );
            }
            assert!(
                !r.summary.is_empty() && !r.remediation.is_empty(),
                "{}",
                r.id
            );
            assert!(
                !r.doc.what.is_empty()
                    && !r.doc.why.is_empty()
                    && !r.doc.fix.is_empty()
                    && !r.doc.example.is_empty(),
                "{}",
                r.id
            );
            assert_eq!(find(r.id).map(|x| x.id), Some(r.id));
            assert_eq!(find(&r.id.to_lowercase()).map(|x| x.id), Some(r.id));
        }
    }

    #[test]
    fn bytes_format() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(2 << 20), "2.0 MiB");
    }
}
