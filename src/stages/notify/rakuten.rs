//! Rakuten at notify: register carrier and tracking number with updateOrderShipping, updating
//! an existing record rather than adding a second one (a retry after a lost answer or a crash
//! finds its own record).

use crate::rakuten::mapping;
use crate::rakuten::model::{BasketShipping, OrderModel, ShippingModel, UpdateOrderShippingRequest};
use crate::rakuten::{RakutenClient, RakutenError, GET_ORDER_LIMIT};
use crate::stages::orders::record;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{Unread, RAKUTEN_POLL_STREAM};
use crate::stages::steps::Steps;
use events::order::{
    OrderEvent, OrderFailed, OrderState, OutsideWrite, Status, Tracking, WriteDone, WriteFailed, WriteIntended,
    WriteState,
};
use events::{Marketplace, OrderKey};
use projections::{Ledger, LedgerError};

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
    for key in crate::stages::orders::marketplace_keys_in(
        ledger,
        Marketplace::Rakuten,
        &[Status::Shipping],
        crate::stages::orders::may_report_shipment,
    )? {
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
                report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
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
        crate::stages::orders::record_outcome(ledger, key, "notify", shipped("RMS showed it when read back"))?;
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
            crate::stages::orders::record_outcome(ledger, key, "notify", events)?;
            report.advanced += 1;
        }
        Err(RakutenError::Api { messages, .. }) => {
            let message = messages.iter().map(|(c, m)| format!("{c} {m}")).collect::<Vec<_>>().join("; ");
            tracing::warn!(order = %key, message, "RMS refused the shipping report");
            let code = messages.first().map(|(c, _)| c.clone());
            let events = vec![
                OrderEvent::WriteFailed(WriteFailed { write, code: code.clone(), message: message.clone() }),
                OrderEvent::OrderFailed(OrderFailed {
                    stage: "notify".into(),
                    code,
                    message: format!(
                        "楽天RMSが発送登録を受け付けませんでした。RMSで登録してください。RMSのメッセージ: {message}"
                    ),
                }),
            ];
            crate::stages::orders::record_outcome(ledger, key, "notify", events)?;
            report.needs_operator += 1;
        }
        Err(error) => {
            tracing::warn!(order = %key, %error, "shipping report not confirmed; RMS is read back next cycle");
            report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
            report.deferred += 1;
        }
    }
    Ok(())
}
