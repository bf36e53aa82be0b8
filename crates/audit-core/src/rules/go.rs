//! GO rules: can every executable start, and is every Go binary built for production.

use std::borrow::Cow;

use super::{Binary, Doc, Family, Rule, RuleCx, Sink};
use crate::finding::{Detail, Evidence, Severity};
use crate::inspect::go::{BuildInfo, BuildInfoSource, GoFacts, GoVersion};
use crate::system::ldso::InterpreterStatus;

/// Go major releases with their release month, newest last. The Go project supports the
/// two newest major releases (go.dev/doc/devel/release#policy).
const GO_RELEASES: &[(u32, &str)] = &[
    (18, "2022-03"),
    (19, "2022-08"),
    (20, "2023-02"),
    (21, "2023-08"),
    (22, "2024-02"),
    (23, "2024-08"),
    (24, "2025-02"),
    (25, "2025-08"),
    (26, "2026-02"),
    (27, "2026-08"),
];

/// The Go release table and the date support is judged at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoReleases {
    /// `(minor, "YYYY-MM")` of each `go1.minor` release, oldest first.
    pub releases: Vec<(u32, String)>,
    /// Today, as `YYYY-MM-DD` or `YYYY-MM` (the caller passes the clock; the library never
    /// reads it).
    pub today: Option<String>,
    /// Override: the oldest supported minor version (`go1.N`).
    pub min_supported: Option<u32>,
}

impl GoReleases {
    /// The table compiled into this version of imgaudit.
    pub fn builtin() -> Self {
        Self {
            releases: GO_RELEASES
                .iter()
                .map(|(m, d)| (*m, (*d).to_string()))
                .collect(),
            today: None,
            min_supported: None,
        }
    }

    /// The oldest supported `go1.N`: the second newest release, or the newest one when the
    /// table is more than six months old at `today` (a release it does not know has
    /// shipped since).
    pub fn floor(&self) -> u32 {
        if let Some(m) = self.min_supported {
            return m;
        }
        let Some((newest, date)) = self.releases.last() else {
            return 0;
        };
        let stale = self
            .today
            .as_deref()
            .is_some_and(|t| months(t).zip(months(date)).is_some_and(|(t, d)| t >= d + 6));
        if stale {
            *newest
        } else {
            newest.saturating_sub(1)
        }
    }
}

/// Months since year 0 of a `YYYY-MM` month or a `YYYY-MM-DD` date.
fn months(date: &str) -> Option<i64> {
    let d = crate::date::parse(date).or_else(|| crate::date::parse(&format!("{date}-01")))?;
    Some(i64::from(d.year()) * 12 + i64::from(u8::from(d.month())))
}

fn go_of(b: &Binary) -> Option<&GoFacts> {
    b.elf().go.as_ref()
}

fn info_of(b: &Binary) -> Option<&BuildInfo> {
    go_of(b)?.build_info.as_ref()
}

/// Evidence for a binary, with its Go identity when known.
fn ev(cx: &RuleCx<'_>, b: &Binary) -> Evidence {
    let mut e = cx.file(&b.path, b.node.layer);
    if let Some(bi) = info_of(b) {
        e.detail = Some(Detail::GoBinary {
            go_version: bi.go_version.clone(),
            path: bi.path.clone().unwrap_or_default(),
            version: bi
                .main
                .as_ref()
                .map(|m| m.version.clone())
                .unwrap_or_default(),
        });
    }
    e
}

fn display(b: &Binary) -> String {
    crate::path::display(&b.path)
}

/// GO001
pub(super) const GO001: Rule = Rule {
    id: "GO001",
    name: "interpreter-missing",
    family: Family::Go,
    severity: Severity::Critical,
    summary: "A dynamically linked executable's ELF interpreter is missing from the image",
    remediation: "Build a static binary (CGO_ENABLED=0) or use a base image that ships this loader (distroless/base or cc for glibc, alpine for musl).",
    doc: Doc {
        what: "An ELF executable with a `PT_INTERP` program header (it is dynamically linked) whose interpreter — `/lib64/ld-linux-x86-64.so.2` for glibc on amd64, `/lib/ld-musl-x86_64.so.1` for musl — does not exist in the image's merged filesystem, or exists but is not an ELF file for the binary's architecture, or whose `PT_INTERP` is malformed (empty, not NUL-terminated, longer than `PATH_MAX`: the kernel refuses the binary). Symlinks are followed inside the image root. Only files that can be started are checked — those with an execute bit, and the image's command and the interpreters its `#!` lines name; an ELF file for another OS or machine than the image's platform (Go's own `testdata`, for one) is listed as foreign in the report instead (as the command, it is CFG003).",
        why: "The kernel loads the interpreter before the program. When it is missing, `exec` fails with `no such file or directory` and the container dies at start, although the binary itself is right there. This is the classic result of building with cgo on Debian and copying the binary into `scratch`, `distroless/static` or Alpine.",
        fix: "Build a static binary:\n\n```dockerfile\nRUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```\n\nIf the program needs cgo, use a base image with the matching C library: `gcr.io/distroless/base-debian12` (glibc) or build on Alpine for an Alpine runtime.",
        example: "/usr/local/bin/app needs the ELF interpreter /lib64/ld-linux-x86-64.so.2, which does not exist in the image",
        references: &["ELF gABI, PT_INTERP", "https://github.com/GoogleContainerTools/distroless#why-should-i-use-distroless-images"],
    },
    needs_config: false,
    reads: &[],
    check: check_go001,
};

fn check_go001(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.binaries {
        let Some(run) = &b.run else { continue };
        let interp = b.elf().interpreter.clone().unwrap_or_default();
        let libs = match run.missing.len() {
            0 => String::new(),
            1 => format!(
                "; the needed library {} is missing too",
                run.missing[0].name
            ),
            n => format!("; {n} needed libraries are missing too"),
        };
        match &run.interpreter {
            Some(InterpreterStatus::Missing) => {
                sink.emit(format!("{} needs the ELF interpreter {interp}, which does not exist in the image{libs}", display(b)), vec![ev(cx, b)])
            }
            Some(InterpreterStatus::Unusable { path, reason }) => {
                sink.emit(format!("{} needs the ELF interpreter {interp}, but {path} is unusable: {reason}", display(b)), vec![ev(cx, b)])
            }
            Some(InterpreterStatus::Malformed { reason }) => sink.emit(
                format!("{} cannot start: its PT_INTERP is malformed ({reason}); the kernel refuses it with ENOEXEC (exec format error)", display(b)),
                vec![ev(cx, b)],
            ),
            _ => {}
        }
    }
}

/// GO002
pub(super) const GO002: Rule = Rule {
    id: "GO002",
    name: "library-unresolved",
    family: Family::Go,
    severity: Severity::Critical,
    summary: "A needed shared library, or a symbol version it must define, cannot be resolved in the image",
    remediation: "Install the library in the image (or copy it next to the binary and set RUNPATH=$ORIGIN), or link it statically.",
    doc: Doc {
        what: "A dynamically linked executable (a file with an execute bit, or the image's command; not a foreign one, see GO001) whose interpreter exists but one of its `DT_NEEDED` libraries — or a library those need — is not found by the loader's search: `DT_RPATH`/`DT_RUNPATH` (with `$ORIGIN`), `LD_LIBRARY_PATH` from the image config, `/etc/ld.so.cache`, and the default and multiarch directories for glibc; `/etc/ld-musl-ARCH.path` or its defaults for musl. It also flags symbol versions a binary needs that the resolved library does not define, such as `GLIBC_2.34` from a glibc 2.31 `libc.so.6`.",
        why: "The loader aborts before `main` with `error while loading shared libraries: libfoo.so.1: cannot open shared object file` or `version 'GLIBC_2.34' not found`. No container-image scanner checks this; `ldd` is not even present in distroless images.",
        fix: "Add the missing package to the runtime stage, or use a base image that has it (`gcr.io/distroless/cc-debian12` adds libgcc_s, libstdc++ and libgomp). For a glibc version error, build on the same (or an older) distribution release than the runtime image:\n\n```dockerfile\nFROM golang:1.27-bookworm AS build   # glibc 2.36\nFROM gcr.io/distroless/base-debian12  # glibc 2.36\n```",
        example: "/usr/local/bin/app cannot start: libz.so.1 (needed by /usr/local/bin/app) is not found",
        references: &["ld.so(8)", "musl ldso/dynlink.c"],
    },
    needs_config: false,
    reads: &[],
    check: check_go002,
};

fn check_go002(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.binaries {
        let Some(run) = &b.run else { continue };
        if !matches!(run.interpreter, Some(InterpreterStatus::Found { .. })) {
            continue;
        }
        let mut parts: Vec<String> = run
            .missing
            .iter()
            .map(|m| {
                let mut s = format!("{} (needed by {}) is not found", m.name, m.needed_by);
                if let Some(h) = &m.hint {
                    s.push_str(&format!(" — {h}"));
                }
                s
            })
            .collect();
        parts.extend(run.missing_versions.iter().map(|v| {
            format!(
                "version {} of {} (needed by {}) is not defined by {}",
                v.version, v.library, v.needed_by, v.provider
            )
        }));
        if parts.is_empty() {
            continue;
        }
        let mut e = ev(cx, b);
        if !run.missing.is_empty() {
            let searched = run.missing[0].searched.join(":");
            e.detail = Some(Detail::Note {
                text: format!("searched {searched}"),
            });
        }
        sink.emit(
            format!("{} cannot start: {}", display(b), parts.join("; ")),
            vec![e],
        );
    }
}

/// GO003
pub(super) const GO003: Rule = Rule {
    id: "GO003",
    name: "go-version-unsupported",
    family: Family::Go,
    severity: Severity::High,
    summary: "A Go binary was built with a Go release that no longer gets security fixes",
    remediation: "Rebuild with a supported Go release (one of the two newest major versions).",
    doc: Doc {
        what: "A Go binary whose build info names a Go release older than the two newest major releases. imgaudit carries a dated release table; when the table is more than six months old it assumes a newer release exists. `--go-min` overrides the floor.",
        why: "Only the two newest Go major releases receive security fixes. An older toolchain ships known standard-library vulnerabilities (net/http, crypto/tls, archive/zip …) into the image. Distribution Go packages are a common source: Debian 12's `golang-go` is Go 1.19.",
        fix: "Build with a current toolchain image and pin it:\n\n```dockerfile\nFROM golang:1.27-bookworm AS build\n```\n\nDo not install Go from the distribution's package manager in the build stage.",
        example: "/usr/local/bin/app was built with go1.19.8; Go releases older than go1.26 are out of support",
        references: &["https://go.dev/doc/devel/release#policy"],
    },
    needs_config: false,
    reads: &[],
    check: check_go003,
};

fn check_go003(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let floor = cx.settings.go.floor();
    for b in cx.product_go_binaries() {
        let Some(bi) = info_of(b) else { continue };
        let Some(v) = GoVersion::parse(&bi.go_version) else {
            continue;
        };
        if v.major == 1 && v.minor < floor {
            sink.emit(
                format!(
                    "{} was built with {}; Go releases older than go1.{floor} are out of support",
                    display(b),
                    bi.go_version
                ),
                vec![ev(cx, b)],
            );
        }
    }
}

/// GO004
pub(super) const GO004: Rule = Rule {
    id: "GO004",
    name: "go-binary-dynamic",
    family: Family::Go,
    severity: Severity::Medium,
    summary: "A Go binary is dynamically linked or built with cgo in an image without a C library",
    remediation: "Build with CGO_ENABLED=0 (and without -buildmode=pie) for a static binary.",
    doc: Doc {
        what: "A Go binary that has an ELF interpreter (dynamically linked: cgo, `net`/`os/user` through libc, or `-buildmode=pie`), or whose build settings say `CGO_ENABLED=1`, in an image that has no C library loader — a static base such as `scratch` or `distroless/static`, where only static binaries belong. In images that do ship glibc or musl, dynamic linking is a choice, not a defect, and this rule stays silent. Files that nothing can start (no execute bit, not the command) and foreign ones are not judged.",
        why: "A static base expects static binaries. A cgo build couples the binary to the build machine's libc: it fails to start (GO001) or breaks on the next base-image change. `CGO_ENABLED=1` also makes `net` and `os/user` call into libc where the pure-Go resolvers would do.",
        fix: "```dockerfile\nRUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app\n```\n\n`-buildmode=pie` also needs the loader; drop it for static images (or link static-pie externally).",
        example: "/app is dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2, CGO_ENABLED=1) but the image has no C library",
        references: &["https://pkg.go.dev/cmd/cgo", "https://github.com/GoogleContainerTools/distroless/blob/main/base/README.md"],
    },
    needs_config: false,
    reads: &[],
    check: check_go004,
};

/// Whether the image ships a glibc or musl loader (the ELF interpreter itself).
fn image_has_libc(cx: &RuleCx<'_>) -> bool {
    cx.binaries.iter().any(|b| {
        let name = crate::path::file_name(&b.path);
        name.starts_with("ld-linux") || name.starts_with("ld-musl-") || name.starts_with("ld64.so")
    })
}

fn check_go004(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    if image_has_libc(cx) {
        return;
    }
    for b in cx.product_go_binaries() {
        let Some(go) = go_of(b) else { continue };
        if !b.startable || b.foreign.is_some() {
            continue;
        }
        let elf = b.elf();
        let cgo = go
            .build_info
            .as_ref()
            .and_then(|bi| bi.setting("CGO_ENABLED"))
            == Some("1");
        let dynamic = elf.interpreter.is_some();
        if !(cgo || dynamic) {
            continue;
        }
        let how = match (dynamic, cgo) {
            (true, true) => format!("is dynamically linked (interpreter {}, CGO_ENABLED=1)", elf.interpreter.as_deref().unwrap_or("")),
            (true, false) => format!("is dynamically linked (interpreter {})", elf.interpreter.as_deref().unwrap_or("")),
            _ => "was built with CGO_ENABLED=1 (linked statically this time, but libc calls are compiled in)".to_string(),
        };
        sink.emit(
            format!("{} {how} but the image has no C library", display(b)),
            vec![ev(cx, b)],
        );
    }
}

/// GO005
pub(super) const GO005: Rule = Rule {
    id: "GO005",
    name: "go-binary-unstripped",
    family: Family::Go,
    severity: Severity::Low,
    summary: "A Go binary carries its symbol table or DWARF debug info",
    remediation: "Build with -ldflags='-s -w' (or strip the binary in the build stage).",
    doc: Doc {
        what: "A Go binary with a `.symtab` section (symbol table) or `.debug_*` / `.zdebug_*` sections (DWARF, compressed or not). Both facts are reported. Go's pclntab (function names for stack traces) is not debug info and stays either way.",
        why: "Symbols and DWARF add 20–40% to a Go binary's size and hand an attacker a map of the program. Production images do not need them; keep an unstripped copy as a build artifact for debugging.",
        fix: "```dockerfile\nRUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app\n```",
        example: "/app is not stripped: it has a .symtab symbol table and DWARF debug info",
        references: &["https://pkg.go.dev/cmd/link"],
    },
    needs_config: false,
    reads: &[],
    check: check_go005,
};

fn check_go005(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        if go_of(b).is_none() {
            continue;
        }
        let elf = b.elf();
        let what = match (elf.symtab, elf.debug.dwarf) {
            (true, true) => "a .symtab symbol table and DWARF debug info",
            (true, false) => "a .symtab symbol table",
            (false, true) => "DWARF debug info",
            (false, false) => continue,
        };
        sink.emit(
            format!("{} is not stripped: it has {what}", display(b)),
            vec![ev(cx, b)],
        );
    }
}

/// GO006
pub(super) const GO006: Rule = Rule {
    id: "GO006",
    name: "go-build-paths-embedded",
    family: Family::Go,
    severity: Severity::Low,
    summary: "A Go binary was built without -trimpath",
    remediation: "Build with go build -trimpath.",
    doc: Doc {
        what: "A Go binary whose build settings (Go 1.18+) lack `-trimpath=true`.",
        why: "Without `-trimpath` the binary embeds absolute paths of the build machine (`/home/ci/work/…`, `/root/go/pkg/mod/…`) in stack traces and debug info: it leaks the build environment and makes builds differ between machines, which defeats reproducible builds.",
        fix: "```dockerfile\nRUN go build -trimpath -o /out/app ./cmd/app\n```\n\nor set `GOFLAGS=-trimpath` in the build stage.",
        example: "/app was built without -trimpath (it embeds build-machine paths)",
        references: &["https://pkg.go.dev/cmd/go#hdr-Compile_packages_and_dependencies", "https://reproducible-builds.org/"],
    },
    needs_config: false,
    reads: &[],
    check: check_go006,
};

fn check_go006(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(bi) = info_of(b) else { continue };
        if bi.settings.is_empty() || bi.setting("-trimpath") == Some("true") {
            continue;
        }
        sink.emit(
            format!(
                "{} was built without -trimpath (it embeds build-machine paths)",
                display(b)
            ),
            vec![ev(cx, b)],
        );
    }
}

/// GO007
pub(super) const GO007: Rule = Rule {
    id: "GO007",
    name: "go-vcs-modified",
    family: Family::Go,
    severity: Severity::Medium,
    summary: "A Go binary was built from a working tree with uncommitted changes",
    remediation: "Build from a clean checkout (CI), so the binary matches its vcs.revision.",
    doc: Doc {
        what: "A Go binary whose build settings say `vcs.modified=true`: the tree it was built from had uncommitted or untracked changes.",
        why: "The `vcs.revision` stamped into the binary does not describe its source: nobody can rebuild or audit exactly what shipped. It usually means a developer build, or a CI step that wrote files into the checkout (`COPY . .` of a dirty context).",
        fix: "Build in CI from a clean checkout, and keep generated files out of the tree or in `.gitignore`/`.dockerignore`:\n\n```dockerfile\nCOPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\nRUN git status --porcelain && test -z \"$(git status --porcelain)\"\n```",
        example: "/app was built from a modified working tree (vcs.revision 1a2b3c4d, vcs.modified=true)",
        references: &["https://pkg.go.dev/runtime/debug#BuildSetting"],
    },
    needs_config: false,
    reads: &[],
    check: check_go007,
};

fn check_go007(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(bi) = info_of(b) else { continue };
        if bi.setting("vcs.modified") == Some("true") {
            let rev = bi
                .setting("vcs.revision")
                .map(|r| &r[..r.len().min(12)])
                .unwrap_or("?");
            sink.emit(format!("{} was built from a modified working tree (vcs.revision {rev}, vcs.modified=true)", display(b)), vec![ev(cx, b)]);
        }
    }
}

/// GO008
pub(super) const GO008: Rule = Rule {
    id: "GO008",
    name: "go-vcs-stamp-missing",
    family: Family::Go,
    severity: Severity::Info,
    summary: "A Go binary carries no VCS information",
    remediation: "Build inside the repository checkout with git available, and without -buildvcs=false.",
    doc: Doc {
        what: "A Go binary with build settings (Go 1.18+) but no `vcs` keys: it was built with `-buildvcs=false`, outside a repository (a `COPY . .` that left out `.git`), or without the VCS tool installed.",
        why: "`vcs.revision` and `vcs.time` tie a binary to its commit. Without them, provenance rests only on labels or tags, which are easier to get wrong.",
        fix: "Keep `.git` in the build context of the build stage (not in the final image) and let Go stamp it, or pass the revision explicitly: `-ldflags=\"-X main.revision=$(git rev-parse HEAD)\"`.",
        example: "/app has no VCS stamp (built with -buildvcs=false or outside a repository)",
        references: &["https://pkg.go.dev/cmd/go#hdr-Build_and_test_caching"],
    },
    needs_config: false,
    reads: &[],
    check: check_go008,
};

fn check_go008(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(bi) = info_of(b) else { continue };
        if bi.settings.is_empty() || bi.setting("vcs").is_some() {
            continue;
        }
        sink.emit(
            format!(
                "{} has no VCS stamp (built with -buildvcs=false or outside a repository)",
                display(b)
            ),
            vec![ev(cx, b)],
        );
    }
}

/// GO009
pub(super) const GO009: Rule = Rule {
    id: "GO009",
    name: "go-buildinfo-missing",
    family: Family::Go,
    severity: Severity::Medium,
    summary: "A Go binary has no readable build info",
    remediation: "Do not remove .go.buildinfo; build with module mode (go build in a module) and a Go release ≥ 1.18.",
    doc: Doc {
        what: "A binary that is Go (it has a Go build ID note or a Go pclntab) but whose build-info blob (`.go.buildinfo`) is missing or unreadable: removed with `objcopy`, packed with UPX, or from a toolchain older than Go 1.13. When imgaudit can still recover the module list from the copy the runtime keeps in read-only data, it reports it, and says so — `go version -m`, trivy and syft cannot.",
        why: "Build info is how vulnerability scanners and SBOM tools learn the Go version and module versions of a binary. Without it the binary is invisible to them: its dependencies cannot be inventoried or matched against advisories.",
        fix: "Ship the binary as `go build` wrote it (stripping with `-s -w` is fine; `objcopy --remove-section .go.buildinfo` and UPX are not).",
        example: "/app is a Go binary without a .go.buildinfo blob (module info recovered from read-only data: go1.26.5, github.com/evanw/esbuild)",
        references: &["https://pkg.go.dev/debug/buildinfo"],
    },
    needs_config: false,
    reads: &[],
    check: check_go009,
};

fn check_go009(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(go) = go_of(b) else { continue };
        let elf = b.elf();
        match (go.source, &go.build_info) {
            (Some(BuildInfoSource::Section | BuildInfoSource::Segment), Some(_)) => {}
            (Some(BuildInfoSource::Rodata), Some(bi)) => {
                let v = if bi.go_version.is_empty() {
                    "unknown Go version".to_string()
                } else {
                    bi.go_version.clone()
                };
                sink.emit(
                    format!(
                        "{} is a Go binary without a .go.buildinfo blob (module info recovered from read-only data: {v}, {})",
                        display(b),
                        bi.path.as_deref().unwrap_or("?")
                    ),
                    vec![ev(cx, b)],
                );
            }
            _ => {
                let why = if elf.upx {
                    "it is packed with UPX".to_string()
                } else {
                    go.build_info_error
                        .clone()
                        .unwrap_or_else(|| "no build info".into())
                };
                let hint = go
                    .pclntab
                    .map(|p| format!(" (pclntab says {p})"))
                    .unwrap_or_default();
                sink.emit(
                    format!(
                        "{} is a Go binary without readable build info: {why}{hint}",
                        display(b)
                    ),
                    vec![ev(cx, b)],
                );
            }
        }
    }
}

/// GO010
pub(super) const GO010: Rule = Rule {
    id: "GO010",
    name: "go-race-build",
    family: Family::Go,
    severity: Severity::High,
    summary: "A Go binary was built with the race detector",
    remediation: "Build release binaries without -race.",
    doc: Doc {
        what: "A Go binary built with `-race` (build setting `-race=true`, or the race runtime linked in).",
        why: "The race detector makes a program 2–20× slower and use 5–10× more memory, and it needs cgo. It is a test tool; in a runtime image it is a mistake in the release pipeline.",
        fix: "Run `go test -race` in CI, and build the shipped binary without it:\n\n```dockerfile\nRUN CGO_ENABLED=0 go build -trimpath -o /out/app ./cmd/app\n```",
        example: "/app was built with the race detector (-race=true)",
        references: &["https://go.dev/doc/articles/race_detector"],
    },
    needs_config: false,
    reads: &[],
    check: check_go010,
};

fn check_go010(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(go) = go_of(b) else { continue };
        let setting = go.build_info.as_ref().and_then(|bi| bi.setting("-race")) == Some("true");
        let linked = go.uses.is_some_and(|u| u.race);
        if setting || linked {
            let why = if setting {
                "-race=true"
            } else {
                "race runtime linked"
            };
            sink.emit(
                format!("{} was built with the race detector ({why})", display(b)),
                vec![ev(cx, b)],
            );
        }
    }
}

/// GO011
pub(super) const GO011: Rule = Rule {
    id: "GO011",
    name: "go-local-replace",
    family: Family::Go,
    severity: Severity::Low,
    summary: "A Go binary was built with a replace directive pointing at a local directory",
    remediation: "Publish the replaced module (tag a version) and depend on it, instead of replace => ../dir.",
    doc: Doc {
        what: "A Go binary whose module list has a `=>` replacement with a local filesystem path (`../lib`, `./vendor/x`, `/src/lib`).",
        why: "The binary contains code that exists only in someone's working directory: it has no version and no checksum, no one else can reproduce the build, and vulnerability databases cannot match it.",
        fix: "Tag and publish the module, then `go get example.com/lib@v1.2.3` and drop the `replace`; for multi-module repositories use a `go.work` file locally and keep `go.mod` clean.",
        example: "/app depends on example.com/localmod replaced by the local directory ../localmod",
        references: &["https://go.dev/ref/mod#go-mod-file-replace"],
    },
    needs_config: false,
    reads: &[],
    check: check_go011,
};

fn is_local_path(p: &str) -> bool {
    p.starts_with("./")
        || p.starts_with("../")
        || p.starts_with('/')
        || p == "."
        || p == ".."
        || p.get(1..3) == Some(":\\")
}

fn check_go011(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(bi) = info_of(b) else { continue };
        let local: Vec<String> = bi
            .main
            .iter()
            .chain(bi.deps.iter())
            .filter_map(|m| {
                m.replace
                    .as_ref()
                    .filter(|r| is_local_path(&r.path))
                    .map(|r| format!("{} replaced by the local directory {}", m.path, r.path))
            })
            .collect();
        if !local.is_empty() {
            sink.emit(
                format!("{} depends on {}", display(b), local.join(", ")),
                vec![ev(cx, b)],
            );
        }
    }
}

/// GO012
pub(super) const GO012: Rule = Rule {
    id: "GO012",
    name: "go-version-unstamped",
    family: Family::Go,
    severity: Severity::Info,
    summary: "A Go binary has no version: main module (devel) and no -X version stamp",
    remediation: "Stamp a version: go build -ldflags=\"-X main.version=$VERSION\", or build from a tagged commit (Go 1.24+ stamps it).",
    doc: Doc {
        what: "A Go binary whose main module version is `(devel)` (built from a working tree) and whose recorded `-ldflags` set no `-X …version…` variable. When `-trimpath` hides `-ldflags` the rule cannot tell and stays silent.",
        why: "An unversioned artifact cannot be matched to a release, and scanners cannot look up advisories for the main module (trivy and syft fall back to guessing from `-ldflags`).",
        fix: "```dockerfile\nARG VERSION\nRUN go build -trimpath -ldflags=\"-s -w -X main.version=${VERSION}\" -o /out/app ./cmd/app\n```\n\nSince Go 1.24, building from a tagged commit stamps the module version automatically.",
        example: "/app has no version: main module example.com/app is (devel) and -ldflags sets no -X version",
        references: &["https://pkg.go.dev/cmd/link (-X)", "https://go.dev/doc/go1.24#go-command"],
    },
    needs_config: false,
    reads: &[],
    check: check_go012,
};

fn check_go012(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for b in cx.product_go_binaries() {
        let Some(bi) = info_of(b) else { continue };
        let Some(main) = &bi.main else { continue };
        if main.version != "(devel)" && !main.version.is_empty() {
            continue;
        }
        if bi.setting("-trimpath") == Some("true") {
            continue; // -ldflags is not recorded: cannot tell.
        }
        let stamped = bi.setting("-ldflags").is_some_and(|f| {
            let lower = f.to_ascii_lowercase();
            lower.contains("-x") && (lower.contains("version") || lower.contains(".ver="))
        });
        if !stamped {
            sink.emit_with(
                format!(
                    "{} has no version: main module {} is (devel) and -ldflags sets no -X version",
                    display(b),
                    main.path
                ),
                vec![ev(cx, b)],
                Cow::Borrowed(GO012.remediation),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_follows_the_table_and_the_date() {
        let mut g = GoReleases::builtin();
        assert_eq!(g.floor(), 26);
        g.today = Some("2026-11".into());
        assert_eq!(g.floor(), 26);
        g.today = Some("2027-03".into());
        assert_eq!(g.floor(), 27);
        g.min_supported = Some(22);
        assert_eq!(g.floor(), 22);
    }

    #[test]
    fn local_paths() {
        assert!(is_local_path("../lib"));
        assert!(is_local_path("./x"));
        assert!(is_local_path("/src/lib"));
        assert!(!is_local_path("example.com/fork"));
    }
}
