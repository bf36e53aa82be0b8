//! FS010–FS014: files a Go binary needs but the image lacks, risky permissions, wasted bytes.

use std::collections::BTreeMap;

use super::{human_bytes, Binary, Doc, Family, Rule, RuleCx, Sink};
use crate::finding::{Detail, Evidence, Severity, Visibility};
use crate::fs::{NodeKind, Removal};
use crate::path;

/// Files Go's `crypto/x509` reads on Linux (`root_linux.go` `certFiles`), in order.
const CERT_FILES: &[&str] = &[
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/ssl/cert.pem",
];
/// Directories it reads every file of (`certDirectories`).
const CERT_DIRS: &[&str] = &["etc/ssl/certs", "etc/pki/tls/certs"];
/// Where Go's `time` package looks for the zone database (`zoneinfo_unix.go`).
const ZONE_DIRS: &[&str] = &[
    "usr/share/zoneinfo",
    "usr/share/lib/zoneinfo",
    "usr/lib/locale/TZ",
    "etc/zoneinfo",
];

fn go_binaries_using<'a>(
    cx: &'a RuleCx<'a>,
    pred: impl Fn(&crate::inspect::go::GoUses) -> bool + 'a,
) -> impl Iterator<Item = &'a Binary> + 'a {
    cx.product_go_binaries().filter(move |b| {
        b.elf()
            .go
            .as_ref()
            .and_then(|g| g.uses)
            .is_some_and(|u| pred(&u))
    })
}

fn nonempty_file(cx: &RuleCx<'_>, p: &str) -> bool {
    cx.fs
        .lookup(p)
        .ok()
        .flatten()
        .is_some_and(|(_, n)| n.is_file() && n.size > 0)
}

fn dir_has_files(cx: &RuleCx<'_>, p: &str) -> bool {
    match cx.fs.lookup(p) {
        Ok(Some((d, n))) if n.is_dir() => cx
            .fs
            .descendants(&d)
            .any(|(_, n)| matches!(n.kind, NodeKind::File | NodeKind::Symlink(_))),
        _ => false,
    }
}

/// FS010
pub(super) const FS010: Rule = Rule {
    id: "FS010",
    name: "ca-certificates-missing",
    family: Family::Fs,
    severity: Severity::High,
    summary: "A Go binary uses TLS but the image has no CA certificate bundle",
    remediation: "Add a CA bundle (distroless/static ships one) or copy /etc/ssl/certs/ca-certificates.crt from the build stage.",
    doc: Doc {
        what: "A Go binary that links `crypto/tls` or `crypto/x509` (read from its pclntab function-name table) in an image where none of the files Go's `crypto/x509` loads on Linux exists — `/etc/ssl/certs/ca-certificates.crt` and its RHEL, SUSE and Alpine equivalents, or files in `/etc/ssl/certs`, `/etc/pki/tls/certs` — honouring `SSL_CERT_FILE` and `SSL_CERT_DIR` from the image config.",
        why: "Every outbound HTTPS call fails at run time with `x509: certificate signed by unknown authority`. The classic cause is `FROM scratch` with a Go binary and nothing else.",
        fix: "```dockerfile\nFROM gcr.io/distroless/static-debian12:nonroot   # ships the bundle and SSL_CERT_FILE\n```\n\nor, with scratch:\n\n```dockerfile\nCOPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/\n```",
        example: "/app uses crypto/tls, but the image has no CA certificates (looked for /etc/ssl/certs/ca-certificates.crt and 5 other bundles, /etc/ssl/certs, /etc/pki/tls/certs)",
        references: &["https://go.dev/src/crypto/x509/root_linux.go"],
    },
    needs_config: false,
    reads: &[],
    check: check_fs010,
};

fn check_fs010(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let users: Vec<&Binary> = go_binaries_using(cx, |u| u.crypto_tls || u.crypto_x509).collect();
    if users.is_empty() {
        return;
    }
    let env = |k: &str| {
        cx.config()
            .and_then(|c| c.config.env_var(k))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let files: Vec<String> = match env("SSL_CERT_FILE") {
        Some(f) => vec![f.trim_start_matches('/').to_string()],
        None => CERT_FILES.iter().map(|s| (*s).to_string()).collect(),
    };
    let dirs: Vec<String> = match env("SSL_CERT_DIR") {
        Some(d) => d
            .split(':')
            .map(|s| s.trim_start_matches('/').to_string())
            .collect(),
        None => CERT_DIRS.iter().map(|s| (*s).to_string()).collect(),
    };
    if files.iter().any(|f| nonempty_file(cx, f)) || dirs.iter().any(|d| dir_has_files(cx, d)) {
        return;
    }
    let looked: Vec<String> = files
        .iter()
        .chain(dirs.iter())
        .map(|p| path::display(p))
        .collect();
    for b in users {
        sink.emit(
            format!(
                "{} uses crypto/tls, but the image has no CA certificates (looked for {})",
                path::display(&b.path),
                looked.join(", ")
            ),
            vec![cx.file(&b.path, b.node.layer)],
        );
    }
}

/// FS011
pub(super) const FS011: Rule = Rule {
    id: "FS011",
    name: "tzdata-missing",
    family: Family::Fs,
    severity: Severity::Low,
    summary: "A Go binary loads time zones by name but the image has no zone database",
    remediation: "Import _ \"time/tzdata\" in the program, build with -tags timetzdata, or add tzdata to the image.",
    doc: Doc {
        what: "A Go binary that links `time.LoadLocation` but not the embedded `time/tzdata` package, in an image without a zone database where Go looks (`/usr/share/zoneinfo`, `/usr/share/lib/zoneinfo`, `/usr/lib/locale/TZ`, `/etc/zoneinfo`, or `ZONEINFO` from the config).",
        why: "`time.LoadLocation(\"Europe/Berlin\")` returns `unknown time zone` at run time: scheduling, reports and log timestamps silently fall back or fail.",
        fix: "Embed the database (about 450 KB):\n\n```go\nimport _ \"time/tzdata\"\n```\n\nor `go build -tags timetzdata`, or use a base with tzdata (distroless/static has it).",
        example: "/app calls time.LoadLocation but the image has no zone database and the binary does not embed time/tzdata",
        references: &["https://pkg.go.dev/time/tzdata", "https://pkg.go.dev/time#LoadLocation"],
    },
    needs_config: false,
    reads: &[],
    check: check_fs011,
};

fn check_fs011(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let users: Vec<&Binary> =
        go_binaries_using(cx, |u| u.time_load_location && !u.time_tzdata).collect();
    if users.is_empty() {
        return;
    }
    let zoneinfo_env = cx
        .config()
        .and_then(|c| c.config.env_var("ZONEINFO"))
        .filter(|v| !v.is_empty());
    let env_ok = zoneinfo_env.is_some_and(|z| nonempty_file(cx, z) || dir_has_files(cx, z));
    if env_ok || ZONE_DIRS.iter().any(|d| dir_has_files(cx, d)) {
        return;
    }
    for b in users {
        sink.emit(
            format!("{} calls time.LoadLocation but the image has no zone database and the binary does not embed time/tzdata", path::display(&b.path)),
            vec![cx.file(&b.path, b.node.layer)],
        );
    }
}

/// FS012
pub(super) const FS012: Rule = Rule {
    id: "FS012",
    name: "setuid-file-present",
    family: Family::Fs,
    severity: Severity::Medium,
    summary: "Files with the setuid or setgid bit, or file capabilities, are present",
    remediation: "Remove the setuid/setgid bits (chmod u-s,g-s) or the files; drop file capabilities.",
    doc: Doc {
        what: "Regular files with mode bits `04000` (setuid) or `02000` (setgid), and files carrying a `security.capability` extended attribute (file capabilities such as `cap_net_raw`).",
        why: "They run with privileges the caller does not have: each is a privilege-escalation path for an attacker inside the container (CIS Docker Benchmark 4.8). A Go service needs none; run the container with `no-new-privileges`, and remove them.",
        fix: "```dockerfile\nRUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +\n```\n\nor, better, a distroless base, which has none.",
        example: "2 files carry setuid/setgid bits or file capabilities: /usr/bin/passwd (4755), /usr/bin/ping (capabilities)",
        references: &["CIS Docker Benchmark 4.8", "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| {
        let mut ev = Vec::new();
        let mut names = Vec::new();
        for (p, n) in cx.fs.iter() {
            if !n.is_file() || (n.mode & 0o6000 == 0 && !n.capabilities) {
                continue;
            }
            let what = if n.mode & 0o6000 != 0 { format!("{:o}", n.mode) } else { "capabilities".into() };
            names.push(format!("{} ({what})", path::display(p)));
            let mut e = cx.file(p, n.layer);
            e.detail = Some(Detail::Note { text: format!("mode {:04o}{}", n.mode, if n.capabilities { ", file capabilities" } else { "" }) });
            ev.push(e);
        }
        if !ev.is_empty() {
            sink.emit(format!("{} files carry setuid/setgid bits or file capabilities: {}", ev.len(), names.join(", ")), ev);
        }
    },
};

/// FS013
pub(super) const FS013: Rule = Rule {
    id: "FS013",
    name: "world-writable-present",
    family: Family::Fs,
    severity: Severity::Low,
    summary: "World-writable files, or world-writable directories without the sticky bit",
    remediation: "chmod o-w the files; give shared directories mode 1777.",
    doc: Doc {
        what: "Regular files writable by everyone (`o+w`) and directories writable by everyone without the sticky bit (`/tmp` is `1777` and fine).",
        why: "Any process in the container, whatever its user, can replace them: binaries, configs and scripts become tampering points; a non-sticky shared directory lets users delete each other's files.",
        fix: "```dockerfile\nRUN chmod -R o-w /app && chmod 1777 /shared\n```",
        example: "2 paths are world-writable: /app/config.yaml (0666), /data (0777, no sticky bit)",
        references: &["CIS Docker Benchmark 4"],
    },
    needs_config: false,
    reads: &[],
    check: |cx, sink| {
        let mut ev = Vec::new();
        let mut names = Vec::new();
        for (p, n) in cx.fs.iter() {
            let bad = match n.kind {
                NodeKind::File => n.mode & 0o002 != 0,
                NodeKind::Dir => n.mode & 0o002 != 0 && n.mode & 0o1000 == 0,
                _ => false,
            };
            if !bad {
                continue;
            }
            let note = if n.is_dir() { format!("{:04o}, no sticky bit", n.mode) } else { format!("{:04o}", n.mode) };
            names.push(format!("{} ({note})", path::display(p)));
            ev.push(cx.file(p, n.layer));
        }
        if !ev.is_empty() {
            sink.emit(format!("{} paths are world-writable: {}", ev.len(), names.join(", ")), ev);
        }
    },
};

/// Below this many wasted bytes FS014 stays silent: small overrides (distroless replaces
/// base-files' 300-byte `os-release`) are normal layering, not waste worth a finding.
pub(super) const WASTE_MIN_BYTES: u64 = 1 << 20;
/// Paths listed per layer in FS014 evidence.
const WASTE_TOP_PATHS: usize = 5;

/// FS014
pub(super) const FS014: Rule = Rule {
    id: "FS014",
    name: "wasted-bytes",
    family: Family::Fs,
    severity: Severity::Info,
    summary: "Layers carry bytes that later layers delete or overwrite",
    remediation: "Delete files in the same RUN step that creates them, or build in a separate stage.",
    doc: Doc {
        what: "Files added by one layer and deleted (whiteout, opaque directory) or overwritten by a later layer, summed per layer that carries the dead bytes, with the largest paths. Reported when the total reaches 1 MiB.",
        why: "Deleting a file in a later `RUN` does not shrink the image: the bytes stay in the earlier layer's blob, are pulled by every node, and — for secrets — stay readable. It is the most common cause of bloated images.",
        fix: "Clean up in the same step:\n\n```dockerfile\nRUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \\\n && rm -rf /var/lib/apt/lists/*\n```\n\nor build in a separate stage and `COPY --from` only the result.",
        example: "12.4 MiB in 2 layers is deleted or overwritten by later layers (layer 1: 12.0 MiB, largest /tmp/go.tar.gz)",
        references: &["https://docs.docker.com/build/building/best-practices/#minimize-the-number-of-layers", "https://github.com/wagoodman/dive"],
    },
    needs_config: false,
    reads: &[],
    check: check_fs014,
};

fn check_fs014(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let mut per_layer: BTreeMap<usize, Vec<&crate::fs::Shadow>> = BTreeMap::new();
    for s in cx.fs.shadows() {
        if s.size > 0 {
            per_layer.entry(s.added_in).or_default().push(s);
        }
    }
    let total: u64 = per_layer.values().flatten().map(|s| s.size).sum();
    if total < WASTE_MIN_BYTES {
        return;
    }
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for (layer, mut shadows) in per_layer {
        shadows.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
        let bytes: u64 = shadows.iter().map(|s| s.size).sum();
        parts.push(format!(
            "layer {layer}: {}, largest {}",
            human_bytes(bytes),
            path::display(&shadows[0].path)
        ));
        for s in shadows.iter().take(WASTE_TOP_PATHS) {
            let mut e = cx.file(&s.path, layer);
            e.visibility = match s.how {
                Removal::Overwritten => Visibility::OverwrittenIn(s.removed_in),
                _ => Visibility::DeletedIn(s.removed_in),
            };
            e.detail = Some(Detail::Bytes { bytes: s.size });
            evidence.push(e);
        }
    }
    sink.emit(
        format!(
            "{} in {} layer{} is deleted or overwritten by later layers ({})",
            human_bytes(total),
            parts.len(),
            if parts.len() == 1 { "" } else { "s" },
            parts.join("; ")
        ),
        evidence,
    );
}
