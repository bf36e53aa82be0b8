//! Content digests (`sha256:<hex>`) and a reader that verifies one while streaming.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// A content digest as used by OCI descriptors: `algorithm:encoded`.
///
/// Only the registered algorithms `sha256` and `sha512` are accepted; the encoded part is
/// lowercase hex of the exact length the algorithm produces (OCI image-spec `descriptor.md`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: Box<str>,
}

/// A registered digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex digits.
    Sha256,
    /// SHA-512, 128 hex digits.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {value:?}: {reason}")]
pub struct DigestParseError {
    /// The rejected input (truncated to 100 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Digest {
    /// The algorithm part.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `docker images` shows them.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// Wraps a finished SHA-256 value.
    pub fn from_sha256(raw: [u8; 32]) -> Self {
        Self {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(raw).into(),
        }
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn compute_like(&self, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(self.algorithm);
        h.update(bytes);
        h.finish()
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DigestParseError {
            value: s
                .chars()
                .take(crate::limits::MAX_QUOTED_DIGEST_CHARS)
                .collect(),
            reason,
        };
        let (alg, hex) = s.split_once(':').ok_or_else(|| err("missing ':'"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(err("unsupported algorithm (expected sha256 or sha512)")),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(err("wrong length for the algorithm"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("encoded part is not lowercase hex"));
        }
        Ok(Self {
            algorithm,
            hex: hex.into(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for one [`Algorithm`].
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Hasher {
    pub(crate) fn new(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(Box::default()),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_sha256(h.finalize().into()),
            Self::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()).into(),
            },
        }
    }
}

/// Hashes every byte that passes through and stops reading past `limit` bytes.
///
/// Reading more than `limit` bytes is an error of kind `InvalidData` whose inner error is
/// [`Overrun`]: a blob must not be longer than its descriptor says (OCI `descriptor.md`: "if
/// the length of the retrieved content does not match … the content SHOULD NOT be trusted").
/// That also bounds how much a hostile source can make us read.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    limit: u64,
}

/// The error payload of a [`HashingReader`] that saw more bytes than its limit.
#[derive(Debug, thiserror::Error)]
#[error("stream is longer than the {limit} bytes its descriptor declares")]
pub(crate) struct Overrun {
    pub(crate) limit: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R, alg: Algorithm, limit: u64) -> Self {
        Self {
            inner,
            hasher: Hasher::new(alg),
            count: 0,
            limit,
        }
    }

    /// Whether more bytes than the limit came (the stream then stops at limit + 1).
    pub(crate) fn overran(&self) -> bool {
        self.count > self.limit
    }

    /// The underlying reader and the bytes taken from it, to count what an overlong stream
    /// has left.
    pub(crate) fn into_inner(self) -> (R, u64) {
        (self.inner, self.count)
    }

    /// Reads to EOF (the hash covers the whole stream), then returns the digest and length.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Overrun { limit: self.limit },
            ));
        }
        // Allow one byte past the limit so an overlong stream is detected, not truncated.
        let room = (self.limit - self.count).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Overrun { limit: self.limit },
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {

    /// A malformed digest is quoted back in its error up to `MAX_QUOTED_DIGEST_CHARS`
    /// characters (not bytes: the cut never splits a character).
    #[test]
    fn a_malformed_digest_is_quoted_up_to_the_bound() {
        use crate::limits::MAX_QUOTED_DIGEST_CHARS as MAX;
        let quoted = |s: &str| s.parse::<Digest>().unwrap_err().value;
        let below = "é".repeat(MAX - 1);
        assert_eq!(quoted(&below), below);
        let at = "é".repeat(MAX);
        assert_eq!(quoted(&at), at);
        let over = format!("{at}é:{}", "0".repeat(64));
        assert_eq!(quoted(&over), at);
    }
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d: Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
            .parse()
            .unwrap();
        assert_eq!(d, Digest::sha256_of(b"{}"));
        assert_eq!(d.short(), "44136fa355b3");
        assert!("sha256:ABC".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
        assert!("sha256".parse::<Digest>().is_err());
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(upper.parse::<Digest>().is_err());
    }

    #[test]
    fn hashing_reader_rejects_overrun() {
        let data = vec![7u8; 100];
        let r = HashingReader::new(&data[..], Algorithm::Sha256, 99);
        let err = r.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let r = HashingReader::new(&data[..], Algorithm::Sha256, 100);
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 100);
        assert_eq!(d, Digest::sha256_of(&data));
    }
}
