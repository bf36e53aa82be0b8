//! `imgaudit sweep`: flags and files into an `audit_core::sweep::Sweep`; its reports as JSON
//! Lines on stdout, its summary on stderr (and `--summary FILE`).

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context};
use audit_core::report::{Format, Json};
use audit_core::source::RegistryPool;
use audit_core::sweep::{reported_digests, Shard, Sweep, Target};

use crate::cli::{LogFormat, SweepArgs};

pub(crate) fn run(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init(LogFormat::Text, tracing::Level::WARN, args.verbose);
    let shard = shard(args.shard.as_deref(), |k| std::env::var(k).ok())?;
    let mut targets = Vec::new();
    let listed = match &args.list {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("--list {}", p.display()))?,
        None => String::new(),
    };
    let lines = listed
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty());
    for t in args.targets.iter().map(String::as_str).chain(lines) {
        targets.push(Target::parse(t)?);
    }
    if targets.is_empty() {
        bail!("nothing to sweep: give REGISTRY[/REPO…] or --list FILE");
    }
    let done = match &args.resume {
        Some(p) if p.exists() => std::fs::File::open(p)
            .map(io::BufReader::new)
            .and_then(reported_digests)
            .with_context(|| format!("--resume {}", p.display()))?,
        _ => Default::default(),
    };
    let pool = RegistryPool::new(&crate::registry::source_options(&args.registry)?)?;
    let builder = args
        .scope
        .builder()?
        .policy(args.scope.policy()?)
        .today(crate::cmd::audit::today());
    let store = crate::store::open(&args.store, |k| std::env::var_os(k))?;
    let sweep = Sweep::new(
        pool,
        builder,
        store,
        args.layer_cache_bytes,
        args.parallel,
        Duration::from_secs(args.registry.timeout),
    )
    .shard(shard)
    .skip(done);

    let out = Mutex::new(io::stdout());
    let summary = sweep.run(&targets, |reports| {
        // Each line exactly the `--format json` report of one image; whole lines only, so a
        // killed run leaves a file `--resume` can read.
        let json = Json { pretty: false };
        let mut buf = Vec::new();
        for r in reports {
            let at = buf.len();
            if let Err(e) = json.write(std::slice::from_ref(r), &mut buf) {
                buf.truncate(at);
                tracing::error!(error = %e, image = %r.image.reference, "writing a report");
            }
        }
        let mut o = out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = o.write_all(&buf).and_then(|()| o.flush()) {
            tracing::error!(error = %e, "writing a report to stdout");
        }
    })?;
    let text = serde_json::to_string_pretty(&summary)?;
    eprintln!("{text}");
    if let Some(p) = &args.summary {
        std::fs::write(p, text + "\n").with_context(|| format!("--summary {}", p.display()))?;
    }
    Ok(if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `--shard I/N`, else Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` and `JOB_COMPLETIONS`,
/// else the whole sweep.
fn shard(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Shard> {
    Ok(match flag {
        Some(s) => s.parse().context("--shard")?,
        None => match (env("JOB_COMPLETION_INDEX"), env("JOB_COMPLETIONS")) {
            (Some(i), Some(n)) => {
                Shard::parse(&i, &n).context("JOB_COMPLETION_INDEX/JOB_COMPLETIONS")?
            }
            _ => Shard::ALL,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_from_flag_or_job_environment() {
        let none = |_: &str| None;
        assert_eq!(shard(None, none).unwrap(), Shard::ALL);
        assert_eq!(shard(Some("2/4"), none).unwrap().to_string(), "2/4");
        assert!(shard(Some("4/4"), none).is_err());
        let job = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("1".to_string()),
            "JOB_COMPLETIONS" => Some("3".to_string()),
            _ => None,
        };
        assert_eq!(shard(None, job).unwrap().to_string(), "1/3");
        assert_eq!(
            shard(Some("0/2"), job).unwrap().to_string(),
            "0/2",
            "the flag wins"
        );
    }
}
