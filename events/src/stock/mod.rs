//! Stock: what FBA said it can ship (`stock-fba`), and what each marketplace was told to sell
//! (`stock-rakuten`, `stock-yahoo`). Every reading and every write is an event, so the stock
//! page, the plan and an incident review read the same facts.

use serde::{Deserialize, Serialize};

/// Where a listing's stock lives at a marketplace: RMS's (商品管理番号, SKU管理番号), Yahoo's
/// 商品コード[:個別商品コード]. Checked as the marketplaces check them (stock-apis.md §1.2, §2.2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "marketplace", rename_all = "lowercase")]
pub enum StockKey {
    Rakuten { manage_number: String, variant_id: String },
    Yahoo { item_code: String },
}

fn rms_key_part(what: &str, value: &str) -> Result<(), String> {
    if value.len() > 32 {
        return Err(format!("{what}は32バイトまでです"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("{what}に使えるのは英数字、_ と - だけです"));
    }
    Ok(())
}

impl StockKey {
    /// RMS lowercases the manageNumber itself; the variantId is case-sensitive.
    pub fn rakuten(manage_number: &str, variant_id: &str) -> Result<Self, String> {
        rms_key_part("商品管理番号", manage_number)?;
        rms_key_part("SKU管理番号", variant_id)?;
        Ok(Self::Rakuten { manage_number: manage_number.to_ascii_lowercase(), variant_id: variant_id.to_owned() })
    }

    /// `item_code` or `item_code:sub_code`, each part 1–99 characters of letters, digits, `_`, `-`.
    pub fn yahoo(code: &str) -> Result<Self, String> {
        let parts: Vec<&str> = code.split(':').collect();
        if parts.len() > 2 {
            return Err("「商品コード:個別商品コード」の形で書いてください".into());
        }
        for part in &parts {
            if part.is_empty() || part.chars().count() > 99 {
                return Err("商品コードと個別商品コードはそれぞれ1〜99文字です".into());
            }
            if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err("使えるのは英数字、_ と - だけです".into());
            }
        }
        Ok(Self::Yahoo { item_code: code.to_owned() })
    }

    pub fn marketplace(&self) -> crate::ids::Marketplace {
        match self {
            Self::Rakuten { .. } => crate::ids::Marketplace::Rakuten,
            Self::Yahoo { .. } => crate::ids::Marketplace::Yahoo,
        }
    }
}

impl std::fmt::Display for StockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rakuten { manage_number, variant_id } => write!(f, "{manage_number}/{variant_id}"),
            Self::Yahoo { item_code } => f.write_str(item_code),
        }
    }
}

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

/// What each marketplace was told: `stock-rakuten`, `stock-yahoo`.
pub fn published_stream(marketplace: crate::ids::Marketplace) -> String {
    format!("stock-{}", marketplace.as_str())
}

/// The sync as a whole: brakes held and confirmed, runs finished.
pub const STOCK_SYNC_STREAM: &str = "stock-sync";

/// One listing's line of a stock write: always an absolute quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRow {
    pub marketplace_sku: String,
    pub key: StockKey,
    pub quantity: u32,
}

/// A stock write about to be sent (one batch). Without an outcome it was sent or not: the
/// marketplace's stock is read back before anything is written again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockWriteIntended {
    pub write_id: String,
    pub rows: Vec<StockRow>,
}

/// A row the marketplace did not show as written, and why (in the operator's words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRowProblem {
    pub marketplace_sku: String,
    pub key: StockKey,
    pub problem: String,
    /// The quantity simply did not take (another value shows): written again next run. False
    /// for a listing set up wrong (an unknown key, no stock kept, orderable at 0): written again
    /// only when its quantity changes, and shown until it is fixed.
    #[serde(default)]
    pub write_again: bool,
}

/// The batch's outcome, from reading the marketplace's stock back: the listings that show the
/// quantity written, and those that do not (an unknown key, another quantity, a listing still
/// orderable at 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockWriteDone {
    pub write_id: String,
    pub verified: Vec<String>,
    #[serde(default)]
    pub problems: Vec<StockRowProblem>,
    /// How it was known: the write and its read-back, or a read-back after a lost answer.
    #[serde(default)]
    pub note: String,
}

/// The marketplace refused the batch (its code and message): nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockWriteFailed {
    pub write_id: String,
    #[serde(default)]
    pub code: Option<String>,
    pub message: String,
}

/// A plan the brakes stopped: not published until an operator confirms it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSyncHeld {
    /// Each brake, in the operator's words.
    pub reasons: Vec<String>,
}

/// An operator looked at the held plan and let it be published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSyncConfirmed {
    pub by: String,
}

/// A sync run's result: rows written and verified, rows with a problem, marketplaces that could
/// not be written (an outage: everything is written again once they answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSyncFinished {
    pub written: u32,
    pub unchanged: u32,
    pub problems: u32,
    #[serde(default)]
    pub unavailable: Vec<String>,
}

crate::event_enum! {
    /// What happens in the `stock-*` streams.
    pub enum StockEvent {
        FbaStockRead(FbaStockRead) = 1,
        StockWriteIntended(StockWriteIntended) = 1,
        StockWriteDone(StockWriteDone) = 1,
        StockWriteFailed(StockWriteFailed) = 1,
        StockSyncHeld(StockSyncHeld) = 1,
        StockSyncConfirmed(StockSyncConfirmed) = 1,
        StockSyncFinished(StockSyncFinished) = 1,
    }
}

pub mod plan;
pub mod publish;
