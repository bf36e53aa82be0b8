//! Markdown output for pull-request comments: per image a counts table, the profile
//! comparison when DL rules ran, and the findings grouped by severity in `<details>` blocks
//! (critical and high open, the rest collapsed), each with its first evidence and the fix.
//! Text from the image (paths, messages) is escaped so that it cannot inject Markdown or HTML.

use std::io::{self, Write};

use super::{Format, Report};
use crate::finding::Severity;
use crate::rules::human_bytes;

/// The Markdown format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Markdown;

/// Evidence lines shown per finding.
const EVIDENCE_SHOWN: usize = 3;

impl Format for Markdown {
    fn id(&self) -> &'static str {
        "markdown"
    }

    fn write(&self, reports: &[Report], out: &mut dyn Write) -> io::Result<()> {
        for (i, r) in reports.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            one(r, out)?;
        }
        writeln!(
            out,
            "\n<sub>imgaudit {} · `imgaudit explain ID` for any rule</sub>",
            env!("CARGO_PKG_VERSION")
        )
    }
}

fn one(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let img = &r.image;
    let platform = img
        .platform
        .as_deref()
        .map(|p| format!(" ({})", esc(p)))
        .unwrap_or_default();
    writeln!(out, "### imgaudit: {}{platform}", code(&img.reference))?;
    writeln!(out)?;
    let s = &r.summary;
    writeln!(
        out,
        "| critical | high | medium | low | info | suppressed |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|")?;
    writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |",
        s.critical,
        s.high,
        s.medium,
        s.low,
        s.info,
        r.suppressed.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{} layers, {} ({} uncompressed), {} ELF binaries ({} Go){}",
        r.layers.len(),
        human_bytes(img.size),
        human_bytes(img.uncompressed_size),
        s.binaries,
        s.go_binaries,
        if s.not_runnable > 0 {
            format!(", **{} cannot start**", s.not_runnable)
        } else {
            String::new()
        }
    )?;
    if let Some(p) = &r.profile {
        writeln!(out)?;
        writeln!(
            out,
            "Profile {}: {} would be dropped by a rebase; estimated size {} (profile {} + application {}).",
            code(&p.name),
            human_bytes(p.removable_bytes),
            human_bytes(p.estimated_bytes),
            human_bytes(p.baseline_bytes),
            human_bytes(p.application_bytes)
        )?;
    }
    if r.findings.is_empty() {
        writeln!(out, "\nNo findings.")?;
        return Ok(());
    }
    for sev in Severity::ALL {
        let group: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let open = if sev >= Severity::High { " open" } else { "" };
        writeln!(
            out,
            "\n<details{open}><summary><b>{sev}</b> ({})</summary>\n",
            group.len()
        )?;
        for f in group {
            writeln!(
                out,
                "- **{}** {} — {}",
                f.rule,
                code(f.name),
                esc(&f.message)
            )?;
            let mut where_: Vec<String> = Vec::new();
            for e in f.evidence.iter().take(EVIDENCE_SHOWN) {
                let mut parts = Vec::new();
                if let Some(p) = &e.path {
                    parts.push(code(p));
                }
                if let Some(l) = &e.layer {
                    parts.push(format!("layer {} {}", l.index, code(l.digest.short())));
                }
                if let Some(crate::finding::Detail::ConfigField { field, value }) = &e.detail {
                    parts.push(format!("config {}", code(&format!("{field}={value}"))));
                }
                if !parts.is_empty() {
                    where_.push(parts.join(" "));
                }
            }
            if f.evidence.len() > EVIDENCE_SHOWN {
                where_.push(format!("{} more", f.evidence.len() - EVIDENCE_SHOWN));
            }
            if !where_.is_empty() {
                writeln!(out, "  <br><sub>{}</sub>", where_.join(" · "))?;
            }
            writeln!(out, "  <br>Fix: {}", esc(&f.remediation))?;
        }
        writeln!(out, "\n</details>")?;
    }
    Ok(())
}

/// Escapes text for Markdown and inline HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// An inline code span (HTML, so that backticks in the text cannot break out).
fn code(s: &str) -> String {
    let mut out = String::from("<code>");
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push_str("</code>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("a|b <script> *x* `y`"),
            "a\\|b &lt;script&gt; \\*x\\* \\`y\\`"
        );
        assert_eq!(code("/opt/a|b<c>"), "<code>/opt/a&#124;b&lt;c&gt;</code>");
    }
}
