//! From RMS's OrderModel to the ledger's words, as pure functions: order details, settlement
//! kind, holds, and the marketplace-neutral view the intake decision reads. It translates only:
//! what a view means for the order is decided in `events::order::intake`.

use super::model::{OrderModel, Person};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use events::clock::jst;
use events::order::intake::MarketplaceView;
use events::order::{Address, Buyer, Carrier, DeliveryRequest, OrderDetails, OrderItem, Settlement, SettlementKind};
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

/// The order as RMS shows it, in the ledger's words (the intake decision is
/// `events::order::intake::decide`). orderProgress: 100 注文確認待ち, 200 楽天処理中, 300 発送待ち,
/// 500 発送済 and later, 800/900 cancelled.
pub fn view(model: &OrderModel) -> MarketplaceView {
    let progress = model.order_progress;
    let cancelled = matches!(progress, 800 | 900).then(|| {
        let label = if progress == 900 { "キャンセル確定" } else { "キャンセル確定待ち" };
        format!("Rakuten orderProgress {progress} ({label})")
    });
    MarketplaceView {
        marketplace: Marketplace::Rakuten,
        order_number: model.order_number.clone(),
        read_with: "searchOrder".into(),
        details: details(model),
        hold: hold_reason(model),
        cancelled,
        confirmed: matches!(progress, 200 | 300).then(|| format!("RMS shows orderProgress {progress}")),
        ready_to_ship: (progress == 300).then(|| "Rakuten orderProgress 300 (発送待ち)".to_owned()),
        closed_before_first_sight: progress >= 500,
    }
}

/// Rakuten's deliveryCompany code for Amazon's carrier text (spec §4.3, §8).
pub fn delivery_company(carrier: &str) -> &'static str {
    match Carrier::recognise(carrier) {
        Carrier::Yamato => "1001",
        Carrier::Sagawa => "1002",
        Carrier::JapanPost => "1003",
        Carrier::Other => "1000",
    }
}

/// JST date of a UTC time, as RMS writes dates.
pub fn jst_date(time: DateTime<Utc>) -> String {
    jst().from_utc_datetime(&time.naive_utc()).format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn the_view_reads_progress_flags_and_cancellation() {
        let new = view(&model(100, 1));
        assert_eq!(
            (new.confirmed.as_deref(), new.ready_to_ship.as_deref(), new.cancelled.as_deref()),
            (None, None, None)
        );
        assert!(new.details.is_ok() && !new.closed_before_first_sight);
        assert_eq!(view(&model(200, 1)).confirmed.as_deref(), Some("RMS shows orderProgress 200"));
        assert_eq!(view(&model(200, 1)).ready_to_ship, None, "楽天処理中 is not ready yet");
        assert_eq!(view(&model(300, 1)).ready_to_ship.as_deref(), Some("Rakuten orderProgress 300 (発送待ち)"));
        assert_eq!(view(&model(900, 1)).cancelled.as_deref(), Some("Rakuten orderProgress 900 (キャンセル確定)"));
        assert!(view(&model(500, 1)).closed_before_first_sight, "shipped before we saw it");
        let mut flagged = model(300, 1);
        flagged.rakuten_confirm_flag = Some(1);
        assert!(view(&flagged).hold.is_some());
    }

    #[test]
    fn given_a_cod_order_or_one_without_address_then_the_intake_decides_error() {
        use events::order::intake::decide;
        use events::order::testing::given_nothing;
        let key = events::OrderKey::new(Marketplace::Rakuten, "123456-20261122-0000000001").unwrap();
        let cod = given_nothing(&key).when(|s| decide(s, &view(&model(100, 2))));
        assert!(
            matches!(&cod.events()[2], events::order::OrderEvent::OrderFailed(f) if f.message.contains("代金引換"))
        );
        let mut broken = model(100, 1);
        broken.packages[0].sender = None;
        let then = given_nothing(&key).when(|s| decide(s, &view(&broken)));
        assert!(
            matches!(&then.events()[1], events::order::OrderEvent::OrderFailed(f) if f.message.contains("SenderModel"))
        );
        then.then_expect_types(&["OrderDetected", "OrderFailed"]);
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
