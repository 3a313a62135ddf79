//! Rakuten at receive: poll searchOrder over [cursor - overlap, now] by order datetime, read
//! every order (getOrder, 100 at a time) and record what is new; the cursor advances only after
//! the whole window was recorded. Then the first step of the two-step confirmation: confirmOrder
//! the orders awaiting it. The license key's expiry is read and recorded.

use crate::rakuten::model::MessageModel;
use crate::rakuten::{RakutenClient, RakutenError, GET_ORDER_LIMIT};
use crate::stages::intake::{record_rakuten_order, Recorded};
use crate::stages::orders::record;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{
    record_credential_expiry, record_poll_outcome, source_state, PollSettings, Unread, Window, RAKUTEN_POLL_STREAM,
};
use crate::stages::steps::Steps;
use chrono::{DateTime, Utc};
use events::order::{OrderEvent, OrderState, OutsideWrite, Status, WriteFailed, WriteIntended, WriteState};
use events::{Marketplace, OrderKey};
use projections::{Ledger, LedgerError};

pub async fn receive(
    ledger: &mut Ledger,
    client: &RakutenClient,
    settings: &PollSettings,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("receive:rakuten");
    let source = source_state(ledger, RAKUTEN_POLL_STREAM)?;
    let now = ledger.store().now();
    let (start, end) = source.next_window(now, settings.overlap, settings.initial_lookback);
    let outcome = match poll_window(ledger, client, (start, end), steps, &mut report).await? {
        Window::Whole { seen, new } => Ok((seen, new)),
        Window::Failed(unread) => {
            report.source_failed(RAKUTEN_POLL_STREAM, &unread);
            Err(unread)
        }
        // Stopped between two pages: the window is not whole, so the cursor stays.
        Window::Interrupted => return Ok(report),
    };
    if !record_poll_outcome(ledger, RAKUTEN_POLL_STREAM, settings, &source, (start, end), outcome)? {
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
            if let Recorded { new: true, .. } = record_rakuten_order(ledger, raw, true, "receive")? {
                new += 1;
                report.advanced += 1;
            }
        }
    }
    Ok(Window::Whole { seen: numbers.len() as u32, new })
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
        if record_rakuten_order(ledger, raw, true, "receive")?.appended {
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
                    record_rakuten_order(ledger, raw, false, "receive")?;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read back the orders whose confirmation lost its answer; next cycle");
                report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
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
                report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
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
    for key in crate::stages::orders::marketplace_keys_in(
        ledger,
        Marketplace::Rakuten,
        &[Status::AwaitingConfirmation],
        |_| true,
    )? {
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
            crate::stages::orders::record_outcome(
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
            crate::stages::orders::record_outcome(ledger, key, "receive", vec![OrderEvent::WriteFailed(failed)])?;
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
    record_credential_expiry(ledger, RAKUTEN_POLL_STREAM, "RAKUTEN_LICENSE_KEY", expires_on, settings)?;
    Ok(())
}
