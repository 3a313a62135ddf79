//! Yahoo at monitor: re-read the open orders that may have changed (verification, holds,
//! OrderStatus 4 cancels, at Amazon too when it ships).

use crate::stages::intake::record_yahoo_order;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{Unread, YAHOO_POLL_STREAM};
use crate::stages::steps::Steps;
use crate::yahoo::YahooClient;
use events::order::Status;
use events::{Marketplace, OrderKey};
use projections::queries::{self, OrderFilter};
use projections::{Ledger, LedgerError};
use std::collections::HashMap;

/// Re-reads the open Yahoo orders that may have changed: one orderList over their order times
/// shows every one's OrderStatus, and orderInfo (one call a second) reads only those not yet
/// verified, held, no longer 処理中 (2), or missing from the list. An unchanged order costs
/// nothing, so a shop with hundreds of open orders is watched in a few calls.
pub async fn watch(
    ledger: &mut Ledger,
    client: &YahooClient,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("monitor:yahoo");
    let filter =
        |status| OrderFilter { status: Some(status), marketplace: Some(Marketplace::Yahoo), ..Default::default() };
    let mut open = Vec::new();
    for status in Status::OPEN {
        open.extend(queries::list_orders(ledger.store().connection(), &filter(status)).map_err(LedgerError::from)?);
    }
    if open.is_empty() {
        return Ok(report);
    }
    let now = ledger.store().now();
    let oldest = open
        .iter()
        .filter_map(|row| row.ordered_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
        .map(|t| t.with_timezone(&chrono::Utc))
        .min()
        .unwrap_or(now);
    let listed: HashMap<String, String> =
        match client.orders_placed_between(oldest - chrono::Duration::minutes(1), now).await {
            Ok(listed) => listed.into_iter().map(|o| (o.order_id, o.order_status)).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot list the open Yahoo orders; next cycle");
                report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
                report.deferred += open.len();
                return Ok(report);
            }
        };
    let keys: Vec<OrderKey> = open.into_iter().filter_map(|row| row.order.parse().ok()).collect();
    for key in keys {
        if !steps.proceed(ledger, &mut report)? {
            break;
        }
        report.examined += 1;
        let state = ledger.order_state(&key)?;
        let unchanged = listed.get(&key.order_number).is_some_and(|status| status == "2")
            && state.status != Some(Status::Received)
            && state.hold.is_none();
        if unchanged {
            continue;
        }
        match client.order_info(&key.order_number).await {
            Ok((info, raw)) => {
                if record_yahoo_order(ledger, &info, &raw, "monitor")?.appended {
                    report.advanced += 1;
                }
            }
            Err(error) => {
                tracing::warn!(order = %key, %error, "cannot re-read the Yahoo order; next cycle");
                report.source_failed(YAHOO_POLL_STREAM, &Unread::of(&error));
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}
