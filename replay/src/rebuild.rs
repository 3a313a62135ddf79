//! Drop and rebuild every projection from the log.

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
    let (projections, store) = ledger.projections_mut();
    let head = store.head_position()?;
    let bar = if show_progress { ProgressBar::new(head.max(0) as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding projections [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // Indexes and the search index's triggers are dropped for the rebuild and built once at
    // the end, which is far cheaper than keeping them up row by row.
    let done = projections
        .rebuild(store.connection_mut(), head, &mut |progress| bar.set_position(progress.position.max(0) as u64))?;
    bar.finish_and_clear();
    Ok(RebuildReport { events: done.events, position: done.position, elapsed: started.elapsed() })
}
