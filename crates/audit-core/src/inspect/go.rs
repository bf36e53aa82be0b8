//! Go build information: the `.go.buildinfo` blob, the module info text and the Go version.
//!
//! Every Go executable built by Go 1.13 or later carries a blob that starts with the 14-byte magic
//! `BUILDINFO_MAGIC` (<https://go.dev/src/debug/buildinfo/buildinfo.go>). Since Go 1.18 the toolchain version and the module
//! info text follow the 32-byte header inline, each prefixed by a uvarint length; before that the
//! header holds two pointers to Go string headers. The module info text is
//! what `runtime/debug.ParseBuildInfo` parses and what `go version -m` prints back, re-rendered.
//!
//! This module only decodes bytes. Finding the section or segment that holds the blob and mapping
//! virtual addresses to file bytes is the ELF scanner's job; it hands the bytes in through
//! `find_magic`, `parse_header`, `parse_inline` and the `Memory` trait.
//!
//! Everything here is written to follow Go's reader (`debug/buildinfo`, `runtime/debug`) so that
//! what is accepted, rejected and printed matches `go version -m`; deliberate differences are
//! called out on the item they concern. No input can make these functions panic, and no
//! allocation is sized by a length read from the input before it is checked against
//! `MAX_BUILDINFO` or against the bytes actually present.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::bytes::{read_uint, uvarint, VarintError};
use super::goquote::{self, UnquoteError};

pub(crate) use super::goquote::quote;

/// The 14-byte magic that starts the build info blob: `"\xff Go buildinf:"`.
///
/// The leading `0xff` makes it invalid UTF-8 on purpose, so Go source strings cannot contain it.
pub(crate) const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// Size of the blob header: magic, pointer size, flags and two pointer slots of 8 bytes.
pub(crate) const HEADER_SIZE: usize = 32;

/// The linker aligns the blob to 16 bytes, and Go's reader only accepts aligned hits.
#[cfg(test)]
const BUILDINFO_ALIGN: u64 = 16;

/// Sentinel that `cmd/go` puts before the module info text (`modload.infoStart`).
pub(crate) const MODINFO_START: [u8; 16] = [
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6,
];

/// Sentinel that `cmd/go` puts after the module info text (`modload.infoEnd`).
pub(crate) const MODINFO_END: [u8; 16] = [
    0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2,
];

/// Largest version or module info string accepted: 4 MiB.
///
/// Real module info is a few KiB even for large programs (one ~100-byte line per dependency);
/// 4 MiB leaves room for tens of thousands of modules. A longer length prefix or Go string header
/// is treated as hostile: decoding stops with [`GoError::TooLarge`] before anything is copied.
pub(crate) const MAX_BUILDINFO: u64 = 4 << 20;

/// Why Go build info could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoError {
    /// No build info: magic absent, empty version string, or a header Go itself rejects.
    #[error("not a go executable")]
    NotGo,
    /// The bytes ended before the header, length prefix or string they announce.
    #[error("go build info is truncated")]
    Truncated,
    /// A length prefix that does not decode as a uvarint of at most 64 bits.
    #[error("go build info has a malformed length prefix")]
    BadVarint,
    /// A version or module info length above the limit.
    #[error("go build info string exceeds the {limit}-byte limit")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// Pre-1.18 blob whose version pointer does not lead to file-backed bytes.
    ///
    /// Typical of pre-1.18 PIE binaries, where the pointers are dynamic relocations and the file
    /// holds zeros (golang/go#37173). Go reports this case as "not a Go executable".
    #[error("go build info version pointer {vaddr:#x} is not backed by file data")]
    UnresolvedPointer {
        /// The virtual address that could not be read.
        vaddr: u64,
    },
    /// The module info text is malformed where `runtime/debug.ParseBuildInfo` fails.
    #[error("could not parse go build info: line {line}: {reason}")]
    Modinfo {
        /// 1-based line number of the offending line.
        line: usize,
        /// What is wrong with the line.
        reason: &'static str,
    },
    /// Text that is not UTF-8: the version, the module info, or a quoted key or value whose
    /// `\x`/octal escapes decode to non-UTF-8 bytes (Go accepts the latter; imgaudit stores
    /// `String`s and rejects them instead).
    #[error("go build info is not valid utf-8")]
    InvalidUtf8,
    /// Not a valid Go `"…"` or `` `…` `` string literal.
    #[error("invalid go string literal")]
    BadQuote,
}

// ---------------------------------------------------------------------------------------------
// The blob
// ---------------------------------------------------------------------------------------------

/// Finds the build info magic in `region`, the bytes of a section or segment loaded at virtual
/// address `region_vaddr`, and returns its offset in `region`.
///
/// Like `debug/buildinfo`, only hits at 16-byte aligned virtual addresses count, and the first
/// aligned hit decides: if fewer than [`HEADER_SIZE`] bytes remain after it, the answer is `None`.
/// (Go's loop can misreport the offset when a misaligned copy of the magic precedes the real one
/// in the same 1 MiB chunk; this function does not reproduce that slip.)
#[cfg(test)]
pub(crate) fn find_magic(region: &[u8], region_vaddr: u64) -> Option<usize> {
    // Distance from the region start to the first aligned virtual address (0..16).
    let skip = (BUILDINFO_ALIGN - region_vaddr % BUILDINFO_ALIGN) % BUILDINFO_ALIGN;
    let mut off = usize::try_from(skip).ok()?;
    let step = usize::try_from(BUILDINFO_ALIGN).ok()?;
    while let Some(window) = region.get(off..off.checked_add(BUILDINFO_MAGIC.len())?) {
        if window == BUILDINFO_MAGIC {
            return (region.len() - off >= HEADER_SIZE).then_some(off);
        }
        off = off.checked_add(step)?;
    }
    None
}

/// The decoded 32-byte blob header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobHeader {
    /// Go 1.18+: the version and module info follow the header as uvarint-prefixed strings.
    Inline,
    /// Go 1.13–1.17: the header points at two Go string headers (data pointer, length).
    Pointer {
        /// Target pointer width in bytes: 4 or 8.
        ptr_size: u8,
        /// Target byte order of the pointers.
        big_endian: bool,
        /// Virtual address of the `runtime.buildVersion` string header.
        version_addr: u64,
        /// Virtual address of the `runtime.modinfo` string header.
        modinfo_addr: u64,
    },
}

/// Decodes the blob header; `bytes` starts at the magic.
///
/// Flags bit 1 selects the inline format regardless of the pointer size byte (s390x writes flags
/// `0x03`: inline and big-endian). For the pointer format, a pointer size other than 4 or 8 is
/// [`GoError::NotGo`], as in Go.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<BlobHeader, GoError> {
    if !bytes.starts_with(BUILDINFO_MAGIC) {
        return Err(GoError::NotGo);
    }
    let header = bytes.get(..HEADER_SIZE).ok_or(GoError::Truncated)?;
    let Some(&[ptr_size, flags]) = header.get(14..16) else {
        return Err(GoError::Truncated);
    };
    if flags & 0x2 != 0 {
        return Ok(BlobHeader::Inline);
    }
    if ptr_size != 4 && ptr_size != 8 {
        return Err(GoError::NotGo);
    }
    let big_endian = flags & 0x1 != 0;
    let width = usize::from(ptr_size);
    let word = |at: usize| {
        header
            .get(at..)
            .and_then(|b| read_uint(b, width, big_endian))
    };
    let version_addr = word(16).ok_or(GoError::Truncated)?;
    let modinfo_addr = word(16 + width).ok_or(GoError::Truncated)?;
    Ok(BlobHeader::Pointer {
        ptr_size,
        big_endian,
        version_addr,
        modinfo_addr,
    })
}

/// [`uvarint`] with its failure as a [`GoError`].
fn go_uvarint(bytes: &[u8]) -> Result<(u64, usize), GoError> {
    uvarint(bytes).map_err(|e| match e {
        VarintError::Truncated => GoError::Truncated,
        VarintError::Overflow => GoError::BadVarint,
    })
}

/// Splits one uvarint-prefixed string off the front of `bytes`.
fn inline_string(bytes: &[u8]) -> Result<(&[u8], &[u8]), GoError> {
    let (len, used) = go_uvarint(bytes)?;
    if len > MAX_BUILDINFO {
        return Err(GoError::TooLarge {
            limit: MAX_BUILDINFO,
        });
    }
    let len = usize::try_from(len).map_err(|_| GoError::TooLarge {
        limit: MAX_BUILDINFO,
    })?;
    let rest = bytes.get(used..).ok_or(GoError::Truncated)?;
    let data = rest.get(..len).ok_or(GoError::Truncated)?;
    let after = rest.get(len..).ok_or(GoError::Truncated)?;
    Ok((data, after))
}

/// Decodes the inline (Go 1.18+) format. `after_header` holds the bytes right after the 32-byte
/// header, up to the end of the containing section or segment (it may be longer than needed).
///
/// Returns the version string and the raw module info, still framed by the sentinels (see
/// [`strip_framing`]). An empty version is [`GoError::NotGo`], as in Go; a version that is not
/// UTF-8 is [`GoError::InvalidUtf8`].
pub(crate) fn parse_inline(after_header: &[u8]) -> Result<(String, Vec<u8>), GoError> {
    let (version, rest) = inline_string(after_header)?;
    let (modinfo, _) = inline_string(rest)?;
    Ok((version_string(version)?, modinfo.to_vec()))
}

/// Total length of an inline payload (two uvarint-prefixed strings) from the start of
/// `after_header`, when both length prefixes are readable there; the strings themselves need
/// not be present. The ELF scanner uses it to capture the whole payload.
pub(crate) fn inline_len(after_header: &[u8]) -> Option<u64> {
    let (l1, n1) = uvarint(after_header).ok()?;
    let rest = after_header.get(n1..)?.get(usize::try_from(l1).ok()?..)?;
    let (l2, n2) = uvarint(rest).ok()?;
    Some(n1 as u64 + l1 + n2 as u64 + l2)
}

fn version_string(bytes: &[u8]) -> Result<String, GoError> {
    if bytes.is_empty() {
        return Err(GoError::NotGo);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| GoError::InvalidUtf8)
}

/// Read access to a binary's memory image by virtual address, for the pre-1.18 pointer format.
pub(crate) trait Memory {
    /// Returns the `len` file-backed bytes at `vaddr`, or `None` if any of them is not in the
    /// file (outside every loaded segment, or in its BSS tail). Must not allocate based on `len`.
    fn read(&self, vaddr: u64, len: u64) -> Option<&[u8]>;
}

/// Reads a Go string header (data pointer, length) at `addr`, then the string bytes.
/// `Ok(None)` when a read is not backed by file data.
fn read_go_string(
    mem: &dyn Memory,
    ptr_size: u8,
    big_endian: bool,
    addr: u64,
) -> Result<Option<&[u8]>, GoError> {
    let width = usize::from(ptr_size);
    let Some(hdr) = mem.read(addr, 2 * u64::from(ptr_size)) else {
        return Ok(None);
    };
    let (Some(data_addr), Some(len)) = (
        read_uint(hdr, width, big_endian),
        hdr.get(width..)
            .and_then(|b| read_uint(b, width, big_endian)),
    ) else {
        return Ok(None);
    };
    if len > MAX_BUILDINFO {
        return Err(GoError::TooLarge {
            limit: MAX_BUILDINFO,
        });
    }
    let Ok(n) = usize::try_from(len) else {
        return Err(GoError::TooLarge {
            limit: MAX_BUILDINFO,
        });
    };
    Ok(mem.read(data_addr, len).and_then(|data| data.get(..n)))
}

/// Decodes the pointer (pre-1.18) format through `mem`.
///
/// Returns the version string and the raw module info, still framed (see [`strip_framing`]).
/// Follows Go: an unreadable module info string is an empty module info, not an error. An
/// unreadable version string is [`GoError::UnresolvedPointer`] (Go says "not a Go executable");
/// an empty one is [`GoError::NotGo`]. Called with [`BlobHeader::Inline`], returns
/// [`GoError::NotGo`].
pub(crate) fn parse_pointer(
    h: &BlobHeader,
    mem: &dyn Memory,
) -> Result<(String, Vec<u8>), GoError> {
    let BlobHeader::Pointer {
        ptr_size,
        big_endian,
        version_addr,
        modinfo_addr,
    } = *h
    else {
        return Err(GoError::NotGo);
    };
    if ptr_size != 4 && ptr_size != 8 {
        return Err(GoError::NotGo);
    }
    let version = read_go_string(mem, ptr_size, big_endian, version_addr)?.ok_or(
        GoError::UnresolvedPointer {
            vaddr: version_addr,
        },
    )?;
    let version = version_string(version)?;
    let modinfo = read_go_string(mem, ptr_size, big_endian, modinfo_addr)?.unwrap_or_default();
    Ok((version, modinfo.to_vec()))
}

/// Go's framing rule: if `raw` is at least 33 bytes long and byte `len - 17` is `'\n'`, the
/// text is `raw` without its first and last 16 bytes; otherwise the module info is empty.
///
/// The sentinel bytes themselves are not compared (Go does not either).
pub(crate) fn strip_framing(raw: &[u8]) -> &[u8] {
    let n = raw.len();
    if n >= 33 && raw.get(n - 17) == Some(&b'\n') {
        raw.get(16..n - 16).unwrap_or_default()
    } else {
        &[]
    }
}

/// Strips the framing of `raw_modinfo` and parses it (what `debug/buildinfo.Read` does after
/// finding the strings). Module info that is not UTF-8 is [`GoError::InvalidUtf8`].
pub(crate) fn decode_modinfo(go_version: &str, raw_modinfo: &[u8]) -> Result<BuildInfo, GoError> {
    let text = std::str::from_utf8(strip_framing(raw_modinfo)).map_err(|_| GoError::InvalidUtf8)?;
    parse_modinfo(go_version, text)
}

/// The whole decode, as `debug/buildinfo.Read` does it once the data section is known: find the
/// magic in `region` (loaded at `region_vaddr`), decode the header, read the strings (inline from
/// `region`, or through `mem` for the pointer format) and parse the module info.
///
/// For the inline format `region` should extend to the end of the file-backed part of the
/// section or segment, since the strings follow the header.
#[cfg(test)]
pub(crate) fn read_build_info(
    region: &[u8],
    region_vaddr: u64,
    mem: &dyn Memory,
) -> Result<BuildInfo, GoError> {
    let off = find_magic(region, region_vaddr).ok_or(GoError::NotGo)?;
    let blob = region.get(off..).ok_or(GoError::Truncated)?;
    let header = parse_header(blob)?;
    let (version, raw_modinfo) = match header {
        BlobHeader::Inline => parse_inline(blob.get(HEADER_SIZE..).ok_or(GoError::Truncated)?)?,
        BlobHeader::Pointer { .. } => parse_pointer(&header, mem)?,
    };
    decode_modinfo(&version, &raw_modinfo)
}

// ---------------------------------------------------------------------------------------------
// The module info text
// ---------------------------------------------------------------------------------------------

/// Build information of a Go binary, as `runtime/debug.BuildInfo` holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Raw toolchain version string, e.g. `go1.21.0 X:boringcrypto` (see [`GoVersion`]).
    pub go_version: String,
    /// Import path of the main package (`path` line); `None` when absent or empty.
    pub path: Option<String>,
    /// The main module (`mod` line and its `=>`); `None` when absent or all-empty, as Go omits it.
    pub main: Option<Module>,
    /// Dependency modules (`dep` lines), in file order.
    pub deps: Vec<Module>,
    /// Build settings (`build` lines), in file order; keys may repeat.
    pub settings: Vec<BuildSetting>,
}

/// A module: path, version, checksum, and the module replacing it, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// Module path.
    pub path: String,
    /// Module version, e.g. `v1.2.3` or `(devel)`.
    pub version: String,
    /// Checksum (`h1:…`), empty when unknown (local replacements, vendored builds).
    pub sum: String,
    /// The module this one is replaced by (`=>` line).
    pub replace: Option<Box<Self>>,
}

/// One `build` line: a key and its (unquoted) value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSetting {
    /// Setting key, e.g. `-ldflags`, `GOOS`, `vcs.revision`.
    pub key: String,
    /// Setting value, possibly empty.
    pub value: String,
}

impl Module {
    /// Go omits a main module equal to `Module{}` when rendering.
    fn is_zero(&self) -> bool {
        self.path.is_empty()
            && self.version.is_empty()
            && self.sum.is_empty()
            && self.replace.is_none()
    }

    /// A `mod`/`dep` line: 2 or 3 tab-separated columns.
    fn from_columns(cols: &str) -> Option<Self> {
        let mut it = cols.split('\t');
        let path = it.next()?;
        let version = it.next()?;
        let sum = it.next().unwrap_or_default();
        if it.next().is_some() {
            return None;
        }
        Some(Self {
            path: path.to_owned(),
            version: version.to_owned(),
            sum: sum.to_owned(),
            replace: None,
        })
    }

    /// Go's `formatMod`: the replaced module has no sum column; each line ends with `\n`.
    fn render(&self, word: &str, out: &mut String) {
        out.push_str(word);
        out.push('\t');
        out.push_str(&self.path);
        out.push('\t');
        out.push_str(&self.version);
        match &self.replace {
            None => {
                out.push('\t');
                out.push_str(&self.sum);
            }
            Some(r) => {
                out.push('\n');
                r.render("=>", out);
            }
        }
        out.push('\n');
    }
}

impl BuildInfo {
    /// The value of build setting `key`; the last one wins if the key repeats.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    /// The text of Go's `BuildInfo.String()`, including the `go` line when `go_version` is set.
    pub fn to_go_string(&self) -> String {
        self.render_text(true)
    }

    /// Exactly what `go version -m FILE` prints on stdout for this binary: `FILE: goversion`, then
    /// `String()` without the `go` line, each line prefixed by a TAB
    /// (<https://go.dev/src/cmd/go/internal/version/version.go>).
    pub fn render_go_version_m(&self, file: &str) -> String {
        let mut out = format!("{file}: {}\n", self.go_version);
        let text = self.render_text(false);
        if !text.is_empty() {
            let body = text.strip_suffix('\n').unwrap_or(&text);
            out.push('\t');
            out.push_str(&body.replace('\n', "\n\t"));
            out.push('\n');
        }
        out
    }

    fn render_text(&self, with_go_version: bool) -> String {
        let mut out = String::new();
        if with_go_version && !self.go_version.is_empty() {
            out.push_str("go\t");
            out.push_str(&self.go_version);
            out.push('\n');
        }
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty()) {
            out.push_str("path\t");
            out.push_str(path);
            out.push('\n');
        }
        if let Some(main) = self.main.as_ref().filter(|m| !m.is_zero()) {
            main.render("mod", &mut out);
        }
        for dep in &self.deps {
            dep.render("dep", &mut out);
        }
        for s in &self.settings {
            out.push_str("build\t");
            push_maybe_quoted(&mut out, &s.key, key_needs_quote(&s.key));
            out.push('=');
            push_maybe_quoted(&mut out, &s.value, value_needs_quote(&s.value));
            out.push('\n');
        }
        out
    }
}

fn push_maybe_quoted(out: &mut String, s: &str, needs_quote: bool) {
    if needs_quote {
        out.push_str(&quote(s));
    } else {
        out.push_str(s);
    }
}

/// Go's `quoteKey`: empty, or contains any of `= \t\r\n"` and backtick.
pub(crate) fn key_needs_quote(key: &str) -> bool {
    key.is_empty()
        || key
            .bytes()
            .any(|b| matches!(b, b'=' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'`'))
}

/// Go's `quoteValue`: contains any of ` \t\r\n"` and backtick (`=` is fine in values).
pub(crate) fn value_needs_quote(value: &str) -> bool {
    value
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'`'))
}

/// Go's `strconv.Unquote` for `"…"` and `` `…` `` literals (single-quoted rune literals are
/// [`GoError::BadQuote`]). Escapes that decode to non-UTF-8 bytes give [`GoError::InvalidUtf8`].
pub(crate) fn unquote(s: &str) -> Result<String, GoError> {
    goquote::unquote(s).map_err(|e| match e {
        UnquoteError::Syntax => GoError::BadQuote,
        UnquoteError::InvalidUtf8 => GoError::InvalidUtf8,
    })
}

/// Which module a following `=>` line replaces.
enum Last {
    None,
    Main,
    Dep(usize),
}

/// Parses module info text exactly like `runtime/debug.ParseBuildInfo`, and sets `go_version`.
///
/// Lines end with `\n`; a final fragment without one is ignored. Unknown lines (including the
/// blank line after `=>` and `go\t…`) are skipped. Errors, with the 1-based line number, where Go
/// errors: a `mod`/`dep` line without 2 or 3 columns, a `=>` line without 3 columns or without a
/// `mod`/`dep` line before it (since the last `=>`), and malformed `build` lines. The one
/// deliberate difference: a quoted key or value whose escapes decode to non-UTF-8 bytes is
/// [`GoError::InvalidUtf8`] (Go keeps such bytes in its string).
///
/// Later `path` and `mod` lines overwrite earlier ones, as in Go; an empty path or all-empty main
/// module ends up as `None`, since Go's `String()` omits them too.
pub fn parse_modinfo(go_version: &str, text: &str) -> Result<BuildInfo, GoError> {
    let mut bi = BuildInfo {
        go_version: go_version.to_owned(),
        ..BuildInfo::default()
    };
    let mut last = Last::None;
    let mut rest = text;
    let mut line_no = 0;
    while let Some((line, tail)) = rest.split_once('\n') {
        rest = tail;
        line_no += 1;
        let err = |reason| GoError::Modinfo {
            line: line_no,
            reason,
        };
        if let Some(path) = line.strip_prefix("path\t") {
            bi.path = Some(path.to_owned());
        } else if let Some(cols) = line.strip_prefix("mod\t") {
            let m = Module::from_columns(cols).ok_or_else(|| err("expected 2 or 3 columns"))?;
            bi.main = Some(m);
            last = Last::Main;
        } else if let Some(cols) = line.strip_prefix("dep\t") {
            let m = Module::from_columns(cols).ok_or_else(|| err("expected 2 or 3 columns"))?;
            last = Last::Dep(bi.deps.len());
            bi.deps.push(m);
        } else if let Some(cols) = line.strip_prefix("=>\t") {
            let mut it = cols.splitn(4, '\t');
            let (Some(path), Some(version), Some(sum), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(err("expected 3 columns for replacement"));
            };
            let target = match last {
                Last::None => None,
                Last::Main => bi.main.as_mut(),
                Last::Dep(i) => bi.deps.get_mut(i),
            };
            let target =
                target.ok_or_else(|| err("replacement with no module on previous line"))?;
            target.replace = Some(Box::new(Module {
                path: path.to_owned(),
                version: version.to_owned(),
                sum: sum.to_owned(),
                replace: None,
            }));
            last = Last::None;
        } else if let Some(kv) = line.strip_prefix("build\t") {
            bi.settings.push(parse_build_line(kv).map_err(|e| match e {
                BuildLineError::Reason(reason) => err(reason),
                BuildLineError::InvalidUtf8 => GoError::InvalidUtf8,
            })?);
        }
    }
    if bi.path.as_deref() == Some("") {
        bi.path = None;
    }
    if bi.main.as_ref().is_some_and(Module::is_zero) {
        bi.main = None;
    }
    Ok(bi)
}

enum BuildLineError {
    Reason(&'static str),
    InvalidUtf8,
}

/// The text after `build\t`: `key=value`, either side possibly a Go quoted string.
fn parse_build_line(kv: &str) -> Result<BuildSetting, BuildLineError> {
    use BuildLineError::Reason;
    let unquote_part = |s: &str, syntax: &'static str| match unquote(s) {
        Ok(v) => Ok(v),
        Err(GoError::InvalidUtf8) => Err(BuildLineError::InvalidUtf8),
        Err(_) => Err(Reason(syntax)),
    };
    let (key, raw_value) = match kv.as_bytes().first() {
        None => return Err(Reason("build line missing '='")),
        Some(b'=') => return Err(Reason("build line with missing key")),
        Some(b'"' | b'`') => {
            let raw_key = goquote::quoted_prefix(kv)
                .map_err(|_| Reason("invalid quoted key in build line"))?;
            let after = kv.get(raw_key.len()..).unwrap_or_default();
            let Some(raw_value) = after.strip_prefix('=') else {
                return Err(Reason(if after.is_empty() {
                    "build line missing '=' after quoted key"
                } else {
                    "unexpected character after quoted key"
                }));
            };
            (
                unquote_part(raw_key, "invalid quoted key in build line")?,
                raw_value,
            )
        }
        Some(_) => {
            let (key, raw_value) = kv
                .split_once('=')
                .ok_or(Reason("build line missing '=' after key"))?;
            if key_needs_quote(key) {
                return Err(Reason("unquoted key must be quoted"));
            }
            (key.to_owned(), raw_value)
        }
    };
    let value = match raw_value.as_bytes().first() {
        Some(b'"' | b'`') => unquote_part(raw_value, "invalid quoted value in build line")?,
        _ if value_needs_quote(raw_value) => return Err(Reason("unquoted value must be quoted")),
        _ => raw_value.to_owned(),
    };
    Ok(BuildSetting { key, value })
}

// ---------------------------------------------------------------------------------------------
// Go versions
// ---------------------------------------------------------------------------------------------

/// A Go release version parsed from the start of a version string.
///
/// Ordering follows Go's: `1.21beta1 < 1.21rc2 < 1.21.0 < 1.21.1`, and `go1.20` equals
/// `go1.20.0` (before Go 1.21 the first release of a series had no `.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GoVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (the release series, e.g. 21).
    pub minor: u32,
    /// Patch version; 0 when absent.
    pub patch: u32,
    /// Pre-release, normalised as `beta<N>` or `rc<N>`; `None` for a release.
    pub pre: Option<String>,
}

impl GoVersion {
    /// Parses the leading `go<major>[.<minor>[.<patch>]][(rc|beta)<N>]` of `raw`.
    ///
    /// Whatever follows must not continue the version (an ASCII letter, digit or `.`), so
    /// `go1.21.0 X:boringcrypto`, `go1.22.5-vendor` and `go1.20.10 (Red Hat 1.20.10-1.el9)` parse
    /// while `go1.21alpha1` does not. Development builds (`devel go1.23-abc123 …`) return `None`:
    /// they are not releases and cannot be ordered against them; keep the raw string instead.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.strip_prefix("go")?;
        let (major, mut s) = leading_number(s)?;
        let mut minor = 0;
        let mut patch = 0;
        if let Some(t) = s.strip_prefix('.') {
            (minor, s) = leading_number(t)?;
            if let Some(t) = s.strip_prefix('.') {
                (patch, s) = leading_number(t)?;
            }
        }
        let mut pre = None;
        for kind in ["beta", "rc"] {
            if let Some(t) = s.strip_prefix(kind) {
                let (n, t) = leading_number(t)?;
                pre = Some(format!("{kind}{n}"));
                s = t;
                break;
            }
        }
        if s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.') {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Sort key of the pre-release: beta before rc before the release itself.
    fn pre_key(&self) -> (u8, u32) {
        let Some(pre) = self.pre.as_deref() else {
            return (2, 0);
        };
        let number = |s: &str| s.parse().unwrap_or(0);
        if let Some(n) = pre.strip_prefix("rc") {
            (1, number(n))
        } else if let Some(n) = pre.strip_prefix("beta") {
            (0, number(n))
        } else {
            (0, 0)
        }
    }
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch, self.pre_key())
            .cmp(&(other.major, other.minor, other.patch, other.pre_key()))
            // Only distinct for hand-built values with a non-canonical `pre`; keeps Ord total and
            // consistent with Eq.
            .then_with(|| self.pre.cmp(&other.pre))
    }
}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A non-empty run of ASCII digits at the start of `s` that fits in a `u32`, and the rest.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    if digits.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, rest))
}

/// The Go versions whose linker writes pclntab magic `magic` (read in the target byte order).
///
/// Useful when build info is missing but the pclntab survives
/// (<https://go.dev/src/debug/gosym/pclntab.go>).
pub fn pclntab_magic_versions(magic: u32) -> Option<&'static str> {
    match magic {
        0xffff_fffb => Some("go1.2–go1.15"),
        0xffff_fffa => Some("go1.16–go1.17"),
        0xffff_fff0 => Some("go1.18–go1.19"),
        0xffff_fff1 => Some("go1.20+"),
        _ => None,
    }
}

/// Every name [`pclntab_magic_versions`] gives (the magics are `0xffff_fff?`), for
/// deserialising [`GoFacts::pclntab`].
fn de_pclntab<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    super::de_static(
        d,
        (0xffff_fff0..=0xffff_ffffu32).filter_map(pclntab_magic_versions),
    )
}

// ---------------------------------------------------------------------------------------------
// Facts of a Go binary
// ---------------------------------------------------------------------------------------------

/// Where Go build info was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_pclntab"
    )]
    pub pclntab: Option<super::StaticName>,
    /// Packages linked, when the function-name table was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<GoUses>,
    /// Why build info is missing or partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_info_error: Option<String>,
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

/// Which Go packages a binary links, read from the pclntab function-name table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The function-name needle of each [`GoUses`] field, in field order, each anchored by the
/// NUL that ends the previous name in the pclntab's name table.
pub(crate) const FUNC_NEEDLES: [&[u8]; 8] = [
    b"\0crypto/tls.",
    b"\0crypto/x509.",
    b"\0time.LoadLocation\0",
    b"\0time/tzdata.",
    b"\0runtime.racefuncenter",
    b"\0runtime/cgo.",
    b"\0net.",
    b"\0os/user.",
];

impl GoUses {
    /// The fields in [`FUNC_NEEDLES`] order.
    fn fields(&mut self) -> [&mut bool; 8] {
        [
            &mut self.crypto_tls,
            &mut self.crypto_x509,
            &mut self.time_load_location,
            &mut self.time_tzdata,
            &mut self.race,
            &mut self.cgo,
            &mut self.net,
            &mut self.os_user,
        ]
    }

    /// Bit i set when needle i of [`FUNC_NEEDLES`] was seen.
    pub(crate) fn flags(mut self) -> u32 {
        self.fields()
            .iter()
            .enumerate()
            .map(|(i, b)| u32::from(**b) << i)
            .sum()
    }

    /// Records that needle `i` of [`FUNC_NEEDLES`] was seen (indexes past the table are
    /// ignored).
    pub(crate) fn set(&mut self, i: usize) {
        if let Some(b) = self.fields().into_iter().nth(i) {
            *b = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::bytes::uvarint_encode;
    use crate::testutil::XorShift;

    /// A full inline blob: header (flags 0x02, or 0x03 when `big`), strings, zero padding.
    fn inline_blob(version: &str, modinfo: &[u8], big: bool) -> Vec<u8> {
        let mut b = BUILDINFO_MAGIC.to_vec();
        b.push(8);
        b.push(if big { 0x03 } else { 0x02 });
        b.resize(HEADER_SIZE, 0);
        uvarint_encode(version.len() as u64, &mut b);
        b.extend_from_slice(version.as_bytes());
        uvarint_encode(modinfo.len() as u64, &mut b);
        b.extend_from_slice(modinfo);
        while b.len() % 16 != 0 {
            b.push(0);
        }
        b
    }

    fn framed(text: &str) -> Vec<u8> {
        let mut v = MODINFO_START.to_vec();
        v.extend_from_slice(text.as_bytes());
        v.extend_from_slice(&MODINFO_END);
        v
    }

    const SAMPLE: &str = "path\texample.com/app\n\
        mod\texample.com/app\t(devel)\t\n\
        dep\texample.com/lib\tv0.0.0-00010101000000-000000000000\n\
        =>\t../lib\t(devel)\t\n\
        \n\
        dep\tgolang.org/x/text\tv0.14.0\th1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=\n\
        dep\told.example/m\tv1.0.0\n\
        =>\tnew.example/m\tv1.1.0\th1:bbb=\n\
        \n\
        build\t-buildmode=exe\n\
        build\t-compiler=gc\n\
        build\t-ldflags=\"-s -w -X \\\"main.v=1 2\\\"\"\n\
        build\tCGO_ENABLED=1\n\
        build\tCGO_CFLAGS=\n\
        build\tGOARCH=amd64\n\
        build\tvcs.modified=false\n";

    struct NoMemory;
    impl Memory for NoMemory {
        fn read(&self, _: u64, _: u64) -> Option<&[u8]> {
            None
        }
    }

    #[test]
    fn go_uses_flags_follow_the_needles() {
        let mut u = GoUses::default();
        assert_eq!(u.flags(), 0);
        u.set(0);
        u.set(6);
        u.set(FUNC_NEEDLES.len());
        assert!(u.crypto_tls && u.net && !u.os_user);
        assert_eq!(u.flags(), 0b100_0001);
        for i in 0..FUNC_NEEDLES.len() {
            u.set(i);
        }
        assert_eq!(u.flags(), (1 << FUNC_NEEDLES.len()) - 1);
    }

    #[test]
    fn inline_len_reads_both_prefixes() {
        assert_eq!(inline_len(&[2, b'a', b'b', 1, b'x']), Some(5));
        assert_eq!(
            inline_len(&[2, b'a', b'b', 9]),
            Some(13),
            "strings need not be present"
        );
        assert_eq!(inline_len(&[2, b'a']), None);
        let overflow = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0,
        ];
        assert_eq!(
            inline_len(&overflow),
            None,
            "a 10th byte above 1 is no length"
        );
    }

    #[test]
    fn magic_must_be_aligned_by_virtual_address() {
        let mut region = vec![0u8; 128];
        region[8..22].copy_from_slice(BUILDINFO_MAGIC);
        // At offset 8: aligned only if the region starts at an address ≡ 8 (mod 16).
        assert_eq!(find_magic(&region, 0x1000), None);
        assert_eq!(find_magic(&region, 0x1008), Some(8));
        // A misaligned copy before an aligned one is skipped.
        region[32..46].copy_from_slice(BUILDINFO_MAGIC);
        assert_eq!(find_magic(&region, 0x1000), Some(32));
        // First aligned hit without room for a header: not found, like Go.
        let mut short = vec![0u8; 40];
        short[16..30].copy_from_slice(BUILDINFO_MAGIC);
        assert_eq!(find_magic(&short, 0), None);
        short.resize(48, 0);
        assert_eq!(find_magic(&short, 0), Some(16));
        assert_eq!(find_magic(&[], 0), None);
        assert_eq!(find_magic(&region, u64::MAX), None);
    }

    #[test]
    fn inline_blob_decodes() {
        let modinfo = framed(SAMPLE);
        for big in [false, true] {
            let blob = inline_blob("go1.21.0 X:boringcrypto", &modinfo, big);
            assert_eq!(parse_header(&blob), Ok(BlobHeader::Inline));
            let (v, m) = parse_inline(&blob[HEADER_SIZE..]).unwrap();
            assert_eq!(v, "go1.21.0 X:boringcrypto");
            assert_eq!(m, modinfo);
            let mut region = vec![0u8; 16];
            region.extend_from_slice(&blob);
            let bi = read_build_info(&region, 0x4000, &NoMemory).unwrap();
            assert_eq!(bi.go_version, "go1.21.0 X:boringcrypto");
            assert_eq!(bi.path.as_deref(), Some("example.com/app"));
            assert_eq!(bi.deps.len(), 3);
        }
    }

    #[test]
    fn inline_errors() {
        let blob = inline_blob("go1.22.1", &framed(SAMPLE), false);
        let body = &blob[HEADER_SIZE..];
        // Every truncation inside the two strings is detected.
        let needed = 1 + 8 + 2 + framed(SAMPLE).len();
        for cut in 0..needed {
            assert_eq!(
                parse_inline(&body[..cut]),
                Err(GoError::Truncated),
                "cut at {cut}"
            );
        }
        assert!(parse_inline(&body[..needed]).is_ok());
        // Empty version: not Go.
        assert_eq!(parse_inline(&[0, 0]), Err(GoError::NotGo));
        // Lengths above the bound are refused before any read.
        let mut huge = Vec::new();
        uvarint_encode(MAX_BUILDINFO + 1, &mut huge);
        assert_eq!(
            parse_inline(&huge),
            Err(GoError::TooLarge {
                limit: MAX_BUILDINFO
            })
        );
        let mut huge2 = vec![2, b'g', b'o'];
        uvarint_encode(u64::MAX, &mut huge2);
        assert_eq!(
            parse_inline(&huge2),
            Err(GoError::TooLarge {
                limit: MAX_BUILDINFO
            })
        );
        assert_eq!(parse_inline(&[0x80; 12]), Err(GoError::BadVarint));
        assert_eq!(parse_inline(&[1, 0xff, 0]), Err(GoError::InvalidUtf8));
    }

    #[test]
    fn header_errors() {
        let mut h = BUILDINFO_MAGIC.to_vec();
        h.extend_from_slice(&[8, 0]);
        assert_eq!(parse_header(&h), Err(GoError::Truncated));
        assert_eq!(parse_header(b"\x7fELF"), Err(GoError::NotGo));
        assert_eq!(parse_header(&BUILDINFO_MAGIC[..10]), Err(GoError::NotGo));
        h.resize(HEADER_SIZE, 0);
        h[14] = 5;
        assert_eq!(parse_header(&h), Err(GoError::NotGo), "pointer size 5");
        h[15] = 2;
        assert_eq!(
            parse_header(&h),
            Ok(BlobHeader::Inline),
            "inline ignores the pointer size"
        );
    }

    /// A flat memory image at `base`, for the pointer format.
    struct FlatMemory {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Memory for FlatMemory {
        fn read(&self, vaddr: u64, len: u64) -> Option<&[u8]> {
            let start = usize::try_from(vaddr.checked_sub(self.base)?).ok()?;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            self.bytes.get(start..end)
        }
    }

    fn put_uint(buf: &mut [u8], at: usize, v: u64, width: usize, big: bool) {
        for (i, &b) in v.to_le_bytes().iter().enumerate().take(width) {
            let pos = if big { at + width - 1 - i } else { at + i };
            buf[pos] = b;
        }
    }

    /// Header + memory image with two Go string headers and their data.
    fn pointer_image(
        width: usize,
        big: bool,
        version: &str,
        modinfo: &[u8],
    ) -> (Vec<u8>, FlatMemory) {
        let base = 0x40_0000u64;
        let mut mem = vec![0u8; 0x100 + version.len() + modinfo.len()];
        let (vhdr, mhdr, vdata, mdata) = (0x10, 0x40, 0x100, 0x100 + version.len());
        mem[vdata..vdata + version.len()].copy_from_slice(version.as_bytes());
        mem[mdata..mdata + modinfo.len()].copy_from_slice(modinfo);
        put_uint(&mut mem, vhdr, base + vdata as u64, width, big);
        put_uint(&mut mem, vhdr + width, version.len() as u64, width, big);
        put_uint(&mut mem, mhdr, base + mdata as u64, width, big);
        put_uint(&mut mem, mhdr + width, modinfo.len() as u64, width, big);
        let mut header = BUILDINFO_MAGIC.to_vec();
        header.push(width as u8);
        header.push(u8::from(big));
        header.resize(HEADER_SIZE, 0);
        put_uint(&mut header, 16, base + vhdr as u64, width, big);
        put_uint(&mut header, 16 + width, base + mhdr as u64, width, big);
        (header, FlatMemory { base, bytes: mem })
    }

    #[test]
    fn pointer_format_all_widths_and_orders() {
        let modinfo = framed(SAMPLE);
        for width in [4usize, 8] {
            for big in [false, true] {
                let (header, mem) = pointer_image(width, big, "go1.16.15", &modinfo);
                let h = parse_header(&header).unwrap();
                let BlobHeader::Pointer {
                    ptr_size,
                    big_endian,
                    version_addr,
                    modinfo_addr,
                } = h
                else {
                    panic!("expected pointer header");
                };
                assert_eq!((usize::from(ptr_size), big_endian), (width, big));
                assert_eq!((version_addr, modinfo_addr), (0x40_0010, 0x40_0040));
                let (v, m) = parse_pointer(&h, &mem).unwrap();
                assert_eq!(v, "go1.16.15");
                assert_eq!(m, modinfo);
                let bi = decode_modinfo(&v, &m).unwrap();
                assert_eq!(bi.setting("CGO_ENABLED"), Some("1"));
            }
        }
    }

    #[test]
    fn pointer_format_failed_reads() {
        let (header, mem) = pointer_image(8, false, "go1.17.13", &framed(SAMPLE));
        let h = parse_header(&header).unwrap();
        // Pre-1.18 PIE: pointers are zero in the file.
        let zero = BlobHeader::Pointer {
            ptr_size: 8,
            big_endian: false,
            version_addr: 0,
            modinfo_addr: 0,
        };
        assert_eq!(
            parse_pointer(&zero, &mem),
            Err(GoError::UnresolvedPointer { vaddr: 0 })
        );
        assert_eq!(
            parse_pointer(&h, &NoMemory),
            Err(GoError::UnresolvedPointer { vaddr: 0x40_0010 })
        );
        // Version readable, module info not: empty module info, as Go.
        let BlobHeader::Pointer { version_addr, .. } = h else {
            unreachable!()
        };
        let partial = BlobHeader::Pointer {
            ptr_size: 8,
            big_endian: false,
            version_addr,
            modinfo_addr: 1,
        };
        assert_eq!(
            parse_pointer(&partial, &mem),
            Ok(("go1.17.13".to_owned(), Vec::new()))
        );
        // String data cut short by the end of the image.
        let mut short = FlatMemory {
            base: mem.base,
            bytes: mem.bytes.clone(),
        };
        short.bytes.truncate(0x100 + 4);
        assert_eq!(
            parse_pointer(&h, &short),
            Err(GoError::UnresolvedPointer { vaddr: 0x40_0010 })
        );
        // A hostile length is refused without trying to read it.
        let mut hostile = FlatMemory {
            base: mem.base,
            bytes: mem.bytes.clone(),
        };
        put_uint(&mut hostile.bytes, 0x18, u64::MAX, 8, false);
        assert_eq!(
            parse_pointer(&h, &hostile),
            Err(GoError::TooLarge {
                limit: MAX_BUILDINFO
            })
        );
        // Empty version string: not Go.
        let (header, mem) = pointer_image(4, true, "", b"");
        let h = parse_header(&header).unwrap();
        assert_eq!(parse_pointer(&h, &mem), Err(GoError::NotGo));
        assert_eq!(
            parse_pointer(&BlobHeader::Inline, &mem),
            Err(GoError::NotGo)
        );
    }

    #[test]
    fn framing_rule() {
        assert_eq!(strip_framing(&framed("path\tx\n")), b"path\tx\n");
        // Go does not compare the sentinel bytes, only the newline position.
        let mut other = vec![b'A'; 16];
        other.extend_from_slice(b"x\n");
        other.extend_from_slice(&[b'B'; 16]);
        assert_eq!(strip_framing(&other), b"x\n");
        // No newline before the end sentinel, or too short: silently empty.
        assert_eq!(strip_framing(&framed("path\tx")), b"");
        assert_eq!(strip_framing(&framed("\n")[..32]), b"");
        assert_eq!(strip_framing(&framed("\n")), b"\n");
        assert_eq!(strip_framing(b""), b"");
        assert_eq!(
            decode_modinfo("go1.20", &framed("path\tx")).unwrap().path,
            None
        );
        assert_eq!(
            decode_modinfo("go1.20", &framed("path\t\u{e9}\n"))
                .unwrap()
                .path
                .as_deref(),
            Some("\u{e9}")
        );
        let mut bad = framed("path\tx\n");
        bad[17] = 0xff;
        assert_eq!(decode_modinfo("go1.20", &bad), Err(GoError::InvalidUtf8));
    }

    #[test]
    fn parses_sample_like_parse_build_info() {
        let bi = parse_modinfo("go1.19.8", SAMPLE).unwrap();
        assert_eq!(bi.go_version, "go1.19.8");
        assert_eq!(bi.path.as_deref(), Some("example.com/app"));
        let main = bi.main.as_ref().unwrap();
        assert_eq!(
            (main.path.as_str(), main.version.as_str(), main.sum.as_str()),
            ("example.com/app", "(devel)", "")
        );
        assert_eq!(bi.deps[0].sum, "", "2-column dep line");
        let r = bi.deps[0].replace.as_deref().unwrap();
        assert_eq!(
            (r.path.as_str(), r.version.as_str(), r.sum.as_str()),
            ("../lib", "(devel)", "")
        );
        assert_eq!(bi.deps[1].replace, None);
        assert_eq!(bi.deps[2].replace.as_ref().unwrap().sum, "h1:bbb=");
        assert_eq!(bi.setting("-ldflags"), Some("-s -w -X \"main.v=1 2\""));
        assert_eq!(bi.setting("CGO_CFLAGS"), Some(""));
        assert_eq!(bi.setting("missing"), None);
        assert_eq!(bi.settings.len(), 7);
        // Re-rendering gives back the canonical text.
        assert_eq!(bi.to_go_string(), format!("go\tgo1.19.8\n{SAMPLE}"));
    }

    #[test]
    fn renders_go_version_m() {
        let bi = parse_modinfo("go1.19.8", SAMPLE).unwrap();
        let out = bi.render_go_version_m("app1");
        let expected = "app1: go1.19.8\n\
            \tpath\texample.com/app\n\
            \tmod\texample.com/app\t(devel)\t\n\
            \tdep\texample.com/lib\tv0.0.0-00010101000000-000000000000\n\
            \t=>\t../lib\t(devel)\t\n\
            \t\n\
            \tdep\tgolang.org/x/text\tv0.14.0\th1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=\n\
            \tdep\told.example/m\tv1.0.0\n\
            \t=>\tnew.example/m\tv1.1.0\th1:bbb=\n\
            \t\n\
            \tbuild\t-buildmode=exe\n\
            \tbuild\t-compiler=gc\n\
            \tbuild\t-ldflags=\"-s -w -X \\\"main.v=1 2\\\"\"\n\
            \tbuild\tCGO_ENABLED=1\n\
            \tbuild\tCGO_CFLAGS=\n\
            \tbuild\tGOARCH=amd64\n\
            \tbuild\tvcs.modified=false\n";
        assert_eq!(out, expected);
        // No module info: only the first line.
        let empty = parse_modinfo("go1.20", "").unwrap();
        assert_eq!(empty.render_go_version_m("x"), "x: go1.20\n");
        assert_eq!(empty.to_go_string(), "go\tgo1.20\n");
    }

    #[test]
    fn tolerant_where_go_is() {
        // Unknown lines, `go` lines, blank lines and a final fragment without newline are ignored.
        let bi = parse_modinfo(
            "v",
            "go\tgo1.2\nfoo bar\n\nhello\tworld\npath\tp\nbuild\tGOOS=linux",
        )
        .unwrap();
        assert_eq!(bi.path.as_deref(), Some("p"));
        assert!(bi.settings.is_empty());
        // Trailing TAB on a 3-column line with an empty sum.
        let bi = parse_modinfo("v", "mod\tm\t(devel)\t\n").unwrap();
        assert_eq!(bi.main.unwrap().sum, "");
        // `=>` may come after unrelated lines; it still replaces the last mod/dep.
        let bi = parse_modinfo("v", "dep\ta\tv1\nbuild\tk=v\npath\tp\n=>\tb\tv2\th1:x\n").unwrap();
        assert_eq!(bi.deps[0].replace.as_ref().unwrap().path, "b");
        // Later path/mod lines win; an emptied path or zero main module is omitted.
        let bi = parse_modinfo("v", "path\ta\npath\t\nmod\tm\tv\tsum\nmod\t\t\n").unwrap();
        assert_eq!((bi.path, bi.main), (None, None));
        // `path` keeps TABs, which Go does not split.
        let bi = parse_modinfo("v", "path\ta\tb\n").unwrap();
        assert_eq!(bi.path.as_deref(), Some("a\tb"));
        // A replaced module may carry a sum column; Go keeps it but never renders it.
        let bi = parse_modinfo("v", "dep\ta\tv1\th1:a=\n=>\tb\tv2\th1:b=\n").unwrap();
        assert_eq!(bi.deps[0].sum, "h1:a=");
        assert_eq!(bi.to_go_string(), "go\tv\ndep\ta\tv1\n=>\tb\tv2\th1:b=\n\n");
        // Replacement of the main module.
        let bi = parse_modinfo("v", "mod\tm\tv1\n=>\t../m\t(devel)\t\n").unwrap();
        assert_eq!(bi.main.unwrap().replace.unwrap().path, "../m");
        // Lines with the keyword but no TAB are unknown lines, not errors.
        assert!(parse_modinfo("v", "mod\nbuild\n=>\ndep\n").is_ok());
        // Empty values, `=` inside values, quoted keys, backtick values, CRs dropped from raw strings.
        let bi = parse_modinfo("v", "build\tA=\nbuild\tB=x=y\nbuild\t\"k y\"=1\nbuild\tC=`a \\n\rb`\nbuild\tD=\"\\u00e9\\x41\\101\\U0001F600\"\n").unwrap();
        let got: Vec<_> = bi
            .settings
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("A", ""),
                ("B", "x=y"),
                ("k y", "1"),
                ("C", "a \\nb"),
                ("D", "\u{e9}AA\u{1F600}")
            ]
        );
    }

    #[test]
    fn errors_where_go_errors() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "=>\ta\tb\tc\n",
                1,
                "replacement with no module on previous line",
            ),
            (
                "dep\ta\tb\n=>\tc\td\te\n=>\tf\tg\th\n",
                3,
                "replacement with no module on previous line",
            ),
            (
                "path\tp\ndep\ta\tb\n=>\tc\td\n",
                3,
                "expected 3 columns for replacement",
            ),
            (
                "dep\ta\tb\n=>\tc\td\te\tf\n",
                2,
                "expected 3 columns for replacement",
            ),
            // The column check comes before the "no module" check, as in Go.
            ("=>\tc\n", 1, "expected 3 columns for replacement"),
            ("mod\tm\n", 1, "expected 2 or 3 columns"),
            ("x\ndep\ta\tb\tc\td\n", 2, "expected 2 or 3 columns"),
            ("build\t\n", 1, "build line missing '='"),
            ("build\t=x\n", 1, "build line with missing key"),
            ("build\tkey\n", 1, "build line missing '=' after key"),
            ("build\tk y=1\n", 1, "unquoted key must be quoted"),
            ("build\tk=a b\n", 1, "unquoted value must be quoted"),
            ("build\tk=a\"b\n", 1, "unquoted value must be quoted"),
            ("build\t\"k\n", 1, "invalid quoted key in build line"),
            (
                "build\t\"k\"\n",
                1,
                "build line missing '=' after quoted key",
            ),
            (
                "build\t\"k\"x=1\n",
                1,
                "unexpected character after quoted key",
            ),
            ("build\tk=\"a\"b\n", 1, "invalid quoted value in build line"),
            (
                "build\tk=\"\\q\"\n",
                1,
                "invalid quoted value in build line",
            ),
            ("build\tk=`abc\n", 1, "invalid quoted value in build line"),
        ];
        for &(text, line, reason) in cases {
            assert_eq!(
                parse_modinfo("v", text),
                Err(GoError::Modinfo { line, reason }),
                "{text:?}"
            );
        }
        // Go accepts bytes that are not UTF-8 here; imgaudit refuses them explicitly.
        assert_eq!(
            parse_modinfo("v", "build\tk=\"\\xff\"\n"),
            Err(GoError::InvalidUtf8)
        );
        assert_eq!(
            parse_modinfo("v", "build\t\"\\377\"=1\n"),
            Err(GoError::InvalidUtf8)
        );
        let msg = GoError::Modinfo {
            line: 3,
            reason: "expected 3 columns for replacement",
        }
        .to_string();
        assert_eq!(
            msg,
            "could not parse go build info: line 3: expected 3 columns for replacement"
        );
    }

    #[test]
    fn quoting_matches_strconv() {
        let cases: &[(&str, &str)] = &[
            ("", r#""""#),
            ("abc", r#""abc""#),
            ("-s -w -X \"main.v=1 2\"", r#""-s -w -X \"main.v=1 2\"""#),
            ("a\\b", r#""a\\b""#),
            ("\u{7}\u{8}\u{c}\n\r\t\u{b}", r#""\a\b\f\n\r\t\v""#),
            ("\u{0}\u{1b}\u{7f}", r#""\x00\x1b\x7f""#),
            ("`", r#""`""#),
            (
                "h\u{e9}llo w\u{f6}rld \u{a0}\u{a1}\u{ad}\u{ff}",
                "\"h\u{e9}llo w\u{f6}rld \\u00a0\u{a1}\\u00ad\u{ff}\"",
            ),
            ("\u{80}\u{9f}", r#""\u0080\u009f""#),
            (
                "\u{200b}\u{2028}\u{feff}\u{3000}",
                r#""\u200b\u2028\ufeff\u3000""#,
            ),
            (
                "\u{65e5}\u{672c}\u{8a9e} \u{1F600}",
                "\"\u{65e5}\u{672c}\u{8a9e} \u{1F600}\"",
            ),
            (
                "\u{e000}\u{10ffff}\u{e0001}",
                r#""\ue000\U0010ffff\U000e0001""#,
            ),
        ];
        for &(raw, quoted) in cases {
            assert_eq!(quote(raw), quoted, "{raw:?}");
            assert_eq!(unquote(quoted).as_deref(), Ok(raw), "{quoted:?}");
        }
        assert!(
            goquote::is_print(' ') && goquote::is_print('\u{e9}') && goquote::is_print('\u{1F600}')
        );
        assert!(
            !goquote::is_print('\u{85}')
                && !goquote::is_print('\u{ad}')
                && !goquote::is_print('\u{10ffff}')
        );
    }

    #[test]
    fn unquote_matches_strconv() {
        let ok: &[(&str, &str)] = &[
            ("``", ""),
            ("`a\"b\\n`", "a\"b\\n"),
            ("`a\nb`", "a\nb"),
            ("`\r\r`", ""),
            ("\"\\x41\\101\\u0041\\U00000041\"", "AAAA"),
            ("\"\\xc3\\xa9\"", "\u{e9}"),
            ("\"\\000\"", "\u{0}"),
        ];
        for &(q, want) in ok {
            assert_eq!(unquote(q).as_deref(), Ok(want), "{q:?}");
        }
        let bad = [
            "",
            "\"",
            "`",
            "'a'",
            "abc",
            "\"abc",
            "\"a\"b",
            "\"a\nb\"",
            "\"\\'\"",
            "\"\\x4\"",
            "\"\\xg0\"",
            "\"\\400\"",
            "\"\\8\"",
            "\"\\ud800\"",
            "\"\\U00110000\"",
            "\"\\\"",
            "`a`b",
            "\"\\",
            "\"\\u12\"",
        ];
        for q in bad {
            assert_eq!(unquote(q), Err(GoError::BadQuote), "{q:?}");
        }
        assert_eq!(unquote("\"\\xff\""), Err(GoError::InvalidUtf8));
        assert_eq!(goquote::quoted_prefix("\"a\\\"b\"=c"), Ok("\"a\\\"b\""));
        assert_eq!(goquote::quoted_prefix("`a\"b`=c"), Ok("`a\"b`"));
        assert_eq!(goquote::quoted_prefix("\"\\xff\"x"), Ok("\"\\xff\""));
        assert_eq!(goquote::quoted_prefix("\"abc"), Err(UnquoteError::Syntax));
    }

    #[test]
    fn quote_unquote_round_trip() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = [
            'a',
            ' ',
            '"',
            '\\',
            '`',
            '\n',
            '\t',
            '\r',
            '\u{0}',
            '\u{7f}',
            '\u{ad}',
            '\u{e9}',
            '\u{2028}',
            '\u{1F600}',
            '\u{e0001}',
            '=',
        ];
        for _ in 0..2000 {
            let len = rng.below(12);
            let s: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let q = quote(&s);
            assert_eq!(unquote(&q).as_deref(), Ok(s.as_str()), "{q}");
            assert_eq!(goquote::quoted_prefix(&q), Ok(q.as_str()));
        }
        // Every char class boundary of the print table behaves: quoted form always round-trips.
        for c in (0..0x11_0000u32).step_by(97).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(unquote(&quote(&s)).as_deref(), Ok(s.as_str()));
        }
    }

    #[test]
    fn render_parse_round_trip() {
        let mut bi = BuildInfo {
            go_version: "go1.22.5".into(),
            path: Some("example.com/cmd/x".into()),
            main: Some(Module {
                path: "example.com".into(),
                version: "v1.2.3+dirty".into(),
                ..Module::default()
            }),
            deps: vec![
                Module {
                    path: "a".into(),
                    version: "v1".into(),
                    sum: "h1:a=".into(),
                    replace: None,
                },
                Module {
                    path: "b".into(),
                    version: "v2".into(),
                    sum: String::new(),
                    replace: Some(Box::new(Module {
                        path: "c".into(),
                        version: "v3".into(),
                        sum: "h1:c=".into(),
                        replace: None,
                    })),
                },
            ],
            settings: Vec::new(),
        };
        for (k, v) in [
            ("-ldflags", "-s -w -X \"main.v=1 2\""),
            ("k=ey", "v"),
            ("", "empty key"),
            ("tab\tkey", "new\nline"),
            ("GOOS", ""),
            ("x", "a=b=c"),
            ("q`", "`"),
            ("\u{1}ctl", "\u{1}\u{7f}\u{85} \u{e9}"),
        ] {
            bi.settings.push(BuildSetting {
                key: k.into(),
                value: v.into(),
            });
        }
        let text = bi.to_go_string();
        assert_eq!(parse_modinfo("go1.22.5", &text).as_ref(), Ok(&bi), "{text}");
    }

    #[test]
    fn go_versions() {
        let v = GoVersion::parse;
        let gv = |major, minor, patch, pre: Option<&str>| {
            Some(GoVersion {
                major,
                minor,
                patch,
                pre: pre.map(str::to_owned),
            })
        };
        assert_eq!(v("go1.21.0"), gv(1, 21, 0, None));
        assert_eq!(v("go1.21.0 X:boringcrypto"), gv(1, 21, 0, None));
        assert_eq!(v("go1.20"), gv(1, 20, 0, None));
        assert_eq!(v("go1.20"), v("go1.20.0"));
        assert_eq!(v("go1.21rc2"), gv(1, 21, 0, Some("rc2")));
        assert_eq!(v("go1.18beta1"), gv(1, 18, 0, Some("beta1")));
        assert_eq!(v("go1.9.2rc2"), gv(1, 9, 2, Some("rc2")));
        assert_eq!(v("go1.22.5-bigcorp"), gv(1, 22, 5, None));
        assert_eq!(v("go1.20.10 (Red Hat 1.20.10-1.el9)"), gv(1, 20, 10, None));
        assert_eq!(v("go1"), gv(1, 0, 0, None));
        for bad in [
            "devel go1.23-abc123 Tue",
            "go",
            "1.21.0",
            "go1.",
            "go1.21.",
            "go1.21alpha1",
            "go1.21rc",
            "go1.21.0.1",
            "go1.2x",
            "go99999999999.1",
            "",
        ] {
            assert_eq!(v(bad), None, "{bad}");
        }
        let order = [
            "go1.9.2",
            "go1.20",
            "go1.21beta1",
            "go1.21rc1",
            "go1.21rc2",
            "go1.21.0",
            "go1.21.1",
            "go1.21.10",
            "go1.22rc1",
            "go2.0",
        ];
        let parsed: Vec<GoVersion> = order.iter().map(|s| v(s).unwrap()).collect();
        for w in parsed.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
        assert_eq!(v("go1.20").cmp(&v("go1.20.0")), Ordering::Equal);
        assert_eq!(pclntab_magic_versions(0xffff_fffb), Some("go1.2–go1.15"));
        assert_eq!(pclntab_magic_versions(0xffff_fffa), Some("go1.16–go1.17"));
        assert_eq!(pclntab_magic_versions(0xffff_fff0), Some("go1.18–go1.19"));
        assert_eq!(pclntab_magic_versions(0xffff_fff1), Some("go1.20+"));
        assert_eq!(pclntab_magic_versions(0xf0ff_ffff), None);
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let good_blob = inline_blob("go1.21.4", &framed(SAMPLE), false);
        let tokens = [
            "mod\t", "dep\t", "=>\t", "build\t", "path\t", "\t", "\n", "\n", "=", "\"", "`", "\\",
            "\\x", "\\u00", "\\U0010", "\\377", "a", "v1", "h1:x=", " ", "\r", "\u{e9}", "\\\"",
            "(devel)",
        ];
        let mut parsed = 0;
        for round in 0..4000 {
            // Random bytes, or a mutated/truncated real blob.
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..rng.below(80)).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = good_blob.clone();
                for _ in 0..rng.below(4) {
                    let i = rng.below(b.len());
                    b[i] = rng.next() as u8;
                }
                b.truncate(rng.below(b.len() + 1));
                b
            };
            let mut with_magic = BUILDINFO_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            for input in [&bytes, &with_magic] {
                let _ = find_magic(input, rng.next());
                let _ = parse_header(input);
                let _ = parse_inline(input);
                let _ = parse_inline(input.get(HEADER_SIZE..).unwrap_or_default());
                let _ = read_build_info(input, 0, &NoMemory);
                let _ = decode_modinfo("go1", input);
                if let Ok(h) = parse_header(input) {
                    let mem = FlatMemory {
                        base: rng.next() % 64,
                        bytes: input.clone(),
                    };
                    let _ = parse_pointer(&h, &mem);
                }
            }
            // Random module info texts built from meaningful tokens.
            let text: String = (0..rng.below(40))
                .map(|_| tokens[rng.below(tokens.len())])
                .collect();
            let _ = unquote(&text);
            let _ = goquote::quoted_prefix(&text);
            let _ = GoVersion::parse(&text);
            if let Ok(bi) = parse_modinfo("go1.21.0", &text) {
                parsed += 1;
                // Whatever parses re-renders to canonical text: parsing that and rendering
                // again is a fixpoint. (Not `== bi`: like Go, rendering drops the sum of a
                // replaced module.)
                let rendered = bi.to_go_string();
                let again = parse_modinfo("go1.21.0", &rendered).map(|b| b.to_go_string());
                assert_eq!(again.as_ref(), Ok(&rendered), "{text:?}");
                let _ = bi.render_go_version_m("f");
            }
        }
        assert!(
            parsed > 100,
            "the generator should produce parseable texts too ({parsed})"
        );
    }
}
