//! The ELF header, the program and section header tables, section names, and the file
//! ranges they locate: what the scanner plans to capture first, and the mapping between
//! virtual addresses and file offsets through the `PT_LOAD` segments.
//!
//! Formats: the System V gABI, "ELF Header", "Program Header" and "Sections"
//! (<https://refspecs.linuxfoundation.org/elf/gabi4+/contents.html>).

use std::ops::Range;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{program_header as ph, section_header as sh, ProgramHeader, SectionHeader};

use super::scan::{keep_last, StreamScan};
use super::{DebugInfo, ElfScanner, Progress};
use crate::inspect::bytes::cstr;
use crate::limits::{MAX_ELF_HEADERS, MAX_ELF_INTERP_BYTES, MAX_ELF_TABLE_BYTES};

/// Bytes always captured from the start of a sparsely captured file: the ELF header,
/// program headers, notes and, for most linkers, the interpreter and dynamic-linking tables.
pub(super) const PREFIX_BYTES: u64 = 64 << 10;
/// Bytes captured just before a section table at the end of a file (GNU ld puts
/// `.shstrtab` there).
pub(super) const SHT_TAIL_BYTES: u64 = 64 << 10;
/// The name the section-name table gives itself.
const SHSTRTAB_NAME: &[u8] = b".shstrtab\0";
/// Bytes kept around each `.shstrtab` name found between the loaded segments and a far
/// section table (lld writes `.symtab`, `.shstrtab`, then `.strtab`): the names table of a
/// linked file is well under this (Go ~0.4 KiB, a Rust binary ~0.5 KiB).
pub(super) const NAMES_WINDOW: u64 = 16 << 10;
/// At most this many `.shstrtab` strings are kept (a symbol or debug string table may
/// contain the word too).
pub(super) const MAX_NAMES_HITS: usize = 4;
/// A non-executable first segment (GNU ld's headers segment with `.dynsym`, `.dynstr`,
/// version tables) is captured up to this size.
const FIRST_SEGMENT_BYTES: u64 = 4 << 20;

/// The fields of the ELF header the scanner uses, with the PN_XNUM / SHN_XINDEX escapes
/// resolved once section 0 is read.
#[derive(Clone, Copy)]
pub(super) struct Hdr {
    pub(super) ctx: Ctx,
    pub(super) is64: bool,
    pub(super) big: bool,
    pub(super) e_type: u16,
    pub(super) machine: u16,
    pub(super) os_abi: u8,
    pub(super) phoff: u64,
    pub(super) phnum: u64,
    pub(super) shoff: u64,
    pub(super) shnum: u64,
    pub(super) shstrndx: u64,
}

impl Hdr {
    /// Size of an address or `Elf_Off` in bytes.
    pub(super) fn ptr(&self) -> u64 {
        if self.is64 {
            8
        } else {
            4
        }
    }

    fn phent(&self) -> u64 {
        if self.is64 {
            56
        } else {
            32
        }
    }

    pub(super) fn shent(&self) -> u64 {
        if self.is64 {
            64
        } else {
            40
        }
    }
}

/// The section-name table of a sparsely captured file whose section table comes after
/// more than [`SHT_TAIL_BYTES`] of other non-loaded data. Its place is only known once the
/// section table arrives, after it has passed, so the bytes between the loaded segments and
/// the tail window are scanned for the table's own name, `.shstrtab`, and the
/// [`NAMES_WINDOW`] bytes each side of a hit are kept: the part already passed from a
/// look-back buffer of that size, the rest as it arrives.
pub(super) struct NamesScan {
    scan: StreamScan,
    /// The last bytes of the range before `back_end` (at most [`NAMES_WINDOW`]).
    back: Vec<u8>,
    back_end: u64,
    hits: usize,
}

/// Parses the ELF header at the start of `b` (a file of `size` bytes). Returns the header
/// and whether section 0 must be read to resolve PN_XNUM / SHN_XINDEX escapes.
pub(super) fn parse_header(b: &[u8], size: u64) -> Result<(Hdr, bool), String> {
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Err("truncated ELF header".into());
    }
    let is64 = match b[4] {
        1 => false,
        2 => true,
        c => return Err(format!("invalid ELF class {c}")),
    };
    let big = match b[5] {
        1 => false,
        2 => true,
        d => return Err(format!("invalid ELF data encoding {d}")),
    };
    if is64 && b.len() < 64 {
        return Err("truncated ELF header".into());
    }
    let hdr = goblin::elf::Elf::parse_header(b).map_err(|e| format!("bad ELF header: {e}"))?;
    let ctx = Ctx::new(
        if is64 {
            Container::Big
        } else {
            Container::Little
        },
        if big { Endian::Big } else { Endian::Little },
    );
    let mut h = Hdr {
        ctx,
        is64,
        big,
        e_type: hdr.e_type,
        machine: hdr.e_machine,
        os_abi: b[7],
        phoff: hdr.e_phoff,
        phnum: u64::from(hdr.e_phnum),
        shoff: hdr.e_shoff,
        shnum: u64::from(hdr.e_shnum),
        shstrndx: u64::from(hdr.e_shstrndx),
    };
    if h.phnum > 0 && u64::from(hdr.e_phentsize) != h.phent() {
        return Err(format!(
            "unexpected program header size {}",
            hdr.e_phentsize
        ));
    }
    if h.shnum > 0 && u64::from(hdr.e_shentsize) != h.shent() {
        // Not fatal: ignore the section table.
        h.shnum = 0;
    }
    if h.phoff >= size && h.phnum > 0 {
        return Err("program headers outside the file".into());
    }
    let escapes = h.shoff != 0
        && h.shoff.saturating_add(h.shent()) <= size
        && (h.phnum == 0xffff || h.shnum == 0 || h.shstrndx == 0xffff);
    if h.shnum == 0 && !escapes {
        h.shoff = 0;
    }
    Ok((h, escapes))
}

/// File ranges of the writable, non-executable `PT_LOAD` segments, in file order.
pub(super) fn writable_segments(phdrs: &[ProgramHeader]) -> Vec<Range<u64>> {
    let mut v: Vec<Range<u64>> = phdrs
        .iter()
        .filter(|p| {
            p.p_type == ph::PT_LOAD
                && p.p_flags & ph::PF_W != 0
                && p.p_flags & ph::PF_X == 0
                && p.p_filesz > 0
        })
        .map(|p| p.p_offset..p.p_offset.saturating_add(p.p_filesz))
        .collect();
    v.sort_by_key(|r| r.start);
    v
}

/// The file range of a table `len` bytes long at `off`, cut at [`MAX_ELF_TABLE_BYTES`].
pub(super) fn table_range(off: u64, len: u64) -> Range<u64> {
    off..off.saturating_add(len.min(MAX_ELF_TABLE_BYTES))
}

impl ElfScanner {
    /// Reads the ELF header once its bytes are captured.
    pub(super) fn step_header(&mut self) -> Progress {
        let need = 64u64.min(self.cap.size());
        if !self.cap.has(&(0..need)) {
            return Progress::Waiting;
        }
        match parse_header(self.cap.bytes(), self.cap.size()) {
            Ok((h, escapes)) => {
                self.hdr = Some(h);
                self.escapes = escapes;
                self.plan_tables();
                Progress::Done
            }
            Err(e) => {
                self.fail(e);
                Progress::Failed
            }
        }
    }

    /// Resolves the PN_XNUM / SHN_XINDEX escapes from section 0. Returns false while
    /// section 0 is not captured.
    pub(super) fn step_escapes(&mut self, h: Hdr) -> bool {
        let sec0 = h.shoff..h.shoff.saturating_add(h.shent());
        let Some(b) = self.cap.get(sec0) else {
            return false;
        };
        let s0 = SectionHeader::parse(b, 0, 1, h.ctx)
            .ok()
            .and_then(|v| v.into_iter().next());
        let mut hh = h;
        if let Some(s0) = s0 {
            if hh.phnum == 0xffff {
                hh.phnum = u64::from(s0.sh_info);
            }
            if hh.shnum == 0 {
                hh.shnum = s0.sh_size;
            }
            if hh.shstrndx == 0xffff {
                hh.shstrndx = u64::from(s0.sh_link);
            }
        }
        if hh.phnum > MAX_ELF_HEADERS || hh.shnum > MAX_ELF_HEADERS {
            self.fail("too many program or section headers");
            return true;
        }
        self.hdr = Some(hh);
        self.escapes = false;
        self.plan_tables();
        true
    }

    /// Reads the program header table once captured, and plans the segments it names.
    pub(super) fn step_program_headers(&mut self, h: Hdr) -> Progress {
        let r = h.phoff..h.phoff.saturating_add(h.phnum * h.phent());
        if !self.cap.has(&r) {
            return Progress::Waiting;
        }
        match ProgramHeader::parse(self.cap.bytes(), h.phoff as usize, h.phnum as usize, h.ctx) {
            Ok(p) => {
                self.phdrs = Some(p);
                self.plan_segments();
                Progress::Done
            }
            Err(e) => {
                self.fail(format!("bad program headers: {e}"));
                Progress::Failed
            }
        }
    }

    /// Reads the section header table once captured and plans the tables it points at.
    /// `None` while it is not captured; `Some(false)` when it is broken (then treated as
    /// absent, which a file survives).
    pub(super) fn step_section_headers(&mut self, h: Hdr) -> Option<bool> {
        let r = h.shoff..h.shoff.saturating_add(h.shnum * h.shent());
        if !self.cap.has(&r) {
            return None;
        }
        match SectionHeader::parse(self.cap.bytes(), h.shoff as usize, h.shnum as usize, h.ctx) {
            Ok(s) => {
                self.shdrs = Some(s);
                self.plan_shstrtab();
                self.plan_section_tables();
                Some(true)
            }
            Err(_) => {
                self.shdrs = Some(Vec::new());
                Some(false)
            }
        }
    }

    /// Wants the program and section header tables.
    fn plan_tables(&mut self) {
        let Some(h) = self.hdr else { return };
        let size = self.cap.size();
        if self.escapes {
            self.want(h.shoff..h.shoff.saturating_add(h.shent()));
            return;
        }
        let ph_end = h.phoff.saturating_add(h.phnum * h.phent());
        if h.phnum > 0 && ph_end > size {
            self.fail("program headers extend past the end of the file");
            return;
        }
        self.want(h.phoff..ph_end);
        let sh_end = h.shoff.saturating_add(h.shnum * h.shent());
        if h.shnum > 0 && sh_end <= size {
            self.want(h.shoff..sh_end);
            self.want(h.shoff.saturating_sub(SHT_TAIL_BYTES)..h.shoff);
        } else if let Some(h) = &mut self.hdr {
            // A section table outside the file is treated as absent (like sstrip output).
            h.shnum = 0;
        }
    }

    /// Wants the interpreter, dynamic section, notes and a non-executable first segment,
    /// and starts the names scan.
    fn plan_segments(&mut self) {
        let phdrs = self.phdrs.clone().unwrap_or_default();
        for p in &phdrs {
            if matches!(p.p_type, ph::PT_INTERP | ph::PT_DYNAMIC | ph::PT_NOTE) {
                self.want(table_range(p.p_offset, p.p_filesz));
            }
        }
        if let Some(first) = phdrs.iter().find(|p| p.p_type == ph::PT_LOAD) {
            if first.p_offset == 0 && first.p_flags & ph::PF_X == 0 {
                self.want(0..first.p_filesz.min(FIRST_SEGMENT_BYTES));
            }
        }
        self.plan_names_scan(&phdrs);
    }

    /// Starts a [`NamesScan`] over the non-loaded bytes before the tail window, when the
    /// file is captured sparsely and that stretch exists.
    fn plan_names_scan(&mut self, phdrs: &[ProgramHeader]) {
        let Some(h) = self.hdr else { return };
        if self.cap.is_whole() || h.shnum == 0 {
            return;
        }
        let loaded_end = phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD)
            .map(|p| p.p_offset.saturating_add(p.p_filesz))
            .max()
            .unwrap_or(0);
        let end = h.shoff.saturating_sub(SHT_TAIL_BYTES).min(self.cap.size());
        if loaded_end < end {
            let scan = StreamScan::new(loaded_end..end, SHSTRTAB_NAME.len(), self.cap.pos());
            self.names_scan = Some(NamesScan {
                scan,
                back: Vec::new(),
                back_end: 0,
                hits: 0,
            });
        }
    }

    /// Runs the names scan over a chunk; returns whether a window was planned.
    pub(super) fn scan_names(&mut self, start: u64, data: &[u8]) -> bool {
        let Some(mut n) = self.names_scan.take() else {
            return false;
        };
        let mut any = false;
        let hits = n.scan.feed(start, data, |s, at, emit| {
            for i in memchr::memmem::find_iter(s, SHSTRTAB_NAME) {
                emit(at + i as u64, SHSTRTAB_NAME.len(), 0);
            }
        });
        for (off, _) in hits {
            if n.hits == MAX_NAMES_HITS {
                break;
            }
            n.hits += 1;
            let w = off.saturating_sub(NAMES_WINDOW)..off + NAMES_WINDOW;
            // Passed bytes from the look-back buffer (which ends where this chunk starts).
            let back_start = n.back_end - n.back.len() as u64;
            if n.back_end == start && w.start < start {
                let from = w.start.max(back_start);
                self.cap.put(from, &n.back[(from - back_start) as usize..]);
            }
            self.want(w.start.max(start)..w.end);
            any = true;
        }
        if !n.scan.done() && n.hits < MAX_NAMES_HITS {
            self.names_scan = Some(n);
        }
        any
    }

    /// Moves the names scan's look-back buffer past this chunk.
    pub(super) fn keep_names_back(&mut self, start: u64, data: &[u8]) {
        let Some(n) = &mut self.names_scan else {
            return;
        };
        let r = &n.scan.range;
        let (lo, hi) = (r.start.max(start), r.end.min(start + data.len() as u64));
        if lo >= hi {
            return;
        }
        if n.back_end != lo {
            n.back.clear();
        }
        keep_last(
            &mut n.back,
            &data[(lo - start) as usize..(hi - start) as usize],
            NAMES_WINDOW as usize,
        );
        n.back_end = hi;
    }

    fn plan_shstrtab(&mut self) {
        let Some(h) = self.hdr else { return };
        let Some(s) = self.shdrs.as_ref().and_then(|s| s.get(h.shstrndx as usize)) else {
            return;
        };
        if s.sh_type == sh::SHT_NOBITS {
            return;
        }
        self.want(table_range(s.sh_offset, s.sh_size));
    }

    /// Section names, once the section table and its name table are captured.
    pub(super) fn section_names(&self) -> Option<Vec<String>> {
        let h = self.hdr?;
        let shdrs = self.shdrs.as_ref()?;
        if shdrs.is_empty() {
            return Some(Vec::new());
        }
        let s = shdrs.get(h.shstrndx as usize)?;
        let table = self.cap.get(table_range(s.sh_offset, s.sh_size))?;
        Some(
            shdrs
                .iter()
                .map(|s| {
                    cstr(table, s.sh_name as u64)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                })
                .collect(),
        )
    }

    /// The section called `name`, once names are known.
    pub(super) fn section(&self, name: &str) -> Option<&SectionHeader> {
        let names = self.names.as_ref()?;
        let i = names.iter().position(|n| n == name)?;
        self.shdrs.as_ref()?.get(i)
    }

    /// Wants the loader tables and notes the section table points at. Section types are
    /// enough (names may come last in the file).
    fn plan_section_tables(&mut self) {
        let shdrs = self.shdrs.clone().unwrap_or_default();
        let table = |s: &SectionHeader| table_range(s.sh_offset, s.sh_size);
        for s in shdrs.iter().filter(|s| s.sh_type != sh::SHT_NOBITS) {
            if matches!(
                s.sh_type,
                sh::SHT_DYNAMIC | sh::SHT_GNU_VERDEF | sh::SHT_GNU_VERNEED | sh::SHT_NOTE
            ) {
                self.want(table(s));
            }
            // String tables the dynamic section, .dynsym and the version tables use.
            if matches!(
                s.sh_type,
                sh::SHT_DYNAMIC | sh::SHT_DYNSYM | sh::SHT_GNU_VERDEF | sh::SHT_GNU_VERNEED
            ) {
                if let Some(link) = shdrs
                    .get(s.sh_link as usize)
                    .filter(|l| l.sh_type == sh::SHT_STRTAB)
                {
                    self.want(table(link));
                }
            }
        }
    }

    /// Whether the section table precedes every section's data (Go's internal linker
    /// does this; GNU ld and lld put it at the end).
    pub(super) fn section_table_first(&self) -> bool {
        let (Some(h), Some(shdrs)) = (self.hdr, self.shdrs.as_ref()) else {
            return false;
        };
        let first_data = shdrs
            .iter()
            .filter(|s| s.sh_type != sh::SHT_NULL && s.sh_type != sh::SHT_NOBITS && s.sh_size > 0)
            .map(|s| s.sh_offset)
            .min();
        first_data.is_some_and(|d| h.shoff < d)
    }

    /// File offset of a virtual address, through the `PT_LOAD` segments' file-backed parts.
    pub(super) fn vaddr_to_off(&self, vaddr: u64) -> Option<u64> {
        let phdrs = self.phdrs.as_ref()?;
        phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD)
            .find_map(|p| {
                let rel = vaddr.checked_sub(p.p_vaddr)?;
                (rel < p.p_filesz)
                    .then(|| p.p_offset.checked_add(rel))
                    .flatten()
            })
    }

    /// Virtual address of a file offset inside a `PT_LOAD` segment's file-backed part.
    pub(super) fn off_to_vaddr(&self, off: u64) -> Option<u64> {
        let phdrs = self.phdrs.as_ref()?;
        phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD)
            .find_map(|p| {
                let rel = off.checked_sub(p.p_offset)?;
                (rel < p.p_filesz)
                    .then(|| p.p_vaddr.checked_add(rel))
                    .flatten()
            })
    }

    /// The end (file offset) of the `PT_LOAD` file range containing `off`.
    pub(super) fn segment_end(&self, off: u64) -> u64 {
        self.phdrs
            .as_ref()
            .and_then(|phdrs| {
                phdrs
                    .iter()
                    .filter(|p| p.p_type == ph::PT_LOAD)
                    .find_map(|p| {
                        let end = p.p_offset.saturating_add(p.p_filesz);
                        (off >= p.p_offset && off < end).then_some(end)
                    })
            })
            .unwrap_or(self.cap.size())
    }

    /// The `PT_INTERP` path (`None` without one, `Some("")` when it was not captured, which
    /// is marked incomplete), and why the kernel would refuse it.
    pub(super) fn interpreter(
        &self,
        phdrs: &[ProgramHeader],
        incomplete: &mut Vec<String>,
    ) -> (Option<String>, Option<String>) {
        let Some(p) = phdrs.iter().find(|p| p.p_type == ph::PT_INTERP) else {
            return (None, None);
        };
        // The kernel's own checks (fs/binfmt_elf.c, load_elf_binary): 2 to PATH_MAX
        // bytes, the last one NUL; anything else fails exec with ENOEXEC.
        if p.p_filesz < 2 || p.p_filesz > MAX_ELF_INTERP_BYTES {
            let problem = format!("PT_INTERP is {} bytes long", p.p_filesz);
            return (Some(String::new()), Some(problem));
        }
        let r = p.p_offset..p.p_offset.saturating_add(p.p_filesz);
        let Some(b) = self.cap.get(r) else {
            incomplete.push("interpreter".into());
            return (Some(String::new()), None);
        };
        let mut problem = None;
        if b.last() != Some(&0) {
            problem = Some("PT_INTERP is not NUL-terminated".into());
        }
        let name = b.split(|&c| c == 0).next().unwrap_or(b);
        if name.is_empty() {
            problem = Some("PT_INTERP names an empty path".into());
        }
        (Some(String::from_utf8_lossy(name).into_owned()), problem)
    }

    /// Debug information told by section names.
    pub(super) fn debug_info(
        &self,
        shdrs: &[SectionHeader],
        incomplete: &mut Vec<String>,
    ) -> DebugInfo {
        let mut debug = DebugInfo::default();
        match &self.names {
            Some(names) => {
                for (s, n) in shdrs.iter().zip(names) {
                    if n.starts_with(".debug_") || n.starts_with(".zdebug_") {
                        debug.dwarf = true;
                        debug.compressed |= n.starts_with(".zdebug_")
                            || s.sh_flags & u64::from(sh::SHF_COMPRESSED) != 0;
                    }
                    debug.debuglink |= n == ".gnu_debuglink";
                }
            }
            None if !shdrs.is_empty() => incomplete.push("section names".into()),
            None => {}
        }
        debug
    }
}
