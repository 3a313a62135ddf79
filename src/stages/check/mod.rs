//! check: VERIFIED orders -> map SKUs through master.xlsx -> read FBA stock (batched) ->
//! SHIPPING_REQUESTED, OUT_OF_STOCK (naming what is short) or ERROR (SKU not in the master).

pub mod allotment;

pub use crate::stages::sku_master::SkuMaster;

use crate::sku_master::map_lines;
use crate::stages::context::StageContext;
use crate::stages::orders::{order_keys_in, record, record_at, state_in};
use crate::stages::report::{StageError, StageReport};
use allotment::{allot, Allotment, Demand};
use events::order::{AllottedLine, OrderEvent, OrderFailed, OutOfStock, Status, StockAllotted};
use events::SellerSku;
use std::collections::{HashMap, HashSet};

pub const STAGE: &str = "check";

pub async fn run(ctx: &mut StageContext<'_>) -> Result<StageReport, StageError> {
    let mut report = StageReport::new(STAGE);
    let candidates = order_keys_in(ctx.ledger, Status::Verified)?;
    if candidates.is_empty() {
        return Ok(report);
    }
    let mapping = ctx.services.sku_master.mapping(ctx.ledger)?;
    let mut demands = Vec::new();
    // The version each demand was decided on: the allotment is recorded against it.
    let mut versions = HashMap::new();
    for key in candidates {
        if !ctx.steps.proceed(ctx.ledger, &mut report)? {
            return Ok(report);
        }
        let Some(state) = state_in(ctx.ledger, &key, Status::Verified)? else { continue };
        report.examined += 1;
        if let Some(hold) = &state.hold {
            tracing::info!(order = %key, hold, "held by the marketplace; not checked");
            report.deferred += 1;
            continue;
        }
        let items = state.details.as_ref().map(|d| d.items.as_slice()).unwrap_or_default();
        match map_lines(&mapping, items) {
            Ok(lines) => {
                versions.insert(key.clone(), state.version);
                demands.push(Demand { order: key, lines });
            }
            Err(missing) => {
                let message = format!(
                    "SKU {} が使用中のSKUマスター {} の SKUMapping シートにありません。追加してから注文を VERIFIED にしてください",
                    missing.join(", "),
                    ctx.services.sku_master.describe_in_use()
                );
                tracing::warn!(order = %key, %message, "SKU mapping error");
                let failed = OrderEvent::OrderFailed(OrderFailed {
                    stage: STAGE.into(),
                    code: Some("SKU_NOT_IN_MASTER".into()),
                    message,
                });
                if record(ctx.ledger, &key, &state, STAGE, vec![failed])? {
                    report.needs_operator += 1;
                } else {
                    report.deferred += 1;
                }
            }
        }
    }
    if demands.is_empty() {
        return Ok(report);
    }
    let available = available_stock(ctx, &demands).await?;
    for (key, allotment) in allot(&demands, &available) {
        if !ctx.steps.proceed(ctx.ledger, &mut report)? {
            break;
        }
        let Some(version) = versions.get(&key).copied() else { continue };
        let lines = demands.iter().find(|d| d.order == key).map(|d| d.lines.clone()).unwrap_or_default();
        let (event, to_operator) = match allotment {
            Allotment::Allotted => {
                tracing::info!(order = %key, "stock allotted: SHIPPING_REQUESTED");
                let lines = lines
                    .into_iter()
                    .map(|l| AllottedLine {
                        marketplace_sku: l.marketplace_sku,
                        seller_sku: l.seller_sku,
                        quantity: l.quantity,
                    })
                    .collect();
                (OrderEvent::StockAllotted(StockAllotted { lines }), false)
            }
            Allotment::Short(short) => {
                tracing::info!(order = %key, short = ?short, "out of stock");
                (OrderEvent::OutOfStock(OutOfStock { short }), true)
            }
        };
        match record_at(ctx.ledger, &key, version, STAGE, vec![event])? {
            false => report.deferred += 1,
            true if to_operator => report.needs_operator += 1,
            true => report.advanced += 1,
        }
    }
    Ok(report)
}

/// Amazon's fulfillable stock less what SHIPPING_REQUESTED and DATE_UNAVAILABLE orders hold
/// but Amazon has not reserved yet (no MCF order for them).
async fn available_stock(
    ctx: &mut StageContext<'_>,
    demands: &[Demand],
) -> Result<HashMap<SellerSku, u32>, StageError> {
    let committed = allotted_not_reserved(ctx.ledger)?;
    let skus: Vec<SellerSku> = demands
        .iter()
        .flat_map(|d| d.lines.iter().map(|l| l.seller_sku.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let levels = ctx.services.amazon.inventory(&skus).await?;
    record_reading(ctx.ledger, &skus, &levels)?;
    Ok(skus
        .into_iter()
        .map(|sku| {
            let fulfillable = levels.get(&sku).map_or(0, |l| l.fulfillable);
            let held = committed.get(&sku).copied().unwrap_or(0);
            (sku, fulfillable.saturating_sub(held))
        })
        .collect())
}

/// Units per seller SKU that SHIPPING_REQUESTED and DATE_UNAVAILABLE orders hold but Amazon
/// has not reserved yet (no MCF order may exist for them): FBA still counts them fulfillable.
pub fn allotted_not_reserved(
    ledger: &projections::Ledger,
) -> Result<HashMap<SellerSku, u32>, projections::LedgerError> {
    let mut committed: HashMap<SellerSku, u32> = HashMap::new();
    for status in [Status::ShippingRequested, Status::DateUnavailable] {
        for key in order_keys_in(ledger, status)? {
            let Some(state) = state_in(ledger, &key, status)? else { continue };
            if state.mcf_order_may_exist() {
                continue;
            }
            for line in &state.allotted {
                *committed.entry(line.seller_sku.clone()).or_default() += line.quantity;
            }
        }
    }
    Ok(committed)
}

/// What FBA said, kept in `stock-fba` (the SKU master page, the stock page and the stock plan
/// read it from there).
fn record_reading(
    ledger: &mut projections::Ledger,
    skus: &[SellerSku],
    levels: &HashMap<SellerSku, crate::amazon::InventoryLevel>,
) -> Result<(), projections::LedgerError> {
    use events::envelope::{Actor, ExpectedVersion, Meta};
    use events::stock::{FbaLevel, FbaStockRead, StockEvent, FBA_STOCK_STREAM};
    let mut levels: Vec<FbaLevel> = skus
        .iter()
        .map(|sku| FbaLevel { seller_sku: sku.to_string(), fulfillable: levels.get(sku).map_or(0, |l| l.fulfillable) })
        .collect();
    levels.sort_by(|a, b| a.seller_sku.cmp(&b.seller_sku));
    let read = StockEvent::FbaStockRead(FbaStockRead { by: STAGE.into(), whole: false, levels });
    ledger.append(FBA_STOCK_STREAM, ExpectedVersion::Any, &[read.to_new_event(Meta::by(Actor::reactor(STAGE)))])?;
    Ok(())
}
