//! The human format: findings grouped by severity, a binaries table, a one-line summary.

use std::io::{self, Write};

use super::{Format, Report};
use crate::error::one_line;
use crate::finding::{Severity, Visibility};
use crate::rules::human_bytes;

/// The text format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Text {
    /// ANSI colours.
    pub color: bool,
    /// List every binary, not only the ones with problems.
    pub all_binaries: bool,
}

impl Text {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn sev(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;35",
            Severity::High => "1;31",
            Severity::Medium => "1;33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.paint(code, &s.as_str().to_uppercase())
    }

    fn one(&self, r: &Report, out: &mut dyn Write) -> io::Result<()> {
        let img = &r.image;
        let platform = img
            .platform
            .as_deref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{} ({}){platform}",
            self.paint("1", &one_line(&img.reference)),
            img.source
        )?;
        let mut ids = Vec::new();
        if let Some(d) = &img.manifest_digest {
            ids.push(format!("manifest {d}"));
        }
        if let Some(d) = &img.index_digest {
            ids.push(format!("index {d}"));
        }
        if !ids.is_empty() {
            writeln!(out, "  {}", ids.join("  "))?;
        }
        writeln!(
            out,
            "  {} layers, {} ({} uncompressed), {} files, {} ELF binaries ({} Go)",
            r.layers.len(),
            human_bytes(img.size),
            human_bytes(img.uncompressed_size),
            img.files,
            r.summary.binaries,
            r.summary.go_binaries
        )?;
        if let Some(p) = &r.profile {
            let why = p
                .reason
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            writeln!(
                out,
                "  profile {}{why}: rebased, about {} (profile {} + application {}); {} would be dropped",
                p.name,
                human_bytes(p.estimated_bytes),
                human_bytes(p.baseline_bytes),
                human_bytes(p.application_bytes),
                human_bytes(p.removable_bytes)
            )?;
        }
        for sev in Severity::ALL {
            let group: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
            if group.is_empty() {
                continue;
            }
            writeln!(out)?;
            writeln!(out, "{}", self.sev(sev))?;
            for f in group {
                writeln!(
                    out,
                    "  {} {}  {}",
                    self.paint("1", f.rule),
                    self.paint("2", f.name),
                    one_line(&f.message)
                )?;
                for e in f.evidence.iter().take(3) {
                    let mut parts = Vec::new();
                    if let Some(p) = &e.path {
                        parts.push(one_line(p).into_owned());
                    }
                    if let Some(l) = &e.layer {
                        parts.push(format!("layer {} ({})", l.index, l.digest.short()));
                    }
                    if let Some(h) = &e.history {
                        let mut c = one_line(&h.created_by).into_owned();
                        if c.chars().count() > 60 {
                            c = c.chars().take(57).collect::<String>() + "...";
                        }
                        parts.push(format!("step {}: {c}", h.index));
                    }
                    match e.visibility {
                        Visibility::Final => {}
                        Visibility::DeletedIn(l) => parts.push(format!("deleted in layer {l}")),
                        Visibility::OverwrittenIn(l) => {
                            parts.push(format!("overwritten in layer {l}"))
                        }
                    }
                    if !parts.is_empty() {
                        writeln!(out, "      at {}", parts.join(", "))?;
                    }
                }
                if f.evidence.len() > 3 {
                    writeln!(out, "      … and {} more", f.evidence.len() - 3)?;
                }
                writeln!(out, "      {} {}", self.paint("32", "fix:"), f.remediation)?;
            }
        }
        let shown: Vec<_> = r
            .binaries
            .iter()
            .filter(|b| {
                self.all_binaries
                    || b.runnable == Some(false)
                    || b.foreign.is_some()
                    || b.go.is_some()
            })
            .collect();
        if !shown.is_empty() {
            writeln!(out)?;
            writeln!(out, "{}", self.paint("1", "BINARIES"))?;
            let w = shown
                .iter()
                .map(|b| b.path.len())
                .max()
                .unwrap_or(4)
                .clamp(4, 48);
            writeln!(
                out,
                "  {:<w$}  {:<14}  {:<12}  STARTS",
                "PATH", "LINKAGE", "GO"
            )?;
            for b in shown {
                let linkage = serde_json::to_value(b.elf.linkage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let go = b.go.as_ref().map_or("-".to_string(), |g| {
                    g.info
                        .as_ref()
                        .map(|i| i.go_version.clone())
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| "go (?)".into())
                });
                let starts = match b.runnable {
                    Some(true) => "yes".to_string(),
                    Some(false) => {
                        use crate::system::ldso::InterpreterStatus;
                        let why = b.loader.as_ref().map(|l| {
                            if matches!(l.interpreter, Some(InterpreterStatus::Malformed { .. })) {
                                "malformed PT_INTERP".to_string()
                            } else if !matches!(
                                l.interpreter,
                                Some(InterpreterStatus::Found { .. }) | None
                            ) {
                                "interpreter missing".to_string()
                            } else if !l.missing.is_empty() {
                                format!(
                                    "missing {}",
                                    l.missing
                                        .iter()
                                        .map(|m| m.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            } else {
                                format!(
                                    "needs {}",
                                    l.missing_versions
                                        .iter()
                                        .map(|m| m.version.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        });
                        self.paint("31", &format!("no: {}", why.unwrap_or_default()))
                    }
                    None => match &b.foreign {
                        Some(f) => format!("foreign ({f}): not checked"),
                        None => "-".to_string(),
                    },
                };
                writeln!(
                    out,
                    "  {:<w$}  {:<14}  {:<12}  {starts}",
                    one_line(&b.path),
                    linkage,
                    go
                )?;
            }
        }
        if !r.unknowns.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{} ({})",
                self.paint("1", "NOT FULLY EXAMINED"),
                r.unknowns.len()
            )?;
            for u in r.unknowns.iter().take(10) {
                let at = one_line(u.path.as_deref().unwrap_or_default()).into_owned();
                let layer = u.layer.map(|l| format!(" (layer {l})")).unwrap_or_default();
                writeln!(out, "  {at}{layer}: {}", one_line(&u.reason))?;
            }
            if r.unknowns.len() > 10 {
                writeln!(
                    out,
                    "  … and {} more (see --format json)",
                    r.unknowns.len() - 10
                )?;
            }
        }
        if !r.not_applicable.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "not applicable without an image config: {}",
                r.not_applicable.join(", ")
            )?;
        }
        writeln!(out)?;
        let s = &r.summary;
        let counts = format!(
            "{} critical, {} high, {} medium, {} low, {} info",
            s.critical, s.high, s.medium, s.low, s.info
        );
        let suppressed = if r.suppressed.is_empty() {
            String::new()
        } else {
            format!(" ({} suppressed by policy)", r.suppressed.len())
        };
        writeln!(
            out,
            "{} findings: {counts}{suppressed}",
            self.paint("1", &s.total().to_string())
        )
    }
}

impl Format for Text {
    fn id(&self) -> &'static str {
        "text"
    }

    fn write(&self, reports: &[Report], out: &mut dyn Write) -> io::Result<()> {
        for (i, r) in reports.iter().enumerate() {
            if i > 0 {
                writeln!(out, "\n{}\n", "─".repeat(60))?;
            }
            self.one(r, out)?;
        }
        Ok(())
    }
}
