//! "Cannot start" is a claim about what the kernel does, so the kernel is the oracle. The
//! `go-toolchain-debian` fixture is Debian's Go 1.19 toolchain (`golang-1.19-go`, copied
//! from this machine with its modes) on a base with this machine's glibc, so every ELF file
//! in it also exists on the host with the same mode and the same loader and libraries
//! around it. For each one, imgaudit's verdict is compared with a real `execve` of the host
//! copy (Python's `os.execv`, which, unlike `execvp`, does not retry a refused file as a
//! shell script). Nothing is executed from an image. See: issue #12.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use audit_core::source;
use audit_core::Auditor;
use audit_core::Report;

const GO_LIB: &str = "/usr/lib/go-1.19";
const GO_SHARE: &str = "/usr/share/go-1.19";
const CRITICAL_RUN_RULES: &[&str] = &["GO001", "GO002"];

fn audit(tag: &str) -> Report {
    let spec = format!(
        "oci:{}:{tag}",
        common::out("images/go-toolchain-debian").display()
    );
    let src = source::open_local(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    Auditor::builder()
        .today("2026-11-27")
        .build()
        .audit(&src, &spec)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
        .remove(0)
}

/// Whether the kernel starts each file: Python forks, the child `execve`s the file (stdio
/// on /dev/null) and reports a refusal's `strerror` through a close-on-exec pipe; a pipe
/// closed without a word means the exec succeeded, and the program is killed at once.
fn kernel_starts(paths: &[PathBuf]) -> Vec<Result<(), String>> {
    const SCRIPT: &str = r#"
import os, sys
null = os.open(os.devnull, os.O_RDWR)
for p in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            os.execv(p, [p, "--help"])
        except OSError as e:
            os.write(w, e.strerror.encode())
        os._exit(97)
    os.close(w)
    msg = os.read(r, 4096).decode()
    os.close(r)
    if not msg:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    os.waitpid(pid, 0)
    print("FAIL " + msg if msg else "OK", flush=True)
"#;
    let o = Command::new("python3")
        .args(["-c", SCRIPT])
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .expect("python3 (.ci/run installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let v: Vec<Result<(), String>> = out
        .lines()
        .map(|l| match l.strip_prefix("FAIL ") {
            Some(why) => Err(why.to_string()),
            None => Ok(()),
        })
        .collect();
    assert_eq!(v.len(), paths.len(), "{out}");
    v
}

/// The host file an image path was copied from (testdata/images.py,
/// `build_go_toolchain_debian`); the controls get their execute bit in a temporary copy.
fn host_copy(image_path: &str, tmp: &Path) -> Option<PathBuf> {
    let control = |src: &str| {
        let dst = tmp.join(Path::new(image_path).file_name().unwrap());
        std::fs::copy(src, &dst).unwrap();
        std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Some(dst)
    };
    match image_path {
        "/usr/local/bin/empty-interp" => control(&format!(
            "{GO_SHARE}/src/debug/elf/testdata/go-relocation-test-gcc930-ranges-no-rela-x86-64"
        )),
        "/usr/local/bin/freebsd-tool" => control(&format!(
            "{GO_SHARE}/src/debug/elf/testdata/gcc-386-freebsd-exec"
        )),
        p if p.starts_with(GO_LIB) || p.starts_with(GO_SHARE) => Some(PathBuf::from(p)),
        p if p.starts_with("/lib") || p.starts_with("/usr/lib") => Some(PathBuf::from(p)),
        _ => None,
    }
}

#[test]
fn runnability_verdicts_agree_with_the_kernel_on_debians_go_toolchain() {
    let r = audit("latest");
    let tmp = tempfile::tempdir().unwrap();
    let critical: Vec<(&str, &str)> = r
        .findings
        .iter()
        .filter(|f| CRITICAL_RUN_RULES.contains(&f.rule))
        .map(|f| (f.rule, f.evidence[0].path.as_deref().unwrap()))
        .collect();
    let hosts: Vec<PathBuf> = r
        .binaries
        .iter()
        .map(|b| {
            host_copy(&b.path, tmp.path())
                .unwrap_or_else(|| panic!("{}: no host copy known", b.path))
        })
        .collect();
    let kernel = kernel_starts(&hosts);
    let mut disagreements = Vec::new();
    for ((b, host), kernel) in r.binaries.iter().zip(&hosts).zip(&kernel) {
        let flagged = critical.iter().any(|(_, p)| *p == b.path);
        // A critical runnability finding, or `runnable: false`, must be a real refusal;
        // `runnable: true` must be a real start.
        if (flagged || b.runnable == Some(false)) && kernel.is_ok() {
            disagreements.push(format!(
                "{}: imgaudit says it cannot start, the kernel starts it",
                b.path
            ));
        }
        if let (Some(true), Err(why)) = (b.runnable, kernel) {
            disagreements.push(format!(
                "{}: imgaudit says it starts, the kernel refuses it: {why}",
                b.path
            ));
        }
        // The image keeps the host's modes; without an execute bit nothing starts a file,
        // and imgaudit gives no verdict.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(host).unwrap().permissions(),
        ) & 0o7777;
        if !b.path.starts_with("/usr/local/") {
            assert_eq!(b.mode, format!("{mode:04o}"), "{}", b.path);
        }
        if mode & 0o111 == 0 {
            assert!(
                b.runnable.is_none() && !flagged && kernel.is_err(),
                "{}: judged without an execute bit",
                b.path
            );
        }
    }
    let started = kernel.iter().filter(|k| k.is_ok()).count();
    let refused = kernel.len() - started;
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(
        started >= 20 && refused >= 20,
        "{started} started, {refused} refused"
    );
    // The one control that cannot start is the one critical finding, and says why.
    assert_eq!(critical, [("GO001", "/usr/local/bin/empty-interp")]);
    let go001 = r.findings.iter().find(|f| f.rule == "GO001").unwrap();
    assert!(
        go001.message.contains("PT_INTERP is malformed"),
        "{}",
        go001.message
    );
    // Go's ELF test data: listed, foreign where it is, never judged.
    let bin = |p: &str| {
        r.binaries
            .iter()
            .find(|b| b.path == format!("{GO_SHARE}/src/{p}"))
            .unwrap_or_else(|| panic!("{p} not listed"))
    };
    for (p, foreign) in [
        (
            "debug/elf/testdata/gcc-386-freebsd-exec",
            Some("freebsd/386"),
        ),
        ("runtime/pprof/testdata/test32", Some("386")),
        ("runtime/pprof/testdata/test64be", Some("ppc64")),
        ("debug/elf/testdata/gcc-amd64-linux-exec", None),
        (
            "debug/elf/testdata/go-relocation-test-gcc930-ranges-no-rela-x86-64",
            None,
        ),
    ] {
        let b = bin(p);
        assert_eq!(b.foreign.as_deref(), foreign, "{p}");
        assert_eq!(b.runnable, None, "{p}: foreign or without an execute bit");
    }
    assert_eq!(
        bin("debug/elf/testdata/gcc-386-freebsd-exec").elf.os,
        Some("freebsd")
    );
    assert!(r.summary.foreign >= 15, "{}", r.summary.foreign);
    assert_eq!(r.summary.not_runnable, 1);
}

#[test]
fn a_foreign_command_cannot_start() {
    let r = audit("foreign-entrypoint");
    let cfg003 = r
        .findings
        .iter()
        .find(|f| f.rule == "CFG003")
        .expect("CFG003 for the FreeBSD command");
    assert!(
        cfg003
            .message
            .contains("is built for freebsd/386 but the image is linux/amd64"),
        "{}",
        cfg003.message
    );
    let tmp = tempfile::tempdir().unwrap();
    let host = host_copy("/usr/local/bin/freebsd-tool", tmp.path()).unwrap();
    let kernel = kernel_starts(&[host]);
    assert!(kernel[0].is_err(), "the kernel starts the FreeBSD binary");
    let b = r
        .binaries
        .iter()
        .find(|b| b.path == "/usr/local/bin/freebsd-tool")
        .unwrap();
    assert_eq!(b.foreign.as_deref(), Some("freebsd/386"));
    // Foreign: no loader verdict (its loader is FreeBSD's), so no GO001 beside CFG003.
    assert!(!r
        .findings
        .iter()
        .any(|f| f.rule == "GO001" && f.evidence[0].path.as_deref() == Some(&b.path)));
}
