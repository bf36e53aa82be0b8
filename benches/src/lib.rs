//! The layer-pass floor shared by the `floor` binary and the criterion benchmark: SHA-256 of
//! the blob, decompression chosen by the first bytes, SHA-256 of the tar stream and a tar
//! walk reading every byte — what no auditor can skip — with no inspection.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest as _, Sha256};

/// Hashes what passes through.
pub struct Hashing<R> {
    /// The wrapped reader.
    pub inner: R,
    /// The running hash.
    pub h: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes and walks an uncompressed tar stream to its end; returns file bytes read and the
/// stream's SHA-256.
pub fn walk<R: Read>(r: R) -> io::Result<(u64, [u8; 32])> {
    let mut hashed = BufReader::with_capacity(
        256 << 10,
        Hashing {
            inner: r,
            h: Sha256::new(),
        },
    );
    let mut bytes = 0u64;
    {
        let mut ar = tar::Archive::new(&mut hashed);
        let mut buf = vec![0u8; 256 << 10];
        for e in ar.entries()? {
            let mut e = e?;
            loop {
                let n = e.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
            }
        }
    }
    loop {
        let n = hashed.fill_buf()?.len();
        if n == 0 {
            break;
        }
        hashed.consume(n);
    }
    Ok((bytes, hashed.into_inner().h.finalize().into()))
}

/// The whole floor pass over one blob: returns (file bytes walked, blob SHA-256).
pub fn floor_pass<R: Read>(blob: R) -> io::Result<(u64, [u8; 32])> {
    let mut raw = BufReader::with_capacity(
        256 << 10,
        Hashing {
            inner: blob,
            h: Sha256::new(),
        },
    );
    let head = raw.fill_buf()?.to_vec();
    let (n, _diff_id) = if head.starts_with(&[0x1f, 0x8b]) {
        walk(flate2::bufread::MultiGzDecoder::new(&mut raw))?
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        walk(zstd::stream::read::Decoder::with_buffer(&mut raw)?)?
    } else {
        walk(&mut raw)?
    };
    io::copy(&mut raw, &mut io::sink())?;
    Ok((n, raw.into_inner().h.finalize().into()))
}
