//! Test builders: tar layers (including ones no sane tool writes), compression, and an
//! in-memory image store.

use std::collections::HashMap;
use std::io::{Read, Write};

use crate::digest::Digest;
use crate::error::SourceError;
use crate::oci::Descriptor;
use crate::source::{BlobStore, RootObject};

/// Builds a tar stream entry by entry, writing raw ustar headers so that hostile names
/// (`../x`, absolute paths) can be produced.
#[derive(Default)]
pub(crate) struct Tar {
    buf: Vec<u8>,
}

impl Tar {
    fn header(&mut self, name: &str, typ: u8, size: u64, mode: u32, link: &str) {
        let mut h = [0u8; 512];
        assert!(name.len() < 100 && link.len() < 100, "test names fit ustar");
        h[..name.len()].copy_from_slice(name.as_bytes());
        let oct = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{:0width$o}\0", v, width = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        oct(&mut h, 100, 8, u64::from(mode));
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        oct(&mut h, 124, 12, size);
        oct(&mut h, 136, 12, 1_700_000_000);
        h[156] = typ;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
    }

    fn with_data(mut self, name: &str, typ: u8, data: &[u8], mode: u32) -> Self {
        self.header(name, typ, data.len() as u64, mode, "");
        self.buf.extend_from_slice(data);
        self.buf
            .extend(std::iter::repeat_n(0, (512 - data.len() % 512) % 512));
        self
    }

    pub(crate) fn file(self, name: &str, data: &[u8], mode: u32) -> Self {
        self.with_data(name, b'0', data, mode)
    }

    pub(crate) fn symlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, b'2', 0, 0o777, target);
        self
    }

    /// An entry of any type byte with `data` as its content (GNU long names `L`, PAX `x` …).
    pub(crate) fn typed(self, name: &str, typ: u8, data: &[u8]) -> Self {
        self.with_data(name, typ, data, 0o644)
    }

    pub(crate) fn dir(mut self, name: &str, mode: u32) -> Self {
        self.header(name, b'5', 0, mode, "");
        self
    }

    pub(crate) fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, b'1', 0, 0o644, target);
        self
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0, 1024));
        self.buf
    }
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).unwrap()
}

/// An image held in memory: blobs by digest and a root manifest.
pub(crate) struct MemStore {
    pub(crate) blobs: HashMap<Digest, Vec<u8>>,
    pub(crate) root: Vec<u8>,
}

impl MemStore {
    /// An image whose layers are the given blobs (already compressed or not); `diff_ids`
    /// are computed from `uncompressed` unless overridden; `config` is merged into a
    /// minimal image config.
    pub(crate) fn image(layers: &[(Vec<u8>, Vec<u8>)], config: serde_json::Value) -> Self {
        let mut blobs = HashMap::new();
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (blob, plain) in layers {
            let d = Digest::sha256_of(blob);
            descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": blob.len()}));
            diff_ids.push(Digest::sha256_of(plain).to_string());
            blobs.insert(d, blob.clone());
        }
        let mut cfg = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}});
        if let (Some(c), Some(extra)) = (cfg.as_object_mut(), config.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
        let cd = Digest::sha256_of(&cfg_bytes);
        blobs.insert(cd.clone(), cfg_bytes.clone());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cfg_bytes.len()},
            "layers": descs,
        });
        Self {
            blobs,
            root: serde_json::to_vec(&manifest).unwrap(),
        }
    }

    /// Replaces a layer blob's bytes without touching the manifest (a corrupted store).
    pub(crate) fn tamper(&mut self, index: usize, f: impl FnOnce(&mut Vec<u8>)) {
        let m: serde_json::Value = serde_json::from_slice(&self.root).unwrap();
        let d: Digest = m["layers"][index]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        f(self.blobs.get_mut(&d).unwrap());
    }
}

impl BlobStore for MemStore {
    fn location(&self) -> String {
        "memory".into()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        Ok(RootObject {
            bytes: self.root.clone(),
            media_type: None,
            digest: None,
            synthetic: false,
        })
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let b = self
            .blobs
            .get(&desc.digest)
            .ok_or_else(|| SourceError::MissingBlob {
                digest: desc.digest.clone(),
                location: "memory".into(),
            })?;
        Ok(Box::new(&b[..]))
    }
}

/// Marsaglia's xorshift64: deterministic pseudo-random numbers for mutation tests, without a
/// dependency. The seed must not be 0.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A fixture built by `make -C testdata fixtures`; fails loudly when it is missing.
pub(crate) fn fixture(rel: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/out")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make -C testdata fixtures` first",
        p.display()
    );
    p
}

/// A layer entry with default ownership and mode 0644, no facts.
pub(crate) fn entry(path: &str, kind: crate::layer::EntryKind, size: u64) -> crate::layer::Entry {
    crate::layer::Entry {
        path: path.into(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        capabilities: false,
        facts: None,
    }
}
