//! Progress bars on stderr (indicatif): one per layer in flight, in bytes, and a total.
//! Drawn only when stderr is a terminal and `--quiet` is not given, so they never mix with
//! a report on stdout or in a log.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use audit_core::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Layer bars.
pub(crate) struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    layers: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    pub(crate) fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        total.set_prefix("total");
        Self {
            multi,
            total,
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// Removes the bars from the terminal.
    pub(crate) fn finish(&self) {
        for (_, b) in self
            .layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            b.finish_and_clear();
        }
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Progress for Bars {
    fn layer_started(&self, index: usize, size: u64) {
        let b = self
            .multi
            .insert_before(&self.total, ProgressBar::new(size));
        b.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(format!("layer {index}"));
        self.total.inc_length(size);
        self.layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(index, b);
    }

    fn layer_bytes(&self, index: usize, bytes: u64) {
        if let Some(b) = self
            .layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&index)
        {
            b.inc(bytes);
        }
        self.total.inc(bytes);
    }

    fn layer_done(&self, index: usize) {
        if let Some(b) = self
            .layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&index)
        {
            b.finish_and_clear();
        }
    }
}
