//! The stage reactors of a cycle. Each reads like the operating guide: find the orders in
//! status X, decide (a pure function), act through an adapter, record what happened. Every
//! stage is safe to re-run after a crash at any line.

pub mod alerts;
pub mod allotment;
pub mod cancel;
pub mod check;
pub mod mail;
pub mod rakuten;
pub mod ship;
pub mod sources;
pub mod speed;
pub mod tracking;
pub mod yahoo;

use crate::amazon::{AmazonClient, AmazonError};
use crate::sku_master::{NoMapping, SkuMaster};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::{OrderEvent, OrderState, Status};
use events::OrderKey;
use projections::ledger::OrderAppend;
use projections::queries::{self, OrderFilter};
use projections::{Ledger, LedgerError};
use serde::Serialize;

/// What the stages need from the rest of the system.
pub struct StageContext<'a> {
    pub ledger: &'a mut Ledger,
    pub amazon: &'a AmazonClient,
    pub sku_master: &'a mut SkuMaster,
    pub shipping: &'a ShippingSettings,
}

#[derive(Debug, Clone)]
pub struct ShippingSettings {
    /// Amazon mails shipment confirmations here (MCF_NOTIFICATION_EMAIL).
    pub notification_email: Option<String>,
    /// `displayableOrderComment` on the packing slip.
    pub packing_slip_comment: String,
}

impl Default for ShippingSettings {
    fn default() -> Self {
        Self { notification_email: None, packing_slip_comment: "Thank you for your order.".into() }
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
}

impl StageReport {
    fn new(stage: &'static str) -> Self {
        Self { stage, ..Self::default() }
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
}

/// The orders in `status` with their folded state, oldest order first.
fn orders_in(ledger: &Ledger, status: Status) -> Result<Vec<(OrderKey, OrderState)>, LedgerError> {
    let rows =
        queries::list_orders(ledger.store().connection(), &OrderFilter { status: Some(status), ..Default::default() })?;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        let Ok(key) = row.order.parse::<OrderKey>() else { continue };
        let state = ledger.order_state(&key)?;
        if state.status == Some(status) {
            orders.push((key, state));
        }
    }
    orders.sort_by(|(a_key, a), (b_key, b)| {
        let a_time = a.details.as_ref().map(|d| d.ordered_at);
        let b_time = b.details.as_ref().map(|d| d.ordered_at);
        a_time.cmp(&b_time).then_with(|| a_key.cmp(b_key))
    });
    Ok(orders)
}

/// One marketplace's orders in any of `statuses`, with their folded state.
pub(crate) fn marketplace_orders_in(
    ledger: &Ledger,
    marketplace: events::Marketplace,
    statuses: &[Status],
) -> Result<Vec<(OrderKey, OrderState)>, LedgerError> {
    let mut out = Vec::new();
    for status in statuses {
        let filter = OrderFilter { status: Some(*status), marketplace: Some(marketplace), ..Default::default() };
        for row in queries::list_orders(ledger.store().connection(), &filter)? {
            if let Ok(key) = row.order.parse::<OrderKey>() {
                let state = ledger.order_state(&key)?;
                out.push((key, state));
            }
        }
    }
    Ok(out)
}

/// Keys of a marketplace's orders in `statuses` whose projection row passes `keep`, without
/// folding their states: a stage folds one order at a time, so its memory does not grow with
/// the shop (at 100,000 orders, tens of thousands of open states would not fit a small server).
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
    let appends: Vec<OrderAppend> = events.into_iter().map(OrderAppend::from).collect();
    match ledger.append_order(key, ExpectedVersion::Exact(state.version), appends, Meta::by(Actor::reactor(stage))) {
        Ok(_) => Ok(true),
        Err(LedgerError::Store(events::StoreError::Conflict { .. })) => {
            tracing::info!(order = %key, stage, "order changed while deciding; left for the next cycle");
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

/// What recording a marketplace's view of an order did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Recorded {
    /// Something was appended.
    pub appended: bool,
    /// The order was new to the ledger.
    pub new: bool,
}

/// Appends what a marketplace API says of an order: the first API detection is idempotent
/// (mail may race it), the details reference the raw answer, kept as a blob. If the order
/// changed meanwhile, nothing is appended; the next read decides again.
pub(crate) fn record_intake(
    ledger: &mut Ledger,
    key: &OrderKey,
    state: &OrderState,
    events: Vec<OrderEvent>,
    (raw, content_type): (&[u8], &str),
) -> Result<Recorded, LedgerError> {
    if events.is_empty() {
        return Ok(Recorded::default());
    }
    let blob = ledger.store().put_blob(raw, content_type)?;
    let appends: Vec<OrderAppend> = events
        .into_iter()
        .map(|event| match &event {
            OrderEvent::OrderDetected(_) => OrderAppend::idempotent(event, format!("detect:api:{key}")),
            OrderEvent::OrderDetailsRecorded(_) => {
                OrderAppend { event, idempotency_key: None, blob: Some(blob.sha256.clone()) }
            }
            _ => OrderAppend::from(event),
        })
        .collect();
    match ledger.append_order(key, ExpectedVersion::Exact(state.version), appends, Meta::by(Actor::reactor("receive")))
    {
        Ok(_) => {
            tracing::info!(order = %key, new = state.status.is_none(), "recorded from the marketplace API");
            Ok(Recorded { appended: true, new: state.status.is_none() })
        }
        Err(LedgerError::Store(events::StoreError::Conflict { .. })) => Ok(Recorded::default()),
        Err(other) => Err(other),
    }
}

/// A test-only crash point: when `MCF_FAILPOINT` names it, the process aborts right there,
/// as a power cut would (used to prove crash safety between an outside call and its record).
pub fn failpoint(name: &str) {
    if std::env::var("MCF_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
