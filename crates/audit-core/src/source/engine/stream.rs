//! An image tarball read in one pass as it streams (`GET /images/{name}/get` of the Docker
//! Engine API, Podman's compatible API), with no temporary file.
//!
//! The archive's order is the engine's: classic `docker save` writes the layers
//! (`<id>/layer.tar`) first and `manifest.json` last; Docker 25+ writes an OCI layout whose
//! `index.json` and `manifest.json` also come after the blobs; Podman writes skopeo's
//! docker-archive (`<hex>.tar` layers, `manifest.json` last). So members are judged by their
//! bytes, not by what the manifest will say of them:
//!
//! * members up to [`STREAM_KEEP_MEMBER_BYTES`] (`VERSION` files, empty or tiny layers) and
//!   JSON documents up to [`MAX_CONFIG_BYTES`] (configs, manifests, `index.json`) are kept in
//!   memory, within [`STREAM_KEEP_BUDGET_BYTES`];
//! * every other member is analysed as a layer while it streams: the reading thread hands
//!   its bytes through a bounded buffer ([`STREAM_LAYER_BUFFER_BYTES`]) to a worker running
//!   the layer pipeline ([`layer::analyze_blob`]), so up to `jobs` layers are analysed at
//!   once while the engine goes on sending. A member named `blobs/ALG/HEX` (an OCI layout) is
//!   verified against its name as it streams.
//!
//! When the stream ends, the kept members and the analyses are the members of an ordinary
//! docker-archive or oci-archive ([`super::super::archive::stores_for`]): the same manifest
//! reading, image selection and config checks as for a tarball on disk. The analyses are
//! matched to the manifest's layers there and checked like fresh ones (blob size, blob
//! digest, the config's diff_id: [`layer::check_analysis`]); a member the manifest needs as
//! JSON that was analysed instead (too large, not JSON) cannot be read, which is an error.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::audit::Progress;
use crate::digest::Digest;
use crate::error::{LayerError, SourceError};
use crate::inspect::read_full;
use crate::layer::{self, LayerAnalysis, LayerSpec};
use crate::limits::{
    Limits, MAX_ARCHIVE_UNCOMPRESSED, MAX_CONFIG_BYTES, MAX_PATH_BYTES, STREAM_KEEP_BUDGET_BYTES,
    STREAM_KEEP_MEMBER_BYTES, STREAM_LAYER_BUFFER_BYTES, STREAM_MAX_MEMBERS,
};
use crate::path;
use crate::source::archive::Members;

/// Chunk size of the hand-over from the reading thread to a layer's worker.
const CHUNK_BYTES: usize = 256 << 10;
/// Longest link chain followed between members.
const MAX_LINKS: usize = 8;

type Analysis = Result<Arc<LayerAnalysis>, LayerError>;

/// The members of a streamed archive: small ones kept, large ones analysed.
pub(crate) struct Streamed {
    location: String,
    sizes: HashMap<String, u64>,
    links: HashMap<String, String>,
    kept: HashMap<String, Arc<[u8]>>,
    analysed: HashMap<String, Analysis>,
}

/// How one pass runs: the bounds and parallelism of the auditor.
pub(crate) struct Pass<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) jobs: usize,
    pub(crate) progress: Option<&'a dyn Progress>,
}

/// Fails a stream past [`MAX_ARCHIVE_UNCOMPRESSED`] bytes.
struct Bounded<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        if self.n > MAX_ARCHIVE_UNCOMPRESSED {
            return Err(io::Error::other(format!(
                "the archive is larger than {MAX_ARCHIVE_UNCOMPRESSED} bytes"
            )));
        }
        Ok(k)
    }
}

/// Counts the layers being analysed, to keep at most `jobs` in flight.
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn take(&self, max: usize) {
        let mut b = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *b >= max {
            b = self.freed.wait(b).unwrap_or_else(PoisonError::into_inner);
        }
        *b += 1;
    }

    fn give(&self) {
        *self.busy.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.freed.notify_one();
    }
}

/// The worker's side of a layer's hand-over buffer.
struct Chunks {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reports a layer's bytes as they are handed over.
struct Reported<'a, R> {
    inner: R,
    progress: Option<&'a dyn Progress>,
    index: usize,
}

impl<R: Read> Read for Reported<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p.layer_bytes(self.index, n as u64);
        }
        Ok(n)
    }
}

/// Whether a member's first bytes look like a JSON document.
fn looks_like_json(head: &[u8]) -> bool {
    matches!(
        head.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// The digest a layout member's name gives it (`blobs/sha256/HEX`).
fn named_digest(name: &str) -> Option<Digest> {
    let rest = name.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

impl Streamed {
    /// Reads the whole stream once. `location` names it in messages; errors reading the
    /// stream are the reader's own (`stream_err` turns them into the source's error).
    pub(crate) fn read(
        location: String,
        stream: impl Read,
        pass: &Pass<'_>,
        stream_err: &dyn Fn(io::Error) -> SourceError,
    ) -> Result<Self, SourceError> {
        let mut out = Self {
            location,
            sizes: HashMap::new(),
            links: HashMap::new(),
            kept: HashMap::new(),
            analysed: HashMap::new(),
        };
        let results: Mutex<HashMap<String, Analysis>> = Mutex::new(HashMap::new());
        let slots = Slots {
            busy: Mutex::new(0),
            freed: Condvar::new(),
        };
        let jobs = pass.jobs.max(1);
        let depth = (STREAM_LAYER_BUFFER_BYTES / CHUNK_BYTES).max(1);
        let mut budget = STREAM_KEEP_BUDGET_BYTES;
        let mut ordinal = 0usize;
        let outcome = std::thread::scope(|s| -> Result<(), SourceError> {
            let mut ar = tar::Archive::new(Bounded {
                inner: stream,
                n: 0,
            });
            for entry in ar.entries().map_err(stream_err)? {
                let mut entry = entry.map_err(stream_err)?;
                if out.sizes.len() + out.links.len() >= STREAM_MAX_MEMBERS {
                    return Err(SourceError::TooLarge {
                        what: format!("{} (member count)", out.location),
                        limit: STREAM_MAX_MEMBERS as u64,
                    });
                }
                let Ok(name) = path::clean(&entry.path_bytes(), MAX_PATH_BYTES) else {
                    continue;
                };
                let t = entry.header().entry_type();
                if t.is_symlink() || t.is_hard_link() {
                    let target = entry.link_name_bytes().and_then(|l| {
                        if t.is_symlink() {
                            Some(path::join_clamped(
                                path::parent(&name),
                                &String::from_utf8_lossy(&l),
                            ))
                        } else {
                            path::clean(&l, MAX_PATH_BYTES).ok()
                        }
                    });
                    if let Some(target) = target {
                        out.links.insert(name, target);
                    }
                    continue;
                }
                if !t.is_file() {
                    continue;
                }
                let size = entry.size();
                let mut head = vec![0u8; (size.min(CHUNK_BYTES as u64)) as usize];
                let got = read_full(&mut entry, &mut head).map_err(stream_err)?;
                if (got as u64) < head.len() as u64 {
                    return Err(stream_err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the stream ends inside {name}"),
                    )));
                }
                out.sizes.insert(name.clone(), size);
                let keep = size <= STREAM_KEEP_MEMBER_BYTES
                    || (size <= MAX_CONFIG_BYTES && looks_like_json(&head));
                if keep {
                    if size > budget {
                        return Err(SourceError::TooLarge {
                            what: format!(
                                "{} (small members and JSON documents kept in memory)",
                                out.location
                            ),
                            limit: STREAM_KEEP_BUDGET_BYTES,
                        });
                    }
                    let mut whole = head;
                    whole.reserve_exact((size - got as u64) as usize);
                    (&mut entry)
                        .take(size - got as u64)
                        .read_to_end(&mut whole)
                        .map_err(stream_err)?;
                    if whole.len() as u64 != size {
                        return Err(stream_err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the stream ends inside {name}"),
                        )));
                    }
                    budget -= size;
                    out.kept.insert(name, Arc::from(whole));
                    continue;
                }
                if ordinal >= pass.limits.max_layers {
                    return Err(SourceError::BadLayers {
                        reason: format!(
                            "{}: more than {} members large enough to be layers",
                            out.location, pass.limits.max_layers
                        ),
                    });
                }
                let index = ordinal;
                ordinal += 1;
                let named = named_digest(&name);
                let spec = LayerSpec {
                    index,
                    verify_digest: named.is_some(),
                    digest: named.unwrap_or_else(|| Digest::from_sha256([0; 32])),
                    size,
                    diff_id: None,
                    media_type: String::new(),
                };
                slots.take(jobs);
                if let Some(p) = pass.progress {
                    p.layer_started(index, size);
                }
                let (tx, rx) = sync_channel::<Vec<u8>>(depth);
                let (results, slots, limits, progress) =
                    (&results, &slots, pass.limits, pass.progress);
                let member = name.clone();
                s.spawn(move || {
                    let chunks = Chunks {
                        rx,
                        cur: Vec::new(),
                        pos: 0,
                    };
                    let reader = Reported {
                        inner: chunks,
                        progress,
                        index,
                    };
                    let r =
                        layer::analyze_blob(reader, &spec, limits, crate::audit::content_plan())
                            .map(Arc::new);
                    if let Some(p) = progress {
                        p.layer_done(index);
                    }
                    results
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(member, r);
                    slots.give();
                });
                // Hand the member over; if the worker stopped early (a failed analysis),
                // the rest is skipped by the tar reader.
                let mut chunk = head;
                let mut left = size - got as u64;
                loop {
                    if tx.send(chunk).is_err() || left == 0 {
                        break;
                    }
                    let mut next = vec![0u8; left.min(CHUNK_BYTES as u64) as usize];
                    let k = read_full(&mut entry, &mut next).map_err(stream_err)?;
                    if k < next.len() {
                        return Err(stream_err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the stream ends inside {name}"),
                        )));
                    }
                    left -= k as u64;
                    chunk = next;
                }
            }
            Ok(())
        });
        outcome?;
        out.analysed = results.into_inner().unwrap_or_else(PoisonError::into_inner);
        tracing::info!(
            location = %out.location,
            members = out.sizes.len(),
            kept = out.kept.len(),
            analysed = out.analysed.len(),
            "archive streamed"
        );
        Ok(out)
    }

    /// Follows links to the member holding the bytes.
    fn real<'a>(&'a self, name: &'a str) -> io::Result<&'a str> {
        let mut name = name;
        for _ in 0..=MAX_LINKS {
            if self.sizes.contains_key(name) {
                return Ok(name);
            }
            match self.links.get(name) {
                Some(t) => name = t,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{name}: not in the archive"),
                    ))
                }
            }
        }
        Err(io::Error::other(format!("{name}: too many links")))
    }
}

impl Members for Streamed {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn contains(&self, name: &str) -> bool {
        self.real(name).is_ok()
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        Ok(self.sizes[self.real(name)?])
    }

    fn open_member(&self, name: &str) -> io::Result<(u64, Box<dyn Read + Send + '_>)> {
        let real = self.real(name)?;
        match self.kept.get(real) {
            Some(b) => Ok((b.len() as u64, Box::new(io::Cursor::new(Arc::clone(b))))),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{real} was analysed as a layer while the archive streamed ({} bytes, not a JSON document of at most {MAX_CONFIG_BYTES} bytes)",
                    self.sizes[real]
                ),
            )),
        }
    }

    fn analysed(&self, name: &str) -> Option<Analysis> {
        let real = self.real(name).ok()?;
        self.analysed.get(real).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar written on another thread while it is read, so forged streams need no memory.
    fn piped(
        write: impl FnOnce(&mut tar::Builder<io::PipeWriter>) + Send + 'static,
    ) -> io::PipeReader {
        let (r, w) = io::pipe().unwrap();
        std::thread::spawn(move || {
            let mut b = tar::Builder::new(w);
            write(&mut b);
            let _ = b.finish();
        });
        r
    }

    fn member(b: &mut tar::Builder<io::PipeWriter>, name: &str, data: impl Read, size: u64) {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        // The reader stops early on a bound: a failed write only ends this thread.
        let _ = b.append_data(&mut h, name, data);
    }

    fn read(r: impl Read) -> Result<Streamed, SourceError> {
        let limits = Limits::default();
        let pass = Pass {
            limits: &limits,
            jobs: 2,
            progress: None,
        };
        Streamed::read("test".into(), r, &pass, &|e| SourceError::BadLayers {
            reason: e.to_string(),
        })
    }

    #[test]
    fn member_count_is_bounded() {
        let r = piped(|b| {
            for i in 0..=STREAM_MAX_MEMBERS {
                member(b, &format!("m{i}"), io::empty(), 0);
            }
        });
        match read(r) {
            Err(SourceError::TooLarge { limit, .. }) => {
                assert_eq!(limit, STREAM_MAX_MEMBERS as u64)
            }
            other => panic!("{:?}", other.map(|s| s.sizes.len())),
        }
    }

    #[test]
    fn memory_kept_from_a_stream_is_bounded() {
        // JSON-looking members of the largest config size are kept until the budget is
        // spent.
        let n = STREAM_KEEP_BUDGET_BYTES / MAX_CONFIG_BYTES + 1;
        let r = piped(move |b| {
            for i in 0..n {
                let json = (&b"{"[..]).chain(io::repeat(b' ').take(MAX_CONFIG_BYTES - 1));
                member(b, &format!("c{i}.json"), json, MAX_CONFIG_BYTES);
            }
        });
        match read(r) {
            Err(SourceError::TooLarge { limit, .. }) => assert_eq!(limit, STREAM_KEEP_BUDGET_BYTES),
            other => panic!("{:?}", other.map(|s| s.kept.len())),
        }
    }

    #[test]
    fn large_members_are_analysed_small_ones_kept() {
        let layer = {
            let mut b = tar::Builder::new(Vec::new());
            let data = vec![7u8; (STREAM_KEEP_MEMBER_BYTES + 1) as usize];
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "f", &data[..]).unwrap();
            b.into_inner().unwrap()
        };
        let size = layer.len() as u64;
        let r = piped(move |b| {
            member(b, "l/layer.tar", &layer[..], size);
            member(b, "manifest.json", &b"[]"[..], 2);
            let link = {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h
            };
            let mut link = link;
            let _ = b.append_link(&mut link, "m/layer.tar", "../l/layer.tar");
        });
        let s = read(r).unwrap();
        assert!(s.kept.contains_key("manifest.json"));
        let a = s.analysed("m/layer.tar").expect("analysed").unwrap();
        assert_eq!(a.size, size);
        let e = s.open_member("l/layer.tar").err().unwrap();
        assert!(e.to_string().contains("analysed as a layer"), "{e}");
    }
}
