//! The auditor: source → layers (parallel) → merged filesystem → loader checks → rules →
//! report.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::error::{Error, SourceError};
use crate::fs::MergedFs;
use crate::inspect::reads::ContentPlan;
use crate::inspect::secrets::redact;
use crate::layer::{self, LayerAnalysis, LayerSpec};
use crate::limits::Limits;
use crate::path;
use crate::platform::Platform;
use crate::policy::Policy;
use crate::report::{
    BinaryReport, ElfView, GoView, ImageSummary, LayerSummary, Report, Summary, Tool, Unknown,
};
use crate::rules::{self, Binary, ImageFacts, LayerFacts, RuleCx, RuleSettings};
use crate::source::{self, BlobStore, PlatformChoice, ResolvedImage, Source};
use crate::store::{LayerKey, LayerStore};
use crate::system::ldso::{self, Loader};
use crate::system::pkgdb;

/// Observes layer progress (the CLI draws progress bars with it). Called from worker
/// threads.
pub trait Progress: Send + Sync {
    /// A layer started streaming.
    fn layer_started(&self, _index: usize, _size: u64) {}
    /// Bytes of a layer's blob were read.
    fn layer_bytes(&self, _index: usize, _bytes: u64) {}
    /// A layer finished.
    fn layer_done(&self, _index: usize) {}
}

/// Every declared content read ([`crate::inspect::reads`]): each rule's
/// [`rules::Rule::reads`], the loader check's `system::ldso::READS` and the package databases'
/// `system::pkgdb::READS`. The layer walk keeps the content of exactly the files it covers, and
/// `MergedFs::content` refuses (in debug builds) paths it does not cover.
pub fn content_plan() -> &'static ContentPlan {
    static PLAN: LazyLock<ContentPlan> = LazyLock::new(|| {
        ContentPlan::new(
            rules::RULES
                .iter()
                .flat_map(|r| r.reads)
                .chain(ldso::READS)
                .chain(pkgdb::READS),
        )
    });
    &PLAN
}

/// Audits images. Build one with [`Auditor::builder`]; it is immutable and can be shared.
#[derive(Clone)]
pub struct Auditor {
    limits: Limits,
    jobs: usize,
    platform: PlatformChoice,
    settings: RuleSettings,
    policy: Policy,
    today: Option<String>,
    progress: Option<Arc<dyn Progress>>,
    layer_store: Option<Arc<dyn LayerStore>>,
    /// [`layer::analysis_fingerprint`] of `limits`: half of every layer-store key.
    fingerprint: Arc<str>,
}

/// Configures an [`Auditor`].
#[derive(Clone, Default)]
pub struct AuditorBuilder {
    limits: Option<Limits>,
    jobs: Option<usize>,
    platform: Option<PlatformChoice>,
    settings: Option<RuleSettings>,
    policy: Option<Policy>,
    today: Option<String>,
    progress: Option<Arc<dyn Progress>>,
    layer_store: Option<Arc<dyn LayerStore>>,
}

impl AuditorBuilder {
    /// Input bounds (default: the documented constants of [`crate::limits`]).
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = Some(l);
        self
    }
    /// Layers analysed at once (default: available parallelism).
    pub fn jobs(mut self, n: usize) -> Self {
        self.jobs = Some(n.max(1));
        self
    }
    /// Platform choice for multi-platform images.
    pub fn platform(mut self, p: PlatformChoice) -> Self {
        self.platform = Some(p);
        self
    }
    /// Rule settings (Go release table …).
    pub fn settings(mut self, s: RuleSettings) -> Self {
        self.settings = Some(s);
        self
    }
    /// Policy.
    pub fn policy(mut self, p: Policy) -> Self {
        self.policy = Some(p);
        self
    }
    /// Today's date, `YYYY-MM-DD` (for expiring ignores and the Go support table).
    pub fn today(mut self, d: impl Into<String>) -> Self {
        self.today = Some(d.into());
        self
    }
    /// Progress observer.
    pub fn progress(mut self, p: Arc<dyn Progress>) -> Self {
        self.progress = Some(p);
        self
    }
    /// Layer analyses are looked up in, and added to, this store (see [`crate::store`]). One
    /// store can serve auditors with different limits: the key includes them.
    pub fn layer_store(mut self, s: Arc<dyn LayerStore>) -> Self {
        self.layer_store = Some(s);
        self
    }
    /// Freezes the configuration.
    pub fn build(self) -> Auditor {
        let mut settings = self.settings.unwrap_or_default();
        let policy = self.policy.unwrap_or_default();
        if settings.profile.is_none() {
            settings.profile = policy.profile.clone();
        }
        if settings.go.today.is_none() {
            settings.go.today = self.today.clone();
        }
        let limits = self.limits.unwrap_or_default();
        Auditor {
            fingerprint: layer::analysis_fingerprint(&limits, content_plan()).into(),
            limits,
            jobs: self
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
            platform: self.platform.unwrap_or(PlatformChoice::Default),
            settings,
            policy,
            today: self.today,
            progress: self.progress,
            layer_store: self.layer_store,
        }
    }
}

impl Auditor {
    /// The analysis fingerprint this auditor keys layer-store entries with: it covers the
    /// analysis version, the limits and the files whose content the rules read, so two
    /// auditors share stored analyses (or verdicts) only when theirs are equal.
    pub fn analysis_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A builder with defaults.
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder::default()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Audits every image the source and platform choice select; `reference` is echoed in
    /// the reports.
    pub fn audit(&self, src: &Source, reference: &str) -> Result<Vec<Report>, Error> {
        match src {
            Source::Rootfs(dir) => Ok(vec![self.audit_rootfs(dir, reference)?]),
            Source::Blobs(store) => {
                let kind = store.kind();
                let images = source::resolve(store.as_ref(), &self.platform, &self.limits)?;
                images
                    .iter()
                    .map(|img| self.audit_image(store.as_ref(), img, reference, kind))
                    .collect()
            }
            Source::Stream(s) => {
                let pass = source::engine::stream::Pass {
                    limits: &self.limits,
                    jobs: self.jobs,
                    progress: self.progress.as_deref(),
                };
                let store = source::engine::read_stream(s.as_ref(), &pass)?;
                let images = source::resolve(store.as_ref(), &self.platform, &self.limits)?;
                s.check(&images)?;
                images
                    .iter()
                    .map(|img| self.audit_image(store.as_ref(), img, reference, s.kind()))
                    .collect()
            }
        }
    }

    /// Audits one resolved image.
    pub fn audit_image(
        &self,
        store: &dyn BlobStore,
        img: &ResolvedImage,
        reference: &str,
        source_kind: &str,
    ) -> Result<Report, Error> {
        let diff_ids = &img.config.rootfs.diff_ids;
        let verify = store.verifies_layer_digests();
        let specs: Vec<LayerSpec> = img
            .manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, d)| LayerSpec {
                index: i,
                digest: d.digest.clone(),
                size: d.size,
                diff_id: diff_ids.get(i).cloned(),
                verify_digest: verify,
                media_type: d.media_type.clone(),
            })
            .collect();
        let layers = self.analyze_layers(store, &specs)?;
        let mut fs = MergedFs::new(content_plan());
        for l in &layers {
            fs.apply(l.index, &l.entries);
            fs.add_anomalies(l.index, &l.anomalies);
        }
        let history = img.config.layer_history(layers.len());
        let steps = img.config.layer_steps(layers.len());
        let facts = ImageFacts {
            config: Some(img.config.clone()),
            annotations: img.manifest.annotations.clone(),
            layers: layers
                .iter()
                .map(|l| LayerFacts {
                    index: l.index,
                    digest: l.digest.clone(),
                    history: history[l.index],
                    steps: steps[l.index].clone(),
                })
                .collect(),
        };
        let c = &img.config;
        let summary = ImageSummary {
            reference: reference.to_string(),
            source: source_kind.to_string(),
            platform: Some(img.platform.to_string()),
            index_digest: img.index_digest.clone(),
            manifest_digest: img.manifest_digest.clone(),
            config_digest: Some(img.config_digest.clone()),
            created: c.created.clone(),
            user: Some(c.config.user.clone()),
            // Shown verbatim, so token formats and URL credentials in them are masked.
            entrypoint: c
                .config
                .entrypoint
                .iter()
                .map(|a| redact(a).into_owned())
                .collect(),
            cmd: c
                .config
                .cmd
                .iter()
                .map(|a| redact(a).into_owned())
                .collect(),
            working_dir: Some(c.config.working_dir.clone()).filter(|w| !w.is_empty()),
            env_names: c
                .config
                .env
                .iter()
                .map(|kv| kv.split('=').next().unwrap_or("").to_string())
                .collect(),
            labels: c
                .config
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), redact(v).into_owned()))
                .collect(),
            size: layers.iter().map(|l| l.size).sum(),
            uncompressed_size: layers.iter().map(|l| l.uncompressed_size).sum(),
            files: 0,
        };
        let layer_summaries = layers
            .iter()
            .map(|l| LayerSummary {
                index: l.index,
                digest: Some(l.digest.clone()),
                diff_id: Some(l.diff_id.clone()),
                media_type: img.manifest.layers[l.index].media_type.clone(),
                compression: Some(l.compression),
                size: l.size,
                uncompressed_size: l.uncompressed_size,
                entries: l.entries.len(),
                created_by: history[l.index]
                    .and_then(|h| c.history.get(h))
                    .and_then(|h| h.created_by.as_deref())
                    .map(rules::redact_created_by),
                wasted_bytes: 0,
            })
            .collect();
        drop(layers);
        Ok(self.finish(fs, facts, summary, layer_summaries))
    }

    /// Audits an unpacked root filesystem (config rules do not apply).
    pub fn audit_rootfs(&self, dir: &Path, reference: &str) -> Result<Report, Error> {
        let (entries, anomalies) =
            layer::analyze_dir(dir, &self.limits, content_plan()).map_err(|source| {
                SourceError::Io {
                    path: dir.to_path_buf(),
                    error: source,
                }
            })?;
        if entries.is_empty() && anomalies.is_empty() {
            // An empty directory is no root filesystem: a report about it would be a clean
            // bill for nothing.
            return Err(SourceError::WrongFormat {
                path: dir.to_path_buf(),
                expected: "a root filesystem",
                reason: "the directory is empty".into(),
            }
            .into());
        }
        let mut fs = MergedFs::new(content_plan());
        fs.apply(0, &entries);
        fs.add_anomalies(0, &anomalies);
        let size: u64 = entries.iter().map(|e| e.size).sum();
        let facts = ImageFacts {
            config: None,
            annotations: Default::default(),
            layers: Vec::new(),
        };
        let summary = ImageSummary {
            reference: reference.to_string(),
            source: "rootfs".into(),
            uncompressed_size: size,
            ..ImageSummary::default()
        };
        Ok(self.finish(fs, facts, summary, Vec::new()))
    }

    fn finish(
        &self,
        fs: MergedFs,
        facts: ImageFacts,
        mut image: ImageSummary,
        mut layers: Vec<LayerSummary>,
    ) -> Report {
        let env_ld = facts
            .config
            .as_ref()
            .and_then(|c| c.config.env_var("LD_LIBRARY_PATH"))
            .map(str::to_string);
        let loader = Loader::new(&fs, env_ld.as_deref());
        let platform = facts
            .config
            .as_ref()
            .map(|c| Platform::new(&c.os, &c.architecture, c.variant.as_deref()));
        let command: HashSet<String> = facts
            .config
            .as_ref()
            .map(|c| rules::command_files(&fs, c).into_iter().collect())
            .unwrap_or_default();
        let mut binaries: Vec<Binary> = Vec::new();
        let mut unknowns: Vec<Unknown> = Vec::new();
        for (p, n) in fs.iter() {
            let Some(f) = &n.facts else { continue };
            if let Some(e) = &f.elf_error {
                unknowns.push(Unknown {
                    path: Some(path::display(p)),
                    layer: Some(n.layer),
                    reason: format!("ELF not inspected: {e}"),
                });
            }
            let Some(elf) = &f.elf else { continue };
            if !elf.incomplete.is_empty() {
                unknowns.push(Unknown {
                    path: Some(path::display(p)),
                    layer: Some(n.layer),
                    reason: format!("ELF facts unavailable: {}", elf.incomplete.join(", ")),
                });
            }
            // Only what can be started is judged by whether it starts: files with an execute
            // bit and the image's command. ELF test data (mode 0644, other OSes and machines)
            // is never executed; a foreign binary is listed as such.
            let startable = n.is_file() && (n.mode & 0o111 != 0 || command.contains(p));
            let foreign = ldso::foreign(elf, platform.as_ref());
            let run = (startable
                && foreign.is_none()
                && elf.is_executable()
                && elf.interpreter.is_some())
            .then(|| loader.check(p, n, elf));
            binaries.push(Binary {
                path: p.to_string(),
                node: n.clone(),
                facts: Arc::clone(f),
                run,
                startable,
                foreign,
            });
        }
        for a in fs.anomalies() {
            unknowns.push(Unknown {
                path: Some(a.anomaly.path.clone()).filter(|p| !p.is_empty()),
                layer: Some(a.layer),
                reason: a.anomaly.problem.clone(),
            });
        }
        let cx = RuleCx::new(&facts, &fs, &binaries, &self.settings);
        let (raw, not_applicable) = rules::run_all(&cx);
        tracing::info!(
            files = fs.len(),
            binaries = binaries.len(),
            findings = raw.len(),
            "rules evaluated"
        );
        let profile = cx.profile_summary();
        let (findings, suppressed) = self.policy.apply(raw, self.today.as_deref());
        for s in fs.shadows() {
            if let Some(l) = layers.get_mut(s.added_in) {
                l.wasted_bytes += s.size;
            }
        }
        image.files = fs.len().saturating_sub(1);
        let mut summary = Summary::default();
        summary.count(&findings);
        let reports: Vec<BinaryReport> = binaries
            .iter()
            .map(|b| {
                let elf = b.elf();
                let unresolved = b
                    .run
                    .as_ref()
                    .map(|r| r.missing.iter().map(|m| m.name.clone()).collect())
                    .unwrap_or_default();
                let runnable = (elf.is_executable() && b.startable && b.foreign.is_none())
                    .then(|| b.run.as_ref().is_none_or(|r| r.ok()));
                BinaryReport {
                    path: path::display(&b.path),
                    layer: b.node.layer,
                    size: b.node.size,
                    mode: format!("{:04o}", b.node.mode),
                    elf: ElfView::new(elf, unresolved),
                    go: elf.go.as_ref().map(|g| GoView {
                        info: g.build_info.clone(),
                        source: g.source,
                        build_id: g.build_id.clone(),
                        pclntab: g.pclntab,
                        uses: g.uses,
                        error: g.build_info_error.clone(),
                    }),
                    loader: b.run.clone(),
                    runnable,
                    foreign: b.foreign.clone(),
                }
            })
            .collect();
        summary.binaries = reports.len();
        summary.go_binaries = reports.iter().filter(|b| b.go.is_some()).count();
        summary.not_runnable = reports.iter().filter(|b| b.runnable == Some(false)).count();
        summary.foreign = reports.iter().filter(|b| b.foreign.is_some()).count();
        unknowns.sort();
        Report {
            schema_version: crate::report::SCHEMA_VERSION,
            tool: Tool::default(),
            image,
            layers,
            binaries: reports,
            findings,
            suppressed,
            not_applicable,
            unknowns,
            distro: pkgdb::distro(&fs),
            packages: pkgdb::packages(&fs),
            profile,
            summary,
        }
    }

    /// Streams all layers, largest first, on up to `jobs` threads. The first failure cancels
    /// the rest; the error reported is the failing layer's own (not a cancellation).
    fn analyze_layers(
        &self,
        store: &dyn BlobStore,
        specs: &[LayerSpec],
    ) -> Result<Vec<Arc<LayerAnalysis>>, Error> {
        let mut order: Vec<usize> = (0..specs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(specs[i].size));
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let results: Mutex<Vec<Outcome>> =
            Mutex::new((0..specs.len()).map(|_| Outcome::NotRun).collect());
        let workers = self.jobs.min(specs.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= order.len() || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let spec = &specs[order[k]];
                    let outcome = self.analyze_one(store, spec, &cancel);
                    if matches!(outcome, Outcome::Done(Err(_))) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(PoisonError::into_inner)[spec.index] = outcome;
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(specs.len());
        let mut cancelled = false;
        for r in results {
            match r {
                Outcome::Done(Ok(l)) => out.push(l),
                Outcome::Done(Err(e)) => return Err(e),
                Outcome::Cancelled | Outcome::NotRun => cancelled = true,
            }
        }
        if cancelled {
            // Only reachable if a cancellation happened without a real error, which the
            // workers never do; keep the audit honest anyway.
            return Err(Error::Source(SourceError::BadLayers {
                reason: "layer analysis was cancelled".into(),
            }));
        }
        Ok(out)
    }

    /// One layer of [`Self::analyze_layers`]: from the layer store, or streamed from `store`
    /// until `cancel` is set.
    fn analyze_one(&self, store: &dyn BlobStore, spec: &LayerSpec, cancel: &AtomicBool) -> Outcome {
        let desc = crate::oci::Descriptor {
            media_type: String::new(),
            digest: spec.digest.clone(),
            size: spec.size,
            platform: None,
            annotations: Default::default(),
            urls: Vec::new(),
        };
        // Analysed while the archive streamed (and drawn then).
        let analysed = store.analysed(&desc);
        let progress = self.progress.as_deref().filter(|_| analysed.is_none());
        if let Some(p) = progress {
            p.layer_started(spec.index, spec.size);
        }
        if let Some(hit) = self.cached(spec) {
            tracing::info!(
                layer = spec.index,
                digest = %spec.digest,
                "layer analysis from the store"
            );
            if let Some(p) = progress {
                p.layer_bytes(spec.index, spec.size);
                p.layer_done(spec.index);
            }
            return Outcome::Done(Ok(hit));
        }
        let started = std::time::Instant::now();
        let stopped = AtomicBool::new(false);
        let r = match analysed {
            Some(a) => layer::check_analysis(a, spec).map_err(Error::from),
            None => store.open(&desc).map_err(Error::from).and_then(|raw| {
                let reader = Watched {
                    inner: raw,
                    cancel,
                    stopped: &stopped,
                    progress,
                    index: spec.index,
                };
                layer::analyze_blob(reader, spec, &self.limits, content_plan())
                    .map(Arc::new)
                    .map_err(Error::from)
            }),
        };
        if let (Some(s), true) = (&self.layer_store, spec.verify_digest) {
            match &r {
                // Blob digest, size and diff_id were all checked: the analysis is of exactly
                // the bytes the key names.
                Ok(l) if spec.diff_id.is_some() => s.put(&self.layer_key(spec), l),
                _ => s.release(&self.layer_key(spec)),
            }
        }
        match &r {
            Ok(l) => tracing::info!(
                layer = spec.index,
                digest = %l.digest,
                compression = ?l.compression,
                bytes = l.size,
                uncompressed = l.uncompressed_size,
                entries = l.entries.len(),
                ms = started.elapsed().as_millis() as u64,
                "layer analysed"
            ),
            Err(e) => tracing::debug!(layer = spec.index, error = %e, "layer failed"),
        }
        if let Some(p) = progress {
            p.layer_done(spec.index);
        }
        // The reader was cut because another layer had already failed: this layer's error is
        // a consequence, not a finding about it.
        if r.is_err() && stopped.load(Ordering::Relaxed) {
            return Outcome::Cancelled;
        }
        Outcome::Done(r)
    }
}

impl Auditor {
    /// The layer-store key of `spec`'s blob for this auditor.
    fn layer_key(&self, spec: &LayerSpec) -> LayerKey {
        LayerKey::new(spec.digest.clone(), &self.fingerprint)
    }

    /// A stored analysis usable for `spec`: digest-verified sources only, same size and
    /// diff_id; re-indexed when the layer sits at another position in this image.
    fn cached(&self, spec: &LayerSpec) -> Option<Arc<LayerAnalysis>> {
        let s = self.layer_store.as_ref().filter(|_| spec.verify_digest)?;
        let hit = s.get(&self.layer_key(spec))?;
        if hit.size != spec.size || spec.diff_id.as_ref().is_some_and(|d| *d != hit.diff_id) {
            return None;
        }
        if hit.index == spec.index {
            return Some(hit);
        }
        Some(Arc::new(LayerAnalysis {
            index: spec.index,
            ..LayerAnalysis::clone(&hit)
        }))
    }
}

/// What became of one layer in [`Auditor::analyze_layers`].
enum Outcome {
    /// Analysed, or failed for a reason of its own.
    Done(Result<Arc<LayerAnalysis>, Error>),
    /// Its stream was cut because another layer failed first.
    Cancelled,
    /// Not started: another layer failed first.
    NotRun,
}

/// Stops reading when another layer failed (and says so in `stopped`), and reports progress.
struct Watched<'a, R> {
    inner: R,
    cancel: &'a AtomicBool,
    stopped: &'a AtomicBool,
    progress: Option<&'a dyn Progress>,
    index: usize,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            self.stopped.store(true, Ordering::Relaxed);
            return Err(io::Error::other("cancelled: another layer failed"));
        }
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p.layer_bytes(self.index, n as u64);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    //! Hostile inputs end in a clear error or an "unknown", never a panic, a hang or
    //! unbounded memory.
    use super::*;
    use crate::digest::Digest;
    use crate::testutil::{gzip, zstd, MemStore, Tar, XorShift};

    fn run(store: MemStore, limits: Limits) -> Result<Report, Error> {
        let src = Source::Blobs(Box::new(store));
        Auditor::builder()
            .limits(limits)
            .jobs(2)
            .build()
            .audit(&src, "test")
            .map(|mut v| v.remove(0))
    }

    fn layer(tar: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        (gzip(&tar), tar)
    }

    /// Audits an image of one gzip layer made of `tar`, with an empty config.
    fn run_layer(tar: Vec<u8>, limits: Limits) -> Result<Report, Error> {
        run(
            MemStore::image(&[layer(tar)], serde_json::json!({})),
            limits,
        )
    }

    #[test]
    fn traversal_and_escaping_links_stay_inside() {
        let tar = Tar::default()
            .file("../../outside.txt", b"traversal\n", 0o644)
            .file("/etc/abs", b"x", 0o644)
            .symlink("etc/escape", "/../../../../etc/shadow")
            .symlink("loop-a", "loop-b")
            .symlink("loop-b", "loop-a")
            .hardlink("etc/hl", "../../etc/passwd")
            .file("a/.wh.", b"", 0o644)
            .finish();
        let r = run(
            MemStore::image(
                &[layer(tar)],
                serde_json::json!({"config": {"Entrypoint": ["/loop-a"], "User": "1000"}}),
            ),
            Limits::default(),
        )
        .unwrap();
        let reasons: Vec<&str> = r.unknowns.iter().map(|u| u.reason.as_str()).collect();
        assert!(
            reasons.iter().any(|x| x.contains("escapes the image root")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|x| x.contains("hard link target escapes")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|x| x.contains("invalid whiteout")),
            "{reasons:?}"
        );
        // The absolute name is cleaned into the image.
        assert!(r.image.files >= 4);
        let cfg003 = r
            .findings
            .iter()
            .find(|f| f.rule == "CFG003")
            .expect("entrypoint through a loop");
        assert!(
            cfg003.message.contains("symlink loop"),
            "{}",
            cfg003.message
        );
    }

    #[test]
    fn digest_size_and_diff_id_mismatches_are_errors_naming_the_layer() {
        let good = Tar::default().file("a", b"hello", 0o644).finish();
        let second = Tar::default().file("b", b"second", 0o644).finish();
        let mut s = MemStore::image(&[layer(good.clone()), layer(second)], serde_json::json!({}));
        s.tamper(1, |b| {
            let n = b.len();
            b[n / 2] ^= 0xff;
        });
        let e = run(s, Limits::default()).unwrap_err().to_string();
        assert!(
            e.starts_with("layer 1 (sha256:") && e.contains("blob digest mismatch"),
            "{e}"
        );

        // A blob longer than its descriptor says.
        let mut s = MemStore::image(&[layer(good.clone())], serde_json::json!({}));
        let m: serde_json::Value = serde_json::from_slice(&s.root).unwrap();
        let mut m2 = m.clone();
        m2["layers"][0]["size"] = serde_json::json!(m["layers"][0]["size"].as_u64().unwrap() - 10);
        s.root = serde_json::to_vec(&m2).unwrap();
        let e = run(s, Limits::default()).unwrap_err().to_string();
        let (real, said) = (gzip(&good).len(), gzip(&good).len() - 10);
        assert!(
            e.starts_with("layer 0 (sha256:")
                && e.ends_with(&format!("blob is {real} bytes, the manifest says {said}")),
            "{e}"
        );

        // Right blob, wrong diff_id in the config.
        let other = Tar::default().file("b", b"other", 0o644).finish();
        let s = MemStore::image(&[(gzip(&good), other)], serde_json::json!({}));
        let e = run(s, Limits::default()).unwrap_err().to_string();
        assert!(e.contains("does not match diff_id"), "{e}");
    }

    /// Forged: a layer that is an ELF binary rather than a tar (plain and gzip), a config
    /// without os/architecture. See: issue #12.
    #[test]
    fn error_messages_are_one_line_name_the_layer_and_say_what_is_wrong() {
        let elf = std::fs::read("/bin/ls").unwrap()[..20_000].to_vec();
        for (blob, after) in [(elf.clone(), ""), (gzip(&elf), " after gzip decompression")] {
            let d = Digest::sha256_of(&blob);
            let s = MemStore::image(&[(blob, elf.clone())], serde_json::json!({}));
            let e = run(s, Limits::default()).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("layer 0 ({d}, application/vnd.oci.image.layer.v1.tar+gzip): not a tar archive{after}: it starts with \"\\x7fELF\\x02\\x01\\x01\\x00\"")
            );
        }
        // A header the tar reader refuses, with control characters in its name field: the
        // reason is escaped, never raw bytes across lines.
        let mut tar = Tar::default().file("ok", b"x", 0o644).finish();
        tar[..8].copy_from_slice(b"a\nb\x1b[2J\x07");
        tar[124..136].copy_from_slice(b"\x01\x02zz\n\n\n\n\n\n\n\n");
        fix_checksums(&mut tar);
        let e = run_layer(tar, Limits::default()).unwrap_err().to_string();
        assert!(
            e.starts_with("layer 0 (sha256:")
                && e.contains("a\\nb\\u{1b}[2J\\u{7}")
                && !e.chars().any(char::is_control),
            "{e:?}"
        );
        // A config without os or architecture: `unknown`, not `/`.
        let tar = Tar::default().file("a", b"1", 0o644).finish();
        let s = MemStore::image(
            &[layer(tar)],
            serde_json::json!({"os": "", "architecture": ""}),
        );
        let e = Auditor::builder()
            .platform(PlatformChoice::Exact("linux/arm64".parse().unwrap()))
            .build()
            .audit(&Source::Blobs(Box::new(s)), "t")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "no image for platform linux/arm64 (available: unknown/unknown)"
        );
    }

    /// A blob far longer than declared: counted up to the bound, then "more than".
    #[test]
    fn overlong_blobs_state_their_size_up_to_the_counting_bound() {
        use crate::limits::SIZE_MISMATCH_COUNT_BYTES;
        let spec = LayerSpec {
            index: 4,
            digest: Digest::sha256_of(b""),
            size: 1000,
            diff_id: None,
            verify_digest: true,
            media_type: String::new(),
        };
        let run = |len: u64| {
            layer::analyze_blob(
                io::repeat(0).take(len),
                &spec,
                &Limits::default(),
                content_plan(),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(run(5000).ends_with("blob is 5000 bytes, the manifest says 1000"));
        let far = run(1000 + 2 * SIZE_MISMATCH_COUNT_BYTES);
        assert!(
            far.ends_with(&format!(
                "blob is more than {} bytes, the manifest says 1000",
                1001 + SIZE_MISMATCH_COUNT_BYTES
            )),
            "{far}"
        );
    }

    #[test]
    fn truncated_streams_are_errors() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let tar = Tar::default().file("f", &big, 0o644).finish();
        let gz = gzip(&tar);
        // A consistent store (digest of the truncated bytes) with a truncated gzip stream.
        let cut = gz[..gz.len() / 2].to_vec();
        let s = MemStore::image(&[(cut, tar.clone())], serde_json::json!({}));
        let e = run(s, Limits::default()).unwrap_err().to_string();
        assert!(
            e.contains("layer 0") && (e.contains("truncated") || e.contains("gzip")),
            "{e}"
        );
        // A truncated plain tar: data ends inside a file.
        let cut = tar[..tar.len() - 600_000].to_vec();
        let s = MemStore::image(&[(cut.clone(), cut)], serde_json::json!({}));
        let e = run(s, Limits::default()).unwrap_err().to_string();
        assert!(e.contains("layer 0"), "{e}");
    }

    /// Rewrites the checksum of every ustar header block, so that a mutated header reaches
    /// the code behind the tar reader instead of failing its checksum test.
    fn fix_checksums(tar: &mut [u8]) {
        for h in tar
            .chunks_exact_mut(512)
            .filter(|b| &b[257..262] == b"ustar")
        {
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
    }

    #[test]
    fn mutated_tar_headers_end_in_a_report_or_an_error() {
        let passwd = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/sbin/nologin\n";
        let elf = {
            let mut e = b"\x7fELF\x02\x01\x01".to_vec();
            e.resize(600, 0);
            e
        };
        let base = Tar::default()
            .dir("etc/", 0o755)
            .file("etc/passwd", passwd, 0o644)
            .dir("bin/", 0o755)
            .file("bin/sh", &elf, 0o755)
            .symlink("bin/ash", "sh")
            .hardlink("bin/sh2", "bin/sh")
            .dir("app/", 0o755)
            .file("app/server", &elf, 0o755)
            .file("root/.netrc", b"machine x login u password p\n", 0o600)
            .finish();
        let top = Tar::default()
            .file("bin/.wh.ash", b"", 0o644)
            .dir("app/", 0o755)
            .file("app/.wh..wh..opq", b"", 0o644)
            .symlink("app/server", "/bin/sh2")
            .file("root/.wh..netrc", b"", 0o644)
            .hardlink("etc/passwd2", "etc/passwd")
            .finish();
        let cfg = serde_json::json!({"config": {"Entrypoint": ["/app/server"], "User": "app"}});
        // Header fields (name, mode, size, type, link name, ustar prefix) set to values tar
        // readers and whiteout logic must question.
        let names: [&[u8]; 8] = [
            b"../",
            b"/",
            b".wh.",
            b".wh..wh..opq",
            b"\0",
            b"..",
            b"//",
            b"\xff",
        ];
        let types = b"0125673gxLKS\0";
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.below(n);
        let (mut reports, mut errors) = (0, 0);
        for _ in 0..300 {
            let (mut a, mut b) = (base.clone(), top.clone());
            for _ in 0..1 + next(3) {
                let t = if next(2) == 0 { &mut a } else { &mut b };
                let headers: Vec<usize> = (0..t.len() / 512)
                    .filter(|i| &t[i * 512 + 257..i * 512 + 262] == b"ustar")
                    .collect();
                let h = headers[next(headers.len())] * 512;
                match next(5) {
                    0 => {
                        let s = names[next(names.len())];
                        let at = h + next(100 - s.len());
                        t[at..at + s.len()].copy_from_slice(s);
                    }
                    1 => t[h + 156] = types[next(types.len())],
                    2 => {
                        let v = [
                            &b"77777777777"[..],
                            b"00000001000",
                            b"00000000000",
                            b"7777777\0",
                            b"-1",
                        ][next(5)];
                        let at = [124, 100, 108, 116][next(4)];
                        t[at + h..at + h + v.len()].copy_from_slice(v);
                    }
                    3 => {
                        let s = names[next(names.len())];
                        t[h + 157..h + 157 + s.len()].copy_from_slice(s);
                    }
                    _ => {
                        let at = h + 345 + next(150);
                        t[at] = b"/.a\0"[next(4)];
                    }
                }
                fix_checksums(t);
            }
            match run(
                MemStore::image(&[(a.clone(), a), (b.clone(), b)], cfg.clone()),
                Limits::default(),
            ) {
                Ok(_) => reports += 1,
                Err(e) => {
                    assert!(e.to_string().starts_with("layer "), "{e}");
                    errors += 1;
                }
            }
        }
        assert!(
            reports > 0 && errors > 0,
            "{reports} reports, {errors} errors"
        );
    }

    #[test]
    fn tar_extension_records_are_bounded() {
        // A 2 MiB long name is refused before the tar reader holds it, at any point of a
        // layer whose earlier entries were not read to the end (real-sized long names and
        // PAX paths: layer::tests::long_names_and_pax_paths_apply).
        let big = vec![b'a'; 2 << 20];
        let tar = Tar::default()
            .file("skipped", &vec![7u8; 3 << 20], 0o644)
            .typed("././@LongLink", b'L', &big)
            .file("f", b"x", 0o644)
            .finish();
        let e = run_layer(tar, Limits::default()).unwrap_err().to_string();
        assert!(
            e.starts_with("layer 0") && e.contains("GNU long name or PAX records"),
            "{e}"
        );
    }

    #[test]
    fn decompression_bombs_stop_at_the_bound() {
        let zeros = vec![0u8; 8 << 20];
        let tar = Tar::default().file("bomb", &zeros, 0o644).finish();
        let limits = Limits {
            bomb_min_bytes: 1 << 20,
            bomb_max_ratio: 100,
            ..Limits::default()
        };
        for blob in [gzip(&tar), zstd(&tar)] {
            let s = MemStore::image(&[(blob, tar.clone())], serde_json::json!({}));
            let e = run(s, limits.clone()).unwrap_err().to_string();
            assert!(e.contains("decompression bomb"), "{e}");
        }
        let limits = Limits {
            max_layer_uncompressed: 1 << 20,
            ..Limits::default()
        };
        let s = MemStore::image(&[layer(tar)], serde_json::json!({}));
        let e = run(s, limits).unwrap_err().to_string();
        assert!(e.contains("expands past"), "{e}");
    }

    #[test]
    fn entry_and_path_bounds() {
        let mut t = Tar::default();
        for i in 0..50 {
            t = t.file(&format!("f{i}"), b"x", 0o644);
        }
        let tar = t.finish();
        let limits = Limits {
            max_entries_per_layer: 10,
            ..Limits::default()
        };
        let e = run_layer(tar, limits).unwrap_err().to_string();
        assert!(e.contains("more than 10 tar entries"), "{e}");
        let limits = Limits {
            max_path_bytes: 8,
            ..Limits::default()
        };
        let tar = Tar::default()
            .file("a-very-long-name", b"x", 0o644)
            .finish();
        let r = run_layer(tar, limits).unwrap();
        assert!(r
            .unknowns
            .iter()
            .any(|u| u.reason.contains("longer than the limit")));
    }

    #[test]
    fn malformed_elf_is_an_unknown_not_a_failure() {
        let mut junk = b"\x7fELF\x02\x01\x01".to_vec();
        junk.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
        let mut trunc = b"\x7fELF".to_vec();
        trunc.push(2);
        let mut hdr_only = vec![0u8; 64];
        hdr_only[..4].copy_from_slice(b"\x7fELF");
        hdr_only[4] = 2;
        hdr_only[5] = 1;
        hdr_only[6] = 1;
        hdr_only[16] = 2; // ET_EXEC
        hdr_only[18] = 62;
        hdr_only[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes()); // phoff far away
        hdr_only[54] = 56;
        hdr_only[56] = 3; // phnum
        let tar = Tar::default()
            .file("bin/junk", &junk, 0o755)
            .file("bin/trunc", &trunc, 0o755)
            .file("bin/hdr", &hdr_only, 0o755)
            .finish();
        let r = run_layer(tar, Limits::default()).unwrap();
        let paths: Vec<&str> = r
            .unknowns
            .iter()
            .filter_map(|u| u.path.as_deref())
            .collect();
        for p in ["/bin/junk", "/bin/trunc", "/bin/hdr"] {
            assert!(
                paths.contains(&p),
                "{p} not reported as unknown: {:?}",
                r.unknowns
            );
        }
    }

    #[test]
    fn missing_blobs_and_bad_documents_are_errors() {
        let tar = Tar::default().file("a", b"1", 0o644).finish();
        let mut s = MemStore::image(&[layer(tar)], serde_json::json!({}));
        let key = s
            .blobs
            .keys()
            .find(|k| s.blobs[*k].len() > 100)
            .cloned()
            .unwrap();
        s.blobs.remove(&key);
        let e = run(s, Limits::default()).unwrap_err().to_string();
        assert!(e.contains("is missing"), "{e}");
        let s = MemStore {
            blobs: HashMap::default(),
            root: b"{not json".to_vec(),
        };
        assert!(run(s, Limits::default()).is_err());
        let s = MemStore {
            blobs: HashMap::default(),
            root: br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
        };
        assert!(run(s, Limits::default())
            .unwrap_err()
            .to_string()
            .contains("no image manifests"));
    }

    #[test]
    fn layer_store_serves_shared_layers_and_keeps_reports_identical() {
        use crate::store::{LayerStore, MemoryStore};
        let base = Tar::default()
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
            .file("bin/sh", b"#!/x\n", 0o755)
            .finish();
        let app = Tar::default()
            .file("app/run", b"#!/bin/sh\necho hi\n", 0o755)
            .finish();
        let other = Tar::default().file("srv/x", b"x", 0o644).finish();
        let cfg = serde_json::json!({"config": {"Entrypoint": ["/app/run"], "User": "0"}});
        let cache = Arc::new(MemoryStore::new(64 << 20));
        let audit = |store: MemStore, cache: Option<Arc<MemoryStore>>| {
            let mut b = Auditor::builder().jobs(2);
            if let Some(c) = cache {
                b = b.layer_store(c as Arc<dyn LayerStore>);
            }
            b.build()
                .audit(&Source::Blobs(Box::new(store)), "test")
                .unwrap()
                .remove(0)
        };
        let img1 = || MemStore::image(&[layer(base.clone()), layer(app.clone())], cfg.clone());
        let plain = audit(img1(), None);
        let cold = audit(img1(), Some(Arc::clone(&cache)));
        assert_eq!(cache.stats().misses, 2);
        let warm = audit(img1(), Some(Arc::clone(&cache)));
        assert_eq!(cache.stats().hits, 2, "{:?}", cache.stats());
        let json = |r: &Report| serde_json::to_value(r).unwrap();
        assert_eq!(json(&plain), json(&cold));
        assert_eq!(json(&plain), json(&warm));
        assert!(cache.stats().bytes > 0 && cache.stats().entries == 2);

        // The base at another position: served from the cache, re-indexed.
        let img2 = MemStore::image(&[layer(other.clone()), layer(base.clone())], cfg.clone());
        let shifted = audit(img2, Some(Arc::clone(&cache)));
        assert_eq!(cache.stats().hits, 3);
        let uncached = audit(
            MemStore::image(&[layer(other), layer(base.clone())], cfg.clone()),
            None,
        );
        assert_eq!(json(&shifted), json(&uncached));

        // A config whose diff_id disagrees is analysed afresh and fails as without a cache.
        let wrong = Tar::default().file("etc/passwd", b"other", 0o644).finish();
        let s = MemStore::image(&[(gzip(&base), wrong)], cfg);
        let e = Auditor::builder()
            .layer_store(Arc::clone(&cache) as Arc<dyn LayerStore>)
            .build()
            .audit(&Source::Blobs(Box::new(s)), "t");
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("does not match diff_id"));
    }

    use std::collections::HashMap;
}
