//! monitor (キャンセル監視と出荷検知): every open order is read again at its marketplace
//! (verification, holds, cancellations), pending cancellations are sent to Amazon, and Amazon's
//! shipments bring their tracking numbers.

pub mod cancel;
pub mod rakuten;
pub mod tracking;
pub mod yahoo;

use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};
use events::Marketplace;

pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let mut reports = run_marketplaces(ctx).await?;
    reports.extend(run_amazon(ctx).await?);
    Ok(reports)
}

/// The marketplaces' side: every open order read again.
pub async fn run_marketplaces(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let mut reports = Vec::new();
    for marketplace in Marketplace::ALL {
        reports.extend(marketplace_orders(ctx, marketplace).await?);
    }
    Ok(reports)
}

/// One marketplace's open orders read again, when the shop sells there.
pub async fn marketplace_orders(
    ctx: &mut StageContext<'_>,
    marketplace: Marketplace,
) -> Result<Option<StageReport>, StageError> {
    match (marketplace, &ctx.services.rakuten, &ctx.services.yahoo) {
        (Marketplace::Rakuten, Some(client), _) => Ok(Some(rakuten::watch(ctx.ledger, client, &mut ctx.steps).await?)),
        (Marketplace::Yahoo, _, Some(client)) => Ok(Some(yahoo::watch(ctx.ledger, client, &mut ctx.steps).await?)),
        _ => Ok(None),
    }
}

/// Amazon's side: pending cancellations sent, shipments' tracking numbers read.
pub async fn run_amazon(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    Ok(vec![cancel::run(ctx).await?, tracking::run(ctx).await?])
}
