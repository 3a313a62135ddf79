//! Rebuild every projection from the log, beside the live ones, and swap them in only when the
//! whole log folded.

use crate::ReplayError;
use indicatif::{ProgressBar, ProgressStyle};
use projections::Ledger;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub events: u64,
    pub position: i64,
    pub elapsed: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds with a progress bar on stderr when it is a terminal (hidden otherwise).
pub fn rebuild(ledger: &mut Ledger, show_progress: bool) -> Result<RebuildReport, ReplayError> {
    let started = Instant::now();
    let head = ledger.store().head_position()?;
    let bar = if show_progress { ProgressBar::new(head.max(0) as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding projections [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // The log is folded beside the live projections and swapped in only when all of it
    // folded: a failure leaves them exactly as they were.
    let done = ledger.rebuild_projections(&mut |progress| bar.set_position(progress.position.max(0) as u64));
    bar.finish_and_clear();
    let done = done?;
    Ok(RebuildReport { events: done.events, position: done.position, elapsed: started.elapsed() })
}
