//! One file per entry under a directory, shared safely by concurrent processes.
//!
//! ```text
//! DIR/layers/<first two hex digits of the digest>/layer_v<version>_<fingerprint>_<algorithm>_<hex>
//! DIR/layers/<..>/.tmp-<pid>-<n>      a write in progress (or left by a killed writer)
//! ```
//!
//! Writes go to a temporary file in the entry's directory and are renamed over the entry
//! (atomic on POSIX filesystems), so a reader sees a whole old entry, a whole new one, or
//! none; a writer killed mid-write leaves only a temporary file, removed once it is older
//! than [`DISK_STORE_STALE_TEMP_SECS`]. A torn or bit-flipped entry fails its checksum and is
//! removed. Recency is the file's modification time, refreshed on every hit; past the size
//! bound the oldest entries are removed until the store is at 90 % of it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::codec::{self, Seal};
use super::{Counters, LayerKey, LayerStore, StoreError, StoreStats};
use crate::layer::{LayerAnalysis, ANALYSIS_VERSION};
use crate::limits::{DISK_STORE_STALE_TEMP_SECS, MAX_STORE_ENTRY_BYTES};

const ENTRY_PREFIX: &str = "layer_";
const TEMP_PREFIX: &str = ".tmp-";

/// A [`LayerStore`] in a directory (the CLI's default: `$XDG_CACHE_HOME/imgaudit`).
pub struct DiskStore {
    root: PathBuf,
    max_bytes: u64,
    /// Bytes in the store as last counted plus what this process wrote since; `None` until the
    /// first write counts them.
    estimate: Mutex<Option<u64>>,
    temp_seq: AtomicU64,
    counters: Counters,
}

/// What [`DiskStore::info`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskInfo {
    /// The entries directory.
    pub dir: PathBuf,
    /// Entries of this build's analysis version.
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Entries of other analysis versions (never read; `prune` removes them).
    pub foreign_entries: u64,
    /// Their bytes.
    pub foreign_bytes: u64,
    /// Temporary files (writes in progress or left by killed writers).
    pub temp_files: u64,
    /// The size bound.
    pub max_bytes: u64,
}

/// What [`DiskStore::prune`] or [`DiskStore::clear`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed.
    pub entries: u64,
    /// Bytes freed.
    pub bytes: u64,
    /// Temporary files removed.
    pub temp_files: u64,
}

/// A temporary file and its modification time.
type Temp = (PathBuf, SystemTime);

struct Found {
    path: PathBuf,
    len: u64,
    mtime: SystemTime,
    current: bool,
}

impl DiskStore {
    /// The store in `dir` (created if missing), holding at most about `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, StoreError> {
        let root = dir.join("layers");
        fs::create_dir_all(&root).map_err(|error| StoreError::Io {
            path: root.clone(),
            error,
        })?;
        Ok(Self {
            root,
            max_bytes,
            estimate: Mutex::new(None),
            temp_seq: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    /// The entries directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The file an entry is kept in.
    pub fn path_of(&self, key: &LayerKey) -> PathBuf {
        let hex = key.digest().hex();
        self.root
            .join(&hex[..2.min(hex.len())])
            .join(key.name().replace(':', "_"))
    }

    /// Entries, sizes and temporary files.
    pub fn info(&self) -> Result<DiskInfo, StoreError> {
        let (found, temps) = self.scan()?;
        let mut info = DiskInfo {
            dir: self.root.clone(),
            temp_files: temps.len() as u64,
            max_bytes: self.max_bytes,
            ..DiskInfo::default()
        };
        for f in &found {
            if f.current {
                info.entries += 1;
                info.bytes += f.len;
            } else {
                info.foreign_entries += 1;
                info.foreign_bytes += f.len;
            }
        }
        Ok(info)
    }

    /// Removes entries of other analysis versions, entries that do not decode, temporary files
    /// left by killed writers, and the least recently used entries past the size bound.
    pub fn prune(&self) -> Result<Pruned, StoreError> {
        let (found, temps) = self.scan()?;
        let mut pruned = Pruned {
            temp_files: self.remove_stale(&temps, Duration::from_secs(DISK_STORE_STALE_TEMP_SECS)),
            ..Pruned::default()
        };
        let mut keep = Vec::new();
        for f in found {
            if f.current && self.verify_file(&f.path) {
                keep.push(f);
            } else if remove(&f.path) {
                pruned.entries += 1;
                pruned.bytes += f.len;
            }
        }
        let (n, bytes, total) = self.evict(keep);
        pruned.entries += n;
        pruned.bytes += bytes;
        *self.estimate.lock().unwrap_or_else(PoisonError::into_inner) = Some(total);
        Ok(pruned)
    }

    /// Removes every entry and temporary file (temporary files of writes in progress too: the
    /// writer's rename then fails and its entry is dropped).
    pub fn clear(&self) -> Result<Pruned, StoreError> {
        let (found, temps) = self.scan()?;
        let mut pruned = Pruned {
            temp_files: self.remove_stale(&temps, Duration::ZERO),
            ..Pruned::default()
        };
        for f in found {
            if remove(&f.path) {
                pruned.entries += 1;
                pruned.bytes += f.len;
            }
        }
        *self.estimate.lock().unwrap_or_else(PoisonError::into_inner) = Some(0);
        Ok(pruned)
    }

    /// Whether the entry file decodes under the key its name gives.
    fn verify_file(&self, path: &Path) -> bool {
        let Some(key) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(key_of_file_name)
        else {
            return false;
        };
        read_bounded(path).is_ok_and(|b| codec::decode(&key, &b, &Seal::Checksum).is_ok())
    }

    /// Every entry file and temporary file.
    fn scan(&self) -> Result<(Vec<Found>, Vec<Temp>), StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error| StoreError::Io { path, error }
        };
        let current = format!("{ENTRY_PREFIX}v{ANALYSIS_VERSION}_");
        let mut found = Vec::new();
        let mut temps = Vec::new();
        for sub in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let sub = sub.map_err(io_err(&self.root))?;
            if !sub.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = sub.path();
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                // Removed by a concurrent clear.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if name.starts_with(TEMP_PREFIX) {
                    temps.push((e.path(), mtime));
                } else if name.starts_with(ENTRY_PREFIX) {
                    found.push(Found {
                        path: e.path(),
                        len: meta.len(),
                        mtime,
                        current: name.starts_with(&current),
                    });
                }
            }
        }
        Ok((found, temps))
    }

    fn remove_stale(&self, temps: &[Temp], age: Duration) -> u64 {
        let now = SystemTime::now();
        temps
            .iter()
            .filter(|(_, t)| now.duration_since(*t).unwrap_or_default() >= age)
            .filter(|(p, _)| remove(p))
            .count() as u64
    }

    /// Removes the oldest of `found` until they fit in 90 % of the bound (when over it).
    /// Returns entries removed, bytes freed and bytes left.
    fn evict(&self, mut found: Vec<Found>) -> (u64, u64, u64) {
        let mut total: u64 = found.iter().map(|f| f.len).sum();
        if total <= self.max_bytes {
            return (0, 0, total);
        }
        let target = self.max_bytes / 10 * 9;
        found.sort_by_key(|f| f.mtime);
        let (mut n, mut freed) = (0, 0);
        for f in found {
            if total <= target {
                break;
            }
            if remove(&f.path) {
                n += 1;
                freed += f.len;
            }
            // Gone either way (a concurrent process may have removed it first).
            total -= f.len;
        }
        self.counters.evictions.fetch_add(n, Ordering::Relaxed);
        (n, freed, total)
    }

    /// Counts the store's bytes on the first write, and evicts when over the bound.
    fn account(&self, written: u64) {
        let mut est = self.estimate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = est.as_mut() {
            *e += written;
            if *e <= self.max_bytes {
                return;
            }
        }
        match self.scan() {
            Ok((found, temps)) => {
                self.remove_stale(&temps, Duration::from_secs(DISK_STORE_STALE_TEMP_SECS));
                let current: Vec<Found> = found.into_iter().filter(|f| f.current).collect();
                let (_, _, total) = self.evict(current);
                *est = Some(total);
            }
            Err(e) => {
                Counters::inc(&self.counters.errors);
                tracing::warn!(error = %e, "layer store: cannot count the cache directory");
            }
        }
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir)?;
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            self.temp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let written = File::create(&temp).and_then(|mut f| f.write_all(bytes));
        let renamed = written.and_then(|()| fs::rename(&temp, path));
        if renamed.is_err() {
            let _ = fs::remove_file(&temp);
        }
        renamed
    }
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("dir", &self.root)
            .field("max_bytes", &self.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Reads a whole file of at most [`MAX_STORE_ENTRY_BYTES`]; a larger one is an error
/// without reading past the bound.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_STORE_ENTRY_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_STORE_ENTRY_BYTES {
        return Err(io::Error::other("entry over the bound"));
    }
    Ok(buf)
}

/// The key an entry file name stands for.
fn key_of_file_name(name: &str) -> Option<LayerKey> {
    // layer_v<version>_<fingerprint>_<algorithm>_<hex>
    let rest = name.strip_prefix(ENTRY_PREFIX)?;
    let mut parts = rest.splitn(4, '_');
    let version = parts.next()?;
    if version != format!("v{ANALYSIS_VERSION}") {
        return None;
    }
    let fingerprint = parts.next()?;
    let digest = format!("{}:{}", parts.next()?, parts.next()?)
        .parse()
        .ok()?;
    Some(LayerKey::new(digest, fingerprint))
}

fn remove(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::debug!(path = %path.display(), error = %e, "layer store: cannot remove");
            }
            false
        }
    }
}

impl LayerStore for DiskStore {
    fn get(&self, key: &LayerKey) -> Option<Arc<LayerAnalysis>> {
        let path = self.path_of(key);
        let bytes = match read_bounded(&path) {
            Ok(b) => b,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    Counters::inc(&self.counters.rejected);
                    tracing::debug!(path = %path.display(), error = %e, "layer store: unreadable entry");
                    remove(&path);
                }
                Counters::inc(&self.counters.misses);
                return None;
            }
        };
        match codec::decode(key, &bytes, &Seal::Checksum) {
            Ok(a) => {
                Counters::inc(&self.counters.hits);
                // Recency for eviction; best effort (a read-only cache still serves).
                let _ = File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Some(Arc::new(a))
            }
            Err(why) => {
                Counters::inc(&self.counters.rejected);
                Counters::inc(&self.counters.misses);
                tracing::debug!(path = %path.display(), %why, "layer store: entry not used");
                // The fresh analysis replaces it.
                remove(&path);
                None
            }
        }
    }

    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>) {
        let Some(bytes) = codec::encode(key, analysis, &Seal::Checksum) else {
            tracing::debug!(digest = %key.digest(), "layer store: analysis over the entry bound, not stored");
            return;
        };
        let path = self.path_of(key);
        match self.write(&path, &bytes) {
            Ok(()) => {
                Counters::inc(&self.counters.writes);
                self.account(bytes.len() as u64);
            }
            Err(e) => {
                Counters::inc(&self.counters.errors);
                tracing::warn!(path = %path.display(), error = %e, "layer store: cannot write");
            }
        }
    }

    fn stats(&self) -> StoreStats {
        self.counters.stats()
    }
}
