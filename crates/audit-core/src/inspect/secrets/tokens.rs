//! Self-identifying token formats: an Aho-Corasick keyword prefilter, then verification of
//! each hit at its position; credentials in URLs; masking of what was found inside strings.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{is_placeholder, Secret, SecretKind};
use crate::limits::SECRET_CONTEXT_BYTES;

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
pub(super) struct Token {
    pub(super) kind: SecretKind,
    /// Where the keyword was found (line numbers are counted up to here).
    pub(super) at: usize,
    /// Value range (what gets masked).
    pub(super) start: usize,
    pub(super) end: usize,
    /// Preview override (PEM keys show their header, not a length).
    pub(super) preview: Option<String>,
    pub(super) key: Option<String>,
    /// The value was cut by the end of the buffer.
    pub(super) cut: bool,
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
pub(super) fn find_tokens_in(buf: &[u8], from: usize, limit: usize, out: &mut Vec<Token>) {
    if from >= limit {
        return;
    }
    for m in PREFILTER.find_iter(&buf[from..]) {
        let at = from + m.start();
        if at >= limit {
            break;
        }
        let kw = KEYWORDS[m.pattern().as_usize()].1;
        // A verifier sees at most SECRET_CONTEXT_BYTES from the match: the right context a
        // streamed file guarantees (secrets/scan.rs), so a file read whole or in pieces
        // gives the same hits.
        let context = &buf[..buf.len().min(at.saturating_add(SECRET_CONTEXT_BYTES))];
        if let Some(t) = verify(context, at, kw) {
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

/// `text` with every secret `find_in_text` recognises masked. Used for strings that are
/// shown verbatim (history `created_by`); build-command specifics (build arguments, secret
/// variables, `-u user:pass`) are masked by the history parser on top of this.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let found = find_in_text(text);
    mask_values(text, &found)
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{aws_id, aws_secret, gh, scan_all};
    use super::*;

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
}
