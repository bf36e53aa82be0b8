//! One pass over one layer: verify, decompress, walk the tar, inspect files.
//!
//! ```text
//! blob ─▶ sha256 + size bound ─▶ sniff ─▶ gzip | zstd | plain ─▶ bomb guard ─▶ sha256 (diff_id) ─▶ tar walk
//! ```
//!
//! The compressed digest is checked against the manifest descriptor and the uncompressed
//! digest against the config's `rootfs.diff_ids` entry; both hashes cover the whole stream
//! (the tar walk's end blocks and any padding are drained). Compression is decided by the
//! first bytes, never by the media type. A layer's analysis depends only on its own bytes and
//! on what [`analysis_fingerprint`] covers, so it can be cached by digest and fingerprint.
//! Memory is bounded by two 256 KiB buffers, the decoder's
//! window, the per-file inspection state and the entry table (about 100 bytes per entry).

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{LayerError, LayerId};
use crate::inspect::reads::ContentPlan;
use crate::inspect::{self, FileFacts};
use crate::limits::{Limits, MAX_TAR_EXTENSION_BYTES, SIZE_MISMATCH_COUNT_BYTES};
use crate::path::{self, PathProblem};

/// Size of the read buffers on each side of the decoder.
const BUF_BYTES: usize = 256 << 10;

/// How a layer blob was compressed (decided from its bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (possibly several members).
    Gzip,
    /// zstd (possibly several frames).
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// Decides the compression from a stream's first bytes: the gzip magic (RFC 1952), a
    /// zstd frame or a zstd skippable frame (RFC 8878 §3.1.1, §3.1.2: `pzstd` and
    /// `zstd:chunked` writers emit them; the decoder skips them), else none.
    pub(crate) fn sniff(head: &[u8]) -> Self {
        let skippable =
            head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || skippable {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

/// The kind of a tar entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "target")]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link to the target, verbatim.
    Symlink(Box<str>),
    /// Hard link to a (cleaned) path in this or a lower layer.
    Hardlink(Box<str>),
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// FIFO.
    Fifo,
    /// `.wh.NAME`: deletes NAME from lower layers. The path is NAME's.
    Whiteout,
    /// `.wh..wh..opq`: hides all lower-layer children of the directory. The path is the
    /// directory's.
    Opaque,
}

/// One tar entry, cleaned.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Root-relative path.
    pub path: Box<str>,
    /// What it is.
    pub kind: EntryKind,
    /// Permission and type bits (`0o4755` …).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Content length (regular files).
    pub size: u64,
    /// Carries a `security.capability` xattr (file capabilities).
    pub capabilities: bool,
    /// Inspection results, when there were any.
    #[serde(with = "arc_facts")]
    pub facts: Option<Arc<FileFacts>>,
}

/// `Option<Arc<FileFacts>>` through serde without its `rc` feature.
mod arc_facts {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::inspect::FileFacts;

    pub(super) fn serialize<S: Serializer>(
        v: &Option<Arc<FileFacts>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<FileFacts>>, D::Error> {
        Ok(Option::<FileFacts>::deserialize(d)?.map(Arc::new))
    }
}

/// Something odd in a layer that is not fatal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The entry name as written (lossy UTF-8).
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// The result of walking one layer. Its serialised form is what the layer store keeps
/// ([`crate::store`]): field order and names are part of [`ANALYSIS_VERSION`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerAnalysis {
    /// Position in the manifest, base = 0.
    pub index: usize,
    /// Blob digest (as stored; compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar, computed.
    pub diff_id: Digest,
    /// Blob size.
    pub size: u64,
    /// Uncompressed size.
    pub uncompressed_size: u64,
    /// Detected compression.
    pub compression: Compression,
    /// Entries in tar order.
    pub entries: Vec<Entry>,
    /// Oddities: traversal names, invalid whiteouts, trailing data …
    pub anomalies: Vec<Anomaly>,
}

/// Version of what a [`LayerAnalysis`] contains. Bump it whenever a change to the layer walk,
/// the file inspectors (ELF, Go, secrets, content capture) or the analysis types changes the
/// analysis of some layer: stored analyses of other versions are then never used
/// ([`crate::store`]). `layer::tests::analysis_content_is_pinned` fails when the analysis of its
/// test layer changes, as a reminder. Which files' content is captured is not part of it: the
/// fingerprint covers the declarations ([`ContentPlan`]) themselves.
pub const ANALYSIS_VERSION: u32 = 1;

/// What decides a layer's analysis besides its bytes: [`ANALYSIS_VERSION`], every bound in
/// `limits` (capture and scan sizes, entry and path bounds) and the content plan (which
/// files' content is kept, [`ContentPlan::describe`]; the auditor's is
/// [`crate::audit::content_plan`]). Two auditors whose fingerprints are equal produce equal
/// analyses of equal blobs, so a layer store keys analyses by blob digest and this
/// fingerprint (SHA-256, hex).
pub fn analysis_fingerprint(limits: &Limits, reads: &ContentPlan) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"imgaudit layer analysis\0");
    h.update(ANALYSIS_VERSION.to_le_bytes());
    // `Limits` is plain data: its Debug form names every field and value, so a bound added
    // later is covered without touching this function.
    h.update(format!("{limits:?}\0").as_bytes());
    h.update(reads.describe().as_bytes());
    hex::encode(h.finalize())
}

/// What the pipeline needs to know about a layer before reading it.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    /// Position in the manifest.
    pub index: usize,
    /// Expected blob digest.
    pub digest: Digest,
    /// Expected blob size.
    pub size: u64,
    /// Expected uncompressed digest, when the config gives one.
    pub diff_id: Option<Digest>,
    /// Whether `digest` is the blob's digest and must be checked. False for classic
    /// `docker save` archives, whose layers are identified by diff_id only.
    pub verify_digest: bool,
    /// The media type the manifest declares (for messages; compression is sniffed).
    pub media_type: String,
}

impl LayerSpec {
    /// The layer, as errors name it.
    pub fn id(&self) -> LayerId {
        LayerId {
            index: self.index,
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BombError(String);

/// Counts bytes that pass, into a shared cell.
struct Counting<'a, R> {
    inner: R,
    n: &'a Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// Fails once the decompressed stream grows past the bomb bounds.
struct BombGuard<'a, R> {
    inner: R,
    out: u64,
    compressed: &'a Cell<u64>,
    limits: &'a Limits,
}

impl<R: Read> Read for BombGuard<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.out += k as u64;
        let l = self.limits;
        if self.out > l.max_layer_uncompressed {
            return Err(io::Error::other(BombError(format!(
                "expands past {} bytes",
                l.max_layer_uncompressed
            ))));
        }
        if self.out > l.bomb_min_bytes && self.out / self.compressed.get().max(1) > l.bomb_max_ratio
        {
            return Err(io::Error::other(BombError(format!(
                "{} bytes from {} compressed bytes (ratio over {})",
                self.out,
                self.compressed.get(),
                l.bomb_max_ratio
            ))));
        }
        Ok(k)
    }
}

/// Streams one layer blob. `raw` yields the blob bytes exactly as stored.
pub fn analyze_blob<R: Read>(
    raw: R,
    spec: &LayerSpec,
    limits: &Limits,
    reads: &ContentPlan,
) -> Result<LayerAnalysis, LayerError> {
    let compressed = Cell::new(0u64);
    let hashed = HashingReader::new(raw, spec.digest.algorithm(), spec.size);
    let mut counted = Counting {
        inner: hashed,
        n: &compressed,
    };
    let mut buf = BufReader::with_capacity(BUF_BYTES, &mut counted);
    let corrupt = |reason: String| LayerError::Corrupt {
        layer: spec.id(),
        reason,
    };

    let compression = match buf.fill_buf().map(Compression::sniff) {
        Ok(c) => c,
        Err(e) => {
            drop(buf);
            return Err(overlong(spec, counted.inner)
                .unwrap_or_else(|| classify(e, spec, &compressed, "reading blob")));
        }
    };
    let walked = match compression {
        Compression::Gzip => walk(
            flate2::bufread::MultiGzDecoder::new(&mut buf),
            spec,
            &compressed,
            (limits, reads),
            "gzip",
        ),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(&mut buf) {
            Ok(mut d) => match d.window_log_max(crate::limits::ZSTD_WINDOW_LOG_MAX) {
                Ok(()) => walk(d, spec, &compressed, (limits, reads), "zstd"),
                Err(e) => Err(corrupt(format!("zstd: {e}"))),
            },
            Err(e) => Err(corrupt(format!("zstd: {e}"))),
        },
        Compression::None => walk(&mut buf, spec, &compressed, (limits, reads), "tar"),
    };
    // Whatever happened, hash the rest of the blob: a digest mismatch is the root cause
    // of most decoding failures and is the clearer report.
    let drained = io::copy(&mut buf, &mut io::sink());
    drop(buf);
    let hashed = counted.inner;
    if hashed.overran() {
        // Longer than declared: whatever else failed, the size is the root cause.
        return Err(overlong(spec, hashed).expect("overran"));
    }
    let finished = drained.and_then(|_| hashed.finish());
    let blob_digest = match finished {
        Ok((actual, n)) => {
            if spec.verify_digest && actual != spec.digest {
                return Err(LayerError::DigestMismatch {
                    layer: spec.id(),
                    actual,
                });
            }
            if n != spec.size {
                return Err(LayerError::SizeMismatch {
                    layer: spec.id(),
                    expected: spec.size,
                    actual: n,
                    more: false,
                });
            }
            actual
        }
        Err(e) => {
            // Prefer reporting the walk's own error if there was one.
            walked?;
            return Err(classify(e, spec, &compressed, "reading blob"));
        }
    };
    let w = walked?;
    if let Some(expected) = &spec.diff_id {
        if *expected != w.diff_id {
            return Err(LayerError::DiffIdMismatch {
                layer: spec.id(),
                expected: expected.clone(),
                actual: w.diff_id,
            });
        }
    }
    Ok(LayerAnalysis {
        index: spec.index,
        digest: blob_digest,
        diff_id: w.diff_id,
        size: spec.size,
        uncompressed_size: w.uncompressed,
        compression,
        entries: w.entries,
        anomalies: w.anomalies,
    })
}

/// Checks an analysis made before the manifest was known (a layer analysed while its archive
/// streamed past) against what the manifest and config say of the layer, as
/// [`analyze_blob`] checks a fresh one: the blob size, the blob digest when the store
/// verifies it, and the diff_id. A failed analysis is reported as this layer's. The result
/// carries the spec's position.
pub fn check_analysis(
    analysed: Result<Arc<LayerAnalysis>, LayerError>,
    spec: &LayerSpec,
) -> Result<Arc<LayerAnalysis>, LayerError> {
    let a = analysed.map_err(|e| e.for_layer(spec.id()))?;
    if spec.verify_digest && a.digest != spec.digest {
        return Err(LayerError::DigestMismatch {
            layer: spec.id(),
            actual: a.digest.clone(),
        });
    }
    if a.size != spec.size {
        return Err(LayerError::SizeMismatch {
            layer: spec.id(),
            expected: spec.size,
            actual: a.size,
            more: false,
        });
    }
    if let Some(expected) = spec.diff_id.as_ref().filter(|d| **d != a.diff_id) {
        return Err(LayerError::DiffIdMismatch {
            layer: spec.id(),
            expected: expected.clone(),
            actual: a.diff_id.clone(),
        });
    }
    if a.index == spec.index {
        return Ok(a);
    }
    Ok(Arc::new(LayerAnalysis {
        index: spec.index,
        ..LayerAnalysis::clone(&a)
    }))
}

/// For a blob that turned out longer than its descriptor: the size mismatch, with the real
/// size counted from what is left (up to [`SIZE_MISMATCH_COUNT_BYTES`] more).
fn overlong<R: Read>(spec: &LayerSpec, hashed: HashingReader<R>) -> Option<LayerError> {
    if !hashed.overran() {
        return None;
    }
    let (rest, seen) = hashed.into_inner();
    let extra = io::copy(&mut rest.take(SIZE_MISMATCH_COUNT_BYTES), &mut io::sink()).unwrap_or(0);
    Some(LayerError::SizeMismatch {
        layer: spec.id(),
        expected: spec.size,
        actual: seen + extra,
        more: extra == SIZE_MISMATCH_COUNT_BYTES,
    })
}

fn classify(e: io::Error, spec: &LayerSpec, compressed: &Cell<u64>, ctx: &str) -> LayerError {
    // An overlong blob (`Overrun`) is reported by `analyze_blob` itself, with its size.
    if let Some(b) = e.get_ref().and_then(|i| i.downcast_ref::<BombError>()) {
        return LayerError::Bomb {
            layer: spec.id(),
            reason: b.0.clone(),
        };
    }
    let reason = if e.kind() == io::ErrorKind::UnexpectedEof {
        format!(
            "{ctx}: truncated after {} compressed bytes",
            compressed.get()
        )
    } else {
        format!("{ctx}: {e}")
    };
    LayerError::Corrupt {
        layer: spec.id(),
        reason,
    }
}

/// Whether a 512-byte block is a tar header: its checksum field matches the sum of its
/// bytes with that field counted as spaces (POSIX ustar, also GNU and v7 headers), or it is
/// an end-of-archive block of zeros.
fn is_tar_header(block: &[u8]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(want) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    want == sum || i64::from(want) == signed
}

struct Walked {
    diff_id: Digest,
    uncompressed: u64,
    entries: Vec<Entry>,
    anomalies: Vec<Anomaly>,
}

fn walk<D: Read>(
    dec: D,
    spec: &LayerSpec,
    compressed: &Cell<u64>,
    (limits, reads): (&Limits, &ContentPlan),
    what: &str,
) -> Result<Walked, LayerError> {
    let guard = BombGuard {
        inner: dec,
        out: 0,
        compressed,
        limits,
    };
    let alg = spec
        .diff_id
        .as_ref()
        .map_or(Algorithm::Sha256, Digest::algorithm);
    let hasher = HashingReader::new(guard, alg, limits.max_layer_uncompressed);
    let mut tbuf = BufReader::with_capacity(BUF_BYTES, hasher);
    // A stream that does not start with a tar header is not a layer at all: say so, rather
    // than pass on the tar reader's complaint about the first field it could not parse.
    let head = tbuf
        .fill_buf()
        .map_err(|e| classify(e, spec, compressed, what))?;
    if head.len() >= 512 && !is_tar_header(&head[..512]) || (1..512).contains(&head.len()) {
        let after = if what == "tar" {
            String::new()
        } else {
            format!(" after {what} decompression")
        };
        let magic: String = head
            .iter()
            .take(8)
            .map(|&b| {
                if b.is_ascii_graphic() {
                    (b as char).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        return Err(LayerError::Corrupt {
            layer: spec.id(),
            reason: format!("not a tar archive{after}: it starts with \"{magic}\""),
        });
    }
    let mut walker = Walker::new(limits, reads);
    let res = walker.walk_tar(&mut tbuf);
    if let Err(e) = res {
        return Err(match e {
            WalkError::Io(e) => classify(e, spec, compressed, what),
            WalkError::TooMany => LayerError::TooManyEntries {
                layer: spec.id(),
                limit: limits.max_entries_per_layer,
            },
        });
    }
    // Drain to EOF so the diff_id covers the whole stream; non-zero bytes after the
    // end-of-archive blocks are worth a note.
    let mut trailing_nonzero = false;
    loop {
        let chunk = tbuf
            .fill_buf()
            .map_err(|e| classify(e, spec, compressed, what))?;
        if chunk.is_empty() {
            break;
        }
        trailing_nonzero |= chunk.iter().any(|&b| b != 0);
        let n = chunk.len();
        tbuf.consume(n);
    }
    if trailing_nonzero {
        walker.anomalies.push(Anomaly {
            path: String::new(),
            problem: "data after the end-of-archive marker".into(),
        });
    }
    let (diff_id, uncompressed) = tbuf
        .into_inner()
        .finish()
        .map_err(|e| classify(e, spec, compressed, what))?;
    Ok(Walked {
        diff_id,
        uncompressed,
        entries: walker.entries,
        anomalies: walker.anomalies,
    })
}

enum WalkError {
    Io(io::Error),
    TooMany,
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Counts the bytes the tar reader takes and refuses to go past `allowed` (when set).
struct Metered<'c, R> {
    inner: R,
    read: &'c Cell<u64>,
    allowed: &'c Cell<Option<u64>>,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.read.get() + n as u64;
        self.read.set(total);
        if self.allowed.get().is_some_and(|limit| total > limit) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("tar metadata before an entry (GNU long name or PAX records) exceeds {MAX_TAR_EXTENSION_BYTES} bytes"),
            ));
        }
        Ok(n)
    }
}

/// Turns raw entries into cleaned [`Entry`] records, shared by tar and directory walks.
pub(crate) struct Walker<'a> {
    limits: &'a Limits,
    reads: &'a ContentPlan,
    pub(crate) entries: Vec<Entry>,
    pub(crate) anomalies: Vec<Anomaly>,
    buf: Vec<u8>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(limits: &'a Limits, reads: &'a ContentPlan) -> Self {
        Self {
            limits,
            reads,
            entries: Vec::new(),
            anomalies: Vec::new(),
            buf: vec![0; BUF_BYTES],
        }
    }

    fn walk_tar<R: Read>(&mut self, r: R) -> Result<(), WalkError> {
        // Header blocks of one entry (its own, a long name's, a PAX one's) and the end
        // padding of the previous one, on top of the extension records themselves.
        const HEADROOM: u64 = MAX_TAR_EXTENSION_BYTES + 4 * 512;
        let (read, allowed) = (Cell::new(0), Cell::new(Some(HEADROOM)));
        let mut ar = tar::Archive::new(Metered {
            inner: r,
            read: &read,
            allowed: &allowed,
        });
        let mut count = 0u64;
        let mut entries = ar.entries()?;
        // Where the previous entry's data began and how long it is.
        let mut prev: Option<(u64, u64)> = None;
        loop {
            // Before the next entry the tar reader may skip what is left of this one, its
            // padding, headers, and extension records it keeps whole: only these are bounded.
            if let Some((start, size)) = prev.take() {
                let left = size.saturating_sub(read.get() - start);
                allowed.set(Some(
                    read.get().saturating_add(left).saturating_add(HEADROOM),
                ));
            }
            let Some(entry) = entries.next() else { break };
            allowed.set(None);
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    // tar-rs reports a short final block (a tar without end-of-archive
                    // padding, e.g. `umoci insert` output) as an error; the digest check
                    // still covers the bytes, so note it and stop.
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        self.anomalies.push(Anomaly {
                            path: String::new(),
                            problem: format!("tar stream ends early: {e}"),
                        });
                        break;
                    }
                    return Err(e.into());
                }
            };
            prev = Some((read.get(), entry.size()));
            count += 1;
            if count > self.limits.max_entries_per_layer {
                return Err(WalkError::TooMany);
            }
            let header = entry.header();
            let etype = header.entry_type();
            if etype.is_pax_global_extensions()
                || etype.is_pax_local_extensions()
                || etype.is_gnu_longname()
                || etype.is_gnu_longlink()
            {
                continue;
            }
            let raw_path = entry.path_bytes().into_owned();
            let mode = header.mode().unwrap_or(0o644);
            let mut uid = header
                .uid()
                .map_or(0, |u| u32::try_from(u).unwrap_or(u32::MAX));
            let mut gid = header
                .gid()
                .map_or(0, |g| u32::try_from(g).unwrap_or(u32::MAX));
            let mut capabilities = false;
            if let Ok(Some(pax)) = entry.pax_extensions() {
                for ext in pax.flatten() {
                    match ext.key_bytes() {
                        b"uid" => uid = parse_u32(ext.value_bytes()).unwrap_or(uid),
                        b"gid" => gid = parse_u32(ext.value_bytes()).unwrap_or(gid),
                        b"SCHILY.xattr.security.capability"
                        | b"LIBARCHIVE.xattr.security.capability" => capabilities = true,
                        _ => {}
                    }
                }
            }
            let kind = if etype.is_file() || etype.is_contiguous() || etype.is_gnu_sparse() {
                RawKind::File
            } else if etype.is_dir() {
                RawKind::Dir
            } else if etype.is_symlink() {
                RawKind::Symlink(
                    entry
                        .link_name_bytes()
                        .map(|b| b.into_owned())
                        .unwrap_or_default(),
                )
            } else if etype.is_hard_link() {
                RawKind::Hardlink(
                    entry
                        .link_name_bytes()
                        .map(|b| b.into_owned())
                        .unwrap_or_default(),
                )
            } else if etype.is_character_special() {
                RawKind::CharDevice
            } else if etype.is_block_special() {
                RawKind::BlockDevice
            } else if etype.is_fifo() {
                RawKind::Fifo
            } else {
                self.anomalies.push(Anomaly {
                    path: String::from_utf8_lossy(&raw_path).into_owned(),
                    problem: format!("unsupported tar entry type {:?}", etype.as_byte() as char),
                });
                continue;
            };
            let raw = RawEntry {
                path: &raw_path,
                kind,
                mode,
                uid,
                gid,
                size: entry.size(),
                capabilities,
            };
            self.add(raw, &mut entry)?;
        }
        Ok(())
    }

    /// Records one raw entry; `content` yields a regular file's bytes.
    pub(crate) fn add(&mut self, raw: RawEntry<'_>, content: &mut dyn Read) -> io::Result<()> {
        let RawEntry {
            path: raw_path,
            kind,
            mode,
            uid,
            gid,
            size,
            capabilities,
        } = raw;
        let lossy = || String::from_utf8_lossy(raw_path).into_owned();
        let clean = match path::clean(raw_path, self.limits.max_path_bytes) {
            Ok(p) => p,
            Err(problem) => {
                let problem = match problem {
                    PathProblem::Traversal => "path escapes the image root (`..`); entry skipped",
                    PathProblem::TooLong => "path longer than the limit; entry skipped",
                    PathProblem::NotUtf8 => "path is not UTF-8; entry skipped",
                    PathProblem::Nul => "path contains NUL; entry skipped",
                };
                self.anomalies.push(Anomaly {
                    path: lossy(),
                    problem: problem.into(),
                });
                return Ok(());
            }
        };
        let name = path::file_name(&clean);
        let dir = path::parent(&clean);
        let (path, kind) = if let Some(target) = name.strip_prefix(".wh.") {
            if target == ".wh..opq" {
                (dir.to_string(), EntryKind::Opaque)
            } else if target.starts_with(".wh.") {
                // AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): containerd skips it.
                return Ok(());
            } else if target.is_empty() || target == "." || target == ".." {
                self.anomalies.push(Anomaly {
                    path: lossy(),
                    problem: "invalid whiteout name; entry skipped".into(),
                });
                return Ok(());
            } else {
                (path::child(dir, target), EntryKind::Whiteout)
            }
        } else {
            let kind = match kind {
                RawKind::File => EntryKind::File,
                RawKind::Dir => EntryKind::Dir,
                RawKind::Symlink(t) => EntryKind::Symlink(String::from_utf8_lossy(&t).into()),
                RawKind::Hardlink(t) => match path::clean(&t, self.limits.max_path_bytes) {
                    Ok(t) if !t.is_empty() => EntryKind::Hardlink(t.into()),
                    _ => {
                        self.anomalies.push(Anomaly {
                            path: lossy(),
                            problem: "hard link target escapes the image root; entry skipped"
                                .into(),
                        });
                        return Ok(());
                    }
                },
                RawKind::CharDevice => EntryKind::CharDevice,
                RawKind::BlockDevice => EntryKind::BlockDevice,
                RawKind::Fifo => EntryKind::Fifo,
            };
            (clean, kind)
        };
        if path.is_empty() && kind != EntryKind::Dir && kind != EntryKind::Opaque {
            self.anomalies.push(Anomaly {
                path: lossy(),
                problem: "entry replaces the image root; skipped".into(),
            });
            return Ok(());
        }
        let facts = if kind == EntryKind::File {
            inspect::inspect_file(&path, size, content, &mut self.buf, self.limits, self.reads)?
                .map(Arc::new)
        } else {
            None
        };
        let size = if kind == EntryKind::File { size } else { 0 };
        self.entries.push(Entry {
            path: path.into(),
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            size,
            capabilities,
            facts,
        });
        Ok(())
    }
}

/// One entry as a tar header or a directory walk gives it, before cleaning.
pub(crate) struct RawEntry<'a> {
    /// The name as written.
    pub(crate) path: &'a [u8],
    pub(crate) kind: RawKind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// The content's size (regular files).
    pub(crate) size: u64,
    /// Whether a `security.capability` extended attribute is set.
    pub(crate) capabilities: bool,
}

/// A raw entry kind before cleaning.
pub(crate) enum RawKind {
    File,
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    CharDevice,
    BlockDevice,
    Fifo,
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

/// Walks an unpacked root filesystem as a single layer (no digests; symlinks are not
/// followed; entries are visited in sorted order so results are deterministic).
pub fn analyze_dir(
    root: &Path,
    limits: &Limits,
    reads: &ContentPlan,
) -> io::Result<(Vec<Entry>, Vec<Anomaly>)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut walker = Walker::new(limits, reads);
    let mut stack: Vec<(std::path::PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    let mut count = 0u64;
    while let Some((dir, rel)) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<Vec<_>, _>>()?;
        names.sort_by_key(std::fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for e in names {
            count += 1;
            if count > limits.max_entries_per_layer {
                return Err(io::Error::other(format!(
                    "more than {} entries",
                    limits.max_entries_per_layer
                )));
            }
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                walker.anomalies.push(Anomaly {
                    path: e.path().display().to_string(),
                    problem: "path is not UTF-8; entry skipped".into(),
                });
                continue;
            };
            let rel_path = path::child(&rel, name);
            let md = std::fs::symlink_metadata(e.path())?;
            let ft = md.file_type();
            let (mode, uid, gid) = (md.mode(), md.uid(), md.gid());
            let kind = if ft.is_dir() {
                subdirs.push((e.path(), rel_path.clone()));
                RawKind::Dir
            } else if ft.is_symlink() {
                let t = std::fs::read_link(e.path())?;
                RawKind::Symlink(t.to_string_lossy().into_owned().into_bytes())
            } else if ft.is_file() {
                RawKind::File
            } else if ft.is_char_device() {
                RawKind::CharDevice
            } else if ft.is_block_device() {
                RawKind::BlockDevice
            } else if ft.is_fifo() {
                RawKind::Fifo
            } else {
                continue;
            };
            let is_file = matches!(kind, RawKind::File);
            let raw = RawEntry {
                path: rel_path.as_bytes(),
                kind,
                mode,
                uid,
                gid,
                size: if is_file { md.len() } else { 0 },
                capabilities: false,
            };
            if is_file {
                match crate::hostfs::open_regular_nofollow(&e.path()) {
                    Ok(mut f) => walker.add(raw, &mut f)?,
                    Err(err) => walker.anomalies.push(Anomaly {
                        path: rel_path,
                        problem: format!("unreadable: {err}"),
                    }),
                }
            } else {
                walker.add(raw, &mut io::empty())?;
            }
        }
        // Depth-first in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok((walker.entries, walker.anomalies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::content_plan;
    use crate::limits::{CAPTURED_FRAGMENT_BYTES, CAPTURED_MARKER_BYTES};
    use crate::testutil::Tar;

    /// The analysis of a fixed layer, as the layer store keeps it, is pinned: when this fails,
    /// what a layer analysis contains has changed, so bump [`ANALYSIS_VERSION`] (stored
    /// analyses of the old code must not be served) and update the pin.
    #[test]
    fn analysis_content_is_pinned() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        elf[16] = 2; // ET_EXEC
        elf[18] = 62; // x86-64
        let tar = Tar::default()
            .dir("etc/", 0o755)
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
            .file(
                "etc/ld.so.conf",
                b"include /etc/ld.so.conf.d/*.conf\n",
                0o644,
            )
            .file("usr/bin/tool", &elf, 0o4755)
            .file("app/run.sh", b"#!/bin/sh -e\nexec /app/server\n", 0o755)
            .file(
                "root/.git-credentials",
                b"https://bob:s3cr3tpassw0rd@git.example.com\n",
                0o600,
            )
            .file(
                "app/.env",
                b"GITHUB_TOKEN=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789\n",
                0o600,
            )
            .symlink("bin/sh", "busybox")
            .hardlink("usr/bin/tool2", "usr/bin/tool")
            .file("var/.wh.gone", b"", 0o644)
            .file("opt/.wh..wh..opq", b"", 0o644)
            .finish();
        let spec = LayerSpec {
            index: 3,
            digest: Digest::sha256_of(&tar),
            size: tar.len() as u64,
            diff_id: None,
            verify_digest: true,
            media_type: String::new(),
        };
        let a = analyze_blob(&tar[..], &spec, &Limits::default(), content_plan()).unwrap();
        let mut cbor = Vec::new();
        ciborium::into_writer(&a, &mut cbor).unwrap();
        let pin = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&cbor));
        assert_eq!(
            (ANALYSIS_VERSION, pin.as_str()),
            (
                1,
                "bcc50be3d5818fda4cdbb58cc9726c75173741e58af58c6c85d9cec95887cfa7"
            ),
            "the analysis of the pinned layer changed: bump ANALYSIS_VERSION and update the pin"
        );
    }

    #[test]
    fn content_is_kept_for_declared_reads_only_and_up_to_their_bound() {
        let marker = vec![b'r'; CAPTURED_MARKER_BYTES as usize + 100];
        let fragment = vec![b'#'; CAPTURED_FRAGMENT_BYTES as usize + 100];
        let tar = Tar::default()
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
            .file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o600)
            .file("etc/nsswitch.conf", b"hosts: files dns\n", 0o644)
            .file("root/.cache/go-build/README", &marker, 0o644)
            .file("etc/ld.so.conf.d/x.conf", &fragment, 0o644)
            .finish();
        let limits = Limits::default();
        let mut w = Walker::new(&limits, content_plan());
        assert!(w.walk_tar(&tar[..]).is_ok());
        let kept: Vec<(&str, Option<usize>, bool)> = w
            .entries
            .iter()
            .map(|e| {
                let f = e.facts.as_deref();
                let len = f.and_then(|f| f.content.as_ref()).map(|c| c.len());
                (&*e.path, len, f.is_some_and(|f| f.content_truncated))
            })
            .collect();
        assert_eq!(
            kept,
            [
                ("etc/passwd", Some(26), false),
                ("etc/shadow", None, false),
                ("etc/nsswitch.conf", None, false),
                (
                    "root/.cache/go-build/README",
                    Some(CAPTURED_MARKER_BYTES as usize),
                    true
                ),
                (
                    "etc/ld.so.conf.d/x.conf",
                    Some(CAPTURED_FRAGMENT_BYTES as usize),
                    true
                ),
            ]
        );
    }

    #[test]
    fn the_analysis_fingerprint_covers_limits_and_plan() {
        let l = Limits::default();
        let plan = content_plan();
        let fp = analysis_fingerprint(&l, plan);
        assert_eq!(fp.len(), 64);
        assert_eq!(
            fp,
            analysis_fingerprint(&l.clone(), &plan.clone()),
            "stable"
        );
        let lowered = Limits {
            max_captured_file_bytes: 1 << 20,
            ..Limits::default()
        };
        assert_ne!(fp, analysis_fingerprint(&lowered, plan));
        let changed = Limits {
            credential_file_max_bytes: l.credential_file_max_bytes + 1,
            ..l.clone()
        };
        assert_ne!(fp, analysis_fingerprint(&changed, plan));
        let fewer = ContentPlan::new(crate::system::ldso::READS);
        assert_ne!(fp, analysis_fingerprint(&l, &fewer));
    }

    #[test]
    fn long_names_and_pax_paths_apply() {
        let long = format!("opt/{}/bin/app", "d".repeat(300));
        let pax_path = format!("srv/{}/x", "p".repeat(200));
        let body = format!(" path={pax_path}\n");
        let record = format!("{}{body}", body.len() + 3); // the length counts its own 3 digits
        let tar = Tar::default()
            .typed("././@LongLink", b'L', format!("{long}\0").as_bytes())
            .file("short-name", b"x", 0o644)
            .typed("PaxHeaders/x", b'x', record.as_bytes())
            .file("short-too", b"y", 0o644)
            .finish();
        let limits = Limits::default();
        let mut w = Walker::new(&limits, crate::audit::content_plan());
        assert!(w.walk_tar(&tar[..]).is_ok());
        let paths: Vec<&str> = w.entries.iter().map(|e| &*e.path).collect();
        assert_eq!(paths, [long.as_str(), pax_path.as_str()]);
        assert!(w.anomalies.is_empty(), "{:?}", w.anomalies);
    }
}
