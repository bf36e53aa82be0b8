//! Layer streaming throughput: bytes/s of uncompressed layer through verify + decompress +
//! diff_id + tar walk + file inspection (imgaudit's `analyze_blob`), next to the floor (the
//! same pass without inspection). Input: a layer made of the Go and C fixture binaries that
//! `make -C testdata fixtures` builds (several MB each), gzip and zstd compressed.

use std::io::Write;
use std::path::Path;

use audit_core::content_plan;
use audit_core::layer::{analyze_blob, LayerSpec};
use audit_core::Digest;
use audit_core::Limits;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn fixture_layer() -> Vec<u8> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/out/bin");
    assert!(
        bin.is_dir(),
        "{} missing: run `make -C testdata fixtures`",
        bin.display()
    );
    let mut names: Vec<_> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let mut b = tar::Builder::new(Vec::new());
    for p in names {
        b.append_path_with_name(&p, Path::new("usr/local/bin").join(p.file_name().unwrap()))
            .unwrap();
    }
    b.into_inner().unwrap()
}

fn bench(c: &mut Criterion) {
    let tar = fixture_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
    let limits = Limits::default();
    let mut g = c.benchmark_group("layer_stream");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(tar.len() as u64));
    for (name, blob) in [("gzip", &gz), ("zstd", &zst)] {
        let spec = LayerSpec {
            index: 0,
            digest: Digest::sha256_of(blob),
            size: blob.len() as u64,
            diff_id: Some(Digest::sha256_of(&tar)),
            verify_digest: true,
            media_type: String::new(),
        };
        g.bench_function(format!("imgaudit/{name}"), |b| {
            b.iter(|| analyze_blob(&blob[..], &spec, &limits, content_plan()).unwrap())
        });
        g.bench_function(format!("floor/{name}"), |b| {
            b.iter(|| imgaudit_benches::floor_pass(&blob[..]).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
