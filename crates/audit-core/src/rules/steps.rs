//! Build steps read back from `history[].created_by`, in every form builders write
//! (checked against docker 20.10 and buildah 1.28 output, `tests/builders.rs`):
//!
//! | builder | `RUN` | `COPY`/`ADD` | metadata |
//! |---|---|---|---|
//! | BuildKit | `RUN [|N K=V …] /bin/sh -c CMD # buildkit` | `COPY [--from=…] SRC… DEST # buildkit`, `ADD https://… DEST # buildkit` | `ENV A=b`, `ARG X`, `USER 1` |
//! | classic docker | `[|N K=V …] /bin/sh -c CMD` | `/bin/sh -c #(nop) COPY file:HASH in DEST `, `dir:`, `multi:`; a bare HASH for a remote `ADD` | `/bin/sh -c #(nop)  ENV A=b` |
//! | buildah | like classic; exec form as `/bin/sh -c ["/bin/busybox", "sh", "-c", "…"]` | like classic | `/bin/sh -c #(nop) ENV A=b` |
//!
//! Exec-form `RUN` is recorded as its argv joined by spaces (`RUN /bin/busybox sh -c X`), so
//! the quoting of a `-c` script is lost; the script is then taken as the rest of the line.

use super::shell;
use crate::inspect::secrets::{self, Secret, SecretKind};

/// The instruction a step ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Instr {
    Run,
    Copy,
    Add,
    Env,
    Arg,
    Workdir,
    /// Another Dockerfile instruction (`USER`, `CMD`, `LABEL` …), upper case.
    Other(String),
    /// Not a Dockerfile instruction (ko, Bazel, hand-written history).
    Unknown,
}

/// One history entry, parsed.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// Index in `history`.
    pub(crate) index: usize,
    pub(crate) instr: Instr,
    /// The instruction's arguments (`#(nop)`, ` # buildkit` and build arguments removed).
    pub(crate) args: String,
    /// Build arguments recorded with a `RUN` (`|N K=V …`).
    pub(crate) build_args: Vec<(String, String)>,
    /// `RUN`: the shell script (shell form) or the joined argv (exec form).
    pub(crate) script: Option<String>,
}

impl Step {
    /// Parses one `created_by`.
    pub(crate) fn parse(index: usize, created_by: &str) -> Self {
        let mut s = created_by.trim();
        if let Some(x) = s.strip_suffix("# buildkit") {
            s = x.trim_end();
        }
        let mut step = Self {
            index,
            instr: Instr::Unknown,
            args: String::new(),
            build_args: Vec::new(),
            script: None,
        };
        // Classic and buildah metadata / COPY / ADD: `<shell> -c #(nop) INSTR args`.
        if let Some(p) = s.find("#(nop)") {
            let rest = s[p + 6..].trim();
            let (kw, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            step.instr = instr(kw);
            step.args = args.trim().to_string();
            return step;
        }
        // BuildKit: `INSTR args`.
        let (kw, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let k = instr(kw);
        if k != Instr::Unknown && kw.chars().all(|c| c.is_ascii_uppercase()) {
            if k != Instr::Run {
                step.instr = k;
                step.args = rest.trim().to_string();
                return step;
            }
            s = rest.trim_start();
        } else if !(s.starts_with('|') || looks_like_shell_run(s)) {
            return step;
        }
        // A RUN: optional `|N K=V …`, then the command.
        step.instr = Instr::Run;
        let (args, cmd) = split_build_args(s);
        step.build_args = args;
        step.args = cmd.to_string();
        step.script = Some(script_of(cmd));
        step
    }

    /// `COPY`/`ADD`: (flags, sources, destination).
    pub(crate) fn copy_parts(&self) -> (Vec<String>, Vec<String>, String) {
        let a = self.args.trim();
        // Classic: `file:HASH in DEST`.
        if let Some((src, dest)) = a.split_once(" in ") {
            let hashed = ["file:", "dir:", "multi:"]
                .iter()
                .any(|p| src.starts_with(p))
                || (src.len() >= 32 && src.bytes().all(|b| b.is_ascii_hexdigit()));
            if hashed {
                return (Vec::new(), vec![src.to_string()], dest.trim().to_string());
            }
        }
        let mut words: Vec<String> = if a.starts_with('[') {
            serde_json::from_str::<Vec<String>>(a).unwrap_or_else(|_| shell::words(a))
        } else {
            shell::words(a)
        };
        let flags: Vec<String> = words
            .iter()
            .take_while(|w| w.starts_with("--"))
            .cloned()
            .collect();
        words.drain(..flags.len());
        let dest = words.pop().unwrap_or_default();
        (flags, words, dest)
    }

    /// `ENV`: the pairs it sets (`ENV A=b C="d e"` and the legacy `ENV A b`).
    pub(crate) fn env_pairs(&self) -> Vec<(String, String)> {
        let a = self.args.trim();
        let first = a.split_whitespace().next().unwrap_or("");
        if first.contains('=') {
            shell::words(a)
                .into_iter()
                .filter_map(|w| {
                    w.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        } else {
            match a.split_once(char::is_whitespace) {
                Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
                None if !a.is_empty() => vec![(a.to_string(), String::new())],
                None => Vec::new(),
            }
        }
    }

    /// `ARG`: names with their defaults (`ARG A=1 B`).
    pub(crate) fn arg_defaults(&self) -> Vec<(String, Option<String>)> {
        shell::words(&self.args)
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w, None),
            })
            .collect()
    }
}

fn instr(kw: &str) -> Instr {
    match kw.to_ascii_uppercase().as_str() {
        "RUN" => Instr::Run,
        "COPY" => Instr::Copy,
        "ADD" => Instr::Add,
        "ENV" => Instr::Env,
        "ARG" => Instr::Arg,
        "WORKDIR" => Instr::Workdir,
        k @ ("USER" | "CMD" | "ENTRYPOINT" | "LABEL" | "EXPOSE" | "VOLUME" | "STOPSIGNAL"
        | "HEALTHCHECK" | "SHELL" | "ONBUILD" | "MAINTAINER" | "FROM") => {
            Instr::Other(k.to_string())
        }
        _ => Instr::Unknown,
    }
}

/// A classic `RUN` without build arguments: `/bin/sh -c …`, `/bin/bash -o pipefail -c …`,
/// `/bin/busybox sh -c …`.
fn looks_like_shell_run(s: &str) -> bool {
    let mut it = s.split_whitespace();
    let mut first = it.next().unwrap_or("");
    if first.rsplit('/').next() == Some("busybox") {
        first = it.next().unwrap_or("");
    }
    matches!(
        first.rsplit('/').next(),
        Some("sh" | "bash" | "ash" | "dash" | "zsh")
    ) && it.any(|w| w.starts_with('-') && w.ends_with('c'))
}

/// Splits `|N K1=V1 … KN=VN rest` into the pairs and the rest. A value with spaces is
/// ambiguous in this format; the pair ends where the next `NAME=` or, after the N-th pair,
/// where the command starts.
fn split_build_args(s: &str) -> (Vec<(String, String)>, &str) {
    let Some(after) = s.strip_prefix('|') else {
        return (Vec::new(), s);
    };
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(n) = after[..digits].parse::<usize>() else {
        return (Vec::new(), s);
    };
    let mut rest = after[digits..].trim_start();
    let mut pairs: Vec<(String, String)> = Vec::new();
    while pairs.len() < n && !rest.is_empty() {
        let word_end = rest.find(' ').unwrap_or(rest.len());
        let word = &rest[..word_end];
        match word.split_once('=') {
            Some((k, v))
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                pairs.push((k.to_string(), v.to_string()));
            }
            _ => match pairs.last_mut() {
                Some(last) => {
                    last.1.push(' ');
                    last.1.push_str(word);
                }
                None => break,
            },
        }
        rest = rest[word_end..].trim_start();
    }
    (pairs, rest)
}

/// The script of a `RUN` command line: what follows `<shell> [opts] -c ` when the line
/// starts with a shell, the `-c` string of a JSON exec form (buildah), else the line itself.
fn script_of(cmd: &str) -> String {
    let c = cmd.trim();
    if let Some(json) = c
        .strip_prefix("/bin/sh -c ")
        .map(str::trim)
        .filter(|j| j.starts_with('['))
        .or(c.starts_with('[').then_some(c))
    {
        if let Ok(argv) = serde_json::from_str::<Vec<String>>(json) {
            let mut it = argv
                .iter()
                .skip_while(|a| a.rsplit('/').next() == Some("busybox"));
            let first = it
                .next()
                .map(|a| a.rsplit('/').next().unwrap_or(a).to_string());
            let rest: Vec<&String> = it.collect();
            if matches!(
                first.as_deref(),
                Some("sh" | "bash" | "ash" | "dash" | "zsh")
            ) {
                if let Some(i) = rest
                    .iter()
                    .position(|a| a.starts_with('-') && a.ends_with('c'))
                {
                    if let Some(script) = rest.get(i + 1) {
                        return (*script).clone();
                    }
                }
            }
            return argv.join(" ");
        }
    }
    // `[busybox] sh [-opts…] -c SCRIPT`: the script is the rest of the line verbatim.
    let mut pos = 0;
    let mut saw_shell = false;
    for (i, w) in c.split(' ').enumerate() {
        let base = w.rsplit('/').next().unwrap_or(w);
        if i == 0 && base == "busybox" {
            pos += w.len() + 1;
            continue;
        }
        if !saw_shell {
            if matches!(base, "sh" | "bash" | "ash" | "dash" | "zsh") {
                saw_shell = true;
                pos += w.len() + 1;
                continue;
            }
            break;
        }
        if w.starts_with('-') {
            pos += w.len() + 1;
            if w.ends_with('c') && !w.starts_with("--") {
                return c.get(pos..).unwrap_or("").to_string();
            }
            continue;
        }
        // An option value (`-o pipefail`).
        pos += w.len() + 1;
    }
    c.to_string()
}

/// Every step of a history, parsed.
pub(crate) fn parse_all(history: &[crate::oci::History]) -> Vec<Step> {
    history
        .iter()
        .enumerate()
        .map(|(i, h)| Step::parse(i, h.created_by.as_deref().unwrap_or("")))
        .collect()
}

/// The variables in scope of each step for expansion: build arguments recorded with the
/// step plus `ENV` values set by earlier steps.
pub(crate) fn scopes(steps: &[Step]) -> Vec<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        let mut scope = env.clone();
        scope.extend(s.build_args.iter().cloned());
        out.push(scope);
        if s.instr == Instr::Env {
            env.extend(s.env_pairs());
        }
    }
    out
}

/// Secrets a build command exposes: token formats and URL credentials anywhere, secret
/// variables assigned or exported, `curl -u user:pass`, `Authorization:`/`PRIVATE-TOKEN:`
/// headers, `--password`/`-p` of registry logins, npm `_authToken=`, netrc lines written
/// by `echo`.
pub(crate) fn command_secrets(script: &str) -> Vec<Secret> {
    let mut out = secrets::find_in_text(script);
    let parsed = shell::Script::parse(script);
    let mut push = |kind: SecretKind, key: String, v: &str| {
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        if !secrets::is_placeholder(v) && v.len() >= 4 {
            out.push(Secret::new(kind, Some(key), v));
        }
    };
    for c in &parsed.cmds {
        let mut assigns: Vec<(String, String)> = c.assigns.clone();
        if matches!(
            c.name(),
            "export" | "declare" | "typeset" | "readonly" | "local"
        ) {
            assigns.extend(c.args().iter().filter_map(|w| {
                w.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            }));
        }
        for (k, v) in assigns {
            if secrets::is_secret_name(&k) && secrets::is_secret_value(&v) {
                push(secrets::kind_for_name(&k), k.clone(), &v);
            }
        }
        match c.name() {
            "curl" => {
                if let Some(up) = c.opt(&["-u", "--user", "--proxy-user", "-U"]) {
                    if let Some((user, pass)) = up.split_once(':') {
                        push(SecretKind::Password, format!("curl -u {user}"), pass);
                    }
                }
            }
            "wget" => {
                for o in [
                    "--password",
                    "--http-password",
                    "--ftp-password",
                    "--proxy-password",
                ] {
                    if let Some(p) = c.opt(&[o]) {
                        push(SecretKind::Password, format!("wget {o}"), p);
                    }
                }
            }
            "docker" | "podman" | "buildah" | "skopeo" | "helm" | "crane" | "oras" | "regctl"
                if c.args().iter().any(|a| a == "login") =>
            {
                if let Some(p) = c.opt(&["-p", "--password"]) {
                    push(SecretKind::Password, format!("{} login", c.name()), p);
                }
            }
            "sshpass" => {
                if let Some(p) = c.opt(&["-p"]) {
                    push(SecretKind::Password, "sshpass -p".into(), p);
                }
            }
            _ => {}
        }
        for w in c.args() {
            let lw = w.to_ascii_lowercase();
            for h in [
                "authorization:",
                "private-token:",
                "job-token:",
                "x-api-key:",
                "x-auth-token:",
            ] {
                if let Some(p) = lw.find(h) {
                    let val = w[p + h.len()..].trim();
                    let val = ["bearer ", "basic ", "token ", "bot "]
                        .iter()
                        .find_map(|s| {
                            val.get(..s.len())
                                .filter(|x| x.eq_ignore_ascii_case(s))
                                .map(|_| &val[s.len()..])
                        })
                        .unwrap_or(val);
                    push(
                        SecretKind::Token,
                        format!("{} header", &w[p..p + h.len() - 1]),
                        val,
                    );
                }
            }
            if let Some(p) = w.find("_authToken=") {
                push(SecretKind::Token, "_authToken".into(), &w[p + 11..]);
            }
            if w.contains("machine ") {
                let mut it = w.split_whitespace();
                while let Some(t) = it.next() {
                    if t == "password" {
                        if let Some(v) = it.next() {
                            push(SecretKind::Password, "netrc password".into(), v);
                        }
                    }
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(s.masked() + s.key.as_deref().unwrap_or("")));
    out
}

/// Secrets in one `NAME=value` pair (build argument, `ENV`, `ARG` default, config `Env`):
/// token formats and URL credentials in the value, or a secret-named variable with a real
/// value.
pub(crate) fn pair_secrets(k: &str, v: &str) -> Vec<Secret> {
    // The name goes along: `AWS_SECRET_ACCESS_KEY=…` is the AWS label the verifier wants.
    let mut found = secrets::find_in_text(&format!("{k}={v}"));
    if found.is_empty() && secrets::is_secret_name(k) && secrets::is_secret_value(v) {
        found.push(Secret::new(
            secrets::kind_for_name(k),
            Some(k.to_string()),
            v,
        ));
    }
    for s in &mut found {
        if s.kind != SecretKind::UrlCredentials {
            s.key = Some(k.to_string());
        }
    }
    found
}

/// Secrets a history entry records, in whatever instruction.
pub(crate) fn step_secrets(step: &Step) -> Vec<Secret> {
    let mut out = Vec::new();
    for (k, v) in &step.build_args {
        out.extend(pair_secrets(k, v));
    }
    match step.instr {
        Instr::Run => {
            if let Some(sc) = &step.script {
                out.extend(command_secrets(sc));
            }
        }
        Instr::Env => {
            for (k, v) in step.env_pairs() {
                out.extend(pair_secrets(&k, &v));
            }
        }
        Instr::Arg => {
            for (k, v) in step.arg_defaults() {
                if let Some(v) = v {
                    out.extend(pair_secrets(&k, &v));
                }
            }
        }
        Instr::Other(ref o) if o == "LABEL" => {
            for (k, v) in step.env_pairs() {
                out.extend(pair_secrets(&k, &v));
            }
        }
        _ => out.extend(secrets::find_in_text(&step.args)),
    }
    out
}

/// `created_by` with every secret the step records masked (for evidence and reports).
pub(crate) fn redact_created_by(created_by: &str) -> String {
    let step = Step::parse(0, created_by);
    let mut found = step_secrets(&step);
    found.extend(secrets::find_in_text(created_by));
    secrets::mask_values(created_by, &found).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_from_real_builders() {
        let bk = Step::parse(0, "RUN |2 GO_VERSION=1.22.5 TOKEN=abc /bin/sh -c curl -fsSL https://go.dev/dl/go${GO_VERSION}.tgz | tar -xz # buildkit");
        assert_eq!(bk.instr, Instr::Run);
        assert_eq!(
            bk.build_args,
            vec![
                ("GO_VERSION".into(), "1.22.5".into()),
                ("TOKEN".into(), "abc".into())
            ]
        );
        assert_eq!(
            bk.script.as_deref(),
            Some("curl -fsSL https://go.dev/dl/go${GO_VERSION}.tgz | tar -xz")
        );
        let classic = Step::parse(1, "|1 GITHUB_TOKEN=x /bin/sh -c echo hi");
        assert_eq!(
            (classic.instr.clone(), classic.script.as_deref()),
            (Instr::Run, Some("echo hi"))
        );
        let exec = Step::parse(
            2,
            "RUN /bin/busybox sh -c /bin/busybox --install -s /bin # buildkit",
        );
        assert_eq!(
            exec.script.as_deref(),
            Some("/bin/busybox --install -s /bin")
        );
        let buildah = Step::parse(
            3,
            r#"/bin/sh -c ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]"#,
        );
        assert_eq!(
            buildah.script.as_deref(),
            Some("/bin/busybox --install -s /bin")
        );
        let pipefail = Step::parse(4, "/bin/bash -o pipefail -c set -e; go build");
        assert_eq!(pipefail.script.as_deref(), Some("set -e; go build"));
        let env = Step::parse(5, "/bin/sh -c #(nop)  ENV GOPATH=/go GOCACHE=/go/cache");
        assert_eq!(env.instr, Instr::Env);
        assert_eq!(
            env.env_pairs(),
            vec![
                ("GOPATH".into(), "/go".into()),
                ("GOCACHE".into(), "/go/cache".into())
            ]
        );
        let legacy_env = Step::parse(6, "/bin/sh -c #(nop) ENV GOPATH /go");
        assert_eq!(
            legacy_env.env_pairs(),
            vec![("GOPATH".into(), "/go".into())]
        );
        let copy = Step::parse(7, "/bin/sh -c #(nop) COPY dir:58d0 in /src ");
        assert_eq!(
            copy.copy_parts(),
            (vec![], vec!["dir:58d0".into()], "/src".into())
        );
        let add = Step::parse(
            8,
            "ADD --checksum=sha256:abc https://x/y.tgz /y.tgz # buildkit",
        );
        assert_eq!(
            add.copy_parts(),
            (
                vec!["--checksum=sha256:abc".into()],
                vec!["https://x/y.tgz".into()],
                "/y.tgz".into()
            )
        );
        let meta = Step::parse(9, "USER 65532");
        assert_eq!(meta.instr, Instr::Other("USER".into()));
        assert_eq!(Step::parse(10, "ko build").instr, Instr::Unknown);
    }

    #[test]
    fn secrets_in_commands_are_found_and_masked() {
        let tok = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
        let cb = format!("RUN |1 GITHUB_TOKEN={tok} /bin/sh -c git config --global url.\"https://x-access-token:$GITHUB_TOKEN@github.com/\".insteadOf https://github.com/ && go mod download # buildkit");
        let s = step_secrets(&Step::parse(0, &cb));
        assert_eq!(s.len(), 1, "{s:?}");
        let r = redact_created_by(&cb);
        assert!(
            !r.contains(&tok) && r.contains("GITHUB_TOKEN=ghp_…(40 chars)"),
            "{r}"
        );

        let pw = "Hunter2-Hunter2";
        for (cmd, n) in [
            (format!("curl -u deploy:{pw} https://x"), 1),
            (format!("export NPM_TOKEN={pw} && npm ci"), 1),
            (format!("curl -H 'Authorization: Bearer {pw}' https://x"), 1),
            (format!("docker login -u me -p {pw} registry"), 1),
            (format!("DB_PASSWORD={pw} ./migrate"), 1),
            (
                format!("echo 'machine git.example.com login ci password {pw}' > ~/.netrc"),
                1,
            ),
            ("curl -u deploy:$PASSWORD https://x".to_string(), 0),
            ("export NPM_TOKEN=${NPM_TOKEN}".to_string(), 0),
            ("echo password is required".to_string(), 0),
        ] {
            let found = command_secrets(&cmd);
            assert_eq!(found.len(), n, "{cmd}: {found:?}");
            let r = secrets::mask_values(&cmd, &found);
            assert!(n == 0 || !r.contains(pw), "{r}");
        }
        // ENV and ARG defaults.
        let env = Step::parse(0, &format!("ENV API_KEY={pw} LOG=debug"));
        assert_eq!(step_secrets(&env).len(), 1);
        let aws = pair_secrets(
            "AWS_SECRET_ACCESS_KEY",
            &format!("{}/{}", "Zq8rT2vX9pL4mN6bC1dF3gH5", "sW0eR2tY4uI6oP8"),
        );
        assert_eq!(
            aws.iter().map(|s| s.kind).collect::<Vec<_>>(),
            vec![SecretKind::AwsSecretAccessKey]
        );
        let arg = Step::parse(0, &format!("/bin/sh -c #(nop)  ARG DB_PASSWORD={pw}"));
        assert_eq!(step_secrets(&arg).len(), 1);
    }
}
