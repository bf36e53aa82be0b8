//! The per-file streaming scan: token formats in every text-like file outside the skipped
//! paths, and the format of credential files known by path.

use super::credfiles::{credential_file, parse_credential_file, CredentialFile};
use super::tokens::find_tokens_in;
use super::{mask, SecretHit, SecretKind};
use crate::limits::{Limits, MAX_SECRET_HITS_PER_FILE, SECRET_CONTEXT_BYTES, SECRET_SNIFF_BYTES};
use crate::path;

// What is not scanned.

/// Directory names whose content is not scanned: third-party test keys and documentation
/// (trivy's built-in allow rules `tests`, `vendor`, `examples`, `locale-dir`).
pub(super) const SKIPPED_DIRS: &[&str] = &[
    "testdata",
    "test",
    "tests",
    "__tests__",
    "vendor",
    "node_modules",
    "site-packages",
    "dist-packages",
    "locale",
    "locales",
    "examples",
    "example",
    "samples",
];

/// Path prefixes whose content is not scanned: distribution-owned trees and Go toolchains
/// (trivy's `usr-dirs`, `golang`, `python` allow rules). A Go module cache (`…/pkg/mod/`)
/// is skipped wherever it is.
pub(super) const SKIPPED_PREFIXES: &[&str] = &[
    "usr/share/",
    "usr/include/",
    "usr/lib/",
    "usr/local/go/",
    "usr/local/lib/python",
];

/// Whether the content of `p` is not scanned for secrets (see [`SKIPPED_DIRS`],
/// [`SKIPPED_PREFIXES`]; also `*_test.go` and Markdown files).
pub(super) fn scan_skipped(p: &str) -> bool {
    if SKIPPED_PREFIXES.iter().any(|s| p.starts_with(s))
        || p.contains("/pkg/mod/")
        || p.starts_with("pkg/mod/")
    {
        return true;
    }
    let dir = path::parent(p);
    if dir.split('/').any(|c| SKIPPED_DIRS.contains(&c)) {
        return true;
    }
    let name = path::file_name(p);
    name.ends_with("_test.go") || name.ends_with(".md")
}

// The scan.

/// Scans one regular file for secrets as its bytes stream past. Created only for text-like
/// files (no NUL byte in the first [`SECRET_SNIFF_BYTES`]) outside the skipped paths; reads
/// at most `limits.secret_scan_max_bytes` of the file. Matches across chunk seams are found:
/// the last [`SECRET_CONTEXT_BYTES`] of each chunk are carried over and verified with the
/// next chunk as right context.
pub(crate) struct FileScan {
    cred: Option<&'static CredentialFile>,
    cred_buf: Vec<u8>,
    cred_max: usize,
    /// Bytes still to scan.
    remaining: u64,
    /// Carried bytes (left context + unverified tail) followed by the current chunk.
    win: Vec<u8>,
    /// Position in `win` from which keyword starts are not yet verified.
    from: usize,
    /// Newlines before `win[from]`.
    lines: u32,
    hits: Vec<SecretHit>,
}

/// Bytes of left context kept before unverified data (the verifiers look one byte back).
const LEFT_CONTEXT: usize = 8;

impl FileScan {
    /// Starts a scan if the file is worth scanning. `head` is the file's first bytes.
    pub(crate) fn start(p: &str, size: u64, head: &[u8], limits: &Limits) -> Option<Self> {
        if limits.secret_scan_max_bytes == 0 || size < 10 || scan_skipped(p) {
            return None;
        }
        let sniff = &head[..head.len().min(SECRET_SNIFF_BYTES)];
        if memchr::memchr(0, sniff).is_some() {
            return None;
        }
        let cred = credential_file(p);
        Some(Self {
            cred,
            cred_buf: Vec::new(),
            cred_max: usize::try_from(limits.credential_file_max_bytes).unwrap_or(usize::MAX),
            remaining: size.min(limits.secret_scan_max_bytes),
            win: Vec::new(),
            from: 0,
            lines: 0,
            hits: Vec::new(),
        })
    }

    /// All bytes that will be scanned were fed.
    pub(crate) fn done(&self) -> bool {
        self.remaining == 0
    }

    /// Feeds the next bytes of the file.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let take = chunk
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if take == 0 {
            return;
        }
        let data = &chunk[..take];
        self.remaining -= take as u64;
        if self.cred.is_some() && self.cred_buf.len() < self.cred_max {
            let room = self.cred_max - self.cred_buf.len();
            self.cred_buf
                .extend_from_slice(&data[..data.len().min(room)]);
        }
        let eof = self.remaining == 0;
        if self.win.is_empty() && eof {
            // The common case: the whole file arrived in one chunk; scan it in place.
            self.scan(data, 0, data.len());
            return;
        }
        self.win.extend_from_slice(data);
        let win = std::mem::take(&mut self.win);
        let limit = if eof {
            win.len()
        } else {
            win.len()
                .saturating_sub(SECRET_CONTEXT_BYTES)
                .max(self.from)
        };
        self.scan(&win, self.from, limit);
        let keep_from = limit.saturating_sub(LEFT_CONTEXT);
        self.win = win;
        self.win.drain(..keep_from);
        self.from = limit - keep_from;
    }

    fn scan(&mut self, buf: &[u8], from: usize, limit: usize) {
        if self.hits.len() < MAX_SECRET_HITS_PER_FILE {
            let mut toks = Vec::new();
            find_tokens_in(buf, from, limit, &mut toks);
            let mut counted = from;
            for t in toks {
                if self.hits.len() >= MAX_SECRET_HITS_PER_FILE {
                    break;
                }
                self.lines += count_newlines(&buf[counted..t.at.max(counted)]);
                counted = t.at.max(counted);
                let value = &buf[t.start..t.end];
                let mut preview = t.preview.unwrap_or_else(|| mask(t.kind, value));
                if t.cut {
                    preview.push_str(" (cut)");
                }
                self.hits.push(SecretHit {
                    kind: t.kind,
                    line: self.lines + 1,
                    key: t.key.map(Into::into),
                    preview: preview.into(),
                });
            }
            self.lines += count_newlines(&buf[counted..limit.max(counted)]);
        } else {
            self.lines += count_newlines(&buf[from..limit]);
        }
    }

    /// Ends the scan: the hits (token formats and, for credential files, the parsed ones),
    /// sorted by line, and the credential-file kind the path matched.
    pub(crate) fn finish(mut self) -> (Vec<SecretHit>, Option<&'static str>) {
        if !self.win.is_empty() {
            let win = std::mem::take(&mut self.win);
            self.scan(&win, self.from, win.len());
        }
        if let Some(c) = self.cred {
            let mut parsed = Vec::new();
            parse_credential_file(&self.cred_buf, c.format, &mut parsed);
            // A format hit on the line of a token hit is the same secret seen twice: the token
            // hit keeps its (more specific) kind and gains the key.
            for h in parsed {
                let same = |o: &SecretHit| {
                    o.line == h.line
                        && (o.kind == h.kind
                            || matches!(h.kind, SecretKind::Token | SecretKind::Password))
                };
                if let Some(old) = self.hits.iter_mut().find(|o| same(o)) {
                    if old.key.is_none() {
                        old.key = h.key;
                    }
                } else if self.hits.len() < MAX_SECRET_HITS_PER_FILE {
                    self.hits.push(h);
                }
            }
        }
        self.hits.sort();
        self.hits.dedup();
        (self.hits, self.cred.map(|c| c.what))
    }
}

fn count_newlines(b: &[u8]) -> u32 {
    // memchr's counting iterator is vectorised: ~8 GB/s here, against ~1 GB/s for a plain
    // `filter().count()` on text with short lines.
    memchr::memchr_iter(b'\n', b).count() as u32
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{gh, scan_all};
    use super::*;

    #[test]
    fn matches_across_chunk_seams_are_found_once_with_lines() {
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!("line {i} filler filler filler\n"));
            if i % 50 == 7 {
                text.push_str(&format!("token={}\n", gh()));
            }
        }
        let want = scan_all("x.txt", text.as_bytes(), 1 << 20);
        assert_eq!(want.len(), 6);
        for chunk in [1usize, 7, 64, 100, 333, 1000, 4096] {
            assert_eq!(
                scan_all("x.txt", text.as_bytes(), chunk),
                want,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn names_alone_and_skipped_paths_do_not_count() {
        // dockle's noise: names of files or keys without a secret value.
        assert!(scan_all(
            "app/credentials.json",
            b"{\"type\": \"none\", \"password\": \"\"}\n",
            1 << 20
        )
        .is_empty());
        assert!(scan_all(
            "README.txt",
            b"Set password = your password here\n",
            1 << 20
        )
        .is_empty());
        let t = format!("token={}\n", gh());
        assert!(!scan_all("opt/app/conf.txt", t.as_bytes(), 1 << 20).is_empty());
        for p in [
            "usr/share/doc/x/README",
            "usr/local/go/src/crypto/tls/x.go",
            "root/go/pkg/mod/x@v1/k.txt",
            "src/app/testdata/key",
            "src/app/x_test.go",
            "vendor/x/y.txt",
        ] {
            assert!(scan_all(p, t.as_bytes(), 1 << 20).is_empty(), "{p}");
        }
        // Binary content is not scanned.
        let mut bin = t.clone().into_bytes();
        bin.insert(3, 0);
        assert!(scan_all("opt/app/data.bin", &bin, 1 << 20).is_empty());
    }

    #[test]
    fn bounds_hold() {
        // Only the first secret_scan_max_bytes are scanned.
        let mut text = "x".repeat(5000).into_bytes();
        text.push(b'\n');
        text.extend_from_slice(gh().as_bytes());
        let limits = Limits {
            secret_scan_max_bytes: 4096,
            ..Limits::default()
        };
        let mut s = FileScan::start("a.txt", text.len() as u64, &text, &limits).unwrap();
        s.feed(&text);
        assert!(s.done());
        assert!(s.finish().0.is_empty());
        let off = Limits {
            secret_scan_max_bytes: 0,
            ..Limits::default()
        };
        assert!(FileScan::start("a.txt", text.len() as u64, &text, &off).is_none());
        // At most MAX_SECRET_HITS_PER_FILE hits per file.
        let many = format!("{}\n", gh()).repeat(MAX_SECRET_HITS_PER_FILE + 10);
        assert_eq!(
            scan_all("dump.txt", many.as_bytes(), 1000).len(),
            MAX_SECRET_HITS_PER_FILE
        );
        // A credential file is parsed up to credential_file_max_bytes.
        let netrc = format!(
            "{}machine m login l password s3cr3t-Pa55w0rd\n",
            "# pad\n".repeat(20)
        );
        let limits = Limits {
            credential_file_max_bytes: 64,
            ..Limits::default()
        };
        let mut s =
            FileScan::start("root/.netrc", netrc.len() as u64, netrc.as_bytes(), &limits).unwrap();
        s.feed(netrc.as_bytes());
        assert!(s.finish().0.is_empty());
        // A NUL byte after the sniff window does not stop the scan.
        let mut late = vec![b'.'; SECRET_SNIFF_BYTES + 10];
        late.push(0);
        late.extend_from_slice(format!("\n{}\n", gh()).as_bytes());
        assert_eq!(scan_all("late.txt", &late, 1 << 20).len(), 1);
    }
}
