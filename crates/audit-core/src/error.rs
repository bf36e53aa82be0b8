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
    #[error("{}: {error}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error. Part of the message, and for that reason not the error's
        /// `source()` (a chain printer would repeat it).
        error: io::Error,
    },
    /// The input (a bare path) is in no format imgaudit reads.
    #[error("{}: not an OCI layout, skopeo dir: image, docker-archive or oci-archive tarball, or root filesystem: {reason}", path.display())]
    UnknownFormat {
        /// The input.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The input is not in the format its transport (`oci:`, `dir:`, `oci-archive:` …)
    /// names.
    #[error("{}: not {expected}: {reason}", path.display())]
    WrongFormat {
        /// The input.
        path: PathBuf,
        /// What the transport expects (`an OCI image layout`, `an oci-archive` …).
        expected: &'static str,
        /// What is wrong, and what it is instead when that is known.
        reason: String,
    },
    /// The image reference is malformed.
    #[error("invalid image reference {reference:?}: {reason}")]
    BadReference {
        /// The reference as given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON document does not parse or has the wrong shape.
    #[error("{what}: {reason}")]
    InvalidJson {
        /// Which document.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A metadata document is larger than its bound.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// Which document.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// A blob the image needs is not in the store.
    #[error("blob {digest} is missing from {location}")]
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
    #[error("no image for platform {wanted} (available: {available})")]
    NoMatchingPlatform {
        /// Requested.
        wanted: String,
        /// What the index offers.
        available: String,
    },
    /// The named tag or digest is not in the layout or archive.
    #[error("{wanted} not found in {location} (available: {available})")]
    ImageNotFound {
        /// Requested tag or digest.
        wanted: String,
        /// The layout or archive.
        location: String,
        /// What it holds.
        available: String,
    },
    /// Several images are present and none was named.
    #[error("{location} holds several images; name one of: {choices}")]
    Ambiguous {
        /// The layout or archive.
        location: String,
        /// The names to pick from.
        choices: String,
    },
    /// The manifest is not a container image (an artifact, a Helm chart, …).
    #[error("not a container image: {reason}")]
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
    #[error("{reason}")]
    BadLayers {
        /// What is wrong.
        reason: String,
    },
    /// A registry request failed in a way no other variant describes (an unexpected
    /// status, a malformed response).
    #[error("{registry}: {reason}")]
    Registry {
        /// Registry host.
        registry: String,
        /// One-line cause.
        reason: String,
    },
    /// The registry wants credentials that were not found, or rejected the ones sent
    /// (HTTP 401, or the token service refused them).
    #[error("{registry}: {reason}")]
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
    #[error("{registry}: TLS handshake failed: {reason}")]
    Tls {
        /// Registry (or token service) host.
        registry: String,
        /// The TLS library's complaint.
        reason: String,
    },
    /// No connection could be made (DNS failure, refused, reset), after retries.
    #[error("{registry}: unreachable: {reason}")]
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
    #[error("{registry}: credential lookup failed: {reason}")]
    Credentials {
        /// Registry the credentials were for.
        registry: String,
        /// What went wrong (never the secret).
        reason: String,
    },
    /// Registry references need the `registry` feature of `audit-core`.
    #[error("{reference}: this build cannot pull from registries (audit-core feature `registry` is off)")]
    RegistryUnsupported {
        /// The reference.
        reference: String,
    },
}

/// Streaming, verifying and walking one layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The blob's bytes do not hash to the manifest's layer digest.
    #[error("layer {index} ({expected}): blob digest mismatch, got {actual}")]
    DigestMismatch {
        /// Layer index, base = 0.
        index: usize,
        /// From the manifest.
        expected: Digest,
        /// Computed while streaming.
        actual: Digest,
    },
    /// The blob's length differs from the manifest's size.
    #[error("layer {index} ({digest}): blob is {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// Layer index.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// From the manifest.
        expected: u64,
        /// Seen (for an overlong blob: the point where reading stopped).
        actual: u64,
    },
    /// The uncompressed stream does not hash to the config's `rootfs.diff_ids` entry.
    #[error("layer {index} ({digest}): uncompressed content does not match diff_id {expected}, got {actual}")]
    DiffIdMismatch {
        /// Layer index.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// From the config.
        expected: Digest,
        /// Computed while streaming.
        actual: Digest,
    },
    /// The layer could not be read or decompressed, or is not a valid tar stream.
    #[error("layer {index} ({digest}): {reason}")]
    Corrupt {
        /// Layer index.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// What went wrong, e.g. `gzip: unexpected end of file`.
        reason: String,
    },
    /// The layer expands past a decompression bound.
    #[error("layer {index} ({digest}): decompression bomb: {reason}")]
    Bomb {
        /// Layer index.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// Which bound.
        reason: String,
    },
    /// The layer has more entries than the bound.
    #[error("layer {index} ({digest}): more than {limit} tar entries")]
    TooManyEntries {
        /// Layer index.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// The bound.
        limit: u64,
    },
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
