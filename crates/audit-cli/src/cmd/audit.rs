//! The default command: audit images.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use audit_core::policy::{Ignore, Policy, PolicyFile};
use audit_core::report::{Cyclonedx, Format, Json, Markdown, Report, Sarif, Text};
use audit_core::rules::RuleSettings;
use audit_core::source::{self, PlatformChoice};
use audit_core::Limits;
use audit_core::Severity;
use audit_core::SourceError;
use audit_core::{Auditor, AuditorBuilder};

use crate::cli::{AuditArgs, ColorArg, FormatArg, LogFormat, ScopeArgs};
use crate::progress::Bars;

pub(crate) fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    // Warnings by default, `-v` info (layer timings), `-vv` debug, `-vvv` trace.
    crate::logging::init(LogFormat::Text, tracing::Level::WARN, args.verbose);
    let mut policy = args.scope.policy()?;
    if let Some(s) = &args.fail_on {
        policy.fail_on = Some(
            s.parse::<Severity>()
                .map_err(anyhow::Error::msg)
                .context("--fail-on")?,
        );
    }
    for (i, ig) in args.ignore.iter().enumerate() {
        let (rule, glob) = match ig.split_once(':') {
            Some((r, g)) => (r, Some(g)),
            None => (ig.as_str(), None),
        };
        policy.ignores.push(Ignore::new(
            &format!("--ignore[{i}]"),
            rule,
            glob,
            Some("--ignore".into()),
            None,
        )?);
    }
    let mut settings = RuleSettings::default();
    settings.go.min_supported = args.go_min;
    let mut builder = args
        .scope
        .builder()?
        .settings(settings)
        .policy(policy)
        .today(today());
    if let Some(n) = args.secret_scan_bytes {
        let mut limits = Limits::default();
        limits.secret_scan_max_bytes = n;
        builder = builder.limits(limits);
    }
    let bars = (!args.quiet && io::stderr().is_terminal()).then(|| Arc::new(Bars::new()));
    if let Some(b) = &bars {
        builder = builder.progress(Arc::clone(b) as Arc<dyn audit_core::Progress>);
    }
    if let Some(store) = crate::store::open(&args.store, |k| std::env::var_os(k))? {
        builder = builder.layer_store(store);
    }
    let auditor = builder.build();
    let mut engines = crate::engines::options(|k| std::env::var_os(k))?;
    engines.order = crate::engines::order(&args.image_src).context("--image-src")?;
    engines.containerd = crate::engines::containerd_socket(&args.containerd_address)
        .context("--containerd-address")?;
    engines.containerd_namespace = args.containerd_namespace.clone();
    let opts = crate::registry::source_options(&args.registry)?.engines(engines);

    let mut reports: Vec<Report> = Vec::new();
    for image in &args.images {
        let src = match source::open(image, &opts) {
            Ok(s) => s,
            // These name the input path already: no "opening X: X: …".
            Err(
                e @ (SourceError::Io { .. }
                | SourceError::UnknownFormat { .. }
                | SourceError::WrongFormat { .. }),
            ) => return Err(e.into()),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("opening {image}"))),
        };
        let r = auditor.audit(&src, image);
        if let Some(b) = &bars {
            b.finish();
        }
        reports.append(
            &mut r
                .map_err(crate::registry::hint)
                .with_context(|| format!("auditing {image}"))?,
        );
    }

    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            args.output.is_none()
                && io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let format: Box<dyn Format> = match args.format {
        FormatArg::Text => Box::new(Text {
            color,
            all_binaries: args.all_binaries,
        }),
        FormatArg::Json => Box::new(Json {
            pretty: args.output.is_some() || io::stdout().is_terminal(),
        }),
        FormatArg::Sarif => Box::new(Sarif),
        FormatArg::Cyclonedx => Box::new(Cyclonedx),
        FormatArg::Markdown => Box::new(Markdown),
    };
    match &args.output {
        Some(path) => {
            let mut buf = Vec::new();
            format.write(&reports, &mut buf)?;
            std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            format.write(&reports, &mut out)?;
            out.flush()?;
        }
    }
    if reports.iter().any(|r| auditor.policy().verdict(r).denied()) {
        return Ok(ExitCode::from(1));
    }
    if reports.is_empty() {
        bail!("no image was audited");
    }
    Ok(ExitCode::SUCCESS)
}

/// The name the policy file has in the working directory.
pub(crate) const POLICY_FILE: &str = "imgaudit.toml";

impl ScopeArgs {
    /// The policy file (or the defaults) with `--profile` applied.
    pub(crate) fn policy(&self) -> anyhow::Result<Policy> {
        let mut policy = load_policy(self.config.as_deref())?;
        if let Some(name) = &self.profile {
            policy.profile = Some(policy.profiles.choose("--profile", name)?);
        }
        Ok(policy)
    }

    /// An auditor builder with the platform choice and parallelism set.
    pub(crate) fn builder(&self) -> anyhow::Result<AuditorBuilder> {
        let platform = match (&self.platform, self.all_platforms) {
            (_, true) => PlatformChoice::All,
            (Some(p), false) => PlatformChoice::Exact(p.parse().context("--platform")?),
            (None, false) => PlatformChoice::Default,
        };
        let mut builder = Auditor::builder().platform(platform);
        if let Some(j) = self.jobs {
            builder = builder.jobs(j);
        }
        Ok(builder)
    }
}

/// Reads `--config FILE`, else `./imgaudit.toml` when it exists, else the default policy.
pub(crate) fn load_policy(config: Option<&std::path::Path>) -> anyhow::Result<Policy> {
    let path = match config {
        Some(p) => p.to_path_buf(),
        None if std::path::Path::new(POLICY_FILE).is_file() => POLICY_FILE.into(),
        None => return Ok(Policy::default()),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading policy file {}", path.display()))?;
    let policy = PolicyFile::parse(&text)
        .and_then(PolicyFile::validate)
        .with_context(|| format!("policy file {}", path.display()))?;
    Ok(policy)
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub(crate) fn today() -> String {
    time::OffsetDateTime::now_utc()
        .date()
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .expect("a calendar date formats as YYYY-MM-DD")
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_date() {
        let t = super::today();
        assert_eq!(t.len(), 10);
        assert!(t.starts_with("20"));
    }
}
