//! CFG001–CFG002: the user the container runs as.

use super::{Doc, Family, Rule, RuleCx};
use crate::finding::{Detail, Evidence, Severity};
use crate::inspect::reads::ContentRead;

/// `/etc/passwd`, read to turn a `User` name into its uid.
pub(super) const PASSWD: ContentRead = ContentRead::whole("etc/passwd");
/// `/etc/group`, read to turn a group name into its gid.
pub(super) const GROUP: ContentRead = ContentRead::whole("etc/group");

/// `name → id` from an `/etc/passwd` or `/etc/group` style file.
pub(super) fn id_table(cx: &RuleCx<'_>, file: &str) -> Option<Vec<(String, u32)>> {
    let c = cx.fs.content(file)?;
    Some(
        String::from_utf8_lossy(c)
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?.trim().to_string();
                let id = f.nth(1)?.trim().parse().ok()?;
                (!name.is_empty()).then_some((name, id))
            })
            .collect(),
    )
}

fn config_evidence(field: &str, value: &str) -> Evidence {
    Evidence {
        detail: Some(Detail::ConfigField {
            field: field.into(),
            value: value.into(),
        }),
        ..Evidence::default()
    }
}

fn split_user(user: &str) -> (&str, Option<&str>) {
    match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    }
}

/// CFG001
pub(super) const CFG001: Rule = Rule {
    id: "CFG001",
    name: "runs-as-root",
    family: Family::Cfg,
    severity: Severity::Medium,
    summary: "The image runs as root",
    remediation: "Set a non-root USER (distroless :nonroot images use 65532:65532).",
    doc: Doc {
        what: "The config's `User` is empty, `0`, `root`, `0:<group>`, or a name that `/etc/passwd` maps to uid 0.",
        why: "A process running as root inside the container is root on the host's kernel, one bug away from escaping; `runAsNonRoot` admission policies reject such images. A Go binary needs no root to listen on ports ≥ 1024.",
        fix: "```dockerfile\nFROM gcr.io/distroless/static-debian12:nonroot\n# or\nUSER 65532:65532\n```",
        example: "the image runs as root (User is empty)",
        references: &["CIS Docker Benchmark 4.1", "https://kubernetes.io/docs/concepts/security/pod-security-standards/"],
    },
    needs_config: true,
    reads: &[PASSWD],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        let user = c.config.user.trim();
        let (u, _) = split_user(user);
        let why = match u {
            "" => Some("User is empty".to_string()),
            "0" | "root" => Some(format!("User is {user:?}")),
            name if name.parse::<u32>().is_err() => id_table(cx, "etc/passwd")
                .and_then(|t| t.into_iter().find(|(n, _)| n == name))
                .filter(|(_, id)| *id == 0)
                .map(|_| format!("User {name:?} has uid 0 in /etc/passwd")),
            _ => None,
        };
        if let Some(why) = why {
            sink.emit(format!("the image runs as root ({why})"), vec![config_evidence("User", user)]);
        }
    },
};

/// CFG002
pub(super) const CFG002: Rule = Rule {
    id: "CFG002",
    name: "user-unknown",
    family: Family::Cfg,
    severity: Severity::High,
    summary: "The config's User names a user or group the image does not define",
    remediation: "Use numeric ids (USER 65532:65532) or add the user and group to /etc/passwd and /etc/group.",
    doc: Doc {
        what: "`User` names a user (or `user:group` a group) by name, and the image's `/etc/passwd` (or `/etc/group`) has no such entry — or the file does not exist. Numeric ids are always accepted.",
        why: "The runtime resolves names inside the image: runc fails with `unable to find user appuser: no matching entries in passwd file` and the container never starts. Common after switching to distroless or scratch, which have no `adduser`.",
        fix: "```dockerfile\nUSER 65532:65532\n```\n\nNumeric ids need no passwd entry; distroless ships `nonroot` (65532) already.",
        example: "User \"appuser\" is not defined in /etc/passwd; the container will not start",
        references: &["https://github.com/opencontainers/runc/blob/main/libcontainer/user/lookup_unix.go"],
    },
    needs_config: true,
    reads: &[PASSWD, GROUP],
    check: |cx, sink| {
        let Some(c) = cx.config() else { return };
        let user = c.config.user.trim();
        let (u, g) = split_user(user);
        let mut problems = Vec::new();
        if !u.is_empty() && u.parse::<u32>().is_err() {
            match id_table(cx, "etc/passwd") {
                None => problems.push(format!("User {u:?} is a name but the image has no /etc/passwd")),
                Some(t) if !t.iter().any(|(n, _)| n == u) => problems.push(format!("User {u:?} is not defined in /etc/passwd")),
                _ => {}
            }
        }
        if let Some(g) = g.filter(|g| !g.is_empty() && g.parse::<u32>().is_err()) {
            match id_table(cx, "etc/group") {
                None => problems.push(format!("group {g:?} is a name but the image has no /etc/group")),
                Some(t) if !t.iter().any(|(n, _)| n == g) => problems.push(format!("group {g:?} is not defined in /etc/group")),
                _ => {}
            }
        }
        if !problems.is_empty() {
            sink.emit(format!("{}; the container will not start", problems.join("; ")), vec![config_evidence("User", user)]);
        }
    },
};
