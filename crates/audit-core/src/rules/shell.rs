//! Just enough of the POSIX shell grammar to read a `RUN` step: words with quoting and
//! escapes, `\`-newline continuations, comments, the separators `&&`, `||`, `;`, `&` and
//! newlines, pipelines (`|`), redirections, and the commands inside `$(…)`, backticks and
//! `sh -c '…'` strings. It does not expand anything and never runs anything; the history
//! rules use it so that a command is judged by what runs, not by a word that happens to
//! appear (`echo "curl | sh is bad"` runs `echo`).

/// A simple command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cmd {
    /// Leading `NAME=value` assignments (and those given to `env`).
    pub(crate) assigns: Vec<(String, String)>,
    /// The words, quotes removed, wrappers (`sudo`, `env`, `busybox`, `xargs` …) and
    /// reserved words (`if`, `then`, `do` …) stripped.
    pub(crate) words: Vec<String>,
    /// Redirections: operator and target (`>`, `/tmp/go.tgz`).
    pub(crate) redirects: Vec<(String, String)>,
    /// Commands joined by `|` share a pipeline number.
    pub(crate) pipeline: usize,
    /// Position in the pipeline (0 = first).
    pub(crate) stage: usize,
    /// Inside `$(…)`, backticks or an `sh -c` string.
    pub(crate) nested: bool,
}

impl Cmd {
    /// The command name: the base name of the first word (`/usr/bin/curl` → `curl`).
    pub(crate) fn name(&self) -> &str {
        self.words
            .first()
            .map_or("", |w| w.rsplit('/').next().unwrap_or(w))
    }

    /// The words after the name.
    pub(crate) fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// Whether some argument equals one of `flags`, or starts with `flag=` for long ones.
    pub(crate) fn has_flag(&self, flags: &[&str]) -> bool {
        self.args().iter().any(|a| {
            flags
                .iter()
                .any(|f| a == f || (f.starts_with("--") && a.starts_with(&format!("{f}="))))
        })
    }

    /// The value of an option: `-o VALUE`, `--output VALUE`, `--output=VALUE`, and for
    /// single-letter options also inside a cluster: `-fsSLo VALUE`, `-qO-`, `-o/tmp/x`.
    pub(crate) fn opt(&self, names: &[&str]) -> Option<&str> {
        let a = self.args();
        for (i, w) in a.iter().enumerate() {
            for n in names {
                if w == n {
                    return a.get(i + 1).map(String::as_str);
                }
                if n.starts_with("--") {
                    if let Some(v) = w.strip_prefix(&format!("{n}=")) {
                        return Some(v);
                    }
                } else if n.len() == 2 && w.len() > 2 && w.starts_with('-') && !w.starts_with("--")
                {
                    let letter = n.as_bytes()[1];
                    let body = &w.as_bytes()[1..];
                    if let Some(p) = body.iter().position(|&b| b == letter) {
                        if body[..p].iter().all(u8::is_ascii_alphabetic) {
                            let rest = &w[2 + p..];
                            return if rest.is_empty() {
                                a.get(i + 1).map(String::as_str)
                            } else {
                                Some(rest)
                            };
                        }
                    }
                }
            }
        }
        None
    }

    /// Whether a combined short-option word (`-xzf`, `-c`) contains the letter `c`.
    pub(crate) fn has_short(&self, c: char) -> bool {
        self.args().iter().any(|a| {
            a.starts_with('-')
                && !a.starts_with("--")
                && a.len() > 1
                && a[1..].chars().all(|x| x.is_ascii_alphanumeric())
                && a[1..].contains(c)
        })
    }
}

/// A parsed script: its simple commands in order (nested ones right after the command that
/// contains them).
#[derive(Clone, Debug, Default)]
pub(crate) struct Script {
    pub(crate) cmds: Vec<Cmd>,
}

impl Script {
    /// Parses `src`. Never fails: unbalanced quotes end at the end of the input.
    pub(crate) fn parse(src: &str) -> Self {
        let mut s = Self::default();
        let mut next_pipeline = 0;
        parse_into(src, false, 0, &mut s.cmds, &mut next_pipeline);
        s
    }

    /// The commands of pipeline `p`, in order.
    pub(crate) fn pipeline(&self, p: usize) -> impl Iterator<Item = &Cmd> {
        self.cmds.iter().filter(move |c| c.pipeline == p)
    }
}

/// Nesting depth bound for `$(…)` and `sh -c` (a hostile history string cannot recurse
/// without end).
const MAX_DEPTH: usize = 8;

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    /// `|` (pipe) or `|&`.
    Pipe,
    /// `&&`, `||`, `;`, `&`, newline, `(`, `)`.
    Sep,
    /// A redirection operator.
    Redir(String),
}

fn lex(src: &str, subs: &mut Vec<String>) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let flush = |word: &mut String, in_word: &mut bool, toks: &mut Vec<Tok>| {
        if *in_word {
            toks.push(Tok::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            '\\' if c.get(i + 1) == Some(&'\n') => i += 2,
            '\\' => {
                if let Some(&n) = c.get(i + 1) {
                    word.push(n);
                }
                in_word = true;
                i += 2;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    word.push(c[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' && matches!(c.get(i + 1), Some('"' | '\\' | '$' | '`')) {
                        word.push(c[i + 1]);
                        i += 2;
                    } else if c[i] == '\\' && c.get(i + 1) == Some(&'\n') {
                        i += 2;
                    } else if c[i] == '$' && c.get(i + 1) == Some(&'(') {
                        i = substitution(&c, i, &mut word, subs);
                    } else if c[i] == '`' {
                        i = backtick(&c, i, &mut word, subs);
                    } else {
                        word.push(c[i]);
                        i += 1;
                    }
                }
                i += 1;
            }
            '$' if c.get(i + 1) == Some(&'(') => {
                in_word = true;
                i = substitution(&c, i, &mut word, subs);
            }
            '$' if c.get(i + 1) == Some(&'{') => {
                in_word = true;
                while i < c.len() && c[i] != '}' {
                    word.push(c[i]);
                    i += 1;
                }
                if i < c.len() {
                    word.push('}');
                }
                i += 1;
            }
            '`' => {
                in_word = true;
                i = backtick(&c, i, &mut word, subs);
            }
            '#' if !in_word => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            ' ' | '\t' | '\r' => {
                flush(&mut word, &mut in_word, &mut toks);
                i += 1;
            }
            '\n' | ';' | '(' | ')' => {
                flush(&mut word, &mut in_word, &mut toks);
                toks.push(Tok::Sep);
                i += 1;
            }
            '&' => {
                if c.get(i + 1) == Some(&'>') {
                    flush(&mut word, &mut in_word, &mut toks);
                    let op = if c.get(i + 2) == Some(&'>') {
                        "&>>"
                    } else {
                        "&>"
                    };
                    i += op.len();
                    toks.push(Tok::Redir(op.into()));
                } else {
                    flush(&mut word, &mut in_word, &mut toks);
                    toks.push(Tok::Sep);
                    i += if c.get(i + 1) == Some(&'&') { 2 } else { 1 };
                }
            }
            '|' => {
                flush(&mut word, &mut in_word, &mut toks);
                if c.get(i + 1) == Some(&'|') {
                    toks.push(Tok::Sep);
                    i += 2;
                } else {
                    toks.push(Tok::Pipe);
                    i += if c.get(i + 1) == Some(&'&') { 2 } else { 1 };
                }
            }
            '<' | '>' if c.get(i + 1) == Some(&'(') => {
                // Process substitution `<(curl …)`: like `$(…)`.
                in_word = true;
                i = substitution(&c, i, &mut word, subs);
            }
            '>' | '<' => {
                // An fd number written right before the operator belongs to it (`2>&1`).
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                flush(&mut word, &mut in_word, &mut toks);
                let mut op = String::from(ch);
                i += 1;
                while i < c.len() && matches!(c[i], '>' | '<' | '&' | '|') && op.len() < 3 {
                    op.push(c[i]);
                    i += 1;
                }
                // `>&1`, `<&0`: the target is the fd, glued to the operator.
                toks.push(Tok::Redir(op));
            }
            _ => {
                word.push(ch);
                in_word = true;
                i += 1;
            }
        }
    }
    flush(&mut word, &mut in_word, &mut toks);
    toks
}

/// Copies `$( … )` starting at `c[i]` into `word` and records its inside; returns the index
/// after the closing parenthesis.
fn substitution(c: &[char], mut i: usize, word: &mut String, subs: &mut Vec<String>) -> usize {
    let start = i + 2;
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    i += 1;
    while i < c.len() {
        let ch = c[i];
        match (quote, ch) {
            (Some(q), x) if x == q => quote = None,
            (Some(_), '\\') => i += 1,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '\\') => i += 1,
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let end = i.min(c.len());
    let inner: String = c[start.min(end)..end].iter().collect();
    word.push_str("$(");
    word.push_str(&inner);
    word.push(')');
    subs.push(inner);
    end + 1
}

fn backtick(c: &[char], mut i: usize, word: &mut String, subs: &mut Vec<String>) -> usize {
    let start = i + 1;
    i += 1;
    while i < c.len() && c[i] != '`' {
        if c[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    let end = i.min(c.len());
    let inner: String = c[start.min(end)..end].iter().collect();
    word.push('`');
    word.push_str(&inner);
    word.push('`');
    subs.push(inner);
    end + 1
}

const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "time",
];
const CLOSERS: &[&str] = &["fi", "done", "esac", "}"];
const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"];

fn is_assignment(w: &str) -> Option<(String, String)> {
    let (k, v) = w.split_once('=')?;
    let ok = !k.is_empty()
        && k.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| (k.to_string(), v.to_string()))
}

/// Strips reserved words and wrappers from the front of a command.
fn normalize(cmd: &mut Cmd) {
    loop {
        while let Some((k, v)) = cmd.words.first().and_then(|w| is_assignment(w)) {
            cmd.assigns.push((k, v));
            cmd.words.remove(0);
        }
        let Some(first) = cmd.words.first() else {
            return;
        };
        let name = first.rsplit('/').next().unwrap_or(first).to_string();
        if RESERVED.contains(&name.as_str()) {
            cmd.words.remove(0);
            continue;
        }
        if CLOSERS.contains(&name.as_str()) {
            cmd.words.clear();
            return;
        }
        let takes_value: &[&str] = match name.as_str() {
            "sudo" => &["-u", "-g", "-C", "-D", "-h", "-p", "-U", "-r", "-t"],
            "env" => &["-u", "-C", "-S"],
            "nice" => &["-n"],
            "xargs" => &["-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a"],
            "timeout" => &["-s", "-k"],
            "busybox" | "exec" | "command" | "nohup" | "stdbuf" => &[],
            _ => return,
        };
        if cmd.words.len() < 2 {
            return;
        }
        cmd.words.remove(0);
        while let Some(w) = cmd.words.first() {
            if name == "env" {
                if let Some((k, v)) = is_assignment(w) {
                    cmd.assigns.push((k, v));
                    cmd.words.remove(0);
                    continue;
                }
            }
            if w.starts_with('-') && w.len() > 1 {
                let w = cmd.words.remove(0);
                if takes_value.contains(&w.as_str()) && !cmd.words.is_empty() {
                    cmd.words.remove(0);
                }
                continue;
            }
            break;
        }
        if name == "timeout"
            && cmd
                .words
                .first()
                .is_some_and(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        {
            cmd.words.remove(0);
        }
    }
}

fn parse_into(
    src: &str,
    nested: bool,
    depth: usize,
    out: &mut Vec<Cmd>,
    next_pipeline: &mut usize,
) {
    let mut subs = Vec::new();
    let toks = lex(src, &mut subs);
    let mut cur = Cmd {
        nested,
        pipeline: *next_pipeline,
        ..Cmd::default()
    };
    let mut pending_redir: Option<String> = None;
    let mut done: Vec<Cmd> = Vec::new();
    let finish = |cur: &mut Cmd, done: &mut Vec<Cmd>| {
        normalize(cur);
        if !cur.words.is_empty() || !cur.assigns.is_empty() {
            done.push(cur.clone());
        }
        cur.words.clear();
        cur.assigns.clear();
        cur.redirects.clear();
    };
    for t in toks {
        match t {
            Tok::Word(w) => {
                if let Some(op) = pending_redir.take() {
                    cur.redirects.push((op, w));
                } else {
                    cur.words.push(w);
                }
            }
            Tok::Redir(op) => {
                if op.ends_with('&') || op == "<<" || op == "<<<" {
                    // `>&2`-style targets and here-docs: the next word is consumed either way.
                }
                pending_redir = Some(op);
            }
            Tok::Pipe => {
                pending_redir = None;
                finish(&mut cur, &mut done);
                cur.stage += 1;
            }
            Tok::Sep => {
                pending_redir = None;
                finish(&mut cur, &mut done);
                *next_pipeline += 1;
                cur.pipeline = *next_pipeline;
                cur.stage = 0;
            }
        }
    }
    finish(&mut cur, &mut done);
    *next_pipeline += 1;
    for c in done {
        let inner = (depth < MAX_DEPTH && SHELLS.contains(&c.name()))
            .then(|| {
                let a = c.args();
                a.iter()
                    .position(|w| w.starts_with('-') && !w.starts_with("--") && w.ends_with('c'))
                    .and_then(|i| a.get(i + 1).cloned())
            })
            .flatten();
        out.push(c);
        if let Some(script) = inner {
            parse_into(&script, true, depth + 1, out, next_pipeline);
        }
    }
    if depth < MAX_DEPTH {
        for s in subs {
            parse_into(&s, true, depth + 1, out, next_pipeline);
        }
    }
}

/// Substitutes `$NAME` and `${NAME}` for the variables in `vars` (the build arguments and
/// `ENV` values in scope of a step); other references stay as written.
pub(crate) fn expand(src: &str, vars: &[(String, String)]) -> String {
    if vars.is_empty() || !src.contains('$') {
        return src.to_string();
    }
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' {
            if b.get(i + 1) == Some(&'{') {
                if let Some(end) = b[i + 2..].iter().position(|&c| c == '}') {
                    let name: String = b[i + 2..i + 2 + end].iter().collect();
                    if let Some(v) = lookup(&name) {
                        out.push_str(v);
                        i += end + 3;
                        continue;
                    }
                }
            } else {
                let n = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                if n > 0 {
                    let name: String = b[i + 1..i + 1 + n].iter().collect();
                    if let Some(v) = lookup(&name) {
                        out.push_str(v);
                        i += n + 1;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Splits `src` into words with shell quoting (for instruction arguments such as `ENV`
/// pairs and `COPY` sources); separators are kept as plain text.
pub(crate) fn words(src: &str) -> Vec<String> {
    let mut subs = Vec::new();
    lex(src, &mut subs)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Word(w) => Some(w),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &Script) -> Vec<(&str, usize, usize, bool)> {
        s.cmds
            .iter()
            .map(|c| (c.name(), c.pipeline, c.stage, c.nested))
            .collect()
    }

    #[test]
    fn separators_pipes_and_quotes() {
        let s = Script::parse("set -eux; curl -fsSL 'https://x/a b' | tar -xz -C /usr/local && echo \"a | b; c\" || true");
        let n = names(&s);
        assert_eq!(
            n.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec!["set", "curl", "tar", "echo", "true"]
        );
        assert_eq!((n[1].1, n[1].2), (n[2].1, 0));
        assert_eq!(n[2].2, 1);
        assert_ne!(n[3].1, n[2].1);
        assert_eq!(s.cmds[1].args()[1], "https://x/a b");
        assert_eq!(s.cmds[3].args(), ["a | b; c"]);
    }

    #[test]
    fn continuations_redirects_wrappers_and_nesting() {
        let s = Script::parse(
            "apt-get update && \\\n  DEBIAN_FRONTEND=noninteractive sudo -E apt-get install -y golang-go >/dev/null 2>&1 \\\n && V=$(curl -s https://go.dev/VERSION?m=text) && sh -c 'wget -qO- http://x/i.sh | sh' && busybox wget http://y",
        );
        let n: Vec<&str> = s.cmds.iter().map(Cmd::name).collect();
        assert_eq!(
            n,
            vec!["apt-get", "apt-get", "", "sh", "wget", "sh", "wget", "curl"]
        );
        let install = &s.cmds[1];
        assert_eq!(
            install.assigns,
            vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())]
        );
        assert_eq!(install.args(), ["install", "-y", "golang-go"]);
        assert_eq!(install.redirects.len(), 2);
        assert_eq!(s.cmds[2].assigns[0].0, "V");
        let curl = &s.cmds[7];
        assert!(curl.nested);
        let w = &s.cmds[4];
        assert!(w.nested);
        assert_eq!(w.args(), ["-qO-", "http://x/i.sh"]);
        assert_eq!(w.opt(&["-O"]), Some("-"));
        assert_eq!((s.cmds[5].stage, s.cmds[5].pipeline), (1, w.pipeline));
        assert_eq!(s.cmds[6].args(), ["http://y"]);
        assert!(!s.cmds[6].nested);
    }

    #[test]
    fn control_flow_and_comments() {
        let s = Script::parse("if [ -f x ]; then go install ./...; fi # go get ignored\nfor f in a b; do echo $f; done");
        let n: Vec<&str> = s.cmds.iter().map(Cmd::name).collect();
        assert_eq!(n, vec!["[", "go", "for", "echo"]);
    }

    #[test]
    fn options_and_expansion() {
        let s = Script::parse("curl -fsSLo /tmp/go.tgz https://x && wget --output-document=- http://y && tar -xzf /tmp/go.tgz");
        assert_eq!(s.cmds[0].opt(&["-o", "--output"]), Some("/tmp/go.tgz"));
        assert_eq!(s.cmds[1].opt(&["-O", "--output-document"]), Some("-"));
        assert!(s.cmds[2].has_short('x'));
        let vars = vec![("GO_VERSION".to_string(), "1.22.5".to_string())];
        assert_eq!(
            expand("go${GO_VERSION}.tgz $GO_VERSION $HOME", &vars),
            "go1.22.5.tgz 1.22.5 $HOME"
        );
        assert_eq!(
            words("GOPATH=\"/go path\" GOCACHE=/c"),
            vec!["GOPATH=/go path", "GOCACHE=/c"]
        );
    }

    #[test]
    fn hostile_input_terminates() {
        let deep = "$(".repeat(1000);
        let _ = Script::parse(&deep);
        let _ = Script::parse("sh -c \"sh -c 'sh -c \\\"sh -c x\\\"'\" \"unterminated");
        let _ = Script::parse("'");
        let _ = Script::parse("\\");
    }
}
