//! The one log subscriber of the binary: diagnostics on stderr, as text for people or as JSON
//! lines for log collectors (`imgaudit serve`). The libraries only emit `tracing` events.

use std::io;

use crate::cli::LogFormat;

/// Installs the subscriber: `base` is the level without `-v`; each `-v` adds one level.
pub(crate) fn init(format: LogFormat, base: tracing::Level, verbose: u8) {
    const LEVELS: [tracing::Level; 5] = [
        tracing::Level::ERROR,
        tracing::Level::WARN,
        tracing::Level::INFO,
        tracing::Level::DEBUG,
        tracing::Level::TRACE,
    ];
    let at = LEVELS.iter().position(|l| *l == base).unwrap_or(1);
    let level = LEVELS[(at + usize::from(verbose)).min(LEVELS.len() - 1)];
    let b = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => b
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => b.try_init(),
    };
}
