//! Registry sweeps: audit every image of a registry, of some repositories, or of a list, each
//! manifest once and each layer once, spread over shards (feature `registry`).
//!
//! A sweep runs in four steps, each bounded:
//! 1. **Enumerate** the [`Target`]s: a registry's repositories from its catalog, a
//!    repository's tags ([`RegistryPool::catalog`], [`RegistryPool::tags`], paginated), an
//!    image as given. At most [`MAX_SWEEP_REFERENCES`] references.
//! 2. **Resolve** every reference to its manifest (or index) digest, `parallel` at a time,
//!    and keep each digest once: an image pushed under ten names and tags is audited once.
//!    Every shard resolves every reference, so the split below needs no coordination.
//! 3. **Select** the digests of this [`Shard`] (a hash of the digest modulo the shard count:
//!    `N` pods of a Kubernetes Indexed Job cover every manifest exactly once) that are not
//!    already done (digests reported by an earlier run, [`reported_digests`]).
//! 4. **Audit** them, `parallel` at a time, through one [`Auditor`] whose layer store sits
//!    behind a [`SingleFlight`]: concurrent audits that share a base layer analyse it once,
//!    and with a shared store (disk, Redis) behind it, once for every shard and every run.
//!
//! Rate limits: every request goes through the registry client's retries, so a 429 waits
//! for its `Retry-After` (up to [`REGISTRY_MAX_RETRY_AFTER_SECS`]) before trying again.
//!
//! The library prints nothing: each image's reports go to a callback as they are done, and
//! the run ends with a [`Summary`].
//!
//! [`REGISTRY_MAX_RETRY_AFTER_SECS`]: crate::limits::REGISTRY_MAX_RETRY_AFTER_SECS

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::audit::{Auditor, AuditorBuilder};
use crate::digest::Digest;
use crate::error::{Error, SourceError};
use crate::limits::{MAX_SWEEP_PARALLEL, MAX_SWEEP_REFERENCES};
use crate::oci::Descriptor;
use crate::report::Report;
use crate::source::{BlobStore, ImageReference, RegistryPool, RootObject, Source};
use crate::store::{LayerStore, MemoryStore, SingleFlight, Tiered};

/// What a sweep covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every tag of every repository of a registry (`host[:port]`), from its catalog.
    Registry(String),
    /// Every tag of a repository.
    Repository(ImageReference),
    /// One image (by tag or digest).
    Image(ImageReference),
}

impl Target {
    /// `REGISTRY` (a host, no `/`), `REGISTRY/REPO` (no tag or digest: every tag), or an
    /// image reference with a tag or digest.
    pub fn parse(s: &str) -> Result<Self, SourceError> {
        let s = s.trim().trim_start_matches("docker://");
        if !s.contains('/') {
            // A registry host: it must read as one in front of a repository.
            let r = ImageReference::parse(&format!("{s}/catalog"))?;
            if r.registry() != s {
                return Err(SourceError::BadReference {
                    reference: s.chars().take(300).collect(),
                    reason: "not a registry host (write HOST[:PORT], HOST/REPO or HOST/REPO:TAG)"
                        .into(),
                });
            }
            return Ok(Self::Registry(s.to_string()));
        }
        let r = ImageReference::parse(s)?;
        Ok(if r.tag().is_none() && r.digest().is_none() {
            Self::Repository(r)
        } else {
            Self::Image(r)
        })
    }
}

/// Which part of a sweep one process takes: `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Self = Self { index: 0, count: 1 };

    /// Shard `index` of `count` (`index < count`).
    pub fn new(index: u64, count: u64) -> Result<Self, SweepError> {
        if count == 0 || index >= count {
            return Err(SweepError::BadShard {
                reason: format!("{index}/{count}: the index must be below the count"),
            });
        }
        Ok(Self { index, count })
    }

    /// `I/N`, or the index and count as Kubernetes gives an Indexed Job's pods
    /// (`JOB_COMPLETION_INDEX`, `JOB_COMPLETIONS`).
    pub fn parse(index: &str, count: &str) -> Result<Self, SweepError> {
        let num = |v: &str, what: &str| {
            v.trim().parse::<u64>().map_err(|_| SweepError::BadShard {
                reason: format!(
                    "{what} {:?} is not a number",
                    v.chars().take(40).collect::<String>()
                ),
            })
        };
        Self::new(num(index, "index")?, num(count, "count")?)
    }

    /// Whether the manifest (or index) `digest` is this shard's: the first 8 bytes of the
    /// SHA-256 of its text, modulo the count (stable across processes and versions).
    pub fn owns(&self, digest: &Digest) -> bool {
        let h = sha2::Sha256::digest(digest.to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        u64::from_be_bytes(first) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, SweepError> {
        let (i, n) = s.split_once('/').ok_or_else(|| SweepError::BadShard {
            reason: "expected I/N, e.g. 0/4".into(),
        })?;
        Self::parse(i, n)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A sweep that cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// A shard that does not exist.
    #[error("shard {reason}")]
    BadShard {
        /// What is wrong.
        reason: String,
    },
    /// The targets name more images than a sweep takes.
    #[error("more than {limit} image references to sweep: split the sweep by repository")]
    TooManyReferences {
        /// The bound ([`MAX_SWEEP_REFERENCES`]).
        limit: usize,
    },
}

/// An image (or a listing) that could not be audited, and why; the sweep goes on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    /// The reference, registry or repository.
    pub image: String,
    /// One line.
    pub error: String,
}

/// What a sweep did (JSON field names are stable).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// This shard, `I/N`.
    pub shard: String,
    /// Image references enumerated (all shards).
    pub references: usize,
    /// Distinct manifests (or indexes) they resolve to (all shards).
    pub manifests: usize,
    /// Of those, this shard's.
    pub in_shard: usize,
    /// This shard's manifests skipped: already reported (resume).
    pub resumed: usize,
    /// Manifests audited now.
    pub audited: usize,
    /// Reports written (one per image; several for a multi-platform index).
    pub reports: usize,
    /// Layers of the audited images (each image's count, summed).
    pub layers_listed: u64,
    /// Layers analysed (their blobs pulled): not in the layer store, nor analysed by another
    /// audit of this sweep.
    pub layers_analysed: u64,
    /// Layers served by the layer store.
    pub layers_from_store: u64,
    /// Blob bytes pulled (configs and layers; manifests not counted).
    pub bytes_pulled: u64,
    /// Findings by severity, over the reports written.
    pub findings: BTreeMap<&'static str, usize>,
    /// Listings, references and images that failed.
    pub failures: Vec<Failure>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// A configured sweep. Build one with [`Sweep::new`], then [`Sweep::run`].
pub struct Sweep {
    pool: RegistryPool,
    auditor: Auditor,
    flight: Arc<SingleFlight>,
    bytes: Arc<AtomicU64>,
    shard: Shard,
    parallel: usize,
    done: HashSet<Digest>,
    /// [`MAX_SWEEP_REFERENCES`]; lowered by tests.
    max_references: usize,
}

impl Sweep {
    /// A sweep pulling through `pool` and auditing with `builder`'s settings. Layer analyses
    /// go through a memory store of `memory_bytes` in front of `store` (disk or Redis, when
    /// given); `parallel` images are audited at once (1 to [`MAX_SWEEP_PARALLEL`]).
    pub fn new(
        pool: RegistryPool,
        builder: AuditorBuilder,
        store: Option<Arc<dyn LayerStore>>,
        memory_bytes: u64,
        parallel: usize,
        max_wait: Duration,
    ) -> Self {
        let memory: Arc<dyn LayerStore> = Arc::new(MemoryStore::new(memory_bytes));
        let inner = match store {
            Some(back) => Arc::new(Tiered::new(memory, back)) as Arc<dyn LayerStore>,
            None => memory,
        };
        let flight = Arc::new(SingleFlight::new(inner, max_wait));
        Self {
            pool,
            auditor: builder
                .layer_store(Arc::clone(&flight) as Arc<dyn LayerStore>)
                .build(),
            flight,
            bytes: Arc::default(),
            shard: Shard::ALL,
            parallel: parallel.clamp(1, MAX_SWEEP_PARALLEL),
            done: HashSet::new(),
            max_references: MAX_SWEEP_REFERENCES,
        }
    }

    /// Takes only this shard's manifests.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Skips these manifest and index digests (reported by an earlier run).
    pub fn skip(mut self, done: impl IntoIterator<Item = Digest>) -> Self {
        self.done.extend(done);
        self
    }

    /// The auditor (its policy judges the reports).
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// Runs the sweep; `on_reports` gets each audited image's reports (from worker threads,
    /// one call at a time per image). Fails only when the sweep cannot start.
    pub fn run(
        &self,
        targets: &[Target],
        on_reports: impl Fn(&[Report]) + Sync,
    ) -> Result<Summary, SweepError> {
        let started = Instant::now();
        let mut summary = Summary {
            shard: self.shard.to_string(),
            ..Summary::default()
        };
        let refs = self.enumerate(targets, &mut summary.failures)?;
        summary.references = refs.len();

        // Resolve, `parallel` at a time; keep each digest once, under its first reference.
        let resolved = self.each(&refs, |r| {
            self.pool
                .store(r.clone())
                .and_then(|s| s.resolve_digest())
                .map_err(|e| line(&e))
        });
        let mut manifests: BTreeMap<Digest, ImageReference> = BTreeMap::new();
        for (r, res) in refs.iter().zip(resolved) {
            match res {
                Ok(d) => {
                    manifests
                        .entry(d.clone())
                        .or_insert_with(|| r.with_digest(d));
                }
                Err(error) => summary.failures.push(Failure {
                    image: r.to_string(),
                    error,
                }),
            }
        }
        summary.manifests = manifests.len();
        let mine: Vec<ImageReference> = manifests
            .into_iter()
            .filter(|(d, _)| self.shard.owns(d))
            .filter_map(|(d, r)| {
                summary.in_shard += 1;
                let done = self.done.contains(&d);
                summary.resumed += usize::from(done);
                (!done).then_some(r)
            })
            .collect();

        let layers = AtomicU64::new(0);
        let findings = Mutex::new(BTreeMap::new());
        let reports = AtomicUsize::new(0);
        let audited = self.each(&mine, |r| {
            let name = r.to_string();
            let store = self.pool.store(r.clone()).map_err(Error::from)?;
            let src = Source::Blobs(Box::new(Counted {
                inner: store,
                bytes: Arc::clone(&self.bytes),
            }));
            let out = self.auditor.audit(&src, &name)?;
            let mut f = findings.lock().unwrap_or_else(PoisonError::into_inner);
            for rep in &out {
                let s = &rep.summary;
                for (sev, n) in [
                    ("critical", s.critical),
                    ("high", s.high),
                    ("medium", s.medium),
                    ("low", s.low),
                    ("info", s.info),
                ] {
                    *f.entry(sev).or_insert(0) += n;
                }
                layers.fetch_add(rep.layers.len() as u64, Ordering::Relaxed);
            }
            drop(f);
            reports.fetch_add(out.len(), Ordering::Relaxed);
            on_reports(&out);
            Ok::<(), Error>(())
        });
        for (r, res) in mine.iter().zip(audited) {
            match res {
                Ok(()) => summary.audited += 1,
                Err(e) => summary.failures.push(Failure {
                    image: r.to_string(),
                    error: line(&e),
                }),
            }
        }
        let st = self.flight.stats();
        summary.reports = reports.into_inner();
        summary.layers_listed = layers.into_inner();
        summary.layers_analysed = st.misses;
        summary.layers_from_store = st.hits;
        summary.bytes_pulled = self.bytes.load(Ordering::Relaxed);
        summary.findings = findings
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// The image references of `targets`, in order, each once; listings that fail are
    /// failures.
    fn enumerate(
        &self,
        targets: &[Target],
        failures: &mut Vec<Failure>,
    ) -> Result<Vec<ImageReference>, SweepError> {
        let mut repos: Vec<ImageReference> = Vec::new();
        let mut refs: Vec<ImageReference> = Vec::new();
        for t in targets {
            match t {
                Target::Image(r) => refs.push(r.clone()),
                Target::Repository(r) => repos.push(r.clone()),
                Target::Registry(host) => match self.pool.catalog(host) {
                    Ok(names) => {
                        for n in names {
                            match ImageReference::parse(&format!("{host}/{n}")) {
                                Ok(r) => repos.push(r),
                                Err(e) => failures.push(Failure {
                                    image: format!("{host}/{n}"),
                                    error: line(&e),
                                }),
                            }
                        }
                    }
                    Err(e) => failures.push(Failure {
                        image: host.clone(),
                        error: line(&e),
                    }),
                },
            }
        }
        let tags = self.each(&repos, |r| self.pool.tags(r).map_err(|e| line(&e)));
        for (repo, res) in repos.iter().zip(tags) {
            match res {
                Ok(tags) => {
                    for t in tags {
                        match ImageReference::parse(&format!("{}:{t}", repo.name())) {
                            Ok(r) => refs.push(r),
                            Err(e) => failures.push(Failure {
                                image: format!("{}:{t}", repo.name()),
                                error: line(&e),
                            }),
                        }
                    }
                }
                Err(error) => failures.push(Failure {
                    image: repo.name(),
                    error,
                }),
            }
            if refs.len() > self.max_references {
                break;
            }
        }
        if refs.len() > self.max_references {
            return Err(SweepError::TooManyReferences {
                limit: self.max_references,
            });
        }
        let mut seen = HashSet::new();
        refs.retain(|r| seen.insert(r.to_string()));
        Ok(refs)
    }

    /// `f` over `items` on `parallel` threads; results in the items' order.
    fn each<T: Sync, R: Send>(&self, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
        let next = AtomicUsize::new(0);
        let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..self.parallel.min(items.len()) {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(k) else { break };
                    let r = f(item);
                    out.lock().unwrap_or_else(PoisonError::into_inner)[k] = Some(r);
                });
            }
        });
        out.into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .map(|r| r.unwrap_or_else(|| unreachable!("every item is done before the scope ends")))
            .collect()
    }
}

/// The manifest and index digests of reports written by an earlier sweep (its JSON Lines,
/// read a line at a time): what a resumed sweep skips. A line that is not a report (cut short
/// by a killed run) is ignored: that image is audited again.
pub fn reported_digests(jsonl: impl std::io::BufRead) -> std::io::Result<HashSet<Digest>> {
    let mut done = HashSet::new();
    for line in jsonl.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line?) else {
            continue;
        };
        for k in ["index_digest", "manifest_digest"] {
            if let Some(d) = v["image"][k].as_str().and_then(|d| d.parse().ok()) {
                done.insert(d);
            }
        }
    }
    Ok(done)
}

/// An error as one printable line (text from registries and images goes into the summary).
fn line(e: &dyn fmt::Display) -> String {
    crate::error::one_line(&e.to_string()).into_owned()
}

/// A blob store that counts the blob bytes read through it.
struct Counted<S> {
    inner: S,
    bytes: Arc<AtomicU64>,
}

impl<S: BlobStore> BlobStore for Counted<S> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        self.inner.root()
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        Ok(Box::new(CountedRead {
            inner: self.inner.open(desc)?,
            bytes: &self.bytes,
        }))
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn verifies_layer_digests(&self) -> bool {
        self.inner.verifies_layer_digests()
    }
}

struct CountedRead<'a, R> {
    inner: R,
    bytes: &'a AtomicU64,
}

impl<R: Read> Read for CountedRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_registry_repository_image() {
        assert_eq!(
            Target::parse("localhost:5000").unwrap(),
            Target::Registry("localhost:5000".into())
        );
        assert_eq!(
            Target::parse("reg.example.com").unwrap(),
            Target::Registry("reg.example.com".into())
        );
        assert!(Target::parse("alpine").is_err(), "not a registry host");
        assert!(matches!(
            Target::parse("reg.example.com/team/app").unwrap(),
            Target::Repository(_)
        ));
        assert!(matches!(
            Target::parse("docker://reg.example.com/team/app:1").unwrap(),
            Target::Image(_)
        ));
    }

    #[test]
    fn shards_split_every_digest_exactly_once() {
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert!(Shard::parse("a", "2").is_err());
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        let mut per = [0; 3];
        for i in 0..300u32 {
            let d = Digest::sha256_of(&i.to_le_bytes());
            let owners: Vec<usize> = (0..3).filter(|&s| shards[s].owns(&d)).collect();
            assert_eq!(owners.len(), 1);
            per[owners[0]] += 1;
        }
        assert!(per.iter().all(|&n| n > 60), "spread: {per:?}");
        assert!(Shard::ALL.owns(&Digest::sha256_of(b"x")));
    }

    fn sweep(parallel: usize) -> Sweep {
        let pool = RegistryPool::new(&crate::source::SourceOptions::new()).unwrap();
        Sweep::new(
            pool,
            Auditor::builder(),
            None,
            1 << 20,
            parallel,
            Duration::from_secs(1),
        )
    }

    #[test]
    fn sweep_bounds_parallelism_and_references() {
        assert_eq!(sweep(0).parallel, 1);
        assert_eq!(sweep(10_000).parallel, MAX_SWEEP_PARALLEL);
        let mut s = sweep(2);
        s.max_references = 3;
        let targets: Vec<Target> = (0..4)
            .map(|i| Target::parse(&format!("r.example/a:{i}")).unwrap())
            .collect();
        let e = s.run(&targets, |_| {}).unwrap_err();
        assert!(
            matches!(e, SweepError::TooManyReferences { limit: 3 }),
            "{e}"
        );
        assert_eq!(MAX_SWEEP_REFERENCES, sweep(1).max_references);
    }

    #[test]
    fn reported_digests_skip_cut_lines() {
        let d1 = Digest::sha256_of(b"1");
        let d2 = Digest::sha256_of(b"2");
        let text = format!(
            "{{\"image\":{{\"manifest_digest\":\"{d1}\"}}}}\n{{\"image\":{{\"index_digest\":\"{d2}\",\"manifest_digest\":null}}}}\n{{\"image\":{{\"manifest_di"
        );
        let done = reported_digests(text.as_bytes()).unwrap();
        assert_eq!(done, HashSet::from([d1, d2]));
    }
}
