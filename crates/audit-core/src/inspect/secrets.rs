//! Credentials in file content, environment values and build commands.
//!
//! Two kinds of evidence, and a name alone is never enough (dockle's name-only check is the
//! anti-example: a file called `credentials.json` or a variable called `GPG_KEY` is not a
//! secret until it holds one):
//!
//! * **self-identifying token formats**, looked for in every text-like file and string:
//!   GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab (`glpat-`), AWS
//!   access key ids (`AKIA`/`ASIA` + 16) and secret keys (40 characters after an
//!   `aws_secret_access_key` label), PEM private keys (header followed by a key body), and
//!   docker `"auth"` entries that decode to `user:password`. An Aho-Corasick prefilter finds
//!   the keywords; each hit is then verified at its position;
//! * **credential files known by path** (`.netrc`, `.git-credentials`, `.docker/config.json`,
//!   `.npmrc`, `.pypirc`, cloud CLI credentials, kubeconfig, `.env` …, the table in
//!   [`super::credfiles`]) whose format is parsed, so that `password` in a netrc counts
//!   and the word "password" in a README does not.
//!
//! A value is ignored when it is empty, a placeholder (`changeme`, `${TOKEN}`, `<token>`,
//! `xxxx`, …) or contains `EXAMPLE` — AWS's documentation keys `AKIAIOSFODNN7EXAMPLE` and
//! `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`, which trivy skips for the same reason. Paths
//! where third-party test keys live (distribution docs, GOROOT, module caches, `testdata/`,
//! `vendor/`, `node_modules/` — the [`SKIPPED_DIRS`] table, modelled on trivy's allow rules)
//! are not scanned.
//!
//! Nothing here keeps a secret: file hits carry a masked preview such as `ghp_…(40 chars)`,
//! and [`redact`] masks secrets inside strings (build commands, env values) before they are
//! shown anywhere.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Serialize;

use super::credfiles::{credential_file, parse_credential_file, CredentialFile};
use crate::fs::path;
use crate::limits::{Limits, MAX_SECRET_HITS_PER_FILE, SECRET_CONTEXT_BYTES, SECRET_SNIFF_BYTES};

/// What kind of credential was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    /// GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// GitLab personal access token (`glpat-`).
    GitlabToken,
    /// AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKeyId,
    /// AWS secret access key.
    AwsSecretAccessKey,
    /// PEM private key (RSA, EC, DSA, OpenSSH, PKCS#8, PGP).
    PrivateKey,
    /// Container registry credentials (docker `auths`).
    RegistryAuth,
    /// `user:password@` in a URL.
    UrlCredentials,
    /// A password in a credential file or a password variable.
    Password,
    /// An API token or secret in a credential file or a secret variable.
    Token,
}

impl SecretKind {
    /// What it is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::GithubToken => "GitHub token",
            Self::GitlabToken => "GitLab token",
            Self::AwsAccessKeyId => "AWS access key id",
            Self::AwsSecretAccessKey => "AWS secret access key",
            Self::PrivateKey => "private key",
            Self::RegistryAuth => "registry credentials",
            Self::UrlCredentials => "credentials in a URL",
            Self::Password => "password",
            Self::Token => "secret",
        }
    }
}

/// One credential found in a file. Holds no secret: `preview` is masked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SecretHit {
    /// What kind.
    pub kind: SecretKind,
    /// 1-based line number.
    pub line: u32,
    /// The field, variable, host or registry that holds it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Box<str>>,
    /// Masked preview, e.g. `ghp_…(40 chars)`.
    pub preview: Box<str>,
}

impl SecretHit {
    /// `GitHub token ghp_…(40 chars) (line 3)`, `password for machine git.example.com
    /// …(18 chars) (line 3)`, `password in DB_PASSWORD …(15 chars) (line 2)`.
    pub fn describe(&self) -> String {
        let key = self
            .key
            .as_deref()
            .map(|k| format!(" {} {k}", connector(self.kind, k)))
            .unwrap_or_default();
        format!(
            "{}{key} {} (line {})",
            self.kind.describe(),
            self.preview,
            self.line
        )
    }
}

/// "for" a host, machine, registry or user; "in" a variable or field.
fn connector(kind: SecretKind, key: &str) -> &'static str {
    if matches!(kind, SecretKind::UrlCredentials | SecretKind::RegistryAuth)
        || key.starts_with("machine ")
        || key == "default"
        || key.contains('@')
    {
        "for"
    } else {
        "in"
    }
}

/// A secret found in a string (env value, build command). Crate-private: it holds the raw
/// value so that [`redact`] can mask every occurrence; only [`Secret::masked`] leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) kind: SecretKind,
    /// Variable, header or host that holds it.
    pub(crate) key: Option<String>,
    value: String,
}

impl Secret {
    pub(crate) fn new(kind: SecretKind, key: Option<String>, value: impl Into<String>) -> Self {
        Self {
            kind,
            key,
            value: value.into(),
        }
    }

    /// The raw value, for locating it in the text it came from. Never shown.
    pub(crate) fn raw(&self) -> &str {
        &self.value
    }

    /// The masked value.
    pub(crate) fn masked(&self) -> String {
        mask(self.kind, self.value.as_bytes())
    }

    /// `GitHub token in GITHUB_TOKEN (ghp_…(40 chars))`, `credentials in a URL for
    /// ci@git.example.com (…(12 chars))`.
    pub(crate) fn describe(&self) -> String {
        match &self.key {
            Some(k) => format!(
                "{} {} {k} ({})",
                self.kind.describe(),
                connector(self.kind, k),
                self.masked()
            ),
            None => format!("{} {}", self.kind.describe(), self.masked()),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Masking and value judgement.

/// Masks a secret value: a public, self-identifying prefix (`ghp_`, `github_pat_`, `glpat-`,
/// `AKIA`) is kept, the rest becomes its length: `ghp_…(40 chars)`, `…(12 chars)`.
pub fn mask(kind: SecretKind, value: &[u8]) -> String {
    let n = String::from_utf8_lossy(value).chars().count();
    let keep = match kind {
        SecretKind::GithubToken if value.starts_with(b"github_pat_") => 11,
        SecretKind::GithubToken => 4,
        SecretKind::GitlabToken => 6,
        SecretKind::AwsAccessKeyId => 4,
        _ => 0,
    };
    let keep = keep.min(value.len());
    format!("{}…({n} chars)", String::from_utf8_lossy(&value[..keep]))
}

/// Values that are not secrets although they sit where one would: empty, references to
/// variables (`$TOKEN`, `${TOKEN}`, `%TOKEN%`, `{{ .Token }}`), angle-bracket or `your-…`
/// placeholders, well-known dummy words, low-variety strings (`xxxx`, `****`, `0000`) and
/// anything containing `example` (AWS's documentation keys).
pub fn is_placeholder(value: &str) -> bool {
    let t = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if t.is_empty() {
        return true;
    }
    let lower = t.to_ascii_lowercase();
    // Variable references and printf-style formats (`%s`) stand for a value given elsewhere.
    if lower.contains("example")
        || lower.contains("${")
        || lower.contains("{{")
        || t.starts_with('$')
        || t.starts_with('%')
    {
        return true;
    }
    if (t.starts_with('<') && t.ends_with('>'))
        || (t.starts_with('%') && t.ends_with('%') && t.len() > 2)
        || (t.starts_with('[') && t.ends_with(']'))
    {
        return true;
    }
    const WORDS: &[&str] = &[
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "password",
        "passwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "api-key",
        "api_key",
        "placeholder",
        "redacted",
        "replaceme",
        "replace-me",
        "replace_me",
        "todo",
        "tbd",
        "none",
        "null",
        "nil",
        "undefined",
        "dummy",
        "fake",
        "test",
        "testing",
        "sample",
        "default",
        "foo",
        "bar",
        "foobar",
        "mysecret",
        "mypassword",
        "secretpassword",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "unset",
        "empty",
        "hidden",
        "masked",
    ];
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    for p in [
        "your-",
        "your_",
        "yourtoken",
        "yoursecret",
        "yourpassword",
        "insert-",
        "insert_",
        "enter-",
        "enter_",
        "put-your",
        "xxx",
    ] {
        if lower.starts_with(p) {
            return true;
        }
    }
    let mut seen = [false; 256];
    let mut distinct = 0;
    for b in t.bytes() {
        if !seen[b as usize] {
            seen[b as usize] = true;
            distinct += 1;
        }
    }
    distinct <= 2
}

/// Whether a variable name says it holds a secret: its last `_`-separated part is `TOKEN`,
/// `PASSWORD`, `PASSWD`, `PASS`, `PWD` (not alone: that is the working directory), `SECRET`,
/// `KEY`, `APIKEY`, `PASSPHRASE` or `CREDENTIALS` (`GITHUB_TOKEN`, `DB_PASSWORD`, `API_KEY`).
/// Names of public material or of pointers to secrets are not: anything with `PUBLIC`,
/// `PUBKEY`, `GPG` (the official images' `GPG_KEY` fingerprints), `FINGERPRINT`, or ending in
/// `_FILE`, `_PATH`, `_DIR`, `_ID`, `_URL`, `_NAME` (`*_KEY_FILE` holds a path).
pub fn is_secret_name(name: &str) -> bool {
    let u = name.trim().to_ascii_uppercase();
    if u.is_empty()
        || u.contains("PUBLIC")
        || u.contains("PUBKEY")
        || u.contains("GPG")
        || u.contains("FINGERPRINT")
    {
        return false;
    }
    let mut parts = u.rsplit(['_', '-', '.']);
    let last = parts.next().unwrap_or("");
    let has_prefix = parts.next().is_some();
    match last {
        "TOKEN" | "PASSWORD" | "PASSWD" | "PASS" | "SECRET" | "KEY" | "APIKEY" | "PASSPHRASE"
        | "CREDENTIALS" | "AUTHTOKEN" => true,
        "PWD" => has_prefix,
        _ => false,
    }
}

/// Whether `value`, held by a secret-named variable, is a secret and not a pointer to one:
/// not a placeholder, at least 4 characters, not a path (`/run/secrets/…`, `./…`, `~/…`,
/// `file://…`) and not a URL without credentials (those are judged by
/// [`find_url_credentials`]).
pub(crate) fn is_secret_value(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if is_placeholder(v) || v.chars().count() < 4 {
        return false;
    }
    if v.starts_with('/') || v.starts_with("./") || v.starts_with("~/") || v.starts_with("file:") {
        return false;
    }
    if let Some((scheme, _)) = v.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'.' || b == b'-')
        {
            return false;
        }
    }
    true
}

/// The kind a secret-named variable's value gets.
pub(crate) fn kind_for_name(name: &str) -> SecretKind {
    let u = name.to_ascii_uppercase();
    if u.contains("PASS") || u.ends_with("_PWD") {
        SecretKind::Password
    } else {
        SecretKind::Token
    }
}

// ------------------------------------------------------------------------------------------
// Self-identifying formats: keyword prefilter + verification.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Github,
    GithubPat,
    Gitlab,
    AwsId,
    AwsSecret,
    Pem,
    DockerAuth,
    DockerToken,
}

/// Keywords of the prefilter. Case-sensitive on purpose: an ASCII-case-insensitive automaton
/// loses the SIMD prefilter and runs at ~0.3 GB/s instead of ~4 GB/s (measured on 126 MB of
/// C headers and Perl), so the few case variants that occur are listed instead.
const KEYWORDS: &[(&str, Kw)] = &[
    ("ghp_", Kw::Github),
    ("gho_", Kw::Github),
    ("ghu_", Kw::Github),
    ("ghs_", Kw::Github),
    ("ghr_", Kw::Github),
    ("github_pat_", Kw::GithubPat),
    ("glpat-", Kw::Gitlab),
    ("AKIA", Kw::AwsId),
    ("ASIA", Kw::AwsId),
    ("secret_access_key", Kw::AwsSecret),
    ("SECRET_ACCESS_KEY", Kw::AwsSecret),
    ("Secret_Access_Key", Kw::AwsSecret),
    ("secretaccesskey", Kw::AwsSecret),
    ("SecretAccessKey", Kw::AwsSecret),
    ("secretAccessKey", Kw::AwsSecret),
    ("SECRETACCESSKEY", Kw::AwsSecret),
    ("-----BEGIN ", Kw::Pem),
    ("\"auth\"", Kw::DockerAuth),
    ("\"identitytoken\"", Kw::DockerToken),
];

static PREFILTER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(KEYWORDS.iter().map(|(k, _)| k.as_bytes()))
        .expect("static keywords")
});

/// A verified token: where its value is in the scanned buffer.
#[derive(Debug)]
struct Token {
    kind: SecretKind,
    /// Where the keyword was found (line numbers are counted up to here).
    at: usize,
    /// Value range (what gets masked).
    start: usize,
    end: usize,
    /// Preview override (PEM keys show their header, not a length).
    preview: Option<String>,
    key: Option<String>,
    /// The value was cut by the end of the buffer.
    cut: bool,
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

pub(crate) fn run_len(buf: &[u8], from: usize, max: usize, ok: impl Fn(u8) -> bool) -> usize {
    buf[from.min(buf.len())..]
        .iter()
        .take(max)
        .take_while(|&&b| ok(b))
        .count()
}

fn boundary_before(buf: &[u8], at: usize) -> bool {
    at == 0 || !is_alnum(buf[at - 1])
}

fn low_variety(v: &[u8]) -> bool {
    let mut seen = [false; 256];
    let mut n = 0;
    for &b in v {
        if !seen[b as usize] {
            seen[b as usize] = true;
            n += 1;
        }
    }
    n <= 3
}

fn ci_contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn is_b64(b: u8) -> bool {
    is_alnum(b) || b == b'+' || b == b'/' || b == b'='
}

/// Verifies the keyword `kw` found at `at` in `buf`.
fn verify(buf: &[u8], at: usize, kw: Kw) -> Option<Token> {
    let tok = |kind, start, end| Token {
        kind,
        at,
        start,
        end,
        preview: None,
        key: None,
        cut: end >= buf.len(),
    };
    match kw {
        Kw::Github => {
            let prefix = &buf[at..at + 4];
            if !matches!(prefix, b"ghp_" | b"gho_" | b"ghu_" | b"ghs_" | b"ghr_")
                || !boundary_before(buf, at)
            {
                return None;
            }
            let n = run_len(buf, at + 4, 255, is_alnum);
            let v = &buf[at + 4..at + 4 + n];
            (n >= 36 && !low_variety(v) && !ci_contains(v, b"example"))
                .then(|| tok(SecretKind::GithubToken, at, at + 4 + n))
        }
        Kw::GithubPat => {
            if &buf[at..at + 11] != b"github_pat_" || !boundary_before(buf, at) {
                return None;
            }
            let n = run_len(buf, at + 11, 255, |b| is_alnum(b) || b == b'_');
            let v = &buf[at + 11..at + 11 + n];
            (n >= 40 && !low_variety(v) && !ci_contains(v, b"example"))
                .then(|| tok(SecretKind::GithubToken, at, at + 11 + n))
        }
        Kw::Gitlab => {
            if &buf[at..at + 6] != b"glpat-" || !boundary_before(buf, at) {
                return None;
            }
            let mut n = run_len(buf, at + 6, 255, |b| {
                is_alnum(b) || b == b'_' || b == b'-' || b == b'.'
            });
            while n > 0 && matches!(buf[at + 6 + n - 1], b'.' | b'-') {
                n -= 1;
            }
            let v = &buf[at + 6..at + 6 + n];
            (n >= 20 && !low_variety(v) && !ci_contains(v, b"example"))
                .then(|| tok(SecretKind::GitlabToken, at, at + 6 + n))
        }
        Kw::AwsId => {
            if !matches!(&buf[at..at + 4], b"AKIA" | b"ASIA") || !boundary_before(buf, at) {
                return None;
            }
            let n = run_len(buf, at + 4, 17, |b| {
                b.is_ascii_uppercase() || b.is_ascii_digit()
            });
            let after = buf.get(at + 4 + n).copied();
            let v = &buf[at + 4..at + 4 + n];
            (n == 16
                && !after.is_some_and(is_alnum)
                && !low_variety(v)
                && !ci_contains(v, b"example"))
            .then(|| tok(SecretKind::AwsAccessKeyId, at, at + 20))
        }
        Kw::AwsSecret => {
            let klen = if buf[at..].len() >= 17
                && buf[at..at + 17].eq_ignore_ascii_case(b"secret_access_key")
            {
                17
            } else {
                15
            };
            let mut i = at + klen;
            i += run_len(buf, i, 4, |b| matches!(b, b'"' | b'\'' | b' ' | b'\t'));
            let sep = run_len(buf, i, 2, |b| matches!(b, b':' | b'=' | b'>'));
            if sep == 0 {
                return None;
            }
            i += sep;
            i += run_len(buf, i, 8, |b| matches!(b, b'"' | b'\'' | b' ' | b'\t'));
            let n = run_len(buf, i, 41, is_b64);
            let v = &buf[i..i + n];
            (n == 40 && !low_variety(v) && !ci_contains(v, b"example")).then(|| {
                let mut t = tok(SecretKind::AwsSecretAccessKey, i, i + 40);
                t.key = Some(
                    String::from_utf8_lossy(&buf[at.saturating_sub(4)..at + klen])
                        .trim_start_matches(|c: char| !c.is_ascii_alphabetic())
                        .to_string(),
                );
                t
            })
        }
        Kw::Pem => verify_pem(buf, at),
        Kw::DockerAuth | Kw::DockerToken => {
            let klen = if kw == Kw::DockerAuth { 6 } else { 15 };
            let mut i = at + klen;
            i += run_len(buf, i, 8, |b| b.is_ascii_whitespace());
            if buf.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            i += run_len(buf, i, 8, |b| b.is_ascii_whitespace());
            if buf.get(i) != Some(&b'"') {
                return None;
            }
            i += 1;
            let n = run_len(buf, i, SECRET_CONTEXT_BYTES, |b| b != b'"' && b != b'\n');
            let v = &buf[i..i + n];
            if kw == Kw::DockerAuth {
                let decoded = b64_decode(v)?;
                let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
                (!user.is_empty() && !is_placeholder(pass))
                    .then(|| tok(SecretKind::RegistryAuth, i, i + n))
            } else {
                (n >= 8 && !low_variety(v)).then(|| tok(SecretKind::RegistryAuth, i, i + n))
            }
        }
    }
}

/// PEM private key: `-----BEGIN [LABEL ]PRIVATE KEY[ BLOCK]-----` followed by a key body (at
/// least 40 base64 characters on a following line, after optional `Proc-Type:`/`DEK-Info:`
/// header lines), either on real lines or inside a string with `\n` escapes (JSON service
/// account files, env values). A header alone (documentation, code that parses keys) is not
/// a key.
fn verify_pem(buf: &[u8], at: usize) -> Option<Token> {
    if &buf[at..at + 11] != b"-----BEGIN " {
        return None;
    }
    let label_start = at + 11;
    let n = run_len(buf, label_start, 64, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    let label = std::str::from_utf8(&buf[label_start..label_start + n]).ok()?;
    let label = label.strip_suffix(" BLOCK").unwrap_or(label);
    if !label.ends_with("PRIVATE KEY")
        || buf.get(label_start + n..label_start + n + 5) != Some(b"-----")
    {
        return None;
    }
    let header_end = label_start + n + 5;
    let header = String::from_utf8_lossy(&buf[at..header_end]).into_owned();
    let mut i = header_end;
    let mut encrypted = label.contains("ENCRYPTED");
    // Up to 4 separator / header lines before the body.
    for _ in 0..6 {
        // Line separators: real newlines, `\r`, spaces, or the two characters `\` `n`.
        loop {
            match buf.get(i) {
                Some(b'\n' | b'\r' | b' ' | b'\t') => i += 1,
                Some(b'\\') if matches!(buf.get(i + 1), Some(b'n' | b'r')) => i += 2,
                _ => break,
            }
        }
        let body = run_len(buf, i, 80, is_b64);
        if body >= 40 {
            let end = i + run_len(buf, i, SECRET_CONTEXT_BYTES, |b| {
                is_b64(b) || matches!(b, b'\n' | b'\r' | b'\\')
            });
            let preview = if encrypted {
                format!("{header} (encrypted)")
            } else {
                header
            };
            return Some(Token {
                kind: SecretKind::PrivateKey,
                at,
                start: at,
                end,
                preview: Some(preview),
                key: None,
                cut: false,
            });
        }
        // A header line such as `Proc-Type: 4,ENCRYPTED` or `DEK-Info: …`: skip it.
        let line = run_len(buf, i, 256, |b| b != b'\n' && b != b'\\');
        let text = &buf[i..i + line];
        if line == 0 || !text.contains(&b':') {
            return None;
        }
        encrypted |= ci_contains(text, b"ENCRYPTED");
        i += line;
    }
    None
}

/// Minimal standard base64 decoder (with or without padding); `None` on bad input.
pub(crate) fn b64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() < 4 || s.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Runs the prefilter over `buf` and verifies keyword matches that start in `from..limit`.
fn find_tokens_in(buf: &[u8], from: usize, limit: usize, out: &mut Vec<Token>) {
    if from >= limit {
        return;
    }
    for m in PREFILTER.find_iter(&buf[from..]) {
        let at = from + m.start();
        if at >= limit {
            break;
        }
        let kw = KEYWORDS[m.pattern().as_usize()].1;
        if let Some(t) = verify(buf, at, kw) {
            out.push(t);
        }
    }
}

/// Strong-format secrets in a string (env values, build commands).
pub(crate) fn find_tokens(text: &str, out: &mut Vec<Secret>) {
    let mut toks = Vec::new();
    find_tokens_in(text.as_bytes(), 0, text.len(), &mut toks);
    for t in toks {
        let value = String::from_utf8_lossy(&text.as_bytes()[t.start..t.end]).into_owned();
        out.push(Secret {
            kind: t.kind,
            key: t.key,
            value,
        });
    }
}

/// `scheme://user:password@host` with a real password, and `scheme://TOKEN@host` where the
/// user part is a long random-looking token (`https://<40 hex>@github.com`). Placeholders
/// (`user:password@`, `${TOKEN}@`) are ignored.
pub(crate) fn find_url_credentials(text: &str, out: &mut Vec<Secret>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&b[from..], b"://") {
        let sep = from + p;
        from = sep + 3;
        let scheme_len = b[..sep]
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
            .count();
        if scheme_len == 0 {
            continue;
        }
        let auth_end = sep
            + 3
            + run_len(b, sep + 3, 2048, |c| {
                !matches!(
                    c,
                    b'/' | b'?'
                        | b'#'
                        | b' '
                        | b'\t'
                        | b'\n'
                        | b'"'
                        | b'\''
                        | b'`'
                        | b','
                        | b';'
                        | b'|'
                )
            });
        let authority = &text[sep + 3..auth_end];
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let userinfo = &authority[..at];
        let host = &authority[at + 1..];
        if host.is_empty() {
            continue;
        }
        match userinfo.split_once(':') {
            Some((user, pass)) => {
                if !is_placeholder(pass) && pass.len() >= 3 && !pass.starts_with('$') {
                    out.push(Secret {
                        kind: SecretKind::UrlCredentials,
                        key: Some(format!("{user}@{host}")),
                        value: pass.to_string(),
                    });
                }
            }
            None => {
                let u = userinfo;
                let tokenish = u.len() >= 20
                    && u.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                    && u.bytes().any(|c| c.is_ascii_digit())
                    && u.bytes().any(|c| c.is_ascii_alphabetic());
                if tokenish && !is_placeholder(u) {
                    out.push(Secret {
                        kind: SecretKind::UrlCredentials,
                        key: Some(format!("token@{host}")),
                        value: u.to_string(),
                    });
                }
            }
        }
    }
}

/// Every secret in a free-form string: token formats and URL credentials.
pub(crate) fn find_in_text(text: &str) -> Vec<Secret> {
    let mut out = Vec::new();
    find_tokens(text, &mut out);
    find_url_credentials(text, &mut out);
    dedup(&mut out);
    out
}

/// Drops secrets whose value was already found.
pub(crate) fn dedup(v: &mut Vec<Secret>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.value.clone()));
}

/// Replaces every occurrence of each secret's value in `text` by its mask.
pub(crate) fn mask_values<'t>(text: &'t str, secrets: &[Secret]) -> Cow<'t, str> {
    let mut vals: Vec<&Secret> = secrets.iter().filter(|s| s.value.len() >= 3).collect();
    if vals.is_empty() {
        return Cow::Borrowed(text);
    }
    vals.sort_by_key(|s| std::cmp::Reverse(s.value.len()));
    let mut s = text.to_string();
    for v in vals {
        if s.contains(&v.value) {
            s = s.replace(&v.value, &v.masked());
        }
    }
    Cow::Owned(s)
}

/// `text` with every secret [`find_in_text`] recognises masked. Used for strings that are
/// shown verbatim (history `created_by`); build-command specifics (build arguments, secret
/// variables, `-u user:pass`) are masked by the history parser on top of this.
pub fn redact(text: &str) -> Cow<'_, str> {
    let found = find_in_text(text);
    mask_values(text, &found)
}

// ------------------------------------------------------------------------------------------
// What is not scanned.

/// Directory names whose content is not scanned: third-party test keys and documentation
/// (trivy's built-in allow rules `tests`, `vendor`, `examples`, `locale-dir`).
pub const SKIPPED_DIRS: &[&str] = &[
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
pub const SKIPPED_PREFIXES: &[&str] = &[
    "usr/share/",
    "usr/include/",
    "usr/lib/",
    "usr/local/go/",
    "usr/local/lib/python",
];

/// Whether the content of `p` is not scanned for secrets (see [`SKIPPED_DIRS`],
/// [`SKIPPED_PREFIXES`]; also `*_test.go` and Markdown files).
pub fn scan_skipped(p: &str) -> bool {
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

// ------------------------------------------------------------------------------------------
// The per-file streaming scan.

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
    use super::*;

    // Test values are built at run time so that this file does not itself look like it
    // holds credentials to other scanners.
    fn gh() -> String {
        format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    }
    fn aws_id() -> String {
        format!("AKIA{}", "Q3EGRT5WXZ2YBN7K")
    }
    fn aws_secret() -> String {
        format!("{}/{}", "Zq8rT2vX9pL4mN6bC1dF3gH5", "sW0eR2tY4uI6oP8")
    }

    fn scan_all(p: &str, content: &[u8], chunk: usize) -> Vec<SecretHit> {
        let limits = Limits::default();
        let head = &content[..content.len().min(chunk)];
        let Some(mut s) = FileScan::start(p, content.len() as u64, head, &limits) else {
            return Vec::new();
        };
        for c in content.chunks(chunk) {
            s.feed(c);
        }
        s.finish().0
    }

    #[test]
    fn token_formats_are_verified_and_masked() {
        let text = format!(
            "a={}\nb=glpat-{}\nid: {}\nsecret_access_key = {}\nnot: ghp_short\nAKIAIOSFODNN7EXAMPLE\n",
            gh(),
            "Xy3zW8vU5tS2rQ9pO6nM",
            aws_id(),
            aws_secret()
        );
        let hits = scan_all("app/config.yaml", text.as_bytes(), 1 << 20);
        let kinds: Vec<(SecretKind, u32)> = hits.iter().map(|h| (h.kind, h.line)).collect();
        assert_eq!(
            kinds,
            vec![
                (SecretKind::GithubToken, 1),
                (SecretKind::GitlabToken, 2),
                (SecretKind::AwsAccessKeyId, 3),
                (SecretKind::AwsSecretAccessKey, 4)
            ]
        );
        assert_eq!(&*hits[0].preview, "ghp_…(40 chars)");
        assert_eq!(&*hits[2].preview, "AKIA…(20 chars)");
        for h in &hits {
            assert!(!text.contains(&*h.preview), "{h:?} leaks");
        }
        // The label's case variants (env files, aws sts JSON output).
        for label in ["AWS_SECRET_ACCESS_KEY=", "\"SecretAccessKey\": \""] {
            let t = format!("{label}{}\n", aws_secret());
            let h = scan_all("x.json", t.as_bytes(), 1 << 20);
            assert_eq!(
                h.iter().map(|h| h.kind).collect::<Vec<_>>(),
                vec![SecretKind::AwsSecretAccessKey],
                "{label}"
            );
        }
    }

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
    fn pem_needs_a_body() {
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0";
        let key =
            format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n");
        let hits = scan_all("root/.ssh/id_rsa", key.as_bytes(), 1 << 20);
        assert_eq!(hits.len(), 1);
        assert_eq!(&*hits[0].preview, "-----BEGIN RSA PRIVATE KEY-----");
        let json = format!("{{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\"}}");
        assert_eq!(scan_all("sa.json", json.as_bytes(), 1 << 20).len(), 1);
        let enc = format!("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,ABC\n\n{body}\n");
        assert!(scan_all("k.pem", enc.as_bytes(), 1 << 20)[0]
            .preview
            .ends_with("(encrypted)"));
        // Documentation or parsing code that only names the header.
        let doc = "if strings.HasPrefix(s, \"-----BEGIN RSA PRIVATE KEY-----\") {\n\treturn parse(s)\n}\n";
        assert!(scan_all("main.go", doc.as_bytes(), 1 << 20).is_empty());
        assert!(scan_all("cert.pem", b"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJRTESMBAGA1UE\n", 1 << 20)
            .is_empty());
    }

    #[test]
    fn credential_files_are_parsed() {
        let pw = "s3cr3t-Pa55w0rd";
        let netrc = format!("machine git.example.com\n  login ci\n  password {pw}\nmachine other login x password changeme\n");
        let h = scan_all("root/.netrc", netrc.as_bytes(), 1 << 20);
        assert_eq!(h.len(), 1);
        assert_eq!(
            (h[0].kind, h[0].line, h[0].key.as_deref()),
            (SecretKind::Password, 3, Some("machine git.example.com"))
        );

        let auth = "Y2ktYm90OnMzY3IzdC1QYTU1dzByZA=="; // ci-bot:s3cr3t-Pa55w0rd
        let docker = format!("{{\n\t\"auths\": {{\n\t\t\"registry.example.com\": {{\n\t\t\t\"auth\": \"{auth}\"\n\t\t}}\n\t}}\n}}\n");
        let h = scan_all("root/.docker/config.json", docker.as_bytes(), 1 << 20);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(
            (h[0].kind, h[0].line, h[0].key.as_deref()),
            (SecretKind::RegistryAuth, 4, Some("registry.example.com"))
        );
        // credsStore only: nothing.
        assert!(scan_all(
            "root/.docker/config.json",
            b"{\"auths\":{\"r.io\":{}},\"credsStore\":\"pass\"}",
            1 << 20
        )
        .is_empty());

        let npmrc = "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n//npm.example.com/:_authToken=npm_Xq9LrT2mV8bN4cK7dF1gH3jW5sZ0aE6yU2iO\n";
        let h = scan_all("home/u/.npmrc", npmrc.as_bytes(), 1 << 20);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].line, 2);

        let env = format!("# settings\nDEBUG=true\nDB_PASSWORD={pw}\nAPI_KEY=\nSIGNING_KEY_FILE=/run/secrets/key\nGPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D\nexport STRIPE_SECRET=\"{pw}\"\n");
        let h = scan_all("app/.env", env.as_bytes(), 1 << 20);
        let keys: Vec<_> = h.iter().map(|h| h.key.as_deref().unwrap()).collect();
        assert_eq!(keys, vec!["DB_PASSWORD", "STRIPE_SECRET"]);
        assert!(scan_all("app/.env.example", env.as_bytes(), 1 << 20).is_empty());

        let gitcred = format!("https://ci-bot:{pw}@git.example.com\nhttps://user:password@host\n");
        let h = scan_all("root/.git-credentials", gitcred.as_bytes(), 1 << 20);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].key.as_deref(), Some("ci-bot@git.example.com"));

        let aws = format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            aws_id(),
            aws_secret()
        );
        let h = scan_all("root/.aws/credentials", aws.as_bytes(), 1 << 20);
        assert_eq!(
            h.iter().map(|h| h.kind).collect::<Vec<_>>(),
            vec![SecretKind::AwsAccessKeyId, SecretKind::AwsSecretAccessKey]
        );

        let pgpass = format!("db.example.com:5432:app:app:{pw}\n*:*:*:*:*\n");
        assert_eq!(
            scan_all("root/.pgpass", pgpass.as_bytes(), 1 << 20).len(),
            1
        );
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
    fn placeholders_and_names() {
        for p in [
            "",
            "changeme",
            "${GITHUB_TOKEN}",
            "$TOKEN",
            "<token>",
            "xxxxxxxx",
            "********",
            "AKIAIOSFODNN7EXAMPLE",
            "your-token-here",
            "{{ .Values.token }}",
        ] {
            assert!(is_placeholder(p), "{p}");
        }
        for p in ["hunter22", "s3cr3t-Pa55w0rd"] {
            assert!(!is_placeholder(p), "{p}");
        }
        for n in [
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "SECRET",
            "db_pass",
            "NPM_AUTHTOKEN",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "GPG_KEY",
            "SIGNING_KEY_FILE",
            "AWS_ACCESS_KEY_ID",
            "PWD",
            "PUBLIC_KEY",
            "PATH",
            "KEYRING",
            "TOKEN_URL",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
        assert!(!is_secret_value("/run/secrets/token"));
        assert!(!is_secret_value("https://vault.example.com/v1/secret"));
        assert!(is_secret_value("hunter22"));
    }

    #[test]
    fn url_credentials_and_redaction() {
        let cmd = format!("GOPROXY=https://ci-bot:{}@proxy.example.com,direct go build && git clone https://user:password@x/y", "tok3n-Value-99");
        let found = find_in_text(&cmd);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key.as_deref(), Some("ci-bot@proxy.example.com"));
        let r = redact(&cmd);
        assert!(
            r.contains("https://ci-bot:…(14 chars)@proxy.example.com"),
            "{r}"
        );
        assert!(!r.contains("tok3n"));
        let s = format!("echo {} > /tmp/t", gh());
        assert_eq!(redact(&s), "echo ghp_…(40 chars) > /tmp/t");
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
