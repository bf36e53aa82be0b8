//! FS001–FS009: things a production Go image should not carry — shells, package managers,
//! the Go toolchain and its caches, `go install`ed tools, sources, build and network tools.
//!
//! Tools are found by name through a table (`TOOLS`), resolved through symlinks inside the
//! image, and grouped by the file they resolve to, so `/bin/sh -> dash` and busybox's
//! hundreds of applet links each make one finding. Trees (GOROOT, caches, sources) are
//! found by their markers, not by a fixed path, and reported with their size.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{human_bytes, Doc, Family, Rule, RuleCx, Sink};
use crate::finding::{Detail, Evidence, Severity};
use crate::fs::{Node, NodeKind};
use crate::inspect::reads::{ContentRead, PathMatch, ReadBound};
use crate::path;

/// One row of the tool table: which rule, which names.
pub(super) struct ToolClass {
    rule: &'static str,
    what: &'static str,
    names: &'static [&'static str],
}

pub(super) const SHELLS: ToolClass = ToolClass {
    rule: FS001.id,
    what: "shell",
    names: &[
        "sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox",
    ],
};
pub(super) const PACKAGE_MANAGERS: ToolClass = ToolClass {
    rule: FS002.id,
    what: "package manager",
    names: &[
        "apt", "apt-get", "dpkg", "apk", "yum", "dnf", "microdnf", "rpm", "zypper", "pacman",
    ],
};
pub(super) const BUILD_TOOLS: ToolClass = ToolClass {
    rule: FS008.id,
    what: "build tool",
    names: &[
        "gcc", "g++", "cc", "c++", "clang", "clang++", "ld", "ld.bfd", "ld.gold", "ld.lld", "make",
        "gmake", "git",
    ],
};
pub(super) const NET_TOOLS: ToolClass = ToolClass {
    rule: FS009.id,
    what: "network or debug tool",
    names: &[
        "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "strace", "ltrace", "gdb",
        "tcpdump",
    ],
};

/// Executables named in `class.names`, grouped by the file they resolve to.
pub(super) struct Found<'a> {
    pub(super) target: String,
    pub(super) node: &'a Node,
    pub(super) names: Vec<String>,
}

/// Whether `dir` is where commands live: a `bin`/`sbin` directory, or on the image's PATH
/// (distroless debug images put busybox in `/busybox`). Scripts that merely share a tool's
/// name (`/etc/cron.daily/dpkg`, `/usr/share/bug/dpkg`) are not the tool.
fn command_dir(path_dirs: &[String], dir: &str) -> bool {
    matches!(path::file_name(dir), "bin" | "sbin")
        || path_dirs.iter().any(|d| d.trim_matches('/') == dir)
}

pub(super) fn find_tools<'a>(cx: &RuleCx<'a>, class: &ToolClass) -> Vec<Found<'a>> {
    let mut groups: BTreeMap<String, Found<'a>> = BTreeMap::new();
    let path_dirs = cx.path_env();
    for (p, n) in cx.fs.iter() {
        if !matches!(n.kind, NodeKind::File | NodeKind::Symlink(_))
            || !class.names.contains(&path::file_name(p))
        {
            continue;
        }
        if !command_dir(&path_dirs, path::parent(p)) {
            continue;
        }
        let Ok(Some((target, node))) = cx.fs.lookup(p) else {
            continue;
        };
        if !node.is_file() || !node.is_executable() {
            continue;
        }
        // Hard links share inspection results: group them with their original.
        let key = hardlink_key(cx, &target, node);
        groups
            .entry(key)
            .or_insert_with(|| Found {
                target: target.clone(),
                node,
                names: Vec::new(),
            })
            .names
            .push(p.to_string());
    }
    groups.into_values().collect()
}

fn hardlink_key(cx: &RuleCx<'_>, target: &str, node: &Node) -> String {
    if let Some(f) = &node.facts {
        for (p, n) in cx.fs.iter() {
            if n.facts.as_ref().is_some_and(|g| Arc::ptr_eq(f, g)) {
                return p.to_string();
            }
        }
    }
    target.to_string()
}

fn emit_tools(cx: &RuleCx<'_>, sink: &mut Sink<'_>, class: &ToolClass) {
    for f in find_tools(cx, class) {
        let shown: Vec<String> = f.names.iter().map(|n| path::display(n)).collect();
        let target = path::display(&f.target);
        let tname = path::file_name(&f.target);
        let msg = if tname == "busybox" && class.rule != FS001.id {
            let applets: Vec<&str> = f.names.iter().map(|n| path::file_name(n)).collect();
            format!(
                "{} {} available as busybox applets ({}) via {target}",
                class.what,
                applets.join(", "),
                shown.join(", ")
            )
        } else if tname == "busybox" {
            let links = busybox_links(cx, &f.target);
            let shells: Vec<&str> = shown
                .iter()
                .filter(|n| **n != target)
                .map(String::as_str)
                .collect();
            format!(
                "busybox at {target} provides a shell ({}); {links} applet links in all",
                shells.join(", ")
            )
        } else if shown.len() == 1 && shown[0] == target {
            format!("{} {target} is present", class.what)
        } else {
            format!(
                "{} {target} is present (as {})",
                class.what,
                shown.join(", ")
            )
        };
        let mut evidence: Vec<Evidence> = vec![cx.file(&f.target, f.node.layer)];
        for n in &f.names {
            if *n != f.target {
                if let Some(node) = cx.fs.get(n) {
                    evidence.push(cx.file(n, node.layer));
                }
            }
        }
        sink.emit(msg, evidence);
    }
}

fn busybox_links(cx: &RuleCx<'_>, target: &str) -> usize {
    cx.fs
        .iter()
        .filter(|(p, n)| matches!(n.kind, NodeKind::Symlink(_) | NodeKind::File) && *p != target)
        .filter(|(p, _)| {
            cx.fs
                .lookup(p)
                .ok()
                .flatten()
                .is_some_and(|(t, _)| t == target)
        })
        .count()
}

/// FS001
pub(super) const FS001: Rule = Rule {
    id: "FS001",
    name: "shell-present",
    family: Family::Fs,
    severity: Severity::Medium,
    summary: "A shell is present in the image",
    remediation: "Use a base without a shell (distroless static/base, scratch) and exec-form ENTRYPOINT.",
    doc: Doc {
        what: "An executable shell: `sh`, `bash`, `ash`, `dash`, `zsh`, `ksh`, `csh`/`tcsh`, `fish`, or `busybox` (which provides `sh` and hundreds of applets). Found by name anywhere in the final filesystem, resolved through symlinks, grouped by the file the names point to.",
        why: "A Go service needs no shell. A shell is the first thing an attacker with code execution uses, and its presence is what container runtime detectors (Falco's \"shell in container\") key on. Shell-based entrypoints also hide the real process from signals.",
        fix: "```dockerfile\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n```\n\nFor debugging use `kubectl debug` with an ephemeral container instead of baking a shell in.",
        example: "busybox at /bin/busybox provides a shell (/bin/sh, /bin/ash); 269 applet links in all",
        references: &["https://github.com/GoogleContainerTools/distroless", "https://falco.org/docs/rules/"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| emit_tools(cx, sink, &SHELLS),
};

/// FS002
pub(super) const FS002: Rule = Rule {
    id: "FS002",
    name: "package-manager-present",
    family: Family::Fs,
    severity: Severity::Medium,
    summary: "A package manager is present in the image",
    remediation: "Install packages in a build stage and copy only the results into a minimal runtime image.",
    doc: Doc {
        what: "A package manager executable: `apt`, `apt-get`, `dpkg`, `apk`, `yum`, `dnf`, `microdnf`, `rpm`, `zypper`, `pacman`. Package databases alone (`/var/lib/dpkg/status`, distroless's `/var/lib/dpkg/status.d/`, `/lib/apk/db/installed`) are inventory, not a finding.",
        why: "A package manager lets anyone with a foothold install tools into the running container, and pulls in interpreters and libraries a Go binary never uses.",
        fix: "Use a multi-stage build; the runtime stage starts from distroless or scratch:\n\n```dockerfile\nFROM golang:1.27 AS build\n…\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```",
        example: "package manager /usr/bin/dpkg is present",
        references: &["https://github.com/GoogleContainerTools/distroless#why-should-i-use-distroless-images"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| emit_tools(cx, sink, &PACKAGE_MANAGERS),
};

/// The `VERSION` file of a Go toolchain tree (`go1.22.5`), wherever it is. The trees are
/// found once per image (`RuleCx::goroots`) and every rule that skips toolchain binaries
/// uses them; FS003 reports them.
const GOROOT_VERSION: ContentRead = ContentRead {
    path: PathMatch::Named("VERSION"),
    bound: ReadBound::Marker,
};

/// A Go toolchain tree found in the image.
pub(crate) struct Goroot {
    pub(crate) dir: String,
    pub(crate) version: String,
}

pub(crate) fn goroots(fs: &crate::fs::MergedFs) -> Vec<Goroot> {
    let mut out = Vec::new();
    for (p, n) in fs.iter() {
        if path::file_name(p) != "VERSION" || !n.is_file() {
            continue;
        }
        let dir = path::parent(p);
        let version = fs
            .content_of(p, n)
            .map(|c| {
                String::from_utf8_lossy(c)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        if !(version.starts_with("go1") || version.starts_with("devel")) {
            continue;
        }
        let has = |sub: &str| fs.get(&path::child(dir, sub)).is_some();
        if has("src/runtime") || has("pkg/tool") || has("bin/go") {
            out.push(Goroot {
                dir: dir.to_string(),
                version,
            });
        }
    }
    out
}

pub(crate) fn under(p: &str, dir: &str) -> bool {
    dir.is_empty() || p == dir || p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/')
}

/// FS003
pub(super) const FS003: Rule = Rule {
    id: "FS003",
    name: "go-toolchain-present",
    family: Family::Fs,
    severity: Severity::High,
    summary: "A Go toolchain is present in the image",
    remediation: "Build in a golang stage and copy only the binary into the runtime stage.",
    doc: Doc {
        what: "A GOROOT tree (a directory with a `VERSION` file saying `go1…` plus `src/runtime`, `pkg/tool` or `bin/go` — `/usr/local/go`, `/usr/lib/go-1.19`, or anywhere else), or a stray `go`/`gofmt` binary recognised by its build info (`path cmd/go`), never by name alone.",
        why: "The builder leaked into the runtime image: hundreds of MB, a compiler for an attacker, and a second, usually stale Go version to patch. It typically comes from `FROM golang` as the final stage or from a distribution `golang` package.",
        fix: "```dockerfile\nFROM golang:1.27 AS build\nWORKDIR /src\nCOPY . .\nRUN CGO_ENABLED=0 go build -trimpath -o /out/app ./cmd/app\n\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```",
        example: "Go toolchain go1.27.3 at /usr/local/go (212.4 MiB)",
        references: &["https://docs.docker.com/build/building/multi-stage/"],
    },
    needs_config: false,
    reads: &[GOROOT_VERSION],
    check: check_fs003,
};

fn check_fs003(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let roots = &cx.goroots;
    for r in roots {
        let layer = cx
            .fs
            .get(&path::child(&r.dir, "VERSION"))
            .map_or(0, |n| n.layer);
        let bytes = cx.fs.bytes_under(&r.dir);
        let mut e = cx.file(&r.dir, layer);
        e.detail = Some(Detail::Bytes { bytes });
        sink.emit(
            format!(
                "Go toolchain {} at {} ({})",
                r.version,
                path::display(&r.dir),
                human_bytes(bytes)
            ),
            vec![e],
        );
    }
    for b in cx.binaries {
        let Some(bi) = b.elf().go.as_ref().and_then(|g| g.build_info.as_ref()) else {
            continue;
        };
        let p = bi.path.as_deref().unwrap_or("");
        if !matches!(p, "cmd/go" | "cmd/gofmt") || roots.iter().any(|r| under(&b.path, &r.dir)) {
            continue;
        }
        sink.emit(
            format!(
                "Go toolchain binary {} ({p}, {}) is present",
                path::display(&b.path),
                bi.go_version
            ),
            vec![cx.file(&b.path, b.node.layer)],
        );
    }
}

/// Module cache roots: `…/pkg/mod` directories holding `cache/download` or `module@version` dirs.
pub(super) fn module_caches(cx: &RuleCx<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (p, n) in cx.fs.iter() {
        if !n.is_dir() || path::file_name(p) != "mod" || path::file_name(path::parent(p)) != "pkg" {
            continue;
        }
        let has_download = cx.fs.get(&path::child(p, "cache/download")).is_some();
        let has_versions = cx
            .fs
            .descendants(p)
            .take(crate::limits::MAX_MODULE_CACHE_SCAN)
            .any(|(k, _)| path::file_name(k).contains("@v"));
        if (has_download || has_versions) && !out.iter().any(|o| under(p, o)) {
            out.push(p.to_string());
        }
    }
    out
}

/// FS004
pub(super) const FS004: Rule = Rule {
    id: "FS004",
    name: "go-module-cache-present",
    family: Family::Fs,
    severity: Severity::Medium,
    summary: "A Go module cache is present in the image",
    remediation: "Download modules in the build stage only, or use a BuildKit cache mount.",
    doc: Doc {
        what: "A Go module cache: a `…/pkg/mod` directory with `cache/download` or `module@version` directories (`$GOPATH/pkg/mod`, `/root/go/pkg/mod`, `/go/pkg/mod`). Reported with its size.",
        why: "Source and archives of every dependency, often hundreds of MB, shipped to production — and the reason vulnerability scanners report CVEs for modules the binary never linked.",
        fix: "```dockerfile\nRUN --mount=type=cache,target=/go/pkg/mod go build -o /out/app ./cmd/app\n```\n\nand copy only `/out/app` into the runtime stage.",
        example: "Go module cache at /root/go/pkg/mod (48.2 MiB)",
        references: &["https://go.dev/ref/mod#module-cache", "https://docs.docker.com/build/cache/optimize/#use-cache-mounts"],
    },
    needs_config: false,
    reads: &[GOCACHE_MARKER],
    check: |cx, sink| {
        for c in module_caches(cx) {
            let bytes = cx.fs.bytes_under(&c);
            let layer = cx.fs.get(&c).map_or(0, |n| n.layer);
            let mut e = cx.file(&c, layer);
            e.detail = Some(Detail::Bytes { bytes });
            sink.emit(format!("Go module cache at {} ({})", path::display(&c), human_bytes(bytes)), vec![e]);
        }
    },
};

/// The README `cmd/go` writes into GOCACHE, wherever it is.
const GOCACHE_MARKER: ContentRead = ContentRead {
    path: PathMatch::Named("README"),
    bound: ReadBound::Marker,
};

/// The first line of the README `cmd/go` writes into GOCACHE.
const GOCACHE_README: &str =
    "This directory holds cached build artifacts from the Go build system.";

pub(super) fn build_caches(cx: &RuleCx<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (p, n) in cx.fs.iter() {
        let candidate = if n.is_dir()
            && path::file_name(p) == "go-build"
            && path::file_name(path::parent(p)) == ".cache"
        {
            Some(p.to_string())
        } else if n.is_file() && path::file_name(p) == "README" {
            let readme = cx
                .fs
                .content_of(p, n)
                .is_some_and(|c| c.starts_with(GOCACHE_README.as_bytes()));
            let dir = path::parent(p);
            (readme && cx.fs.get(&path::child(dir, "trim.txt")).is_some()).then(|| dir.to_string())
        } else {
            None
        };
        if let Some(c) = candidate {
            if !out.iter().any(|o| under(&c, o)) {
                out.retain(|o| !under(o, &c));
                out.push(c);
            }
        }
    }
    out
}

/// FS005
pub(super) const FS005: Rule = Rule {
    id: "FS005",
    name: "go-build-cache-present",
    family: Family::Fs,
    severity: Severity::Medium,
    summary: "A Go build cache is present in the image",
    remediation: "Use a BuildKit cache mount for GOCACHE, or build in a separate stage.",
    doc: Doc {
        what: "A Go build cache (GOCACHE): a `…/.cache/go-build` directory, or any directory with the `README` that `cmd/go` writes (\"This directory holds cached build artifacts from the Go build system.\") next to `trim.txt`. Reported with its size.",
        why: "Compiled objects of everything ever built, often larger than the module cache; it also leaks what was built and with which flags, and makes layers change on every build.",
        fix: "```dockerfile\nRUN --mount=type=cache,target=/root/.cache/go-build go build -o /out/app ./cmd/app\n```",
        example: "Go build cache at /root/.cache/go-build (96.0 MiB)",
        references: &["https://pkg.go.dev/cmd/go#hdr-Build_and_test_caching"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| {
        for c in build_caches(cx) {
            let bytes = cx.fs.bytes_under(&c);
            let layer = cx.fs.get(&c).map_or(0, |n| n.layer);
            let mut e = cx.file(&c, layer);
            e.detail = Some(Detail::Bytes { bytes });
            sink.emit(format!("Go build cache at {} ({})", path::display(&c), human_bytes(bytes)), vec![e]);
        }
    },
};

/// FS006
pub(super) const FS006: Rule = Rule {
    id: "FS006",
    name: "go-installed-tool-present",
    family: Family::Fs,
    severity: Severity::Medium,
    summary: "Tools installed with go install are present in the image",
    remediation: "Run go install in a build or tools stage; copy only what the service needs at run time.",
    doc: Doc {
        what: "Executables in a GOPATH `bin` directory (`…/go/bin/…`, outside a GOROOT), or in the directories `GOBIN` / `GOPATH` name in the image config. Each is named with its build info (`path@version`) when it is a Go binary.",
        why: "Linters, code generators and debuggers (`golangci-lint`, `dlv`, `mockgen`) installed for the build end up in production, with their own dependencies and CVEs.",
        fix: "Install tools in the build stage only:\n\n```dockerfile\nFROM golang:1.27 AS build\nRUN go install github.com/golangci/golangci-lint/cmd/golangci-lint@v1.64.8\n…\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```",
        example: "/root/go/bin/tool (example.com/tool@(devel), go1.27.3) was installed with go install",
        references: &["https://pkg.go.dev/cmd/go#hdr-Compile_and_install_packages_and_dependencies"],
    },
    needs_config: false,
    reads: &[],
    check: check_fs006,
};

/// Executables in GOPATH `bin` directories or the config's `GOBIN`/`GOPATH` (FS006).
pub(super) fn go_installed_tools<'a>(cx: &RuleCx<'a>) -> Vec<(&'a str, &'a Node)> {
    let roots = &cx.goroots;
    let mut dirs: Vec<String> = Vec::new();
    if let Some(c) = cx.config() {
        if let Some(gobin) = c.config.env_var("GOBIN").filter(|v| !v.is_empty()) {
            dirs.push(gobin.trim_matches('/').to_string());
        }
        if let Some(gopath) = c.config.env_var("GOPATH") {
            dirs.extend(
                gopath
                    .split(':')
                    .filter(|s| !s.is_empty())
                    .map(|g| format!("{}/bin", g.trim_matches('/'))),
            );
        }
    }
    let fs: &'a crate::fs::MergedFs = cx.fs;
    fs.iter()
        .filter(|(p, n)| {
            if !n.is_file() || !n.is_executable() {
                return false;
            }
            let dir = path::parent(p);
            let gopath_bin =
                path::file_name(dir) == "bin" && path::file_name(path::parent(dir)) == "go";
            let env_bin = dirs.iter().any(|d| d == dir);
            (gopath_bin || env_bin) && !roots.iter().any(|r| under(p, &r.dir))
        })
        .collect()
}

fn check_fs006(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    for (p, n) in go_installed_tools(cx) {
        let ident =
            n.facts
                .as_ref()
                .and_then(|f| f.elf.as_ref())
                .and_then(|e| e.go.as_ref())
                .and_then(|g| g.build_info.as_ref())
                .map(|bi| {
                    let main = bi.main.as_ref().map(|m| {
                        format!("{}@{}", bi.path.as_deref().unwrap_or(&m.path), m.version)
                    });
                    format!(
                        " ({}, {})",
                        main.unwrap_or_else(|| bi.path.clone().unwrap_or_default()),
                        bi.go_version
                    )
                })
                .unwrap_or_default();
        sink.emit(
            format!("{}{ident} was installed with go install", path::display(p)),
            vec![cx.file(p, n.layer)],
        );
    }
}

/// Source-tree markers.
fn source_marker(p: &str, n: &Node) -> bool {
    let name = path::file_name(p);
    (n.is_file() && (name.ends_with(".go") || matches!(name, "go.mod" | "go.sum" | "go.work")))
        || (n.is_dir() && name == ".git")
}

/// Most FS007 findings listed one by one; the rest are summed up in one more.
const MAX_SOURCE_TREES: usize = 25;

/// FS007
pub(super) const FS007: Rule = Rule {
    id: "FS007",
    name: "source-tree-present",
    family: Family::Fs,
    severity: Severity::Low,
    summary: "Go sources, module files or a .git directory are present in the image",
    remediation: "Copy only build outputs into the runtime stage; add .git and sources to .dockerignore.",
    doc: Doc {
        what: "`*.go` files, `go.mod`, `go.sum`, `go.work` or a `.git/` directory in the final filesystem, outside a GOROOT and module or build caches (those are FS003–FS005). Grouped by project: the nearest directory holding `go.mod`, `go.work` or `.git`.",
        why: "`COPY . /app` into the runtime image ships source code, history (`.git` may contain credentials in its config or old commits) and the module list, and makes the image change on every commit.",
        fix: "```dockerfile\nFROM golang:1.27 AS build\nCOPY . /src\nRUN cd /src && go build -o /out/app ./cmd/app\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```\n\nand list `.git` in `.dockerignore`.",
        example: "Go source tree at /src/app: 12 .go files, go.mod, go.sum, .git/ (1.2 MiB)",
        references: &["https://docs.docker.com/build/concepts/context/#dockerignore-files"],
    },
    needs_config: false,
    reads: &[],
    check: check_fs007,
};

fn check_fs007(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let mut excluded: Vec<String> = cx.goroots.iter().map(|r| r.dir.clone()).collect();
    excluded.extend(module_caches(cx));
    excluded.extend(build_caches(cx));
    let mut groups: BTreeMap<String, (usize, Vec<&'static str>, usize)> = BTreeMap::new();
    let mut in_git: Option<String> = None;
    for (p, n) in cx.fs.iter() {
        if excluded.iter().any(|e| under(p, e)) {
            continue;
        }
        if let Some(g) = &in_git {
            if under(p, g) {
                continue;
            }
            in_git = None;
        }
        if !source_marker(p, n) {
            continue;
        }
        let name = path::file_name(p);
        if name == ".git" {
            in_git = Some(p.to_string());
        }
        // The project root: nearest ancestor with go.mod, go.work or .git.
        let mut dir = path::parent(p).to_string();
        let root = loop {
            if ["go.mod", "go.work", ".git"]
                .iter()
                .any(|m| cx.fs.get(&path::child(&dir, m)).is_some())
            {
                break dir.clone();
            }
            if dir.is_empty() {
                break path::parent(p).to_string();
            }
            dir = path::parent(&dir).to_string();
        };
        let g = groups.entry(root).or_insert((0, Vec::new(), n.layer));
        match name {
            "go.mod" => g.1.push("go.mod"),
            "go.sum" => g.1.push("go.sum"),
            "go.work" => g.1.push("go.work"),
            ".git" => g.1.push(".git/"),
            _ => g.0 += 1,
        }
    }
    let total = groups.len();
    for (i, (root, (gofiles, markers, layer))) in groups.into_iter().enumerate() {
        if i == MAX_SOURCE_TREES {
            sink.emit(
                format!(
                    "{} more Go source trees are present",
                    total - MAX_SOURCE_TREES
                ),
                vec![],
            );
            break;
        }
        let mut parts = Vec::new();
        if gofiles > 0 {
            parts.push(format!("{gofiles} .go files"));
        }
        parts.extend(markers.iter().map(|m| (*m).to_string()));
        let bytes = cx.fs.bytes_under(&root);
        let mut e = cx.file(&root, layer);
        e.detail = Some(Detail::Bytes { bytes });
        sink.emit(
            format!(
                "Go source tree at {}: {} ({})",
                path::display(&root),
                parts.join(", "),
                human_bytes(bytes)
            ),
            vec![e],
        );
    }
}

/// FS008
pub(super) const FS008: Rule = Rule {
    id: "FS008",
    name: "build-tool-present",
    family: Family::Fs,
    severity: Severity::Low,
    summary: "Compilers, linkers, make or git are present in the image",
    remediation: "Keep build tools in the build stage.",
    doc: Doc {
        what: "Build tools: `gcc`, `g++`, `cc`, `c++`, `clang`, `ld` (bfd, gold, lld), `make`, `git` — found by name, resolved through symlinks and alternatives.",
        why: "They are needed to build, not to run. Distribution Go packages pull in gcc and git; a final stage `FROM golang` carries all of them. Each is attack surface and image weight.",
        fix: "Use a multi-stage build with a minimal runtime stage; do not `apt-get install build-essential git` in it.",
        example: "build tool /usr/bin/gcc-12 is present (as /usr/bin/gcc, /usr/bin/cc)",
        references: &["https://docs.docker.com/build/building/multi-stage/"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| emit_tools(cx, sink, &BUILD_TOOLS),
};

/// FS009
pub(super) const FS009: Rule = Rule {
    id: "FS009",
    name: "network-tool-present",
    family: Family::Fs,
    severity: Severity::Low,
    summary: "Network or debugging tools (curl, wget, nc, strace, gdb, tcpdump) are present",
    remediation: "Remove them from the runtime image; debug with an ephemeral container (kubectl debug).",
    doc: Doc {
        what: "`curl`, `wget`, `nc`/`ncat`/`netcat`, `socat`, `telnet`, `strace`, `ltrace`, `gdb`, `tcpdump` — real binaries or busybox applets.",
        why: "Download and exfiltration tools for an attacker, tracing tools that can read other processes' memory. A Go service talks HTTP by itself; health checks do not need curl (use the binary itself or an HTTP probe).",
        fix: "Drop them from the runtime stage. For health checks use a Kubernetes `httpGet` probe or a tiny `--healthcheck` mode in the Go binary.",
        example: "network or debug tool /usr/bin/curl is present",
        references: &["https://kubernetes.io/docs/tasks/debug/debug-application/debug-running-pod/#ephemeral-container"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| emit_tools(cx, sink, &NET_TOOLS),
};

/// Content that FS001–FS006, FS008 and FS009 detect, as one list for the distroless
/// comparison: DL002 names each item, DL003 counts its bytes. The detection is the FS rules'
/// own (the same helpers), never a copy.
pub(crate) struct Artifact {
    /// FS rule ids that flag it.
    pub(crate) rules: Vec<&'static str>,
    /// What it is (`shell`, `Go toolchain go1.27.3`).
    pub(crate) what: Vec<String>,
    /// Root-relative path: the file a tool resolves to, or the root of a tree.
    pub(crate) root: String,
    /// A directory tree (everything below `root` belongs to it).
    pub(crate) tree: bool,
    /// Other names of a tool (symlinks, hard links).
    pub(crate) names: Vec<String>,
    /// Layer that wrote `root`.
    pub(crate) layer: usize,
}

pub(crate) fn inventory(cx: &RuleCx<'_>) -> Vec<Artifact> {
    let mut out: Vec<Artifact> = Vec::new();
    let mut add = |rule: &'static str,
                   what: String,
                   root: String,
                   tree: bool,
                   names: Vec<String>,
                   layer: usize| match out.iter_mut().find(|a| a.root == root) {
        Some(a) => {
            if !a.rules.contains(&rule) {
                a.rules.push(rule);
                a.what.push(what);
            }
            for n in names {
                if !a.names.contains(&n) {
                    a.names.push(n);
                }
            }
        }
        None => out.push(Artifact {
            rules: vec![rule],
            what: vec![what],
            root,
            tree,
            names,
            layer,
        }),
    };
    for class in [&SHELLS, &PACKAGE_MANAGERS, &BUILD_TOOLS, &NET_TOOLS] {
        for f in find_tools(cx, class) {
            let names = f
                .names
                .iter()
                .filter(|n| **n != f.target)
                .cloned()
                .collect();
            add(
                class.rule,
                class.what.to_string(),
                f.target.clone(),
                false,
                names,
                f.node.layer,
            );
        }
    }
    for r in &cx.goroots {
        let layer = cx
            .fs
            .get(&path::child(&r.dir, "VERSION"))
            .map_or(0, |n| n.layer);
        add(
            FS003.id,
            format!("Go toolchain {}", r.version),
            r.dir.clone(),
            true,
            Vec::new(),
            layer,
        );
    }
    for b in cx.binaries {
        let p = b
            .elf()
            .go
            .as_ref()
            .and_then(|g| g.build_info.as_ref())
            .and_then(|bi| bi.path.as_deref())
            .unwrap_or("");
        if matches!(p, "cmd/go" | "cmd/gofmt") && !cx.goroots.iter().any(|r| under(&b.path, &r.dir))
        {
            add(
                FS003.id,
                "Go toolchain binary".into(),
                b.path.clone(),
                false,
                Vec::new(),
                b.node.layer,
            );
        }
    }
    for c in module_caches(cx) {
        let layer = cx.fs.get(&c).map_or(0, |n| n.layer);
        add(
            FS004.id,
            "Go module cache".into(),
            c,
            true,
            Vec::new(),
            layer,
        );
    }
    for c in build_caches(cx) {
        let layer = cx.fs.get(&c).map_or(0, |n| n.layer);
        add(
            FS005.id,
            "Go build cache".into(),
            c,
            true,
            Vec::new(),
            layer,
        );
    }
    for (p, n) in go_installed_tools(cx) {
        add(
            FS006.id,
            "go install'ed tool".into(),
            p.to_string(),
            false,
            Vec::new(),
            n.layer,
        );
    }
    out.sort_by(|a, b| a.root.cmp(&b.root));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MergedFs;
    use crate::layer::EntryKind;
    use crate::limits::MAX_MODULE_CACHE_SCAN;
    use crate::rules::{ImageFacts, RuleSettings};
    use crate::testutil::entry;

    /// The module caches of an image whose `go/pkg/mod` holds `fillers` plain directories
    /// that sort before its one `module@version` directory.
    fn caches_with(fillers: usize) -> Vec<String> {
        let dir = |p: &str| entry(p, EntryKind::Dir, 0);
        let mut entries = vec![dir("go"), dir("go/pkg"), dir("go/pkg/mod")];
        entries.extend((0..fillers).map(|i| dir(&format!("go/pkg/mod/a{i:05}"))));
        entries.push(dir("go/pkg/mod/z@v1.0.0"));
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &entries);
        let image = ImageFacts {
            config: None,
            annotations: Default::default(),
            layers: Vec::new(),
        };
        let settings = RuleSettings::default();
        module_caches(&RuleCx::new(&image, &fs, &[], &settings))
    }

    /// A `pkg/mod` directory is a module cache when a `@v` directory is among its first
    /// `MAX_MODULE_CACHE_SCAN` entries; a forged tree cannot make the search longer.
    #[test]
    fn module_cache_search_stops_at_the_bound() {
        assert_eq!(caches_with(MAX_MODULE_CACHE_SCAN - 2), ["go/pkg/mod"]);
        assert_eq!(caches_with(MAX_MODULE_CACHE_SCAN - 1), ["go/pkg/mod"]);
        assert!(caches_with(MAX_MODULE_CACHE_SCAN).is_empty());
    }
}
