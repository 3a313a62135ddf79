//! From RMS's OrderModel to the ledger's facts, as pure functions: order details, settlement
//! kind, holds, and the intake decision (which events an order's current RMS state adds to
//! what the ledger already knows). The Rakuten two-step confirmation lives here.

use super::model::{OrderModel, Person};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use events::clock::jst;
use events::order::{
    Address, Buyer, CancelSource, CancellationRequested, CustomerEmailIntended, DeliveryRequest, DetectionSource, Note,
    OrderDetails, OrderDetected, OrderEvent, OrderItem, OrderState, OutsideWrite, Reason, Settlement, SettlementKind,
    Status, WriteDone, WriteState,
};
use events::Marketplace;

/// `2024-01-01T10:15:00+0900` (RMS's only accepted form: JST, offset without a colon).
pub fn format_datetime(time: DateTime<Utc>) -> String {
    time.with_timezone(&jst()).format("%Y-%m-%dT%H:%M:%S+0900").to_string()
}

pub fn parse_datetime(text: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z").map_err(|e| format!("datetime {text:?}: {e}"))
}

/// Settlement methods (spec §5.3). Prepaid orders ship only after payment is seen.
pub fn settlement(code: Option<i64>, name: Option<&str>) -> Settlement {
    let kind = match code {
        Some(9 | 13 | 14) => SettlementKind::Prepaid,
        Some(2) => SettlementKind::CashOnDelivery,
        Some(1 | 4 | 5 | 6 | 7 | 8 | 12 | 16 | 17 | 21 | 27) => SettlementKind::CreditCard,
        _ => SettlementKind::Other,
    };
    Settlement {
        code: code.map_or_else(|| "?".into(), |c| c.to_string()),
        name: name.unwrap_or("(unknown)").to_owned(),
        kind,
    }
}

fn text(value: &Option<String>) -> String {
    value.as_deref().map(str::trim).unwrap_or("").to_owned()
}

fn full_name(person: &Person) -> String {
    [text(&person.family_name), text(&person.first_name)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn phone(person: &Person) -> Option<String> {
    let parts: Vec<String> =
        [&person.phone1, &person.phone2, &person.phone3].into_iter().map(text).filter(|s| !s.is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join("-"))
}

/// `shippingTerm`: 1416 -> 14-16, 708 -> 07-08, 1 (午前) -> 08-12; 0, 2 and 9 name no slot.
pub fn slot_of(term: Option<i64>) -> Option<String> {
    match term? {
        1 => Some("08-12".into()),
        t if t >= 100 => {
            let (from, to) = (t / 100, t % 100);
            (from < to && to <= 24).then(|| format!("{from:02}-{to:02}"))
        }
        _ => None,
    }
}

/// The marketplace SKU an order line is mapped by: merchantDefinedSkuId, else
/// `manageNumber:variantId`, else the item number.
fn marketplace_sku(item: &super::model::ItemModel) -> Option<String> {
    let sku = item.skus.first();
    if let Some(id) = sku.and_then(|s| s.merchant_defined_sku_id.as_deref()).map(str::trim).filter(|s| !s.is_empty()) {
        return Some(id.to_owned());
    }
    let manage = text(&item.manage_number);
    if let Some(variant) = sku.and_then(|s| s.variant_id.as_deref()).map(str::trim).filter(|s| !s.is_empty()) {
        if !manage.is_empty() {
            return Some(format!("{manage}:{variant}"));
        }
    }
    [text(&item.item_number), manage].into_iter().find(|s| !s.is_empty())
}

/// The order as the ledger records it; Err names what RMS left out.
pub fn details(model: &OrderModel) -> Result<OrderDetails, String> {
    let ordered_at = parse_datetime(&model.order_datetime)?;
    let package = model
        .packages
        .iter()
        .find(|p| p.package_delete_flag != Some(1))
        .ok_or("the order has no delivery package (PackageModelList is empty)")?;
    let sender = package.sender.as_ref().ok_or("the package has no SenderModel (delivery address)")?;
    let orderer = model.orderer.clone().unwrap_or_default();
    let postal = format!("{}-{}", text(&sender.zip_code1), text(&sender.zip_code2));
    let ship_to = Address {
        name: full_name(sender),
        postal_code: postal,
        prefecture: text(&sender.prefecture),
        city: text(&sender.city),
        line1: text(&sender.sub_address),
        line2: None,
        phone: phone(sender),
    };
    for (field, value) in [
        ("SenderModel.familyName", &ship_to.name),
        ("SenderModel.prefecture", &ship_to.prefecture),
        ("SenderModel.subAddress", &ship_to.line1),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    let mut items = Vec::new();
    for (n, item) in package.items.iter().filter(|i| i.delete_item_flag != Some(1)).enumerate() {
        let sku =
            marketplace_sku(item).ok_or_else(|| format!("item {} has no SKU, item number or manage number", n + 1))?;
        let quantity = item.units.filter(|u| *u > 0).ok_or_else(|| format!("item {sku} has no units"))?;
        items.push(OrderItem {
            marketplace_sku: sku,
            title: text(&item.item_name),
            quantity: u32::try_from(quantity).map_err(|_| format!("item units {quantity} out of range"))?,
            unit_price_yen: item.price.unwrap_or(0),
        });
    }
    if items.is_empty() {
        return Err("the order has no items".into());
    }
    let delivery_request = match model.delivery_date.as_deref().filter(|d| !d.is_empty()) {
        Some(date) => Some(DeliveryRequest {
            date: NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| format!("deliveryDate {date:?}: {e}"))?,
            slot: slot_of(model.shipping_term),
        }),
        None => None,
    };
    let settlement = model.settlement.clone().unwrap_or_default();
    Ok(OrderDetails {
        ordered_at,
        buyer: Buyer { name: full_name(&orderer), email: orderer.email.clone(), phone: phone(&orderer) },
        ship_to,
        items,
        settlement: self::settlement(settlement.code, settlement.name.as_deref()),
        delivery_request,
        premium_deadline: None,
        total_yen: model.total_price.unwrap_or(0),
    })
}

/// Why Rakuten says not to ship yet, if it does.
pub fn hold_reason(model: &OrderModel) -> Option<String> {
    if model.rakuten_confirm_flag == Some(1) {
        return Some("楽天確認中 (rakutenConfirmFlag=1): Rakuten is still checking this order".into());
    }
    if model.caution_display_type == Some(1) {
        return Some("注意喚起 (cautionDisplayType=1): Rakuten flags this order for caution; check it in RMS".into());
    }
    if model.order_progress == 400 {
        return Some("変更確定待ち (orderProgress 400): the order was changed and waits for confirmation".into());
    }
    let waiting_gift = model.packages.iter().filter_map(|p| p.sender.as_ref()).any(|s| {
        let name = text(&s.family_name);
        name == "入力待ち" || name == "ニュウリョクマチ" || text(&s.zip_code1) == "999" || text(&s.zip_code2) == "9999"
    });
    if model.social_gift_flag == Some(1) && waiting_gift {
        return Some("ソーシャルギフト: waiting for the recipient to enter a delivery address".into());
    }
    None
}

/// The email the Rakuten guide sends to prepaid buyers at first confirmation.
pub const PAYMENT_GUIDANCE: &str = "payment_guidance";

pub fn payment_guidance_email_id(order_number: &str) -> String {
    format!("payment-guidance-rakuten-{order_number}")
}

/// Orders first seen this far along are not ours to ship (shipped or cancelled elsewhere).
pub fn out_of_scope_at_first_sight(progress: i64) -> bool {
    progress >= 500
}

/// What the order's RMS state adds to what the ledger knows, in order. Each event is valid
/// after the ones before it (the state machine checks them on append).
pub fn intake_events(state: &OrderState, model: &OrderModel) -> Vec<OrderEvent> {
    let mut state = state.clone();
    let mut events = Vec::new();
    let mut push = |state: &mut OrderState, event: OrderEvent| {
        state.apply(&event);
        events.push(event);
    };
    if state.status.is_some_and(Status::is_final) {
        return events;
    }
    if !state.detected_via.contains(&DetectionSource::Api) {
        let detected = OrderDetected {
            marketplace: Marketplace::Rakuten,
            order_number: model.order_number.clone(),
            via: DetectionSource::Api,
            reference: Some("searchOrder".into()),
        };
        push(&mut state, OrderEvent::OrderDetected(detected));
    }
    let editable = !matches!(state.status, Some(Status::Shipping | Status::Shipped) | None) || state.details.is_none();
    match details(model) {
        Ok(new) if editable && state.details.as_ref() != Some(&new) => {
            let problem = crate::intake::settlement_problem(&new.settlement, "RMS");
            let first = state.details.is_none();
            push(&mut state, OrderEvent::OrderDetailsRecorded(new));
            if first {
                if let Some(message) = problem {
                    push(&mut state, crate::intake::failed_at_receive("SETTLEMENT", message));
                    return events;
                }
            }
        }
        Ok(_) => {}
        Err(reason) if state.details.is_none() => {
            let message = format!("the order from RMS cannot be used: {reason}");
            if state.error.as_ref().is_none_or(|e| e.message != message) && state.status != Some(Status::Error) {
                push(&mut state, crate::intake::failed_at_receive("RMS_ORDER", message));
            }
            return events;
        }
        Err(_) => {}
    }
    if state.status == Some(Status::Received) && state.details.is_some() {
        push(
            &mut state,
            OrderEvent::AwaitingConfirmation(Reason {
                reason: "楽天の2段階確認: waiting for Rakuten to make the order ready to ship".into(),
            }),
        );
    }
    if let Some(event) =
        crate::intake::hold_change(state.hold.as_ref(), hold_reason(model), "Rakuten no longer flags the order")
    {
        push(&mut state, event);
    }
    if matches!(model.order_progress, 800 | 900)
        && state.cancel_requested.is_none()
        && !state.cancelled_by_marketplace
        && !state.status.is_some_and(Status::is_final)
    {
        let label = if model.order_progress == 900 { "キャンセル確定" } else { "キャンセル確定待ち" };
        push(
            &mut state,
            OrderEvent::CancellationRequested(CancellationRequested {
                source: CancelSource::Marketplace,
                reason: format!("Rakuten orderProgress {} ({label})", model.order_progress),
            }),
        );
        return events;
    }
    // RMS has the order confirmed (our confirmOrder whose answer was lost, or the shop's own
    // automatic confirmation): read, not asked again.
    if state.status == Some(Status::AwaitingConfirmation)
        && !state.marketplace_confirmed
        && matches!(model.order_progress, 200 | 300)
    {
        let note = format!("RMS shows orderProgress {}", model.order_progress);
        for event in confirmed_events(&state, &note) {
            push(&mut state, event);
        }
    }
    if state.status == Some(Status::AwaitingConfirmation) && model.order_progress == 300 && state.hold.is_none() {
        let prepaid = state.details.as_ref().is_some_and(|d| d.settlement.kind == SettlementKind::Prepaid);
        if prepaid && !state.payment_confirmed {
            push(
                &mut state,
                OrderEvent::PaymentConfirmed(Note { note: "Rakuten shows the order paid (orderProgress 300)".into() }),
            );
        }
        push(&mut state, OrderEvent::OrderVerified(Note { note: "Rakuten orderProgress 300 (発送待ち)".into() }));
    }
    events
}

/// Events recorded once RMS has the order confirmed (confirmOrder answered, or RMS read back):
/// the confirm write done (or, when we never sent it, the confirmation seen), and for a prepaid
/// order the intent to send the payment guidance email, once.
pub fn confirmed_events(state: &OrderState, note: &str) -> Vec<OrderEvent> {
    let confirmed = if state.write(OutsideWrite::RakutenConfirm) == Some(&WriteState::Intended) {
        OrderEvent::WriteDone(WriteDone { write: OutsideWrite::RakutenConfirm, note: note.to_owned() })
    } else {
        OrderEvent::MarketplaceConfirmed(Note { note: note.to_owned() })
    };
    let mut events = vec![confirmed];
    let prepaid = state.details.as_ref().is_some_and(|d| d.settlement.kind == SettlementKind::Prepaid);
    let key = state.key.as_ref().map(|k| k.order_number.clone()).unwrap_or_default();
    if prepaid && !state.emails.iter().any(|e| e.kind == PAYMENT_GUIDANCE) {
        events.push(OrderEvent::CustomerEmailIntended(CustomerEmailIntended {
            email_id: payment_guidance_email_id(&key),
            kind: PAYMENT_GUIDANCE.into(),
        }));
    }
    events
}

/// Rakuten's deliveryCompany code for Amazon's carrier text (spec §4.3, §8).
pub fn delivery_company(carrier: &str) -> &'static str {
    let carrier = carrier.to_lowercase();
    if carrier.contains("yamato") || carrier.contains("ヤマト") {
        "1001"
    } else if carrier.contains("sagawa") || carrier.contains("佐川") {
        "1002"
    } else if carrier.contains("japan post")
        || carrier.contains("jp post")
        || carrier.contains("yubin")
        || carrier.contains("日本郵便")
    {
        "1003"
    } else {
        "1000"
    }
}

/// JST date of a UTC time, as RMS writes dates.
pub fn jst_date(time: DateTime<Utc>) -> String {
    jst().from_utc_datetime(&time.naive_utc()).format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::OrderKey;
    use serde_json::json;

    fn model(progress: i64, settlement_code: i64) -> OrderModel {
        serde_json::from_value(json!({
            "orderNumber": "123456-20261122-0000000001", "orderProgress": progress,
            "orderDatetime": "2026-11-22T10:15:00+0900", "deliveryDate": null, "shippingTerm": null,
            "rakutenConfirmFlag": 0, "cautionDisplayType": 0, "socialGiftFlag": 0, "totalPrice": 3300,
            "OrdererModel": {"familyName": "楽天", "firstName": "太郎", "phoneNumber1": "03", "phoneNumber2": "0000", "phoneNumber3": "0000", "emailAddress": "x@pc.fw.rakuten.ne.jp"},
            "SettlementModel": {"settlementMethodCode": settlement_code, "settlementMethod": "テスト"},
            "PackageModelList": [{"basketId": 1, "packageDeleteFlag": 0,
                "SenderModel": {"zipCode1": "158", "zipCode2": "0094", "prefecture": "東京都", "city": "世田谷区", "subAddress": "玉川1-14-1", "familyName": "楽天", "firstName": "花子", "phoneNumber1": "03", "phoneNumber2": null, "phoneNumber3": "0000"},
                "ItemModelList": [{"itemName": "Tシャツ", "itemNumber": "tee-01", "manageNumber": "tee-01", "price": 3300, "units": 1, "deleteItemFlag": 0,
                    "SkuModelList": [{"variantId": "m-black", "merchantDefinedSkuId": "TEE01-M-BK"}]},
                  {"itemName": "削除", "itemNumber": "gone", "units": 1, "deleteItemFlag": 1, "SkuModelList": null}],
                "ShippingModelList": null}],
            "CouponModelList": null
        }))
        .unwrap()
    }

    fn key() -> OrderKey {
        OrderKey::new(Marketplace::Rakuten, "123456-20261122-0000000001").unwrap()
    }

    fn given(events: &[OrderEvent]) -> OrderState {
        OrderState::fold(key(), events)
    }

    fn types(events: &[OrderEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.event_type()).collect()
    }

    #[test]
    fn datetimes_use_rms_form_in_jst() {
        let time = Utc.with_ymd_and_hms(2026, 11, 22, 1, 15, 0).unwrap();
        assert_eq!(format_datetime(time), "2026-11-22T10:15:00+0900");
        assert_eq!(parse_datetime("2026-11-22T10:15:00+0900").unwrap().with_timezone(&Utc), time);
        assert!(parse_datetime("2026-11-22T10:15:00+09:00x").is_err());
    }

    #[test]
    fn details_take_the_package_address_skus_and_skip_deleted_lines() {
        let details = details(&model(100, 1)).unwrap();
        assert_eq!(details.ship_to.name, "楽天 花子");
        assert_eq!(details.ship_to.postal_code, "158-0094");
        assert_eq!(details.ship_to.phone.as_deref(), Some("03-0000"));
        assert_eq!(details.items.len(), 1);
        assert_eq!(details.items[0].marketplace_sku, "TEE01-M-BK");
        assert_eq!(details.settlement.kind, SettlementKind::CreditCard);
        assert_eq!(details.buyer.name, "楽天 太郎");
    }

    #[test]
    fn given_a_new_card_order_at_100_then_detected_recorded_and_awaiting_confirmation() {
        let events = intake_events(&OrderState::new(key()), &model(100, 1));
        assert_eq!(types(&events), ["OrderDetected", "OrderDetailsRecorded", "AwaitingConfirmation"]);
        let state = given(&events);
        assert_eq!(state.status, Some(Status::AwaitingConfirmation));
        assert!(intake_events(&state, &model(100, 1)).is_empty(), "seeing it again adds nothing");
    }

    #[test]
    fn given_awaiting_when_rakuten_shows_300_then_verified() {
        let state = given(&intake_events(&OrderState::new(key()), &model(100, 1)));
        assert_eq!(types(&intake_events(&state, &model(300, 1))), ["MarketplaceConfirmed", "OrderVerified"]);
    }

    #[test]
    fn given_a_confirm_whose_answer_was_lost_when_rms_shows_200_then_the_write_is_done_and_not_sent_again() {
        let mut events = intake_events(&OrderState::new(key()), &model(100, 9));
        events.push(OrderEvent::WriteIntended(events::order::WriteIntended { write: OutsideWrite::RakutenConfirm }));
        let state = given(&events);
        let read_back = intake_events(&state, &model(200, 9));
        assert_eq!(types(&read_back), ["WriteDone", "CustomerEmailIntended"]);
        events.extend(read_back);
        let state = given(&events);
        assert!(state.marketplace_confirmed);
        assert_eq!(state.write(OutsideWrite::RakutenConfirm), Some(&WriteState::Done));
        assert!(intake_events(&state, &model(200, 9)).is_empty(), "read once, recorded once");
    }

    #[test]
    fn given_a_prepaid_order_then_confirmation_intends_the_payment_email_once_and_300_means_paid() {
        let state = given(&intake_events(&OrderState::new(key()), &model(100, 9)));
        let confirmed = confirmed_events(&state, "confirmOrder");
        assert_eq!(types(&confirmed), ["MarketplaceConfirmed", "CustomerEmailIntended"]);
        let mut all = intake_events(&OrderState::new(key()), &model(100, 9));
        all.extend(confirmed);
        let state = given(&all);
        assert_eq!(
            types(&confirmed_events(&state, "confirmOrder")),
            ["MarketplaceConfirmed"],
            "the guidance email is intended once"
        );
        assert!(intake_events(&state, &model(200, 9)).is_empty(), "waiting for payment");
        assert_eq!(types(&intake_events(&state, &model(300, 9))), ["PaymentConfirmed", "OrderVerified"]);
    }

    #[test]
    fn given_a_flagged_order_then_held_with_the_reason_and_released_when_cleared() {
        let mut flagged = model(300, 1);
        flagged.rakuten_confirm_flag = Some(1);
        let state = given(&intake_events(&OrderState::new(key()), &model(100, 1)));
        let events = intake_events(&state, &flagged);
        assert_eq!(types(&events), ["OrderHeld"]);
        let mut history = intake_events(&OrderState::new(key()), &model(100, 1));
        history.extend(events);
        let state = given(&history);
        assert_eq!(types(&intake_events(&state, &model(300, 1))), ["HoldReleased", "OrderVerified"]);
    }

    #[test]
    fn given_a_cancelled_order_then_cancellation_requested() {
        let state = given(&intake_events(&OrderState::new(key()), &model(100, 1)));
        let events = intake_events(&state, &model(900, 1));
        assert_eq!(types(&events), ["CancellationRequested"]);
        assert_eq!(
            given(&[intake_events(&OrderState::new(key()), &model(100, 1)), events].concat()).status,
            Some(Status::Cancelled)
        );
    }

    #[test]
    fn given_a_cancellation_amazon_refused_then_it_is_not_requested_again() {
        let mut history = intake_events(&OrderState::new(key()), &model(300, 1));
        history.push(events::order::sample::allotted());
        history.extend(events::order::sample::mcf_created(&key()));
        assert_eq!(given(&history).status, Some(Status::Shipping));
        let cancel = intake_events(&given(&history), &model(900, 1));
        assert_eq!(types(&cancel), ["CancellationRequested"]);
        history.extend(cancel);
        history.push(OrderEvent::McfCancelRefused(Reason { reason: "picking has started".into() }));
        let state = given(&history);
        assert_eq!(state.status, Some(Status::Error));
        let again = intake_events(&state, &model(900, 1));
        assert!(again.is_empty(), "the operator resolves it; no request every cycle: {:?}", types(&again));
    }

    #[test]
    fn given_an_unknown_settlement_or_cod_then_error_with_the_reason() {
        let events = intake_events(&OrderState::new(key()), &model(100, 99));
        assert_eq!(types(&events), ["OrderDetected", "OrderDetailsRecorded", "OrderFailed"]);
        let OrderEvent::OrderFailed(failed) = &events[2] else { panic!() };
        assert!(failed.message.contains("unknown payment method 99"), "{}", failed.message);
        let cod = intake_events(&OrderState::new(key()), &model(100, 2));
        assert!(matches!(&cod[2], OrderEvent::OrderFailed(f) if f.message.contains("代金引換")));
    }

    #[test]
    fn given_an_order_without_address_then_error_naming_the_field() {
        let mut broken = model(100, 1);
        broken.packages[0].sender = None;
        let events = intake_events(&OrderState::new(key()), &broken);
        assert_eq!(types(&events), ["OrderDetected", "OrderFailed"]);
        assert!(matches!(&events[1], OrderEvent::OrderFailed(f) if f.message.contains("SenderModel")));
    }

    #[test]
    fn slots_and_carriers_map_to_rms_codes() {
        assert_eq!(slot_of(Some(1416)), Some("14-16".into()));
        assert_eq!(slot_of(Some(708)), Some("07-08".into()));
        assert_eq!(slot_of(Some(1)), Some("08-12".into()));
        assert_eq!(slot_of(Some(2)), None);
        assert_eq!(delivery_company("YAMATO"), "1001");
        assert_eq!(delivery_company("Sagawa Express"), "1002");
        assert_eq!(delivery_company("JAPAN POST"), "1003");
        assert_eq!(delivery_company("Amazon Logistics"), "1000");
    }
}
