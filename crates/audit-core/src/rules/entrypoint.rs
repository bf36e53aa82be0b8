//! CFG003–CFG004: can the runtime find and exec the image's command.

use super::{which, Doc, Family, Lookup, Rule, RuleCx};
use crate::finding::{Detail, Evidence, Severity};
use crate::path;
use crate::platform::Platform;
use crate::system::ldso::foreign;

const SHELL_NAMES: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"];

fn argv_evidence(cx: &RuleCx<'_>, argv: &[&str]) -> Evidence {
    let field = if cx.config().is_some_and(|c| !c.config.entrypoint.is_empty()) {
        "Entrypoint"
    } else {
        "Cmd"
    };
    Evidence {
        detail: Some(Detail::ConfigField {
            field: field.into(),
            value: serde_json::to_string(argv).unwrap_or_default(),
        }),
        ..Evidence::default()
    }
}

fn is_shell_form(argv: &[&str]) -> bool {
    argv.len() >= 2 && SHELL_NAMES.contains(&path::file_name(argv[0])) && argv[1] == "-c"
}

/// What is wrong with starting the command, split by rule.
enum Problem {
    Cfg003(String),
    Cfg004(String),
}

fn diagnose(cx: &RuleCx<'_>) -> Option<(Problem, Vec<Evidence>)> {
    let c = cx.config()?;
    let argv = c.config.argv();
    let argv0 = *argv.first()?;
    let path_env = cx.path_env();
    let workdir = if c.config.working_dir.is_empty() {
        "/"
    } else {
        c.config.working_dir.as_str()
    };
    let ev = vec![argv_evidence(cx, &argv)];
    let shown = if argv0.contains('/') {
        argv0.to_string()
    } else {
        format!("{argv0} (looked up in PATH={})", path_env.join(":"))
    };
    match which(cx.fs, argv0, &path_env, workdir) {
        Lookup::Missing if is_shell_form(&argv) => Some((
            Problem::Cfg004(format!(
                "the command is shell form ({argv0} -c …) but {argv0} does not exist in the image"
            )),
            ev,
        )),
        Lookup::Missing => Some((
            Problem::Cfg003(format!("the command {shown} does not exist in the image")),
            ev,
        )),
        Lookup::Loop(p) => Some((
            Problem::Cfg003(format!(
                "the command {argv0} cannot be resolved: {} is a symlink loop",
                path::display(&p)
            )),
            ev,
        )),
        Lookup::NotExecutable(p, n) => {
            let what = if n.is_dir() {
                "a directory".to_string()
            } else {
                format!("not executable (mode {:04o})", n.mode)
            };
            Some((
                Problem::Cfg003(format!(
                    "the command {argv0} resolves to {}, which is {what}",
                    path::display(&p)
                )),
                ev,
            ))
        }
        Lookup::Found(p, n) => {
            let mut ev = ev;
            ev.push(cx.file(&p, n.layer));
            let facts = n.facts.as_deref();
            if let Some(line) = facts.and_then(|f| f.shebang.as_deref()) {
                return check_shebang(cx, &p, line, &path_env).map(|m| (Problem::Cfg004(m), ev));
            }
            match facts.and_then(|f| f.elf.as_ref()) {
                Some(elf) => {
                    let image = Platform::new(&c.os, &c.architecture, c.variant.as_deref());
                    match foreign(elf, Some(&image)) {
                        Some(_) if !elf.is_executable() => None,
                        Some(built) => Some((
                            Problem::Cfg003(format!(
                                "the command {} is built for {built} but the image is {image}: it cannot start (exec format error, or a loader of another OS)",
                                path::display(&p),
                            )),
                            ev,
                        )),
                        None if !elf.is_executable() => {
                            Some((Problem::Cfg003(format!("the command {} is a shared library or object, not an executable", path::display(&p))), ev))
                        }
                        None => None,
                    }
                }
                None => Some((Problem::Cfg003(format!("the command {} is neither an ELF binary nor a #! script: exec format error", path::display(&p))), ev)),
            }
        }
    }
}

/// Checks a `#!` line: the interpreter must exist (no PATH lookup, as the kernel does);
/// `/usr/bin/env NAME` also needs NAME on the image's PATH.
fn check_shebang(cx: &RuleCx<'_>, script: &str, line: &str, path_env: &[String]) -> Option<String> {
    let mut parts = line.split_whitespace();
    let interp = parts.next()?;
    let arg = parts.next();
    let script = path::display(script);
    match cx.fs.lookup(interp) {
        Ok(Some((_, n))) if n.is_file() && n.is_executable() => {
            if path::file_name(interp) == "env" {
                if let Some(name) = arg.filter(|a| !a.starts_with('-')) {
                    if !matches!(which(cx.fs, name, path_env, "/"), Lookup::Found(..)) {
                        return Some(format!(
                            "{script} starts with #!{line}, but {name} is not on the image's PATH"
                        ));
                    }
                }
            }
            None
        }
        Ok(Some((p, _))) => Some(format!(
            "{script} starts with #!{line}, but {} is not an executable file",
            path::display(&p)
        )),
        Ok(None) => Some(format!(
            "{script} starts with #!{line}, but {interp} does not exist in the image"
        )),
        Err(e) => Some(format!("{script} starts with #!{line}, but {e}")),
    }
}

/// CFG003
pub(super) const CFG003: Rule = Rule {
    id: "CFG003",
    name: "entrypoint-unresolvable",
    family: Family::Cfg,
    severity: Severity::Critical,
    summary: "The Entrypoint/Cmd program does not resolve to an executable file",
    remediation: "Point ENTRYPOINT at the binary's real path in exec form: ENTRYPOINT [\"/app\"].",
    doc: Doc {
        what: "The first word of `Entrypoint` + `Cmd`, resolved with `execvp` semantics inside the image — a name with `/` is a path (relative ones from `WorkingDir`), a bare name is searched in the config's `PATH` (or the runtime default) — is missing, a directory, not executable, a symlink loop, not an ELF or `#!` file, or an ELF for another architecture or operating system (its `EI_OSABI` names FreeBSD, NetBSD …) than the image's platform. The OCI runtime spec does not require an absolute path; the PATH lookup is the real rule.",
        why: "The container fails at start with `exec: \"app\": executable file not found in $PATH` or `exec format error`, usually after a `COPY` to a different directory, a `WORKDIR` change, or a cross-build for the wrong architecture.",
        fix: "```dockerfile\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n```",
        example: "the command /usr/local/bin/missing does not exist in the image",
        references: &["https://github.com/opencontainers/runtime-spec/blob/main/config.md#process", "execvp(3)"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        if let Some((Problem::Cfg003(m), ev)) = diagnose(cx) {
            sink.emit(m, ev);
        }
    },
};

/// CFG004
pub(super) const CFG004: Rule = Rule {
    id: "CFG004",
    name: "entrypoint-interpreter-missing",
    family: Family::Cfg,
    severity: Severity::Critical,
    summary: "A shell-form command or an entrypoint script needs a shell or interpreter the image lacks",
    remediation: "Use exec form (ENTRYPOINT [\"/app\", \"--flag\"]) and replace wrapper scripts with flags or env handled by the Go binary.",
    doc: Doc {
        what: "The command is shell form (`[\"/bin/sh\", \"-c\", \"…\"]`, what a Dockerfile `CMD app --flag` without brackets stores) and the shell does not exist, or the entrypoint is a script whose `#!` interpreter does not exist (for `#!/usr/bin/env NAME`, NAME must be on the image's PATH).",
        why: "Wrapper scripts and shell-form commands need a shell that distroless and scratch images do not have: the container fails with `no such file or directory` although the script is there.",
        fix: "```dockerfile\nENTRYPOINT [\"/app\"]\nCMD [\"--listen=:8080\"]\n```\n\nMove wrapper-script logic (env defaults, flags) into the Go program.",
        example: "/entrypoint.sh starts with #!/bin/bash, but /bin/bash does not exist in the image",
        references: &["https://docs.docker.com/reference/dockerfile/#shell-and-exec-form"],
    },
    needs_config: true,
    reads: &[],
    check: |cx, sink| {
        if let Some((Problem::Cfg004(m), ev)) = diagnose(cx) {
            sink.emit(m, ev);
        }
    },
};
