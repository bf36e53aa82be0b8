//! Per-file inspection, run on each regular file as it streams out of a layer.
//!
//! The first bytes decide what a file is: ELF files go to the streaming [`elf`] inspector,
//! `#!` scripts have their interpreter line kept, and the files whose content rules and the
//! loader check read (`/etc/passwd`, `ld.so.conf`, `os-release`, dpkg status, the Go build
//! cache README …, the [`reads::ContentPlan`] their declarations make) have their content
//! kept, up to a bound. Text-like files stream through the bounded `secrets` scanner, which
//! keeps only masked hits. Everything else is skipped without buffering. The result depends
//! only on the file's own bytes and path (and the plan and limits, which are fixed for an
//! auditor), so a layer's analysis can be cached by layer digest.

pub mod elf;
pub mod go;
pub mod reads;
pub(crate) mod secrets;

mod bytes;
mod goquote;
#[cfg(test)]
mod mutation_tests;

use std::io::{self, Read};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use self::reads::ContentPlan;
use crate::limits::{Limits, MAX_SHEBANG_BYTES, SECRET_SNIFF_BYTES};

pub use elf::{ElfInfo, Linkage};
pub use go::{BuildInfo, GoFacts};
pub use secrets::{SecretHit, SecretKind};

/// What was learnt from one regular file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    /// ELF facts, for ELF files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elf: Option<ElfInfo>,
    /// Why an ELF file could not be inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elf_error: Option<String>,
    /// The `#!` line of a script, without `#!`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shebang: Option<String>,
    /// Kept content, for files rules read.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_bytes",
        deserialize_with = "de_bytes"
    )]
    pub content: Option<Box<[u8]>>,
    /// The content was cut at the capture bound.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub content_truncated: bool,
    /// Credentials found in the content (masked previews only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretHit>,
    /// The credential-file kind the path matched (`netrc`, `docker config` …), if any.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_credential_file"
    )]
    pub credential_file: Option<StaticName>,
}

/// A name the inspector picks from a fixed list. Spelt through this alias so that serde's
/// derive does not take the `&str` for data borrowed from the input: deserialising maps
/// the text back to the listed name (`de_static`).
pub type StaticName = &'static str;

/// Kept content as a byte string (CBOR major type 2), not a list of numbers.
fn ser_bytes<S: Serializer>(v: &Option<Box<[u8]>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_bytes(b),
        None => s.serialize_none(),
    }
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<[u8]>>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Box<[u8]>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            Ok(Some(v.into()))
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            Ok(Some(v.into_boxed_slice()))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_byte_buf(V)
}

/// A name deserialised back into the `&'static str` the inspector would have produced: one of
/// `known`, else an error (a stored analysis naming something this build does not know is
/// not used).
pub(crate) fn de_static<'de, D: Deserializer<'de>>(
    d: D,
    known: impl Iterator<Item = &'static str>,
) -> Result<Option<&'static str>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let mut known = known;
    known
        .find(|k| *k == s)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown name {s:?}")))
}

fn de_credential_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    de_static(d, secrets::credential_file_kinds())
}

/// Bytes of a file's start that decide how it is inspected: enough for the credential
/// scan's binary sniff ([`SECRET_SNIFF_BYTES`]) and a whole `#!` line.
const HEAD_BYTES: usize = if SECRET_SNIFF_BYTES > MAX_SHEBANG_BYTES + 2 {
    SECRET_SNIFF_BYTES
} else {
    MAX_SHEBANG_BYTES + 2
};

/// Inspects one file's bytes as the layer pipeline does, reading through a buffer of
/// `chunk` bytes (the pipeline uses 256 KiB; any size gives the same facts). `path` is the
/// root-relative path the file has in the image; `reads` says which files' content is kept
/// (the auditor's is [`crate::audit::content_plan`]).
pub fn inspect_reader(
    path: &str,
    size: u64,
    reader: &mut dyn Read,
    limits: &Limits,
    reads: &ContentPlan,
    chunk: usize,
) -> io::Result<Option<FileFacts>> {
    let mut buf = vec![0; chunk.max(64)];
    inspect_file(path, size, reader, &mut buf, limits, reads)
}

/// Inspects one regular file. `reader` yields exactly the file's `size` bytes; `buf` is a
/// reusable scratch buffer. Returns `None` when nothing about the file is worth keeping.
pub(crate) fn inspect_file(
    p: &str,
    size: u64,
    reader: &mut dyn Read,
    buf: &mut [u8],
    limits: &Limits,
    reads: &ContentPlan,
) -> io::Result<Option<FileFacts>> {
    if size == 0 {
        return Ok(None);
    }
    // The decisions made on the first bytes (ELF or not, the `#!` line, the binary sniff of
    // the credential scan) see at least HEAD_BYTES of them, whatever the buffer size.
    let mut small;
    let head: &[u8] = if buf.len() >= HEAD_BYTES {
        let n = read_full(reader, buf)?;
        &buf[..n]
    } else {
        small = vec![0; HEAD_BYTES];
        let n = read_full(reader, &mut small)?;
        &small[..n]
    };
    if head.len() >= 4 && head[..4] == *b"\x7fELF" {
        let mut facts = FileFacts::default();
        match elf::ElfScanner::new(size, limits) {
            Ok(mut scanner) => {
                scanner.feed(head);
                // Plain reads (not `read_full`): a large read into an empty BufReader goes
                // straight to the decoder, without a copy through the BufReader's buffer.
                loop {
                    let n = match reader.read(buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    if n == 0 {
                        break;
                    }
                    scanner.feed(&buf[..n]);
                }
                match scanner.finish() {
                    Ok(info) => facts.elf = Some(info),
                    Err(e) => facts.elf_error = Some(e.0),
                }
            }
            Err(e) => facts.elf_error = Some(e.0),
        }
        return Ok(Some(facts));
    }
    let mut facts = FileFacts::default();
    let mut keep = false;
    if head.starts_with(b"#!") {
        let line = &head[2..head.len().min(MAX_SHEBANG_BYTES)];
        let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
        facts.shebang = Some(String::from_utf8_lossy(line).trim().to_string());
        keep = true;
    }
    let bound = reads.bound(p, limits);
    let mut scan = secrets::FileScan::start(p, size, head, limits);
    if bound.is_none() && scan.is_none() {
        return Ok(keep.then_some(facts));
    }
    let mut content = bound.map(|b| head[..(head.len() as u64).min(b) as usize].to_vec());
    if let Some(s) = &mut scan {
        s.feed(head);
    }
    loop {
        let want_content = matches!((&content, bound), (Some(c), Some(b)) if (c.len() as u64) < b);
        if !want_content && scan.as_ref().is_none_or(secrets::FileScan::done) {
            // The tar reader skips what is left of the entry.
            break;
        }
        let n = read_full(reader, buf)?;
        if n == 0 {
            break;
        }
        if let (Some(c), Some(b)) = (&mut content, bound) {
            let room = b.saturating_sub(c.len() as u64) as usize;
            c.extend_from_slice(&buf[..n.min(room)]);
        }
        if let Some(s) = &mut scan {
            s.feed(&buf[..n]);
        }
    }
    if let Some(c) = content {
        facts.content_truncated = bound.is_some_and(|b| size > b);
        facts.content = Some(c.into_boxed_slice());
        keep = true;
    }
    if let Some(s) = scan {
        let (hits, what) = s.finish();
        if !hits.is_empty() {
            facts.secrets = hits;
            facts.credential_file = what;
            keep = true;
        }
    }
    Ok(keep.then_some(facts))
}

/// Reads until `buf` is full or the reader is exhausted.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
