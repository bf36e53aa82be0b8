//! CFG005–CFG008: Go build variables, debug switches, PATH and provenance labels in the config.

use super::{Doc, Family, Rule, RuleCx, Sink};
use crate::finding::{Detail, Evidence, Severity};

fn env_evidence(kv: &str) -> Evidence {
    let value = crate::inspect::secrets::redact(kv).into_owned();
    Evidence {
        detail: Some(Detail::ConfigField {
            field: "Env".into(),
            value,
        }),
        ..Evidence::default()
    }
}

/// Runs `judge(name, value)` over the config's `Env`; each `Some(text)` becomes part of one
/// finding (`what: text, text …`) with the variable as evidence.
fn env_finding(
    cx: &RuleCx<'_>,
    sink: &mut Sink<'_>,
    what: &str,
    judge: impl Fn(&str, &str) -> Option<String>,
) {
    let Some(c) = cx.config() else { return };
    let (mut found, mut ev) = (Vec::new(), Vec::new());
    for kv in &c.config.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if let Some(text) = judge(k, v) {
            found.push(text);
            ev.push(env_evidence(kv));
        }
    }
    if !found.is_empty() {
        sink.emit(format!("{what}: {}", found.join(", ")), ev);
    }
}

/// CFG005
pub(super) const CFG005: Rule = Rule {
    id: "CFG005",
    name: "go-build-env-present",
    family: Family::Cfg,
    severity: Severity::Low,
    summary: "Go build variables (GOPATH, GOROOT, GOCACHE, GOMODCACHE, GOBIN, Go dirs in PATH) are baked into the config",
    remediation: "Set build variables in the build stage only; the runtime stage needs none of them.",
    doc: Doc {
        what: "`Env` sets `GOPATH`, `GOROOT`, `GOCACHE`, `GOMODCACHE` or `GOBIN`, or `PATH` contains a Go directory (`/go/bin`, `/usr/local/go/bin`).",
        why: "They are inherited from `FROM golang` and mean the runtime image is (or was built from) the builder; they point tools at caches and toolchains that should not be there.",
        fix: "Start the runtime stage from a minimal base, which sets no Go variables:\n\n```dockerfile\nFROM gcr.io/distroless/static-debian12:nonroot\n```",
        example: "the config sets Go build variables: GOPATH=/go, PATH contains /usr/local/go/bin",
        references: &["https://hub.docker.com/_/golang"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        env_finding(cx, sink, "the config sets Go build variables", |k, v| match k {
            "GOPATH" | "GOROOT" | "GOCACHE" | "GOMODCACHE" | "GOBIN" if !v.is_empty() => Some(format!("{k}={v}")),
            "PATH" => {
                let go: Vec<&str> = v.split(':').filter(|d| d.trim_end_matches('/').ends_with("/go/bin")).collect();
                (!go.is_empty()).then(|| format!("PATH contains {}", go.join(", ")))
            }
            _ => None,
        });
    },
};

/// CFG006
pub(super) const CFG006: Rule = Rule {
    id: "CFG006",
    name: "go-debug-env-present",
    family: Family::Cfg,
    severity: Severity::Low,
    summary: "Go debug switches (GODEBUG, GOTRACEBACK=all/system/crash) are baked into the config",
    remediation: "Inject debug settings at run time (pod env) when needed, not in the image.",
    doc: Doc {
        what: "`Env` sets `GODEBUG` (any value) or `GOTRACEBACK` to `all`, `system`, `crash`, `wer`, `1` or `2`.",
        why: "`GODEBUG` changes runtime and standard-library behaviour (TLS, HTTP/2, scheduling) for every deployment of the image; verbose tracebacks dump all goroutines — and `crash` core dumps — with memory contents into logs.",
        fix: "Remove the `ENV` lines; set them per deployment when debugging:\n\n```yaml\nenv:\n  - name: GOTRACEBACK\n    value: all\n```",
        example: "the config sets Go debug switches: GODEBUG=http2debug=1, GOTRACEBACK=crash",
        references: &["https://pkg.go.dev/runtime#hdr-Environment_Variables", "https://go.dev/doc/godebug"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        env_finding(cx, sink, "the config sets Go debug switches", |k, v| {
            let hit = match k {
                "GODEBUG" => !v.is_empty(),
                "GOTRACEBACK" => matches!(v, "all" | "system" | "crash" | "wer" | "1" | "2"),
                _ => false,
            };
            hit.then(|| format!("{k}={v}"))
        });
    },
};

/// CFG007
pub(super) const CFG007: Rule = Rule {
    id: "CFG007",
    name: "path-unset",
    family: Family::Cfg,
    severity: Severity::Info,
    summary: "The config sets no PATH",
    remediation: "ENV PATH=/usr/local/bin:/usr/bin:/bin (or use absolute paths in ENTRYPOINT).",
    doc: Doc {
        what: "`Env` has no `PATH` entry.",
        why: "Command lookup then depends on the runtime's default PATH (Docker, containerd and CRI-O use `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, others may differ) — fine for absolute entrypoints, fragile for bare names and for `kubectl exec`.",
        fix: "```dockerfile\nENV PATH=/usr/local/bin:/usr/bin:/bin\n```",
        example: "the config sets no PATH; lookups use the runtime's default",
        references: &["https://github.com/opencontainers/image-spec/blob/main/config.md"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        if c.config.env_var("PATH").is_none() {
            sink.emit("the config sets no PATH; lookups use the runtime's default", vec![]);
        }
    },
};

/// Labels that tie an image to its source (OCI annotations spec).
const PROVENANCE: [&str; 3] = [
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.version",
];

/// CFG008
pub(super) const CFG008: Rule = Rule {
    id: "CFG008",
    name: "provenance-labels-missing",
    family: Family::Cfg,
    severity: Severity::Info,
    summary: "OCI provenance labels (source, revision, version) are missing",
    remediation: "LABEL org.opencontainers.image.source=… org.opencontainers.image.revision=… org.opencontainers.image.version=…",
    doc: Doc {
        what: "Neither the config's `Labels` nor the manifest's annotations carry `org.opencontainers.image.source`, `.revision` and `.version` (each missing one is listed).",
        why: "SBOM tools, signature policies and humans use them to get from a running image back to its repository and commit; GitHub links packages to repositories by `source`.",
        fix: "```dockerfile\nARG VERSION REVISION\nLABEL org.opencontainers.image.source=https://github.com/org/app \\\n      org.opencontainers.image.revision=$REVISION \\\n      org.opencontainers.image.version=$VERSION\n```",
        example: "provenance labels are missing: org.opencontainers.image.source, org.opencontainers.image.revision",
        references: &["https://github.com/opencontainers/image-spec/blob/main/annotations.md"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        let missing: Vec<&str> = PROVENANCE
            .iter()
            .copied()
            .filter(|k| c.config.labels.get(*k).is_none_or(|v| v.is_empty()) && cx.image.annotations.get(*k).is_none_or(|v| v.is_empty()))
            .collect();
        if !missing.is_empty() {
            sink.emit(format!("provenance labels are missing: {}", missing.join(", ")), vec![]);
        }
    },
};
