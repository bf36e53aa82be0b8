//! DL001–DL003: the image compared with a distroless profile (`crate::profile`).
//!
//! The rules run only when a profile was chosen (`--profile`, or `profile = …` in the policy
//! file); without one they stay silent: FS and CFG rules already flag the hazards, and a
//! profile is a claim about what the image is meant to be that imgaudit cannot guess for an
//! Alpine or Debian-slim image. `auto` picks the closest built-in profile from what the image
//! contains (C++ runtime → `cc`, glibc or a glibc-dynamic executable → `base`, else `static`;
//! `:nonroot` when the config's User is not root).
//!
//! DL002 and DL003 reuse the FS rules' detection (`artifacts::inventory`); DL003 sorts every
//! regular file into: content the profile provides (its `owns` globs and libraries — replaced
//! by the profile's own baseline when rebasing), content that must travel with the
//! application (its executables, the libraries they load, the entrypoint, anything outside the
//! OS directories), and content a rebase would drop (FS artifacts, libraries the profile lacks
//! and nothing loads, other OS files, bytes deleted or overwritten by later layers).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::artifacts::{self, Artifact};
use super::user::{GROUP, PASSWD};
use super::{human_bytes, which, Binary, Doc, Family, Lookup, Rule, RuleCx, Sink};
use crate::finding::{Detail, Evidence, Severity, Visibility};
use crate::inspect::reads::ContentRead;
use crate::path;
use crate::profile::{self, PathKind, Profile, ProfileChoice, UserExpect};

/// Directories where distributions install shared libraries (all Debian multiarch triplets
/// and the classic ones).
const SYSTEM_LIB_DIRS: &[&str] = &[
    "lib",
    "lib64",
    "usr/lib",
    "usr/lib64",
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "lib/arm-linux-gnueabihf",
    "usr/lib/arm-linux-gnueabihf",
    "lib/s390x-linux-gnu",
    "usr/lib/s390x-linux-gnu",
    "lib/powerpc64le-linux-gnu",
    "usr/lib/powerpc64le-linux-gnu",
];

/// Top-level directories a distribution manages. Files there that the profile does not own
/// and the application does not load are dropped by a rebase; files elsewhere (`/app`,
/// `/usr/local`, `/opt`, `/srv`, `/home`) are the application's.
const OS_DIRS: &[&str] = &[
    "bin",
    "sbin",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "etc",
    "var",
    "boot",
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/lib32",
    "usr/lib64",
    "usr/libx32",
    "usr/libexec",
    "usr/share",
    "usr/include",
    "usr/src",
    "usr/games",
];

/// DL003 stays silent below this many removable bytes: rebasing to save less is not worth a
/// finding (the same threshold as FS014's wasted bytes).
pub(super) const REBASE_MIN_BYTES: u64 = 1 << 20;
/// Paths listed in DL003 evidence.
const TOP_PATHS: usize = 10;

/// The profile an image is compared with, and why.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) profile: Arc<Profile>,
    pub(crate) requested: String,
    pub(crate) reason: Option<String>,
}

/// The profile comparison in the report (absent when no profile was chosen).
#[derive(Clone, Debug, Serialize)]
pub struct ProfileSummary {
    /// The profile compared with (`static:nonroot`).
    pub name: String,
    /// What was asked for (`auto`, or the same name).
    pub requested: String,
    /// Why `auto` chose it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The profile's description.
    pub description: String,
    /// Approximate size of the real base image.
    pub baseline_bytes: u64,
    /// Bytes of the image: files in the final filesystem plus bytes later layers delete or
    /// overwrite.
    pub image_bytes: u64,
    /// Bytes of content the profile provides itself.
    pub profile_bytes: u64,
    /// Bytes that travel with the application when rebasing.
    pub application_bytes: u64,
    /// Bytes a rebase would drop.
    pub removable_bytes: u64,
    /// `baseline_bytes + application_bytes`.
    pub estimated_bytes: u64,
}

/// Picks the profile for an image.
pub(crate) fn resolve(cx: &RuleCx<'_>, choice: &ProfileChoice) -> Resolved {
    match choice {
        ProfileChoice::Named(p) => Resolved {
            profile: Arc::clone(p),
            requested: p.name.clone(),
            reason: None,
        },
        ProfileChoice::Auto => {
            let has = |soname: &str| system_library(cx, soname);
            let needs = |sonames: &[&str]| {
                cx.binaries
                    .iter()
                    .find(|b| b.elf().needed.iter().any(|n| sonames.contains(&n.as_str())))
            };
            let cxx = ["libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1"];
            let (name, why) = if let Some(p) = cxx.iter().find_map(|s| has(s)) {
                ("cc", format!("C++ runtime present: {}", path::display(&p)))
            } else if let Some(b) = needs(&cxx) {
                (
                    "cc",
                    format!("{} needs the C++ runtime", path::display(&b.path)),
                )
            } else if let Some(p) = has("libc.so.6") {
                ("base", format!("glibc present: {}", path::display(&p)))
            } else if let Some(b) = cx.binaries.iter().find(|b| {
                b.elf()
                    .interpreter
                    .as_deref()
                    .is_some_and(|i| i.contains("ld-linux"))
            }) {
                (
                    "base",
                    format!("{} is glibc-dynamic", path::display(&b.path)),
                )
            } else {
                (
                    "static",
                    "no C library and no dynamic executable".to_string(),
                )
            };
            let base = profile::builtin().get(name).expect("built-in profile");
            let (p, user_why) = match runs_as_root(cx) {
                Some(false) => (Arc::new(base.nonroot()), "; User is not root"),
                _ => (base, ""),
            };
            Resolved {
                reason: Some(format!("auto chose {}: {why}{user_why}", p.name)),
                profile: p,
                requested: "auto".into(),
            }
        }
    }
}

/// Whether the config's User is root; `None` without a config.
fn runs_as_root(cx: &RuleCx<'_>) -> Option<bool> {
    let c = cx.config()?;
    let user = c.config.user.trim();
    let u = user.split(':').next().unwrap_or("");
    Some(match u {
        "" | "0" | "root" => true,
        n => match n.parse::<u32>() {
            Ok(id) => id == 0,
            Err(_) => super::user::id_table(cx, "etc/passwd")
                .and_then(|t| t.into_iter().find(|(name, _)| name == n))
                .is_some_and(|(_, id)| id == 0),
        },
    })
}

/// The path of a library named `soname` in a system library directory.
fn system_library(cx: &RuleCx<'_>, soname: &str) -> Option<String> {
    SYSTEM_LIB_DIRS
        .iter()
        .find_map(|d| match cx.fs.lookup(&path::child(d, soname)) {
            Ok(Some((p, n))) if n.is_file() => Some(p),
            _ => None,
        })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Whether a library file is one the profile provides: by file name (`libc.so.6`) or by its
/// ELF soname (`libstdc++.so.6.0.30` has soname `libstdc++.so.6`), in a system directory.
fn provided(p: &Profile, fp: &str, n: &crate::fs::Node) -> bool {
    in_system_lib_dir(fp)
        && (p.provides_library(path::file_name(fp))
            || n.facts
                .as_ref()
                .and_then(|f| f.elf.as_ref())
                .and_then(|e| e.soname.as_deref())
                .is_some_and(|s| p.provides_library(s)))
}

fn in_system_lib_dir(p: &str) -> bool {
    SYSTEM_LIB_DIRS.contains(&path::parent(p.trim_start_matches('/')))
}

fn in_os_dir(p: &str) -> bool {
    OS_DIRS.iter().any(|d| artifacts::under(p, d)) && !artifacts::under(p, "usr/local")
}

fn missing(p: &str) -> Evidence {
    Evidence {
        path: Some(path::display(p)),
        ..Evidence::default()
    }
}

fn config_field(field: &str, value: &str) -> Evidence {
    Evidence {
        detail: Some(Detail::ConfigField {
            field: field.into(),
            value: value.into(),
        }),
        ..Evidence::default()
    }
}

/// Executables of the product: ELF executables that are not FS artifacts or toolchain files.
fn product_executables<'a>(
    cx: &'a RuleCx<'a>,
    arts: &'a [Artifact],
) -> impl Iterator<Item = &'a Binary> + 'a {
    cx.binaries.iter().filter(move |b| {
        b.elf().is_executable()
            && b.startable
            && b.foreign.is_none()
            && b.node.is_file()
            && !cx.is_toolchain(b)
            && !in_artifact(arts, &b.path)
    })
}

fn in_artifact(arts: &[Artifact], p: &str) -> bool {
    arts.iter().any(|a| {
        if a.tree {
            artifacts::under(p, &a.root)
        } else {
            a.root == p || a.names.iter().any(|n| n == p)
        }
    })
}

// ------------------------------------------------------------------------------------- DL001

/// DL001
/// The dpkg database, read for the profile's packages. Every DL rule resolves the profile,
/// which for `auto` may read `/etc/passwd` (is `User` root?).
const DPKG_STATUS: ContentRead = ContentRead::whole("var/lib/dpkg/status");

pub(super) const DL001: Rule = Rule {
    id: "DL001",
    name: "profile-fact-missing",
    family: Family::Dl,
    severity: Severity::Medium,
    summary: "A fact the chosen distroless profile requires is missing from the image",
    remediation: "Add what the profile expects (or start FROM the distroless image the profile describes), or choose the profile that matches the image.",
    doc: Doc {
        what: "With `--profile NAME` (or `profile = \"NAME\"` in `imgaudit.toml`), each requirement of the profile that the image does not meet, one finding each: a required file or directory that is missing, of the wrong kind, mode (`/tmp` must be `1777`) or owner, or empty — the CA bundle `/etc/ssl/certs/ca-certificates.crt`, `/usr/share/zoneinfo`, `/etc/nsswitch.conf`, `/etc/os-release`, `/etc/services`, `/etc/passwd` and `/etc/group`, home directories; an `/etc/passwd` or `/etc/group` entry (root 0, nobody 65534, nonroot 65532); a config `Env` entry (`SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt`, `PATH`); a non-root `User` for `:nonroot` profiles; dpkg metadata (`/var/lib/dpkg/status.d/<pkg>`) of the profile's packages; the profile's shared libraries (`base`: glibc and OpenSSL 3; `cc`: also libgcc_s, libstdc++, libgomp); for `static`, every executable must be static (no ELF interpreter); for `base`/`cc`, every library an executable loads from the system directories must be one the profile provides. Profiles `static`, `base`, `cc` mirror gcr.io/distroless's `*-debian12` images; `auto` picks the closest; user profiles come from the policy file. Without a profile, DL rules do not run.",
        why: "The profile is what the image claims to be. Each missing fact is a run-time failure waiting for its first use: no CA bundle means `x509: certificate signed by unknown authority`, no zoneinfo means `unknown time zone`, no nonroot entry means `runAsUser: 65532` images that cannot resolve their home directory, a `/tmp` that is not `1777` breaks every program that writes temporary files as non-root, missing dpkg metadata hides the C library from vulnerability scanners, and a dynamic executable cannot start on `static`.",
        fix: "Start from the image the profile describes and copy only the application:\n\n```dockerfile\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n```\n\nWith `FROM scratch`, copy the facts yourself:\n\n```dockerfile\nCOPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/\nCOPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo\nCOPY passwd group /etc/\nENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\nUSER 65532:65532\n```\n\nIf the image is meant to be something else, pick that profile (`--profile base`) or describe it in `imgaudit.toml` (`[profiles.NAME]`, docs/policy.md).",
        example: "profile static:nonroot: CA certificate bundle /etc/ssl/certs/ca-certificates.crt is missing",
        references: &["https://github.com/GoogleContainerTools/distroless", "https://github.com/GoogleContainerTools/distroless/blob/main/base/README.md", "docs/policy.md"],
    },
    needs_config: false,
    reads: &[PASSWD, GROUP, DPKG_STATUS],
    check: check_dl001,
};

fn check_dl001(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let Some(r) = cx.profile() else { return };
    let p = &*r.profile;
    let name = &p.name;
    // Files and directories. Owners are not checked in a bare root filesystem (`dir:`): a
    // rootless unpack (umoci --rootless, podman unshare) gives every file the caller's ids.
    let owners = cx.image.config.is_some();
    for e in p.paths.iter().filter(|e| e.required) {
        let shown = path::display(&e.path);
        let problem = match cx.fs.lookup(&e.path) {
            Ok(Some((real, n))) => {
                let mut probs = Vec::new();
                let kind_ok = match e.kind {
                    PathKind::File => n.is_file(),
                    PathKind::Dir => n.is_dir(),
                    PathKind::Any => true,
                };
                if !kind_ok {
                    probs.push(format!(
                        "is not a {}",
                        if e.kind == PathKind::File {
                            "regular file"
                        } else {
                            "directory"
                        }
                    ));
                }
                if let Some(m) = e.mode.filter(|m| n.mode & 0o7777 != *m) {
                    probs.push(format!(
                        "has mode {:04o}, expected {m:04o}",
                        n.mode & 0o7777
                    ));
                }
                if let Some(u) = e.uid.filter(|u| owners && n.uid != *u) {
                    probs.push(format!("is owned by uid {}, expected {u}", n.uid));
                }
                if let Some(g) = e.gid.filter(|g| owners && n.gid != *g) {
                    probs.push(format!("has gid {}, expected {g}", n.gid));
                }
                if kind_ok && e.nonempty {
                    let empty = if n.is_dir() {
                        cx.fs.descendants(&real).next().is_none()
                    } else {
                        n.size == 0
                    };
                    if empty {
                        probs.push("is empty".into());
                    }
                }
                (!probs.is_empty()).then(|| (probs.join(", "), cx.file(&real, n.layer)))
            }
            _ => Some(("is missing".to_string(), missing(&e.path))),
        };
        if let Some((what, ev)) = problem {
            sink.emit(
                format!("profile {name}: {} {shown} {what}", e.what),
                vec![ev],
            );
        }
    }
    // passwd and group entries.
    for (file, list, label) in [
        ("etc/passwd", &p.users, "user"),
        ("etc/group", &p.groups, "group"),
    ] {
        if list.is_empty() {
            continue;
        }
        let Some(content) = cx.fs.content(file) else {
            if !p.paths.iter().any(|e| e.required && e.path == file) {
                sink.emit(
                    format!("profile {name}: /{file} is missing"),
                    vec![missing(file)],
                );
            }
            continue;
        };
        let text = String::from_utf8_lossy(content);
        let entries: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.split(':').collect())
            .collect();
        let layer = cx
            .fs
            .lookup(file)
            .ok()
            .flatten()
            .map_or(0, |(_, n)| n.layer);
        for a in list {
            let found = entries.iter().find(|f| f.first() == Some(&a.name.as_str()));
            let problem = match found {
                None => Some(format!("has no {label} {} ({})", a.name, a.id)),
                Some(f) => {
                    let id = f.get(2).and_then(|v| v.trim().parse::<u32>().ok());
                    let gid = if label == "user" {
                        f.get(3).and_then(|v| v.trim().parse::<u32>().ok())
                    } else {
                        None
                    };
                    let home = if label == "user" {
                        f.get(5).copied()
                    } else {
                        None
                    };
                    if id != Some(a.id) {
                        Some(format!(
                            "has {label} {} with id {}, expected {}",
                            a.name,
                            f.get(2).unwrap_or(&"?"),
                            a.id
                        ))
                    } else if a.gid.is_some() && gid != a.gid {
                        Some(format!(
                            "has user {} with group {}, expected {}",
                            a.name,
                            f.get(3).unwrap_or(&"?"),
                            a.gid.unwrap_or(0)
                        ))
                    } else if a.home.as_deref().is_some_and(|h| home != Some(h)) {
                        Some(format!(
                            "has user {} with home {}, expected {}",
                            a.name,
                            home.unwrap_or("?"),
                            a.home.as_deref().unwrap_or("")
                        ))
                    } else {
                        None
                    }
                }
            };
            if let Some(pr) = problem {
                sink.emit(
                    format!("profile {name}: /{file} {pr}"),
                    vec![cx.file(file, layer)],
                );
            }
        }
    }
    // Config.
    if let Some(c) = cx.config() {
        for (k, want) in &p.env {
            match (c.config.env_var(k).filter(|v| !v.is_empty()), want) {
                (None, Some(w)) => sink.emit(
                    format!("profile {name}: config Env has no {k} (expected {k}={w})"),
                    vec![config_field("Env", k)],
                ),
                (None, None) => sink.emit(
                    format!("profile {name}: config Env has no {k}"),
                    vec![config_field("Env", k)],
                ),
                (Some(v), Some(w)) if v != w => sink.emit(
                    format!("profile {name}: config Env has {k}={v}, expected {k}={w}"),
                    vec![config_field("Env", &format!("{k}={v}"))],
                ),
                _ => {}
            }
        }
        if p.user == UserExpect::NonRoot && runs_as_root(cx) == Some(true) {
            let u = c.config.user.trim();
            let shown = if u.is_empty() {
                "empty".to_string()
            } else {
                format!("{u:?}")
            };
            sink.emit(
                format!("profile {name}: the image runs as root (User is {shown}); the profile runs as a non-root user (65532)"),
                vec![config_field("User", u)],
            );
        }
    }
    // dpkg metadata.
    let status = cx
        .fs
        .content("var/lib/dpkg/status")
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    let absent: Vec<&String> = p
        .packages
        .iter()
        .filter(|pkg| {
            let in_status_d = cx.fs.get(&format!("var/lib/dpkg/status.d/{pkg}")).is_some()
                || cx.fs.descendants("var/lib/dpkg/status.d").any(|(k, _)| {
                    path::file_name(k)
                        .strip_prefix(pkg.as_str())
                        .is_some_and(|r| r.starts_with(':'))
                });
            let in_status = status.lines().any(|l| {
                l.strip_prefix("Package:")
                    .is_some_and(|v| v.trim() == pkg.as_str())
            });
            !in_status_d && !in_status
        })
        .collect();
    if !absent.is_empty() {
        let names: Vec<&str> = absent.iter().map(|s| s.as_str()).collect();
        sink.emit(
            format!(
                "profile {name}: dpkg metadata (/var/lib/dpkg/status.d/) of {} is missing: {}",
                plural(names.len(), "package", "packages"),
                names.join(", ")
            ),
            absent
                .iter()
                .map(|pkg| missing(&format!("var/lib/dpkg/status.d/{pkg}")))
                .collect(),
        );
    }
    // Libraries.
    let absent: Vec<&String> = p
        .libraries
        .iter()
        .filter(|so| system_library(cx, so).is_none())
        .collect();
    if !absent.is_empty() {
        let names: Vec<&str> = absent.iter().map(|s| s.as_str()).collect();
        sink.emit(
            format!(
                "profile {name}: {} missing from the system library directories: {}",
                plural(names.len(), "shared library is", "shared libraries are"),
                names.join(", ")
            ),
            absent
                .iter()
                .map(|so| missing(&format!("lib/x86_64-linux-gnu/{so}")))
                .collect(),
        );
    }
    // Executables the profile cannot run.
    let arts = artifacts::inventory(cx);
    for b in product_executables(cx, &arts) {
        let elf = b.elf();
        if p.static_only {
            if let Some(i) = &elf.interpreter {
                sink.emit(
                    format!("profile {name}: {} is dynamically linked (interpreter {i}); the profile runs only static executables", path::display(&b.path)),
                    vec![cx.file(&b.path, b.node.layer)],
                );
            }
            continue;
        }
        let Some(run) = &b.run else { continue };
        let mut lacking: BTreeSet<&str> = BTreeSet::new();
        for l in &run.resolved {
            if l.path != "(loader)" && !p.provides_library(&l.name) && in_system_lib_dir(&l.path) {
                lacking.insert(&l.name);
            }
        }
        for m in &run.missing {
            if !p.provides_library(&m.name) {
                lacking.insert(&m.name);
            }
        }
        if !lacking.is_empty() {
            let list: Vec<&str> = lacking.into_iter().collect();
            sink.emit(
                format!(
                    "profile {name}: {} needs {}, which the profile does not provide",
                    path::display(&b.path),
                    list.join(", ")
                ),
                vec![cx.file(&b.path, b.node.layer)],
            );
        }
    }
}

// ------------------------------------------------------------------------------------- DL002

/// DL002
pub(super) const DL002: Rule = Rule {
    id: "DL002",
    name: "profile-extra-content",
    family: Family::Dl,
    severity: Severity::Medium,
    summary: "The image carries content the chosen distroless profile does not have",
    remediation: "Drop it from the runtime stage; distroless images have no shell, package manager, toolchain or extra libraries.",
    doc: Doc {
        what: "With a profile chosen, content the profile's image does not have: what FS001 (shells), FS002 (package managers), FS003 (Go toolchains), FS004/FS005 (module and build caches), FS006 (`go install`ed tools), FS008 (build tools) and FS009 (network and debug tools) detect — one finding per item, naming the FS rule — and shared libraries in the system library directories that the profile does not provide (any C library for `static`; anything beyond glibc and OpenSSL for `base`), with the executables that load them. Libraries an application ships in its own directories (`/opt/app/lib`) are the application's, not extra content.",
        why: "The point of a distroless base is what it leaves out. Each of these items is attack surface the profile does not have, and each extra system library is a package to patch that the profile's vulnerability feed does not cover. The FS rules report the hazard; DL002 reports the distance to the profile, so that `--profile` alone tells what stands between the image and its target base.",
        fix: "Build in one stage and copy only the binary into the profile's image:\n\n```dockerfile\nFROM golang:1.27 AS build\nRUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```\n\nIf the application needs a library the profile lacks, use the next profile up (`base`, `cc`) or copy the library next to the application and describe the result as your own profile.",
        example: "profile static:nonroot: shell /bin/busybox (also /bin/sh, /bin/ash) is not part of the profile (FS001)",
        references: &["https://github.com/GoogleContainerTools/distroless#why-should-i-use-distroless-images", "docs/policy.md"],
    },
    needs_config: false,
    reads: &[PASSWD],
    check: check_dl002,
};

fn check_dl002(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let Some(r) = cx.profile() else { return };
    let name = &r.profile.name;
    let arts = artifacts::inventory(cx);
    for a in &arts {
        let also = if a.names.is_empty() {
            String::new()
        } else {
            let shown: Vec<String> = a.names.iter().take(5).map(|n| path::display(n)).collect();
            let more = if a.names.len() > 5 {
                format!(" and {} more", a.names.len() - 5)
            } else {
                String::new()
            };
            format!(" (also {}{more})", shown.join(", "))
        };
        let bytes = if a.tree {
            format!(", {}", human_bytes(cx.fs.bytes_under(&a.root)))
        } else {
            String::new()
        };
        let mut e = cx.file(&a.root, a.layer);
        if a.tree {
            e.detail = Some(Detail::Bytes {
                bytes: cx.fs.bytes_under(&a.root),
            });
        }
        sink.emit(
            format!(
                "profile {name}: {} {}{also} is not part of the profile ({}{bytes})",
                a.what.join(" and "),
                path::display(&a.root),
                a.rules.join(", ")
            ),
            vec![e],
        );
    }
    let extra = extra_libraries(cx, &r.profile, &arts);
    if !extra.is_empty() {
        let total: u64 = extra.iter().map(|l| l.bytes).sum();
        let mut shown: Vec<String> = Vec::new();
        for l in extra.iter().take(TOP_PATHS) {
            let by = if l.needed_by.is_empty() {
                String::new()
            } else {
                format!(
                    ", needed by {}",
                    l.needed_by
                        .iter()
                        .map(|b| path::display(b))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            shown.push(format!("{}{by}", path::display(&l.path)));
        }
        if extra.len() > TOP_PATHS {
            shown.push(format!("{} more", extra.len() - TOP_PATHS));
        }
        let ev = extra
            .iter()
            .take(TOP_PATHS)
            .map(|l| {
                let mut e = cx.file(&l.path, l.layer);
                e.detail = Some(Detail::Bytes { bytes: l.bytes });
                e
            })
            .collect();
        sink.emit(
            format!(
                "profile {name}: {} shared librar{} the profile does not provide ({}): {}",
                extra.len(),
                if extra.len() == 1 { "y" } else { "ies" },
                human_bytes(total),
                shown.join("; ")
            ),
            ev,
        );
    }
}

struct ExtraLib {
    path: String,
    bytes: u64,
    layer: usize,
    needed_by: Vec<String>,
}

/// Shared objects in system library directories that the profile neither provides nor owns,
/// largest first.
fn extra_libraries(cx: &RuleCx<'_>, p: &Profile, arts: &[Artifact]) -> Vec<ExtraLib> {
    // Who loads what, by resolved path.
    let mut users: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for b in product_executables(cx, arts) {
        if let Some(run) = &b.run {
            for l in &run.resolved {
                users
                    .entry(l.path.as_str())
                    .or_default()
                    .push(b.path.clone());
            }
        }
    }
    let mut out: Vec<ExtraLib> = Vec::new();
    for b in cx.binaries {
        let name = path::file_name(&b.path);
        let is_lib =
            b.elf().linkage == crate::inspect::Linkage::SharedLibrary || name.contains(".so");
        if !is_lib
            || !b.node.is_file()
            || !in_system_lib_dir(&b.path)
            || provided(p, &b.path, &b.node)
            || p.owns(&b.path)
            || in_artifact(arts, &b.path)
        {
            continue;
        }
        let shown = path::display(&b.path);
        let needed_by = users.get(shown.as_str()).cloned().unwrap_or_default();
        out.push(ExtraLib {
            path: b.path.clone(),
            bytes: b.node.size,
            layer: b.node.layer,
            needed_by,
        });
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    out
}

// ------------------------------------------------------------------------------------- DL003

/// DL003
pub(super) const DL003: Rule = Rule {
    id: "DL003",
    name: "profile-extra-bytes",
    family: Family::Dl,
    severity: Severity::Info,
    summary: "The image is larger than its distroless profile plus the application; estimated size if rebased",
    remediation: "Rebase the runtime stage on the profile's image and copy only the application.",
    doc: Doc {
        what: "With a profile chosen, the bytes a rebase on the profile would drop, largest paths first, and the estimated size of the rebased image. Every regular file of the final filesystem is sorted into content the profile provides (its `owns` globs and libraries; replaced by the profile's own baseline size), content that travels with the application (its executables, the libraries they load, the entrypoint, and everything outside the OS directories: `/app`, `/usr/local`, `/opt`, `/srv`, `/home`) and content a rebase drops (FS001–FS009 items, libraries the profile lacks that nothing loads, other files in OS directories such as `/var/lib/apt/lists` or `/usr/share/locale`); bytes that later layers delete or overwrite (FS014) are dropped too. The estimate is the profile's baseline plus the application's bytes, uncompressed. Reported when the dropped bytes reach 1 MiB; the report's `profile` section always carries the numbers.",
        why: "Image size is pull time on every node, cold-start latency and registry cost, and most of it in a typical Go image is a distribution the binary never touches. The estimate says what moving to the profile is worth before anyone rewrites a Dockerfile.",
        fix: "```dockerfile\nFROM golang:1.27 AS build\n…\nFROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/app /app\n```\n\nIf the dropped content is needed at run time, carry it explicitly (`COPY --from=build /usr/lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/`) and describe the result as your own profile in `imgaudit.toml`.",
        example: "profile static:nonroot: 214.3 MiB of 221.5 MiB would be dropped by a rebase; estimated size 9.2 MiB (profile 2.0 MiB + application 7.2 MiB); largest: /usr/local/go 190.1 MiB (FS003), /var/lib/apt/lists 18.2 MiB",
        references: &["https://github.com/GoogleContainerTools/distroless", "https://github.com/wagoodman/dive"],
    },
    needs_config: false,
    reads: &[PASSWD],
    check: check_dl003,
};

/// What a rebase on the profile would drop: (path, bytes, note, layer, visibility).
struct Dropped {
    path: String,
    bytes: u64,
    note: Option<String>,
    layer: usize,
    visibility: Visibility,
}

/// Sorts the image's bytes against a profile.
pub(crate) struct Comparison {
    pub(crate) summary: ProfileSummary,
    dropped: Vec<Dropped>,
}

pub(crate) fn compare(cx: &RuleCx<'_>, r: &Resolved) -> Comparison {
    let p = &*r.profile;
    let arts = artifacts::inventory(cx);
    // Paths the application needs at run time.
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for b in product_executables(cx, &arts) {
        needed.insert(b.path.clone());
        if let Some(run) = &b.run {
            for l in &run.resolved {
                needed.insert(l.path.trim_start_matches('/').to_string());
            }
        }
        if let Some(i) = &b.elf().interpreter {
            if let Ok(Some((real, _))) = cx.fs.lookup(i) {
                needed.insert(real);
            }
        }
    }
    if let Some(c) = cx.config() {
        if let Some(arg0) = c.config.argv().first() {
            let wd = if c.config.working_dir.is_empty() {
                "/"
            } else {
                c.config.working_dir.as_str()
            };
            if let Lookup::Found(p, _) = which(cx.fs, arg0, &cx.path_env(), wd) {
                needed.insert(p);
            }
        }
    }
    let mut art_bytes: BTreeMap<usize, u64> = BTreeMap::new();
    let mut other: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    let mut extra_libs: Vec<Dropped> = Vec::new();
    let (mut owned, mut app, mut image) = (0u64, 0u64, 0u64);
    for (fp, n) in cx.fs.iter() {
        if !n.is_file() {
            continue;
        }
        image += n.size;
        let art = arts.iter().position(|a| {
            if a.tree {
                artifacts::under(fp, &a.root)
            } else {
                a.root == fp
            }
        });
        if let Some(i) = art {
            *art_bytes.entry(i).or_default() += n.size;
            continue;
        }
        if needed.contains(fp) {
            if p.owns(fp) || provided(p, fp, n) {
                owned += n.size;
            } else {
                app += n.size;
            }
            continue;
        }
        if p.owns(fp) || provided(p, fp, n) {
            owned += n.size;
        } else if in_system_lib_dir(fp)
            && (n.facts.as_ref().is_some_and(|f| f.elf.is_some())
                || path::file_name(fp).contains(".so"))
        {
            extra_libs.push(Dropped {
                path: fp.to_string(),
                bytes: n.size,
                note: Some("library the profile does not provide".into()),
                layer: n.layer,
                visibility: Visibility::Final,
            });
        } else if in_os_dir(fp) {
            let key: Vec<&str> = fp.split('/').take(3).collect();
            let key = if fp.split('/').count() > 3 {
                key.join("/")
            } else {
                path::parent(fp).to_string()
            };
            let e = other.entry(key).or_insert((0, n.layer));
            e.0 += n.size;
            e.1 = e.1.min(n.layer);
        } else {
            app += n.size;
        }
    }
    let mut dropped: Vec<Dropped> = Vec::new();
    for (i, bytes) in art_bytes {
        let a = &arts[i];
        dropped.push(Dropped {
            path: a.root.clone(),
            bytes,
            note: Some(a.rules.join(", ")),
            layer: a.layer,
            visibility: Visibility::Final,
        });
    }
    dropped.extend(extra_libs);
    for (k, (bytes, layer)) in other {
        dropped.push(Dropped {
            path: k,
            bytes,
            note: None,
            layer,
            visibility: Visibility::Final,
        });
    }
    let mut wasted = 0u64;
    let mut wasted_layer = None;
    for s in cx.fs.shadows() {
        wasted += s.size;
        wasted_layer = Some(wasted_layer.map_or(s.added_in, |l: usize| l.min(s.added_in)));
    }
    image += wasted;
    if wasted > 0 {
        let biggest = cx
            .fs
            .shadows()
            .iter()
            .max_by(|a, b| a.size.cmp(&b.size).then(b.path.cmp(&a.path)))
            .expect("non-empty");
        let vis = if biggest.how == crate::fs::Removal::Overwritten {
            Visibility::OverwrittenIn(biggest.removed_in)
        } else {
            Visibility::DeletedIn(biggest.removed_in)
        };
        dropped.push(Dropped {
            path: biggest.path.to_string(),
            bytes: wasted,
            note: Some(format!(
                "deleted or overwritten by later layers, {} files (FS014)",
                cx.fs.shadows().len()
            )),
            layer: wasted_layer.unwrap_or(0),
            visibility: vis,
        });
    }
    dropped.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    let removable: u64 = dropped.iter().map(|d| d.bytes).sum();
    Comparison {
        summary: ProfileSummary {
            name: p.name.clone(),
            requested: r.requested.clone(),
            reason: r.reason.clone(),
            description: p.description.clone(),
            baseline_bytes: p.baseline_bytes,
            image_bytes: image,
            profile_bytes: owned,
            application_bytes: app,
            removable_bytes: removable,
            estimated_bytes: p.baseline_bytes + app,
        },
        dropped,
    }
}

fn check_dl003(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let Some(c) = cx.comparison() else { return };
    let s = &c.summary;
    if s.removable_bytes < REBASE_MIN_BYTES {
        return;
    }
    let top: Vec<String> = c
        .dropped
        .iter()
        .take(5)
        .map(|d| {
            format!(
                "{} {}{}",
                path::display(&d.path),
                human_bytes(d.bytes),
                d.note
                    .as_deref()
                    .filter(|n| n.starts_with("FS"))
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let ev = c
        .dropped
        .iter()
        .take(TOP_PATHS)
        .map(|d| {
            let mut e = cx.file(&d.path, d.layer);
            e.visibility = d.visibility;
            e.detail = Some(Detail::Bytes { bytes: d.bytes });
            e
        })
        .collect();
    sink.emit(
        format!(
            "profile {}: {} of {} would be dropped by a rebase; estimated size {} (profile {} + application {}); largest: {}",
            s.name,
            human_bytes(s.removable_bytes),
            human_bytes(s.image_bytes),
            human_bytes(s.estimated_bytes),
            human_bytes(s.baseline_bytes),
            human_bytes(s.application_bytes),
            top.join(", ")
        ),
        ev,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_and_lib_dirs() {
        assert!(in_os_dir("var/lib/apt/lists/x"));
        assert!(in_os_dir("usr/share/locale/de/x.mo"));
        assert!(!in_os_dir("usr/local/bin/app"));
        assert!(!in_os_dir("app"));
        assert!(!in_os_dir("opt/x/lib/libfoo.so"));
        assert!(in_system_lib_dir("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(in_system_lib_dir("usr/lib/libz.so.1"));
        assert!(!in_system_lib_dir("opt/hello/lib/libgreet.so.1"));
    }
}
