//! Typed errors, one enum per pipeline stage, gathered by [`Error`].
//!
//! An image-level failure (bad manifest, digest mismatch, a bound exceeded) is an error and
//! stops the audit of that image. A file-level failure (one malformed ELF) is not an error:
//! it becomes an entry in `Report::unknowns` and the audit goes on.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of an audit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image could not be located or its metadata could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A layer could not be read or failed verification.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The policy is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Locating an image and reading its manifest, index and config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A filesystem operation failed.
    #[error("{}: {}", p(&path.display()), p(error))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error. Part of the message, and for that reason not the error's
        /// `source()` (a chain printer would repeat it).
        error: io::Error,
    },
    /// The input (a bare path) is in no format imgaudit reads.
    #[error("{}: not an OCI layout, skopeo dir: image, docker-archive or oci-archive tarball, or root filesystem: {}", p(&path.display()), p(reason))]
    UnknownFormat {
        /// The input.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The input is not in the format its transport (`oci:`, `dir:`, `oci-archive:` …)
    /// names.
    #[error("{}: not {expected}: {}", p(&path.display()), p(reason))]
    WrongFormat {
        /// The input.
        path: PathBuf,
        /// What the transport expects (`an OCI image layout`, `an oci-archive` …).
        expected: &'static str,
        /// What is wrong, and what it is instead when that is known.
        reason: String,
    },
    /// The image reference is malformed.
    #[error("invalid image reference \"{}\": {}", p(reference), p(reason))]
    BadReference {
        /// The reference as given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON document does not parse or has the wrong shape.
    #[error("{}: {}", p(what), p(reason))]
    InvalidJson {
        /// Which document.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A metadata document is larger than its bound.
    #[error("{} is larger than the {limit}-byte limit", p(what))]
    TooLarge {
        /// Which document.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// A blob the image needs is not in the store.
    #[error("blob {digest} is missing from {}", p(location))]
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// The store.
        location: String,
    },
    /// A manifest, index or config does not hash to its descriptor's digest.
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which document.
        what: String,
        /// From the descriptor.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// No image in the index matches the requested platform.
    #[error("no image for platform {} (available: {})", p(wanted), p(available))]
    NoMatchingPlatform {
        /// Requested.
        wanted: String,
        /// What the index offers.
        available: String,
    },
    /// The named tag or digest is not in the layout or archive.
    #[error(
        "{} not found in {} (available: {})",
        p(wanted),
        p(location),
        p(available)
    )]
    ImageNotFound {
        /// Requested tag or digest.
        wanted: String,
        /// The layout or archive.
        location: String,
        /// What it holds.
        available: String,
    },
    /// Several images are present and none was named.
    #[error("{} holds several images; name one of: {}", p(location), p(choices))]
    Ambiguous {
        /// The layout or archive.
        location: String,
        /// The names to pick from.
        choices: String,
    },
    /// The manifest is not a container image (an artifact, a Helm chart, …).
    #[error("not a container image: {}", p(reason))]
    NotAnImage {
        /// Why.
        reason: String,
    },
    /// Indexes nest deeper than the bound (or form a cycle).
    #[error("image indexes nest deeper than {limit} levels")]
    IndexTooDeep {
        /// The bound.
        limit: usize,
    },
    /// The image has more layers than the bound, or layers and config disagree.
    #[error("{}", p(reason))]
    BadLayers {
        /// What is wrong.
        reason: String,
    },
    /// A registry request failed in a way no other variant describes (an unexpected
    /// status, a malformed response).
    #[error("{registry}: {}", p(reason))]
    Registry {
        /// Registry host.
        registry: String,
        /// One-line cause.
        reason: String,
    },
    /// The registry wants credentials that were not found, or rejected the ones sent
    /// (HTTP 401, or the token service refused them).
    #[error("{registry}: {}", p(reason))]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// `authentication required …` or `credentials rejected …`.
        reason: String,
    },
    /// The registry knows who we are and refuses access (HTTP 403).
    #[error("{registry}: access to {repository} denied (HTTP 403)")]
    Forbidden {
        /// Registry host.
        registry: String,
        /// Repository path.
        repository: String,
    },
    /// The tag or digest is not in the repository (HTTP 404, `MANIFEST_UNKNOWN` or
    /// `NAME_UNKNOWN`).
    #[error("{registry}: manifest {reference} not found")]
    ManifestUnknown {
        /// Registry host.
        registry: String,
        /// `repository:tag` or `repository@digest`.
        reference: String,
    },
    /// The TLS handshake failed: untrusted or invalid certificate, or a server that does not
    /// speak TLS.
    #[error("{registry}: TLS handshake failed: {}", p(reason))]
    Tls {
        /// Registry (or token service) host.
        registry: String,
        /// The TLS library's complaint.
        reason: String,
    },
    /// No connection could be made (DNS failure, refused, reset), after retries.
    #[error("{registry}: unreachable: {}", p(reason))]
    Unreachable {
        /// Registry host.
        registry: String,
        /// The last transport error.
        reason: String,
    },
    /// The registry kept answering 429 Too Many Requests, or asked to wait longer than the
    /// retry bound.
    #[error("{registry}: rate limited (HTTP 429{})", retry_after.map(|s| format!(", retry after {s} s")).unwrap_or_default())]
    RateLimited {
        /// Registry host.
        registry: String,
        /// The last `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// A time bound was exceeded.
    #[error("{registry}: timed out after {} s {what}", secs)]
    Timeout {
        /// Registry host.
        registry: String,
        /// What was being done (`fetching manifest …`, `pulling the image`).
        what: String,
        /// The bound, in seconds.
        secs: u64,
    },
    /// Looking up credentials failed (a credential helper crashed or timed out). A helper
    /// that has no credentials is not a failure: the pull goes on anonymously.
    #[error("{registry}: credential lookup failed: {}", p(reason))]
    Credentials {
        /// Registry the credentials were for.
        registry: String,
        /// What went wrong (never the secret).
        reason: String,
    },
    /// A container engine (Docker, Podman, containerd) could not be reached: no socket,
    /// permission denied, connection refused.
    #[error("{engine}: unreachable: {}", p(reason))]
    EngineUnreachable {
        /// The engine and its address (`docker at unix:///var/run/docker.sock`).
        engine: String,
        /// The transport's complaint.
        reason: String,
    },
    /// The engine does not have the image.
    #[error("{engine}: no such image: {}", p(image))]
    EngineImageNotFound {
        /// The engine and its address.
        engine: String,
        /// The image as named.
        image: String,
    },
    /// The engine answered something unexpected, stalled, or its image stream broke off.
    #[error("{engine}: {}", p(reason))]
    Engine {
        /// The engine and its address.
        engine: String,
        /// One-line cause.
        reason: String,
    },
    /// Engine sources need the `engines` feature of `audit-core`.
    #[error("{reference}: this build cannot read container engines (audit-core feature `engines` is off)")]
    EnginesUnsupported {
        /// The reference.
        reference: String,
    },
    /// containerd sources need the `containerd` feature of `audit-core`.
    #[error(
        "{reference}: this build cannot read containerd (audit-core feature `containerd` is off)"
    )]
    ContainerdUnsupported {
        /// The reference.
        reference: String,
    },
    /// Registry references need the `registry` feature of `audit-core`.
    #[error("{reference}: this build cannot pull from registries (audit-core feature `registry` is off)")]
    RegistryUnsupported {
        /// The reference.
        reference: String,
    },
}

/// Which layer an error is about: its position, the digest the manifest names, and the
/// media type it declares. Displays as `layer 3 (sha256:…, application/…tar+gzip)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerId {
    /// Position in the manifest, base = 0.
    pub index: usize,
    /// Digest from the manifest (the diff_id for classic `docker save` archives).
    pub digest: Digest,
    /// Declared media type; empty when the manifest gives none.
    pub media_type: String,
}

impl std::fmt::Display for LayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "layer {} ({}", self.index, self.digest)?;
        if !self.media_type.is_empty() {
            write!(f, ", {}", p(&self.media_type))?;
        }
        f.write_str(")")
    }
}

/// Streaming, verifying and walking one layer.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The blob's bytes do not hash to the manifest's layer digest.
    #[error("{layer}: blob digest mismatch, got {actual}")]
    DigestMismatch {
        /// The layer (its digest is the expected one).
        layer: LayerId,
        /// Computed while streaming.
        actual: Digest,
    },
    /// The blob's length differs from the manifest's size.
    #[error("{layer}: blob is {}{actual} bytes, the manifest says {expected}", if *more { "more than " } else { "" })]
    SizeMismatch {
        /// The layer.
        layer: LayerId,
        /// From the manifest.
        expected: u64,
        /// The blob's real length, counted to its end (or to the counting bound, see
        /// `more`).
        actual: u64,
        /// `actual` is a lower bound: counting stopped
        /// [`crate::limits::SIZE_MISMATCH_COUNT_BYTES`] past the declared size.
        more: bool,
    },
    /// The uncompressed stream does not hash to the config's `rootfs.diff_ids` entry.
    #[error("{layer}: uncompressed content does not match diff_id {expected}, got {actual}")]
    DiffIdMismatch {
        /// The layer.
        layer: LayerId,
        /// From the config.
        expected: Digest,
        /// Computed while streaming.
        actual: Digest,
    },
    /// The layer could not be read or decompressed, or is not a valid tar stream.
    #[error("{layer}: {}", p(reason))]
    Corrupt {
        /// The layer.
        layer: LayerId,
        /// What went wrong, e.g. `gzip: unexpected end of file`.
        reason: String,
    },
    /// The layer expands past a decompression bound.
    #[error("{layer}: decompression bomb: {}", p(reason))]
    Bomb {
        /// The layer.
        layer: LayerId,
        /// Which bound.
        reason: String,
    },
    /// The layer has more entries than the bound.
    #[error("{layer}: more than {limit} tar entries")]
    TooManyEntries {
        /// The layer.
        layer: LayerId,
        /// The bound.
        limit: u64,
    },
}

impl LayerError {
    /// The same error, naming `layer` (an analysis made under a provisional name, before the
    /// manifest said which layer the blob is).
    pub fn for_layer(self, layer: LayerId) -> Self {
        match self {
            Self::DigestMismatch { actual, .. } => Self::DigestMismatch { layer, actual },
            Self::SizeMismatch {
                expected,
                actual,
                more,
                ..
            } => Self::SizeMismatch {
                layer,
                expected,
                actual,
                more,
            },
            Self::DiffIdMismatch {
                expected, actual, ..
            } => Self::DiffIdMismatch {
                layer,
                expected,
                actual,
            },
            Self::Corrupt { reason, .. } => Self::Corrupt { layer, reason },
            Self::Bomb { reason, .. } => Self::Bomb { layer, reason },
            Self::TooManyEntries { limit, .. } => Self::TooManyEntries { layer, limit },
        }
    }
}

/// Longest text from the input (a reason, a name, a path) shown in a message; the rest is
/// elided, so that one hostile field cannot make an error message unreadable.
const MAX_SHOWN_CHARS: usize = 512;

/// Text from the input made fit for a one-line message: control characters (newlines, ESC,
/// DEL, C1) and the invisible characters that reorder or hide text (bidirectional
/// overrides and isolates, zero-width characters, BOM: CVE-2021-42574) are escaped as
/// `\u{…}`, and more than [`MAX_SHOWN_CHARS`] characters are cut with `…`. Bytes that were
/// not UTF-8 arrive here already replaced with U+FFFD by the lossy conversions that read
/// them.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s, MAX_SHOWN_CHARS)
}

/// A whole message made one printable line, for a caller that prints it (the CLI's error
/// line): the escaping of `printable`, without its length cut.
pub fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s, usize::MAX)
}

fn escape(s: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !s.chars().any(hidden) && s.len() <= max_chars {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_add(16)));
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`printable`] for any displayable value (paths, io errors), for the error formats.
fn p(v: &(impl std::fmt::Display + ?Sized)) -> String {
    printable(&v.to_string()).into_owned()
}

/// Invalid policy or option values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A rule id that the registry does not know.
    #[error("{key}: unknown rule id {id:?}")]
    UnknownRule {
        /// Where it was given.
        key: String,
        /// The id.
        id: String,
    },
    /// The policy file is not valid TOML or has an unknown key.
    #[error("{message}")]
    Syntax {
        /// The parser's message with line and column.
        message: String,
    },
    /// A value that does not parse.
    #[error("{key}: {reason}")]
    Invalid {
        /// Where it was given.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_printable_line() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(
            printable("\x7fELF\x02\x01\x01\nnext\x1b[31m"),
            "\\u{7f}ELF\\u{2}\\u{1}\\u{1}\\nnext\\u{1b}[31m"
        );
        // Trojan-source reordering and zero-width characters.
        assert_eq!(printable("a\u{202e}b\u{200b}c"), "a\\u{202e}b\\u{200b}c");
        let long = "x".repeat(MAX_SHOWN_CHARS + 10);
        let cut = printable(&long);
        assert_eq!(cut.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line(&long), long);
        let e = SourceError::InvalidJson {
            what: "index.json".into(),
            reason: "invalid type: string \"\u{1b}]0;pwned\u{7}\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "index.json: invalid type: string \"\\u{1b}]0;pwned\\u{7}\""
        );
        let io = SourceError::Io {
            path: "/a/b".into(),
            error: io::Error::new(io::ErrorKind::InvalidInput, "a FIFO, not a regular file"),
        };
        assert_eq!(io.to_string(), "/a/b: a FIFO, not a regular file");
        assert!(std::error::Error::source(&io).is_none(), "said once");
        let id = LayerId {
            index: 2,
            digest: Digest::sha256_of(b""),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        assert!(id
            .to_string()
            .ends_with(", application/vnd.oci.image.layer.v1.tar+gzip)"));
    }
}
