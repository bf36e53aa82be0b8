//! Credential files known by path: the [`CREDENTIAL_FILES`] table (adding one is a row
//! and a fixture) and the parser of each format. A file matched here is kept (up to
//! `limits.credential_file_max_bytes`) and parsed when it ends; values go through the same
//! placeholder and masking rules as everything in [`super`].

use super::tokens::{b64_decode, find_url_credentials, run_len};
use super::{
    is_placeholder, is_secret_name, is_secret_value, kind_for_name, mask, SecretHit, SecretKind,
};
use crate::path;

/// How a credential file is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `machine H login U password P` tokens (`.netrc`, apt `auth.conf`).
    Netrc,
    /// URLs with credentials (`.git-credentials`, `.gitconfig` `insteadOf`, `pip.conf`).
    Urls,
    /// docker/podman `config.json` / `auth.json`: `auths` entries.
    DockerConfig,
    /// `.npmrc`: `_authToken`, `_auth`, `_password`.
    Npmrc,
    /// Lines of `key = value` / `key: value` / `"key": "value"` with these keys (INI, YAML,
    /// TOML, pretty JSON).
    Keys(&'static [&'static str]),
    /// `NAME=value` lines whose name says secret.
    DotEnv,
    /// `host:port:db:user:password` lines.
    Pgpass,
    /// The whole file is one token.
    WholeToken,
}

/// How a credential file is recognised by its path.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PathMatch {
    /// File name equals.
    Name(&'static str),
    /// Path ends with these components.
    Suffix(&'static str),
    /// A `.json` file in a directory whose path ends with these components.
    JsonIn(&'static str),
    /// A file in a directory whose path ends with these components.
    In(&'static str),
    /// `.env`, `.env.local`, `.env.production` … but not templates (`.env.example`,
    /// `.env.sample`, `.env.template`, `.env.dist`, `.env.defaults`).
    DotEnv,
}

/// A credential file: what it is, how to recognise it, how to read it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CredentialFile {
    /// Human name.
    pub(crate) what: &'static str,
    pub(crate) path: PathMatch,
    pub(crate) format: Format,
}

/// Credential files by path (a table: adding one is a row and a fixture).
pub(crate) const CREDENTIAL_FILES: &[CredentialFile] = &[
    CredentialFile {
        what: "netrc",
        path: PathMatch::Name(".netrc"),
        format: Format::Netrc,
    },
    CredentialFile {
        what: "netrc",
        path: PathMatch::Name("_netrc"),
        format: Format::Netrc,
    },
    CredentialFile {
        what: "apt auth.conf",
        path: PathMatch::Suffix("etc/apt/auth.conf"),
        format: Format::Netrc,
    },
    CredentialFile {
        what: "apt auth.conf",
        path: PathMatch::In("etc/apt/auth.conf.d"),
        format: Format::Netrc,
    },
    CredentialFile {
        what: "git credential store",
        path: PathMatch::Name(".git-credentials"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "git credential store",
        path: PathMatch::Suffix(".config/git/credentials"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "git config",
        path: PathMatch::Name(".gitconfig"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "git config",
        path: PathMatch::Suffix(".config/git/config"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "git config",
        path: PathMatch::Suffix("etc/gitconfig"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "Go env file",
        path: PathMatch::Suffix(".config/go/env"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "pip config",
        path: PathMatch::Name("pip.conf"),
        format: Format::Urls,
    },
    CredentialFile {
        what: "docker config",
        path: PathMatch::Suffix(".docker/config.json"),
        format: Format::DockerConfig,
    },
    CredentialFile {
        what: "container registry auth file",
        path: PathMatch::Suffix("containers/auth.json"),
        format: Format::DockerConfig,
    },
    CredentialFile {
        what: "npm config",
        path: PathMatch::Name(".npmrc"),
        format: Format::Npmrc,
    },
    CredentialFile {
        what: "npm config",
        path: PathMatch::Suffix("etc/npmrc"),
        format: Format::Npmrc,
    },
    CredentialFile {
        what: "PyPI config",
        path: PathMatch::Name(".pypirc"),
        format: Format::Keys(&["password"]),
    },
    CredentialFile {
        what: "AWS credentials",
        path: PathMatch::Suffix(".aws/credentials"),
        format: Format::Keys(&["aws_secret_access_key", "aws_session_token"]),
    },
    CredentialFile {
        what: "AWS config",
        path: PathMatch::Suffix(".aws/config"),
        format: Format::Keys(&["aws_secret_access_key", "aws_session_token"]),
    },
    CredentialFile {
        what: "gcloud credentials",
        path: PathMatch::JsonIn(".config/gcloud"),
        format: Format::Keys(&["refresh_token", "private_key"]),
    },
    CredentialFile {
        what: "gcloud credentials",
        path: PathMatch::JsonIn(".config/gcloud/legacy_credentials"),
        format: Format::Keys(&["refresh_token", "private_key"]),
    },
    CredentialFile {
        what: "Azure CLI credentials",
        path: PathMatch::JsonIn(".azure"),
        format: Format::Keys(&[
            "accessToken",
            "refreshToken",
            "access_token",
            "refresh_token",
            "secret",
            "client_secret",
        ]),
    },
    CredentialFile {
        what: "kubeconfig",
        path: PathMatch::Suffix(".kube/config"),
        format: Format::Keys(&["token", "client-key-data", "password"]),
    },
    CredentialFile {
        what: "GitHub CLI hosts file",
        path: PathMatch::Suffix(".config/gh/hosts.yml"),
        format: Format::Keys(&["oauth_token"]),
    },
    CredentialFile {
        what: "Cargo credentials",
        path: PathMatch::Suffix(".cargo/credentials.toml"),
        format: Format::Keys(&["token"]),
    },
    CredentialFile {
        what: "Cargo credentials",
        path: PathMatch::Suffix(".cargo/credentials"),
        format: Format::Keys(&["token"]),
    },
    CredentialFile {
        what: "PostgreSQL password file",
        path: PathMatch::Name(".pgpass"),
        format: Format::Pgpass,
    },
    CredentialFile {
        what: "Vault token",
        path: PathMatch::Name(".vault-token"),
        format: Format::WholeToken,
    },
    CredentialFile {
        what: "dotenv file",
        path: PathMatch::DotEnv,
        format: Format::DotEnv,
    },
];

fn ends_with_components(p: &str, suffix: &str) -> bool {
    p == suffix || (p.ends_with(suffix) && p.as_bytes()[p.len() - suffix.len() - 1] == b'/')
}

/// The credential-file row a path matches.
pub(crate) fn credential_file(p: &str) -> Option<&'static CredentialFile> {
    let name = path::file_name(p);
    let dir = path::parent(p);
    CREDENTIAL_FILES.iter().find(|c| match c.path {
        PathMatch::Name(n) => name == n,
        PathMatch::Suffix(s) => ends_with_components(p, s),
        PathMatch::JsonIn(d) => name.ends_with(".json") && ends_with_components(dir, d),
        PathMatch::In(d) => ends_with_components(dir, d),
        PathMatch::DotEnv => {
            name == ".env"
                || name.strip_prefix(".env.").is_some_and(|rest| {
                    !rest.is_empty()
                        && ![
                            "example", "sample", "template", "tmpl", "dist", "defaults", "default",
                            "schema", "spec",
                        ]
                        .iter()
                        .any(|t| rest.contains(t))
                })
        }
    })
}

/// Parses a (bounded) credential file.
pub(crate) fn parse_credential_file(text: &[u8], format: Format, out: &mut Vec<SecretHit>) {
    let text = String::from_utf8_lossy(text);
    let line_of = |offset: usize| {
        1 + text.as_bytes()[..offset.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32
    };
    let mut push = |kind: SecretKind, offset: usize, key: Option<String>, value: &str| {
        out.push(SecretHit {
            kind,
            line: line_of(offset),
            key: key.map(Into::into),
            preview: mask(kind, value.as_bytes()).into(),
        });
    };
    match format {
        Format::Netrc => {
            let mut machine: Option<String> = None;
            let mut words = words_with_offsets(&text);
            while let Some((w, _)) = words.next() {
                match w {
                    "machine" => machine = words.next().map(|(h, _)| format!("machine {h}")),
                    "default" => machine = Some("default".into()),
                    "password" | "passwd" => {
                        if let Some((v, off)) = words.next() {
                            if !is_placeholder(v) {
                                push(SecretKind::Password, off, machine.clone(), v);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Format::Urls => {}
        Format::DockerConfig => docker_config(&text, &mut push),
        Format::Npmrc => {
            for (off, line) in lines_with_offsets(&text) {
                let l = line.trim();
                if l.starts_with('#') || l.starts_with(';') {
                    continue;
                }
                let Some((k, v)) = l.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                let field = k.rsplit(':').next().unwrap_or(k);
                let kind = match field {
                    "_authToken" => SecretKind::Token,
                    "_auth" | "_password" => SecretKind::Password,
                    _ => continue,
                };
                if !is_placeholder(v) {
                    push(
                        kind,
                        off + line.find(v).unwrap_or(0),
                        Some(k.to_string()),
                        v,
                    );
                }
            }
        }
        Format::Keys(keys) => {
            let mut section: Option<String> = None;
            for (off, line) in lines_with_offsets(&text) {
                let l = line.trim();
                if l.starts_with('[') && l.ends_with(']') && !l.contains('=') {
                    section = Some(l.to_string());
                    continue;
                }
                for (key, value, at) in key_values(line, keys) {
                    if is_placeholder(&value) || value.len() < 4 {
                        continue;
                    }
                    let kind = match key.to_ascii_lowercase().as_str() {
                        "password" => SecretKind::Password,
                        "aws_secret_access_key" => SecretKind::AwsSecretAccessKey,
                        "private_key" | "client-key-data" => SecretKind::PrivateKey,
                        _ => SecretKind::Token,
                    };
                    let key = match &section {
                        Some(s) => format!("{s} {key}"),
                        None => key,
                    };
                    push(kind, off + at, Some(key), &value);
                }
            }
        }
        Format::DotEnv => {
            for (off, line) in lines_with_offsets(&text) {
                let l = line.trim_start();
                let l = l.strip_prefix("export ").unwrap_or(l);
                if l.starts_with('#') {
                    continue;
                }
                let Some((name, value)) = l.split_once('=') else {
                    continue;
                };
                let name = name.trim();
                let value = strip_env_value(value);
                if is_secret_name(name) && is_secret_value(&value) {
                    push(
                        kind_for_name(name),
                        off + line.find('=').unwrap_or(0),
                        Some(name.to_string()),
                        &value,
                    );
                }
            }
        }
        Format::Pgpass => {
            for (off, line) in lines_with_offsets(&text) {
                if line.trim_start().starts_with('#') {
                    continue;
                }
                let fields = split_unescaped(line.trim_end_matches('\r'), ':');
                if fields.len() == 5 && !is_placeholder(&fields[4]) && fields[4] != "*" {
                    push(
                        SecretKind::Password,
                        off,
                        Some(format!("{}@{}", fields[3], fields[0])),
                        &fields[4],
                    );
                }
            }
        }
        Format::WholeToken => {
            let t = text.trim();
            if t.len() >= 8 && !t.contains(char::is_whitespace) && !is_placeholder(t) {
                push(SecretKind::Token, text.find(t).unwrap_or(0), None, t);
            }
        }
    }
    // Every credential file: URLs with credentials in it.
    for (off, line) in lines_with_offsets(&text) {
        let mut found = Vec::new();
        find_url_credentials(line, &mut found);
        for s in found {
            push(
                s.kind,
                off + line.find(s.raw()).unwrap_or(0),
                s.key.clone(),
                s.raw(),
            );
        }
    }
}

fn docker_config(text: &str, push: &mut impl FnMut(SecretKind, usize, Option<String>, &str)) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return;
    };
    for (registry, entry) in auths {
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
        };
        let offset = |val: &str| text.find(val).unwrap_or(0);
        if let Some(auth) = field("auth") {
            let pair = b64_decode(auth.as_bytes()).and_then(|d| String::from_utf8(d).ok());
            if let Some((user, pass)) = pair.as_deref().and_then(|p| p.split_once(':')) {
                if !user.is_empty() && !is_placeholder(pass) {
                    push(
                        SecretKind::RegistryAuth,
                        offset(auth),
                        Some(registry.clone()),
                        auth,
                    );
                }
            }
        }
        for k in ["identitytoken", "registrytoken", "password"] {
            if let Some(t) = field(k).filter(|t| !is_placeholder(t)) {
                push(
                    SecretKind::RegistryAuth,
                    offset(t),
                    Some(format!("{registry} ({k})")),
                    t,
                );
            }
        }
    }
}

fn strip_env_value(v: &str) -> String {
    let v = v.trim();
    if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
        if let Some(end) = v[1..].find(q) {
            return v[1..1 + end].to_string();
        }
    }
    // Unquoted: an inline comment starts at " #".
    v.split(" #").next().unwrap_or(v).trim().to_string()
}

fn split_unescaped(line: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut esc = false;
    for c in line.chars() {
        if esc {
            out.last_mut().expect("non-empty").push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(String::new());
        } else {
            out.last_mut().expect("non-empty").push(c);
        }
    }
    out
}

fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut off = 0;
    text.split('\n').map(move |l| {
        let o = off;
        off += l.len() + 1;
        (o, l)
    })
}

fn words_with_offsets(text: &str) -> impl Iterator<Item = (&str, usize)> {
    let base = text.as_ptr() as usize;
    text.split_ascii_whitespace()
        .map(move |w| (w, w.as_ptr() as usize - base))
}

/// `key = value`, `key: value`, `"key": "value"` occurrences of `keys` (ASCII
/// case-insensitive, whole words) in one line: (key as written, value, value offset).
fn key_values(line: &str, keys: &[&str]) -> Vec<(String, String, usize)> {
    let lb = line.as_bytes();
    let lower = line.to_ascii_lowercase();
    let mut out = Vec::new();
    for key in keys {
        let k = key.to_ascii_lowercase();
        let mut from = 0;
        while let Some(p) = lower[from..].find(&k) {
            let at = from + p;
            from = at + k.len();
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            if at > 0 && word(lb[at - 1]) || lb.get(at + k.len()).is_some_and(|&b| word(b)) {
                continue;
            }
            let mut i = at + k.len();
            i += run_len(lb, i, 4, |b| matches!(b, b'"' | b'\'' | b' ' | b'\t'));
            if !matches!(lb.get(i), Some(b':' | b'=')) {
                continue;
            }
            i += 1;
            i += run_len(lb, i, 8, |b| matches!(b, b' ' | b'\t'));
            let quoted = matches!(lb.get(i), Some(b'"' | b'\''));
            if quoted {
                i += 1;
            }
            let n = run_len(lb, i, 8192, |b| {
                if quoted {
                    !matches!(b, b'"' | b'\'')
                } else {
                    !matches!(b, b' ' | b'\t' | b',' | b'}' | b'#' | b'\r')
                }
            });
            out.push((
                line[at..at + k.len()].to_string(),
                line[i..i + n].to_string(),
                i,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{aws_id, aws_secret, scan_all};
    use super::*;

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
}
