//! A whole cycle as lanes that run at once. Each outside API is its own queue with its own rate,
//! so the stages are grouped by the APIs they wait on and run concurrently, each lane on its
//! own connection to the ledger:
//! - the shop's mailbox first, then one lane per marketplace (RMS, Yahoo) side by side: its new
//!   orders, its open orders read again, then notify, again whenever Amazon's lane has brought
//!   new tracking numbers; the customers' mail right after each receive;
//! - Amazon's two lanes: check and ship, again while orders keep arriving from the
//!   marketplaces' lanes, so an order read early is shipped while later ones are read; and
//!   beside it cancellations and tracking, so tracking is written back while other orders are
//!   still being created.
//!
//! Lanes never share an order's decision: every append names the version it was decided on, and
//! a conflict leaves the order for the lane's next pass (or the next cycle). The stale stage runs
//! once every lane is done.

use super::{Services, Stage, StageFailure};
use crate::stages::steps::LeaseRenewal;
use crate::stages::{self, StageContext, StageError, StageReport, Steps};
use events::Marketplace;
use projections::Ledger;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How long a lane that found nothing to do waits before looking again while the other lane
/// is still producing work for it.
const IDLE_PAUSE: Duration = Duration::from_millis(250);

/// What the lanes did: every stage's report, and the stages that could not run.
#[derive(Default)]
pub struct LanesOutcome {
    pub reports: Vec<StageReport>,
    pub failures: Vec<StageFailure>,
    /// A stage of this lane failed: the lane does not try it again in this cycle.
    failed: bool,
}

impl LanesOutcome {
    /// One report per stage, however many passes a lane made.
    fn take_reports(&mut self, reports: Vec<StageReport>) {
        for report in reports {
            match self.reports.iter_mut().find(|known| known.stage == report.stage) {
                Some(known) => known.merge(report),
                None => self.reports.push(report),
            }
        }
    }

    fn absorb(&mut self, other: LanesOutcome) {
        self.take_reports(other.reports);
        self.failures.extend(other.failures);
    }

    fn take(&mut self, stage: Stage, result: Result<Vec<StageReport>, StageError>) -> bool {
        match result {
            Ok(reports) => {
                let progressed = reports.iter().any(|r| r.advanced > 0 || r.needs_operator > 0);
                self.take_reports(reports);
                progressed
            }
            Err(error) if error.interrupted() => {
                tracing::warn!(stage = stage.name(), %error, "the shutdown stopped the stage");
                let mut interrupted = StageReport::new(stage.name());
                interrupted.interrupted = true;
                self.take_reports(vec![interrupted]);
                self.failed = true;
                false
            }
            Err(error) => {
                tracing::error!(stage = stage.name(), %error, "stage failed; the cycle goes on");
                self.failures.push(StageFailure { stage: stage.name(), error: error.to_string() });
                self.failed = true;
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

/// What the lanes tell each other.
struct Signals {
    /// Marketplace lanes still receiving: while any is, Amazon's lane keeps looking for work.
    receiving: AtomicUsize,
    amazon_busy: AtomicBool,
    /// Bumped whenever Amazon's lane has brought tracking numbers in.
    tracking_passes: AtomicU64,
}

/// Runs receive, check, ship, monitor and notify as concurrent lanes (the mailbox first, then
/// one lane per marketplace, and Amazon's lane throughout); stale is left to the caller (it runs
/// once the lanes are done).
pub async fn run(
    main: &LedgerFile,
    services: &Services,
    cycle: Option<uuid::Uuid>,
    lease: &LeaseSpec,
    stop: &AtomicBool,
) -> LanesOutcome {
    let signals = Signals {
        receiving: AtomicUsize::new(Marketplace::ALL.len()),
        amazon_busy: AtomicBool::new(true),
        tracking_passes: AtomicU64::new(0),
    };
    let lane = Lane { main, services, cycle, lease, stop, signals: &signals };
    let marketplaces = async {
        let mut outcome = LanesOutcome::default();
        if services.rakuten.is_none() && services.yahoo.is_none() {
            signals.receiving.store(0, Ordering::SeqCst);
            outcome
                .failures
                .push(StageFailure { stage: "receive", error: super::CycleError::NoMarketplace.to_string() });
            return outcome;
        }
        let mut mail_ledger = lane.ledger(&mut outcome, Stage::Receive);
        if let Some(ledger) = mail_ledger.as_mut() {
            // Orders seen by mail first: they wake their marketplace's poll in this cycle.
            let mut ctx = lane.context(ledger);
            outcome.take(Stage::Receive, stages::receive::mailbox(&mut ctx).await.map(Vec::from_iter));
        }
        let (rakuten, yahoo) =
            tokio::join!(lane.marketplace(Marketplace::Rakuten), lane.marketplace(Marketplace::Yahoo));
        outcome.absorb(rakuten);
        outcome.absorb(yahoo);
        outcome
    };
    // Amazon's side is two lanes: creating MCF orders, and reading what Amazon did with them
    // (cancellations, tracking). They wait on different SP-API operations, each its own bucket.
    let shipping_done = AtomicBool::new(false);
    let shipping = async {
        let mut outcome = LanesOutcome::default();
        if let Some(mut ledger) = lane.ledger(&mut outcome, Stage::Ship) {
            ship_lane(&mut lane.context(&mut ledger), &signals, &mut outcome).await;
        }
        shipping_done.store(true, Ordering::SeqCst);
        outcome
    };
    let tracking = async {
        let mut outcome = LanesOutcome::default();
        if let Some(mut ledger) = lane.ledger(&mut outcome, Stage::Monitor) {
            tracking_lane(&mut lane.context(&mut ledger), &signals, &shipping_done, &mut outcome).await;
        }
        outcome
    };
    let amazon = async {
        let (mut shipped, tracked) = tokio::join!(shipping, tracking);
        signals.amazon_busy.store(false, Ordering::SeqCst);
        shipped.absorb(tracked);
        shipped
    };
    let (mut first, second) = tokio::join!(marketplaces, amazon);
    first.absorb(second);
    first
}

/// What every lane shares.
struct Lane<'a> {
    main: &'a LedgerFile,
    services: &'a Services,
    cycle: Option<uuid::Uuid>,
    lease: &'a LeaseSpec,
    stop: &'a AtomicBool,
    signals: &'a Signals,
}

impl Lane<'_> {
    /// A lane's own connection to the ledger, correlated with the cycle.
    fn ledger(&self, outcome: &mut LanesOutcome, stage: Stage) -> Option<Ledger> {
        let opened =
            Ledger::open_with_clock(&self.main.path, events::store::OpenMode::MustExist, self.main.clock.clone());
        match opened {
            Ok(mut ledger) => {
                ledger.correlate_with(self.cycle);
                Some(ledger)
            }
            Err(error) => {
                outcome.failures.push(StageFailure { stage: stage.name(), error: error.to_string() });
                None
            }
        }
    }

    fn context<'l>(&'l self, ledger: &'l mut Ledger) -> StageContext<'l> {
        StageContext { ledger, services: self.services, steps: self.lease.steps(self.stop) }
    }

    /// One marketplace: its new orders, its open orders read again, then its shipped orders
    /// reported as Amazon's lane brings tracking in, and once more when that lane is done.
    async fn marketplace(&self, marketplace: Marketplace) -> LanesOutcome {
        let mut outcome = LanesOutcome::default();
        let signals = self.signals;
        let Some(mut ledger) = self.ledger(&mut outcome, Stage::Receive) else {
            signals.receiving.fetch_sub(1, Ordering::SeqCst);
            return outcome;
        };
        let mut ctx = self.context(&mut ledger);
        let received = stages::receive::marketplace_orders(&mut ctx, marketplace).await;
        outcome.take(Stage::Receive, received.map(Vec::from_iter));
        // Customers' mail decided at receive (payment guidance) goes out now, not after the lanes.
        outcome.take(Stage::Receive, stages::receive::customer_mails(&mut ctx).await.map(|r| vec![r]));
        let watched = stages::monitor::marketplace_orders(&mut ctx, marketplace).await;
        outcome.take(Stage::Monitor, watched.map(Vec::from_iter));
        signals.receiving.fetch_sub(1, Ordering::SeqCst);
        loop {
            let amazon_done = !signals.amazon_busy.load(Ordering::SeqCst);
            let seen = signals.tracking_passes.load(Ordering::SeqCst);
            let notified = stages::notify::marketplace_orders(&mut ctx, marketplace).await;
            let progressed = outcome.take(Stage::Notify, notified.map(Vec::from_iter));
            if ctx.steps.stopping() || outcome.failed || amazon_done {
                break;
            }
            if !progressed {
                while signals.amazon_busy.load(Ordering::SeqCst)
                    && signals.tracking_passes.load(Ordering::SeqCst) == seen
                {
                    tokio::time::sleep(IDLE_PAUSE).await;
                }
            }
        }
        outcome
    }
}

/// Check and ship, again while orders keep arriving from the marketplaces' lanes.
async fn ship_lane(ctx: &mut StageContext<'_>, signals: &Signals, outcome: &mut LanesOutcome) {
    loop {
        // Read before the pass: orders recorded after this point get another pass.
        let still_receiving = signals.receiving.load(Ordering::SeqCst) > 0;
        let checked = stages::check::run(ctx).await.map(|r| vec![r]);
        let mut progressed = outcome.take(Stage::Check, checked);
        let shipped = stages::ship::run(ctx).await.map(|r| vec![r]);
        progressed |= outcome.take(Stage::Ship, shipped);
        if ctx.steps.stopping() || outcome.failed || (!still_receiving && !progressed) {
            break;
        }
        if !progressed {
            tokio::time::sleep(IDLE_PAUSE).await;
        }
    }
}

/// How long the tracking lane waits after a pass that found nothing new, while orders are
/// still being shipped: Amazon takes a while to ship, and each pass costs calls.
const TRACKING_PAUSE: Duration = Duration::from_secs(2);

/// Cancellations sent and tracking read, while the ship lane creates MCF orders, and once more
/// after it is done; each pass that brought tracking wakes the marketplaces' notify.
async fn tracking_lane(
    ctx: &mut StageContext<'_>,
    signals: &Signals,
    shipping_done: &AtomicBool,
    outcome: &mut LanesOutcome,
) {
    loop {
        let ship_lane_done = shipping_done.load(Ordering::SeqCst);
        let monitored = stages::monitor::run_amazon(ctx).await;
        let tracked = monitored.as_ref().is_ok_and(|reports| reports.iter().any(|r| r.advanced > 0));
        let progressed = outcome.take(Stage::Monitor, monitored);
        if tracked {
            signals.tracking_passes.fetch_add(1, Ordering::SeqCst);
        }
        if ctx.steps.stopping() || outcome.failed || (ship_lane_done && !progressed) {
            break;
        }
        if !progressed {
            let until = tokio::time::Instant::now() + TRACKING_PAUSE;
            while tokio::time::Instant::now() < until && !shipping_done.load(Ordering::SeqCst) {
                tokio::time::sleep(IDLE_PAUSE).await;
            }
        }
    }
}
