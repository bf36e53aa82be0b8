//! `imgaudit`: the command-line front end of `audit-core`.

// The argument structs' doc comments are clap's --help text, written for a terminal
// (`[:PASSWORD@]HOST[:PORT]`, `[admission]`), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

mod cli;
mod cmd;
mod creds;
mod engines;
mod logging;
mod progress;
mod registry;
mod store;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`imgaudit … | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // One line whatever the input held (names from argv, text from an image).
            let msg = format!("{e:#}");
            let _ = writeln!(
                io::stderr(),
                "imgaudit: error: {}",
                audit_core::error::one_line(&msg)
            );
            ExitCode::from(2)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(cli::Command::Rules(args)) => cmd::rules::list(&args),
        Some(cli::Command::Explain { id }) => cmd::rules::explain(&id),
        Some(cli::Command::Serve(args)) => cmd::serve::run(&args),
        Some(cli::Command::Cache(args)) => cmd::cache::run(&args),
        Some(cli::Command::Sweep(args)) => cmd::sweep::run(&args),
        None => cmd::audit::run(&cli.audit),
    }
}
