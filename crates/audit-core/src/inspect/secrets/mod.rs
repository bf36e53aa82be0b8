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
//!   `credfiles`) whose format is parsed, so that `password` in a netrc counts
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

mod credfiles;
mod scan;
mod tokens;

use serde::{Deserialize, Serialize};

pub(crate) use scan::FileScan;
pub(crate) use tokens::redact;
pub(crate) use tokens::{dedup, find_in_text, mask_values};

/// The kinds of credential file known by path (what [`crate::inspect::FileFacts::credential_file`]
/// can hold).
pub(crate) fn credential_file_kinds() -> impl Iterator<Item = &'static str> {
    credfiles::CREDENTIAL_FILES.iter().map(|c| c.what)
}

/// What kind of credential was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
pub(crate) fn mask(kind: SecretKind, value: &[u8]) -> String {
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
pub(crate) fn is_placeholder(value: &str) -> bool {
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
pub(crate) fn is_secret_name(name: &str) -> bool {
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

#[cfg(test)]
pub(super) mod test_values {
    //! Values and a whole-file scan shared by the tests of the submodules. Test values are
    //! built at run time so that this file does not itself look like it holds credentials to
    //! other scanners.

    use super::{FileScan, SecretHit};
    use crate::limits::Limits;

    pub(crate) fn gh() -> String {
        format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    }
    pub(crate) fn aws_id() -> String {
        format!("AKIA{}", "Q3EGRT5WXZ2YBN7K")
    }
    pub(crate) fn aws_secret() -> String {
        format!("{}/{}", "Zq8rT2vX9pL4mN6bC1dF3gH5", "sW0eR2tY4uI6oP8")
    }

    pub(crate) fn scan_all(p: &str, content: &[u8], chunk: usize) -> Vec<SecretHit> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
