//! Streaming ELF inspection: linkage, loader needs, hardening, symbols and Go build info.
//!
//! `ElfScanner` sees a file exactly once, in chunks, as it comes out of a layer's tar
//! stream. From the ELF header and program headers at the start it works out which other
//! byte ranges it will need (section table, dynamic section and its string and version
//! tables, notes, Go build info, the pclntab header) and asks a sparse capture to keep
//! them as they pass. A few pattern scans run over segments as they stream by: the Go build
//! info magic in the first writable segment (Go's own search rule, `debug/buildinfo`), the
//! pclntab magic, Go function names in the pclntab's name table (to tell whether a binary
//! uses `crypto/tls` or `time.LoadLocation`), and for binaries whose `.go.buildinfo` was
//! removed, the module info copy in read-only data. Parsing uses goblin's header, program
//! header, section header and dynamic-section readers over the capture buffer.
//!
//! The files follow the format's parts: `headers` (ELF header, program and section header
//! tables, section names, address mapping), `dynamic` (dynamic section, symbol versions,
//! linkage), `notes` (build IDs), `gofind` (where Go's data is and what it says), with the
//! sparse `capture` and the chunk-seam-safe `scan` they share; the byte readers are
//! `inspect::bytes`. This file holds the facts and drives the scan.
//!
//! Anything a damaged or unusual file makes unavailable is reported in
//! [`ElfInfo::incomplete`]; the inspector never guesses a fact it did not read.

mod capture;
mod dynamic;
mod gofind;
mod headers;
mod notes;
mod scan;

#[cfg(test)]
mod tests;

use goblin::elf::{program_header as ph, section_header as sh, ProgramHeader, SectionHeader};
use serde::{Deserialize, Serialize};

use self::capture::Capture;
use self::dynamic::Dyns;
use self::gofind::GoFind;
use self::headers::{Hdr, NamesScan, PREFIX_BYTES};
use super::go::GoFacts;
use crate::limits::Limits;

/// 32- or 64-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// How a file gets loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    /// `ET_EXEC` without `PT_INTERP`: the kernel runs it directly.
    Static,
    /// `ET_DYN` with `DF_1_PIE` and no `PT_INTERP`: relocates itself.
    StaticPie,
    /// Has `PT_INTERP`: the named loader must exist in the image.
    Dynamic,
    /// A shared library (`ET_DYN` with `DT_SONAME`, or no interpreter and not PIE).
    SharedLibrary,
    /// A relocatable object (`ET_REL`).
    Object,
    /// A core dump or another `e_type`.
    Other,
}

/// RELRO state: whether the relocations a loader writes are made read-only afterwards
/// (`PT_GNU_RELRO`), and all of them (immediate binding) or only some.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relro {
    /// No `PT_GNU_RELRO`.
    None,
    /// `PT_GNU_RELRO` without immediate binding.
    Partial,
    /// `PT_GNU_RELRO` and `BIND_NOW`.
    Full,
    /// Static, non-PIE: nothing to protect.
    NotApplicable,
}

/// Symbol versions one needed library must define (`.gnu.version_r`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionNeed {
    /// The library file name (`libc.so.6`).
    pub file: String,
    /// Version names (`GLIBC_2.34`).
    pub versions: Vec<String>,
}

/// Debug information present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugInfo {
    /// `.debug_*` or `.zdebug_*` sections exist.
    pub dwarf: bool,
    /// Some of them are compressed (`SHF_COMPRESSED` or `.zdebug_*`).
    pub compressed: bool,
    /// A `.gnu_debuglink` points at separate debug info.
    pub debuglink: bool,
}

/// Everything the auditor knows about one ELF file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfInfo {
    /// 32/64-bit.
    pub class: ElfClass,
    /// Big-endian.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// The architecture in GOARCH/OCI spelling (`amd64`), when known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_arch"
    )]
    pub architecture: Option<super::StaticName>,
    /// `e_ident[EI_OSABI]`: 0 (System V, what Linux toolchains write), 3 (GNU/Linux), 9
    /// (FreeBSD) … See [`ElfInfo::os`].
    pub os_abi: u8,
    /// `e_type`.
    pub e_type: u16,
    /// Static, dynamic, static-pie, library.
    pub linkage: Linkage,
    /// `PT_INTERP`, up to its first NUL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// Why the kernel would refuse `PT_INTERP` (empty, longer than `PATH_MAX`, not
    /// NUL-terminated): `exec` fails with `ENOEXEC` whatever the image holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter_problem: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` entries (split at `:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries (split at `:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runpath: Vec<String>,
    /// `DT_SONAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soname: Option<String>,
    /// Position independent executable.
    pub pie: bool,
    /// RELRO state.
    pub relro: Relro,
    /// Immediate binding (`BIND_NOW`).
    pub bind_now: bool,
    /// Non-executable stack (`PT_GNU_STACK` without `PF_X`); false when there is no
    /// `PT_GNU_STACK` (the kernel then makes the stack executable).
    pub nx_stack: bool,
    /// A `.symtab` section exists (not stripped).
    pub symtab: bool,
    /// The file has section headers at all.
    pub section_headers: bool,
    /// Debug information.
    pub debug: DebugInfo,
    /// GNU build ID (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Symbol versions required per library.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_needs: Vec<VersionNeed>,
    /// Symbol versions this object defines (a libc's `GLIBC_2.x` list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_defs: Vec<String>,
    /// Packed with UPX: sections and build info are compressed away.
    pub upx: bool,
    /// Go facts, for Go binaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<GoFacts>,
    /// Facts that could not be read (damaged file, or data outside the capture).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
}

impl ElfInfo {
    /// Whether the kernel can be asked to exec this file (not a library or object).
    pub fn is_executable(&self) -> bool {
        matches!(
            self.linkage,
            Linkage::Static | Linkage::StaticPie | Linkage::Dynamic
        )
    }

    /// Whether this is a Go binary.
    pub fn is_go(&self) -> bool {
        self.go.is_some()
    }

    /// The operating system the OS ABI byte names, in GOOS/OCI spelling; `None` for
    /// `ELFOSABI_NONE` (System V), which Linux toolchains write and which names no OS.
    pub fn os(&self) -> Option<&'static str> {
        os_abi_name(self.os_abi)
    }
}

/// The GOOS/OCI name of an `EI_OSABI` value (System V gABI, "ELF Header"; Go's linker
/// writes 9, 2 and 12 for FreeBSD, NetBSD and OpenBSD, `cmd/link/internal/ld/elf.go`).
pub fn os_abi_name(os_abi: u8) -> Option<&'static str> {
    Some(match os_abi {
        1 => "hpux",
        2 => "netbsd",
        3 => "linux",
        6 => "solaris",
        7 => "aix",
        8 => "irix",
        9 => "freebsd",
        12 => "openbsd",
        _ => return None,
    })
}

/// Every name [`machine_arch`] gives, for deserialising [`ElfInfo::architecture`].
fn de_arch<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut v: Vec<&'static str> = (0..=u16::MAX)
            .flat_map(|m| {
                [(false, false), (false, true), (true, false), (true, true)]
                    .into_iter()
                    .filter_map(move |(is64, big)| machine_arch(m, is64, big))
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    });
    super::de_static(d, names.iter().copied())
}

/// The architecture name for an ELF machine.
pub fn machine_arch(machine: u16, is64: bool, big: bool) -> Option<&'static str> {
    Some(match (machine, is64, big) {
        (62, true, _) => "amd64",
        (3, false, _) => "386",
        (183, true, _) => "arm64",
        (40, false, _) => "arm",
        (21, true, false) => "ppc64le",
        (21, true, true) => "ppc64",
        (22, true, _) => "s390x",
        (243, true, _) => "riscv64",
        (243, false, _) => "riscv32",
        (258, true, _) => "loong64",
        (8, false, true) => "mips",
        (8, false, false) => "mipsle",
        (8, true, true) => "mips64",
        (8, true, false) => "mips64le",
        _ => return None,
    })
}

/// Why a file could not be inspected at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ElfError(pub String);

/// What one parsing step achieved.
enum Progress {
    /// Its bytes are not captured yet.
    Waiting,
    /// Parsed.
    Done,
    /// The file is unreadable (the scanner's fatal error is set).
    Failed,
}

/// Streams one ELF file; see the module docs.
pub(crate) struct ElfScanner {
    cap: Capture,
    hdr: Option<Hdr>,
    /// PN_XNUM / SHN_XINDEX escapes pending on section 0.
    escapes: bool,
    phdrs: Option<Vec<ProgramHeader>>,
    shdrs: Option<Vec<SectionHeader>>,
    names: Option<Vec<String>>,
    names_scan: Option<NamesScan>,
    dyns: Option<Dyns>,
    dyn_tables_planned: bool,
    notes_parsed: bool,
    go_note: Option<String>,
    gnu_build_id: Option<String>,
    go: GoFind,
    fatal: Option<String>,
}

impl ElfScanner {
    /// Starts inspecting a file of `size` bytes whose first bytes are known to be ELF.
    pub(crate) fn new(size: u64, limits: &Limits) -> Result<Self, ElfError> {
        if size > limits.max_elf_bytes {
            return Err(ElfError(format!(
                "file too large to inspect ({size} bytes)"
            )));
        }
        let cap = Capture::new(size, limits.elf_full_capture_max, limits.elf_capture_budget)
            .map_err(|e| ElfError(format!("cannot reserve capture buffer: {e}")))?;
        let mut s = Self {
            cap,
            hdr: None,
            escapes: false,
            phdrs: None,
            shdrs: None,
            names: None,
            names_scan: None,
            dyns: None,
            dyn_tables_planned: false,
            notes_parsed: false,
            go_note: None,
            gnu_build_id: None,
            go: GoFind::default(),
            fatal: None,
        };
        s.cap.want(0..PREFIX_BYTES.min(size));
        Ok(s)
    }

    /// Feeds the next chunk of the file.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        let start = self.cap.pos();
        let data = &data[..data.len().min((self.cap.size() - start) as usize)];
        if self.fatal.is_none() {
            loop {
                let a = self.cap.absorb(start, data);
                let b = self.step();
                let c = self.run_scans(start, data);
                if !(a || b || c) || self.fatal.is_some() {
                    break;
                }
            }
            self.keep_names_back(start, data);
        }
        self.cap.advance(start + data.len() as u64);
    }

    /// Keeps the part of a match at `off` that passed before the current chunk (a match
    /// across a chunk seam), so that its range can still be read from the capture.
    fn keep_held(&mut self, scan: &scan::StreamScan, off: u64) {
        if let Some(b) = scan.held_from(off) {
            self.cap.put(off, b);
        }
    }

    fn want(&mut self, r: std::ops::Range<u64>) -> bool {
        self.cap.want(r)
    }

    fn fail(&mut self, why: impl Into<String>) {
        if self.fatal.is_none() {
            self.fatal = Some(why.into());
        }
    }

    /// Advances the parse as far as the captured bytes allow. Returns whether anything
    /// changed.
    fn step(&mut self) -> bool {
        let mut changed = false;
        if self.hdr.is_none() {
            match self.step_header() {
                Progress::Waiting => return false,
                Progress::Failed => return true,
                Progress::Done => changed = true,
            }
        }
        let Some(h) = self.hdr else { return changed };
        if self.escapes {
            return self.step_escapes(h) || changed;
        }
        if self.phdrs.is_none() {
            match self.step_program_headers(h) {
                Progress::Waiting => return changed,
                Progress::Failed => return true,
                Progress::Done => {
                    self.plan_buildinfo_scan();
                    changed = true;
                }
            }
        }
        if self.shdrs.is_none() && h.shnum > 0 {
            if let Some(parsed) = self.step_section_headers(h) {
                if parsed {
                    self.plan_pcln_candidates();
                }
                changed = true;
            }
        }
        if self.names.is_none() {
            if let Some(names) = self.section_names() {
                self.names = Some(names);
                changed = true;
            }
        }
        changed |= self.step_notes();
        changed |= self.step_dynamic();
        changed |= self.step_go();
        changed
    }

    /// Runs every active scan over the chunk. Returns whether any hit was recorded.
    fn run_scans(&mut self, start: u64, data: &[u8]) -> bool {
        let bi = self.scan_buildinfo(start, data);
        let names = self.scan_names(start, data);
        let go = self.scan_go(start, data);
        bi || names || go
    }

    /// Ends the stream and reports.
    pub(crate) fn finish(mut self) -> Result<ElfInfo, ElfError> {
        if let Some(f) = self.fatal.take() {
            return Err(ElfError(f));
        }
        // A file shorter than its header.
        let Some(h) = self.hdr else {
            return Err(ElfError("truncated ELF header".into()));
        };
        let mut incomplete: Vec<String> = Vec::new();
        let phdrs = self.phdrs.clone().unwrap_or_default();
        if self.phdrs.is_none() {
            incomplete.push("program headers".into());
        }
        let (interpreter, interpreter_problem) = self.interpreter(&phdrs, &mut incomplete);
        let dyns = self.dyns.take().unwrap_or_default();
        if self.dynamic_range().is_some_and(|r| !self.cap.has(&r)) {
            incomplete.push("dynamic section".into());
        }
        let loading = self.loading(h, &dyns, interpreter.is_some(), &phdrs, &mut incomplete);
        let nx_stack = phdrs
            .iter()
            .find(|p| p.p_type == ph::PT_GNU_STACK)
            .is_some_and(|p| p.p_flags & ph::PF_X == 0);
        let shdrs = self.shdrs.clone().unwrap_or_default();
        if h.shnum > 0 && self.shdrs.is_none() {
            incomplete.push("section headers".into());
        }
        let symtab = shdrs.iter().any(|s| s.sh_type == sh::SHT_SYMTAB);
        let debug = self.debug_info(&shdrs, &mut incomplete);
        let (version_needs, version_defs) = self.versions(&dyns, &mut incomplete);
        self.parse_all_notes(&shdrs);
        let upx = self
            .cap
            .get(0..self.cap.size().min(crate::limits::UPX_MAGIC_WINDOW_BYTES))
            .is_some_and(|b| memchr::memmem::find(b, b"UPX!").is_some());
        let go = self.go_facts(&mut incomplete);
        if self.cap.missed_bytes() > 0 {
            tracing::debug!(
                missed = self.cap.missed_bytes(),
                "sparse capture missed bytes"
            );
        }
        Ok(ElfInfo {
            class: if h.is64 {
                ElfClass::Elf64
            } else {
                ElfClass::Elf32
            },
            big_endian: h.big,
            machine: h.machine,
            architecture: machine_arch(h.machine, h.is64, h.big),
            os_abi: h.os_abi,
            e_type: h.e_type,
            linkage: loading.linkage,
            interpreter,
            interpreter_problem,
            needed: loading.needed,
            rpath: loading.rpath,
            runpath: loading.runpath,
            soname: loading.soname,
            pie: loading.pie,
            relro: loading.relro,
            bind_now: loading.bind_now,
            nx_stack,
            symtab,
            section_headers: !shdrs.is_empty(),
            debug,
            build_id: self.gnu_build_id.clone(),
            version_needs,
            version_defs,
            upx,
            go,
            incomplete,
        })
    }
}
