//! Stock: what FBA said it can ship (`stock-fba`), and what each marketplace was told to sell
//! (`stock-rakuten`, `stock-yahoo`). Every reading and every write is an event, so the stock
//! page, the plan and an incident review read the same facts.

use serde::{Deserialize, Serialize};

/// FBA's readings.
pub const FBA_STOCK_STREAM: &str = "stock-fba";

/// One seller SKU's fulfillable quantity as getInventorySummaries gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FbaLevel {
    pub seller_sku: String,
    pub fulfillable: u32,
}

/// A reading of FBA inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FbaStockRead {
    /// Who read: `check` (the SKUs of the orders it checked) or `stock` (every SKU of the master).
    pub by: String,
    /// Whether every SKU of the master was read (a reading the stock plan may rely on whole).
    pub whole: bool,
    pub levels: Vec<FbaLevel>,
}

crate::event_enum! {
    /// What happens in the `stock-*` streams.
    pub enum StockEvent {
        FbaStockRead(FbaStockRead) = 1,
    }
}

pub mod plan;
