//! Yahoo at notify: orderShipStatusChange (ShipStatus 3, carrier, invoice number, ship date),
//! then orderStatusChange to OrderStatus 5; each an outside write, read back after a lost answer.

use crate::stages::orders::record;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{Unread, YAHOO_POLL_STREAM};
use crate::stages::steps::Steps;
use crate::yahoo::mapping::{ship_company_code, validate_invoice, ShipmentView};
use crate::yahoo::{YahooClient, YahooError};
use events::order::{
    OrderEvent, OrderFailed, OutsideWrite, Status, Tracking, WriteDone, WriteFailed, WriteIntended, WriteState,
};
use events::{Marketplace, OrderKey};
use projections::queries;
use projections::{Ledger, LedgerError};

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
    for key in crate::stages::orders::marketplace_keys_in(
        ledger,
        Marketplace::Yahoo,
        &[Status::Shipping],
        crate::stages::orders::may_report_shipment,
    )? {
        if !steps.proceed(ledger, &mut report)? {
            return Ok(report);
        }
        let state = ledger.order_state(&key)?;
        if !crate::stages::orders::awaits_shipment_report(&state) {
            continue;
        }
        report.examined += 1;
        if report_shipment(ledger, client, &key, &state, &mut report).await? {
            complete(ledger, client, &key, &mut report).await?;
        }
        written.insert(key);
    }
    // Ship statuses whose answer was lost on orders that stopped waiting for them meanwhile.
    for order in queries::orders_with_open_write(ledger.store().connection(), OutsideWrite::YahooShipStatus)
        .map_err(LedgerError::from)?
    {
        if !steps.proceed(ledger, &mut report)? {
            return Ok(report);
        }
        let Ok(key) = order.parse::<OrderKey>() else { continue };
        if key.marketplace == Marketplace::Yahoo && !written.contains(&key) {
            resolve_stranded_ship_status(ledger, client, &key, &mut report).await?;
        }
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
            message: format!("{problem}。ストアクリエイターProで手動で登録してください"),
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
                crate::stages::orders::record_outcome(
                    ledger,
                    key,
                    "notify",
                    shipped("Yahoo showed it after a lost answer"),
                )?;
                report.advanced += 1;
                return Ok(true);
            }
            Ok(_) => {}
            Err(error) => {
                report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
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
            crate::stages::orders::record_outcome(ledger, key, "notify", shipped("orderShipStatusChange"))?;
            report.advanced += 1;
            Ok(true)
        }
        Err(YahooError::Api { code, message, .. }) => {
            tracing::warn!(order = %key, code, message, "Yahoo refused the ship status");
            crate::stages::orders::record_outcome(ledger, key, "notify", ship_status_refused(code, message))?;
            report.needs_operator += 1;
            Ok(false)
        }
        Err(error) => {
            tracing::warn!(order = %key, %error, "ship status not confirmed; Yahoo is read back next cycle");
            report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
            Ok(false)
        }
    }
}

/// A ship status sent with its answer lost, on an order that no longer waits to be reported (a
/// cancellation came, the order went to the operator): Yahoo's copy gives the outcome, and
/// nothing is sent again. Yahoo writes take effect at once, so what it shows now is final.
async fn resolve_stranded_ship_status(
    ledger: &mut Ledger,
    client: &YahooClient,
    key: &OrderKey,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let write = OutsideWrite::YahooShipStatus;
    let state = ledger.order_state(key)?;
    let Some(tracking) = state.tracking.as_ref() else { return Ok(()) };
    if crate::stages::orders::awaits_shipment_report(&state) || state.write(write) != Some(&WriteState::Intended) {
        return Ok(());
    }
    report.examined += 1;
    let outcome = match client.order_info(&key.order_number).await {
        Ok((info, _)) if ShipmentView::of(&info).shipped_with(&tracking.tracking_number) => {
            OrderEvent::WriteDone(WriteDone { write, note: "Yahoo showed it after a lost answer".into() })
        }
        Ok(_) => OrderEvent::WriteFailed(WriteFailed {
            write,
            code: None,
            message: "Yahoo!に出荷情報がありません。注文が発送報告を待たなくなったため、再送しません。ストアクリエイターProで確かめ、必要なら登録してください。".into(),
        }),
        Err(error) => {
            report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
            return Ok(());
        }
    };
    tracing::info!(order = %key, ?outcome, "read back a ship status whose order no longer waits for it");
    crate::stages::orders::record_outcome(ledger, key, "notify", vec![outcome])?;
    Ok(())
}

/// Yahoo refused the ship status: the write failed, and an operator registers it by hand.
fn ship_status_refused(code: String, message: String) -> Vec<OrderEvent> {
    vec![
        OrderEvent::WriteFailed(WriteFailed {
            write: OutsideWrite::YahooShipStatus,
            code: Some(code.clone()),
            message: message.clone(),
        }),
        OrderEvent::OrderFailed(OrderFailed {
            stage: "notify".into(),
            code: Some(code),
            message: format!(
                "Yahoo!が出荷登録を受け付けませんでした。ストアクリエイターProで登録してください。Yahoo!のメッセージ: {message}"
            ),
        }),
    ]
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
        // Yahoo has no async writes: Submitted never happens to a Yahoo write.
        Some(WriteState::Done) | Some(WriteState::Failed(_)) | Some(WriteState::Submitted(_)) => return Ok(()),
        Some(WriteState::Intended) => match client.order_info(&key.order_number).await {
            Ok((info, _)) if ShipmentView::of(&info).completed() => {
                let done = WriteDone { write, note: "Yahoo showed OrderStatus 5 after a lost answer".into() };
                crate::stages::orders::record_outcome(ledger, key, "notify", vec![OrderEvent::WriteDone(done)])?;
                report.advanced += 1;
                return Ok(());
            }
            Ok(_) => {}
            Err(error) => {
                report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
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
            report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
            return Ok(());
        }
    };
    crate::stages::orders::record_outcome(ledger, key, "notify", vec![outcome])?;
    Ok(())
}
