//! Rakuten at notify: register carrier and tracking number with updateOrderShippingAsync, 100
//! orders a call. RMS answers with a `requestId` and processes the request later; the
//! `requestId` is recorded on each order (`WriteSubmitted`), and its result asked for with
//! getResultUpdateOrderShippingAsync next cycle. RMS is read (getOrder, 100 a call) before
//! anything is sent, so a record already there (ours, or the shop's own) is never written twice.
//! A report whose answer was lost is sent again only once RMS has had `async_settle` to
//! process it and the order still shows no tracking number.

use crate::rakuten::mapping;
use crate::rakuten::model::{BasketShipping, OrderModel, ShippingModel, UpdateOrderShippingRequest};
use crate::rakuten::{AsyncShippingResult, RakutenClient, RakutenError, SHIPPING_ASYNC_LIMIT};
use crate::stages::orders::{awaits_shipment_report, record, record_outcome};
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{Unread, RAKUTEN_POLL_STREAM};
use crate::stages::steps::Steps;
use chrono::{DateTime, Utc};
use events::order::{
    OrderEvent, OrderFailed, OrderState, OutsideWrite, Status, Tracking, WriteDone, WriteFailed, WriteIntended,
    WriteState, WriteSubmitted,
};
use events::{Marketplace, OrderKey};
use projections::{Ledger, LedgerError};
use std::collections::BTreeMap;

const WRITE: OutsideWrite = OutsideWrite::RakutenShipping;

/// What to do for one order whose tracking RMS does not have yet, given RMS's order as just read.
#[derive(Debug, Clone, PartialEq)]
pub enum ShippingStep {
    /// RMS shows the tracking number: record it reported, write nothing.
    AlreadyAtRms,
    /// A report may still be processed at RMS (submitted, or sent with its answer lost less
    /// than `async_settle` ago): wait; sending now could add a second record.
    AwaitRms,
    /// RMS shows no package to report on (yet): next cycle.
    NoPackage,
    /// Send this report.
    Send(UpdateOrderShippingRequest),
}

/// The pure decision for one order: RMS's order as read now, the ledger's state, the time.
pub fn shipping_step(
    state: &OrderState,
    tracking: &Tracking,
    model: &OrderModel,
    now: DateTime<Utc>,
    async_settle: chrono::Duration,
) -> ShippingStep {
    let Some(package) = model.packages.iter().find(|p| p.package_delete_flag != Some(1)) else {
        return ShippingStep::NoPackage;
    };
    let at_rms = |number: &str| package.shippings.iter().any(|s| s.shipping_number.as_deref() == Some(number));
    if at_rms(&tracking.tracking_number) {
        return ShippingStep::AlreadyAtRms;
    }
    let awaited_since = state.write(WRITE).filter(|w| w.awaits_outcome()).and(state.writes_since.get(&WRITE));
    if awaited_since.is_some_and(|since| now < *since + async_settle) {
        return ShippingStep::AwaitRms;
    }
    // A blank record (from the RMS screen) is filled in rather than left blocking 500.
    let blank = package.shippings.iter().find(|s| s.shipping_number.as_deref().unwrap_or("").is_empty());
    ShippingStep::Send(UpdateOrderShippingRequest {
        order_number: model.order_number.clone(),
        baskets: vec![BasketShipping {
            basket_id: package.basket_id,
            shippings: vec![ShippingModel {
                shipping_detail_id: blank.and_then(|b| b.shipping_detail_id),
                delivery_company: Some(mapping::delivery_company(&tracking.carrier).to_owned()),
                shipping_number: Some(tracking.tracking_number.clone()),
                shipping_date: Some(mapping::jst_date(tracking.shipped_at.unwrap_or(now))),
            }],
        }],
    })
}

/// The tracking as recorded reported: the carrier with RMS's company code.
fn reported(tracking: &Tracking) -> Tracking {
    let company = mapping::delivery_company(&tracking.carrier);
    Tracking { carrier: format!("{} ({company})", tracking.carrier), ..tracking.clone() }
}

/// The events that record the order reported: the write's outcome if one was awaited.
fn shipped_events(state: &OrderState, tracking: &Tracking, note: &str) -> Vec<OrderEvent> {
    let mut events = Vec::new();
    if state.write(WRITE).is_some_and(WriteState::awaits_outcome) {
        events.push(OrderEvent::WriteDone(WriteDone { write: WRITE, note: note.to_owned() }));
    }
    events.push(OrderEvent::ShipmentReported(reported(tracking)));
    events
}

/// The write refused, with RMS's own codes and messages.
fn refused_write(messages: &[(String, String)]) -> WriteFailed {
    let message = messages.iter().map(|(c, m)| format!("{c} {m}")).collect::<Vec<_>>().join("; ");
    WriteFailed { write: WRITE, code: messages.first().map(|(c, _)| c.clone()), message }
}

/// The events that hand a refused report to the operator, with RMS's own message.
fn refused_events(messages: &[(String, String)]) -> Vec<OrderEvent> {
    let refused = refused_write(messages);
    let failed = OrderFailed {
        stage: "notify".into(),
        code: refused.code.clone(),
        message: format!(
            "楽天RMSが発送登録を受け付けませんでした。RMSで登録してください。RMSのメッセージ: {}",
            refused.message
        ),
    };
    vec![OrderEvent::WriteFailed(refused), OrderEvent::OrderFailed(failed)]
}

/// The order, if it still waits for its tracking to reach RMS.
fn due_state(ledger: &Ledger, key: &OrderKey) -> Result<Option<OrderState>, LedgerError> {
    let state = ledger.order_state(key)?;
    Ok(awaits_shipment_report(&state).then_some(state))
}

/// The outcome to record for a report whose order stopped waiting for it while RMS had it (a
/// cancellation came, the order went to the operator): RMS's copy decides, and nothing is sent
/// again. None while RMS may still be processing it.
pub fn stranded_outcome(step: &ShippingStep) -> Option<OrderEvent> {
    match step {
        ShippingStep::AlreadyAtRms => {
            Some(OrderEvent::WriteDone(WriteDone { write: WRITE, note: "RMS showed it when read back".into() }))
        }
        ShippingStep::AwaitRms => None,
        ShippingStep::NoPackage | ShippingStep::Send(_) => Some(OrderEvent::WriteFailed(WriteFailed {
            write: WRITE,
            code: None,
            message: "RMSに発送情報がありません。注文が発送報告を待たなくなったため、再送しません。RMSの受注画面で確かめ、必要なら登録してください。".into(),
        })),
    }
}

/// Orders with a report awaiting its outcome that no longer wait to be reported.
fn stranded_keys(ledger: &Ledger, due: &[OrderKey]) -> Result<Vec<OrderKey>, LedgerError> {
    let mut stranded = Vec::new();
    for order in projections::queries::orders_with_open_write(ledger.store().connection(), WRITE)? {
        let Ok(key) = order.parse::<OrderKey>() else { continue };
        if key.marketplace != Marketplace::Rakuten || due.contains(&key) {
            continue;
        }
        let state = ledger.order_state(&key)?;
        if state.write(WRITE).is_some_and(WriteState::awaits_outcome) && !awaits_shipment_report(&state) {
            stranded.push(key);
        }
    }
    Ok(stranded)
}

/// Writes carrier and tracking number back to RMS; SHIPPED once RMS has it.
pub async fn notify(
    ledger: &mut Ledger,
    client: &RakutenClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("notify:rakuten");
    // The projection's rows pick the candidates; each order is folded when it is decided on.
    let due = crate::stages::orders::marketplace_keys_in(
        ledger,
        Marketplace::Rakuten,
        &[Status::Shipping],
        crate::stages::orders::may_report_shipment,
    )?;
    let stranded = stranded_keys(ledger, &due)?;
    let awaiting: Vec<OrderKey> = due.iter().chain(&stranded).cloned().collect();
    collect_results(ledger, client, &awaiting, steps, &mut report).await?;
    read_back_stranded(ledger, client, &stranded, steps, &mut report).await?;
    for page in due.chunks(SHIPPING_ASYNC_LIMIT) {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        let Some(models) = read_page(client, page, &mut report).await else { continue };
        let batch = decide_page(ledger, client, page, &models, &mut report)?;
        if !batch.is_empty() && steps.proceed(ledger, &mut report)? {
            submit(ledger, client, batch, &mut report).await?;
        }
    }
    Ok(report)
}

/// Asks RMS for the result of each request the orders were submitted under (one call per
/// request) and records each processed order's outcome. Orders RMS has not processed yet are
/// left to the read-back.
async fn collect_results(
    ledger: &mut Ledger,
    client: &RakutenClient,
    keys: &[OrderKey],
    steps: &mut Steps<'_>,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let mut by_request: BTreeMap<String, Vec<OrderKey>> = BTreeMap::new();
    for key in keys {
        if let Some(WriteState::Submitted(request_id)) = ledger.order_state(key)?.write(WRITE) {
            by_request.entry(request_id.clone()).or_default().push(key.clone());
        }
    }
    for (request_id, keys) in by_request {
        if !steps.proceed(ledger, report)? {
            break;
        }
        let results = match client.shipping_async_result(&request_id).await {
            Ok(results) => results,
            Err(error) => {
                tracing::warn!(%error, request_id, "cannot read an async shipping result at RMS; next cycle");
                report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
                continue;
            }
        };
        for key in keys {
            let Some(result) = results.iter().find(|r| r.order_number == key.order_number) else { continue };
            record_result(ledger, &key, &request_id, result, report)?;
        }
    }
    Ok(())
}

fn record_result(
    ledger: &mut Ledger,
    key: &OrderKey,
    request_id: &str,
    result: &AsyncShippingResult,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let state = ledger.order_state(key)?;
    if state.write(WRITE) != Some(&WriteState::Submitted(request_id.to_owned())) {
        return Ok(());
    }
    let Some(tracking) = state.tracking.clone() else { return Ok(()) };
    report.examined += 1;
    if !awaits_shipment_report(&state) {
        // The order stopped waiting for this report meanwhile: only the write's outcome.
        let outcome = if result.errors.is_empty() {
            OrderEvent::WriteDone(WriteDone {
                write: WRITE,
                note: format!("getResultUpdateOrderShippingAsync {request_id}"),
            })
        } else {
            OrderEvent::WriteFailed(refused_write(&result.errors))
        };
        tracing::info!(order = %key, request_id, ?outcome, "outcome of a report whose order no longer waits for it");
        return Ok(record_outcome(ledger, key, "notify", vec![outcome])?);
    }
    if result.errors.is_empty() {
        tracing::info!(order = %key, request_id, "RMS processed the shipping report");
        let note = format!("getResultUpdateOrderShippingAsync {request_id}");
        record_outcome(ledger, key, "notify", shipped_events(&state, &tracking, &note))?;
        report.advanced += 1;
    } else {
        tracing::warn!(order = %key, request_id, errors = ?result.errors, "RMS refused the shipping report");
        record_outcome(ledger, key, "notify", refused_events(&result.errors))?;
        report.needs_operator += 1;
    }
    Ok(())
}

/// RMS's copy of a page of orders (getOrder, 100 a call); None, the read recorded failed and
/// the page left for the next cycle, when RMS cannot be read.
async fn read_page(client: &RakutenClient, page: &[OrderKey], report: &mut StageReport) -> Option<Vec<OrderModel>> {
    let numbers: Vec<String> = page.iter().map(|k| k.order_number.clone()).collect();
    match client.get_orders(&numbers).await {
        Ok(raw) => Some(raw.into_iter().filter_map(|order| serde_json::from_value(order).ok()).collect()),
        Err(error) => {
            tracing::warn!(%error, orders = page.len(), "cannot read the orders to report at RMS; next cycle");
            report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
            report.deferred += page.len();
            None
        }
    }
}

/// Reads RMS's copy of the stranded orders still awaiting an outcome and records it.
async fn read_back_stranded(
    ledger: &mut Ledger,
    client: &RakutenClient,
    stranded: &[OrderKey],
    steps: &mut Steps<'_>,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let now = ledger.store().now();
    let settle = chrono::Duration::from_std(client.async_settle()).unwrap_or(chrono::Duration::MAX);
    for page in stranded.chunks(SHIPPING_ASYNC_LIMIT) {
        if !steps.proceed(ledger, report)? {
            break;
        }
        let Some(models) = read_page(client, page, report).await else { continue };
        for key in page {
            let state = ledger.order_state(key)?;
            let Some(tracking) = state.tracking.clone() else { continue };
            if !state.write(WRITE).is_some_and(WriteState::awaits_outcome) {
                continue;
            }
            let Some(model) = models.iter().find(|m| m.order_number == key.order_number) else {
                report.deferred += 1;
                continue;
            };
            report.examined += 1;
            match stranded_outcome(&shipping_step(&state, &tracking, model, now, settle)) {
                Some(outcome) => {
                    tracing::info!(order = %key, ?outcome, "read back a report whose order no longer waits for it");
                    record_outcome(ledger, key, "notify", vec![outcome])?;
                }
                None => report.deferred += 1,
            }
        }
    }
    Ok(())
}

/// Decides each order of a page against RMS's copy; records the reported ones and the intent of
/// those to send, which it returns.
fn decide_page(
    ledger: &mut Ledger,
    client: &RakutenClient,
    page: &[OrderKey],
    models: &[OrderModel],
    report: &mut StageReport,
) -> Result<Vec<(OrderKey, UpdateOrderShippingRequest)>, StageError> {
    let now = ledger.store().now();
    let settle = chrono::Duration::from_std(client.async_settle()).unwrap_or(chrono::Duration::MAX);
    let mut batch = Vec::new();
    for key in page {
        let Some(state) = due_state(ledger, key)? else { continue };
        let Some(tracking) = state.tracking.clone() else { continue };
        report.examined += 1;
        let Some(model) = models.iter().find(|m| m.order_number == key.order_number) else {
            tracing::warn!(order = %key, "RMS did not return the order (or it was unreadable); next cycle");
            report.deferred += 1;
            continue;
        };
        match shipping_step(&state, &tracking, model, now, settle) {
            ShippingStep::AlreadyAtRms => {
                tracing::info!(order = %key, "RMS has this tracking number; recording it as reported");
                record_outcome(
                    ledger,
                    key,
                    "notify",
                    shipped_events(&state, &tracking, "RMS showed it when read back"),
                )?;
                report.advanced += 1;
            }
            ShippingStep::AwaitRms => {
                tracing::info!(order = %key, "shipping report may still be processed at RMS; waiting");
                report.deferred += 1;
            }
            ShippingStep::NoPackage => {
                tracing::warn!(order = %key, "RMS shows no package for the order; next cycle");
                report.deferred += 1;
            }
            ShippingStep::Send(request) => {
                let intent = OrderEvent::WriteIntended(WriteIntended { write: WRITE });
                if record(ledger, key, &state, "notify", vec![intent])? {
                    batch.push((key.clone(), request));
                } else {
                    report.deferred += 1;
                }
            }
        }
    }
    Ok(batch)
}

/// Sends one batch with updateOrderShippingAsync and records each order submitted, or refused
/// with RMS's message. A refusal that names orders is theirs: the others are sent again at
/// once. An unknown outcome leaves the intents for the read-back.
async fn submit(
    ledger: &mut Ledger,
    client: &RakutenClient,
    mut batch: Vec<(OrderKey, UpdateOrderShippingRequest)>,
    report: &mut StageReport,
) -> Result<(), StageError> {
    while !batch.is_empty() {
        let requests: Vec<UpdateOrderShippingRequest> = batch.iter().map(|(_, r)| r.clone()).collect();
        match client.update_order_shipping_async(&requests).await {
            Ok(request_id) => {
                for (key, _) in &batch {
                    tracing::info!(order = %key, request_id, "shipping report accepted by RMS");
                    let submitted = WriteSubmitted { write: WRITE, request_id: request_id.clone() };
                    record_outcome(ledger, key, "notify", vec![OrderEvent::WriteSubmitted(submitted)])?;
                    report.deferred += 1;
                }
                return Ok(());
            }
            Err(RakutenError::Api { messages, orders, .. }) => {
                let named = |key: &OrderKey| orders.contains(&key.order_number);
                let (mut refused, mut rest): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(key, _)| named(key));
                if refused.is_empty() {
                    // A refusal naming none of them is about the request as a whole.
                    refused = std::mem::take(&mut rest);
                }
                for (key, _) in &refused {
                    tracing::warn!(order = %key, ?messages, "RMS refused the shipping report");
                    record_outcome(ledger, key, "notify", refused_events(&messages))?;
                    report.needs_operator += 1;
                }
                batch = rest;
            }
            Err(error) => {
                tracing::warn!(%error, orders = batch.len(), "shipping reports not confirmed; RMS is read back");
                report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
                report.deferred += batch.len();
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tracking() -> Tracking {
        Tracking { carrier: "ヤマト運輸".into(), tracking_number: "123456789012".into(), shipped_at: None }
    }

    fn rms_order(shippings: serde_json::Value) -> OrderModel {
        serde_json::from_value(serde_json::json!({
            "orderNumber": "123456-20261202-0000000001",
            "orderProgress": 300,
            "orderDatetime": "2026-12-02T10:00:00+0900",
            "PackageModelList": [{"basketId": 1000000001, "ShippingModelList": shippings}],
        }))
        .unwrap()
    }

    fn given_write(events: &[(OrderEvent, DateTime<Utc>)]) -> OrderState {
        let key = OrderKey::new(Marketplace::Rakuten, "123456-20261202-0000000001").unwrap();
        let mut state = OrderState::new(key);
        for (version, (event, at)) in events.iter().enumerate() {
            state.apply_recorded(event, version as i64 + 1, *at);
        }
        state
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 3, minute, 0).unwrap()
    }

    const SETTLE: chrono::Duration = chrono::Duration::minutes(10);

    fn intended() -> OrderEvent {
        OrderEvent::WriteIntended(WriteIntended { write: WRITE })
    }

    #[test]
    fn a_tracking_number_rms_already_has_is_recorded_not_sent() {
        let state = given_write(&[(intended(), at(0))]);
        let model = rms_order(
            serde_json::json!([{"shippingDetailId": 7, "deliveryCompany": "1001", "shippingNumber": "123456789012", "shippingDate": "2026-12-02"}]),
        );
        assert_eq!(shipping_step(&state, &tracking(), &model, at(1), SETTLE), ShippingStep::AlreadyAtRms);
        assert_eq!(shipped_events(&state, &tracking(), "read back").len(), 2, "the write's outcome and the report");
    }

    #[test]
    fn a_first_report_fills_the_blank_record_rms_shows() {
        let state = given_write(&[]);
        let model = rms_order(serde_json::json!([{"shippingDetailId": 7, "shippingNumber": ""}]));
        let ShippingStep::Send(request) = shipping_step(&state, &tracking(), &model, at(0), SETTLE) else {
            panic!("a first report is sent")
        };
        let shipping = &request.baskets[0].shippings[0];
        assert_eq!(request.baskets[0].basket_id, 1000000001);
        assert_eq!(shipping.shipping_detail_id, Some(7), "the blank record is updated, no second one added");
        assert_eq!(shipping.delivery_company.as_deref(), Some("1001"));
        assert_eq!(shipping.shipping_date.as_deref(), Some("2026-12-02"), "JST date");
    }

    #[test]
    fn a_report_awaiting_its_outcome_is_not_sent_again_until_rms_had_time_to_process_it() {
        let model = rms_order(serde_json::json!(null));
        for given in [
            given_write(&[(intended(), at(0))]),
            given_write(&[
                (intended(), at(0)),
                (OrderEvent::WriteSubmitted(WriteSubmitted { write: WRITE, request_id: "r1".into() }), at(0)),
            ]),
        ] {
            assert_eq!(shipping_step(&given, &tracking(), &model, at(9), SETTLE), ShippingStep::AwaitRms);
            assert!(matches!(shipping_step(&given, &tracking(), &model, at(10), SETTLE), ShippingStep::Send(_)));
        }
    }

    #[test]
    fn an_order_without_a_live_package_waits() {
        let state = given_write(&[]);
        let mut model = rms_order(serde_json::json!(null));
        model.packages[0].package_delete_flag = Some(1);
        assert_eq!(shipping_step(&state, &tracking(), &model, at(0), SETTLE), ShippingStep::NoPackage);
    }

    #[test]
    fn a_report_whose_order_stopped_waiting_gets_the_outcome_rms_shows_and_is_never_sent_again() {
        let submitted = given_write(&[
            (intended(), at(0)),
            (OrderEvent::WriteSubmitted(WriteSubmitted { write: WRITE, request_id: "r1".into() }), at(0)),
        ]);
        let with_record = rms_order(
            serde_json::json!([{"shippingDetailId": 7, "deliveryCompany": "1001", "shippingNumber": "123456789012", "shippingDate": "2026-12-02"}]),
        );
        let without = rms_order(serde_json::json!(null));
        let outcome = |model: &OrderModel, minute| {
            stranded_outcome(&shipping_step(&submitted, &tracking(), model, at(minute), SETTLE))
        };
        assert!(matches!(outcome(&with_record, 1), Some(OrderEvent::WriteDone(_))), "RMS applied it");
        assert_eq!(outcome(&without, 9), None, "RMS may still be processing it");
        let Some(OrderEvent::WriteFailed(failed)) = outcome(&without, 10) else { panic!("not at RMS after settling") };
        assert!(failed.message.contains("再送しません"), "{}", failed.message);
    }

    #[test]
    fn a_refusal_carries_rms_message_to_the_operator() {
        let events = refused_events(&[("ORDER_EXT_API_X_ERROR_102".into(), "キャンセル済み".into())]);
        let OrderEvent::OrderFailed(failed) = &events[1] else { panic!("{events:?}") };
        assert!(failed.message.contains("ORDER_EXT_API_X_ERROR_102 キャンセル済み"));
        assert!(
            matches!(&events[0], OrderEvent::WriteFailed(w) if w.code.as_deref() == Some("ORDER_EXT_API_X_ERROR_102"))
        );
    }
}
