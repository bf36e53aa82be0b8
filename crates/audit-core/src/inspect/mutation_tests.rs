//! Real fixture binaries (Go static, pie, cgo, 1.19, arm64, Rust, C), mutated where parsers
//! look — the ELF header, the program and section header tables, the bytes of a random
//! section (.dynamic, .dynstr, .go.buildinfo, .gopclntab, .symtab, notes …) — and truncated,
//! then inspected whole and sparsely. Every result must be facts or a typed ELF error; a
//! panic fails the test. The mutation stream is seeded, so a failure reproduces; raise
//! `IMGAUDIT_MUTATION_ROUNDS` (default 24 per binary) or change `IMGAUDIT_MUTATION_SEED`
//! for a deeper local run.

use std::io::Cursor;

use super::inspect_reader;
use crate::limits::Limits;
use crate::testutil::{fixture, XorShift};

const FIXTURES: &[&str] = &[
    "app-static",
    "app-pie",
    "app-go119",
    "app-cgo-musl",
    "app-arm64",
    "hello-rust",
    "hello-c-rpath",
    "libgreet.so.1",
];

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}

fn u64_at(b: &[u8], o: usize) -> usize {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize
}

/// Byte ranges a parser reads first: header, program headers, section headers, and the
/// content of each section (all fixtures are ELF64 little-endian).
fn regions(b: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&b[..6], b"\x7fELF\x02\x01", "fixtures are ELF64 LE");
    let (phoff, phentsize, phnum) = (u64_at(b, 32), u16_at(b, 54), u16_at(b, 56));
    let (shoff, shentsize, shnum) = (u64_at(b, 40), u16_at(b, 58), u16_at(b, 60));
    let mut v = vec![
        (0, 64),
        (phoff, phoff + phentsize * phnum),
        (shoff, shoff + shentsize * shnum),
    ];
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let (kind, off, size) = (
            u32::from_le_bytes(b[sh + 4..sh + 8].try_into().unwrap()),
            u64_at(b, sh + 24),
            u64_at(b, sh + 32),
        );
        if kind != 8 /* SHT_NOBITS */ && size > 0 && off + size <= b.len() {
            v.push((off, off + size.min(64 << 10)));
        }
    }
    v
}

/// Values that sit on the edges parsers must check: zero, one, all ones, sign bits, and
/// offsets just past the end of the file.
fn edge_value(rng: &mut XorShift, len: usize) -> u64 {
    let edges = [
        0,
        1,
        0x7f,
        0xff,
        0xffff,
        0x7fff_ffff,
        0xffff_ffff,
        u64::MAX,
        u64::MAX / 2,
        len as u64,
        len as u64 + 1,
        (len as u64) << 8,
    ];
    edges[rng.below(edges.len())]
}

fn mutate(rng: &mut XorShift, orig: &[u8], regions: &[(usize, usize)]) -> Vec<u8> {
    let mut b = orig.to_vec();
    for _ in 0..1 + rng.below(6) {
        let (lo, hi) = regions[rng.below(regions.len())];
        let at = lo + rng.below(hi - lo);
        match rng.below(3) {
            0 => b[at] = rng.next() as u8,
            // An aligned field set to an edge value, 2, 4 or 8 bytes wide.
            1 => {
                let width = [2, 4, 8][rng.below(3)];
                let at = at & !(width - 1);
                let v = edge_value(rng, b.len()).to_le_bytes();
                if at + width <= b.len() {
                    b[at..at + width].copy_from_slice(&v[..width]);
                }
            }
            _ => b[at] ^= 1 << rng.below(8),
        }
    }
    if rng.below(4) == 0 {
        b.truncate(rng.below(b.len()));
    }
    b
}

#[test]
fn mutated_real_binaries_give_facts_or_typed_errors() {
    let rounds: usize = std::env::var("IMGAUDIT_MUTATION_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed = std::env::var("IMGAUDIT_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut rng = XorShift(seed | 1);
    let (mut parsed, mut rejected) = (0, 0);
    for name in FIXTURES {
        let orig = std::fs::read(fixture(&format!("bin/{name}")))
            .unwrap_or_else(|e| panic!("{name}: {e} (make -C testdata fixtures)"));
        let regions = regions(&orig);
        for round in 0..rounds {
            let b = mutate(&mut rng, &orig, &regions);
            for sparse in [false, true] {
                let limits = Limits {
                    elf_full_capture_max: if sparse { 0 } else { u64::MAX },
                    ..Limits::default()
                };
                let chunk = if sparse { 4093 } else { 256 << 10 };
                let facts = inspect_reader(
                    "/x",
                    b.len() as u64,
                    &mut Cursor::new(&b),
                    &limits,
                    crate::audit::content_plan(),
                    chunk,
                )
                .unwrap_or_else(|e| panic!("{name} round {round}: reading memory failed: {e}"));
                match facts {
                    Some(f) if f.elf.is_some() => parsed += 1,
                    Some(f) => {
                        assert!(
                            f.elf_error.is_some() || b.len() < 4 || &b[..4] != b"\x7fELF",
                            "{name} round {round}: neither facts nor error"
                        );
                        rejected += 1
                    }
                    None => rejected += 1,
                }
            }
        }
    }
    // Both outcomes occur: the mutations are neither all fatal nor all harmless.
    assert!(
        parsed > 0 && rejected > 0,
        "parsed {parsed}, rejected {rejected}"
    );
}
