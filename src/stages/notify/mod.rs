//! notify (出荷通知): each marketplace is told the carrier and tracking number of its shipped
//! orders (and Yahoo's are completed); every write is intended, then done or refused, and a
//! lost answer is read back before anything is sent again.

pub mod rakuten;
pub mod yahoo;

use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};

pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let mut reports = Vec::new();
    if let Some(client) = &ctx.services.rakuten {
        reports.push(rakuten::notify(ctx.ledger, client, &mut ctx.steps).await?);
    }
    if let Some(client) = &ctx.services.yahoo {
        reports.push(yahoo::notify(ctx.ledger, client, &mut ctx.steps).await?);
    }
    Ok(reports)
}
