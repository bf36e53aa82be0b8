//! SEC001–SEC004: credentials in layer files (also deleted ones), in the config's `Env`, in
//! the build history, and module-fetch settings that turn off integrity checks.
//!
//! Detection lives in [`crate::inspect::secrets`] (files, strings) and [`super::steps`]
//! (build commands); these rules only decide what to report and where. Every value shown is
//! masked.

use std::sync::Arc;

use super::steps::{self, Instr};
use super::{Doc, Family, Rule, RuleCx, Sink};
use crate::finding::{Detail, Evidence, Severity, Visibility};
use crate::fs::Removal;
use crate::inspect::secrets::{self, Secret, SecretHit};
use crate::inspect::FileFacts;
use crate::path;

/// SEC001
pub(super) const SEC001: Rule = Rule {
    id: "SEC001",
    name: "credential-in-layer-file",
    family: Family::Sec,
    severity: Severity::Critical,
    summary: "A file in some layer holds credentials — including files a later layer deleted",
    remediation: "Never COPY or write credentials in a build step; use build secrets (RUN --mount=type=secret) and rotate the leaked ones.",
    doc: Doc {
        what: "A file, in the final filesystem or only in an earlier layer's blob (deleted by a whiteout or replaced later), that holds a credential: \
a `.netrc` password, `.git-credentials` URL, docker/podman `config.json`/`auth.json` `auths` entry that decodes to `user:password`, `.npmrc` `_authToken`, \
`.pypirc` password, AWS/gcloud/Azure CLI credentials, kubeconfig tokens, `.pgpass`, `.env` secrets, or — in any text file — a GitHub, GitLab or AWS key \
or a PEM private key with its body. Names alone never count: the file must hold a value that is not empty, not a placeholder (`changeme`, `${TOKEN}`) and \
not an AWS documentation key. Distribution docs, Go toolchains, module caches and `testdata/` trees are not scanned. The finding names the layer that \
added the file and the one that deleted it.",
        why: "Deleting a file in a later step does not remove it from the image: the earlier layer blob still holds it, and anyone who can pull the image \
can extract it (`docker save`, `crane export`). Registry, VCS and cloud credentials usually reach far beyond the image itself.",
        fix: "Mount secrets for the one step that needs them, so they never land in a layer:\n\n```dockerfile\n# syntax=docker/dockerfile:1\nRUN --mount=type=secret,id=netrc,target=/root/.netrc \\\n    go mod download\n```\n\nbuild with `docker build --secret id=netrc,src=$HOME/.netrc .`, and rotate every credential the image ever contained.",
        example: "/root/.netrc (netrc) holds password for machine git.example.com …(15 chars) (line 3); added in layer 8, deleted in layer 9 — still in layer 8's blob",
        references: &[
            "https://docs.docker.com/build/building/secrets/",
            "https://github.com/aquasecurity/trivy/blob/main/pkg/fanal/secret/builtin-rules.go",
            "https://github.com/goodwithtech/dockle/issues/159",
        ],
    },
    needs_config: false,
    reads: &[],
    check: check_sec001,
};

fn check_sec001(cx: &RuleCx<'_>, sink: &mut Sink<'_>) {
    let mut seen: Vec<*const FileFacts> = Vec::new();
    for (p, n) in cx.fs.iter() {
        let Some(f) = n.facts.as_ref().filter(|f| !f.secrets.is_empty()) else {
            continue;
        };
        // Hard links share their facts: one finding for the content.
        if seen.contains(&Arc::as_ptr(f)) {
            continue;
        }
        seen.push(Arc::as_ptr(f));
        file_finding(cx, sink, p, n.layer, Visibility::Final, f);
    }
    for s in cx.fs.shadows() {
        let Some(f) = s.facts.as_ref().filter(|f| !f.secrets.is_empty()) else {
            continue;
        };
        let vis = match s.how {
            Removal::Overwritten => Visibility::OverwrittenIn(s.removed_in),
            Removal::Whiteout | Removal::Opaque => Visibility::DeletedIn(s.removed_in),
        };
        file_finding(cx, sink, &s.path, s.added_in, vis, f);
    }
}

fn file_finding(
    cx: &RuleCx<'_>,
    sink: &mut Sink<'_>,
    p: &str,
    layer: usize,
    vis: Visibility,
    f: &FileFacts,
) {
    let what = f
        .credential_file
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let shown: Vec<String> = f.secrets.iter().take(3).map(SecretHit::describe).collect();
    let more = if f.secrets.len() > 3 {
        format!(" and {} more", f.secrets.len() - 3)
    } else {
        String::new()
    };
    let place = match vis {
        Visibility::Final => String::new(),
        Visibility::DeletedIn(l) => format!(
            "; added in layer {layer}, deleted in layer {l} — still in layer {layer}'s blob"
        ),
        Visibility::OverwrittenIn(l) => format!(
            "; added in layer {layer}, replaced in layer {l} — still in layer {layer}'s blob"
        ),
    };
    let mut e = cx.file(p, layer);
    e.visibility = vis;
    e.detail = Some(Detail::Secrets {
        hits: f.secrets.clone(),
    });
    sink.emit(
        format!(
            "{}{what} holds {}{more}{place}",
            path::display(p),
            shown.join(", ")
        ),
        vec![e],
    );
}

/// The last history step that set `name` with `ENV`, if any.
fn env_step(cx: &RuleCx<'_>, name: &str) -> Option<usize> {
    cx.steps
        .iter()
        .rev()
        .find(|s| s.instr == Instr::Env && s.env_pairs().iter().any(|(k, _)| k == name))
        .map(|s| s.index)
}

fn env_evidence(cx: &RuleCx<'_>, k: &str, shown: String) -> Evidence {
    let mut e = env_step(cx, k).map(|i| cx.step(i)).unwrap_or_default();
    e.detail = Some(Detail::ConfigField {
        field: "Env".into(),
        value: shown,
    });
    e
}

/// `NAME=value` with the secrets in the value masked; a secret-named variable's whole
/// value is masked.
fn masked_pair(k: &str, v: &str, found: &[Secret]) -> String {
    format!("{k}={}", secrets::mask_values(v, found))
}

/// SEC002
pub(super) const SEC002: Rule = Rule {
    id: "SEC002",
    name: "credential-in-env",
    family: Family::Sec,
    severity: Severity::Critical,
    summary: "The config's Env holds credentials",
    remediation: "Pass secrets at run time (orchestrator secrets, mounted files), never with ENV or a baked config.",
    doc: Doc {
        what: "An `Env` entry whose value is a credential: a URL with `user:password@` or a token as user (`GOPROXY=https://user:token@proxy`, \
`DATABASE_URL=postgres://app:pw@db`), a GitHub/GitLab/AWS key or private key anywhere, or a variable named `*_TOKEN`, `*_PASSWORD`, `*_SECRET`, \
`*_KEY` (…) with a real value — not empty, not a placeholder, not a path (`*_KEY_FILE=/run/secrets/key`), not public material (`GPG_KEY` \
fingerprints). Values are masked in the report.",
        why: "The image config is readable by anyone who can pull the image (`docker inspect`, registry APIs) and is copied into every container's \
environment, process listings and crash reports.",
        fix: "Remove the `ENV` and inject the value at run time:\n\n```yaml\nenv:\n  - name: GITHUB_TOKEN\n    valueFrom:\n      secretKeyRef: {name: ci, key: github-token}\n```\n\nFor build-time module access use `RUN --mount=type=secret` instead of `ENV GOPROXY=https://user:token@…`.",
        example: "Env GOPROXY holds credentials in a URL: GOPROXY=https://ci-bot:…(20 chars)@proxy.example.com,direct",
        references: &["https://docs.docker.com/reference/build-checks/secrets-used-in-arg-or-env/", "https://go.dev/ref/mod#private-module-proxy-auth"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        for kv in &c.config.env {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            let found = steps::pair_secrets(k, v);
            if found.is_empty() {
                continue;
            }
            let mut what: Vec<&str> = found.iter().map(|s| s.kind.describe()).collect();
            what.dedup();
            let shown = masked_pair(k, v, &found);
            sink.emit(format!("Env {k} holds {}: {shown}", what.join(", ")), vec![env_evidence(cx, k, shown)]);
        }
    },
};

/// SEC003
pub(super) const SEC003: Rule = Rule {
    id: "SEC003",
    name: "credential-in-history",
    family: Family::Sec,
    severity: Severity::High,
    summary: "A build step recorded in the history holds credentials (build arguments, RUN commands, ARG defaults, ENV later unset)",
    remediation: "Use build secrets (RUN --mount=type=secret) instead of --build-arg, ARG defaults or credentials in RUN lines; rotate what leaked.",
    doc: Doc {
        what: "A `history[].created_by` entry that records a credential: build arguments in scope of a `RUN` (BuildKit and the classic builder \
write them as `|N NAME=value …`), `ARG` defaults, credentials in `RUN` commands (`curl -u user:pass`, `Authorization:` headers, `docker login -p`, \
secret variables assigned or exported, URLs with `user:password@`, token formats), and `ENV` values that a later step overrode — the history keeps \
them even though `Env` no longer does (values still in `Env` are SEC002's). Values are masked in the report.",
        why: "The history is part of the image config: `docker history --no-trunc` shows every build argument value to anyone who can pull the \
image. `ARG` is not a secret mechanism.",
        fix: "```dockerfile\n# syntax=docker/dockerfile:1\nRUN --mount=type=secret,id=github_token \\\n    GITHUB_TOKEN=$(cat /run/secrets/github_token) go mod download\n```\n\nbuilt with `docker build --secret id=github_token,env=GITHUB_TOKEN .`",
        example: "history step 5 (RUN) records GitHub token in GITHUB_TOKEN (ghp_…(40 chars))",
        references: &["https://docs.docker.com/build/building/secrets/", "https://docs.docker.com/reference/dockerfile/#arg"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        for step in &cx.steps {
            let mut found = if step.instr == Instr::Env {
                // ENV values still in Env are SEC002's.
                let mut v = Vec::new();
                for (k, val) in step.env_pairs() {
                    if c.config.env_var(&k) != Some(val.as_str()) {
                        v.extend(steps::pair_secrets(&k, &val));
                    }
                }
                v
            } else {
                steps::step_secrets(step)
            };
            secrets::dedup(&mut found);
            if found.is_empty() {
                continue;
            }
            let instr = match &step.instr {
                Instr::Run => "RUN".to_string(),
                Instr::Env => "ENV, later overridden".to_string(),
                Instr::Arg => "ARG".to_string(),
                Instr::Copy => "COPY".to_string(),
                Instr::Add => "ADD".to_string(),
                Instr::Workdir => "WORKDIR".to_string(),
                Instr::Other(o) => o.clone(),
                Instr::Unknown => "build step".to_string(),
            };
            let from_args = step.build_args.iter().any(|(k, _)| found.iter().any(|s| s.key.as_deref() == Some(k.as_str())));
            let note = if from_args { " (build arguments are recorded with every RUN in their scope)" } else { "" };
            let what: Vec<String> = found.iter().map(Secret::describe).collect();
            sink.emit(format!("history step {} ({instr}) records {}{note}", step.index, what.join(", ")), vec![cx.step(step.index)]);
        }
    },
};

/// SEC004
pub(super) const SEC004: Rule = Rule {
    id: "SEC004",
    name: "insecure-module-fetch-env",
    family: Family::Sec,
    severity: Severity::High,
    summary: "Env turns off integrity or TLS checks of Go module downloads",
    remediation: "Keep the checksum database on (GOSUMDB default, GONOSUMDB/GOPRIVATE limited to your own module paths) and fetch over HTTPS.",
    doc: Doc {
        what: "`Env` settings that make the Go command accept unverified module content: `GOFLAGS` with `-insecure`, `GOINSECURE` (any pattern), \
`GONOSUMDB` or `GONOSUMCHECK`, `GOSUMDB=off`, `GOPRIVATE`/`GONOPROXY` matching every module (`*`, typically with `GOPROXY=direct`), a `GOPROXY` \
over plain `http://`, and `GIT_SSL_NO_VERIFY` (used by direct fetches).",
        why: "The checksum database (sum.golang.org) is what proves a module version is the one everybody else got; HTTPS is what proves it came from \
the host asked. Without them a network attacker or a compromised proxy can substitute dependency code, and the image still builds.",
        fix: "Limit private patterns to your own paths and leave the checksum database on:\n\n```dockerfile\nENV GOPRIVATE=git.example.com/*\n# no GOSUMDB=off, GOINSECURE, GONOSUMDB=*\n```",
        example: "Env GOSUMDB=off turns off checksum verification of every module",
        references: &["https://go.dev/ref/mod#private-modules", "https://go.dev/ref/mod#authenticating", "https://go.dev/ref/mod#environment-variables"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        let env = |k: &str| c.config.env_var(k).filter(|v| !v.is_empty());
        let all = |v: &str| v.split(',').any(|p| matches!(p.trim(), "*" | "*/*" | "*.*"));
        let mut report = |k: &str, v: &str, why: String| {
            let shown = format!("{k}={}", secrets::redact(v));
            sink.emit(format!("Env {shown} {why}"), vec![env_evidence(cx, k, shown.clone())]);
        };
        if let Some(v) = env("GOFLAGS") {
            if v.split_whitespace().any(|f| f == "-insecure" || f == "--insecure" || f.starts_with("-insecure=")) {
                report("GOFLAGS", v, "passes -insecure: modules may be fetched over HTTP and without certificate checks".into());
            }
        }
        if let Some(v) = env("GOINSECURE") {
            report("GOINSECURE", v, "fetches matching modules without HTTPS or certificate checks".into());
        }
        if let Some(v) = env("GONOSUMDB") {
            let scope = if all(v) { "every module" } else { "matching modules" };
            report("GONOSUMDB", v, format!("skips the checksum database for {scope}"));
        }
        if let Some(v) = env("GONOSUMCHECK").filter(|v| *v != "0") {
            report("GONOSUMCHECK", v, "skips checksum verification".into());
        }
        if let Some(v) = env("GOSUMDB").filter(|v| v.eq_ignore_ascii_case("off")) {
            report("GOSUMDB", v, "turns off checksum verification of every module".into());
        }
        for k in ["GOPRIVATE", "GONOPROXY"] {
            if let Some(v) = env(k).filter(|v| all(v)) {
                let direct = env("GOPROXY").is_some_and(|p| p.split([',', '|']).all(|e| matches!(e.trim(), "direct" | "off")));
                let with = if direct { " with GOPROXY=direct" } else { "" };
                report(k, v, format!("treats every module as private{with}: no checksum database, fetched straight from its origin"));
            }
        }
        if let Some(v) = env("GOPROXY") {
            if v.split([',', '|']).any(|e| e.trim().starts_with("http://")) {
                report("GOPROXY", v, "fetches modules from a proxy over plain HTTP".into());
            }
        }
        if let Some(v) = env("GIT_SSL_NO_VERIFY").filter(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")) {
            report("GIT_SSL_NO_VERIFY", v, "turns off TLS verification of git fetches (Go's direct mode)".into());
        }
    },
};
