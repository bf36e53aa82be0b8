//! Tests of the scanner over forged ELF files: far section-name tables, decoys, forged
//! dynamic lists and random bytes.

use super::headers::{MAX_NAMES_HITS, NAMES_WINDOW, PREFIX_BYTES, SHT_TAIL_BYTES};
use super::*;
use crate::limits::{
    MAX_ELF_INTERP_BYTES, MAX_ELF_NEEDED, MAX_ELF_SEARCH_DIRS, MAX_ELF_VERSIONS,
    MAX_ELF_VERSION_RECORDS,
};
use goblin::elf::dynamic::{DT_NEEDED, DT_RPATH, DT_VERNEED, DT_VERNEEDNUM};

/// Writes the low `n` bytes of `v`, little-endian, at `at`.
fn put(f: &mut [u8], at: usize, v: u64, n: usize) {
    f[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
}

/// A small ELF64 executable whose `.shstrtab` lies `gap` bytes before its section
/// table, after `filler` (lld's layout, with a `.strtab` of `gap` bytes).
fn far_shstrtab_elf(filler: &[u8], gap: usize) -> Vec<u8> {
    let names = b"\0.shstrtab\0.debug_info\0";
    let mut f = vec![0u8; 0x1000];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4..7].copy_from_slice(&[2, 1, 1]);
    put(&mut f, 16, 2, 2); // ET_EXEC
    put(&mut f, 18, 62, 2); // x86-64
    put(&mut f, 20, 1, 4);
    put(&mut f, 32, 64, 8); // e_phoff
    put(&mut f, 52, 64, 2);
    put(&mut f, 54, 56, 2);
    put(&mut f, 56, 1, 2);
    put(&mut f, 58, 64, 2);
    put(&mut f, 60, 3, 2);
    put(&mut f, 62, 1, 2); // e_shstrndx
    for (at, v) in [
        (64, 1u64),
        (68, 5),
        (72, 0),
        (80, 0x40_0000),
        (88, 0x40_0000),
        (96, 0x1000),
        (104, 0x1000),
        (112, 0x1000),
    ] {
        put(&mut f, at, v, if at == 64 || at == 68 { 4 } else { 8 });
    }
    f.extend_from_slice(filler);
    let names_at = f.len() as u64;
    f.extend_from_slice(names);
    f.resize(f.len() + gap, b'x');
    let shoff = f.len() as u64;
    put(&mut f, 40, shoff, 8);
    let mut sh = vec![0u8; 3 * 64];
    for (i, (name, typ, off, size)) in [
        (1u64, 3u64, names_at, names.len() as u64),
        (11, 1, 0x1000, 16),
    ]
    .into_iter()
    .enumerate()
    {
        let b = (i + 1) * 64;
        put(&mut sh, b, name, 4);
        put(&mut sh, b + 4, typ, 4);
        put(&mut sh, b + 24, off, 8);
        put(&mut sh, b + 32, size, 8);
    }
    f.extend_from_slice(&sh);
    f
}

/// A shared object with forged dynamic lists: `needed` DT_NEEDED names, one DT_RPATH of
/// `dirs` directories, and `verneeds` version-requirement entries that all share one
/// chain of `aux` versions (verneeds × aux versions for a naive reader).
fn forged_dynamic_elf(needed: usize, dirs: usize, verneeds: usize, aux: usize) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    // Strings: libc name, one version name, the needed names, the rpath.
    let mut strtab = b"\0libc.so.6\0GLIBC_2.2.5\0".to_vec();
    let mut needed_at = Vec::new();
    for i in 0..needed {
        needed_at.push(strtab.len() as u64);
        strtab.extend_from_slice(format!("lib{i}.so\0").as_bytes());
    }
    let rpath_at = strtab.len() as u64;
    let rpath: Vec<String> = (0..dirs).map(|i| format!("/r/{i}")).collect();
    strtab.extend_from_slice(rpath.join(":").as_bytes());
    strtab.push(0);
    let mut f = vec![0u8; 0x100];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4..7].copy_from_slice(&[2, 1, 1]);
    put(&mut f, 16, 3, 2); // ET_DYN
    put(&mut f, 18, 62, 2);
    put(&mut f, 20, 1, 4);
    put(&mut f, 32, 64, 8); // e_phoff
    put(&mut f, 52, 64, 2);
    put(&mut f, 54, 56, 2);
    put(&mut f, 56, 2, 2); // PT_LOAD, PT_DYNAMIC
    let str_off = f.len() as u64;
    f.extend_from_slice(&strtab);
    f.resize(f.len().next_multiple_of(16), 0);
    let vn_off = f.len() as u64;
    let aux_off = vn_off + 16 * verneeds as u64;
    for i in 0..verneeds as u64 {
        let mut e = [0u8; 16];
        e[..2].copy_from_slice(&1u16.to_le_bytes());
        e[2..4].copy_from_slice(&(aux as u16).to_le_bytes());
        e[4..8].copy_from_slice(&1u32.to_le_bytes()); // "libc.so.6"
        e[8..12].copy_from_slice(&((aux_off - (vn_off + 16 * i)) as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(if i + 1 < verneeds as u64 { 16u32 } else { 0 }).to_le_bytes());
        f.extend_from_slice(&e);
    }
    for j in 0..aux {
        let mut e = [0u8; 16];
        e[8..12].copy_from_slice(&11u32.to_le_bytes()); // "GLIBC_2.2.5"
        e[12..16].copy_from_slice(&(if j + 1 < aux { 16u32 } else { 0 }).to_le_bytes());
        f.extend_from_slice(&e);
    }
    let dyn_off = f.len() as u64;
    let mut dynamic = vec![
        (5u64, BASE + str_off),
        (10, strtab.len() as u64),
        (DT_RPATH, rpath_at),
    ];
    dynamic.extend(needed_at.iter().map(|&o| (DT_NEEDED, o)));
    if verneeds > 0 {
        dynamic.extend([
            (DT_VERNEED, BASE + vn_off),
            (DT_VERNEEDNUM, verneeds as u64),
        ]);
    }
    dynamic.push((0, 0));
    for (tag, val) in &dynamic {
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&val.to_le_bytes());
    }
    let end = f.len() as u64;
    // PT_LOAD over the whole file, PT_DYNAMIC over the dynamic section.
    for (i, (typ, off, size)) in [(1u64, 0u64, end), (2, dyn_off, end - dyn_off)]
        .into_iter()
        .enumerate()
    {
        let b = 64 + i * 56;
        put(&mut f, b, typ, 4);
        put(&mut f, b + 4, 4, 4); // PF_R
        put(&mut f, b + 8, off, 8);
        put(&mut f, b + 16, BASE + off, 8);
        put(&mut f, b + 24, BASE + off, 8);
        put(&mut f, b + 32, size, 8);
        put(&mut f, b + 40, size, 8);
    }
    f
}

#[test]
fn forged_dynamic_lists_are_cut_and_marked() {
    // Within the bounds: everything is read.
    let (e, _) = sparse(&forged_dynamic_elf(3, 4, 2, 3));
    assert_eq!(e.needed, ["lib0.so", "lib1.so", "lib2.so"]);
    assert_eq!(e.rpath, ["/r/0", "/r/1", "/r/2", "/r/3"]);
    assert_eq!(
        e.version_needs
            .iter()
            .map(|v| v.versions.len())
            .sum::<usize>(),
        6
    );
    assert!(e.incomplete.is_empty(), "{:?}", e.incomplete);
    // Past them: cut at the bound and said.
    let (e, _) = sparse(&forged_dynamic_elf(
        MAX_ELF_NEEDED + 500,
        MAX_ELF_SEARCH_DIRS * 4,
        2000,
        100,
    ));
    assert_eq!(e.needed.len(), MAX_ELF_NEEDED);
    assert_eq!(e.rpath.len(), MAX_ELF_SEARCH_DIRS);
    let versions: usize = e.version_needs.iter().map(|v| v.versions.len()).sum();
    assert_eq!(versions, MAX_ELF_VERSIONS);
    for want in [
        "needed libraries (more than",
        "rpath (more than",
        "symbol version requirements",
    ] {
        assert!(
            e.incomplete.iter().any(|i| i.starts_with(want)),
            "{want}: {:?}",
            e.incomplete
        );
    }
}

#[test]
fn version_record_chains_are_cut_at_the_bound() {
    // Whole capture, so the records past the bound are present: only the bound stops them.
    let whole = |file: &[u8]| {
        let mut s = ElfScanner::new(file.len() as u64, &Limits::default()).unwrap();
        for c in file.chunks(4093) {
            s.feed(c);
        }
        s.finish().unwrap()
    };
    let at_bound = MAX_ELF_VERSION_RECORDS as usize;
    let e = whole(&forged_dynamic_elf(0, 0, at_bound, 0));
    assert_eq!(e.version_needs.len(), at_bound);
    assert!(e.incomplete.is_empty(), "{:?}", e.incomplete);
    let e = whole(&forged_dynamic_elf(0, 0, at_bound + 1000, 0));
    assert_eq!(e.version_needs.len(), at_bound);
    assert_eq!(e.incomplete, ["symbol version requirements"]);
}

/// An ELF64 executable whose only program header is a `PT_INTERP` holding `interp`.
fn interp_elf(interp: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 0x100];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4..7].copy_from_slice(&[2, 1, 1]);
    put(&mut f, 16, 2, 2); // ET_EXEC
    put(&mut f, 18, 62, 2);
    put(&mut f, 20, 1, 4);
    put(&mut f, 32, 64, 8); // e_phoff
    put(&mut f, 52, 64, 2);
    put(&mut f, 54, 56, 2);
    put(&mut f, 56, 1, 2);
    put(&mut f, 64, 3, 4); // PT_INTERP
    put(&mut f, 64 + 8, 0x100, 8);
    put(&mut f, 64 + 32, interp.len() as u64, 8);
    f.extend_from_slice(interp);
    f
}

#[test]
fn interpreter_past_path_max_is_not_read() {
    let (e, _) = sparse(&interp_elf(b"/lib/ld-musl-x86_64.so.1\0"));
    assert_eq!(e.interpreter.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
    assert_eq!(e.interpreter_problem, None);
    let mut long = vec![b'a'; MAX_ELF_INTERP_BYTES as usize];
    long[0] = b'/';
    *long.last_mut().unwrap() = 0;
    let (e, _) = sparse(&interp_elf(&long));
    assert_eq!(
        e.interpreter.as_ref().map(String::len),
        Some(long.len() - 1)
    );
    assert_eq!(e.interpreter_problem, None);
    long.insert(1, b'a');
    let (e, _) = sparse(&interp_elf(&long));
    assert_eq!(e.interpreter.as_deref(), Some(""));
    assert_eq!(
        e.interpreter_problem.as_deref(),
        Some("PT_INTERP is 4097 bytes long")
    );
}

/// The `UPX!` marker counts only inside the first `UPX_MAGIC_WINDOW_BYTES` of the file.
#[test]
fn upx_marker_is_searched_in_the_window_only() {
    use crate::limits::UPX_MAGIC_WINDOW_BYTES;
    let window = UPX_MAGIC_WINDOW_BYTES as usize;
    let upx_at = |at: usize| {
        let mut f = interp_elf(b"/lib/ld-musl-x86_64.so.1\0");
        f.resize(2 * window, 0);
        f[at..at + 4].copy_from_slice(b"UPX!");
        let mut s = ElfScanner::new(f.len() as u64, &Limits::default()).unwrap();
        s.feed(&f);
        s.finish().unwrap().upx
    };
    assert!(upx_at(window - 5), "one byte inside the window's end");
    assert!(upx_at(window - 4), "ending at the window's last byte");
    assert!(!upx_at(window - 3), "its last byte past the window");
    assert!(!upx_at(window));
}

fn sparse(file: &[u8]) -> (ElfInfo, u64) {
    let limits = Limits {
        elf_full_capture_max: 0,
        ..Limits::default()
    };
    let mut s = ElfScanner::new(file.len() as u64, &limits).unwrap();
    for c in file.chunks(4093) {
        s.feed(c);
    }
    let captured = s.cap.captured_bytes();
    (s.finish().unwrap(), captured)
}

#[test]
fn far_shstrtab_is_kept_from_the_look_back() {
    let file = far_shstrtab_elf(&vec![b'y'; 300 << 10], 3 * SHT_TAIL_BYTES as usize);
    let (e, _) = sparse(&file);
    assert!(e.incomplete.is_empty(), "{:?}", e.incomplete);
    assert!(e.debug.dwarf);
}

#[test]
fn shstrtab_decoys_are_bounded() {
    // Thousands of decoy names before the real table: a few windows are kept, then the
    // scan stops; the names are reported missing, the capture stays small.
    let decoys = b"\0.shstrtab".repeat(30_000);
    let file = far_shstrtab_elf(&decoys, 3 * SHT_TAIL_BYTES as usize);
    let (e, captured) = sparse(&file);
    assert_eq!(e.incomplete, vec!["section names".to_string()]);
    let bound = PREFIX_BYTES + SHT_TAIL_BYTES + 3 * 64 + MAX_NAMES_HITS as u64 * 2 * NAMES_WINDOW;
    assert!(captured <= bound, "{captured} > {bound}");
}

#[test]
fn rejects_garbage_without_panicking() {
    let limits = Limits::default();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [0usize, 4, 16, 52, 63, 64, 200, 4096] {
        for _ in 0..200 {
            let mut v = vec![0u8; len];
            for b in &mut v {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if len >= 6 {
                v[..4].copy_from_slice(b"\x7fELF");
                v[4] = 1 + (x as u8 & 1);
                v[5] = 1 + ((x >> 8) as u8 & 1);
            }
            let mut s = ElfScanner::new(len as u64, &limits).unwrap();
            for c in v.chunks(7) {
                s.feed(c);
            }
            let _ = s.finish();
        }
    }
}
