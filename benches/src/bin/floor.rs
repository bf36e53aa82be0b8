//! The CPU floor of an image audit: for every layer of an OCI layout, the work no auditor can
//! skip — SHA-256 of the blob, decompression, SHA-256 of the tar stream, and a tar walk that
//! reads every byte — with the same crates (zlib-rs, zstd, sha2, tar) and the same
//! parallelism (largest layer first, one thread per CPU) as imgaudit, but no inspection.
//! `benches/compare.sh` times it next to imgaudit on the same input.
//!
//! Usage: floor OCI-LAYOUT-DIR

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};
use audit_core::source::{self, PlatformChoice, Source};
use imgaudit_benches::floor_pass;

fn main() -> anyhow::Result<()> {
    let Some(dir) = std::env::args().nth(1) else {
        bail!("usage: floor OCI-LAYOUT-DIR")
    };
    let Source::Blobs(store) = source::open_local(&dir)? else {
        bail!("{dir}: not an image with layers")
    };
    let images = source::resolve(
        store.as_ref(),
        &PlatformChoice::Default,
        &Default::default(),
    )?;
    let layers = &images[0].manifest.layers;
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(layers[i].size));
    let next = AtomicUsize::new(0);
    let total = Mutex::new(0u64);
    let jobs = std::thread::available_parallelism().map_or(2, usize::from);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = order.get(k) else {
                            return Ok(());
                        };
                        let d = &layers[i];
                        let blob = Path::new(&dir)
                            .join("blobs")
                            .join(d.digest.algorithm().name())
                            .join(d.digest.hex());
                        let f = std::fs::File::open(&blob)
                            .with_context(|| blob.display().to_string())?;
                        let (n, blob_digest) = floor_pass(f)?;
                        if audit_core::Digest::from_sha256(blob_digest) != d.digest {
                            bail!("layer {i}: digest mismatch");
                        }
                        *total.lock().unwrap() += n;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker panicked")?;
        }
        Ok(())
    })?;
    eprintln!(
        "floor: {} layers, {} file bytes walked",
        layers.len(),
        total.into_inner().unwrap()
    );
    Ok(())
}
