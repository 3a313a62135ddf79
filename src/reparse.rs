//! `replay reparse`: today's parsers over the raw inputs the ledger kept (emails, RMS JSON,
//! Yahoo XML), reporting where today's reading differs from what was recorded. It only reads:
//! no event is appended and no outside system is called.

use crate::mail::parse::parse;
use crate::transport::xml::Element;
use events::mailbox::MailboxEvent;
use events::order::{order_upcasters, OrderEvent};
use events::{EventStore, Marketplace, OrderKey, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub stream: String,
    pub position: i64,
    pub what: &'static str,
    pub recorded: serde_json::Value,
    pub today: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReparseReport {
    pub mails: usize,
    pub orders: usize,
    pub differences: Vec<Difference>,
}

/// Why a re-parse could not finish: the ledger could not be read, or holds what this build
/// cannot fold.
#[derive(Debug, thiserror::Error)]
pub enum ReparseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unfoldable(#[from] events::LocatedDecodeError),
}

fn json(value: &impl Serialize) -> serde_json::Value {
    // Ledger types are plain data: they always encode.
    serde_json::to_value(value).unwrap_or_else(|e| unreachable!("ledger types encode: {e}"))
}

pub fn reparse(store: &EventStore) -> Result<ReparseReport, ReparseError> {
    let mut report = ReparseReport::default();
    let upcasters = order_upcasters();
    for stream in store.streams_in_category("mailbox")? {
        for event in store.read_stream(&stream)?.into_iter().filter(|e| e.event_type == "MailReceived") {
            let Some((_, raw)) = event.blob.as_deref().map(|b| store.get_blob(b)).transpose()?.flatten() else {
                continue;
            };
            let MailboxEvent::MailReceived(recorded) = MailboxEvent::decode(&event, &upcasters)? else { continue };
            report.mails += 1;
            let today = parse(&raw);
            if recorded.classification != today.classification {
                report.differences.push(Difference {
                    stream: stream.clone(),
                    position: event.position,
                    what: "mail classification",
                    recorded: json(&recorded.classification),
                    today: json(&today.classification),
                });
            }
        }
    }
    for stream in store.streams_in_category("order")? {
        let Ok(key) = OrderKey::from_stream(&stream) else { continue };
        for event in store.read_stream(&stream)?.into_iter().filter(|e| e.event_type == "OrderDetailsRecorded") {
            let Some((content_type, raw)) = event.blob.as_deref().map(|b| store.get_blob(b)).transpose()?.flatten()
            else {
                continue;
            };
            let OrderEvent::OrderDetailsRecorded(recorded) = OrderEvent::decode(&event, &upcasters)? else {
                continue;
            };
            report.orders += 1;
            let today = match (key.marketplace, content_type.as_str()) {
                (Marketplace::Rakuten, "application/json") => {
                    serde_json::from_slice::<crate::rakuten::model::OrderModel>(&raw)
                        .map_err(|e| e.to_string())
                        .and_then(|model| crate::rakuten::mapping::details(&model))
                }
                (Marketplace::Yahoo, "application/xml") => Element::parse(&String::from_utf8_lossy(&raw))
                    .map_err(|e| e.to_string())
                    .and_then(|root| {
                        root.at("Result/OrderInfo").cloned().ok_or_else(|| "no Result/OrderInfo".to_owned())
                    })
                    .and_then(|info| crate::yahoo::mapping::details(&info)),
                _ => continue,
            };
            let recorded_json = json(&recorded);
            let today_json = match &today {
                Ok(details) => json(details),
                Err(reason) => serde_json::json!({"unreadable": reason}),
            };
            if recorded_json != today_json {
                report.differences.push(Difference {
                    stream: stream.clone(),
                    position: event.position,
                    what: "order details",
                    recorded: recorded_json,
                    today: today_json,
                });
            }
        }
    }
    Ok(report)
}
