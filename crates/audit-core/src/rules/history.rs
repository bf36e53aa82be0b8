//! HIST001–HIST007: what the build steps recorded in `history[].created_by` did.
//!
//! Each `RUN` is read with the small shell reader of [`super::shell`] after the build
//! arguments and `ENV` values in scope are substituted, so rules look at the commands that
//! ran and their arguments, never at words: `apt-get install golang-go` installs Go,
//! `apt-get install golang-github-foo-dev` does not, and `curl … | tar` is fine when the same
//! step checks a `sha256sum -c`. Evidence names the step and the layer holding its content
//! (for a squashed buildah build, the one layer everything went into).

use super::shell::{expand, Cmd, Script};
use super::steps::{scopes, Instr, Step};
use super::{Doc, Family, Rule, RuleCx};
use crate::finding::Severity;
use crate::inspect::secrets;
use crate::path;

/// A `RUN` step with its script parsed (variables in scope substituted).
struct Run<'a> {
    step: &'a Step,
    script: Script,
}

fn runs<'a>(cx: &'a RuleCx<'_>) -> Vec<Run<'a>> {
    let scope = scopes(&cx.steps);
    cx.steps
        .iter()
        .filter(|s| s.instr == Instr::Run)
        .filter_map(|s| {
            s.script.as_deref().map(|sc| Run {
                step: s,
                script: Script::parse(&expand(sc, &scope[s.index])),
            })
        })
        .collect()
}

/// A command for messages: its words, secrets masked, shortened.
fn show(c: &Cmd) -> String {
    let mut s = c.words.join(" ");
    if s.chars().count() > 100 {
        s = s.chars().take(97).collect::<String>() + "...";
    }
    secrets::redact(&s).into_owned()
}

fn step_name(step: &Step) -> String {
    format!("history step {}", step.index)
}

// ------------------------------------------------------------------------------ HIST001

/// Packages that are the Go toolchain in each package manager.
fn is_go_package(manager: &str, pkg: &str) -> bool {
    let name = pkg.split(['=', ':', '/']).next().unwrap_or(pkg);
    match manager {
        "apt-get" | "apt" | "aptitude" => {
            // golang, golang-go, golang-src, golang-doc, golang-1.22, golang-1.22-go …
            let Some(rest) = name.strip_prefix("golang") else {
                return false;
            };
            let rest = rest.strip_prefix('-').unwrap_or(rest);
            if rest.is_empty() || matches!(rest, "go" | "src" | "doc") {
                return true;
            }
            let (ver, suffix) = rest.split_once('-').unwrap_or((rest, ""));
            ver.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && matches!(suffix, "" | "go" | "src")
        }
        "apk" => name.split(['~', '>', '<', '@']).next() == Some("go"),
        "yum" | "dnf" | "microdnf" | "tdnf" => {
            let base = name
                .split('-')
                .take_while(|p| !p.starts_with(|c: char| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join("-");
            matches!(base.as_str(), "golang" | "golang-bin" | "go-toolset")
        }
        "zypper" => {
            name == "go"
                || name
                    .strip_prefix("go1.")
                    .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()))
        }
        "pacman" => name == "go",
        _ => false,
    }
}

/// Package names an install command asks for (options and their values skipped).
fn installed_packages(c: &Cmd) -> Vec<&str> {
    let (verbs, with_value): (&[&str], &[&str]) = match c.name() {
        "apt-get" | "apt" | "aptitude" => (
            &["install"],
            &["-o", "-t", "--target-release", "-c", "--config-file"],
        ),
        "apk" => (
            &["add"],
            &[
                "-X",
                "--repository",
                "-t",
                "--virtual",
                "-p",
                "--root",
                "--arch",
            ],
        ),
        "yum" | "dnf" | "microdnf" | "tdnf" => (
            &["install"],
            &[
                "--setopt",
                "--enablerepo",
                "--disablerepo",
                "--releasever",
                "-c",
                "--repo",
            ],
        ),
        "zypper" => (&["install", "in"], &["-r", "--repo", "-t", "--type"]),
        "pacman" => (&["-S", "-Sy", "-Syu", "-Sy", "--sync"], &[]),
        _ => return Vec::new(),
    };
    let a = c.args();
    let Some(v) = a.iter().position(|w| verbs.contains(&w.as_str())) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut skip = false;
    for w in &a[v + 1..] {
        if skip {
            skip = false;
        } else if w.starts_with('-') {
            skip = with_value.contains(&w.as_str());
        } else {
            out.push(w.as_str());
        }
    }
    out
}

/// HIST001
pub(super) const HIST001: Rule = Rule {
    id: "HIST001",
    name: "go-from-distro-packages",
    family: Family::Hist,
    severity: Severity::Medium,
    summary: "Go is installed from the distribution's package manager",
    remediation: "Build FROM golang:<version> (or an official go.dev tarball with its checksum) in a build stage.",
    doc: Doc {
        what: "A `RUN` step whose package-manager command installs the Go toolchain: `apt-get`/`apt install golang`, `golang-go`, `golang-1.NN(-go)`; \
`apk add go`; `yum`/`dnf`/`microdnf install golang`, `golang-bin`, `go-toolset`; `zypper install go`/`go1.NN`. Read from the command's arguments: \
`apt-get install golang-github-foo-dev` (a library package) and `echo golang` are not installs of Go.",
        why: "Distribution Go lags upstream (Debian 12 ships 1.19, Ubuntu 22.04 1.18), is patched on the distribution's schedule, and cannot follow \
the `go`/`toolchain` lines of go.mod; the build result depends on which mirror snapshot the build saw.",
        fix: "```dockerfile\nFROM golang:1.24 AS build\nWORKDIR /src\nCOPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\nRUN CGO_ENABLED=0 go build -trimpath -o /out/app ./cmd/app\n```",
        example: "history step 3 installs Go from distribution packages: apt-get install -y golang-go (golang-go)",
        references: &["https://go.dev/doc/install", "https://hub.docker.com/_/golang"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        for r in runs(cx) {
            for c in &r.script.cmds {
                let pkgs: Vec<&str> = installed_packages(c).into_iter().filter(|p| is_go_package(c.name(), p)).collect();
                if !pkgs.is_empty() {
                    sink.emit(
                        format!("{} installs Go from distribution packages: {} ({})", step_name(r.step), show(c), pkgs.join(", ")),
                        vec![cx.step(r.step.index)],
                    );
                }
            }
        }
    },
};

// ------------------------------------------------------------------------------ HIST002

const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c"];
/// Commands that unpack or run what they read.
const CONSUMERS: &[&str] = &[
    "tar", "bsdtar", "unzip", "gunzip", "gzip", "zcat", "xz", "unxz", "bzip2", "bunzip2", "zstd",
    "unzstd", "cpio", "sh", "bash", "ash", "dash", "zsh", "ksh", "python", "python3", "perl",
    "ruby", "node", "php", "dpkg", "rpm", "install", "source", ".",
];
const CHECKSUMS: &[&str] = &[
    "sha256sum",
    "sha512sum",
    "sha384sum",
    "sha224sum",
    "sha1sum",
    "md5sum",
    "b2sum",
    "shasum",
    "cksum",
];

/// Whether a step checks a checksum or signature: `sha256sum -c`, a checksum compared in a
/// pipeline or `$(…)`, `gpg --verify`, `gpgv`, `cosign verify*`, `minisign -V`, `openssl
/// dgst -verify`, `slsa-verifier`.
fn verifies(s: &Script) -> bool {
    s.cmds.iter().any(|c| {
        let n = c.name();
        if CHECKSUMS.contains(&n) {
            let compared = c.nested
                || s.pipeline(c.pipeline).any(|d| {
                    d.stage > c.stage
                        && matches!(d.name(), "grep" | "cmp" | "diff" | "test" | "[" | "awk")
                });
            return c.has_flag(&["-c", "--check", "--status"]) || c.has_short('c') || compared;
        }
        match n {
            "gpg" | "gpg2" => c.has_flag(&["--verify", "--verify-files"]),
            "gpgv" | "gpgv2" | "slsa-verifier" => true,
            "cosign" => c.args().first().is_some_and(|a| a.starts_with("verify")),
            "minisign" | "signify" => c.has_flag(&["-V"]),
            "openssl" => c.args().iter().any(|a| a == "-verify"),
            _ => false,
        }
    })
}

fn urls(c: &Cmd) -> Vec<&str> {
    c.args()
        .iter()
        .map(String::as_str)
        .filter(|a| a.contains("://") && !a.starts_with('-'))
        .collect()
}

/// Where a download command writes: `None` = standard output.
fn download_target(c: &Cmd) -> Option<String> {
    let url_name = || {
        urls(c).first().map(|u| {
            u.split(['?', '#'])
                .next()
                .unwrap_or(u)
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string()
        })
    };
    match c.name() {
        "curl" => {
            if let Some(o) = c.opt(&["-o", "--output"]) {
                return (o != "-").then(|| o.to_string());
            }
            if c.has_flag(&["-O", "--remote-name", "--remote-name-all"]) || c.has_short('O') {
                return url_name();
            }
            c.redirects
                .iter()
                .find(|(op, _)| op.starts_with('>'))
                .map(|(_, t)| t.clone())
        }
        "wget" => match c.opt(&["-O", "--output-document"]) {
            Some("-") | Some("/dev/stdout") => None,
            Some(o) => Some(o.to_string()),
            None => {
                let name = url_name().unwrap_or_default();
                Some(match c.opt(&["-P", "--directory-prefix"]) {
                    Some(d) => format!("{}/{name}", d.trim_end_matches('/')),
                    None => name,
                })
            }
        },
        _ => c.opt(&["-o", "--out", "-O"]).map(str::to_string),
    }
}

/// Whether `c` unpacks or runs the file `f` (matched by path or base name).
fn uses_file(c: &Cmd, f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    let base = f.rsplit('/').next().unwrap_or(f);
    let same = |w: &str| w == f || (!base.is_empty() && w.rsplit('/').next() == Some(base));
    let n = c.name();
    if c.words.first().is_some_and(|w| same(w)) {
        return true; // ./install.sh
    }
    match n {
        "chmod" => c.args().iter().any(|a| a.contains('x')) && c.args().iter().any(|a| same(a)),
        _ if CONSUMERS.contains(&n) => {
            c.args().iter().any(|a| same(a)) || c.opt(&["-f", "--file"]).is_some_and(same)
        }
        _ => false,
    }
}

/// HIST002
pub(super) const HIST002: Rule = Rule {
    id: "HIST002",
    name: "unverified-download",
    family: Family::Hist,
    severity: Severity::High,
    summary: "A build step pipes or unpacks a download without verifying it, or downloads over plain HTTP",
    remediation: "Pin the artifact's SHA-256 and check it in the same RUN (echo \"$SHA256  go.tgz\" | sha256sum -c -) before unpacking; use HTTPS.",
    doc: Doc {
        what: "A `RUN` step where `curl`/`wget` output is piped into `tar`, a shell or an interpreter (`curl … | tar -xz`, `wget -qO- … | sh`), or \
a downloaded file is unpacked or executed later in the same step (`curl -o go.tgz … && tar -xzf go.tgz`, `chmod +x install.sh && ./install.sh`), \
with no checksum or signature check in that step (`sha256sum -c`, `sha512sum --check`, a checksum compared with `grep`/`[`, `gpg --verify`, \
`gpgv`, `cosign verify-blob`, `minisign -V`); and any download over plain `http://` whose bytes are kept (written to a file, piped, captured \
with `$(…)`) in a step without such a check. Build arguments and `ENV` \
values in scope are substituted first, so `$GO_URL` is judged by its value.",
        why: "Whatever the server (or anyone on the path, for HTTP) returns at build time runs or lands in the image with root rights; a pinned \
checksum is what makes the step reproducible and tamper-evident.",
        fix: "```dockerfile\nARG GO_VERSION=1.24.4\n# the linux-amd64 SHA-256 listed on https://go.dev/dl/ for that version\nARG GO_SHA256\nRUN curl -fsSLo /tmp/go.tgz https://go.dev/dl/go${GO_VERSION}.linux-amd64.tar.gz \\\n && echo \"${GO_SHA256}  /tmp/go.tgz\" | sha256sum -c - \\\n && tar -C /usr/local -xzf /tmp/go.tgz && rm /tmp/go.tgz\n```",
        example: "history step 4 runs a download without a checksum check: curl -fsSL https://go.dev/dl/go1.22.5.linux-amd64.tar.gz piped into tar",
        references: &["https://go.dev/dl/", "https://docs.docker.com/build/building/best-practices/#add-or-copy"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        for r in runs(cx) {
            let s = &r.script;
            if verifies(s) {
                continue;
            }
            let mut problems: Vec<String> = Vec::new();
            for (i, d) in s.cmds.iter().enumerate() {
                if !DOWNLOADERS.contains(&d.name()) || urls(d).is_empty() {
                    continue;
                }
                let mut why: Vec<String> = Vec::new();
                let target = download_target(d);
                // Whether the bytes land anywhere: a file, a pipe, or a `$(…)` capture. A bare
                // `curl http://localhost/health` printing to the build log does not.
                let kept = target.is_some() || d.nested || s.pipeline(d.pipeline).any(|x| x.stage > d.stage);
                match target {
                    None => {
                        if let Some(sink_cmd) = s.pipeline(d.pipeline).find(|x| x.stage > d.stage && CONSUMERS.contains(&x.name())) {
                            why.push(format!("piped into {}", sink_cmd.name()));
                        } else if d.nested && s.cmds.iter().any(|x| !x.nested && CONSUMERS.contains(&x.name()) && x.args().iter().any(|a| a.contains(&format!("$({}", d.words.join(" "))))) {
                            why.push("run through a command substitution".into());
                        }
                    }
                    Some(f) => {
                        if let Some(u) = s.cmds[i + 1..].iter().find(|x| uses_file(x, &f)) {
                            why.push(format!("then {} {f}", u.name()));
                        }
                    }
                }
                if kept && urls(d).iter().any(|u| u.starts_with("http://")) {
                    why.push("over plain http".into());
                }
                if !why.is_empty() {
                    problems.push(format!("{} ({})", show(d), why.join(", ")));
                }
            }
            if !problems.is_empty() {
                sink.emit(format!("{} runs a download without a checksum check: {}", step_name(r.step), problems.join("; ")), vec![cx.step(r.step.index)]);
            }
        }
    },
};

// ------------------------------------------------------------------------------ HIST003

/// Whether a URL names a moving target: a version endpoint (Go's `https://go.dev/VERSION`,
/// and the same convention elsewhere: a last path segment `VERSION`, `stable.txt`,
/// `latest.txt`), a `latest` or `nightly` path segment (`…/releases/latest/download/…`), or
/// `version=latest`.
fn floating_url(u: &str) -> bool {
    let path = u.split_once("://").map_or(u, |(_, r)| r);
    let (p, query) = path.split_once(['?', '#']).unwrap_or((path, ""));
    let mut segs = p.split('/').skip(1);
    if matches!(
        p.rsplit('/').next(),
        Some("VERSION" | "stable.txt" | "latest.txt" | "LATEST")
    ) && p.contains('/')
    {
        return true;
    }
    segs.any(|seg| seg.eq_ignore_ascii_case("latest") || seg.eq_ignore_ascii_case("nightly"))
        || query.split('&').any(|kv| {
            kv.split_once('=')
                .is_some_and(|(_, v)| v.eq_ignore_ascii_case("latest"))
        })
}

/// HIST003
pub(super) const HIST003: Rule = Rule {
    id: "HIST003",
    name: "version-resolved-at-build",
    family: Family::Hist,
    severity: Severity::Medium,
    summary: "A build step resolves a version at build time (go.dev/VERSION, @latest, latest downloads)",
    remediation: "Pin versions in the Dockerfile (ARG GO_VERSION=1.24.4, tool@v1.2.3) and bump them with a dependency bot.",
    doc: Doc {
        what: "A `RUN` step that downloads from a moving URL — Go's `https://go.dev/VERSION?m=text` (or golang.org), a `/latest/` path segment \
(`…/releases/latest/download/…`), `?version=latest` — with `curl`, `wget` or `git`, or runs `go install`/`go get` of `…@latest`, `@master`, \
`@main`, `@HEAD`, or `go get -u`.",
        why: "The same Dockerfile builds different images on different days: the result cannot be reproduced, signed provenance no longer matches a \
rebuild, and an SBOM describes whatever happened to be current.",
        fix: "```dockerfile\nARG GO_VERSION=1.24.4\nRUN curl -fsSLo /tmp/go.tgz https://go.dev/dl/go${GO_VERSION}.linux-amd64.tar.gz …\nRUN go install golang.org/x/tools/cmd/goimports@v0.33.0\n```",
        example: "history step 4 resolves versions at build time: https://go.dev/VERSION?m=text, golang.org/x/tools/cmd/goimports@latest",
        references: &["https://go.dev/ref/mod#version-queries", "https://reproducible-builds.org/docs/definition/"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        for r in runs(cx) {
            let mut moving: Vec<String> = Vec::new();
            for c in &r.script.cmds {
                if DOWNLOADERS.contains(&c.name()) || c.name() == "git" {
                    moving.extend(urls(c).into_iter().filter(|u| floating_url(u)).map(|u| secrets::redact(u).into_owned()));
                }
                if c.name() == "go" && matches!(c.args().first().map(String::as_str), Some("install" | "get")) {
                    for a in &c.args()[1..] {
                        if ["@latest", "@master", "@main", "@HEAD", "@upgrade"].iter().any(|s| a.ends_with(s)) {
                            moving.push(a.clone());
                        }
                    }
                    if c.args()[0] == "get" && c.has_flag(&["-u"]) {
                        moving.push("go get -u".into());
                    }
                }
            }
            moving.dedup();
            if !moving.is_empty() {
                sink.emit(format!("{} resolves versions at build time: {}", step_name(r.step), moving.join(", ")), vec![cx.step(r.step.index)]);
            }
        }
    },
};

// ------------------------------------------------------------------------------ HIST004

/// HIST004
pub(super) const HIST004: Rule = Rule {
    id: "HIST004",
    name: "go-install-in-image",
    family: Family::Hist,
    severity: Severity::Medium,
    summary: "`go install` or `go get` ran in a step of the final image",
    remediation: "Run go install in a build stage and COPY --from only the binaries the runtime needs.",
    doc: Doc {
        what: "A `RUN` step of the final image's history that runs `go install` or `go get` (also inside `sh -c`, `$(…)` or after `&&`). Steps of \
other stages of a multi-stage build are not in the final image's history, so every hit is a step whose results — binaries, module and build caches — \
the final image carries.",
        why: "Tools and caches land in the runtime image (hundreds of MB, more attack surface); the step re-downloads and rebuilds on every change \
and defeats layer caching.",
        fix: "```dockerfile\nFROM golang:1.24 AS tools\nRUN go install github.com/golangci/golangci-lint/cmd/golangci-lint@v1.64.8\n\nFROM gcr.io/distroless/static-debian12\nCOPY --from=tools /go/bin/golangci-lint /usr/local/bin/\n```",
        example: "history step 6 runs go install in the final image: go install golang.org/x/tools/cmd/goimports@latest",
        references: &["https://docs.docker.com/build/building/multi-stage/"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        for r in runs(cx) {
            let gos: Vec<String> =
                r.script.cmds.iter().filter(|c| c.name() == "go" && matches!(c.args().first().map(String::as_str), Some("install" | "get"))).map(show).collect();
            if !gos.is_empty() {
                let verb = if gos.iter().all(|g| g.starts_with("go get")) { "go get" } else { "go install" };
                sink.emit(format!("{} runs {verb} in the final image: {}", step_name(r.step), gos.join("; ")), vec![cx.step(r.step.index)]);
            }
        }
    },
};

// ------------------------------------------------------------------------------ HIST005

/// `go` subcommands that resolve and download modules.
fn fetches_modules(c: &Cmd) -> bool {
    if c.name() != "go" {
        return false;
    }
    let a = c.args();
    match a.first().map(String::as_str) {
        Some("build" | "install" | "test" | "run" | "get" | "vet" | "generate" | "list") => true,
        Some("mod") => matches!(
            a.get(1).map(String::as_str),
            Some("download" | "tidy" | "vendor" | "graph" | "verify")
        ),
        _ => false,
    }
}

fn resolve_dest(dest: &str, workdir: &str) -> String {
    let d = if dest == "." || dest == "./" {
        workdir.to_string()
    } else {
        path::join_clamped(workdir.trim_start_matches('/'), dest)
    };
    d.trim_start_matches('/').trim_end_matches('/').to_string()
}

/// Whether a `COPY` step copied the whole build context: `COPY . DEST` in BuildKit form,
/// or (any form, including the classic `COPY dir:HASH in DEST`) a layer that holds both
/// `DEST/go.mod` and other files under DEST written by this step.
fn copies_whole_context(cx: &RuleCx<'_>, step: &Step, workdir: &str) -> Option<String> {
    let (flags, sources, dest) = step.copy_parts();
    if flags.iter().any(|f| f.starts_with("--from")) {
        return None;
    }
    let d = resolve_dest(&dest, workdir);
    if sources.len() == 1 && matches!(sources[0].as_str(), "." | "./" | "*") {
        return Some(format!("COPY {} {dest}", sources[0]));
    }
    let layer = cx.step_layer(step.index)?;
    let gomod = if d.is_empty() {
        "go.mod".to_string()
    } else {
        format!("{d}/go.mod")
    };
    let by_step = |n: &crate::fs::Node| n.layer == layer && n.is_file();
    if !cx.fs.get(&gomod).is_some_and(by_step) {
        return None;
    }
    let others = cx.fs.descendants(&d).any(|(p, n)| {
        by_step(n)
            && !matches!(
                path::file_name(p),
                "go.mod" | "go.sum" | "go.work" | "go.work.sum"
            )
    });
    let shown: Vec<String> = sources.iter().map(|s| short_hash_source(s)).collect();
    others.then(|| {
        format!(
            "COPY {} {dest} (go.mod and sources in one layer)",
            shown.join(" ")
        )
    })
}

/// `dir:9a070319f2ed32c4…` → `dir:9a070319f2ed` (classic builders record content hashes).
fn short_hash_source(s: &str) -> String {
    let (prefix, h) = s.split_once(':').unwrap_or(("", s));
    if h.len() > 12 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        if prefix.is_empty() {
            h[..12].to_string()
        } else {
            format!("{prefix}:{}", &h[..12])
        }
    } else {
        s.to_string()
    }
}

/// HIST005
pub(super) const HIST005: Rule = Rule {
    id: "HIST005",
    name: "context-copied-before-deps",
    family: Family::Hist,
    severity: Severity::Low,
    summary: "The whole build context is copied before Go modules are downloaded",
    remediation: "COPY go.mod go.sum first, RUN go mod download, then COPY the rest.",
    doc: Doc {
        what: "A `COPY` of the whole build context (`COPY . …`; for builders that record only a content hash, a layer that wrote `go.mod` together \
with the sources) followed by a `RUN` that resolves modules (`go mod download`, `go build`, `go test` …), with no module download before the `COPY`.",
        why: "Every source change invalidates the layer cache of the module download, so every build downloads all dependencies again; whatever is in \
the context (local `vendor/`, `.git`, editor files, secrets) is part of the build and of the image.",
        fix: "```dockerfile\nCOPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\nRUN go build -o /out/app ./cmd/app\n```\n\nand a `.dockerignore`.",
        example: "history step 5 (COPY . /src) copies the whole context before step 6 downloads modules (go build -o /app .)",
        references: &["https://docs.docker.com/build/cache/optimize/", "https://docs.docker.com/build/concepts/context/#dockerignore-files"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let scope = scopes(&cx.steps);
        let mut workdir = String::from("/");
        let mut fetched = false;
        let mut candidate: Option<(usize, String)> = None;
        for s in &cx.steps {
            match s.instr {
                Instr::Workdir => {
                    let w = expand(s.args.trim(), &scope[s.index]);
                    workdir = if w.starts_with('/') { w } else { format!("{}/{w}", workdir.trim_end_matches('/')) };
                }
                Instr::Copy if !fetched && candidate.is_none() => {
                    if let Some(what) = copies_whole_context(cx, s, &workdir) {
                        candidate = Some((s.index, what));
                    }
                }
                Instr::Run => {
                    let Some(sc) = &s.script else { continue };
                    let script = Script::parse(&expand(sc, &scope[s.index]));
                    if let Some(c) = script.cmds.iter().find(|c| fetches_modules(c)) {
                        if let Some((ci, what)) = candidate.take() {
                            sink.emit(
                                format!("history step {ci} ({what}) copies the whole context before step {} downloads modules ({})", s.index, show(c)),
                                vec![cx.step(ci), cx.step(s.index)],
                            );
                        }
                        fetched = true;
                    }
                }
                _ => {}
            }
        }
    },
};

// ------------------------------------------------------------------------------ HIST006

/// Locations shared beyond one build stage: world-writable temp dirs, the golang image's
/// GOPATH and root's default caches (every stage `FROM golang` shares them, and cache mounts
/// or `COPY --from` of them carry one stage's state into another), and the toolchain itself.
const SHARED_DIRS: &[(&str, &str)] = &[
    ("/tmp", "a world-writable directory"),
    ("/var/tmp", "a world-writable directory"),
    ("/dev/shm", "a world-writable directory"),
    (
        "/go",
        "the golang image's GOPATH, shared by every stage FROM golang",
    ),
    (
        "/root/go",
        "root's default GOPATH, shared by every stage that builds as root",
    ),
    (
        "/root/.cache",
        "root's default cache directory, shared by every stage that builds as root",
    ),
    ("/usr/local/go", "the Go toolchain (GOROOT)"),
];

/// HIST006
pub(super) const HIST006: Rule = Rule {
    id: "HIST006",
    name: "shared-go-cache-path",
    family: Family::Hist,
    severity: Severity::Low,
    summary: "An ENV step points GOPATH, GOCACHE or GOMODCACHE at a shared location in the final image",
    remediation: "Build in a separate stage with its own cache paths (or RUN --mount=type=cache); the runtime stage needs no Go variables.",
    doc: Doc {
        what: "An `ENV` step of the final image's history that sets `GOPATH`, `GOCACHE` or `GOMODCACHE` to a location shared beyond one build: \
`/tmp`, `/var/tmp`, `/dev/shm` (world-writable), `/go` (the golang image's GOPATH), `/root/go`, `/root/.cache`, `/usr/local/go`, or a declared \
`VOLUME`. `$VAR` references are resolved with the variables in scope.",
        why: "Caches in shared locations leak between stages and builds: a stage that mounts or copies them gets another stage's compiled packages \
and module versions, and the final image keeps them. In a runtime image the variables also point tools at caches that should not exist.",
        fix: "```dockerfile\nFROM golang:1.24 AS build\nENV GOCACHE=/build/cache GOMODCACHE=/build/mod\nRUN --mount=type=cache,target=/build/cache --mount=type=cache,target=/build/mod go build -o /out/app .\n\nFROM gcr.io/distroless/static-debian12\nCOPY --from=build /out/app /app\n```",
        example: "history step 3 sets GOCACHE=/go/cache: under /go, the golang image's GOPATH, shared by every stage FROM golang",
        references: &["https://pkg.go.dev/cmd/go#hdr-Build_and_test_caching", "https://docs.docker.com/build/cache/optimize/#use-cache-mounts"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        let scope = scopes(&cx.steps);
        for s in cx.steps.iter().filter(|s| s.instr == Instr::Env) {
            let mut local: Vec<(String, String)> = scope[s.index].clone();
            for (k, v) in s.env_pairs() {
                let v = expand(&v, &local);
                local.push((k.clone(), v.clone()));
                if !matches!(k.as_str(), "GOPATH" | "GOCACHE" | "GOMODCACHE") {
                    continue;
                }
                let p = format!("/{}", v.trim().trim_start_matches('/').trim_end_matches('/'));
                let under = |d: &str| p == d || p.starts_with(&format!("{d}/"));
                let why = SHARED_DIRS.iter().find(|(d, _)| under(d)).map(|(d, why)| format!("under {d}, {why}")).or_else(|| {
                    c.config.volumes.keys().find(|vol| under(vol.trim_end_matches('/'))).map(|vol| format!("under VOLUME {vol}"))
                });
                if let Some(why) = why {
                    sink.emit(format!("{} sets {k}={v}: {why}", step_name(s)), vec![cx.step(s.index)]);
                }
            }
        }
    },
};

// ------------------------------------------------------------------------------ HIST007

/// HIST007
pub(super) const HIST007: Rule = Rule {
    id: "HIST007",
    name: "remote-add",
    family: Family::Hist,
    severity: Severity::Medium,
    summary: "ADD fetches a remote URL",
    remediation: "Download with curl and check a pinned SHA-256 in the same RUN, or use ADD --checksum=sha256:… (BuildKit).",
    doc: Doc {
        what: "An `ADD` step with a remote source: `ADD https://… DEST` in BuildKit history without `--checksum`, and for the classic builder and \
buildah — which record only `ADD <sha256> in DEST` for a URL (local sources are `file:…`/`dir:…`) — any `ADD` of a bare content hash.",
        why: "The content is whatever the server returns at build time, unverified; it is not reproducible, and the layer cache hides changes.",
        fix: "```dockerfile\n# the SHA-256 the vendor publishes for tool.tgz\nADD --checksum=sha256:${TOOL_SHA256} https://example.com/tool.tgz /tmp/\n```\n\nor `RUN curl … && echo \"$SHA256  tool.tgz\" | sha256sum -c -`.",
        example: "history step 7 adds a remote source without a checksum: ADD https://example.com/tool.tgz /opt/",
        references: &["https://docs.docker.com/reference/dockerfile/#add---checksum", "https://github.com/goodwithtech/dockle/blob/master/CHECKPOINT.md"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        for s in cx.steps.iter().filter(|s| s.instr == Instr::Add) {
            let (flags, sources, dest) = s.copy_parts();
            if flags.iter().any(|f| f.starts_with("--checksum")) {
                continue;
            }
            let remote: Vec<String> = sources.iter().filter(|u| u.contains("://") || u.starts_with("git@")).map(|u| secrets::redact(u).into_owned()).collect();
            if !remote.is_empty() {
                sink.emit(format!("{} adds a remote source without a checksum: ADD {} {dest}", step_name(s), remote.join(" ")), vec![cx.step(s.index)]);
            } else if sources.len() == 1 && sources[0].len() >= 32 && sources[0].bytes().all(|b| b.is_ascii_hexdigit()) {
                sink.emit(
                    format!("{} adds a remote source (the builder recorded only its content hash, which it does for URLs): ADD {} in {dest}", step_name(s), &sources[0][..12]),
                    vec![cx.step(s.index)],
                );
            }
        }
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_packages_by_manager() {
        for (m, p) in [
            ("apt-get", "golang-go"),
            ("apt-get", "golang"),
            ("apt", "golang-1.22-go"),
            ("apt-get", "golang-go=2:1.19~1"),
            ("apk", "go"),
            ("apk", "go=1.22.5-r0"),
            ("dnf", "golang"),
            ("yum", "golang-bin"),
            ("zypper", "go1.22"),
        ] {
            assert!(is_go_package(m, p), "{m} {p}");
        }
        for (m, p) in [
            ("apt-get", "golang-github-foo-dev"),
            ("apt-get", "golang-golang-x-net-dev"),
            ("apt-get", "gccgo"),
            ("apk", "go-task"),
            ("apk", "gopls"),
            ("dnf", "golang-github-x"),
        ] {
            assert!(!is_go_package(m, p), "{m} {p}");
        }
        let s = Script::parse("apt-get update && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold golang-go ca-certificates");
        assert_eq!(
            installed_packages(&s.cmds[1]),
            vec!["golang-go", "ca-certificates"]
        );
    }

    #[test]
    fn verification_and_targets() {
        let ok = Script::parse("curl -fsSL https://go.dev/dl/go.tgz | tar -xz -C /usr/local && echo \"abc  x\" | sha256sum -c -");
        assert!(verifies(&ok));
        let cmp = Script::parse("curl -fsSLo go.tgz https://x && [ \"$(sha256sum go.tgz | cut -d' ' -f1)\" = \"$SHA\" ]");
        assert!(verifies(&cmp));
        let gpg = Script::parse(
            "wget https://x/a.tgz https://x/a.tgz.asc && gpg --batch --verify a.tgz.asc a.tgz",
        );
        assert!(verifies(&gpg));
        let bad = Script::parse("echo sha256sum -c is good; curl https://x | sh");
        assert!(!verifies(&bad));

        let s = Script::parse("curl -fsSLO https://x/dl/go1.22.tgz && wget -q https://y/tool.zip -P /tmp && curl -o /tmp/i.sh https://z/i.sh");
        assert_eq!(download_target(&s.cmds[0]).as_deref(), Some("go1.22.tgz"));
        assert_eq!(
            download_target(&s.cmds[1]).as_deref(),
            Some("/tmp/tool.zip")
        );
        assert_eq!(download_target(&s.cmds[2]).as_deref(), Some("/tmp/i.sh"));
        let u = Script::parse("tar -C /usr/local -xzf go1.22.tgz && sh /tmp/i.sh && ./tool.zip && chmod +x /tmp/i.sh && cp go1.22.tgz /x");
        assert!(uses_file(&u.cmds[0], "go1.22.tgz"));
        assert!(uses_file(&u.cmds[1], "/tmp/i.sh"));
        assert!(uses_file(&u.cmds[2], "tool.zip"));
        assert!(uses_file(&u.cmds[3], "/tmp/i.sh"));
        assert!(!uses_file(&u.cmds[4], "go1.22.tgz"));
    }

    fn fires(rule: &Rule, run: &str) -> bool {
        !crate::rules::tests::run_on_history(
            rule,
            &[&format!("RUN /bin/sh -c {run} # buildkit")],
            &[],
        )
        .is_empty()
    }

    #[test]
    fn rules_read_commands_not_words() {
        for (rule, run, want) in [
            (&HIST001, "apt-get update && apt-get install -y golang-go", true),
            (&HIST001, "apt-get install -y golang-github-foo-dev", false),
            (&HIST001, "echo 'apt-get install golang' >> /notes", false),
            (&HIST001, "apk add --no-cache go=1.22.5-r0 git", true),
            (&HIST002, "curl -fsSL https://x/go.tgz | tar -xz -C /usr/local", true),
            (&HIST002, "curl -fsSL https://x/go.tgz | tar -xz -C /usr/local && echo \"$SHA  -\" | sha256sum -c -", false),
            (&HIST002, "curl -fsSLo /tmp/i.sh https://x/i.sh && sh /tmp/i.sh", true),
            (&HIST002, "sh -c \"$(curl -fsSL https://x/install.sh)\"", true),
            (&HIST002, "bash <(curl -s https://x/install.sh)", true),
            (&HIST002, "curl -fsS http://localhost:8080/healthz", false),
            (&HIST002, "wget http://x/tool.tgz", true),
            (&HIST002, "echo 'never curl | sh'", false),
            (&HIST003, "V=$(curl -s https://go.dev/VERSION?m=text)", true),
            (&HIST003, "go install golang.org/x/tools/cmd/goimports@v0.33.0", false),
            (&HIST003, "go install golang.org/x/tools/cmd/goimports@latest", true),
            (&HIST004, "CGO_ENABLED=0 go install ./cmd/...", true),
            (&HIST004, "go build -o /app . && echo go install", false),
        ] {
            assert_eq!(fires(rule, run), want, "{} on {run}", rule.id);
        }
        // Build arguments and ENV values in scope are substituted before reading.
        let h = crate::rules::tests::run_on_history(
            &HIST003,
            &[
                "ENV BASE=https://github.com/o/r/releases/latest/download",
                "RUN /bin/sh -c curl -fsSLO $BASE/x.tgz # buildkit",
            ],
            &[],
        );
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn floating_urls() {
        for u in [
            "https://go.dev/VERSION?m=text",
            "https://github.com/o/r/releases/latest/download/x.tgz",
            "https://x/api?version=latest",
            "https://golang.org/VERSION",
            "https://dl.k8s.io/release/stable.txt",
            "http://127.0.0.1:8000/VERSION?m=text",
        ] {
            assert!(floating_url(u), "{u}");
        }
        for u in [
            "https://go.dev/dl/go1.22.5.linux-amd64.tar.gz",
            "https://github.com/o/r/releases/download/v1.2.3/x.tgz",
            "https://latest.example.com/x",
            "https://go.dev/",
        ] {
            assert!(!floating_url(u), "{u}");
        }
    }
}
