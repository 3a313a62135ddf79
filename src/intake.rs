//! What every marketplace's intake decides the same way (the adapters' mappings call these).

use events::order::{Note, OrderEvent, OrderFailed, Reason, Settlement, SettlementKind};

/// The marketplace's hold flag against the ledger's: a new or changed hold, a release, or nothing.
pub fn hold_change(current: Option<&String>, flagged: Option<String>, released: &str) -> Option<OrderEvent> {
    match (flagged, current) {
        (Some(reason), current) if current != Some(&reason) => Some(OrderEvent::OrderHeld(Reason { reason })),
        (None, Some(_)) => Some(OrderEvent::HoldReleased(Note { note: released.to_owned() })),
        _ => None,
    }
}

/// An order the receive stage cannot take as it is, with the reason.
pub fn failed_at_receive(code: &str, message: String) -> OrderEvent {
    OrderEvent::OrderFailed(OrderFailed { stage: "receive".into(), code: Some(code.to_owned()), message })
}

/// Why an order paid this way cannot go through MCF by itself (`where_to_check`: the
/// marketplace's admin screen, named in the message).
pub fn settlement_problem(settlement: &Settlement, where_to_check: &str) -> Option<String> {
    match settlement.kind {
        SettlementKind::Other => Some(format!(
            "unknown payment method {} ({}): check the payment in {where_to_check}, then set VERIFIED",
            settlement.code, settlement.name
        )),
        SettlementKind::CashOnDelivery => {
            Some("代金引換 (cash on delivery): Amazon MCF cannot collect payment; ship this order by hand".into())
        }
        SettlementKind::CreditCard | SettlementKind::Prepaid => None,
    }
}
