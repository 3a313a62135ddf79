//! The stage reactors of a cycle, one per step of the operating guide, in its order:
//! [`receive`] (注文受付), [`check`] (在庫確認), [`ship`] (出荷依頼), [`monitor`] (キャンセル監視と
//! 出荷検知), [`notify`] (出荷通知), [`stale`] (滞留警告と管理者への通知). Each reads like the guide:
//! find the orders in status X, decide (a pure function), act through an adapter, record what
//! happened. Every stage is safe to re-run after a crash at any line. Marketplace helpers live
//! beneath the stage that uses them; what two stages share is here ([`intake`], [`sources`]).

pub mod check;
pub(crate) mod intake;
pub mod monitor;
pub mod notify;
pub mod receive;
mod services;
pub mod ship;
pub mod sources;
pub mod stale;
pub mod steps;

pub use services::{Services, ServicesError};

use crate::amazon::AmazonError;
use check::master::NoMapping;
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::{OrderEvent, OrderState, Status};
use events::OrderKey;
use projections::ledger::OrderAppend;
use projections::queries::{self, OrderFilter};
use projections::{Ledger, LedgerError};
use serde::Serialize;
pub use steps::Steps;

/// What a stage works with: the ledger, the process's services, and its steps.
pub struct StageContext<'a> {
    pub ledger: &'a mut Ledger,
    pub services: &'a mut Services,
    /// Where the stage may stop (a graceful shutdown) and renews the cycle lease.
    pub steps: Steps<'a>,
}

#[derive(Debug, Clone)]
pub struct ShippingSettings {
    /// Amazon mails shipment confirmations here (MCF_NOTIFICATION_EMAIL).
    pub notification_email: Option<String>,
    /// `displayableOrderComment` on the packing slip.
    pub packing_slip_comment: String,
    /// What Amazon accepts of an address in Japan, checked before any call.
    pub address_limits: events::order::address::AddressLimits,
}

impl Default for ShippingSettings {
    fn default() -> Self {
        Self {
            notification_email: None,
            packing_slip_comment: "Thank you for your order.".into(),
            address_limits: Default::default(),
        }
    }
}

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
    fn new(stage: &'static str) -> Self {
        Self { stage, ..Self::default() }
    }

    /// `source` could not be read: the cycle says so in its exit code and its record.
    pub fn source_failed(&mut self, source: &str, unread: &sources::Unread) {
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

/// Amazon could not be reached (or refused our credentials) for a call: the cycle says so, and
/// refused credentials are recorded in Amazon's health stream, alerted at once.
pub(crate) fn amazon_unread(
    ledger: &mut Ledger,
    report: &mut StageReport,
    error: &AmazonError,
) -> Result<(), LedgerError> {
    let unread = sources::Unread::of(error);
    report.source_failed(sources::AMAZON_HEALTH_STREAM, &unread);
    if unread.kind == crate::transport::FailureKind::Credentials {
        sources::record_credential_refused(ledger, sources::AMAZON_HEALTH_STREAM, &unread.error)?;
    }
    Ok(())
}

/// Keys of the orders in `status`, oldest order first (orders with no details yet first).
/// Stages fold one order at a time: at 100,000 orders, thousands of open states held at once
/// would not fit a small server.
fn order_keys_in(ledger: &Ledger, status: Status) -> Result<Vec<OrderKey>, LedgerError> {
    let mut keyed: Vec<(Option<chrono::DateTime<chrono::FixedOffset>>, OrderKey)> =
        queries::order_keys_in(ledger.store().connection(), status)?
            .into_iter()
            .filter_map(|(key, ordered_at)| {
                let at = ordered_at.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
                Some((at, key.parse::<OrderKey>().ok()?))
            })
            .collect();
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, key)| key).collect())
}

/// The order folded from its stream, if it is still in `status` (the projection row may lag
/// behind another process's append).
fn state_in(ledger: &Ledger, key: &OrderKey, status: Status) -> Result<Option<OrderState>, LedgerError> {
    let state = ledger.order_state(key)?;
    Ok((state.status == Some(status)).then_some(state))
}

/// Keys of a marketplace's orders in `statuses` whose projection row passes `keep`, without
/// folding their states (see [`order_keys_in`]).
pub(crate) fn marketplace_keys_in(
    ledger: &Ledger,
    marketplace: events::Marketplace,
    statuses: &[Status],
    keep: impl Fn(&queries::OrderRow) -> bool,
) -> Result<Vec<OrderKey>, LedgerError> {
    let mut out = Vec::new();
    for status in statuses {
        let filter = OrderFilter { status: Some(*status), marketplace: Some(marketplace), ..Default::default() };
        for row in queries::list_orders(ledger.store().connection(), &filter)? {
            if keep(&row) {
                out.extend(row.order.parse::<OrderKey>().ok());
            }
        }
    }
    Ok(out)
}

/// Whether the marketplace API has shown this order to the ledger already.
pub(crate) fn known_to_api(
    ledger: &Ledger,
    marketplace: events::Marketplace,
    number: &str,
) -> Result<bool, LedgerError> {
    let Ok(key) = OrderKey::new(marketplace, number) else { return Ok(false) };
    Ok(ledger.order_state(&key)?.detected_via.contains(&events::order::DetectionSource::Api))
}

/// A SHIPPING order's row says its tracking is known and no cancellation waits: worth folding
/// to report the shipment.
pub(crate) fn may_report_shipment(row: &queries::OrderRow) -> bool {
    row.tracking_number.is_some() && !row.cancel_pending
}

/// Appends a stage's decision made on `state`. If the order changed meanwhile (an operator
/// acted), nothing is appended and the order is left for the next cycle: returns false.
fn record(
    ledger: &mut Ledger,
    key: &OrderKey,
    state: &OrderState,
    stage: &'static str,
    events: Vec<OrderEvent>,
) -> Result<bool, LedgerError> {
    record_at(ledger, key, state.version, stage, events)
}

/// [`record`] for a decision made on the order as it stood at `version`.
fn record_at(
    ledger: &mut Ledger,
    key: &OrderKey,
    version: i64,
    stage: &'static str,
    events: Vec<OrderEvent>,
) -> Result<bool, LedgerError> {
    let appends: Vec<OrderAppend> = events.into_iter().map(OrderAppend::from).collect();
    match ledger.append_order(key, ExpectedVersion::Exact(version), appends, Meta::by(Actor::reactor(stage))) {
        Ok(_) => Ok(true),
        Err(LedgerError::Store(events::StoreError::Conflict { .. })) => {
            tracing::info!(order = %key, stage, "order changed while deciding; left for the next cycle");
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

/// Appends what an outside call came to (created, refused, sent, reported). An outcome is an
/// observation, not a decision: it is recorded whatever happened to the order meanwhile (an
/// operator's action between our read and the call), on the order as it stands now, and the
/// state machine still checks it. Another process appending at the same moment is re-read.
pub(crate) fn record_outcome(
    ledger: &mut Ledger,
    key: &OrderKey,
    stage: &'static str,
    events: Vec<OrderEvent>,
) -> Result<(), LedgerError> {
    const TRIES: usize = 5;
    for _ in 1..TRIES {
        let appends: Vec<OrderAppend> = events.iter().cloned().map(OrderAppend::from).collect();
        match ledger.append_order(key, ExpectedVersion::Any, appends, Meta::by(Actor::reactor(stage))) {
            Err(LedgerError::Store(events::StoreError::Conflict { .. })) => {
                tracing::info!(order = %key, stage, "another process appended meanwhile; recording the outcome again");
            }
            other => return other.map(|_| ()),
        }
    }
    let appends: Vec<OrderAppend> = events.into_iter().map(OrderAppend::from).collect();
    ledger.append_order(key, ExpectedVersion::Any, appends, Meta::by(Actor::reactor(stage))).map(|_| ())
}

/// A test-only crash point: when `MCF_FAILPOINT` names it, the process aborts right there,
/// as a power cut would (used to prove crash safety between an outside call and its record).
pub fn failpoint(name: &str) {
    if std::env::var("MCF_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
