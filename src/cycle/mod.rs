//! One cycle, or one stage of it: `receive -> check -> ship -> monitor -> notify -> stock -> stale`.
//! Each stage is a named variant with one dispatcher, so an operator can list them and run one
//! by hand (`mcf-ledger cycle --stage ship`).

mod lanes;

use crate::stages::steps::LeaseRenewal;
use crate::stages::{self, StageContext, StageError, StageReport, Steps};
pub use crate::stages::{Services, ServicesError};
use events::system::{CycleFinished, CycleStarted, SystemEvent};
use projections::Ledger;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Receive,
    Check,
    Ship,
    Monitor,
    Notify,
    Stock,
    Stale,
}

impl Stage {
    pub const ALL: [Stage; 7] =
        [Stage::Receive, Stage::Check, Stage::Ship, Stage::Monitor, Stage::Notify, Stage::Stock, Stage::Stale];

    pub fn name(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Check => "check",
            Self::Ship => "ship",
            Self::Monitor => "monitor",
            Self::Notify => "notify",
            Self::Stock => "stock",
            Self::Stale => "stale",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|stage| stage.name() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            format!("unknown stage {s:?}; the stages are receive, check, ship, monitor, notify, stock, stale")
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("stage {stage}: {source}")]
    Stage { stage: Stage, source: StageError },
    #[error(transparent)]
    Services(#[from] ServicesError),
    #[error("no marketplace is configured: set the Rakuten or Yahoo variables (see `mcf-ledger check-config`)")]
    NoMarketplace,
    #[error("{0}")]
    Setup(String),
}

/// Runs one stage against the ledger.
pub async fn run_stage(
    ledger: &mut Ledger,
    services: &Services,
    stage: Stage,
    steps: Steps<'_>,
) -> Result<Vec<StageReport>, CycleError> {
    if matches!(stage, Stage::Receive | Stage::Notify) && services.rakuten.is_none() && services.yahoo.is_none() {
        return Err(CycleError::NoMarketplace);
    }
    let mut ctx = StageContext { ledger, services, steps };
    let reports = match stage {
        Stage::Receive => stages::receive::run(&mut ctx).await,
        Stage::Check => stages::check::run(&mut ctx).await.map(|report| vec![report]),
        Stage::Ship => stages::ship::run(&mut ctx).await.map(|report| vec![report]),
        Stage::Monitor => stages::monitor::run(&mut ctx).await,
        Stage::Notify => stages::notify::run(&mut ctx).await,
        Stage::Stock => stages::stock::sync::run(&mut ctx).await,
        Stage::Stale => stages::stale::run(&mut ctx).await,
    };
    reports.map_err(|source| CycleError::Stage { stage, source })
}

/// How long a cycle's lease lasts without renewal (renewed before every stage).
pub const LEASE_TTL_MINUTES: i64 = 15;
pub const LEASE: &str = "cycle";

/// A stage's failure inside a whole cycle: the other stages still ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageFailure {
    pub stage: &'static str,
    pub error: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CycleReport {
    pub reports: Vec<StageReport>,
    pub failures: Vec<StageFailure>,
    pub duration_ms: u128,
    /// A shutdown stopped the cycle between two steps of a stage, or between two stages.
    pub interrupted: bool,
    /// Outside systems that could not be read, once each (the first failure of each).
    pub failed_sources: Vec<events::system::SourceFailure>,
}

impl CycleReport {
    /// Adds stage reports, noting each outside system that could not be read (once).
    fn add(&mut self, reports: Vec<StageReport>) {
        self.interrupted |= reports.iter().any(|r| r.interrupted);
        for failure in reports.iter().flat_map(|r| &r.failed_sources) {
            if !self.failed_sources.iter().any(|f| f.source == failure.source) {
                tracing::warn!(source = failure.source, kind = ?failure.kind, error = failure.error, "source could not be read");
                self.failed_sources.push(failure.clone());
            }
        }
        self.reports.extend(reports);
    }

    /// A stage's outcome: its reports, or its failure (the other stages still run).
    fn add_stage(&mut self, stage: Stage, outcome: Result<Vec<StageReport>, CycleError>) {
        match outcome {
            Ok(reports) => self.add(reports),
            Err(CycleError::Stage { source, .. }) if source.interrupted() => {
                tracing::warn!(stage = stage.name(), error = %source, "the shutdown stopped the stage");
                let mut interrupted = StageReport::new(stage.name());
                interrupted.interrupted = true;
                self.add(vec![interrupted]);
            }
            Err(error) => {
                tracing::error!(stage = stage.name(), %error, "stage failed; the cycle goes on");
                self.failures.push(StageFailure { stage: stage.name(), error: error.to_string() });
            }
        }
    }

    /// The cycle as the `system` stream records it.
    fn finished_event(&self, holder: &str) -> CycleFinished {
        CycleFinished {
            holder: holder.to_owned(),
            duration_ms: self.duration_ms as u64,
            reports: self.reports.iter().map(StageReport::counts).collect(),
            failures: self
                .failures
                .iter()
                .map(|f| events::system::StageFailure { stage: f.stage.to_owned(), error: f.error.clone() })
                .collect(),
            interrupted: self.interrupted,
            failed_sources: self.failed_sources.clone(),
        }
    }
}

/// Records a cycle event; returns its id.
fn record_system(ledger: &mut Ledger, event: SystemEvent) -> Result<Option<uuid::Uuid>, CycleError> {
    use events::envelope::{Actor, ExpectedVersion, Meta};
    ledger
        .append(events::system::SYSTEM_STREAM, ExpectedVersion::Any, &[event.to_new_event(Meta::by(Actor::system()))])
        .map(|outcome| outcome.appended.first().map(|a| a.event_id))
        .map_err(|e| CycleError::Setup(e.to_string()))
}

/// Runs `stages` in order under the cycle lease. A stage that fails is recorded and the next
/// one still runs (they are independent); the lease is released at the end.
pub async fn run_cycle(ledger: &mut Ledger, services: &Services, stages: &[Stage]) -> Result<CycleReport, CycleError> {
    run_cycle_until(ledger, services, stages, &std::sync::atomic::AtomicBool::new(false)).await
}

/// [`run_cycle`], stopping at the next step once `stop` is set (a graceful shutdown): the step
/// under way (one order, one page) finishes and is recorded, and so is the interruption.
pub async fn run_cycle_until(
    ledger: &mut Ledger,
    services: &Services,
    stages: &[Stage],
    stop: &std::sync::atomic::AtomicBool,
) -> Result<CycleReport, CycleError> {
    let holder = crate::lease::holder_name();
    let started = std::time::Instant::now();
    let take = |ledger: &mut Ledger| {
        let now = ledger.store().now();
        crate::lease::acquire(
            ledger.store_mut().connection_mut(),
            LEASE,
            &holder,
            now,
            chrono::Duration::minutes(LEASE_TTL_MINUTES),
        )
        .map_err(|e| CycleError::Setup(e.to_string()))
    };
    take(ledger)?;
    let names: Vec<&str> = stages.iter().map(|s| s.name()).collect();
    let started_event = CycleStarted { holder: holder.clone(), stages: names.iter().map(|s| s.to_string()).collect() };
    // Everything the cycle appends carries its CycleStarted as correlation id.
    let cycle_id = record_system(ledger, SystemEvent::CycleStarted(started_event))?;
    ledger.correlate_with(cycle_id);
    tracing::info!(holder, stages = ?names, "cycle started");
    let mut report = CycleReport::default();
    if stages == Stage::ALL {
        // A whole cycle: the stages that wait on different APIs run at once (see `lanes`).
        take(ledger)?;
        let lease =
            lanes::LeaseSpec { name: LEASE, holder: holder.clone(), ttl: chrono::Duration::minutes(LEASE_TTL_MINUTES) };
        let outcome = lanes::run(&lanes::LedgerFile::of(ledger), services, cycle_id, &lease, stop).await;
        report.add(outcome.reports);
        report.failures.extend(outcome.failures);
        // Stock after the lanes: its plan counts the orders they just allotted and shipped.
        for stage in [Stage::Stock, Stage::Stale] {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            take(ledger)?;
            let steps = Steps::new(stop, Some(LeaseRenewal::taken(LEASE, holder.clone(), lease.ttl)));
            report.add_stage(stage, run_stage(ledger, services, stage, steps).await);
        }
    } else {
        for stage in stages {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                tracing::warn!(next = stage.name(), "shutting down: the cycle stops before this stage");
                report.interrupted = true;
                break;
            }
            take(ledger)?;
            let lease = LeaseRenewal::taken(LEASE, holder.clone(), chrono::Duration::minutes(LEASE_TTL_MINUTES));
            report.add_stage(*stage, run_stage(ledger, services, *stage, Steps::new(stop, Some(lease))).await);
        }
    }
    report.interrupted |= stop.load(std::sync::atomic::Ordering::SeqCst);
    report.duration_ms = started.elapsed().as_millis();
    record_system(ledger, SystemEvent::CycleFinished(report.finished_event(&holder)))?;
    ledger.correlate_with(None);
    crate::lease::release(ledger.store().connection(), LEASE, &holder).map_err(|e| CycleError::Setup(e.to_string()))?;
    tracing::info!(
        duration_ms = report.duration_ms as u64,
        failures = report.failures.len(),
        failed_sources = report.failed_sources.len(),
        "cycle finished"
    );
    Ok(report)
}
