//! The entry encoding (see [`super`]): header, seal, zstd-compressed CBOR payload.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use sha2::{Digest as _, Sha256};

use super::LayerKey;
use crate::layer::LayerAnalysis;
use crate::limits::{MAX_STORE_ENTRY_BYTES, MAX_STORE_PAYLOAD_BYTES};

/// First bytes of every entry.
const MAGIC: &[u8; 8] = b"IMGAUDIT";
/// Version of the entry layout (header, seal, payload encoding). What the payload contains is
/// versioned separately, by [`crate::layer::ANALYSIS_VERSION`] in the key.
pub(crate) const FORMAT: u16 = 1;
/// zstd level of the payload: CBOR field names repeat in every entry and compress well.
const ZSTD_LEVEL: i32 = 3;
const TAG_BYTES: usize = 32;

/// How entries are sealed.
#[derive(Clone)]
pub(super) enum Seal {
    /// A SHA-256 checksum: detects corruption (a torn write, a flipped bit). For stores only
    /// their owner can write (a cache directory).
    Checksum,
    /// HMAC-SHA256 with a shared key: also detects forgery, so whoever can write to a shared
    /// store but lacks the key cannot make a layer look clean.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store seals so
    Hmac(Arc<[u8]>),
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checksum => "Checksum",
            Self::Hmac(_) => "Hmac(..)",
        })
    }
}

impl Seal {
    fn id(&self) -> u16 {
        match self {
            Self::Checksum => 1,
            Self::Hmac(_) => 2,
        }
    }

    fn tag(&self, head: &[u8], payload: &[u8]) -> [u8; TAG_BYTES] {
        match self {
            Self::Checksum => {
                let mut h = Sha256::new();
                h.update(head);
                h.update(payload);
                h.finalize().into()
            }
            Self::Hmac(key) => {
                let mut m = hmac_for(key);
                m.update(head);
                m.update(payload);
                m.finalize().into_bytes().into()
            }
        }
    }

    fn verify(&self, head: &[u8], payload: &[u8], tag: &[u8]) -> bool {
        match self {
            Self::Checksum => self.tag(head, payload)[..] == *tag,
            Self::Hmac(key) => {
                let mut m = hmac_for(key);
                m.update(head);
                m.update(payload);
                // Constant-time comparison.
                m.verify_slice(tag).is_ok()
            }
        }
    }
}

fn hmac_for(key: &[u8]) -> hmac::Hmac<Sha256> {
    // HMAC takes keys of any length (RFC 2104 §2: longer keys are hashed first).
    <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Why a stored entry was not used (it is a miss, never an error of the audit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(super) enum Reject {
    /// Longer than [`MAX_STORE_ENTRY_BYTES`].
    #[error("entry of {0} bytes or more is over the bound")]
    Oversized(u64),
    /// Does not start with the magic bytes.
    #[error("not a layer-store entry")]
    NotAnEntry,
    /// Written by another entry format or seal.
    #[error("entry format {format} seal {seal} (this build reads {FORMAT})")]
    Foreign {
        /// The format found.
        format: u16,
        /// The seal kind found.
        seal: u16,
    },
    /// The header names another key.
    #[error("entry of another key")]
    WrongKey,
    /// Shorter or longer than its header says.
    #[error("entry truncated or padded")]
    Truncated,
    /// The checksum or HMAC does not match.
    #[error("checksum or HMAC mismatch")]
    BadSeal,
    /// The payload does not decode.
    #[error("payload: {0}")]
    Payload(String),
}

/// The encoded entry, or `None` when it would be over [`MAX_STORE_ENTRY_BYTES`].
pub(crate) fn encode(key: &LayerKey, analysis: &LayerAnalysis, seal: &Seal) -> Option<Vec<u8>> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).ok()?;
    ciborium::into_writer(analysis, &mut enc).ok()?;
    let payload = enc.finish().ok()?;
    seal_raw(&key.name(), &payload, seal)
}

/// `payload` sealed under `name` (the header with the key echo, then the tag and payload),
/// or `None` when over [`MAX_STORE_ENTRY_BYTES`]. Layer entries and the webhook's shared
/// verdicts use it.
pub(super) fn seal_raw(name: &str, payload: &[u8], seal: &Seal) -> Option<Vec<u8>> {
    let name_len = u16::try_from(name.len()).ok()?;
    let mut out = Vec::with_capacity(64 + name.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&seal.id().to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let tag = seal.tag(&out, payload);
    out.extend_from_slice(&tag);
    out.extend_from_slice(payload);
    (out.len() as u64 <= MAX_STORE_ENTRY_BYTES).then_some(out)
}

/// The payload of an entry sealed by [`seal_raw`] under `name`, when the header, key echo,
/// length and tag all check. Never panics, whatever the bytes.
pub(super) fn open_raw<'a>(name: &str, bytes: &'a [u8], seal: &Seal) -> Result<&'a [u8], Reject> {
    if bytes.len() as u64 > MAX_STORE_ENTRY_BYTES {
        return Err(Reject::Oversized(bytes.len() as u64));
    }
    let mut c = Cursor(bytes);
    if c.take(MAGIC.len()).map_err(|_| Reject::NotAnEntry)? != MAGIC {
        return Err(Reject::NotAnEntry);
    }
    let format = c.u16()?;
    let seal_id = c.u16()?;
    if format != FORMAT || seal_id != seal.id() {
        return Err(Reject::Foreign {
            format,
            seal: seal_id,
        });
    }
    let name_len = usize::from(c.u16()?);
    if c.take(name_len)? != name.as_bytes() {
        return Err(Reject::WrongKey);
    }
    let len_bytes: [u8; 8] = c.take(8)?.try_into().map_err(|_| Reject::Truncated)?;
    let payload_len = u64::from_le_bytes(len_bytes);
    let head_len = bytes.len() - c.0.len();
    let tag = c.take(TAG_BYTES)?;
    if c.0.len() as u64 != payload_len {
        return Err(Reject::Truncated);
    }
    let payload = c.0;
    if !seal.verify(&bytes[..head_len], payload, tag) {
        return Err(Reject::BadSeal);
    }
    Ok(payload)
}

/// Decodes an entry read under `key`. Never panics, whatever the bytes.
pub(crate) fn decode(key: &LayerKey, bytes: &[u8], seal: &Seal) -> Result<LayerAnalysis, Reject> {
    let payload = open_raw(&key.name(), bytes, seal)?;
    let dec =
        zstd::stream::read::Decoder::new(payload).map_err(|e| Reject::Payload(e.to_string()))?;
    let mut plain = Vec::new();
    dec.take(MAX_STORE_PAYLOAD_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|e| Reject::Payload(format!("zstd: {e}")))?;
    if plain.len() as u64 > MAX_STORE_PAYLOAD_BYTES {
        return Err(Reject::Payload(format!(
            "expands past {MAX_STORE_PAYLOAD_BYTES} bytes"
        )));
    }
    let analysis: LayerAnalysis =
        ciborium::from_reader(&plain[..]).map_err(|e| Reject::Payload(format!("CBOR: {e}")))?;
    if analysis.digest != *key.digest() {
        return Err(Reject::WrongKey);
    }
    Ok(analysis)
}

/// Reads the header front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reject> {
        if self.0.len() < n {
            return Err(Reject::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, Reject> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
}
