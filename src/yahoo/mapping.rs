//! From Yahoo's orderInfo to the ledger's words, as pure functions: details, settlement,
//! premium delivery deadline, delivery slot, holds, and the marketplace-neutral view the
//! intake decision (`events::order::intake`) reads. It translates only.

use crate::transport::xml::Element;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use events::clock::jst;
use events::order::intake::MarketplaceView;
use events::order::{Address, Buyer, Carrier, DeliveryRequest, OrderDetails, OrderItem, Settlement, SettlementKind};
use events::Marketplace;

/// The fields orderInfo is asked for (unrequested fields are simply absent).
pub const ORDER_INFO_FIELDS: &str = "OrderId,OrderTime,OrderStatus,IsReadOnly,Suspect,FraudHoldStatus,PublicationTime,\
PayStatus,PayMethod,PayMethodName,ShipStatus,ShipCompanyCode,ShipInvoiceNumber1,ShipRequestDate,ShipRequestTime,ShipLastName,ShipFirstName,ShipZipCode,\
ShipPrefecture,ShipCity,ShipAddress1,ShipAddress2,ShipPhoneNumber,ExcellentDelivery,BillLastName,BillFirstName,\
BillMailAddress,BillPhoneNumber,TotalPrice,LineId,ItemId,SubCode,Title,Quantity,UnitPrice";

/// Request datetimes: `YYYYMMDDHHMMSS` in JST.
pub fn request_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&jst()).format("%Y%m%d%H%M%S").to_string()
}

/// Response datetimes: ISO 8601 with `+09:00`, or the compact `YYYYMMDDHHMMSS` of older answers.
pub fn parse_time(text: &str) -> Result<DateTime<FixedOffset>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(time);
    }
    NaiveDateTime::parse_from_str(text.trim(), "%Y%m%d%H%M%S")
        .ok()
        .and_then(|naive| jst().from_local_datetime(&naive).single())
        .ok_or_else(|| format!("datetime {text:?} is neither ISO 8601 nor YYYYMMDDHHMMSS"))
}

fn text<'a>(info: &'a Element, path: &str) -> &'a str {
    info.text_at(path).unwrap_or("")
}

pub fn settlement(method: &str, name: &str) -> Settlement {
    let kind = match method {
        "payment_a1" | "payment_a9" | "payment_a10" | "payment_a11" | "payment_a17" | "payment_a19" | "payment_z4" => {
            SettlementKind::CreditCard
        }
        m if m.starts_with("payment_b")
            || m.starts_with("payment_c")
            || matches!(m, "payment_a6" | "payment_a7" | "payment_a15") =>
        {
            SettlementKind::Prepaid
        }
        "payment_d1" => SettlementKind::CashOnDelivery,
        _ => SettlementKind::Other,
    };
    Settlement {
        code: method.to_owned(),
        name: if name.is_empty() { method.to_owned() } else { name.to_owned() },
        kind,
    }
}

/// `14:00～16:00` -> 14-16, `午前中` -> 08-12; anything else is no slot.
pub fn slot_of(label: &str) -> Option<String> {
    if label.contains("午前") {
        return Some("08-12".into());
    }
    events::order::parse_slot(label).map(|(from, to)| format!("{from:02}-{to:02}"))
}

/// 優良配送: delivery by the JST order date + 2 days (1), or + 1 day for 翌日優良配送 (2).
pub fn premium_deadline(excellent_delivery: &str, ordered_at: DateTime<FixedOffset>) -> Option<NaiveDate> {
    let days = match excellent_delivery {
        "1" => 2,
        "2" => 1,
        _ => return None,
    };
    Some(ordered_at.with_timezone(&jst()).date_naive() + Duration::days(days))
}

fn postal(zip: &str) -> String {
    let digits: String = zip.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 7 {
        format!("{}-{}", &digits[..3], &digits[3..])
    } else {
        zip.to_owned()
    }
}

pub fn details(info: &Element) -> Result<OrderDetails, String> {
    let ordered_at = parse_time(text(info, "OrderTime"))?;
    let ship = info.at("Ship").ok_or("orderInfo has no Ship element")?;
    let name = [text(ship, "ShipLastName"), text(ship, "ShipFirstName")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let ship_to = Address {
        name,
        postal_code: postal(text(ship, "ShipZipCode")),
        prefecture: text(ship, "ShipPrefecture").to_owned(),
        city: text(ship, "ShipCity").to_owned(),
        line1: text(ship, "ShipAddress1").to_owned(),
        line2: ship.text_at("ShipAddress2").map(str::to_owned),
        phone: ship.text_at("ShipPhoneNumber").map(str::to_owned),
    };
    for (field, value) in [
        ("Ship/ShipLastName", &ship_to.name),
        ("Ship/ShipPrefecture", &ship_to.prefecture),
        ("Ship/ShipAddress1", &ship_to.line1),
    ] {
        if value.is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    if ship_to.prefecture == "その他" {
        return Err("the delivery address is overseas (ShipPrefecture その他): MCF Japan cannot ship it".into());
    }
    let mut items = Vec::new();
    for item in info.children_named("Item") {
        let sku = item
            .text_at("SubCode")
            .or_else(|| item.text_at("ItemId"))
            .ok_or("an item has neither SubCode nor ItemId")?;
        let quantity: u32 = item
            .text_at("Quantity")
            .and_then(|q| q.parse().ok())
            .filter(|q| *q > 0)
            .ok_or_else(|| format!("item {sku} has no quantity"))?;
        items.push(OrderItem {
            marketplace_sku: sku.to_owned(),
            title: item.text_at("Title").unwrap_or("").to_owned(),
            quantity,
            unit_price_yen: item.text_at("UnitPrice").and_then(|p| p.parse().ok()).unwrap_or(0),
        });
    }
    if items.is_empty() {
        return Err("the order has no items".into());
    }
    let delivery_request = match ship.text_at("ShipRequestDate") {
        Some(date) => Some(DeliveryRequest {
            date: NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(date, "%Y%m%d"))
                .map_err(|e| format!("ShipRequestDate {date:?}: {e}"))?,
            slot: ship.text_at("ShipRequestTime").and_then(slot_of),
        }),
        None => None,
    };
    let buyer = info.at("Pay");
    let bill = |field: &str| buyer.and_then(|b| b.text_at(field)).or_else(|| info.text_at(field)).unwrap_or("");
    let buyer_name = [bill("BillLastName"), bill("BillFirstName")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(OrderDetails {
        ordered_at,
        buyer: Buyer {
            name: if buyer_name.is_empty() { ship_to.name.clone() } else { buyer_name },
            email: Some(bill("BillMailAddress")).filter(|s| !s.is_empty()).map(str::to_owned),
            phone: Some(bill("BillPhoneNumber")).filter(|s| !s.is_empty()).map(str::to_owned),
        },
        items,
        settlement: settlement(text(info, "Pay/PayMethod"), text(info, "Pay/PayMethodName")),
        delivery_request,
        premium_deadline: premium_deadline(text(ship, "ExcellentDelivery"), ordered_at),
        total_yen: info.text_at("Detail/TotalPrice").and_then(|t| t.parse().ok()).unwrap_or(0),
        ship_to,
    })
}

pub fn hold_reason(info: &Element) -> Option<String> {
    match (text(info, "OrderStatus"), text(info, "Suspect"), text(info, "FraudHoldStatus")) {
        ("3", _, _) => Some("保留 (OrderStatus 3): the store put the order on hold in Store Creator".into()),
        (_, "1" | "2", _) => Some("いたずら注文の疑い (Suspect): check the order in Store Creator".into()),
        (_, _, "1") => Some("不正注文審査中 (FraudHoldStatus 1): Yahoo is reviewing the order".into()),
        (_, _, "3") => Some("不正注文 (FraudHoldStatus 3): Yahoo judged the order fraudulent".into()),
        _ => None,
    }
}

/// The order as orderInfo shows it, in the ledger's words (the intake decision is
/// `events::order::intake::decide`). Ready to ship: out of the buyer's 10-minute cancel window
/// (IsReadOnly 0), processing (OrderStatus 2) and shippable (ShipStatus 1 or 2).
pub fn view(info: &Element) -> MarketplaceView {
    let status = text(info, "OrderStatus");
    let ready = text(info, "IsReadOnly") != "1" && status == "2" && matches!(text(info, "Ship/ShipStatus"), "1" | "2");
    MarketplaceView {
        marketplace: Marketplace::Yahoo,
        order_number: text(info, "OrderId").to_owned(),
        read_with: "orderInfo".into(),
        details: details(info),
        hold: hold_reason(info),
        cancelled: (status == "4").then(|| "Yahoo OrderStatus 4 (キャンセル)".to_owned()),
        // Yahoo has no confirmation step of the shop's.
        confirmed: None,
        ready_to_ship: ready.then(|| "Yahoo: out of the cancel window, shippable".to_owned()),
        // 完了 before this system saw it: shipped by the shop some other way.
        closed_before_first_sight: status == "5",
    }
}

/// What Yahoo shows of an order's shipping and completion, read back after a write whose
/// answer was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentView {
    /// OrderStatus: 2 処理中, 4 キャンセル, 5 完了.
    pub order_status: String,
    /// ShipStatus: 3 出荷済み.
    pub ship_status: String,
    pub invoice: Option<String>,
}

impl ShipmentView {
    pub fn of(info: &Element) -> Self {
        Self {
            order_status: text(info, "OrderStatus").to_owned(),
            ship_status: text(info, "Ship/ShipStatus").to_owned(),
            invoice: info.text_at("Ship/ShipInvoiceNumber1").map(str::to_owned),
        }
    }

    /// Yahoo has this tracking number as shipped.
    pub fn shipped_with(&self, invoice: &str) -> bool {
        matches!(self.ship_status.as_str(), "3" | "4") && self.invoice.as_deref() == Some(invoice)
    }

    pub fn completed(&self) -> bool {
        self.order_status == "5"
    }
}

/// Yahoo's ShipCompanyCode for Amazon's carrier text (4 digits since 2018-10; Amazon has no
/// code of its own, so its own deliveries are その他).
pub fn ship_company_code(carrier: &str) -> &'static str {
    match Carrier::recognise(carrier) {
        Carrier::Yamato => "1001",
        Carrier::Sagawa => "1002",
        Carrier::JapanPost => "1003",
        Carrier::Other => "1000",
    }
}

/// Yahoo's rules for ShipInvoiceNumber: half-width letters, digits and '-'; Yamato digits and
/// '-' within 14 bytes; Japan Post 11 to 13 characters without hyphens.
pub fn validate_invoice(company_code: &str, invoice: &str) -> Result<(), String> {
    if invoice.is_empty() || invoice.len() > 30 || !invoice.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("追跡番号「{invoice}」が半角英数字と「-」の30文字以内ではありません"));
    }
    match company_code {
        "1001" if invoice.len() > 14 || !invoice.chars().all(|c| c.is_ascii_digit() || c == '-') => {
            Err(format!("ヤマト運輸の追跡番号「{invoice}」は数字と「-」で14文字以内です"))
        }
        "1003" if !(11..=13).contains(&invoice.chars().filter(|c| *c != '-').count()) => {
            Err(format!("日本郵便の追跡番号「{invoice}」は「-」を除いて11〜13文字です"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(order_status: &str, read_only: &str, ship_status: &str, pay_method: &str, extra_ship: &str) -> Element {
        Element::parse(&format!(
            "<OrderInfo><OrderId>my-store-10000001</OrderId><OrderTime>2026-11-22T23:30:00+09:00</OrderTime>\
             <OrderStatus>{order_status}</OrderStatus><IsReadOnly>{read_only}</IsReadOnly><Suspect>0</Suspect><FraudHoldStatus>0</FraudHoldStatus>\
             <Pay><PayStatus>1</PayStatus><PayMethod>{pay_method}</PayMethod><PayMethodName><![CDATA[支払い]]></PayMethodName><BillLastName>山田</BillLastName><BillFirstName>花子</BillFirstName></Pay>\
             <Ship><ShipStatus>{ship_status}</ShipStatus><ShipLastName>山田</ShipLastName><ShipFirstName>花子</ShipFirstName><ShipZipCode>1000001</ShipZipCode>\
             <ShipPrefecture>東京都</ShipPrefecture><ShipCity>千代田区</ShipCity><ShipAddress1>千代田1-1</ShipAddress1><ShipAddress2>サンプルビル3F</ShipAddress2>{extra_ship}</Ship>\
             <Detail><TotalPrice>3980</TotalPrice></Detail>\
             <Item><LineId>1</LineId><ItemId>tea</ItemId><SubCode>tea-100</SubCode><Title>緑茶</Title><UnitPrice>3980</UnitPrice><Quantity>1</Quantity></Item></OrderInfo>"
        ))
        .unwrap()
    }

    #[test]
    fn premium_delivery_is_order_date_plus_two_or_one_in_japan_time() {
        let late_evening = parse_time("2026-11-22T23:30:00+09:00").unwrap();
        assert_eq!(premium_deadline("1", late_evening), NaiveDate::from_ymd_opt(2026, 11, 24));
        assert_eq!(premium_deadline("2", late_evening), NaiveDate::from_ymd_opt(2026, 11, 23));
        assert_eq!(premium_deadline("0", late_evening), None);
        assert_eq!(parse_time("20261122233000").unwrap(), late_evening);
    }

    #[test]
    fn details_carry_address_items_slot_and_deadline() {
        let d = details(&info("2", "0", "1", "payment_a1", "<ExcellentDelivery>1</ExcellentDelivery><ShipRequestDate>2026-11-25</ShipRequestDate><ShipRequestTime>14:00～16:00</ShipRequestTime>")).unwrap();
        assert_eq!(d.ship_to.postal_code, "100-0001");
        assert_eq!(d.items[0].marketplace_sku, "tea-100");
        assert_eq!(d.buyer.name, "山田 花子");
        assert_eq!(d.premium_deadline, NaiveDate::from_ymd_opt(2026, 11, 24));
        assert_eq!(
            d.delivery_request,
            Some(DeliveryRequest { date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(), slot: Some("14-16".into()) })
        );
        assert_eq!(slot_of("午前中"), Some("08-12".into()));
        // A date without a slot is any window Amazon offers that day, never one invented here.
        assert_eq!(slot_of("指定なし"), None);
        let date_only = details(&info(
            "2",
            "0",
            "1",
            "payment_a1",
            "<ShipRequestDate>2026-11-25</ShipRequestDate><ShipRequestTime></ShipRequestTime>",
        ))
        .unwrap();
        assert_eq!(
            date_only.delivery_request,
            Some(DeliveryRequest { date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(), slot: None })
        );
    }

    #[test]
    fn the_view_is_ready_only_out_of_the_cancel_window_processing_and_shippable() {
        assert_eq!(view(&info("2", "1", "1", "payment_a1", "")).ready_to_ship, None, "in the cancel window");
        assert!(view(&info("2", "0", "1", "payment_a1", "")).ready_to_ship.is_some());
        assert_eq!(view(&info("2", "0", "0", "payment_b1", "")).ready_to_ship, None, "prepaid, not paid");
        assert!(view(&info("3", "0", "1", "payment_a1", "")).hold.is_some(), "保留");
        assert!(view(&info("4", "0", "1", "payment_a1", "")).cancelled.is_some());
        assert!(view(&info("5", "0", "3", "payment_a1", "")).closed_before_first_sight, "完了 elsewhere");
        let plain = view(&info("2", "0", "1", "payment_a1", ""));
        assert_eq!((plain.order_number.as_str(), plain.confirmed.as_deref()), ("my-store-10000001", None));
    }

    #[test]
    fn given_an_order_in_the_cancel_window_when_it_leaves_it_then_verified() {
        use events::order::intake::decide;
        use events::order::testing::{given_nothing, Given};
        let key: events::OrderKey = "yahoo-my-store-10000001".parse().unwrap();
        let seen = given_nothing(&key)
            .when(|s| decide(s, &view(&info("2", "1", "1", "payment_a1", ""))))
            .then_expect_types(&["OrderDetected", "OrderDetailsRecorded"]);
        Given::state(seen).when(|s| decide(s, &view(&info("2", "0", "1", "payment_b1", "")))).then_expect_types(&[
            "OrderDetailsRecorded",
            "PaymentConfirmed",
            "OrderVerified",
        ]);
        let cod = given_nothing(&key).when(|s| decide(s, &view(&info("2", "0", "1", "payment_d1", ""))));
        assert!(
            matches!(&cod.events()[2], events::order::OrderEvent::OrderFailed(f) if f.message.contains("代金引換"))
        );
    }

    #[test]
    fn invoice_numbers_follow_yahoos_carrier_rules() {
        assert!(validate_invoice("1001", "1234-5678-9012").is_ok());
        assert!(validate_invoice("1001", "1234567890123456").is_err());
        assert!(validate_invoice("1003", "123456789012").is_ok());
        assert!(validate_invoice("1003", "1234").is_err());
        assert!(validate_invoice("1000", "TBA123<script>").is_err());
    }
}
