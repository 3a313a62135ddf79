//! The `system` stream: every cycle (when it ran, what each stage did, which sources could not
//! be read) and every alert to the admin, as one outside write each: intended, then sending,
//! then sent or failed.

use serde::{Deserialize, Serialize};

pub const SYSTEM_STREAM: &str = "system";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleStarted {
    /// `host:pid` of the process that holds the cycle lease.
    pub holder: String,
    pub stages: Vec<String>,
}

/// One stage of a cycle, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounts {
    pub stage: String,
    #[serde(default)]
    pub examined: usize,
    /// Moved on (or recorded progress).
    #[serde(default)]
    pub advanced: usize,
    /// Left for a later cycle (an outside system did not answer, or the order changed).
    #[serde(default)]
    pub deferred: usize,
    /// Put in front of an operator (ERROR, OUT_OF_STOCK, DATE_UNAVAILABLE).
    #[serde(default)]
    pub needs_operator: usize,
    /// A shutdown stopped the stage between two steps; the next cycle does the rest.
    #[serde(default)]
    pub interrupted: bool,
}

/// A stage that could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageFailure {
    pub stage: String,
    pub error: String,
}

/// Why a source could not be read, as an admin acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Down, unreachable, timing out, answering 5xx: it recovers by itself.
    Outage,
    /// A key, token or consent was refused: only a person can fix it.
    Credentials,
}

/// A source the cycle could not read (a marketplace, a mailbox, Amazon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFailure {
    /// `poll-rakuten`, `poll-yahoo`, `poll-mailbox-inbox`, `poll-amazon`.
    pub source: String,
    pub kind: FailureKind,
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleFinished {
    pub holder: String,
    pub duration_ms: u64,
    #[serde(default)]
    pub reports: Vec<StageCounts>,
    #[serde(default)]
    pub failures: Vec<StageFailure>,
    #[serde(default)]
    pub interrupted: bool,
    /// Sources that could not be read this cycle (the cycle's exit code 3).
    #[serde(default)]
    pub failed_sources: Vec<SourceFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertIntended {
    pub alert_id: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    /// Orders the alert is about.
    #[serde(default)]
    pub orders: Vec<String>,
}

/// An alert's attempt or outcome (`error` only when it failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertOutcome {
    pub alert_id: String,
    #[serde(default)]
    pub error: Option<String>,
}

crate::event_enum! {
    /// What happens in the `system` stream.
    pub enum SystemEvent {
        CycleStarted(CycleStarted) = 1,
        CycleFinished(CycleFinished) = 1,
        AlertIntended(AlertIntended) = 1,
        AlertSending(AlertOutcome) = 1,
        AlertSent(AlertOutcome) = 1,
        AlertFailed(AlertOutcome) = 1,
    }
}
