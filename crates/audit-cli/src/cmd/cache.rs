//! `imgaudit cache info|prune|clear`: the disk layer store.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::{CacheAction, CacheArgs};

pub(crate) fn run(args: &CacheArgs) -> anyhow::Result<ExitCode> {
    let (CacheAction::Info(store) | CacheAction::Prune(store) | CacheAction::Clear(store)) =
        &args.action;
    let store = crate::store::open_disk(store, |k| std::env::var_os(k))?;
    let mut out = io::stdout().lock();
    match &args.action {
        CacheAction::Info(_) => {
            let i = store.info()?;
            writeln!(out, "directory:        {}", i.dir.display())?;
            writeln!(out, "entries:          {} ({} bytes)", i.entries, i.bytes)?;
            writeln!(out, "bound:            {} bytes", i.max_bytes)?;
            writeln!(
                out,
                "other versions:   {} ({} bytes; `imgaudit cache prune` removes them)",
                i.foreign_entries, i.foreign_bytes
            )?;
            writeln!(out, "temporary files:  {}", i.temp_files)?;
        }
        CacheAction::Prune(_) | CacheAction::Clear(_) => {
            let p = if matches!(args.action, CacheAction::Prune(_)) {
                store.prune()?
            } else {
                store.clear()?
            };
            writeln!(
                out,
                "removed {} entries ({} bytes) and {} temporary files",
                p.entries, p.bytes, p.temp_files
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
