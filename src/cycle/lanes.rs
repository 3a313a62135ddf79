//! A whole cycle as lanes that run at once. Each outside API is its own queue with its own rate,
//! so the stages are grouped by the APIs they wait on and run concurrently, each lane on its
//! own connection to the ledger:
//! - the marketplaces' lane: receive (mail, RMS, Yahoo, customers' mail), then every open order
//!   read again, then notify, again whenever Amazon's lane has brought new tracking numbers;
//! - Amazon's lane: check, ship, cancellations and tracking, again while orders keep arriving
//!   from the marketplaces' lane, so an order read early is shipped while later ones are read.
//!
//! Lanes never share an order's decision: every append names the version it was decided on, and
//! a conflict leaves the order for the lane's next pass (or the next cycle). The stale stage runs
//! once both lanes are done.

use super::{Services, Stage, StageFailure};
use crate::stages::steps::LeaseRenewal;
use crate::stages::{self, StageContext, StageError, StageReport, Steps};
use projections::Ledger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a lane that found nothing to do waits before looking again while the other lane
/// is still producing work for it.
const IDLE_PAUSE: Duration = Duration::from_millis(250);

/// What the lanes did: every stage's report, and the stages that could not run.
#[derive(Default)]
pub struct LanesOutcome {
    pub reports: Vec<StageReport>,
    pub failures: Vec<StageFailure>,
}

impl LanesOutcome {
    fn take(&mut self, stage: Stage, result: Result<Vec<StageReport>, StageError>) -> bool {
        match result {
            Ok(reports) => {
                let progressed = reports.iter().any(|r| r.advanced > 0 || r.needs_operator > 0);
                self.reports.extend(reports);
                progressed
            }
            Err(error) => {
                tracing::error!(stage = stage.name(), %error, "stage failed; the cycle goes on");
                self.failures.push(StageFailure { stage: stage.name(), error: error.to_string() });
                false
            }
        }
    }
}

/// The lease a lane renews as it goes.
pub struct LeaseSpec {
    pub name: &'static str,
    pub holder: String,
    pub ttl: chrono::Duration,
}

impl LeaseSpec {
    fn steps<'a>(&self, stop: &'a AtomicBool) -> Steps<'a> {
        Steps::new(stop, Some(LeaseRenewal::taken(self.name, self.holder.clone(), self.ttl)))
    }
}

/// Where the lanes open their own connections to the ledger.
pub struct LedgerFile {
    pub path: std::path::PathBuf,
    pub clock: std::sync::Arc<dyn events::Clock>,
}

impl LedgerFile {
    pub fn of(ledger: &Ledger) -> Self {
        Self { path: ledger.store().path().into(), clock: ledger.store().clock().clone() }
    }
}

/// A lane's own connection to the ledger, correlated with the cycle.
fn lane_ledger(file: &LedgerFile, cycle: Option<uuid::Uuid>) -> Result<Ledger, StageError> {
    let mut ledger = Ledger::open_with_clock(&file.path, events::store::OpenMode::MustExist, file.clock.clone())?;
    ledger.correlate_with(cycle);
    Ok(ledger)
}

/// Runs receive, check, ship, monitor and notify as two concurrent lanes; stale is left to the
/// caller (it runs once the lanes are done).
pub async fn run(
    main: &LedgerFile,
    services: &Services,
    cycle: Option<uuid::Uuid>,
    lease: &LeaseSpec,
    stop: &AtomicBool,
) -> LanesOutcome {
    let receiving = AtomicBool::new(true);
    let amazon_busy = AtomicBool::new(true);
    let tracking_arrived = AtomicBool::new(false);
    let marketplaces = async {
        let mut outcome = LanesOutcome::default();
        match lane_ledger(main, cycle) {
            Ok(mut ledger) => {
                marketplace_lane(
                    &mut ledger,
                    services,
                    lease,
                    stop,
                    &receiving,
                    &amazon_busy,
                    &tracking_arrived,
                    &mut outcome,
                )
                .await
            }
            Err(error) => outcome.failures.push(StageFailure { stage: "receive", error: error.to_string() }),
        }
        receiving.store(false, Ordering::SeqCst);
        outcome
    };
    let amazon = async {
        let mut outcome = LanesOutcome::default();
        match lane_ledger(main, cycle) {
            Ok(mut ledger) => {
                amazon_lane(&mut ledger, services, lease, stop, &receiving, &tracking_arrived, &mut outcome).await
            }
            Err(error) => outcome.failures.push(StageFailure { stage: "check", error: error.to_string() }),
        }
        amazon_busy.store(false, Ordering::SeqCst);
        outcome
    };
    let (mut first, second) = tokio::join!(marketplaces, amazon);
    first.reports.extend(second.reports);
    first.failures.extend(second.failures);
    first
}

#[allow(clippy::too_many_arguments)]
async fn marketplace_lane(
    ledger: &mut Ledger,
    services: &Services,
    lease: &LeaseSpec,
    stop: &AtomicBool,
    receiving: &AtomicBool,
    amazon_busy: &AtomicBool,
    tracking_arrived: &AtomicBool,
    outcome: &mut LanesOutcome,
) {
    if services.rakuten.is_none() && services.yahoo.is_none() {
        receiving.store(false, Ordering::SeqCst);
        outcome.failures.push(StageFailure { stage: "receive", error: super::CycleError::NoMarketplace.to_string() });
        return;
    }
    let mut ctx = StageContext { ledger, services, steps: lease.steps(stop) };
    let received = stages::receive::run(&mut ctx).await;
    outcome.take(Stage::Receive, received);
    let watched = stages::monitor::run_marketplaces(&mut ctx).await;
    outcome.take(Stage::Monitor, watched);
    receiving.store(false, Ordering::SeqCst);
    // Tracking written back as Amazon's lane brings it in, and once more when that lane is done.
    loop {
        let amazon_done = !amazon_busy.load(Ordering::SeqCst);
        tracking_arrived.store(false, Ordering::SeqCst);
        let notified = stages::notify::run(&mut ctx).await;
        let progressed = outcome.take(Stage::Notify, notified);
        if ctx.steps.stopping() || amazon_done {
            break;
        }
        if !progressed {
            while amazon_busy.load(Ordering::SeqCst) && !tracking_arrived.load(Ordering::SeqCst) {
                tokio::time::sleep(IDLE_PAUSE).await;
            }
        }
    }
}

async fn amazon_lane(
    ledger: &mut Ledger,
    services: &Services,
    lease: &LeaseSpec,
    stop: &AtomicBool,
    receiving: &AtomicBool,
    tracking_arrived: &AtomicBool,
    outcome: &mut LanesOutcome,
) {
    let mut ctx = StageContext { ledger, services, steps: lease.steps(stop) };
    loop {
        // Read before the pass: orders recorded after this point get another pass.
        let still_receiving = receiving.load(Ordering::SeqCst);
        let mut progressed = false;
        let checked = stages::check::run(&mut ctx).await.map(|r| vec![r]);
        progressed |= outcome.take(Stage::Check, checked);
        let shipped = stages::ship::run(&mut ctx).await.map(|r| vec![r]);
        progressed |= outcome.take(Stage::Ship, shipped);
        let monitored = stages::monitor::run_amazon(&mut ctx).await;
        let tracked = monitored.as_ref().is_ok_and(|reports| reports.iter().any(|r| r.advanced > 0));
        progressed |= outcome.take(Stage::Monitor, monitored);
        if tracked {
            tracking_arrived.store(true, Ordering::SeqCst);
        }
        if ctx.steps.stopping() || (!still_receiving && !progressed) {
            break;
        }
        if !progressed {
            tokio::time::sleep(IDLE_PAUSE).await;
        }
    }
}
