//! Recording what a marketplace API shows of an order, for receive (new orders) and monitor
//! (open orders read again): the adapter translates the answer into a view, the pure intake
//! decision (`events::order::intake`) says what it adds, and the raw answer is kept as a blob.

use crate::transport::xml::Element;
use crate::{rakuten, yahoo};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::{OrderEvent, OrderFailed, OrderState};
use events::{Marketplace, OrderKey};
use projections::ledger::OrderAppend;
use projections::{Ledger, LedgerError};

/// Records what this RMS order adds to the ledger (`first_sight_allowed`: whether an order the
/// ledger does not know yet may be imported by this read).
pub(crate) fn record_rakuten_order(
    ledger: &mut Ledger,
    raw: &serde_json::Value,
    first_sight_allowed: bool,
    stage: &'static str,
) -> Result<Recorded, LedgerError> {
    let number = raw.get("orderNumber").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let Ok(key) = OrderKey::new(Marketplace::Rakuten, &number) else {
        tracing::warn!(order_number = %number, "RMS returned an order number this system cannot use; skipped");
        return Ok(Recorded::default());
    };
    let state = ledger.order_state(&key)?;
    let events = match serde_json::from_value::<rakuten::model::OrderModel>(raw.clone()) {
        Ok(model) => {
            let view = rakuten::mapping::view(&model);
            if state.status.is_none() && (view.closed_before_first_sight || !first_sight_allowed) {
                tracing::info!(order = %key, progress = model.order_progress, "first seen already shipped or cancelled; not imported");
                return Ok(Recorded::default());
            }
            events::order::intake::decide(&state, &view)
        }
        Err(error) if state.status.is_none() => {
            let message = format!("RMSの注文データをこのバージョンでは読めません（{error}）");
            vec![
                rakuten_detected(&number),
                OrderEvent::OrderFailed(OrderFailed {
                    stage: "receive".into(),
                    code: Some("RMS_ORDER".into()),
                    message,
                }),
            ]
        }
        Err(error) => {
            tracing::warn!(order = %key, %error, "unreadable RMS order; keeping what the ledger has");
            return Ok(Recorded::default());
        }
    };
    record_intake(ledger, &key, &state, events, (raw.to_string().as_bytes(), "application/json"), stage)
}

fn rakuten_detected(number: &str) -> OrderEvent {
    OrderEvent::OrderDetected(events::order::OrderDetected {
        marketplace: Marketplace::Rakuten,
        order_number: number.to_owned(),
        via: events::order::DetectionSource::Api,
        reference: Some("getOrder".into()),
    })
}

/// Records what this orderInfo answer adds to the ledger.
pub(crate) fn record_yahoo_order(
    ledger: &mut Ledger,
    info: &Element,
    raw: &str,
    stage: &'static str,
) -> Result<Recorded, LedgerError> {
    let order_id = info.text_at("OrderId").unwrap_or_default().to_owned();
    let Ok(key) = OrderKey::new(Marketplace::Yahoo, &order_id) else {
        tracing::warn!(order_id, "Yahoo returned an order id this system cannot use; skipped");
        return Ok(Recorded::default());
    };
    let state = ledger.order_state(&key)?;
    let decided = events::order::intake::decide(&state, &yahoo::mapping::view(info));
    record_intake(ledger, &key, &state, decided, (raw.as_bytes(), "application/xml"), stage)
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
fn record_intake(
    ledger: &mut Ledger,
    key: &OrderKey,
    state: &OrderState,
    events: Vec<OrderEvent>,
    (raw, content_type): (&[u8], &str),
    stage: &'static str,
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
    match ledger.append_order(key, ExpectedVersion::Exact(state.version), appends, Meta::by(Actor::reactor(stage))) {
        Ok(_) => {
            tracing::info!(order = %key, new = state.status.is_none(), "recorded from the marketplace API");
            Ok(Recorded { appended: true, new: state.status.is_none() })
        }
        Err(LedgerError::Store(events::StoreError::Conflict { .. })) => Ok(Recorded::default()),
        Err(other) => Err(other),
    }
}
