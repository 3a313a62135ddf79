//! The Yahoo parts of the cycle.
//! - receive: poll orderList by publication time (orders appear after the buyer's 10-minute
//!   cancel window) over [cursor - overlap, now], read each with orderInfo, record what is new;
//!   the cursor advances only after the whole window was recorded.
//! - watch (monitor): re-read every open Yahoo order (verification, holds, OrderStatus 4).
//! - notify: orderShipStatusChange (ShipStatus 3, carrier, invoice number, ship date), then
//!   OrderStatus 5; repeating both after a crash is harmless.

use super::sources::{record_poll_outcome, record_source, source_state, PollSettings, Unread, Window};
use super::{record, record_intake, Recorded, StageError, StageReport, Steps};
use crate::transport::xml::Element;
use crate::yahoo::mapping::{self, ship_company_code, validate_invoice, ShipmentView};
use crate::yahoo::{YahooClient, YahooError};
use events::order::{
    OrderEvent, OrderFailed, OutsideWrite, Status, Tracking, WriteDone, WriteFailed, WriteIntended, WriteState,
};
use events::source::{SignatureRejected, SourceEvent};
use events::{Marketplace, OrderKey};
use projections::queries::{self, OrderFilter};
use projections::{Ledger, LedgerError};
use std::collections::HashMap;

pub const POLL_STREAM: &str = "poll-yahoo";

pub async fn receive(
    ledger: &mut Ledger,
    client: &YahooClient,
    settings: &PollSettings,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("receive:yahoo");
    let source = source_state(ledger, POLL_STREAM)?;
    let now = ledger.store().now();
    let (start, end) = source.next_window(now, settings.overlap, settings.initial_lookback);
    let outcome = match poll_window(ledger, client, (start, end), steps, &mut report).await? {
        Window::Whole { seen, new } => Ok((seen, new)),
        Window::Failed(unread) => {
            report.source_failed(POLL_STREAM, &unread);
            Err(unread)
        }
        // Stopped between two orders: the window is not whole, so the cursor stays.
        Window::Interrupted => return Ok(report),
    };
    let succeeded = record_poll_outcome(ledger, POLL_STREAM, settings, &source, (start, end), outcome)?;
    check_signature(ledger, client)?;
    if !succeeded {
        report.deferred += 1;
    }
    Ok(report)
}

/// Lists the window and reads each order with orderInfo, recording it before the next.
async fn poll_window(
    ledger: &mut Ledger,
    client: &YahooClient,
    (start, end): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    steps: &mut Steps<'_>,
    report: &mut StageReport,
) -> Result<Window, StageError> {
    let listed = match client.order_list(start, end).await {
        Ok(listed) => listed,
        Err(error) => return Ok(Window::Failed(Unread::of(&error))),
    };
    let mut new = 0;
    for order in &listed {
        if !steps.proceed(ledger, report)? {
            return Ok(Window::Interrupted);
        }
        report.examined += 1;
        // Known from the API already: the watch re-reads it while it is open. The overlap of
        // windows would otherwise read every recent order again at one call a second.
        if super::known_to_api(ledger, Marketplace::Yahoo, &order.order_id)? {
            continue;
        }
        let (info, raw) = match client.order_info(&order.order_id).await {
            Ok(read) => read,
            Err(error) => return Ok(Window::Failed(Unread::of(&error))),
        };
        // A ledger failure fails the stage; the cursor stays, the window is read again.
        if record_order(ledger, &info, &raw)?.new {
            new += 1;
            report.advanced += 1;
        }
    }
    Ok(Window::Whole { seen: listed.len() as u32, new })
}

fn record_order(ledger: &mut Ledger, info: &Element, raw: &str) -> Result<Recorded, LedgerError> {
    let order_id = info.text_at("OrderId").unwrap_or_default().to_owned();
    let Ok(key) = OrderKey::new(Marketplace::Yahoo, &order_id) else {
        tracing::warn!(order_id, "Yahoo returned an order id this system cannot use; skipped");
        return Ok(Recorded::default());
    };
    let state = ledger.order_state(&key)?;
    let decided = events::order::intake::decide(&state, &mapping::view(info));
    record_intake(ledger, &key, &state, decided, (raw.as_bytes(), "application/xml"))
}

/// Reads one order from Yahoo and records it (mail saw it first). An order Yahoo does not
/// know stays as the mail left it: visible, never verified.
pub async fn fetch_order(ledger: &mut Ledger, client: &YahooClient, order_id: &str) -> Result<bool, StageError> {
    match client.order_info(order_id).await {
        Ok((info, raw)) => Ok(record_order(ledger, &info, &raw)?.appended),
        Err(error) => {
            tracing::warn!(order_id, %error, "cannot read the mail-detected Yahoo order; the poll will find it");
            Ok(false)
        }
    }
}

/// A signature Yahoo did not accept is an alert (once a day per status): the order APIs stop
/// 12 hours after consent without it.
fn check_signature(ledger: &mut Ledger, client: &YahooClient) -> Result<(), LedgerError> {
    let Some(status) = client.authorize_status().filter(|s| s != "authorized") else { return Ok(()) };
    tracing::error!(status, "Yahoo did not accept the public-key signature");
    let today = ledger.store().now().with_timezone(&events::clock::jst()).date_naive();
    let event = SourceEvent::SignatureRejected(SignatureRejected { status: status.clone() });
    record_source(ledger, POLL_STREAM, event, Some(format!("yahoo-signature:{status}:{today}")))
}

/// Re-reads the open Yahoo orders that may have changed: one orderList over their order times
/// shows every one's OrderStatus, and orderInfo (one call a second) reads only those not yet
/// verified, held, no longer 処理中 (2), or missing from the list. An unchanged order costs
/// nothing, so a shop with hundreds of open orders is watched in a few calls.
pub async fn watch(
    ledger: &mut Ledger,
    client: &YahooClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("watch:yahoo");
    let filter =
        |status| OrderFilter { status: Some(status), marketplace: Some(Marketplace::Yahoo), ..Default::default() };
    let mut open = Vec::new();
    for status in Status::OPEN {
        open.extend(queries::list_orders(ledger.store().connection(), &filter(status)).map_err(LedgerError::from)?);
    }
    if open.is_empty() {
        return Ok(report);
    }
    let now = ledger.store().now();
    let oldest = open
        .iter()
        .filter_map(|row| row.ordered_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
        .map(|t| t.with_timezone(&chrono::Utc))
        .min()
        .unwrap_or(now);
    let listed: HashMap<String, String> =
        match client.orders_placed_between(oldest - chrono::Duration::minutes(1), now).await {
            Ok(listed) => listed.into_iter().map(|o| (o.order_id, o.order_status)).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot list the open Yahoo orders; next cycle");
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += open.len();
                return Ok(report);
            }
        };
    let keys: Vec<OrderKey> = open.into_iter().filter_map(|row| row.order.parse().ok()).collect();
    for key in keys {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        report.examined += 1;
        let state = ledger.order_state(&key)?;
        let unchanged = listed.get(&key.order_number).is_some_and(|status| status == "2")
            && state.status != Some(Status::Received)
            && state.hold.is_none();
        if unchanged {
            continue;
        }
        match client.order_info(&key.order_number).await {
            Ok((info, raw)) => {
                if record_order(ledger, &info, &raw)?.appended {
                    report.advanced += 1;
                }
            }
            Err(error) => {
                tracing::warn!(order = %key, %error, "cannot re-read the Yahoo order; next cycle");
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}

/// Writes tracking back to Yahoo (ShipStatus 3), then completes the order (OrderStatus 5).
/// Each is an outside write: intended, then done or refused; a write whose answer was lost is
/// resolved by reading the order back before anything is sent again, and a completion is
/// tried again every cycle until Yahoo shows 5.
pub async fn notify(
    ledger: &mut Ledger,
    client: &YahooClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("notify:yahoo");
    // An order written to in this pass waits for the next cycle before it is tried again.
    let mut written = std::collections::HashSet::new();
    for key in super::marketplace_keys_in(ledger, Marketplace::Yahoo, &[Status::Shipping], super::may_report_shipment)?
    {
        if !steps.proceed(ledger, &mut report)? {
            return Ok(report);
        }
        let state = ledger.order_state(&key)?;
        if state.tracking.is_none() || state.shipment_reported || state.cancel_requested.is_some() {
            continue;
        }
        report.examined += 1;
        if report_shipment(ledger, client, &key, &state, &mut report).await? {
            complete(ledger, client, &key, &mut report).await?;
        }
        written.insert(key);
    }
    // Completions still open: answers lost, or Yahoo failed them (od91001).
    for order in queries::orders_with_open_write(ledger.store().connection(), OutsideWrite::YahooCompletion)
        .map_err(LedgerError::from)?
    {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        let Ok(key) = order.parse::<OrderKey>() else { continue };
        if key.marketplace == Marketplace::Yahoo && !written.contains(&key) {
            report.examined += 1;
            complete(ledger, client, &key, &mut report).await?;
        }
    }
    Ok(report)
}

/// ShipStatus 3 with carrier, invoice number and date; true when the order is now SHIPPED.
async fn report_shipment(
    ledger: &mut Ledger,
    client: &YahooClient,
    key: &OrderKey,
    state: &events::order::OrderState,
    report: &mut StageReport,
) -> Result<bool, StageError> {
    let Some(tracking) = state.tracking.clone() else { return Ok(false) };
    let company = ship_company_code(&tracking.carrier);
    if let Err(problem) = validate_invoice(company, &tracking.tracking_number) {
        let failed = OrderFailed {
            stage: "notify".into(),
            code: Some("INVOICE".into()),
            message: format!("{problem}: register it in Store Creator by hand"),
        };
        if record(ledger, key, state, "notify", vec![OrderEvent::OrderFailed(failed)])? {
            report.needs_operator += 1;
        }
        return Ok(false);
    }
    let reported = Tracking { carrier: format!("{} ({company})", tracking.carrier), ..tracking.clone() };
    let shipped = |note: &str| {
        vec![
            OrderEvent::WriteDone(WriteDone { write: OutsideWrite::YahooShipStatus, note: note.to_owned() }),
            OrderEvent::ShipmentReported(reported.clone()),
        ]
    };
    if state.write(OutsideWrite::YahooShipStatus) == Some(&WriteState::Intended) {
        // The last attempt's answer was lost: Yahoo says whether it took effect.
        match client.order_info(&key.order_number).await {
            Ok((info, _)) if ShipmentView::of(&info).shipped_with(&tracking.tracking_number) => {
                tracing::info!(order = %key, "Yahoo already shows the shipment: recorded as reported");
                super::record_outcome(ledger, key, "notify", shipped("Yahoo showed it after a lost answer"))?;
                report.advanced += 1;
                return Ok(true);
            }
            Ok(_) => {}
            Err(error) => {
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += 1;
                return Ok(false);
            }
        }
    }
    let intent = OrderEvent::WriteIntended(WriteIntended { write: OutsideWrite::YahooShipStatus });
    if state.write(OutsideWrite::YahooShipStatus) != Some(&WriteState::Intended)
        && !record(ledger, key, state, "notify", vec![intent])?
    {
        report.deferred += 1;
        return Ok(false);
    }
    let shipped_at = tracking.shipped_at.unwrap_or_else(|| ledger.store().now());
    let ship_date = shipped_at.with_timezone(&events::clock::jst()).format("%Y%m%d").to_string();
    match client.ship_status_change(&key.order_number, company, &tracking.tracking_number, &ship_date).await {
        Ok(()) => {
            tracing::info!(order = %key, company, "tracking registered at Yahoo");
            super::record_outcome(ledger, key, "notify", shipped("orderShipStatusChange"))?;
            report.advanced += 1;
            Ok(true)
        }
        Err(YahooError::Api { code, message, .. }) => {
            tracing::warn!(order = %key, code, message, "Yahoo refused the ship status");
            let events = vec![
                OrderEvent::WriteFailed(WriteFailed {
                    write: OutsideWrite::YahooShipStatus,
                    code: Some(code.clone()),
                    message: message.clone(),
                }),
                OrderEvent::OrderFailed(OrderFailed { stage: "notify".into(), code: Some(code), message }),
            ];
            super::record_outcome(ledger, key, "notify", events)?;
            report.needs_operator += 1;
            Ok(false)
        }
        Err(error) => {
            tracing::warn!(order = %key, %error, "ship status not confirmed; Yahoo is read back next cycle");
            report.source_failed(POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
            Ok(false)
        }
    }
}

/// OrderStatus 5 (完了) for a shipped order, until Yahoo shows it: the completion is intended,
/// then done or refused; an unknown outcome is read back first.
async fn complete(
    ledger: &mut Ledger,
    client: &YahooClient,
    key: &OrderKey,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let state = ledger.order_state(key)?;
    let write = OutsideWrite::YahooCompletion;
    match state.write(write) {
        Some(WriteState::Done) | Some(WriteState::Failed(_)) => return Ok(()),
        Some(WriteState::Intended) => match client.order_info(&key.order_number).await {
            Ok((info, _)) if ShipmentView::of(&info).completed() => {
                let done = WriteDone { write, note: "Yahoo showed OrderStatus 5 after a lost answer".into() };
                super::record_outcome(ledger, key, "notify", vec![OrderEvent::WriteDone(done)])?;
                report.advanced += 1;
                return Ok(());
            }
            Ok(_) => {}
            Err(error) => {
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += 1;
                return Ok(());
            }
        },
        None => {
            let intent = OrderEvent::WriteIntended(WriteIntended { write });
            if !record(ledger, key, &state, "notify", vec![intent])? {
                report.deferred += 1;
                return Ok(());
            }
        }
    }
    let outcome = match client.complete_order(&key.order_number).await {
        Ok(()) => {
            tracing::info!(order = %key, "completed at Yahoo (OrderStatus 5)");
            OrderEvent::WriteDone(WriteDone { write, note: "orderStatusChange".into() })
        }
        Err(YahooError::Api { code, message, .. }) => {
            tracing::warn!(order = %key, code, message, "Yahoo refused the completion; the operator decides");
            report.needs_operator += 1;
            OrderEvent::WriteFailed(WriteFailed { write, code: Some(code), message })
        }
        Err(error) => {
            tracing::warn!(order = %key, %error, "completion not confirmed; Yahoo is read back and asked again next cycle");
            report.source_failed(POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
            return Ok(());
        }
    };
    super::record_outcome(ledger, key, "notify", vec![outcome])?;
    Ok(())
}
