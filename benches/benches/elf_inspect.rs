//! ELF and Go build-info inspection throughput (bytes of binary per second), whole capture
//! and sparse capture, over the fixture binaries `make -C testdata fixtures` builds.

use std::path::Path;

use audit_core::content_plan;
use audit_core::inspect::inspect_reader;
use audit_core::Limits;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/out/bin");
    assert!(
        bin.is_dir(),
        "{} missing: run `make -C testdata fixtures`",
        bin.display()
    );
    let mut g = c.benchmark_group("elf_inspect");
    g.sample_size(20);
    for name in [
        "app-static",
        "app-cgo-glibc",
        "app-pie",
        "app-go119",
        "hello-c-rpath",
    ] {
        let bytes = std::fs::read(bin.join(name)).unwrap();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        for (mode, whole_max) in [("whole", u64::MAX), ("sparse", 0)] {
            let mut limits = Limits::default();
            limits.elf_full_capture_max = whole_max;
            g.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| {
                    inspect_reader(
                        "usr/local/bin/x",
                        bytes.len() as u64,
                        &mut &bytes[..],
                        &limits,
                        content_plan(),
                        256 << 10,
                    )
                    .unwrap()
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
