//! What every marketplace's intake decides the same way (the adapters' mappings call these).

use events::order::{Settlement, SettlementKind};

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
