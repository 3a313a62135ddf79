//! The Rakuten parts of the cycle.
//! - receive: poll searchOrder over [cursor - overlap, now] by order datetime, read every order
//!   (getOrder, 100 at a time), record what is new; the cursor advances only after the whole
//!   window was recorded. Then confirmOrder the orders awaiting the two-step confirmation.
//! - watch (monitor): re-read every open Rakuten order: 300 verifies, 800/900 cancels, flags hold.
//! - notify: register carrier and tracking number with updateOrderShipping, updating an existing
//!   record rather than adding a second one (a retry after a crash finds its own record).

pub use super::sources::PollSettings;
use super::sources::{record_credential_expiry, record_poll_outcome, source_state, Unread, Window};
use super::{record, record_intake, Recorded, StageError, StageReport, Steps};
use crate::rakuten::mapping;
use crate::rakuten::model::{BasketShipping, MessageModel, OrderModel, ShippingModel, UpdateOrderShippingRequest};
use crate::rakuten::{RakutenClient, RakutenError, GET_ORDER_LIMIT};
use chrono::{DateTime, Utc};
use events::order::{
    OrderEvent, OrderFailed, OrderState, OutsideWrite, Status, Tracking, WriteDone, WriteFailed, WriteIntended,
    WriteState,
};
use events::{Marketplace, OrderKey};
use projections::{Ledger, LedgerError};

pub const POLL_STREAM: &str = "poll-rakuten";

pub async fn receive(
    ledger: &mut Ledger,
    client: &RakutenClient,
    settings: &PollSettings,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("receive:rakuten");
    let source = source_state(ledger, POLL_STREAM)?;
    let now = ledger.store().now();
    let (start, end) = source.next_window(now, settings.overlap, settings.initial_lookback);
    let outcome = match poll_window(ledger, client, (start, end), steps, &mut report).await? {
        Window::Whole { seen, new } => Ok((seen, new)),
        Window::Failed(unread) => {
            report.source_failed(POLL_STREAM, &unread);
            Err(unread)
        }
        // Stopped between two pages: the window is not whole, so the cursor stays.
        Window::Interrupted => return Ok(report),
    };
    if !record_poll_outcome(ledger, POLL_STREAM, settings, &source, (start, end), outcome)? {
        report.deferred += 1;
        return Ok(report);
    }
    confirm_awaiting(ledger, client, steps, &mut report).await?;
    check_license(ledger, client, settings).await?;
    Ok(report)
}

/// Fetches and records the whole window, a getOrder page at a time; any failure leaves the
/// cursor where it was.
async fn poll_window(
    ledger: &mut Ledger,
    client: &RakutenClient,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    steps: &mut Steps<'_>,
    report: &mut StageReport,
) -> Result<Window, StageError> {
    let numbers = match client.search_orders(start, end).await {
        Ok(numbers) => numbers,
        Err(error) => return Ok(Window::Failed(Unread::of(&error))),
    };
    // Orders seen before are read again too (100 to a call): a card order RMS has just moved
    // to 300 is verified here, in time for this cycle's check and ship.
    let mut new = 0;
    for page in numbers.chunks(GET_ORDER_LIMIT) {
        if !steps.proceed(ledger, report)? {
            return Ok(Window::Interrupted);
        }
        let orders = match client.get_orders(page).await {
            Ok(orders) => orders,
            Err(error) => return Ok(Window::Failed(Unread::of(&error))),
        };
        for raw in &orders {
            report.examined += 1;
            // A ledger failure fails the stage; the cursor stays, the window is read again.
            if let Recorded { new: true, .. } = record_order(ledger, raw, true)? {
                new += 1;
                report.advanced += 1;
            }
        }
    }
    Ok(Window::Whole { seen: numbers.len() as u32, new })
}

/// Records what this RMS order adds to the ledger.
fn record_order(
    ledger: &mut Ledger,
    raw: &serde_json::Value,
    first_sight_allowed: bool,
) -> Result<Recorded, LedgerError> {
    let number = raw.get("orderNumber").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let Ok(key) = OrderKey::new(Marketplace::Rakuten, &number) else {
        tracing::warn!(order_number = %number, "RMS returned an order number this system cannot use; skipped");
        return Ok(Recorded::default());
    };
    let state = ledger.order_state(&key)?;
    let events = match serde_json::from_value::<OrderModel>(raw.clone()) {
        Ok(model) => {
            let view = mapping::view(&model);
            if state.status.is_none() && (view.closed_before_first_sight || !first_sight_allowed) {
                tracing::info!(order = %key, progress = model.order_progress, "first seen already shipped or cancelled; not imported");
                return Ok(Recorded::default());
            }
            events::order::intake::decide(&state, &view)
        }
        Err(error) if state.status.is_none() => {
            let message = format!("RMS returned an order this build cannot read: {error}");
            vec![
                mapping_detected(&number),
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
    record_intake(ledger, &key, &state, events, (raw.to_string().as_bytes(), "application/json"))
}

fn mapping_detected(number: &str) -> OrderEvent {
    OrderEvent::OrderDetected(events::order::OrderDetected {
        marketplace: Marketplace::Rakuten,
        order_number: number.to_owned(),
        via: events::order::DetectionSource::Api,
        reference: Some("getOrder".into()),
    })
}

/// Reads the named orders from RMS and records them (mail saw them first). An order RMS does
/// not know stays as the mail left it: visible, never verified.
pub async fn fetch_orders(
    ledger: &mut Ledger,
    client: &RakutenClient,
    numbers: &[String],
) -> Result<usize, StageError> {
    let orders = match client.get_orders(numbers).await {
        Ok(orders) => orders,
        Err(error) => {
            tracing::warn!(%error, "cannot read mail-detected Rakuten orders; the poll will find them");
            return Ok(0);
        }
    };
    let mut recorded = 0;
    for raw in &orders {
        if record_order(ledger, raw, true)?.appended {
            recorded += 1;
        }
    }
    Ok(recorded)
}

/// The first step of the two-step confirmation: confirmOrder (RMS moves it 100 -> 200), a
/// page of orders per call. Each confirmation is an outside write: intended before the call,
/// done or refused after it; an order whose last confirmation lost its answer is read from RMS
/// first (its orderProgress says whether it took effect) and confirmed again only if not.
async fn confirm_awaiting(
    ledger: &mut Ledger,
    client: &RakutenClient,
    steps: &mut Steps<'_>,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let waiting = waiting_for_confirmation(ledger)?;
    let unsure: Vec<String> = waiting
        .iter()
        .filter(|(_, state)| state.write(OutsideWrite::RakutenConfirm) == Some(&WriteState::Intended))
        .map(|(key, _)| key.order_number.clone())
        .collect();
    for page in unsure.chunks(GET_ORDER_LIMIT) {
        match client.get_orders(page).await {
            Ok(orders) => {
                for raw in &orders {
                    record_order(ledger, raw, false)?;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read back the orders whose confirmation lost its answer; next cycle");
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += unsure.len();
                return Ok(());
            }
        }
    }
    let waiting = waiting_for_confirmation(ledger)?;
    for page in waiting.chunks(GET_ORDER_LIMIT) {
        if !steps.proceed(ledger, report)? {
            return Ok(());
        }
        let mut intended = Vec::new();
        for (key, state) in page {
            let intent = OrderEvent::WriteIntended(WriteIntended { write: OutsideWrite::RakutenConfirm });
            if state.write(OutsideWrite::RakutenConfirm) == Some(&WriteState::Intended)
                || record(ledger, key, state, "receive", vec![intent])?
            {
                intended.push(key.clone());
            }
        }
        let numbers: Vec<String> = intended.iter().map(|k| k.order_number.clone()).collect();
        let messages = match client.confirm_orders(&numbers).await {
            Ok(messages) => messages,
            Err(RakutenError::Api { messages, .. }) => messages
                .into_iter()
                .map(|(code, message)| MessageModel {
                    message_type: "ERROR".into(),
                    message_code: code,
                    message,
                    order_number: None,
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "confirmOrder not answered; RMS is read back next cycle");
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += intended.len();
                return Ok(());
            }
        };
        for key in &intended {
            record_confirmation(ledger, key, &messages, report)?;
        }
    }
    Ok(())
}

/// Rakuten orders awaiting our confirmation, with their states.
fn waiting_for_confirmation(ledger: &Ledger) -> Result<Vec<(OrderKey, OrderState)>, LedgerError> {
    let mut waiting = Vec::new();
    for key in super::marketplace_keys_in(ledger, Marketplace::Rakuten, &[Status::AwaitingConfirmation], |_| true)? {
        let state = ledger.order_state(&key)?;
        if state.status == Some(Status::AwaitingConfirmation) && !state.marketplace_confirmed && state.hold.is_none() {
            waiting.push((key, state));
        }
    }
    Ok(waiting)
}

/// RMS's answer for one order: confirmed (INFO, or ERROR_103: RMS had already moved it), or
/// refused with its message; no message for the order leaves the outcome unknown.
fn record_confirmation(
    ledger: &mut Ledger,
    key: &OrderKey,
    messages: &[MessageModel],
    report: &mut StageReport,
) -> Result<(), LedgerError> {
    let state = ledger.order_state(key)?;
    if state.write(OutsideWrite::RakutenConfirm) != Some(&WriteState::Intended) {
        return Ok(());
    }
    let mine = messages.iter().find(|m| m.order_number.as_deref() == Some(key.order_number.as_str()));
    let batch = messages.iter().find(|m| m.order_number.is_none() && m.message_type == "ERROR");
    match mine.or(batch) {
        Some(m) if m.message_type == "INFO" || m.message_code.ends_with("ERROR_103") => {
            tracing::info!(order = %key, code = m.message_code, "confirmed at Rakuten");
            super::record_outcome(
                ledger,
                key,
                "receive",
                events::order::intake::confirmed(&state, &format!("confirmOrder {}", m.message_code)),
            )?;
            report.advanced += 1;
        }
        Some(m) if m.message_type == "ERROR" => {
            tracing::warn!(order = %key, code = m.message_code, message = m.message, "RMS refused the confirmation");
            let failed = WriteFailed {
                write: OutsideWrite::RakutenConfirm,
                code: Some(m.message_code.clone()),
                message: m.message.clone(),
            };
            super::record_outcome(ledger, key, "receive", vec![OrderEvent::WriteFailed(failed)])?;
            report.needs_operator += 1;
        }
        _ => {
            tracing::info!(order = %key, "confirmOrder said nothing of this order; RMS is read back next cycle");
            report.deferred += 1;
        }
    }
    Ok(())
}

async fn check_license(ledger: &mut Ledger, client: &RakutenClient, settings: &PollSettings) -> Result<(), StageError> {
    let Ok(expires_on) = client.license_expiry().await else { return Ok(()) };
    record_credential_expiry(ledger, POLL_STREAM, "RAKUTEN_LICENSE_KEY", expires_on, settings)?;
    Ok(())
}

/// Re-reads every open Rakuten order: payment and processing (-> VERIFIED), holds,
/// cancellations (-> CANCELLED, or a pending MCF cancel when shipping).
pub async fn watch(
    ledger: &mut Ledger,
    client: &RakutenClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("watch:rakuten");
    let open = super::marketplace_keys_in(ledger, Marketplace::Rakuten, &Status::OPEN, |_| true)?;
    let numbers: Vec<String> = open.into_iter().map(|k| k.order_number).collect();
    // One getOrder page at a time, recorded before the next is read: memory stays one page.
    for (index, page) in numbers.chunks(GET_ORDER_LIMIT).enumerate() {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        let orders = match client.get_orders(page).await {
            Ok(orders) => orders,
            Err(error) => {
                tracing::warn!(%error, "cannot re-read open Rakuten orders; next cycle");
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += numbers.len() - index * GET_ORDER_LIMIT;
                return Ok(report);
            }
        };
        for raw in &orders {
            report.examined += 1;
            if record_order(ledger, raw, false)?.appended {
                report.advanced += 1;
            }
        }
    }
    Ok(report)
}

/// Writes carrier and tracking number back to RMS; SHIPPED when RMS accepted it. RMS is read
/// first (100 orders a call), so a record from an earlier attempt (or the RMS screen) is
/// updated, never duplicated.
pub async fn notify(
    ledger: &mut Ledger,
    client: &RakutenClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("notify:rakuten");
    let due_state = |ledger: &Ledger, key: &OrderKey| -> Result<Option<OrderState>, LedgerError> {
        let state = ledger.order_state(key)?;
        let due = state.tracking.is_some() && !state.shipment_reported && state.cancel_requested.is_none();
        Ok(due.then_some(state))
    };
    let mut due = Vec::new();
    for key in
        super::marketplace_keys_in(ledger, Marketplace::Rakuten, &[Status::Shipping], super::may_report_shipment)?
    {
        if due_state(ledger, &key)?.is_some() {
            due.push(key);
        }
    }
    'pages: for page in due.chunks(GET_ORDER_LIMIT) {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        let numbers: Vec<String> = page.iter().map(|k| k.order_number.clone()).collect();
        let models: Vec<OrderModel> = match client.get_orders(&numbers).await {
            Ok(raw) => raw.into_iter().filter_map(|order| serde_json::from_value(order).ok()).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the orders to report at RMS; next cycle");
                report.source_failed(POLL_STREAM, &Unread::of(&error));
                report.deferred += page.len();
                continue;
            }
        };
        for key in page {
            if !steps.proceed(ledger, &mut report)? {
                break 'pages;
            }
            let Some(state) = due_state(ledger, key)? else { continue };
            report.examined += 1;
            let Some(model) = models.iter().find(|m| m.order_number == key.order_number) else {
                tracing::warn!(order = %key, "RMS did not return the order (or it was unreadable); next cycle");
                report.deferred += 1;
                continue;
            };
            report_shipment(ledger, client, key, &state, model, &mut report).await?;
        }
    }
    Ok(report)
}

/// Registers one order's tracking at RMS and records it. RMS was just read: a tracking number
/// it already has (our write whose answer was lost, or the shop's own entry) is recorded as
/// reported, never written twice. Otherwise the write is intended, made, and its outcome
/// recorded; a lost answer is read back next cycle.
async fn report_shipment(
    ledger: &mut Ledger,
    client: &RakutenClient,
    key: &OrderKey,
    state: &OrderState,
    model: &OrderModel,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let Some(tracking) = state.tracking.clone() else { return Ok(()) };
    let Some(package) = model.packages.iter().find(|p| p.package_delete_flag != Some(1)) else {
        report.deferred += 1;
        return Ok(());
    };
    let write = OutsideWrite::RakutenShipping;
    let company = mapping::delivery_company(&tracking.carrier);
    let reported = Tracking { carrier: format!("{} ({company})", tracking.carrier), ..tracking.clone() };
    let shipped = |note: &str| {
        let mut events = Vec::new();
        if state.write(write) == Some(&WriteState::Intended) {
            events.push(OrderEvent::WriteDone(WriteDone { write, note: note.to_owned() }));
        }
        events.push(OrderEvent::ShipmentReported(reported.clone()));
        events
    };
    let already =
        package.shippings.iter().any(|s| s.shipping_number.as_deref() == Some(tracking.tracking_number.as_str()));
    if already {
        tracing::info!(order = %key, "RMS already has this tracking number; recording it as reported");
        super::record_outcome(ledger, key, "notify", shipped("RMS showed it when read back"))?;
        report.advanced += 1;
        return Ok(());
    }
    let intent = OrderEvent::WriteIntended(WriteIntended { write });
    if state.write(write) != Some(&WriteState::Intended) && !record(ledger, key, state, "notify", vec![intent])? {
        report.deferred += 1;
        return Ok(());
    }
    let blank = package.shippings.iter().find(|s| s.shipping_number.as_deref().unwrap_or("").is_empty());
    let shipped_on = mapping::jst_date(tracking.shipped_at.unwrap_or_else(|| ledger.store().now()));
    let request = UpdateOrderShippingRequest {
        order_number: key.order_number.clone(),
        baskets: vec![BasketShipping {
            basket_id: package.basket_id,
            shippings: vec![ShippingModel {
                shipping_detail_id: blank.and_then(|b| b.shipping_detail_id),
                delivery_company: Some(company.to_owned()),
                shipping_number: Some(tracking.tracking_number.clone()),
                shipping_date: Some(shipped_on),
            }],
        }],
    };
    match client.update_order_shipping(&request).await {
        Ok(_) => {
            tracing::info!(order = %key, company, "tracking registered at Rakuten");
            let mut events = vec![OrderEvent::WriteDone(WriteDone { write, note: "updateOrderShipping".into() })];
            events.push(OrderEvent::ShipmentReported(reported));
            super::record_outcome(ledger, key, "notify", events)?;
            report.advanced += 1;
        }
        Err(RakutenError::Api { messages, .. }) => {
            let message = messages.iter().map(|(c, m)| format!("{c} {m}")).collect::<Vec<_>>().join("; ");
            tracing::warn!(order = %key, message, "RMS refused the shipping report");
            let code = messages.first().map(|(c, _)| c.clone());
            let events = vec![
                OrderEvent::WriteFailed(WriteFailed { write, code: code.clone(), message: message.clone() }),
                OrderEvent::OrderFailed(OrderFailed { stage: "notify".into(), code, message }),
            ];
            super::record_outcome(ledger, key, "notify", events)?;
            report.needs_operator += 1;
        }
        Err(error) => {
            tracing::warn!(order = %key, %error, "shipping report not confirmed; RMS is read back next cycle");
            report.source_failed(POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
        }
    }
    Ok(())
}
