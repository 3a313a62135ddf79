//! notify (出荷通知): each marketplace is told the carrier and tracking number of its shipped
//! orders (and Yahoo's are completed); every write is intended, then done or refused, and a
//! lost answer is read back before anything is sent again.

pub mod rakuten;
pub mod yahoo;

use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};
use events::Marketplace;

pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let mut reports = Vec::new();
    for marketplace in Marketplace::ALL {
        reports.extend(marketplace_orders(ctx, marketplace).await?);
    }
    Ok(reports)
}

/// One marketplace told of its shipped orders, when the shop sells there.
pub async fn marketplace_orders(
    ctx: &mut StageContext<'_>,
    marketplace: Marketplace,
) -> Result<Option<StageReport>, StageError> {
    match (marketplace, &ctx.services.rakuten, &ctx.services.yahoo) {
        (Marketplace::Rakuten, Some(client), _) => Ok(Some(rakuten::notify(ctx.ledger, client, &mut ctx.steps).await?)),
        (Marketplace::Yahoo, _, Some(client)) => Ok(Some(yahoo::notify(ctx.ledger, client, &mut ctx.steps).await?)),
        _ => Ok(None),
    }
}
