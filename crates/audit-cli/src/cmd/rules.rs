//! `imgaudit rules` and `imgaudit explain`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use audit_core::rules::{self, RULES};

use crate::cli::RulesArgs;

pub(crate) fn list(args: &RulesArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.markdown {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for r in RULES {
            let p = dir.join(format!("{}.md", r.id));
            std::fs::write(&p, rules::render_markdown(r))
                .with_context(|| format!("writing {}", p.display()))?;
        }
        std::fs::write(dir.join("README.md"), rules::render_index())
            .with_context(|| format!("writing {}/README.md", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<7} {:<9} {:<32} SUMMARY", "ID", "SEVERITY", "NAME")?;
    for r in RULES {
        writeln!(
            out,
            "{:<7} {:<9} {:<32} {}",
            r.id, r.severity, r.name, r.summary
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn explain(id: &str) -> anyhow::Result<ExitCode> {
    let Some(r) = rules::find(id) else {
        bail!("unknown rule {id:?}; `imgaudit rules` lists them");
    };
    write!(std::io::stdout().lock(), "{}", rules::render_markdown(r))?;
    Ok(ExitCode::SUCCESS)
}
