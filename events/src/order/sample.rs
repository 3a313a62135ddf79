//! Realistic order events for tests, benchmarks and the demo: one helper per lifecycle step.

use super::event::*;
use super::Status;
use crate::clock::jst;
use crate::ids::{FulfillmentOrderId, Marketplace, OrderKey, SellerSku};
use chrono::{NaiveDate, TimeZone};

pub fn details(buyer_name: &str, marketplace_sku: &str, quantity: u32) -> OrderDetails {
    OrderDetails {
        ordered_at: jst().with_ymd_and_hms(2026, 11, 22, 10, 15, 0).single().unwrap_or_else(|| unreachable!()),
        buyer: Buyer {
            name: buyer_name.to_owned(),
            email: Some("buyer@example.jp".into()),
            phone: Some("03-1234-5678".into()),
        },
        ship_to: Address {
            name: buyer_name.to_owned(),
            postal_code: "150-0001".into(),
            prefecture: "東京都".into(),
            city: "渋谷区".into(),
            line1: "神宮前1-2-3".into(),
            line2: Some("サンプルマンション101".into()),
            phone: Some("03-1234-5678".into()),
        },
        items: vec![OrderItem {
            marketplace_sku: marketplace_sku.to_owned(),
            title: "有機緑茶 100g".into(),
            quantity,
            unit_price_yen: 1_280,
        }],
        settlement: Settlement {
            code: "1".into(), name: "クレジットカード".into(), kind: SettlementKind::CreditCard
        },
        delivery_request: None,
        premium_deadline: None,
        total_yen: 1_280 * i64::from(quantity),
    }
}

pub fn detected(key: &OrderKey, via: DetectionSource) -> OrderEvent {
    OrderEvent::OrderDetected(OrderDetected {
        marketplace: key.marketplace,
        order_number: key.order_number.clone(),
        via,
        reference: None,
    })
}

pub fn received(key: &OrderKey) -> Vec<OrderEvent> {
    vec![detected(key, DetectionSource::Api), OrderEvent::OrderDetailsRecorded(details("山田 太郎", "tea-100", 2))]
}

pub fn verified(key: &OrderKey) -> Vec<OrderEvent> {
    let mut events = received(key);
    if key.marketplace == Marketplace::Rakuten {
        events.push(OrderEvent::AwaitingConfirmation(Reason { reason: "楽天の2段階確認".into() }));
        events.push(OrderEvent::MarketplaceConfirmed(Note::default()));
    }
    events.push(OrderEvent::OrderVerified(Note::default()));
    events
}

pub fn allotted() -> OrderEvent {
    OrderEvent::StockAllotted(StockAllotted {
        lines: vec![AllottedLine {
            marketplace_sku: "tea-100".into(),
            seller_sku: SellerSku("JP-TEA-100".into()),
            quantity: 2,
        }],
    })
}

pub fn mcf_created(key: &OrderKey) -> Vec<OrderEvent> {
    let id = FulfillmentOrderId::for_order(key);
    vec![
        OrderEvent::McfCreateIntended(McfCreateIntended {
            fulfillment_order_id: id.clone(),
            speed: ShippingSpeed::Standard,
            reason: "no delivery promise: Standard".into(),
            delivery_window: None,
            promise_missed: None,
        }),
        OrderEvent::McfOrderCreated(McfOrderCreated {
            fulfillment_order_id: id,
            speed: ShippingSpeed::Standard,
            adopted: false,
        }),
    ]
}

pub fn tracking() -> Tracking {
    Tracking { carrier: "ヤマト運輸".into(), tracking_number: "123456789012".into(), shipped_at: None }
}

/// The events that bring a new order to `status` by the usual path.
pub fn lifecycle_to(key: &OrderKey, status: Status) -> Vec<OrderEvent> {
    use Status as S;
    let mut events = match status {
        S::Received => return received(key),
        S::AwaitingConfirmation => {
            let mut events = received(key);
            events.push(OrderEvent::AwaitingConfirmation(Reason { reason: "楽天の2段階確認".into() }));
            return events;
        }
        S::Cancelled => {
            let mut events = received(key);
            events.push(OrderEvent::CancellationRequested(CancellationRequested {
                source: CancelSource::Marketplace,
                reason: "購入者都合".into(),
            }));
            return events;
        }
        _ => verified(key),
    };
    match status {
        S::Verified => {}
        S::OutOfStock => events.push(OrderEvent::OutOfStock(OutOfStock {
            short: vec![Shortage { seller_sku: SellerSku("JP-TEA-100".into()), needed: 2, available: 1 }],
        })),
        S::Error => events.push(OrderEvent::OrderFailed(OrderFailed {
            stage: "check".into(),
            code: Some("SKU_NOT_IN_MASTER".into()),
            message: "SKU tea-100 が master.xlsx（SKUMapping シート）にありません".into(),
        })),
        S::ShippingRequested => events.push(allotted()),
        S::DateUnavailable => {
            events.push(allotted());
            events.push(OrderEvent::DeliverySlotUnavailable(DeliverySlotUnavailable {
                requested: "2026-11-25 14-16".into(),
                offered: vec!["2026-11-25 18-20".into()],
            }));
        }
        S::Shipping => {
            events.push(allotted());
            events.extend(mcf_created(key));
        }
        S::Shipped => {
            events.push(allotted());
            events.extend(mcf_created(key));
            events.push(OrderEvent::TrackingRecorded(tracking()));
            events.push(OrderEvent::ShipmentReported(tracking()));
        }
        S::Received | S::AwaitingConfirmation | S::Cancelled => unreachable!("returned above"),
    }
    events
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| unreachable!("sample dates are valid"))
}
