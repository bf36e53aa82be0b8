//! The dynamic section and the symbol version tables: needed libraries, search paths,
//! soname, binding flags, and the versions needed from each library and defined by this one.
//! From these and the program headers come the linkage, PIE and RELRO facts.
//!
//! Formats: the System V gABI "Dynamic Section"
//! (<https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.dynamic.html>) and the LSB "Symbol
//! Versioning" (<https://refspecs.linuxfoundation.org/LSB_5.0.0/LSB-Core-generic/LSB-Core-generic/symversion.html>).

use std::ops::Range;

use goblin::elf::dynamic::{
    DF_1_NOW, DF_1_PIE, DF_BIND_NOW, DT_BIND_NOW, DT_FLAGS, DT_FLAGS_1, DT_NEEDED, DT_RPATH,
    DT_RUNPATH, DT_SONAME, DT_STRSZ, DT_STRTAB, DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM,
};
use goblin::elf::header::{ET_DYN, ET_EXEC, ET_REL};
use goblin::elf::symver::VER_FLG_BASE;
use goblin::elf::{program_header as ph, Dynamic, ProgramHeader};

use super::headers::{table_range, Hdr};
use super::{ElfScanner, Linkage, Relro, VersionNeed};
use crate::inspect::bytes::{cstr, read_u16, read_u32};
use crate::limits::{
    MAX_ELF_NEEDED, MAX_ELF_SEARCH_DIRS, MAX_ELF_TABLE_BYTES, MAX_ELF_VERSIONS,
    MAX_ELF_VERSION_RECORDS,
};

/// Bytes captured from the start of each version table the dynamic section points at (up
/// to the end of its segment): real tables are a few hundred bytes.
const VERSION_TABLE_WINDOW: u64 = 64 << 10;

/// Size of an `Elf_Verneed` record (both classes); `vn_next` is at byte 12.
const VERNEED_LEN: u64 = 16;
/// Size of an `Elf_Vernaux` record; `vna_next` is at byte 12.
const VERNAUX_LEN: u64 = 16;
/// Size of an `Elf_Verdef` record; `vd_next` is at byte 16.
const VERDEF_LEN: u64 = 20;
/// Size of an `Elf_Verdaux` record.
const VERDAUX_LEN: u64 = 8;

/// The dynamic entries the scanner uses: string-table offsets of names, flags, and the
/// file ranges of the tables they point at.
#[derive(Default)]
pub(super) struct Dyns {
    needed: Vec<u64>,
    rpath: Vec<u64>,
    runpath: Vec<u64>,
    soname: Option<u64>,
    flags: u64,
    flags_1: u64,
    bind_now: bool,
    strtab: Option<Range<u64>>,
    /// `DT_VERNEED` address and `DT_VERNEEDNUM`.
    verneed: Option<(u64, u64)>,
    /// `DT_VERDEF` address and `DT_VERDEFNUM`.
    verdef: Option<(u64, u64)>,
}

/// What the dynamic section and the program headers say about loading.
pub(super) struct Loading {
    pub(super) needed: Vec<String>,
    pub(super) rpath: Vec<String>,
    pub(super) runpath: Vec<String>,
    pub(super) soname: Option<String>,
    pub(super) linkage: Linkage,
    pub(super) pie: bool,
    pub(super) relro: Relro,
    pub(super) bind_now: bool,
}

/// Symbol versions: needed per library, and defined.
pub(super) type Versions = (Vec<VersionNeed>, Vec<String>);

impl ElfScanner {
    /// The file range of `PT_DYNAMIC`.
    pub(super) fn dynamic_range(&self) -> Option<Range<u64>> {
        let p = self
            .phdrs
            .as_ref()?
            .iter()
            .find(|p| p.p_type == ph::PT_DYNAMIC)?;
        Some(table_range(p.p_offset, p.p_filesz))
    }

    /// Reads the dynamic section once captured (or notes its absence), then wants the
    /// string and version tables it points at. Returns whether anything changed.
    pub(super) fn step_dynamic(&mut self) -> bool {
        let mut changed = false;
        if self.dyns.is_none() {
            if let Some(r) = self.dynamic_range() {
                if self.cap.has(&r) {
                    self.dyns = Some(self.parse_dynamic());
                    changed = true;
                }
            } else if self.phdrs.is_some() {
                self.dyns = Some(Dyns::default());
            }
        }
        if !self.dyn_tables_planned {
            if let Some(d) = &self.dyns {
                self.dyn_tables_planned = true;
                let mut wants = Vec::new();
                if let Some(r) = &d.strtab {
                    wants.push(r.clone());
                }
                for (addr, _) in [d.verneed, d.verdef].into_iter().flatten() {
                    if let Some(off) = self.vaddr_to_off(addr) {
                        let end = self
                            .segment_end(off)
                            .min(off.saturating_add(VERSION_TABLE_WINDOW));
                        wants.push(off..end);
                    }
                }
                for w in wants {
                    self.want(w);
                }
                changed = true;
            }
        }
        changed
    }

    fn parse_dynamic(&self) -> Dyns {
        let mut d = Dyns::default();
        let (Some(h), Some(phdrs)) = (self.hdr, self.phdrs.as_ref()) else {
            return d;
        };
        let Ok(Some(dynamic)) = Dynamic::parse(self.cap.bytes(), phdrs, h.ctx) else {
            return d;
        };
        let mut strtab_addr = None;
        let mut strsz = 0;
        let (mut verneed, mut verneednum, mut verdef, mut verdefnum) = (None, 0, None, 0);
        for e in &dynamic.dyns {
            let (tag, val) = (e.d_tag, e.d_val);
            match tag {
                DT_NEEDED => d.needed.push(val),
                DT_RPATH => d.rpath.push(val),
                DT_RUNPATH => d.runpath.push(val),
                DT_SONAME => d.soname = Some(val),
                DT_FLAGS => d.flags = val,
                DT_FLAGS_1 => d.flags_1 = val,
                DT_BIND_NOW => d.bind_now = true,
                DT_STRTAB => strtab_addr = Some(val),
                DT_STRSZ => strsz = val,
                DT_VERNEED => verneed = Some(val),
                DT_VERNEEDNUM => verneednum = val,
                DT_VERDEF => verdef = Some(val),
                DT_VERDEFNUM => verdefnum = val,
                _ => {}
            }
        }
        if let Some(off) = strtab_addr.and_then(|a| self.vaddr_to_off(a)) {
            d.strtab = Some(off..off.saturating_add(strsz.min(MAX_ELF_TABLE_BYTES)));
        }
        d.verneed = verneed.map(|a| (a, verneednum));
        d.verdef = verdef.map(|a| (a, verdefnum));
        d
    }

    /// The dynamic string table, when captured.
    pub(super) fn dynamic_strings(&self, d: &Dyns) -> Option<&[u8]> {
        d.strtab.clone().and_then(|r| self.cap.get(r))
    }

    /// Names, search paths and the linkage facts. Names outside the captured string table,
    /// and lists past their bounds, are marked in `incomplete`.
    pub(super) fn loading(
        &self,
        h: Hdr,
        d: &Dyns,
        has_interp: bool,
        phdrs: &[ProgramHeader],
        incomplete: &mut Vec<String>,
    ) -> Loading {
        let strtab = self.dynamic_strings(d);
        let dstr = |off: u64, what: &str, incomplete: &mut Vec<String>| -> Option<String> {
            match strtab.and_then(|t| cstr(t, off)) {
                Some(b) => Some(String::from_utf8_lossy(b).into_owned()),
                None => {
                    if !incomplete.iter().any(|s| s == what) {
                        incomplete.push(what.to_string());
                    }
                    None
                }
            }
        };
        let needed: Vec<String> = d
            .needed
            .iter()
            .take(MAX_ELF_NEEDED)
            .filter_map(|&o| dstr(o, "needed libraries", incomplete))
            .collect();
        if d.needed.len() > MAX_ELF_NEEDED {
            incomplete.push(format!("needed libraries (more than {MAX_ELF_NEEDED})"));
        }
        let split = |v: Vec<String>, what: &str, incomplete: &mut Vec<String>| -> Vec<String> {
            let mut dirs: Vec<String> = v
                .iter()
                .flat_map(|s| s.split(':'))
                .take(MAX_ELF_SEARCH_DIRS + 1)
                .map(str::to_string)
                .collect();
            if dirs.len() > MAX_ELF_SEARCH_DIRS {
                dirs.truncate(MAX_ELF_SEARCH_DIRS);
                incomplete.push(format!(
                    "{what} (more than {MAX_ELF_SEARCH_DIRS} directories)"
                ));
            }
            dirs
        };
        let rpath = d
            .rpath
            .iter()
            .filter_map(|&o| dstr(o, "rpath", incomplete))
            .collect();
        let rpath = split(rpath, "rpath", incomplete);
        let runpath = d
            .runpath
            .iter()
            .filter_map(|&o| dstr(o, "runpath", incomplete))
            .collect();
        let runpath = split(runpath, "runpath", incomplete);
        let soname = d.soname.and_then(|o| dstr(o, "soname", incomplete));
        let is_pie_flag = d.flags_1 & DF_1_PIE != 0;
        let linkage = match h.e_type {
            ET_EXEC if has_interp => Linkage::Dynamic,
            ET_EXEC => Linkage::Static,
            ET_DYN if has_interp && (is_pie_flag || d.soname.is_none()) => Linkage::Dynamic,
            ET_DYN if has_interp => Linkage::SharedLibrary,
            ET_DYN if is_pie_flag => Linkage::StaticPie,
            ET_DYN => Linkage::SharedLibrary,
            ET_REL => Linkage::Object,
            _ => Linkage::Other,
        };
        let pie = h.e_type == ET_DYN && (is_pie_flag || (has_interp && d.soname.is_none()));
        let bind_now = d.bind_now || d.flags & DF_BIND_NOW != 0 || d.flags_1 & DF_1_NOW != 0;
        let has_relro = phdrs.iter().any(|p| p.p_type == ph::PT_GNU_RELRO);
        let relro = if linkage == Linkage::Static && !has_relro {
            Relro::NotApplicable
        } else if !has_relro {
            Relro::None
        } else if bind_now {
            Relro::Full
        } else {
            Relro::Partial
        };
        Loading {
            needed,
            rpath,
            runpath,
            soname,
            linkage,
            pie,
            relro,
            bind_now,
        }
    }

    /// Follows one chain of version records (`Elf_Verneed`, `Elf_Vernaux`, `Elf_Verdef`):
    /// at most `count` records of `len` bytes from file offset `off`, each giving the byte
    /// distance to the next at `next_at` (0 ends the chain). `visit` gets each record's
    /// offset and bytes and returns false to stop. Returns false when a record was not
    /// captured, or when the chain went on past `count` records and `count` was cut to
    /// [`MAX_ELF_VERSION_RECORDS`].
    fn walk_version_records(
        &self,
        mut off: u64,
        count: u64,
        len: u64,
        next_at: usize,
        mut visit: impl FnMut(u64, &[u8]) -> bool,
    ) -> bool {
        let Some(h) = self.hdr else { return false };
        let max = count.min(MAX_ELF_VERSION_RECORDS);
        for i in 0..max {
            let Some(r) = self.cap.get(off..off.saturating_add(len)) else {
                return false;
            };
            if !visit(off, r) {
                return true;
            }
            let Some(next) = read_u32(r, next_at, h.big) else {
                return false;
            };
            if next == 0 {
                return true;
            }
            if i + 1 == max && max < count {
                // The bound, not the chain, ends the walk.
                return false;
            }
            off += u64::from(next);
        }
        true
    }

    /// Symbol versions needed (`DT_VERNEED`) and defined (`DT_VERDEF`, without the base
    /// entry that names the object itself), at most [`MAX_ELF_VERSIONS`] together. A table
    /// cut or not captured is marked in `incomplete`.
    pub(super) fn versions(&self, d: &Dyns, incomplete: &mut Vec<String>) -> Versions {
        let Some(h) = self.hdr else {
            return (Vec::new(), Vec::new());
        };
        let strtab = self.dynamic_strings(d);
        let name = |off: u32| {
            strtab
                .and_then(|t| cstr(t, u64::from(off)))
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let u16_at = |r: &[u8], at| read_u16(r, at, h.big).unwrap_or(0);
        let u32_at = |r: &[u8], at| read_u32(r, at, h.big).unwrap_or(0);
        let mut budget = MAX_ELF_VERSIONS;
        let mut needs = Vec::new();
        if let Some((addr, count)) = d.verneed {
            // Names that did not resolve and versions past the budget.
            let mut lost = false;
            let walked = self.vaddr_to_off(addr).is_some_and(|off| {
                self.walk_version_records(off, count, VERNEED_LEN, 12, |off, e| {
                    let mut versions = Vec::new();
                    let aux = off + u64::from(u32_at(e, 8));
                    let cnt = u64::from(u16_at(e, 2));
                    let walked = self.walk_version_records(aux, cnt, VERNAUX_LEN, 12, |_, x| {
                        if budget == 0 {
                            lost = true;
                            return false;
                        }
                        budget -= 1;
                        match name(u32_at(x, 8)) {
                            Some(n) => versions.push(n),
                            None => lost = true,
                        }
                        true
                    });
                    lost |= !walked;
                    match name(u32_at(e, 4)) {
                        Some(file) => needs.push(VersionNeed { file, versions }),
                        None => lost = true,
                    }
                    true
                })
            });
            if !walked || lost {
                incomplete.push("symbol version requirements".into());
            }
        }
        let mut defs = Vec::new();
        if let Some((addr, count)) = d.verdef {
            let mut lost = false;
            let walked = self.vaddr_to_off(addr).is_some_and(|off| {
                self.walk_version_records(off, count, VERDEF_LEN, 16, |off, e| {
                    if u16_at(e, 2) & VER_FLG_BASE != 0 {
                        return true;
                    }
                    if budget == 0 {
                        lost = true;
                        return false;
                    }
                    budget -= 1;
                    let a = off + u64::from(u32_at(e, 12));
                    match self
                        .cap
                        .get(a..a + VERDAUX_LEN)
                        .and_then(|x| name(u32_at(x, 0)))
                    {
                        Some(n) => defs.push(n),
                        None => lost = true,
                    }
                    true
                })
            });
            if !walked || lost {
                incomplete.push("symbol version definitions".into());
            }
        }
        (needs, defs)
    }
}
