//! Streaming ELF inspection: linkage, loader needs, hardening, symbols and Go build info.
//!
//! [`ElfScanner`] sees a file exactly once, in chunks, as it comes out of a layer's tar
//! stream. From the ELF header and program headers at the start it works out which other
//! byte ranges it will need (section table, dynamic section and its string and version
//! tables, notes, Go build info, the pclntab header) and asks a sparse [`Capture`] to keep
//! them as they pass. A few pattern scans run over segments as they stream by: the Go build
//! info magic in the first writable segment (Go's own search rule, `debug/buildinfo`), the
//! pclntab magic, Go function names in the pclntab's name table (to tell whether a binary
//! uses `crypto/tls` or `time.LoadLocation`), and for binaries whose `.go.buildinfo` was
//! removed, the module info copy in read-only data. Parsing uses goblin's header, program
//! header, section header and dynamic-section readers over the capture buffer.
//!
//! Anything a damaged or unusual file makes unavailable is reported in
//! [`ElfInfo::incomplete`]; the inspector never guesses a fact it did not read.

use std::ops::Range;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{
    program_header as ph, section_header as sh, Dynamic, ProgramHeader, SectionHeader,
};
use serde::Serialize;

use super::capture::Capture;
use super::go::{self, BuildInfo};
use super::scan::{keep_last, StreamScan};
use crate::limits::{
    Limits, MAX_ELF_HEADERS, MAX_ELF_NEEDED, MAX_ELF_SEARCH_DIRS, MAX_ELF_TABLE_BYTES,
    MAX_ELF_VERSIONS, MAX_GO_BUILDINFO_BYTES,
};

/// Longest `PT_INTERP` the kernel accepts: `PATH_MAX` (fs/binfmt_elf.c).
const INTERP_MAX_BYTES: u64 = 4096;
/// Bytes always captured from the start of a sparsely captured file: the ELF header,
/// program headers, notes and, for most linkers, the interpreter and dynamic-linking tables.
const PREFIX_BYTES: u64 = 64 << 10;
/// Bytes captured just before a section table at the end of a file (GNU ld puts
/// `.shstrtab` there).
const SHT_TAIL_BYTES: u64 = 64 << 10;
/// The name the section-name table gives itself.
const SHSTRTAB_NAME: &[u8] = b".shstrtab\0";
/// Bytes kept around each `.shstrtab` name found between the loaded segments and a far
/// section table (lld writes `.symtab`, `.shstrtab`, then `.strtab`): the names table of a
/// linked file is well under this (Go ~0.4 KiB, a Rust binary ~0.5 KiB).
const NAMES_WINDOW: u64 = 16 << 10;
/// At most this many `.shstrtab` strings are kept (a symbol or debug string table may
/// contain the word too).
const MAX_NAMES_HITS: usize = 4;
/// A non-executable first segment (GNU ld's headers segment with `.dynsym`, `.dynstr`,
/// version tables) is captured up to this size.
const FIRST_SEGMENT_BYTES: u64 = 4 << 20;
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

// Dynamic tags and flags (System V gABI, glibc elf.h).
const DT_NEEDED: u64 = 1;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_BIND_NOW: u64 = 24;
const DT_RUNPATH: u64 = 29;
const DT_FLAGS: u64 = 30;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;
const DF_BIND_NOW: u64 = 0x8;
const DF_1_NOW: u64 = 0x1;
const DF_1_PIE: u64 = 0x0800_0000;
const SHF_COMPRESSED: u64 = 0x800;
const SHT_GNU_VERDEF: u32 = 0x6fff_fffd;
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
const VER_FLG_BASE: u16 = 0x1;

/// 32- or 64-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// How a file gets loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// RELRO state (tech.md §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionNeed {
    /// The library file name (`libc.so.6`).
    pub file: String,
    /// Version names (`GLIBC_2.34`).
    pub versions: Vec<String>,
}

/// Debug information present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DebugInfo {
    /// `.debug_*` or `.zdebug_*` sections exist.
    pub dwarf: bool,
    /// Some of them are compressed (`SHF_COMPRESSED` or `.zdebug_*`).
    pub compressed: bool,
    /// A `.gnu_debuglink` points at separate debug info.
    pub debuglink: bool,
}

/// Which Go packages a binary links, read from the pclntab function-name table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoUses {
    /// `crypto/tls` functions are linked.
    pub crypto_tls: bool,
    /// `crypto/x509` functions are linked.
    pub crypto_x509: bool,
    /// `time.LoadLocation` is linked.
    pub time_load_location: bool,
    /// `time/tzdata` (embedded zone database) is linked.
    pub time_tzdata: bool,
    /// The race detector runtime is linked.
    pub race: bool,
    /// `runtime/cgo` is linked.
    pub cgo: bool,
    /// `net` is linked.
    pub net: bool,
    /// `os/user` is linked.
    pub os_user: bool,
}

/// Where Go build info was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildInfoSource {
    /// The `.go.buildinfo` section (what `go version -m` reads).
    Section,
    /// The first writable segment, the fallback `go version -m` uses without sections.
    Segment,
    /// Recovered from the `runtime.modinfo` copy in read-only data: the build-info blob
    /// was removed, and `go version -m`, trivy and syft cannot read this binary.
    Rodata,
}

/// Go facts of a binary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GoFacts {
    /// Build info, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_info: Option<BuildInfo>,
    /// Where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<BuildInfoSource>,
    /// The Go build ID from `.note.go.buildid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The Go release range told by the pclntab magic (`go1.20+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pclntab: Option<&'static str>,
    /// Packages linked, when the function-name table was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<GoUses>,
    /// Why build info is missing or partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_info_error: Option<String>,
}

impl GoUses {
    /// Bit i set when needle i of `FUNC_NEEDLES` was seen.
    fn flags(&self) -> u32 {
        [
            self.crypto_tls,
            self.crypto_x509,
            self.time_load_location,
            self.time_tzdata,
            self.race,
            self.cgo,
            self.net,
            self.os_user,
        ]
        .iter()
        .enumerate()
        .map(|(i, &b)| u32::from(b) << i)
        .sum()
    }
}

impl GoFacts {
    /// The Go version string, from build info.
    pub fn version(&self) -> Option<&str> {
        self.build_info
            .as_ref()
            .map(|b| b.go_version.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Everything the auditor knows about one ELF file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// 32/64-bit.
    pub class: ElfClass,
    /// Big-endian.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// The architecture in GOARCH/OCI spelling (`amd64`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<&'static str>,
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries (split at `:`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub version_needs: Vec<VersionNeed>,
    /// Symbol versions this object defines (a libc's `GLIBC_2.x` list).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub version_defs: Vec<String>,
    /// Packed with UPX: sections and build info are compressed away.
    pub upx: bool,
    /// Go facts, for Go binaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<GoFacts>,
    /// Facts that could not be read (damaged file, or data outside the capture).
    #[serde(skip_serializing_if = "Vec::is_empty")]
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

#[derive(Clone, Copy)]
struct Hdr {
    ctx: Ctx,
    is64: bool,
    big: bool,
    e_type: u16,
    machine: u16,
    os_abi: u8,
    phoff: u64,
    phnum: u64,
    shoff: u64,
    shnum: u64,
    shstrndx: u64,
}

impl Hdr {
    fn ptr(&self) -> u64 {
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
    fn shent(&self) -> u64 {
        if self.is64 {
            64
        } else {
            40
        }
    }
}

#[derive(Default)]
struct Dyns {
    needed: Vec<u64>,
    rpath: Vec<u64>,
    runpath: Vec<u64>,
    soname: Option<u64>,
    flags: u64,
    flags_1: u64,
    bind_now: bool,
    strtab: Option<Range<u64>>,
    verneed: Option<(u64, u64)>,
    verdef: Option<(u64, u64)>,
}

struct Pcln {
    off: u64,
    magic: u32,
}

/// Function-name needles, each anchored by the NUL that ends the previous name.
const FUNC_NEEDLES: [&[u8]; 8] = [
    b"\0crypto/tls.",
    b"\0crypto/x509.",
    b"\0time.LoadLocation\0",
    b"\0time/tzdata.",
    b"\0runtime.racefuncenter",
    b"\0runtime/cgo.",
    b"\0net.",
    b"\0os/user.",
];

/// One SIMD substring finder per function-name needle, built once. Each needle only needs
/// to be seen once per binary, so found ones are not searched again.
static FUNC_FINDERS: std::sync::LazyLock<Vec<memchr::memmem::Finder<'static>>> =
    std::sync::LazyLock::new(|| {
        FUNC_NEEDLES
            .iter()
            .map(memchr::memmem::Finder::new)
            .collect()
    });

/// pclntab magics followed by their two zero bytes: finders for little- and big-endian files.
static PCLN_FINDERS: std::sync::LazyLock<[Vec<memchr::memmem::Finder<'static>>; 2]> =
    std::sync::LazyLock::new(|| {
        let build = |big: bool| {
            [0xffff_fffbu32, 0xffff_fffa, 0xffff_fff0, 0xffff_fff1]
                .iter()
                .map(|m| {
                    let mut v = if big {
                        m.to_be_bytes().to_vec()
                    } else {
                        m.to_le_bytes().to_vec()
                    };
                    v.extend_from_slice(&[0, 0]);
                    memchr::memmem::Finder::new(&v).into_owned()
                })
                .collect()
        };
        [build(false), build(true)]
    });

/// The section-name table of a sparsely captured file whose section table comes after
/// more than [`SHT_TAIL_BYTES`] of other non-loaded data. Its place is only known once the
/// section table arrives, after it has passed, so the bytes between the loaded segments and
/// the tail window are scanned for the table's own name, `.shstrtab`, and the
/// [`NAMES_WINDOW`] bytes each side of a hit are kept: the part already passed from a
/// look-back buffer of that size, the rest as it arrives.
struct NamesScan {
    scan: StreamScan,
    /// The last bytes of the range before `back_end` (at most [`NAMES_WINDOW`]).
    back: Vec<u8>,
    back_end: u64,
    hits: usize,
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
    dyns: Option<Dyns>,
    dyn_tables_planned: bool,
    notes_parsed: bool,
    go_note: Option<String>,
    gnu_build_id: Option<String>,
    bi_scan: Option<StreamScan>,
    names_scan: Option<NamesScan>,
    bi_hits: Vec<u64>,
    bi_examined: usize,
    /// Captured read-only data ranges (`.rodata`) of a Go binary.
    rodata: Vec<Range<u64>>,
    rodata_planned: bool,
    pcln_scan: Option<StreamScan>,
    pcln_started: bool,
    pcln_candidates: Vec<u64>,
    pcln_checked: usize,
    pcln: Option<Pcln>,
    fn_scan: Option<StreamScan>,
    fn_scanned: bool,
    uses: GoUses,
    ver_scans: Vec<StreamScan>,
    ver_started: bool,
    /// Version-string candidates: (vaddr, bytes) of `go1.` strings in captured rodata.
    version_cands: Vec<(u64, Vec<u8>)>,
    /// vaddr → index into `version_cands`.
    version_index: std::collections::HashMap<u64, u32>,
    /// String headers found: (candidate index, length).
    version_refs: Vec<(usize, u64)>,
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
            dyns: None,
            dyn_tables_planned: false,
            notes_parsed: false,
            go_note: None,
            gnu_build_id: None,
            bi_scan: None,
            names_scan: None,
            bi_hits: Vec::new(),
            bi_examined: 0,
            rodata: Vec::new(),
            rodata_planned: false,
            pcln_scan: None,
            pcln_started: false,
            pcln_candidates: Vec::new(),
            pcln_checked: 0,
            pcln: None,
            fn_scan: None,
            fn_scanned: false,
            uses: GoUses::default(),
            ver_scans: Vec::new(),
            ver_started: false,
            version_cands: Vec::new(),
            version_index: std::collections::HashMap::new(),
            version_refs: Vec::new(),
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

    /// Moves the names scan's look-back buffer past this chunk.
    fn keep_names_back(&mut self, start: u64, data: &[u8]) {
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

    fn want(&mut self, r: Range<u64>) -> bool {
        self.cap.want(r)
    }

    fn fail(&mut self, why: impl Into<String>) {
        if self.fatal.is_none() {
            self.fatal = Some(why.into());
        }
    }

    /// File offset of a virtual address, through the `PT_LOAD` segments' file-backed parts.
    fn vaddr_to_off(&self, vaddr: u64) -> Option<u64> {
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

    /// The end (file offset) of the `PT_LOAD` file range containing `off`.
    fn segment_end(&self, off: u64) -> u64 {
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

    fn off_to_vaddr(&self, off: u64) -> Option<u64> {
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

    fn read_word(&self, off: u64, size: u64) -> Option<u64> {
        let h = self.hdr?;
        let b = self.cap.get(off..off.saturating_add(size))?;
        Some(read_uint(b, h.big))
    }

    /// Advances the parse as far as the captured bytes allow. Returns whether anything
    /// changed.
    fn step(&mut self) -> bool {
        let mut changed = false;
        if self.hdr.is_none() {
            let need = 64u64.min(self.cap.size());
            if !self.cap.has(&(0..need)) {
                return false;
            }
            match parse_header(self.cap.bytes(), self.cap.size()) {
                Ok((h, escapes)) => {
                    self.hdr = Some(h);
                    self.escapes = escapes;
                    self.plan_tables();
                    changed = true;
                }
                Err(e) => {
                    self.fail(e);
                    return true;
                }
            }
        }
        let Some(h) = self.hdr else { return changed };
        if self.escapes {
            let sec0 = h.shoff..h.shoff.saturating_add(h.shent());
            let Some(b) = self.cap.get(sec0) else {
                return changed;
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
            return true;
        }
        if self.phdrs.is_none() {
            let r = h.phoff..h.phoff.saturating_add(h.phnum * h.phent());
            if !self.cap.has(&r) {
                return changed;
            }
            match ProgramHeader::parse(self.cap.bytes(), h.phoff as usize, h.phnum as usize, h.ctx)
            {
                Ok(p) => {
                    self.phdrs = Some(p);
                    self.plan_segments();
                    changed = true;
                }
                Err(e) => {
                    self.fail(format!("bad program headers: {e}"));
                    return true;
                }
            }
        }
        if self.shdrs.is_none() && h.shnum > 0 {
            let r = h.shoff..h.shoff.saturating_add(h.shnum * h.shent());
            if self.cap.has(&r) {
                match SectionHeader::parse(
                    self.cap.bytes(),
                    h.shoff as usize,
                    h.shnum as usize,
                    h.ctx,
                ) {
                    Ok(s) => {
                        self.shdrs = Some(s);
                        self.plan_shstrtab();
                        self.plan_section_tables();
                        self.plan_pcln_candidates();
                        changed = true;
                    }
                    Err(_) => {
                        // A broken section table is survivable: treat it as absent.
                        self.shdrs = Some(Vec::new());
                        changed = true;
                    }
                }
            }
        }
        if self.names.is_none() {
            if let Some(names) = self.section_names() {
                self.names = Some(names);
                changed = true;
            }
        }
        if !self.notes_parsed {
            if let Some(notes) = self.note_ranges() {
                if notes.iter().all(|r| self.cap.has(r)) {
                    self.notes_parsed = true;
                    self.parse_notes(&notes);
                    changed = true;
                }
            }
        }
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
                        let end = self.segment_end(off).min(off.saturating_add(64 << 10));
                        wants.push(off..end);
                    }
                }
                for w in wants {
                    self.want(w);
                }
                changed = true;
            }
        }
        changed |= self.step_go();
        changed
    }

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

    fn plan_segments(&mut self) {
        let phdrs = self.phdrs.clone().unwrap_or_default();
        for p in &phdrs {
            let r = p.p_offset
                ..p.p_offset
                    .saturating_add(p.p_filesz.min(MAX_ELF_TABLE_BYTES));
            match p.p_type {
                ph::PT_INTERP | ph::PT_DYNAMIC | ph::PT_NOTE => {
                    self.want(r);
                }
                _ => {}
            }
        }
        if let Some(first) = phdrs.iter().find(|p| p.p_type == ph::PT_LOAD) {
            if first.p_offset == 0 && first.p_flags & ph::PF_X == 0 {
                self.want(0..first.p_filesz.min(FIRST_SEGMENT_BYTES));
            }
        }
        // The build-info blob lives in a writable, non-executable PT_LOAD: the first one
        // (Go's fallback without sections), or a later one in PIE binaries, whose first
        // writable segment is the RELRO one. Scan them all; `go_facts` prefers a hit in
        // `.go.buildinfo` when section names are known.
        self.plan_names_scan(&phdrs);
        let rw = writable_segments(&phdrs);
        if let (Some(first), Some(last)) = (rw.first(), rw.last()) {
            let r = first.start..last.end;
            self.bi_scan = Some(StreamScan::new(
                r,
                go::BUILDINFO_MAGIC.len(),
                self.cap.pos(),
            ));
        }
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

    fn plan_shstrtab(&mut self) {
        let Some(h) = self.hdr else { return };
        let Some(s) = self.shdrs.as_ref().and_then(|s| s.get(h.shstrndx as usize)) else {
            return;
        };
        if s.sh_type == sh::SHT_NOBITS {
            return;
        }
        let r = s.sh_offset
            ..s.sh_offset
                .saturating_add(s.sh_size.min(MAX_ELF_TABLE_BYTES));
        self.want(r);
    }

    fn section_names(&self) -> Option<Vec<String>> {
        let h = self.hdr?;
        let shdrs = self.shdrs.as_ref()?;
        if shdrs.is_empty() {
            return Some(Vec::new());
        }
        let s = shdrs.get(h.shstrndx as usize)?;
        let r = s.sh_offset
            ..s.sh_offset
                .saturating_add(s.sh_size.min(MAX_ELF_TABLE_BYTES));
        let table = self.cap.get(r)?;
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

    fn section(&self, name: &str) -> Option<&SectionHeader> {
        let names = self.names.as_ref()?;
        let i = names.iter().position(|n| n == name)?;
        self.shdrs.as_ref()?.get(i)
    }

    /// Wants the loader tables and notes the section table points at. Section types are
    /// enough (names may come last in the file).
    fn plan_section_tables(&mut self) {
        let shdrs = self.shdrs.clone().unwrap_or_default();
        let table = |s: &SectionHeader| {
            s.sh_offset
                ..s.sh_offset
                    .saturating_add(s.sh_size.min(MAX_ELF_TABLE_BYTES))
        };
        for s in shdrs.iter().filter(|s| s.sh_type != sh::SHT_NOBITS) {
            match s.sh_type {
                sh::SHT_DYNAMIC | SHT_GNU_VERDEF | SHT_GNU_VERNEED | sh::SHT_NOTE => {
                    self.want(table(s));
                }
                _ => {}
            }
            // String tables the dynamic section, .dynsym and the version tables use.
            if matches!(
                s.sh_type,
                sh::SHT_DYNAMIC | sh::SHT_DYNSYM | SHT_GNU_VERDEF | SHT_GNU_VERNEED
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

    /// The pclntab starts a section (`.gopclntab`, or `.data.rel.ro.gopclntab` in PIE),
    /// so every allocated, non-executable section start is a candidate; the magic and header
    /// checks pick the real one. This works before section names are known (Go 1.27 writes
    /// `.shstrtab` last).
    fn plan_pcln_candidates(&mut self) {
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
        self.pcln_candidates = starts;
        self.pcln_checked = 0;
    }

    fn note_ranges(&self) -> Option<Vec<Range<u64>>> {
        let phdrs = self.phdrs.as_ref()?;
        Some(
            phdrs
                .iter()
                .filter(|p| p.p_type == ph::PT_NOTE)
                .map(|p| {
                    p.p_offset
                        ..p.p_offset
                            .saturating_add(p.p_filesz.min(MAX_ELF_TABLE_BYTES))
                })
                .filter(|r| r.end <= self.cap.size())
                .collect(),
        )
    }

    fn parse_notes(&mut self, ranges: &[Range<u64>]) {
        let Some(h) = self.hdr else { return };
        for r in ranges {
            let Some(b) = self.cap.get(r.clone()) else {
                continue;
            };
            for (name, typ, desc) in notes(b, h.big) {
                match (name, typ) {
                    (b"Go", 4) => {
                        self.go_note = Some(String::from_utf8_lossy(desc).into_owned());
                    }
                    (b"GNU", 3) => self.gnu_build_id = Some(hex::encode(desc)),
                    _ => {}
                }
            }
        }
    }

    fn dynamic_range(&self) -> Option<Range<u64>> {
        let p = self
            .phdrs
            .as_ref()?
            .iter()
            .find(|p| p.p_type == ph::PT_DYNAMIC)?;
        Some(
            p.p_offset
                ..p.p_offset
                    .saturating_add(p.p_filesz.min(MAX_ELF_TABLE_BYTES)),
        )
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
                5 => strtab_addr = Some(val), // DT_STRTAB
                10 => strsz = val,            // DT_STRSZ
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

    /// Go-specific progress: pclntab header, build-info blob lengths, scans to start.
    fn step_go(&mut self) -> bool {
        let Some(h) = self.hdr else { return false };
        if self.phdrs.is_none() {
            return false;
        }
        let mut changed = false;
        // Examine new build-info hits: extend the capture to the blob's real length.
        while self.bi_examined < self.bi_hits.len() {
            let off = self.bi_hits[self.bi_examined];
            let head = off..(off + 32 + 20).min(self.segment_end(off));
            if !self.cap.has(&head) {
                break;
            }
            self.bi_examined += 1;
            changed = true;
            let bytes = self.cap.get(head).unwrap_or_default();
            match go::parse_header(bytes) {
                Ok(go::BlobHeader::Inline) => {
                    if let Some(len) = inline_len(&bytes[32..]).or_else(|| {
                        // Lengths may need more than the head: read them from the window.
                        let w = off + 32..(off + BUILDINFO_WINDOW).min(self.segment_end(off));
                        self.cap.get(w).and_then(inline_len)
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
        while self.pcln.is_none() && self.pcln_checked < self.pcln_candidates.len() {
            let off = self.pcln_candidates[self.pcln_checked];
            let r = off..off.saturating_add(8 + 8 * h.ptr());
            if !self.cap.has(&r) {
                if r.start < self.cap.pos() {
                    // Passed without being captured (budget): not examinable.
                    self.pcln_checked += 1;
                    continue;
                }
                break;
            }
            self.pcln_checked += 1;
            changed = true;
            let b = self.cap.get(r).unwrap_or_default();
            let magic = read_uint(&b[..4], h.big) as u32;
            let valid = go::pclntab_magic_versions(magic).is_some()
                && b[4] == 0
                && b[5] == 0
                && matches!(b[6], 1 | 2 | 4)
                && u64::from(b[7]) == h.ptr();
            if valid {
                self.pcln = Some(Pcln { off, magic });
                self.pcln_scan = None;
                self.plan_funcnames();
            }
        }
        // Keep `.rodata` of Go binaries: module info and version strings can be recovered
        // from it when the build-info blob is gone, and pre-1.18 blobs point into it. Go is
        // recognised early by its build-ID note, or by the layout of Go's linker, which
        // writes the section table before all section data (npm's esbuild has no notes).
        let sht_late = h.shnum > 0 && self.shdrs.is_none() && h.shoff > self.cap.pos();
        if !self.rodata_planned && (self.shdrs.is_some() || (sht_late && self.notes_parsed)) {
            self.rodata_planned = true;
            if self.go_note.is_some() || self.section_table_first() {
                self.plan_rodata();
            }
            changed = true;
        }
        // A pclntab magic scan when the section table gives no candidates (it comes at
        // the end of the file, or there is none).
        if !self.pcln_started
            && self.pcln.is_none()
            && self.go_note.is_some()
            && self.shdrs.is_none()
        {
            let sht_late = h.shnum > 0 && h.shoff > self.cap.pos();
            if sht_late || h.shnum == 0 {
                self.start_pcln_scan();
                changed = true;
            }
        }
        // No blob at the start of the last writable segment: look for the string header of
        // `runtime.buildVersion` in writable data, pointing at a `go1.` string in `.rodata`.
        if !self.ver_started && self.bi_hits.is_empty() && !self.rodata.is_empty() {
            let rw = writable_segments(self.phdrs.as_deref().unwrap_or_default());
            if let Some(last) = rw.last() {
                if self.cap.pos() >= last.start.saturating_add(64)
                    || self.cap.pos() + 1 >= self.cap.size()
                {
                    self.ver_started = true;
                    self.version_cands = self.find_version_candidates();
                    self.version_index = self
                        .version_cands
                        .iter()
                        .enumerate()
                        .map(|(i, (v, _))| (*v, i as u32))
                        .collect();
                    if !self.version_cands.is_empty() {
                        for r in rw {
                            self.ver_scans.push(StreamScan::new(
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

    /// Whether the section table precedes every section's data (Go's internal linker
    /// does this; GNU ld and lld put it at the end).
    fn section_table_first(&self) -> bool {
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

    /// Wants the first allocated section of each read-only, non-executable segment
    /// (`.rodata` for Go's linker), up to [`RODATA_CAPTURE_BYTES`].
    fn plan_rodata(&mut self) {
        let phdrs = self.phdrs.clone().unwrap_or_default();
        let shdrs = self.shdrs.clone().unwrap_or_default();
        let mut wants = Vec::new();
        for p in phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD && p.p_flags & (ph::PF_X | ph::PF_W) == 0)
        {
            let seg = p.p_offset..p.p_offset.saturating_add(p.p_filesz);
            let first = shdrs
                .iter()
                .filter(|s| {
                    s.sh_type == sh::SHT_PROGBITS
                        && s.sh_flags & u64::from(sh::SHF_ALLOC) != 0
                        && seg.contains(&s.sh_offset)
                })
                .min_by_key(|s| s.sh_offset);
            match first {
                Some(s) => {
                    let end = s
                        .sh_offset
                        .saturating_add(s.sh_size.min(RODATA_CAPTURE_BYTES))
                        .min(seg.end);
                    wants.push(s.sh_offset..end);
                }
                // No section table yet (it comes last): the segment's start.
                None if shdrs.is_empty() => wants
                    .push(seg.start..seg.end.min(seg.start.saturating_add(RODATA_CAPTURE_BYTES))),
                None => {}
            }
        }
        for w in wants {
            if self.want(w.clone()) {
                self.rodata.push(w);
            }
        }
    }

    /// `go1.` strings in captured `.rodata`: (vaddr, bytes from there, at most 48).
    fn find_version_candidates(&self) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for r in &self.rodata {
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

    fn start_pcln_scan(&mut self) {
        let Some(h) = self.hdr else { return };
        self.pcln_started = true;
        let _ = h;
        let phdrs = self.phdrs.clone().unwrap_or_default();
        let segs: Vec<Range<u64>> = phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD && p.p_flags & ph::PF_X == 0)
            .map(|p| p.p_offset..p.p_offset.saturating_add(p.p_filesz))
            .collect();
        if let (Some(first), Some(last)) = (segs.first(), segs.last()) {
            self.pcln_scan = Some(StreamScan::new(first.start..last.end, 6, self.cap.pos()));
        }
    }

    fn plan_funcnames(&mut self) {
        let (Some(h), Some(p)) = (self.hdr, self.pcln.as_ref()) else {
            return;
        };
        let ptr = h.ptr();
        let field = |i: u64| self.read_word(p.off.saturating_add(8 + i * ptr), ptr);
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
            self.fn_scan = Some(StreamScan::new(start..end, 32, self.cap.pos()));
        }
    }

    /// Runs every active scan over the chunk. Returns whether any hit was recorded.
    fn run_scans(&mut self, start: u64, data: &[u8]) -> bool {
        let mut any = false;
        let vbase = |s: &Self, off: u64| s.off_to_vaddr(off);
        if let Some(mut scan) = self.bi_scan.take() {
            let hits = scan.feed(start, data, |s, at, emit| {
                for i in memchr::memmem::find_iter(s, go::BUILDINFO_MAGIC) {
                    emit(at + i as u64, go::BUILDINFO_MAGIC.len(), 0);
                }
            });
            for (off, _) in hits {
                // Go only accepts 16-byte aligned virtual addresses.
                let aligned = vbase(self, off).is_some_and(|v| v % 16 == 0);
                if aligned && self.bi_hits.len() < MAX_BUILDINFO_HITS {
                    self.bi_hits.push(off);
                    let end = (off + BUILDINFO_WINDOW).min(self.segment_end(off));
                    self.want(off..end);
                    any = true;
                }
            }
            if !scan.done() {
                self.bi_scan = Some(scan);
            }
        }
        if let Some(mut n) = self.names_scan.take() {
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
        }
        if let (Some(mut scan), Some(h)) = (self.pcln_scan.take(), self.hdr) {
            {
                let finders = &PCLN_FINDERS[usize::from(h.big)];
                let hits = scan.feed(start, data, |s, at, emit| {
                    for f in finders {
                        for i in f.find_iter(s) {
                            emit(at + i as u64, 6, 0);
                        }
                    }
                });
                for (off, _) in hits {
                    let aligned = vbase(self, off).is_some_and(|v| v % h.ptr() == 0);
                    if aligned && self.pcln_candidates.len() < MAX_PCLN_CANDIDATES {
                        self.pcln_candidates.push(off);
                        self.want(off..off.saturating_add(8 + 8 * h.ptr()));
                        any = true;
                    }
                }
            }
            if !scan.done() && self.pcln.is_none() {
                self.pcln_scan = Some(scan);
            }
        }
        if let Some(mut scan) = self.fn_scan.take() {
            let found = self.uses.flags();
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
                let u = &mut self.uses;
                match tag {
                    0 => u.crypto_tls = true,
                    1 => u.crypto_x509 = true,
                    2 => u.time_load_location = true,
                    3 => u.time_tzdata = true,
                    4 => u.race = true,
                    5 => u.cgo = true,
                    6 => u.net = true,
                    _ => u.os_user = true,
                }
            }
            if scan.done() {
                self.fn_scanned = !scan.gap;
            } else {
                self.fn_scan = Some(scan);
            }
        }
        if !self.ver_scans.is_empty() {
            if let Some(h) = self.hdr {
                // Candidate `go1.` strings by virtual address; a hit's tag carries the
                // candidate's index and the string length, so no bytes need re-reading.
                let index = &self.version_index;
                let ptr = h.ptr();
                let mut scans = std::mem::take(&mut self.ver_scans);
                for scan in &mut scans {
                    let hits = scan.feed(start, data, |s, at, emit| {
                        let n = s.len() as u64;
                        let mut i = (ptr - at % ptr) % ptr;
                        while i + 2 * ptr <= n {
                            let w = read_uint(&s[i as usize..(i + ptr) as usize], h.big);
                            if let Some(&idx) = index.get(&w) {
                                let len = read_uint(
                                    &s[(i + ptr) as usize..(i + 2 * ptr) as usize],
                                    h.big,
                                );
                                if (4..=VERSION_WINDOW).contains(&len) {
                                    emit(at + i, 2 * ptr as usize, (idx << 8) | len as u32);
                                }
                            }
                            i += ptr;
                        }
                    });
                    for (_, tag) in hits {
                        self.version_refs
                            .push(((tag >> 8) as usize, u64::from(tag & 0xff)));
                        any = true;
                    }
                }
                scans.retain(|s| !s.done());
                self.ver_scans = scans;
            }
        }
        any
    }

    /// Ends the stream and reports.
    pub(crate) fn finish(mut self) -> Result<ElfInfo, ElfError> {
        // A file shorter than its header.
        if self.hdr.is_none() && self.fatal.is_none() {
            self.fail("truncated ELF header");
        }
        if let Some(f) = self.fatal.take() {
            return Err(ElfError(f));
        }
        let h = self.hdr.expect("checked");
        let mut incomplete: Vec<String> = Vec::new();
        let phdrs = self.phdrs.clone().unwrap_or_default();
        if self.phdrs.is_none() {
            incomplete.push("program headers".into());
        }
        let mut interpreter_problem = None;
        let interp = phdrs.iter().find(|p| p.p_type == ph::PT_INTERP).map(|p| {
            // The kernel's own checks (fs/binfmt_elf.c, load_elf_binary): 2 to PATH_MAX
            // bytes, the last one NUL; anything else fails exec with ENOEXEC.
            if p.p_filesz < 2 || p.p_filesz > INTERP_MAX_BYTES {
                interpreter_problem = Some(format!("PT_INTERP is {} bytes long", p.p_filesz));
                return Some(String::new());
            }
            let r = p.p_offset..p.p_offset.saturating_add(p.p_filesz);
            self.cap.get(r).map(|b| {
                if b.last() != Some(&0) {
                    interpreter_problem = Some("PT_INTERP is not NUL-terminated".into());
                }
                let name = b.split(|&c| c == 0).next().unwrap_or(b);
                if name.is_empty() {
                    interpreter_problem = Some("PT_INTERP names an empty path".into());
                }
                String::from_utf8_lossy(name).into_owned()
            })
        });
        let interpreter = match interp {
            Some(Some(s)) => Some(s),
            Some(None) => {
                incomplete.push("interpreter".into());
                Some(String::new())
            }
            None => None,
        };
        let has_interp = interpreter.is_some();
        let dyns = self.dyns.take().unwrap_or_default();
        if self.dynamic_range().is_some_and(|r| !self.cap.has(&r)) {
            incomplete.push("dynamic section".into());
        }
        let strtab = dyns.strtab.clone().and_then(|r| self.cap.get(r));
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
        let needed: Vec<String> = dyns
            .needed
            .iter()
            .take(MAX_ELF_NEEDED)
            .filter_map(|&o| dstr(o, "needed libraries", &mut incomplete))
            .collect();
        if dyns.needed.len() > MAX_ELF_NEEDED {
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
        let rpath = dyns
            .rpath
            .iter()
            .filter_map(|&o| dstr(o, "rpath", &mut incomplete))
            .collect();
        let rpath = split(rpath, "rpath", &mut incomplete);
        let runpath = dyns
            .runpath
            .iter()
            .filter_map(|&o| dstr(o, "runpath", &mut incomplete))
            .collect();
        let runpath = split(runpath, "runpath", &mut incomplete);
        let soname = dyns.soname.and_then(|o| dstr(o, "soname", &mut incomplete));
        let is_pie_flag = dyns.flags_1 & DF_1_PIE != 0;
        let linkage = match h.e_type {
            2 if has_interp => Linkage::Dynamic,
            2 => Linkage::Static,
            3 if has_interp && (is_pie_flag || dyns.soname.is_none()) => Linkage::Dynamic,
            3 if has_interp => Linkage::SharedLibrary,
            3 if is_pie_flag => Linkage::StaticPie,
            3 => Linkage::SharedLibrary,
            1 => Linkage::Object,
            _ => Linkage::Other,
        };
        let pie = h.e_type == 3 && (is_pie_flag || (has_interp && dyns.soname.is_none()));
        let bind_now =
            dyns.bind_now || dyns.flags & DF_BIND_NOW != 0 || dyns.flags_1 & DF_1_NOW != 0;
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
        let nx_stack = phdrs
            .iter()
            .find(|p| p.p_type == ph::PT_GNU_STACK)
            .is_some_and(|p| p.p_flags & ph::PF_X == 0);
        let shdrs = self.shdrs.clone().unwrap_or_default();
        if h.shnum > 0 && self.shdrs.is_none() {
            incomplete.push("section headers".into());
        }
        let symtab = shdrs.iter().any(|s| s.sh_type == sh::SHT_SYMTAB);
        let mut debug = DebugInfo::default();
        match &self.names {
            Some(names) => {
                for (s, n) in shdrs.iter().zip(names) {
                    if n.starts_with(".debug_") || n.starts_with(".zdebug_") {
                        debug.dwarf = true;
                        debug.compressed |=
                            n.starts_with(".zdebug_") || s.sh_flags & SHF_COMPRESSED != 0;
                    }
                    debug.debuglink |= n == ".gnu_debuglink";
                }
            }
            None if !shdrs.is_empty() => incomplete.push("section names".into()),
            None => {}
        }
        let (version_needs, version_defs) = self.versions(&dyns, strtab, &mut incomplete);
        // Notes outside PT_NOTE (Go 1.27 maps only its own note) are read from sections.
        let mut note_ranges = self.note_ranges().unwrap_or_default();
        note_ranges.extend(shdrs.iter().filter(|s| s.sh_type == sh::SHT_NOTE).map(|s| {
            s.sh_offset
                ..s.sh_offset
                    .saturating_add(s.sh_size.min(MAX_ELF_TABLE_BYTES))
        }));
        self.parse_notes(&note_ranges);
        let upx = self
            .cap
            .get(0..self.cap.size().min(1024))
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
            linkage,
            interpreter,
            interpreter_problem,
            needed,
            rpath,
            runpath,
            soname,
            pie,
            relro,
            bind_now,
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

    fn versions(
        &self,
        d: &Dyns,
        strtab: Option<&[u8]>,
        incomplete: &mut Vec<String>,
    ) -> (Vec<VersionNeed>, Vec<String>) {
        let Some(h) = self.hdr else {
            return (Vec::new(), Vec::new());
        };
        let name = |off: u32| {
            strtab
                .and_then(|t| cstr(t, u64::from(off)))
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        // Needed and defined versions together, at most MAX_ELF_VERSIONS.
        let mut budget = MAX_ELF_VERSIONS;
        let mut needs = Vec::new();
        if let Some((addr, count)) = d.verneed {
            let mut ok = true;
            match self.vaddr_to_off(addr) {
                Some(mut off) => {
                    for _ in 0..count.min(4096) {
                        let Some(e) = self.cap.get(off..off.saturating_add(16)) else {
                            ok = false;
                            break;
                        };
                        let cnt = read_u16(&e[2..4], h.big);
                        let file = read_u32(&e[4..8], h.big);
                        let aux = read_u32(&e[8..12], h.big);
                        let next = read_u32(&e[12..16], h.big);
                        let mut versions = Vec::new();
                        let mut a = off + u64::from(aux);
                        for _ in 0..cnt {
                            let Some(x) = self.cap.get(a..a + 16) else {
                                ok = false;
                                break;
                            };
                            if budget == 0 {
                                ok = false;
                                break;
                            }
                            budget -= 1;
                            match name(read_u32(&x[8..12], h.big)) {
                                Some(n) => versions.push(n),
                                None => ok = false,
                            }
                            let nx = read_u32(&x[12..16], h.big);
                            if nx == 0 {
                                break;
                            }
                            a += u64::from(nx);
                        }
                        match name(file) {
                            Some(f) => needs.push(VersionNeed { file: f, versions }),
                            None => ok = false,
                        }
                        if next == 0 {
                            break;
                        }
                        off += u64::from(next);
                    }
                }
                None => ok = false,
            }
            if !ok {
                incomplete.push("symbol version requirements".into());
            }
        }
        let mut defs = Vec::new();
        if let Some((addr, count)) = d.verdef {
            let mut ok = true;
            match self.vaddr_to_off(addr) {
                Some(mut off) => {
                    for _ in 0..count.min(4096) {
                        let Some(e) = self.cap.get(off..off.saturating_add(20)) else {
                            ok = false;
                            break;
                        };
                        let flags = read_u16(&e[2..4], h.big);
                        let aux = read_u32(&e[12..16], h.big);
                        let next = read_u32(&e[16..20], h.big);
                        if flags & VER_FLG_BASE == 0 {
                            if budget == 0 {
                                ok = false;
                                break;
                            }
                            budget -= 1;
                            let a = off + u64::from(aux);
                            match self
                                .cap
                                .get(a..a + 8)
                                .and_then(|x| name(read_u32(&x[0..4], h.big)))
                            {
                                Some(n) => defs.push(n),
                                None => ok = false,
                            }
                        }
                        if next == 0 {
                            break;
                        }
                        off += u64::from(next);
                    }
                }
                None => ok = false,
            }
            if !ok {
                incomplete.push("symbol version definitions".into());
            }
        }
        (needs, defs)
    }

    fn go_facts(&self, incomplete: &mut Vec<String>) -> Option<GoFacts> {
        let h = self.hdr?;
        let pclntab = self
            .pcln
            .as_ref()
            .and_then(|p| go::pclntab_magic_versions(p.magic));
        let mut facts = GoFacts {
            build_info: None,
            source: None,
            build_id: self.go_note.clone(),
            pclntab,
            uses: (self.pcln.is_some() && self.fn_scanned).then_some(self.uses),
            build_info_error: None,
        };
        // The blob: inside `.go.buildinfo` when that section exists, else the first hit.
        let section = self
            .section(".go.buildinfo")
            .map(|s| s.sh_offset..s.sh_offset.saturating_add(s.sh_size));
        let hit = match &section {
            Some(r) => self.bi_hits.iter().copied().find(|o| r.contains(o)),
            None => self.bi_hits.first().copied(),
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
        if facts.build_info.is_none() {
            if let Some(bi) = self.recover_from_rodata() {
                facts.build_info = Some(bi);
                facts.source = Some(BuildInfoSource::Rodata);
                facts.build_info_error = Some(if hit.is_some() {
                    "build-info blob unreadable; module info recovered from read-only data".into()
                } else {
                    "no .go.buildinfo blob (removed after linking); module info recovered from read-only data".into()
                });
            }
        }
        let is_go = facts.build_info.is_some()
            || hit.is_some()
            || self.go_note.is_some()
            || self.pcln.is_some()
            || self.section(".gopclntab").is_some();
        if !is_go {
            return None;
        }
        if facts.build_info.is_none() && facts.build_info_error.is_none() {
            facts.build_info_error =
                Some("no build info (removed, stripped, or a toolchain older than Go 1.13)".into());
        }
        let _ = h;
        Some(facts)
    }

    /// Module info from the `runtime.modinfo` copy in `.rodata`, and the Go version from a
    /// string header in writable data that points at a `go1.…` string there.
    fn recover_from_rodata(&self) -> Option<BuildInfo> {
        let text = self.rodata.iter().find_map(|r| {
            let b = self.cap.get(r.clone())?;
            memchr::memmem::find_iter(b, &go::MODINFO_START).find_map(|start| {
                let rest = &b[start..];
                let end = memchr::memmem::find(rest.get(16..)?, &go::MODINFO_END)? + 32;
                let text = go::strip_framing(&rest[..end]);
                (!text.is_empty()).then(|| text.to_vec())
            })
        })?;
        let version = self.version_refs.iter().find_map(|&(i, len)| {
            let (_, bytes) = self.version_cands.get(i)?;
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

/// Total length of an inline build-info payload (two uvarint-prefixed strings), if the
/// varints are readable from `b`.
fn inline_len(b: &[u8]) -> Option<u64> {
    let (l1, n1) = uvarint(b)?;
    let rest = b.get(n1..)?.get(usize::try_from(l1).ok()?..)?;
    let (l2, n2) = uvarint(rest)?;
    Some(n1 as u64 + l1 + n2 as u64 + l2)
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &c) in b.iter().take(10).enumerate() {
        x |= u64::from(c & 0x7f) << (7 * i);
        if c < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

fn parse_header(b: &[u8], size: u64) -> Result<(Hdr, bool), String> {
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
fn writable_segments(phdrs: &[ProgramHeader]) -> Vec<Range<u64>> {
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

fn read_uint(b: &[u8], big: bool) -> u64 {
    let mut x = 0u64;
    if big {
        for &c in b {
            x = (x << 8) | u64::from(c);
        }
    } else {
        for &c in b.iter().rev() {
            x = (x << 8) | u64::from(c);
        }
    }
    x
}

fn read_u16(b: &[u8], big: bool) -> u16 {
    read_uint(&b[..2], big) as u16
}

fn read_u32(b: &[u8], big: bool) -> u32 {
    read_uint(&b[..4], big) as u32
}

/// The NUL-terminated string at `off` of a string table.
fn cstr(table: &[u8], off: u64) -> Option<&[u8]> {
    let s = table.get(usize::try_from(off).ok()?..)?;
    let end = memchr::memchr(0, s)?;
    Some(&s[..end])
}

/// Iterates ELF notes: (name without NULs, type, descriptor).
fn notes(b: &[u8], big: bool) -> Vec<(&[u8], u32, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 12 <= b.len() {
        let namesz = read_u32(&b[i..], big) as usize;
        let descsz = read_u32(&b[i + 4..], big) as usize;
        let typ = read_u32(&b[i + 8..], big);
        let name_at = i + 12;
        let desc_at = name_at + namesz.div_ceil(4) * 4;
        let next = desc_at.saturating_add(descsz.div_ceil(4) * 4);
        if desc_at.saturating_add(descsz) > b.len() || namesz > b.len() {
            break;
        }
        let name = &b[name_at..name_at + namesz];
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        out.push((name, typ, &b[desc_at..desc_at + descsz]));
        if next <= i {
            break;
        }
        i = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints() {
        assert_eq!(uvarint(&[0x08]), Some((8, 1)));
        assert_eq!(uvarint(&[0xff, 0x02]), Some((383, 2)));
        assert_eq!(uvarint(&[0x80; 11]), None);
        assert_eq!(inline_len(&[2, b'a', b'b', 1, b'x']), Some(5));
        assert_eq!(inline_len(&[2, b'a']), None);
    }

    /// A small ELF64 executable whose `.shstrtab` lies `gap` bytes before its section
    /// table, after `filler` (lld's layout, with a `.strtab` of `gap` bytes).
    /// Writes the low `n` bytes of `v`, little-endian, at `at`.
    fn put(f: &mut [u8], at: usize, v: u64, n: usize) {
        f[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
    }

    fn far_shstrtab_elf(filler: &[u8], gap: usize) -> Vec<u8> {
        let names = b"\0.shstrtab\0.debug_info\0";
        let mut f = vec![0u8; 0x1000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4..7].copy_from_slice(&[2, 1, 1]);
        put(&mut f, 16, 2, 2); // ET_EXEC
        put(&mut f, 18, 62, 2); // x86-64
        put(&mut f, 20, 1, 4);
        put(&mut f, 32, 64, 8); // e_phoff
        put(&mut f, 52, 64, 2);
        put(&mut f, 54, 56, 2);
        put(&mut f, 56, 1, 2);
        put(&mut f, 58, 64, 2);
        put(&mut f, 60, 3, 2);
        put(&mut f, 62, 1, 2); // e_shstrndx
        for (at, v) in [
            (64, 1u64),
            (68, 5),
            (72, 0),
            (80, 0x40_0000),
            (88, 0x40_0000),
            (96, 0x1000),
            (104, 0x1000),
            (112, 0x1000),
        ] {
            put(&mut f, at, v, if at == 64 || at == 68 { 4 } else { 8 });
        }
        f.extend_from_slice(filler);
        let names_at = f.len() as u64;
        f.extend_from_slice(names);
        f.resize(f.len() + gap, b'x');
        let shoff = f.len() as u64;
        put(&mut f, 40, shoff, 8);
        let mut sh = vec![0u8; 3 * 64];
        for (i, (name, typ, off, size)) in [
            (1u64, 3u64, names_at, names.len() as u64),
            (11, 1, 0x1000, 16),
        ]
        .into_iter()
        .enumerate()
        {
            let b = (i + 1) * 64;
            put(&mut sh, b, name, 4);
            put(&mut sh, b + 4, typ, 4);
            put(&mut sh, b + 24, off, 8);
            put(&mut sh, b + 32, size, 8);
        }
        f.extend_from_slice(&sh);
        f
    }

    /// A shared object with forged dynamic lists: `needed` DT_NEEDED names, one DT_RPATH of
    /// `dirs` directories, and `verneeds` version-requirement entries that all share one
    /// chain of `aux` versions (verneeds × aux versions for a naive reader).
    fn forged_dynamic_elf(needed: usize, dirs: usize, verneeds: usize, aux: usize) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        // Strings: libc name, one version name, the needed names, the rpath.
        let mut strtab = b"\0libc.so.6\0GLIBC_2.2.5\0".to_vec();
        let mut needed_at = Vec::new();
        for i in 0..needed {
            needed_at.push(strtab.len() as u64);
            strtab.extend_from_slice(format!("lib{i}.so\0").as_bytes());
        }
        let rpath_at = strtab.len() as u64;
        let rpath: Vec<String> = (0..dirs).map(|i| format!("/r/{i}")).collect();
        strtab.extend_from_slice(rpath.join(":").as_bytes());
        strtab.push(0);
        let mut f = vec![0u8; 0x100];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4..7].copy_from_slice(&[2, 1, 1]);
        put(&mut f, 16, 3, 2); // ET_DYN
        put(&mut f, 18, 62, 2);
        put(&mut f, 20, 1, 4);
        put(&mut f, 32, 64, 8); // e_phoff
        put(&mut f, 52, 64, 2);
        put(&mut f, 54, 56, 2);
        put(&mut f, 56, 2, 2); // PT_LOAD, PT_DYNAMIC
        let str_off = f.len() as u64;
        f.extend_from_slice(&strtab);
        f.resize(f.len().next_multiple_of(16), 0);
        let vn_off = f.len() as u64;
        let aux_off = vn_off + 16 * verneeds as u64;
        for i in 0..verneeds as u64 {
            let mut e = [0u8; 16];
            e[..2].copy_from_slice(&1u16.to_le_bytes());
            e[2..4].copy_from_slice(&(aux as u16).to_le_bytes());
            e[4..8].copy_from_slice(&1u32.to_le_bytes()); // "libc.so.6"
            e[8..12].copy_from_slice(&((aux_off - (vn_off + 16 * i)) as u32).to_le_bytes());
            e[12..16]
                .copy_from_slice(&(if i + 1 < verneeds as u64 { 16u32 } else { 0 }).to_le_bytes());
            f.extend_from_slice(&e);
        }
        for j in 0..aux {
            let mut e = [0u8; 16];
            e[8..12].copy_from_slice(&11u32.to_le_bytes()); // "GLIBC_2.2.5"
            e[12..16].copy_from_slice(&(if j + 1 < aux { 16u32 } else { 0 }).to_le_bytes());
            f.extend_from_slice(&e);
        }
        let dyn_off = f.len() as u64;
        let mut dynamic = vec![
            (5u64, BASE + str_off),
            (10, strtab.len() as u64),
            (DT_RPATH, rpath_at),
        ];
        dynamic.extend(needed_at.iter().map(|&o| (DT_NEEDED, o)));
        if verneeds > 0 {
            dynamic.extend([
                (DT_VERNEED, BASE + vn_off),
                (DT_VERNEEDNUM, verneeds as u64),
            ]);
        }
        dynamic.push((0, 0));
        for (tag, val) in &dynamic {
            f.extend_from_slice(&tag.to_le_bytes());
            f.extend_from_slice(&val.to_le_bytes());
        }
        let end = f.len() as u64;
        // PT_LOAD over the whole file, PT_DYNAMIC over the dynamic section.
        for (i, (typ, off, size)) in [(1u64, 0u64, end), (2, dyn_off, end - dyn_off)]
            .into_iter()
            .enumerate()
        {
            let b = 64 + i * 56;
            put(&mut f, b, typ, 4);
            put(&mut f, b + 4, 4, 4); // PF_R
            put(&mut f, b + 8, off, 8);
            put(&mut f, b + 16, BASE + off, 8);
            put(&mut f, b + 24, BASE + off, 8);
            put(&mut f, b + 32, size, 8);
            put(&mut f, b + 40, size, 8);
        }
        f
    }

    #[test]
    fn forged_dynamic_lists_are_cut_and_marked() {
        // Within the bounds: everything is read.
        let (e, _) = sparse(&forged_dynamic_elf(3, 4, 2, 3));
        assert_eq!(e.needed, ["lib0.so", "lib1.so", "lib2.so"]);
        assert_eq!(e.rpath, ["/r/0", "/r/1", "/r/2", "/r/3"]);
        assert_eq!(
            e.version_needs
                .iter()
                .map(|v| v.versions.len())
                .sum::<usize>(),
            6
        );
        assert!(e.incomplete.is_empty(), "{:?}", e.incomplete);
        // Past them: cut at the bound and said.
        let (e, _) = sparse(&forged_dynamic_elf(
            MAX_ELF_NEEDED + 500,
            MAX_ELF_SEARCH_DIRS * 4,
            2000,
            100,
        ));
        assert_eq!(e.needed.len(), MAX_ELF_NEEDED);
        assert_eq!(e.rpath.len(), MAX_ELF_SEARCH_DIRS);
        let versions: usize = e.version_needs.iter().map(|v| v.versions.len()).sum();
        assert_eq!(versions, MAX_ELF_VERSIONS);
        for want in [
            "needed libraries (more than",
            "rpath (more than",
            "symbol version requirements",
        ] {
            assert!(
                e.incomplete.iter().any(|i| i.starts_with(want)),
                "{want}: {:?}",
                e.incomplete
            );
        }
    }

    fn sparse(file: &[u8]) -> (ElfInfo, u64) {
        let limits = Limits {
            elf_full_capture_max: 0,
            ..Limits::default()
        };
        let mut s = ElfScanner::new(file.len() as u64, &limits).unwrap();
        for c in file.chunks(4093) {
            s.feed(c);
        }
        let captured = s.cap.captured_bytes();
        (s.finish().unwrap(), captured)
    }

    #[test]
    fn far_shstrtab_is_kept_from_the_look_back() {
        let file = far_shstrtab_elf(&vec![b'y'; 300 << 10], 3 * SHT_TAIL_BYTES as usize);
        let (e, _) = sparse(&file);
        assert!(e.incomplete.is_empty(), "{:?}", e.incomplete);
        assert!(e.debug.dwarf);
    }

    #[test]
    fn shstrtab_decoys_are_bounded() {
        // Thousands of decoy names before the real table: a few windows are kept, then the
        // scan stops; the names are reported missing, the capture stays small.
        let decoys = b"\0.shstrtab".repeat(30_000);
        let file = far_shstrtab_elf(&decoys, 3 * SHT_TAIL_BYTES as usize);
        let (e, captured) = sparse(&file);
        assert_eq!(e.incomplete, vec!["section names".to_string()]);
        let bound =
            PREFIX_BYTES + SHT_TAIL_BYTES + 3 * 64 + MAX_NAMES_HITS as u64 * 2 * NAMES_WINDOW;
        assert!(captured <= bound, "{captured} > {bound}");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let limits = Limits::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in [0usize, 4, 16, 52, 63, 64, 200, 4096] {
            for _ in 0..200 {
                let mut v = vec![0u8; len];
                for b in &mut v {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                if len >= 6 {
                    v[..4].copy_from_slice(b"\x7fELF");
                    v[4] = 1 + (x as u8 & 1);
                    v[5] = 1 + ((x >> 8) as u8 & 1);
                }
                let mut s = ElfScanner::new(len as u64, &limits).unwrap();
                for c in v.chunks(7) {
                    s.feed(c);
                }
                let _ = s.finish();
            }
        }
    }
}
