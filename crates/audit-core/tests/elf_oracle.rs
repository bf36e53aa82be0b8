//! Every fixture binary, and real binaries from the machine's own packages, inspected by
//! imgaudit and compared with independent oracles: `readelf` for linkage and loader facts,
//! `go version -m` (Go 1.27) for build info. Each file is inspected twice: captured whole,
//! and captured sparsely through a small, odd-sized read buffer (the mode large binaries
//! use), so the streaming inspector's seams are exercised.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use audit_core::content_plan;
use audit_core::inspect::go::BuildInfoSource;
use audit_core::inspect::{inspect_reader, ElfInfo};
use audit_core::Limits;

/// Real third-party binaries `.ci/run` installs (Debian packages), judged against the same
/// oracles. A missing one fails the test: CI must install it.
const SYSTEM: &[&str] = &[
    "/usr/bin/ls",
    "/usr/bin/bash",
    "/bin/busybox",
    "/usr/bin/skopeo",
    "/usr/bin/umoci",
    "/usr/bin/docker-registry",
    "/usr/bin/shfmt",
    "/usr/bin/esbuild",
    "/usr/lib/go-1.19/bin/go",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libz.so.1",
];

/// Debian's Go 1.19 sources (`golang-1.19-src`, a dependency of `golang-1.19-go`).
const GO_SRC: &str = "/usr/share/go-1.19/src";
/// Linked ELF files among them (the rest are relocatable objects).
const GO_TESTDATA: &[&str] = &[
    "debug/elf/testdata/gcc-386-freebsd-exec",
    "debug/elf/testdata/gcc-amd64-linux-exec",
    "debug/elf/testdata/go-relocation-test-gcc930-ranges-no-rela-x86-64",
    "runtime/pprof/testdata/test32",
    "runtime/pprof/testdata/test64be",
];

fn corpus() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![common::out("bin")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .map(|b| b.starts_with(b"\x7fELF"))
                .unwrap_or(false)
            {
                v.push(p);
            }
        }
    }
    v.sort();
    for s in SYSTEM {
        let p = PathBuf::from(s);
        assert!(p.exists(), "{s} is missing; .ci/run installs it (busybox-static, skopeo, umoci, docker-registry, shfmt, esbuild, golang-1.19-go, zlib1g)");
        v.push(std::fs::canonicalize(p).unwrap());
    }
    // ELF test data of Debian's Go 1.19 source package: foreign OS ABIs (FreeBSD), machines
    // (i386, big-endian PowerPC) and an empty PT_INTERP.
    for f in GO_TESTDATA {
        let p = PathBuf::from(GO_SRC).join(f);
        assert!(
            p.exists(),
            "{} is missing; .ci/run installs golang-1.19-go",
            p.display()
        );
        v.push(p);
    }
    // The real toolchain binary (the venv's `go` is a Python launcher).
    let (_, goroot, _) = common::run(Command::new(common::go_tool()).args(["env", "GOROOT"]));
    v.push(PathBuf::from(goroot.trim()).join("bin/go"));
    v
}

fn inspect(p: &Path, sparse: bool) -> ElfInfo {
    let mut limits = Limits::default();
    let chunk = if sparse {
        limits.elf_full_capture_max = 0;
        4093
    } else {
        limits.elf_full_capture_max = u64::MAX;
        256 << 10
    };
    let size = std::fs::metadata(p).unwrap().len();
    let mut f = std::fs::File::open(p).unwrap();
    let facts = inspect_reader("x", size, &mut f, &limits, content_plan(), chunk)
        .unwrap()
        .expect("ELF facts");
    if let Some(e) = &facts.elf_error {
        panic!("{}: {e}", p.display());
    }
    facts.elf.clone().unwrap()
}

/// What `readelf -hldSVnW` says, parsed.
#[derive(Debug, Default)]
struct Readelf {
    e_type: String,
    os_abi: String,
    interp: Option<String>,
    /// A `PT_INTERP` readelf cannot read a name from.
    interp_unnamed: bool,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    soname: Option<String>,
    bind_now: bool,
    pie_flag: bool,
    relro: bool,
    stack_exec: Option<bool>,
    symtab: bool,
    dwarf: bool,
    gnu_build_id: Option<String>,
    verneed: BTreeMap<String, Vec<String>>,
    verdef: Vec<String>,
}

fn bracket(line: &str) -> Option<String> {
    let a = line.find('[')?;
    let b = line.rfind(']')?;
    Some(line[a + 1..b].to_string())
}

fn readelf(p: &Path) -> Readelf {
    let (ok, out, err) = common::run(Command::new("readelf").args(["-hldSVnW"]).arg(p));
    assert!(
        ok || !out.is_empty(),
        "readelf failed on {}: {err}",
        p.display()
    );
    let mut r = Readelf {
        interp_unnamed: err.contains("Unable to find program interpreter name"),
        ..Readelf::default()
    };
    let mut section = "";
    let mut cur_file: Option<String> = None;
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("Version needs section") {
            section = "verneed";
            continue;
        }
        if t.starts_with("Version definition section") {
            section = "verdef";
            continue;
        }
        if t.starts_with("Version symbols section")
            || t.starts_with("Displaying notes")
            || t.is_empty()
        {
            section = "";
        }
        if let Some(v) = t.strip_prefix("OS/ABI:") {
            r.os_abi = v.trim().to_string();
        }
        if let Some(v) = t.strip_prefix("Type:") {
            r.e_type = v.split_whitespace().next().unwrap_or("").to_string();
        }
        if t.starts_with("[Requesting program interpreter:") {
            r.interp = t
                .trim_start_matches("[Requesting program interpreter: ")
                .strip_suffix(']')
                .map(str::to_string);
        }
        if t.contains("(NEEDED)") {
            r.needed.push(bracket(t).unwrap());
        }
        if t.contains("(RPATH)") {
            r.rpath
                .extend(bracket(t).unwrap().split(':').map(str::to_string));
        }
        if t.contains("(RUNPATH)") {
            r.runpath
                .extend(bracket(t).unwrap().split(':').map(str::to_string));
        }
        if t.contains("(SONAME)") {
            r.soname = bracket(t);
        }
        if t.contains("(BIND_NOW)")
            || (t.contains("(FLAGS)") && t.contains("BIND_NOW"))
            || (t.contains("(FLAGS_1)") && t.contains(" NOW"))
        {
            r.bind_now = true;
        }
        if t.contains("(FLAGS_1)") && t.contains("PIE") {
            r.pie_flag = true;
        }
        if t.starts_with("GNU_RELRO") {
            r.relro = true;
        }
        if t.starts_with("GNU_STACK") {
            r.stack_exec =
                Some(t.contains(" RWE ") || t.split_whitespace().any(|w| w == "RWE" || w == "E"));
        }
        if t.starts_with('[') && t.contains(']') {
            let cols: Vec<&str> = t[t.find(']').unwrap() + 1..].split_whitespace().collect();
            if cols.len() >= 2 {
                if cols[1] == "SYMTAB" {
                    r.symtab = true;
                }
                if cols[0].starts_with(".debug_") || cols[0].starts_with(".zdebug_") {
                    r.dwarf = true;
                }
            }
        }
        if let Some(id) = t.split("Build ID: ").nth(1) {
            r.gnu_build_id = Some(id.trim().to_string());
        }
        match section {
            "verneed" => {
                if let Some(f) = t.split("File: ").nth(1) {
                    let name = f.split_whitespace().next().unwrap().to_string();
                    r.verneed.entry(name.clone()).or_default();
                    cur_file = Some(name);
                } else if let (Some(n), Some(f)) = (t.split("Name: ").nth(1), &cur_file) {
                    r.verneed
                        .get_mut(f)
                        .unwrap()
                        .push(n.split_whitespace().next().unwrap().to_string());
                }
            }
            "verdef" => {
                if let Some(n) = t.split("Name: ").nth(1) {
                    if !t.contains("Flags: BASE") {
                        r.verdef.push(n.trim().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    r
}

fn compare_elf(p: &Path, e: &ElfInfo, r: &Readelf, mode: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |what: &str, ours: String, theirs: String| {
        if ours != theirs {
            bad.push(format!(
                "{} [{mode}] {what}: imgaudit {ours:?} vs readelf {theirs:?}",
                p.display()
            ));
        }
    };
    let e_type = match e.e_type {
        2 => "EXEC",
        3 => "DYN",
        1 => "REL",
        _ => "?",
    };
    check("e_type", e_type.into(), r.e_type.clone());
    // readelf's names (binutils `get_osabi_name`) for the values imgaudit names.
    let os_abi = match e.os() {
        None => "UNIX - System V",
        Some("linux") => "UNIX - GNU",
        Some("freebsd") => "UNIX - FreeBSD",
        Some("netbsd") => "UNIX - NetBSD",
        Some("openbsd") => "UNIX - OpenBSD",
        Some(other) => other,
    };
    check("os/abi", os_abi.into(), r.os_abi.clone());
    // readelf cannot name an interpreter the kernel would refuse either.
    let ours = match &e.interpreter_problem {
        Some(_) => None,
        None => e.interpreter.as_ref(),
    };
    check(
        "interpreter",
        format!("{ours:?}"),
        format!("{:?}", r.interp),
    );
    check(
        "malformed interpreter",
        e.interpreter_problem.is_some().to_string(),
        r.interp_unnamed.to_string(),
    );
    check(
        "needed",
        format!("{:?}", e.needed),
        format!("{:?}", r.needed),
    );
    check("rpath", format!("{:?}", e.rpath), format!("{:?}", r.rpath));
    check(
        "runpath",
        format!("{:?}", e.runpath),
        format!("{:?}", r.runpath),
    );
    check(
        "soname",
        format!("{:?}", e.soname),
        format!("{:?}", r.soname),
    );
    check("bind_now", e.bind_now.to_string(), r.bind_now.to_string());
    check(
        "relro",
        (e.relro != audit_core::inspect::elf::Relro::None
            && e.relro != audit_core::inspect::elf::Relro::NotApplicable)
            .to_string(),
        r.relro.to_string(),
    );
    check(
        "nx_stack",
        e.nx_stack.to_string(),
        r.stack_exec.is_some_and(|x| !x).to_string(),
    );
    check("symtab", e.symtab.to_string(), r.symtab.to_string());
    check("dwarf", e.debug.dwarf.to_string(), r.dwarf.to_string());
    check(
        "gnu build id",
        format!("{:?}", e.build_id),
        format!("{:?}", r.gnu_build_id),
    );
    let ours: BTreeMap<String, Vec<String>> = e
        .version_needs
        .iter()
        .map(|n| (n.file.clone(), n.versions.clone()))
        .collect();
    let mut theirs = r.verneed.clone();
    for v in theirs.values_mut() {
        v.sort();
    }
    let mut ours_sorted = ours.clone();
    for v in ours_sorted.values_mut() {
        v.sort();
    }
    check(
        "version needs",
        format!("{ours_sorted:?}"),
        format!("{theirs:?}"),
    );
    check(
        "version defs",
        format!("{:?}", e.version_defs),
        format!("{:?}", r.verdef),
    );
    if r.pie_flag {
        check("pie", e.pie.to_string(), "true".into());
    }
    if !e.incomplete.is_empty() {
        bad.push(format!(
            "{} [{mode}] incomplete facts: {:?}",
            p.display(),
            e.incomplete
        ));
    }
    bad
}

#[test]
fn elf_facts_match_readelf_and_go_version_m() {
    let go = common::go_tool();
    let mut failures = Vec::new();
    let mut go_checked = 0;
    let mut elf_checked = 0;
    for p in corpus() {
        let r = readelf(&p);
        let (gv_ok, gv_out, _) = common::run(Command::new(&go).args(["version", "-m"]).arg(&p));
        for sparse in [false, true] {
            let mode = if sparse { "sparse" } else { "whole" };
            let e = inspect(&p, sparse);
            failures.extend(compare_elf(&p, &e, &r, mode));
            elf_checked += 1;
            let label = p.display().to_string();
            match (gv_ok && !gv_out.is_empty(), e.go.as_ref()) {
                (true, Some(g)) => {
                    let ours = g
                        .build_info
                        .as_ref()
                        .map(|b| b.render_go_version_m(&label))
                        .unwrap_or_default();
                    let src_ok = matches!(
                        g.source,
                        Some(BuildInfoSource::Section | BuildInfoSource::Segment)
                    );
                    if ours != gv_out || !src_ok {
                        failures
                            .push(format!("{label} [{mode}] build info differs from go version -m:\n--- go\n{gv_out}--- imgaudit ({:?})\n{ours}", g.source));
                    }
                    go_checked += 1;
                }
                (true, None) => failures.push(format!(
                    "{label} [{mode}] go version -m reads it but imgaudit says not Go"
                )),
                (false, Some(g)) => {
                    // Go cannot read it: ours must say why (removed blob, recovered or not).
                    if matches!(
                        g.source,
                        Some(BuildInfoSource::Section | BuildInfoSource::Segment)
                    ) {
                        failures.push(format!("{label} [{mode}] imgaudit read a build-info blob go version -m does not see"));
                    }
                }
                (false, None) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        go_checked >= 20,
        "only {go_checked} Go build infos compared"
    );
    eprintln!("compared {elf_checked} ELF inspections with readelf and {go_checked} build infos with go version -m");
}

/// The removed-build-info fixture: `go version -m` fails, imgaudit recovers the module list
/// from `.rodata` and says so — in both capture modes.
#[test]
fn build_info_recovered_after_objcopy() {
    let p = common::out("bin/app-nobuildinfo");
    let orig = common::out("bin/app-unstripped");
    for sparse in [false, true] {
        let e = inspect(&p, sparse);
        let g = e.go.expect("still Go");
        assert_eq!(g.source, Some(BuildInfoSource::Rodata), "sparse={sparse}");
        let want = inspect(&orig, sparse).go.unwrap().build_info.unwrap();
        let got = g.build_info.unwrap();
        assert_eq!(got.go_version, want.go_version);
        assert_eq!(got.path, want.path);
        assert_eq!(got.deps, want.deps);
        assert_eq!(got.settings, want.settings);
    }
}

/// Package-use facts (for FS010/FS011) agree between capture modes and with the symbol
/// table where one exists.
#[test]
fn go_package_use_from_pclntab() {
    for name in [
        "app-static",
        "app-unstripped",
        "app-cgo-glibc",
        "app-race",
        "tool",
    ] {
        let p = common::out(&format!("bin/{name}"));
        let whole = inspect(&p, false).go.unwrap().uses.expect("pclntab read");
        let sparse = inspect(&p, true).go.unwrap().uses.expect("pclntab read");
        assert_eq!(whole, sparse, "{name}");
        if name.starts_with("app") {
            assert!(
                whole.crypto_tls && whole.time_load_location && !whole.time_tzdata,
                "{name}: {whole:?}"
            );
        }
        if name == "app-race" {
            assert!(whole.race);
        }
    }
}

/// Yields a file in reads that end at chosen offsets, then in 4093-byte reads.
struct Seams<'a> {
    data: &'a [u8],
    pos: usize,
    cuts: Vec<usize>,
}

impl std::io::Read for Seams<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let next_cut = self.cuts.iter().copied().find(|&c| c > self.pos);
        let end = next_cut
            .unwrap_or(self.pos + 4093)
            .min(self.data.len())
            .min(self.pos + buf.len());
        let n = end - self.pos;
        buf[..n].copy_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(n)
    }
}

/// A pclntab magic split across two reads. Without a section table (forged here: the
/// header's section fields zeroed, as `sstrip` leaves a file) the pclntab is only found by
/// scanning the stream for its magic, and a sparsely captured binary (every Go binary over
/// 1 MiB) must keep the part of a match that passed with the previous read, or the Go
/// release range and package use depend on where the decoder ends a read. Found by
/// `fuzz/` (target `file`).
#[test]
fn pclntab_magic_across_a_read_seam() {
    let mut data = std::fs::read(common::out("bin/app-static")).unwrap();
    // ELF64: e_shoff at 40 (8 bytes), e_shnum at 60, e_shstrndx at 62 (2 bytes each).
    data[40..48].fill(0);
    data[60..64].fill(0);
    let limits = Limits::default();
    let read = |cuts: Vec<usize>| {
        let mut r = Seams {
            data: &data,
            pos: 0,
            cuts,
        };
        let facts = inspect_reader(
            "x",
            data.len() as u64,
            &mut r,
            &limits,
            content_plan(),
            1 << 18,
        )
        .unwrap();
        facts.unwrap().elf.unwrap().go.unwrap()
    };
    let plain = read(Vec::new());
    assert_eq!(plain.pclntab, Some("go1.20+"));
    assert!(plain.uses.is_some());
    // Go 1.20+ magic, two zero bytes, instruction quantum 1, pointer size 8.
    let magic = b"\xf1\xff\xff\xff\x00\x00\x01\x08";
    let at = data
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("pclntab magic");
    for split in 1..6 {
        let go = read(vec![at + split]);
        assert_eq!(
            (go.pclntab, go.uses),
            (plain.pclntab, plain.uses),
            "magic split after {split} bytes"
        );
    }
}
