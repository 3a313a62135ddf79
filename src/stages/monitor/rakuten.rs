//! Rakuten at monitor: re-read every open order: 300 verifies, 800/900 cancels (at Amazon too
//! when it ships), RMS's flags hold it.

use crate::rakuten::{RakutenClient, GET_ORDER_LIMIT};
use crate::stages::intake::record_rakuten_order;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{Unread, RAKUTEN_POLL_STREAM};
use crate::stages::steps::Steps;
use events::order::Status;
use events::Marketplace;
use projections::Ledger;

/// Re-reads every open Rakuten order: payment and processing (-> VERIFIED), holds,
/// cancellations (-> CANCELLED, or a pending MCF cancel when shipping).
pub async fn watch(
    ledger: &mut Ledger,
    client: &RakutenClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("monitor:rakuten");
    let open = crate::stages::orders::marketplace_keys_in(ledger, Marketplace::Rakuten, &Status::OPEN, |_| true)?;
    let numbers: Vec<String> = open.into_iter().map(|k| k.order_number).collect();
    // One getOrder page at a time, recorded before the next is read: memory stays one page.
    for (index, page) in numbers.chunks(GET_ORDER_LIMIT).enumerate() {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        let orders = match client.get_orders(page).await {
            Ok(orders) => orders,
            Err(error) => {
                tracing::warn!(%error, "cannot re-read open Rakuten orders; next cycle");
                report.source_failed(RAKUTEN_POLL_STREAM, &Unread::of(&error));
                report.deferred += numbers.len() - index * GET_ORDER_LIMIT;
                return Ok(report);
            }
        };
        for raw in &orders {
            report.examined += 1;
            if record_rakuten_order(ledger, raw, false, "monitor")?.appended {
                report.advanced += 1;
            }
        }
    }
    Ok(report)
}
