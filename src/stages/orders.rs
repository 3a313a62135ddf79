//! What every stage does with the ledger: find the orders in a status (one at a time, oldest
//! first), record a decision against the version it was made on, record an outside call's
//! outcome whatever happened meanwhile, and say when Amazon could not be read.

use crate::amazon::AmazonError;
use crate::stages::report::StageReport;
use crate::stages::sources::{record_credential_refused, Unread, AMAZON_HEALTH_STREAM};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::{OrderEvent, OrderState, Status};
use events::OrderKey;
use projections::ledger::OrderAppend;
use projections::queries::{self, OrderFilter};
use projections::{Ledger, LedgerError};

/// Amazon could not be reached (or refused our credentials) for a call: the cycle says so, and
/// refused credentials are recorded in Amazon's health stream, alerted at once.
pub(crate) fn amazon_unread(
    ledger: &mut Ledger,
    report: &mut StageReport,
    error: &AmazonError,
) -> Result<(), LedgerError> {
    let unread = Unread::of(error);
    report.source_failed(AMAZON_HEALTH_STREAM, &unread);
    if unread.kind == crate::transport::FailureKind::Credentials {
        record_credential_refused(ledger, AMAZON_HEALTH_STREAM, &unread.error)?;
    }
    Ok(())
}

/// Keys of the orders in `status`, oldest order first (orders with no details yet first).
/// Stages fold one order at a time: at 100,000 orders, thousands of open states held at once
/// would not fit a small server.
pub(crate) fn order_keys_in(ledger: &Ledger, status: Status) -> Result<Vec<OrderKey>, LedgerError> {
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
pub(crate) fn state_in(ledger: &Ledger, key: &OrderKey, status: Status) -> Result<Option<OrderState>, LedgerError> {
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

/// Whether the order still waits for its tracking to reach the marketplace: SHIPPING, tracking
/// known, not yet reported, no cancellation pending.
pub(crate) fn awaits_shipment_report(state: &OrderState) -> bool {
    state.status == Some(Status::Shipping)
        && state.tracking.is_some()
        && !state.shipment_reported
        && state.cancel_requested.is_none()
}

/// A SHIPPING order's row says its tracking is known and no cancellation waits: worth folding
/// to report the shipment.
pub(crate) fn may_report_shipment(row: &queries::OrderRow) -> bool {
    row.tracking_number.is_some() && !row.cancel_pending
}

/// Appends a stage's decision made on `state`. If the order changed meanwhile (an operator
/// acted), nothing is appended and the order is left for the next cycle: returns false.
pub(crate) fn record(
    ledger: &mut Ledger,
    key: &OrderKey,
    state: &OrderState,
    stage: &'static str,
    events: Vec<OrderEvent>,
) -> Result<bool, LedgerError> {
    record_at(ledger, key, state.version, stage, events)
}

/// [`record`] for a decision made on the order as it stood at `version`.
pub(crate) fn record_at(
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
