//! What a stage run reports (its counts, and the outside systems it could not read), and the
//! error of a stage that could not run at all.

use crate::amazon::AmazonError;
use crate::stages::sku_master::NoMapping;
use crate::stages::sources::Unread;
use projections::LedgerError;
use serde::Serialize;

/// One stage run: how many orders it looked at and what became of them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StageReport {
    pub stage: &'static str,
    pub examined: usize,
    /// Moved on (or recorded progress).
    pub advanced: usize,
    /// Left for a later cycle (an outside system did not answer, or the order changed).
    pub deferred: usize,
    /// Put in front of an operator (ERROR, OUT_OF_STOCK, DATE_UNAVAILABLE).
    pub needs_operator: usize,
    /// A shutdown stopped the stage between two steps; the next cycle does the rest.
    pub interrupted: bool,
    /// Outside systems it could not read (the cycle exits 3 when there are any).
    pub failed_sources: Vec<events::system::SourceFailure>,
}

impl StageReport {
    /// Adds a later pass of the same stage: one report per stage however many passes a lane
    /// made.
    pub fn merge(&mut self, later: StageReport) {
        self.examined += later.examined;
        self.advanced += later.advanced;
        self.deferred += later.deferred;
        self.needs_operator += later.needs_operator;
        self.interrupted |= later.interrupted;
        for failure in later.failed_sources {
            if !self.failed_sources.contains(&failure) {
                self.failed_sources.push(failure);
            }
        }
    }

    pub(crate) fn new(stage: &'static str) -> Self {
        Self { stage, ..Self::default() }
    }

    /// `source` could not be read: the cycle says so in its exit code and its record.
    pub fn source_failed(&mut self, source: &str, unread: &Unread) {
        // Stopped by the shutdown: the cycle says it was interrupted; the source did not fail.
        if unread.interrupted {
            return;
        }
        if !self.failed_sources.iter().any(|f| f.source == source) {
            self.failed_sources.push(unread.at(source));
        }
    }

    /// The stage's numbers as `CycleFinished` records them.
    pub fn counts(&self) -> events::system::StageCounts {
        events::system::StageCounts {
            stage: self.stage.to_owned(),
            examined: self.examined,
            advanced: self.advanced,
            deferred: self.deferred,
            needs_operator: self.needs_operator,
            interrupted: self.interrupted,
        }
    }
}

/// A stage that could not run at all (nothing was changed for any order).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("SKU master: {0}")]
    SkuMaster(#[from] NoMapping),
    #[error(transparent)]
    Amazon(#[from] AmazonError),
    #[error("the cycle lease was lost while the stage ran: {0}")]
    Lease(String),
}

impl StageError {
    /// The process's shutdown stopped the stage's outside call: the stage was interrupted, it
    /// did not fail (the other side may be fine).
    pub fn interrupted(&self) -> bool {
        use crate::transport::SourceError;
        matches!(self, Self::Amazon(error) if error.interrupted())
    }
}
