//! Go discovery inside a streaming ELF: the build-info blob (magic scan over writable
//! segments, as `debug/buildinfo` searches), the pclntab (section starts or a magic scan) and
//! its function-name table (which Go packages are linked), and for binaries whose blob was
//! removed, the module info copy and the version string in read-only data. The bytes found
//! are decoded by [`crate::inspect::go`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use goblin::elf::{program_header as ph, section_header as sh, ProgramHeader};
use memchr::memmem::Finder;

use super::headers::{writable_segments, Hdr};
use super::scan::StreamScan;
use super::ElfScanner;
use crate::inspect::bytes::{read_u32, read_uint};
use crate::inspect::go::{self, BuildInfo, BuildInfoSource, GoFacts, GoUses, FUNC_NEEDLES};
use crate::limits::MAX_GO_BUILDINFO_BYTES;

/// Bytes captured after a Go build-info magic hit before the lengths are known.
const BUILDINFO_WINDOW: u64 = 64 << 10;
/// Longest Go version string accepted from a string header (`go1.21.0 X:boringcrypto`).
const VERSION_WINDOW: u64 = 48;
/// The first section of each read-only segment of a Go binary (`.rodata`, where string
/// data and the `runtime.modinfo` copy live) is captured up to this size, so module info
/// can be recovered when `.go.buildinfo` was removed, and pre-1.18 string pointers resolve.
const RODATA_CAPTURE_BYTES: u64 = 8 << 20;
/// At most this many aligned build-info magic hits are kept.
const MAX_BUILDINFO_HITS: usize = 8;
/// At most this many `go1.` strings in read-only data are considered version candidates.
const MAX_VERSION_HITS: usize = 256;
/// At most this many pclntab magic candidates are examined.
const MAX_PCLN_CANDIDATES: usize = 64;
/// The pclntab name table scanned for Go package use is at most this long.
const MAX_FUNCNAME_TABLE: u64 = 256 << 20;
/// The pclntab magics of Go 1.2, 1.16, 1.18 and 1.20 (`runtime/symtab.go`).
const PCLN_MAGICS: [u32; 4] = [0xffff_fffb, 0xffff_fffa, 0xffff_fff0, 0xffff_fff1];

/// One SIMD substring finder per function-name needle, built once. Each needle only needs
/// to be seen once per binary, so found ones are not searched again.
static FUNC_FINDERS: LazyLock<Vec<Finder<'static>>> =
    LazyLock::new(|| FUNC_NEEDLES.iter().map(Finder::new).collect());

/// pclntab magics followed by their two zero bytes: finders for little- and big-endian files.
static PCLN_FINDERS: LazyLock<[Vec<Finder<'static>>; 2]> = LazyLock::new(|| {
    let build = |big: bool| {
        PCLN_MAGICS
            .iter()
            .map(|m| {
                let mut v = if big {
                    m.to_be_bytes().to_vec()
                } else {
                    m.to_le_bytes().to_vec()
                };
                v.extend_from_slice(&[0, 0]);
                Finder::new(&v).into_owned()
            })
            .collect()
    };
    [build(false), build(true)]
});

/// The pclntab found: its file offset and magic.
struct Pcln {
    off: u64,
    magic: u32,
}

/// A pclntab chosen from magic-scan hits, and its name-table scan, set aside when the
/// section table arrives: if the section starts lead to the same offset, they are taken back
/// (the name table may have passed since).
struct SetAside {
    pcln: Pcln,
    fn_scan: Option<StreamScan>,
    fn_gap: Option<bool>,
    uses: GoUses,
}

/// The Go discovery state of one ELF scan.
#[derive(Default)]
pub(super) struct GoFind {
    bi_scan: Option<StreamScan>,
    bi_hits: Vec<u64>,
    bi_examined: usize,
    /// Captured read-only data ranges (`.rodata`) of a Go binary.
    rodata: Vec<Range<u64>>,
    rodata_planned: bool,
    /// A read-only range was wanted after part of it had passed uncaptured.
    rodata_lost: bool,
    pcln_scan: Option<StreamScan>,
    pcln_started: bool,
    /// Allocated, non-executable section starts, once the section table is parsed.
    pcln_starts: Option<Vec<u64>>,
    /// Aligned pclntab magics found by the scan, in file order.
    pcln_hits: Vec<u64>,
    /// How many candidates of the list in use (starts or hits) were examined.
    pcln_checked: usize,
    pcln: Option<Pcln>,
    /// A pclntab candidate could not be examined, or the magic scan could not see all of
    /// its range: part of it passed uncaptured (the table found, if any, may not be the
    /// one a whole read finds).
    pcln_lost: bool,
    set_aside: Option<SetAside>,
    fn_scan: Option<StreamScan>,
    /// How the function-name scan ended: `None` while none has, `Some(gap)` once one has,
    /// `gap` when it could not see all of its table (a sparse capture).
    fn_gap: Option<bool>,
    uses: GoUses,
    ver_scans: Vec<StreamScan>,
    ver_started: bool,
    /// Version-string candidates: (vaddr, bytes) of `go1.` strings in captured rodata.
    version_cands: Vec<(u64, Vec<u8>)>,
    /// vaddr → index into `version_cands`.
    version_index: HashMap<u64, u32>,
    /// String headers found: (candidate index, length).
    version_refs: Vec<(usize, u64)>,
}

impl ElfScanner {
    /// Starts the build-info magic scan over the writable segments. The blob lives in a
    /// writable, non-executable `PT_LOAD`: the first one (Go's fallback without sections),
    /// or a later one in PIE binaries, whose first writable segment is the RELRO one. All
    /// are scanned; `go_facts` prefers a hit in `.go.buildinfo` when section names are known.
    pub(super) fn plan_buildinfo_scan(&mut self) {
        let rw = writable_segments(self.phdrs.as_deref().unwrap_or_default());
        if let (Some(first), Some(last)) = (rw.first(), rw.last()) {
            let r = first.start..last.end;
            self.go.bi_scan = Some(StreamScan::new(
                r,
                go::BUILDINFO_MAGIC.len(),
                self.cap.pos(),
            ));
        }
    }

    /// The pclntab starts a section (`.gopclntab`, or `.data.rel.ro.gopclntab` in PIE),
    /// so every allocated, non-executable section start is a candidate; the magic and header
    /// checks pick the real one. This works before section names are known (Go 1.27 writes
    /// `.shstrtab` last).
    ///
    /// Where the pclntab is looked for depends on the file, not on when its section table
    /// streams past: the section starts when the table offers any, else the magic scan. A
    /// scan that ran while the table was still ahead is dropped here, with its choice,
    /// when the table offers candidates.
    pub(super) fn plan_pcln_candidates(&mut self) {
        let Some(h) = self.hdr else { return };
        let mut starts: Vec<u64> = self
            .shdrs
            .as_ref()
            .map(|v| {
                v.iter()
                    .filter(|s| {
                        s.sh_type == sh::SHT_PROGBITS
                            && s.sh_flags & u64::from(sh::SHF_ALLOC) != 0
                            && s.sh_flags & u64::from(sh::SHF_EXECINSTR) == 0
                    })
                    .filter(|s| s.sh_size >= 8 + 8 * h.ptr())
                    .map(|s| s.sh_offset)
                    .collect()
            })
            .unwrap_or_default();
        starts.sort_unstable();
        starts.dedup();
        starts.truncate(MAX_PCLN_CANDIDATES);
        for &o in &starts {
            self.want(o..o.saturating_add(8 + 8 * h.ptr()));
        }
        if !starts.is_empty() {
            self.go.pcln_scan = None;
            self.go.pcln_hits.clear();
            self.go.pcln_checked = 0;
            if let Some(pcln) = self.go.pcln.take() {
                self.go.set_aside = Some(SetAside {
                    pcln,
                    fn_scan: self.go.fn_scan.take(),
                    fn_gap: self.go.fn_gap.take(),
                    uses: std::mem::take(&mut self.go.uses),
                });
            }
        }
        self.go.pcln_starts = Some(starts);
    }

    /// Whether the section table decides where the pclntab is (it offered candidates).
    fn pcln_from_sections(&self) -> bool {
        self.go.pcln_starts.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// The next pclntab candidate to examine: a section start when the section table offers
    /// any, else a magic-scan hit of a binary known to be Go (by its build-ID note).
    fn next_pcln_candidate(&self) -> Option<u64> {
        let list = if self.pcln_from_sections() {
            self.go.pcln_starts.as_deref()?
        } else if self.notes_parsed && self.go_note.is_some() {
            &self.go.pcln_hits
        } else {
            return None;
        };
        list.get(self.go.pcln_checked).copied()
    }

    /// Go-specific progress: pclntab header, build-info blob lengths, scans to start.
    pub(super) fn step_go(&mut self) -> bool {
        let Some(h) = self.hdr else { return false };
        if self.phdrs.is_none() {
            return false;
        }
        let mut changed = false;
        // Examine new build-info hits: extend the capture to the blob's real length.
        while self.go.bi_examined < self.go.bi_hits.len() {
            let off = self.go.bi_hits[self.go.bi_examined];
            let head = off..(off + 32 + 20).min(self.segment_end(off));
            if !self.cap.has(&head) {
                break;
            }
            self.go.bi_examined += 1;
            changed = true;
            let bytes = self.cap.get(head).unwrap_or_default();
            match go::parse_header(bytes) {
                Ok(go::BlobHeader::Inline) => {
                    if let Some(len) = go::inline_len(&bytes[32..]).or_else(|| {
                        // Lengths may need more than the head: read them from the window.
                        let w = off + 32..(off + BUILDINFO_WINDOW).min(self.segment_end(off));
                        self.cap.get(w).and_then(go::inline_len)
                    }) {
                        let end = off + 32 + len.min(MAX_GO_BUILDINFO_BYTES);
                        self.want(off..end.min(self.segment_end(off)));
                    }
                }
                Ok(go::BlobHeader::Pointer {
                    ptr_size,
                    version_addr,
                    modinfo_addr,
                    ..
                }) => {
                    for a in [version_addr, modinfo_addr] {
                        if let Some(o) = self.vaddr_to_off(a) {
                            self.want(o..o + 2 * u64::from(ptr_size));
                        }
                    }
                    // The strings themselves live in read-only data, captured by
                    // `plan_rodata` when the section table came early enough.
                }
                Err(_) => {}
            }
        }
        // The pclntab header: from the section, or the first valid magic candidate.
        while self.go.pcln.is_none() {
            let Some(off) = self.next_pcln_candidate() else {
                break;
            };
            let r = off..off.saturating_add(8 + 8 * h.ptr());
            // A header that does not fit in the file, or whose passed part was not kept
            // (sparse capture over budget), cannot be examined. One that straddles the
            // stream position is still arriving: wait for it.
            let passed = r.start..r.end.min(self.cap.pos());
            let lost = passed.start < passed.end && !self.cap.has(&passed);
            if r.end > self.cap.size() || lost {
                // A candidate that passed uncaptured may have been the table: say so.
                self.go.pcln_lost |= lost && r.end <= self.cap.size();
                self.go.pcln_checked += 1;
                continue;
            }
            if !self.cap.has(&r) {
                break;
            }
            self.go.pcln_checked += 1;
            changed = true;
            let b = self.cap.get(r).unwrap_or_default();
            let magic = read_u32(b, 0, h.big);
            let valid = magic.is_some_and(|m| go::pclntab_magic_versions(m).is_some())
                && b[4] == 0
                && b[5] == 0
                && matches!(b[6], 1 | 2 | 4)
                && u64::from(b[7]) == h.ptr();
            if let (true, Some(magic)) = (valid, magic) {
                self.go.pcln_scan = None;
                match self.go.set_aside.take() {
                    Some(a) if a.pcln.off == off => {
                        self.go.pcln = Some(a.pcln);
                        self.go.fn_scan = a.fn_scan;
                        self.go.fn_gap = a.fn_gap;
                        self.go.uses = a.uses;
                    }
                    _ => {
                        self.go.pcln = Some(Pcln { off, magic });
                        self.plan_funcnames();
                    }
                }
            }
        }
        if !self.go.rodata_planned {
            changed |= self.step_rodata(h);
        }
        // A pclntab magic scan unless the section table offers candidates or the notes say
        // the file is not Go. It starts with the program headers, before either is known
        // (the section table may come at the end of the file, or be missing).
        let not_go = self.notes_parsed && self.go_note.is_none();
        if !self.go.pcln_started && self.go.pcln.is_none() && !self.pcln_from_sections() && !not_go
        {
            self.start_pcln_scan();
            changed = true;
        }
        if not_go && (self.go.pcln_scan.is_some() || !self.go.pcln_hits.is_empty()) {
            self.go.pcln_scan = None;
            self.go.pcln_hits.clear();
            changed = true;
        }
        // No blob at the start of the last writable segment: look for the string header of
        // `runtime.buildVersion` in writable data, pointing at a `go1.` string in `.rodata`.
        if !self.go.ver_started && self.go.bi_hits.is_empty() && !self.go.rodata.is_empty() {
            let rw = writable_segments(self.phdrs.as_deref().unwrap_or_default());
            if let Some(last) = rw.last() {
                if self.cap.pos() >= last.start.saturating_add(64)
                    || self.cap.pos() + 1 >= self.cap.size()
                {
                    self.go.ver_started = true;
                    self.go.version_cands = self.find_version_candidates();
                    self.go.version_index = self
                        .go
                        .version_cands
                        .iter()
                        .enumerate()
                        .map(|(i, (v, _))| (*v, i as u32))
                        .collect();
                    if !self.go.version_cands.is_empty() {
                        for r in rw {
                            self.go.ver_scans.push(StreamScan::new(
                                r,
                                2 * h.ptr() as usize,
                                self.cap.pos(),
                            ));
                        }
                    }
                    changed = true;
                }
            }
        }
        changed
    }

    /// Keeps `.rodata` of Go binaries: module info and version strings can be recovered from
    /// it when the build-info blob is gone, and pre-1.18 blobs point into it. Go is recognised
    /// by its build-ID note, or by the layout of Go's linker, which writes the section table
    /// before all section data (npm's esbuild has no notes). Every decision here follows from
    /// the file's layout, never from how far the stream has got, so that a file read whole and
    /// one read in pieces keep the same ranges. Returns whether it decided.
    fn step_rodata(&mut self, h: Hdr) -> bool {
        let table_end = h.shoff.saturating_add(h.shnum.saturating_mul(h.shent()));
        // The section table is known, or never will be (none, or past the end of the file).
        let table_final = self.shdrs.is_some() || h.shnum == 0 || table_end > self.cap.size();
        if self.go_note.is_none() && !self.section_table_first() {
            // Not Go as far as is known yet: final once both the notes and the table are.
            if self.notes_parsed && table_final {
                self.go.rodata_planned = true;
                return true;
            }
            return false;
        }
        // A segment that comes after the section table is planned from its sections.
        let after_table = |p: &ProgramHeader| table_end <= p.p_offset;
        let phdrs = self.phdrs.clone().unwrap_or_default();
        if !table_final && read_only_segments(&phdrs).any(after_table) {
            return false;
        }
        self.go.rodata_planned = true;
        let shdrs = self.shdrs.clone().unwrap_or_default();
        let mut wants = Vec::new();
        for p in read_only_segments(&phdrs) {
            let seg = p.p_offset..p.p_offset.saturating_add(p.p_filesz);
            if !after_table(p) || shdrs.is_empty() {
                // The section table comes later (a streamed file has not seen it when the
                // segment passes), or is missing or broken: the segment's start.
                wants.push(seg.start..seg.end.min(seg.start.saturating_add(RODATA_CAPTURE_BYTES)));
                continue;
            }
            // The first allocated section of the segment (`.rodata` for Go's linker).
            let first = shdrs
                .iter()
                .filter(|s| {
                    s.sh_type == sh::SHT_PROGBITS
                        && s.sh_flags & u64::from(sh::SHF_ALLOC) != 0
                        && seg.contains(&s.sh_offset)
                })
                .min_by_key(|s| s.sh_offset);
            if let Some(s) = first {
                let end = s
                    .sh_offset
                    .saturating_add(s.sh_size.min(RODATA_CAPTURE_BYTES))
                    .min(seg.end);
                wants.push(s.sh_offset..end);
            }
        }
        for w in wants {
            if self.want(w.clone()) {
                self.go.rodata.push(w);
            } else {
                // Part of it passed uncaptured (a sparse capture decided late).
                self.go.rodata_lost = true;
            }
        }
        true
    }

    /// `go1.` strings in captured `.rodata`: (vaddr, bytes from there, at most 48).
    fn find_version_candidates(&self) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for r in &self.go.rodata {
            let Some(b) = self.cap.get(r.clone()) else {
                continue;
            };
            for i in memchr::memmem::find_iter(b, b"go1.") {
                if out.len() >= MAX_VERSION_HITS {
                    return out;
                }
                let Some(v) = self.off_to_vaddr(r.start + i as u64) else {
                    continue;
                };
                let end = (i + VERSION_WINDOW as usize).min(b.len());
                out.push((v, b[i..end].to_vec()));
            }
        }
        out
    }

    /// Starts the pclntab magic scan over the non-executable loaded segments.
    fn start_pcln_scan(&mut self) {
        self.go.pcln_started = true;
        let phdrs: &[ProgramHeader] = self.phdrs.as_deref().unwrap_or_default();
        let segs: Vec<Range<u64>> = phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD && p.p_flags & ph::PF_X == 0)
            .map(|p| p.p_offset..p.p_offset.saturating_add(p.p_filesz))
            .collect();
        if let (Some(first), Some(last)) = (segs.first(), segs.last()) {
            let (scan, passed) = self.new_scan(first.start..last.end, 6);
            // Started past bytes a sparse capture did not keep: a table there goes unseen.
            self.go.pcln_lost |= scan.gap;
            self.go.pcln_scan = Some(scan);
            if let Some(b) = passed {
                self.feed_pcln_scan(first.start, &b);
            }
        }
    }

    /// A scan of `range` planned now. When part of the range has passed and the capture
    /// kept all of that part (a file captured whole), the scan starts at the range and the
    /// passed bytes are returned, to be fed first: what it finds then does not depend on
    /// the read size. Otherwise it starts at the stream position (with a gap).
    fn new_scan(&self, range: Range<u64>, overlap: usize) -> (StreamScan, Option<Vec<u8>>) {
        let pos = self.cap.pos();
        let passed = range.start..range.end.min(pos);
        let kept = (passed.start < passed.end)
            .then(|| self.cap.get(passed).map(<[u8]>::to_vec))
            .flatten();
        let from = if kept.is_some() { range.start } else { pos };
        (StreamScan::new(range, overlap, from), kept)
    }

    /// The pointer-sized word at file offset `off`, when captured.
    fn read_word(&self, off: u64) -> Option<u64> {
        let h = self.hdr?;
        let b = self.cap.get(off..off.saturating_add(h.ptr()))?;
        read_uint(b, h.ptr() as usize, h.big)
    }

    /// Starts the function-name scan over the pclntab's name table.
    fn plan_funcnames(&mut self) {
        let (Some(h), Some(p)) = (self.hdr, self.go.pcln.as_ref()) else {
            return;
        };
        let ptr = h.ptr();
        let field = |i: u64| self.read_word(p.off.saturating_add(8 + i * ptr));
        let range = match p.magic {
            // 1.18+: nfunc, nfiles, textStart, funcnameOffset, cuOffset, …
            0xffff_fff0 | 0xffff_fff1 => field(3).zip(field(4)),
            // 1.16/1.17: nfunc, nfiles, funcnameOffset, cuOffset, …
            0xffff_fffa => field(2).zip(field(3)),
            // 1.2–1.15: names are interleaved with the function table: scan it all.
            _ => Some((0, self.segment_end(p.off).saturating_sub(p.off))),
        };
        let Some((a, b)) = range else { return };
        let (start, end) = (p.off.saturating_add(a), p.off.saturating_add(b));
        if start < end && end <= self.cap.size() && end - start <= MAX_FUNCNAME_TABLE {
            let (scan, passed) = self.new_scan(start..end, 32);
            self.go.fn_scan = Some(scan);
            if let Some(b) = passed {
                self.feed_fn_scan(start, &b);
            }
        }
    }

    /// Runs the build-info magic scan over a chunk; returns whether a hit was recorded.
    pub(super) fn scan_buildinfo(&mut self, start: u64, data: &[u8]) -> bool {
        let Some(mut scan) = self.go.bi_scan.take() else {
            return false;
        };
        let mut any = false;
        let hits = scan.feed(start, data, |s, at, emit| {
            for i in memchr::memmem::find_iter(s, go::BUILDINFO_MAGIC) {
                emit(at + i as u64, go::BUILDINFO_MAGIC.len(), 0);
            }
        });
        for (off, _) in hits {
            // Go only accepts 16-byte aligned virtual addresses.
            let aligned = self.off_to_vaddr(off).is_some_and(|v| v % 16 == 0);
            if aligned && self.go.bi_hits.len() < MAX_BUILDINFO_HITS {
                self.keep_held(&scan, off);
                self.go.bi_hits.push(off);
                let end = (off + BUILDINFO_WINDOW).min(self.segment_end(off));
                self.want(off..end);
                any = true;
            }
        }
        if !scan.done() {
            self.go.bi_scan = Some(scan);
        }
        any
    }

    /// Runs the pclntab magic, function-name and version-string scans over a chunk;
    /// returns whether a hit was recorded.
    pub(super) fn scan_go(&mut self, start: u64, data: &[u8]) -> bool {
        let Some(h) = self.hdr else { return false };
        let mut any = self.feed_pcln_scan(start, data);
        self.feed_fn_scan(start, data);
        if !self.go.ver_scans.is_empty() {
            // Candidate `go1.` strings by virtual address; a hit's tag carries the
            // candidate's index and the string length, so no bytes need re-reading.
            let index = &self.go.version_index;
            let ptr = h.ptr();
            let width = ptr as usize;
            let mut scans = std::mem::take(&mut self.go.ver_scans);
            for scan in &mut scans {
                let hits = scan.feed(start, data, |s, at, emit| {
                    let n = s.len() as u64;
                    let mut i = (ptr - at % ptr) % ptr;
                    while i + 2 * ptr <= n {
                        let word = |at: u64| read_uint(&s[at as usize..], width, h.big);
                        if let Some(&idx) = word(i).and_then(|w| index.get(&w)) {
                            if let Some(len) = word(i + ptr) {
                                if (4..=VERSION_WINDOW).contains(&len) {
                                    emit(at + i, 2 * width, (idx << 8) | len as u32);
                                }
                            }
                        }
                        i += ptr;
                    }
                });
                for (_, tag) in hits {
                    self.go
                        .version_refs
                        .push(((tag >> 8) as usize, u64::from(tag & 0xff)));
                    any = true;
                }
            }
            scans.retain(|s| !s.done());
            self.go.ver_scans = scans;
        }
        any
    }

    /// Runs the pclntab magic scan over a chunk; returns whether a hit was recorded.
    fn feed_pcln_scan(&mut self, start: u64, data: &[u8]) -> bool {
        let (Some(h), Some(mut scan)) = (self.hdr, self.go.pcln_scan.take()) else {
            return false;
        };
        let mut any = false;
        let finders = &PCLN_FINDERS[usize::from(h.big)];
        let hits = scan.feed(start, data, |s, at, emit| {
            for f in finders {
                for i in f.find_iter(s) {
                    emit(at + i as u64, 6, 0);
                }
            }
        });
        for (off, _) in hits {
            let aligned = self.off_to_vaddr(off).is_some_and(|v| v % h.ptr() == 0);
            if aligned && self.go.pcln_hits.len() < MAX_PCLN_CANDIDATES {
                self.keep_held(&scan, off);
                self.go.pcln_hits.push(off);
                self.want(off..off.saturating_add(8 + 8 * h.ptr()));
                any = true;
            }
        }
        if !scan.done() && self.go.pcln.is_none() {
            self.go.pcln_scan = Some(scan);
        }
        any
    }

    /// Runs the function-name scan over a chunk.
    fn feed_fn_scan(&mut self, start: u64, data: &[u8]) {
        let Some(mut scan) = self.go.fn_scan.take() else {
            return;
        };
        let found = self.go.uses.flags();
        let hits = scan.feed(start, data, |s, at, emit| {
            for (i, f) in FUNC_FINDERS.iter().enumerate() {
                if found & (1 << i) == 0 {
                    if let Some(k) = f.find(s) {
                        emit(at + k as u64, FUNC_NEEDLES[i].len(), i as u32);
                    }
                }
            }
        });
        for (_, tag) in hits {
            self.go.uses.set(tag as usize);
        }
        if scan.done() {
            self.go.fn_gap = Some(scan.gap);
        } else {
            self.go.fn_scan = Some(scan);
        }
    }

    /// The Go facts, for a Go binary: build info from the blob (or recovered from
    /// read-only data), build ID, pclntab release range and packages used.
    pub(super) fn go_facts(&self, incomplete: &mut Vec<String>) -> Option<GoFacts> {
        let pclntab = self
            .go
            .pcln
            .as_ref()
            .and_then(|p| go::pclntab_magic_versions(p.magic));
        let mut facts = GoFacts {
            build_info: None,
            source: None,
            build_id: self.go_note.clone(),
            pclntab,
            uses: (self.go.pcln.is_some() && self.go.fn_gap == Some(false)).then_some(self.go.uses),
            build_info_error: None,
        };
        // The blob: inside `.go.buildinfo` when that section exists, else the first hit.
        let section = self
            .section(".go.buildinfo")
            .map(|s| s.sh_offset..s.sh_offset.saturating_add(s.sh_size));
        let hit = match &section {
            Some(r) => self.go.bi_hits.iter().copied().find(|o| r.contains(o)),
            None => self.go.bi_hits.first().copied(),
        };
        let mem = CaptureMem { scanner: self };
        if let Some(off) = hit {
            let end = self.segment_end(off);
            let blob = self
                .cap
                .get(off..end.min(off + 32 + MAX_GO_BUILDINFO_BYTES + 20))
                .or_else(|| {
                    // Not all of the window was captured: use what is there.
                    let mut e = end.min(off + BUILDINFO_WINDOW);
                    while e > off + 32 && !self.cap.has(&(off..e)) {
                        e = off + 32 + (e - off - 32) / 2;
                    }
                    self.cap.get(off..e)
                });
            let decoded = blob.ok_or(go::GoError::Truncated).and_then(|b| {
                let header = go::parse_header(b)?;
                match header {
                    go::BlobHeader::Inline => go::parse_inline(&b[32..]),
                    ref p @ go::BlobHeader::Pointer { .. } => go::parse_pointer(p, &mem),
                }
            });
            facts.source = Some(if section.is_some() {
                BuildInfoSource::Section
            } else {
                BuildInfoSource::Segment
            });
            match decoded.and_then(|(v, raw)| go::decode_modinfo(&v, &raw)) {
                Ok(bi) => facts.build_info = Some(bi),
                Err(e) => {
                    facts.build_info_error = Some(format!("build info unreadable: {e}"));
                    incomplete.push("go build info".into());
                }
            }
        }
        let named = incomplete.iter().any(|i| i == "go build info");
        if facts.build_info.is_none() && self.go.rodata_lost && !named {
            incomplete.push("go build info".into());
        }
        if facts.build_info.is_none() {
            if let Some(bi) = self.recover_from_rodata() {
                facts.build_info = Some(bi);
                facts.source = Some(BuildInfoSource::Rodata);
                facts.build_info_error = Some(if hit.is_some() {
                    "build-info blob unreadable; module info recovered from read-only data".into()
                } else {
                    concat!(
                        "no .go.buildinfo blob (removed after linking); ",
                        "module info recovered from read-only data"
                    )
                    .into()
                });
            }
        }
        let is_go = facts.build_info.is_some()
            || hit.is_some()
            || self.go_note.is_some()
            || self.go.pcln.is_some()
            || self.section(".gopclntab").is_some();
        if !is_go {
            return None;
        }
        // A candidate that could not be examined may have been the table, or an earlier one
        // than the table chosen: what the table says is then not known for sure.
        if self.go.pcln_lost {
            incomplete.push("go pclntab".into());
        }
        // A name-table scan still open at the end started past bytes it never saw.
        if self.go.pcln.is_some() && (self.go.fn_gap == Some(true) || self.go.fn_scan.is_some()) {
            incomplete.push("go packages used".into());
        }
        if facts.build_info.is_none() && facts.build_info_error.is_none() {
            facts.build_info_error =
                Some("no build info (removed, stripped, or a toolchain older than Go 1.13)".into());
        }
        Some(facts)
    }

    /// Module info from the `runtime.modinfo` copy in `.rodata`, and the Go version from a
    /// string header in writable data that points at a `go1.…` string there.
    fn recover_from_rodata(&self) -> Option<BuildInfo> {
        let text = self.go.rodata.iter().find_map(|r| {
            let b = self.cap.get(r.clone())?;
            memchr::memmem::find_iter(b, &go::MODINFO_START).find_map(|start| {
                let rest = &b[start..];
                let end = memchr::memmem::find(rest.get(16..)?, &go::MODINFO_END)? + 32;
                let text = go::strip_framing(&rest[..end]);
                (!text.is_empty()).then(|| text.to_vec())
            })
        })?;
        let version = self.go.version_refs.iter().find_map(|&(i, len)| {
            let (_, bytes) = self.go.version_cands.get(i)?;
            let s = std::str::from_utf8(bytes.get(..len as usize)?).ok()?;
            go::GoVersion::parse(s).map(|_| s.to_string())
        });
        go::parse_modinfo(
            version.as_deref().unwrap_or(""),
            std::str::from_utf8(&text).ok()?,
        )
        .ok()
    }
}

/// Reads virtual addresses through the capture, for the pre-1.18 pointer format.
struct CaptureMem<'a> {
    scanner: &'a ElfScanner,
}

impl go::Memory for CaptureMem<'_> {
    fn read(&self, vaddr: u64, len: u64) -> Option<&[u8]> {
        let off = self.scanner.vaddr_to_off(vaddr)?;
        self.scanner.cap.get(off..off.checked_add(len)?)
    }
}

/// The `PT_LOAD` segments that are neither writable nor executable.
fn read_only_segments(phdrs: &[ProgramHeader]) -> impl Iterator<Item = &ProgramHeader> {
    phdrs
        .iter()
        .filter(|p| p.p_type == ph::PT_LOAD && p.p_flags & (ph::PF_X | ph::PF_W) == 0)
}
