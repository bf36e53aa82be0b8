//! Registry options for `source::open`: trust, insecure hosts, bounds and the credential
//! source, from flags, files and the environment; and hints for the errors a flag fixes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use audit_core::error::{Error, SourceError};
use audit_core::source::{RegistryLimits, SourceOptions};

use crate::cli::RegistryArgs;
use crate::creds::CliCredentials;

/// Registry options from flags, files and the environment (credentials are read lazily).
pub(crate) fn source_options(r: &RegistryArgs) -> anyhow::Result<SourceOptions> {
    let creds = CliCredentials::new(
        r.creds.as_deref(),
        r.registry_token.as_deref(),
        r.authfile.as_deref(),
        |k| std::env::var_os(k),
    )?;
    let mut limits = RegistryLimits::default();
    limits.total_timeout = Duration::from_secs(r.timeout);
    let mut opts = SourceOptions::new()
        .credentials(Arc::new(creds))
        .limits(limits);
    for f in &r.ca_file {
        opts = opts.ca_pem(std::fs::read(f).with_context(|| format!("--ca-file {}", f.display()))?);
    }
    if let Some(d) = &r.cert_dir {
        let mut n = 0;
        for e in std::fs::read_dir(d).with_context(|| format!("--cert-dir {}", d.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "crt") {
                opts = opts.ca_pem(
                    std::fs::read(&p).with_context(|| format!("--cert-dir {}", p.display()))?,
                );
                n += 1;
            }
        }
        if n == 0 {
            bail!("--cert-dir {}: no *.crt file", d.display());
        }
    }
    for h in &r.insecure {
        opts = opts.insecure_host(
            h.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/'),
        );
    }
    Ok(opts)
}

/// Adds what to do next to the registry errors a user can fix with a flag.
pub(crate) fn hint(e: Error) -> anyhow::Error {
    let h = match &e {
        Error::Source(SourceError::Tls { registry, .. }) => format!(
            "trust its CA with --ca-file or --cert-dir, or allow it with --insecure {registry}"
        ),
        Error::Source(SourceError::Unauthorized { .. }) => {
            "give credentials with --creds, --authfile or `docker login`".into()
        }
        _ => return e.into(),
    };
    anyhow::anyhow!("{e} ({h})")
}
