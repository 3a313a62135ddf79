//! stock (在庫連携): what each marketplace listing can offer, from FBA's last reading less what
//! open orders hold, the safety buffer and the brakes (`events::stock::plan`). This is what
//! `mcf-ledger stock plan` shows, read from the ledger and the SKU master only: no outside call.
//! Publishing it to RMS and Yahoo each cycle (STOCK_SYNC) is `sync`.

mod marketplaces;
pub mod sync;

use crate::sku_master::{parse_workbook, SkuMasterError};
use events::stock::plan::{brakes, plan, Brake, Component, Listing, PlanInputs, PlanRow};
use events::Marketplace;
use projections::LedgerError;
use std::collections::BTreeSet;
use std::path::Path;

pub use crate::config::StockSettings;

/// Where the master has a listing's stock at `marketplace` now.
pub(crate) fn current_key(
    mapping: &crate::sku_master::SkuMapping,
    marketplace_sku: &str,
    marketplace: Marketplace,
) -> Option<events::stock::StockKey> {
    mapping.get(marketplace_sku)?.stock_keys.iter().find(|k| k.marketplace() == marketplace).cloned()
}

/// The master's rows as listings to plan.
pub(crate) fn listings(mapping: &crate::sku_master::SkuMapping) -> Vec<Listing> {
    mapping
        .entries
        .iter()
        .map(|(marketplace_sku, mapped)| Listing {
            marketplace_sku: marketplace_sku.clone(),
            components: mapped
                .components
                .iter()
                .map(|c| Component { seller_sku: c.seller_sku.to_string(), units_per_item: c.multiplier })
                .collect(),
            buffer: mapped.buffer,
            keys: mapped.stock_keys.clone(),
        })
        .collect()
}

/// The plan as of the ledger's last FBA readings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StockPlan {
    /// The workbook the listings come from, as an operator finds it again.
    pub master: String,
    /// When FBA was last read (RFC 3339), for any SKU; None when never.
    pub last_reading: Option<String>,
    pub rows: Vec<PlanRow>,
    pub brakes: Vec<Brake>,
}

#[derive(Debug, thiserror::Error)]
pub enum StockPlanError {
    #[error("cannot read the SKU master {path}: {reason}")]
    MasterUnreadable { path: String, reason: String },
    #[error(transparent)]
    Master(#[from] SkuMasterError),
    #[error("reading the ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("reading FBA's last stock: {0}")]
    Store(#[from] events::StoreError),
}

/// Plans from the SKU master in use (the one the ledger recorded, else the file at `master`)
/// and what the ledger knows: FBA's last reading of each
/// seller SKU (by `check` so far) and the units open orders hold.
pub fn current_plan(
    ledger: &projections::Ledger,
    master: &Path,
    marketplaces: Vec<Marketplace>,
    settings: StockSettings,
) -> Result<StockPlan, StockPlanError> {
    // The workbook `check` uses (recorded in the ledger); the file only before any was recorded.
    let mapping = match crate::stages::sku_master::last_good(ledger)? {
        Some(mapping) => mapping,
        None => {
            let path = master.display().to_string();
            let bytes = std::fs::read(master)
                .map_err(|e| StockPlanError::MasterUnreadable { path: path.clone(), reason: e.to_string() })?;
            parse_workbook(&bytes, &path)?
        }
    };
    let path = mapping.describe();
    let listings = listings(&mapping);
    let readings = projections::stock::fba_stock(ledger.store().connection())?;
    let fba = readings.iter().map(|r| (r.seller_sku.clone(), r.fulfillable)).collect();
    let allotted = crate::stages::check::allotted_not_reserved(ledger)?
        .into_iter()
        .map(|(sku, units)| (sku.to_string(), units))
        .collect();
    let mut published = std::collections::BTreeMap::new();
    for marketplace in &marketplaces {
        let key_now = |sku: &str| current_key(&mapping, sku, *marketplace);
        for (sku, quantity) in sync::published(ledger, *marketplace)?.told_under(key_now) {
            published.insert((*marketplace, sku), quantity);
        }
    }
    let inputs = PlanInputs { listings, marketplaces, fba, allotted, default_buffer: settings.buffer, published };
    let rows = plan(&inputs);
    // The missing-SKU brake compares whole readings: the stock stage's (check reads SKU by SKU).
    let read: BTreeSet<String> = readings.iter().map(|r| r.seller_sku.clone()).collect();
    let brakes = brakes(&rows, &read, &read, settings.brake_percent);
    Ok(StockPlan { master: path, last_reading: readings.iter().map(|r| r.read_at.clone()).max(), rows, brakes })
}
