//! Registry image references with the Docker grammar (`distribution/reference`,
//! `normalize.go` and `regexp.go`): `[domain/]path[:tag][@digest]`.
//!
//! Normalisation: a first component is a registry domain only if it contains `.` or `:`, is
//! `localhost`, or has an uppercase letter; otherwise the reference names Docker Hub
//! (`docker.io`), where a one-component path gets `library/`. `index.docker.io` is spelled
//! `docker.io`. Hub's API host is `registry-1.docker.io`. With both a tag and a digest, the
//! digest is what is pulled.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::SourceError;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's registry API host (`moby/moby` `registry/config.go` `DefaultRegistryHost`).
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Longest repository name with its domain: 255 bytes (`distribution/reference`
/// `NameTotalLengthMax`). Longer references are rejected.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest tag: 128 characters (`[\w][\w.-]{0,127}`).
pub const MAX_TAG_BYTES: usize = 128;

/// A parsed, normalised registry image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// Parses a reference with the Docker grammar.
    pub fn parse(s: &str) -> Result<Self, SourceError> {
        let bad = |reason: &str| SourceError::BadReference {
            reference: s
                .chars()
                .take(crate::limits::MAX_QUOTED_REFERENCE_CHARS)
                .collect(),
            reason: reason.into(),
        };
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| bad(e.reason))?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(
                    "invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
                ));
            }
        }
        if name.is_empty() {
            return Err(bad("empty repository name"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first, rest)
            }
            _ => (DOCKER_HUB, name),
        };
        if !valid_domain(domain) {
            return Err(bad("invalid registry host"));
        }
        let registry = if domain == "index.docker.io" {
            DOCKER_HUB
        } else {
            domain
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "invalid repository name (lowercase letters, digits and separators . _ __ - only)",
            ));
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_BYTES {
            return Err(bad("repository name longer than 255 bytes"));
        }
        if tag.is_none()
            && digest.is_none()
            && registry == DOCKER_HUB
            && path.len() == 64
            && path.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad("a 64-hex-digit name is an image id, not a reference"));
        }
        Ok(Self {
            registry: registry.to_string(),
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry as written in the reference, normalised (`docker.io`, `ghcr.io`,
    /// `host:5000`). Credentials are keyed by it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) the registry API is served on: `registry-1.docker.io` for Docker
    /// Hub, the registry itself otherwise.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path (`library/alpine`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was written.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest (`docker.io/library/alpine`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when there is one (it wins over a tag), else
    /// the tag, else `latest`.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl FromStr for ImageReference {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        if self.tag.is_none() && self.digest.is_none() {
            f.write_str(":latest")?;
        }
        Ok(())
    }
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_BYTES
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `host[:port]` with DNS labels, an IPv4 address, or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return false;
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(p) => {
                    return !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
                }
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {

    /// A malformed reference is quoted back in its error up to `MAX_QUOTED_REFERENCE_CHARS`
    /// characters (not bytes: the cut never splits a character).
    #[test]
    fn a_malformed_reference_is_quoted_up_to_the_bound() {
        use crate::limits::MAX_QUOTED_REFERENCE_CHARS as MAX;
        let quoted = |s: &str| match ImageReference::parse(s) {
            Err(SourceError::BadReference { reference, .. }) => reference,
            other => panic!("{s}: {other:?}"),
        };
        let below = "Ä".repeat(MAX - 1);
        assert_eq!(quoted(&below), below);
        let at = "Ä".repeat(MAX);
        assert_eq!(quoted(&at), at);
        assert_eq!(quoted(&format!("{at}Ä:latest")), at);
    }
    use super::*;

    fn p(s: &str) -> ImageReference {
        ImageReference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_normalisation() {
        let r = p("alpine");
        assert_eq!(
            (
                r.registry(),
                r.api_host(),
                r.repository(),
                r.tag(),
                r.target().as_str()
            ),
            (
                "docker.io",
                "registry-1.docker.io",
                "library/alpine",
                None,
                "latest"
            )
        );
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        let r = p("library/alpine:3.20");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/alpine", Some("3.20"))
        );
        let r = p("docker.io/alpine:3.20");
        assert_eq!(r.repository(), "library/alpine");
        let r = p("index.docker.io/bitnami/redis");
        assert_eq!(
            (r.registry(), r.repository()),
            ("docker.io", "bitnami/redis")
        );
        // `test.com:5000` has no slash: a Hub repository `test.com` with tag 5000.
        let r = p("test.com:5000");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/test.com", Some("5000"))
        );
    }

    #[test]
    fn other_registries() {
        let r = p("ghcr.io/org/app:tag");
        assert_eq!(
            (r.registry(), r.api_host(), r.repository(), r.tag()),
            ("ghcr.io", "ghcr.io", "org/app", Some("tag"))
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = p(&format!("host:5000/ns/app@{d}"));
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("host:5000", "ns/app", None)
        );
        assert_eq!(r.target(), d);
        let r = p(&format!("127.0.0.1:5000/ns/app:v1@{d}"));
        assert_eq!(
            (r.registry(), r.tag(), r.target()),
            ("127.0.0.1:5000", Some("v1"), d.clone())
        );
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/ns/app:v1@{d}"));
        assert_eq!(p("localhost/app").registry(), "localhost");
        assert_eq!(p("Registry/app").registry(), "Registry");
        assert_eq!(p("[::1]:5000/app").registry(), "[::1]:5000");
        assert_eq!(
            p("a.b/c__d/e-f--g/h.i_j:t").repository(),
            "c__d/e-f--g/h.i_j"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "UPPER",
            "Registry",
            "app:",
            "app:-tag",
            "ghcr.io/org/App",
            "ghcr.io/org//app",
            "ghcr.io/org/app-",
            "ghcr.io/a___b",
            "app@sha256:1234",
            "app@md5:0123",
            "/abs/path",
            "./rel",
            "host:port/app",
            "host:123456/app",
            &"a".repeat(64).replace('a', "ab")[..64],
        ] {
            assert!(
                ImageReference::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let long = format!("ghcr.io/{}", "a".repeat(MAX_NAME_BYTES));
        assert!(ImageReference::parse(&long).is_err(), "name bound");
        let long_tag = format!("app:{}", "t".repeat(MAX_TAG_BYTES + 1));
        assert!(ImageReference::parse(&long_tag).is_err(), "tag bound");
        assert!(ImageReference::parse(&format!("app:{}", "t".repeat(MAX_TAG_BYTES))).is_ok());
    }
}
