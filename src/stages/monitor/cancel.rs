//! monitor (cancellations): an order whose cancellation waits on Amazon (it was SHIPPING, or
//! an MCF create was in doubt) is cancelled at Amazon first. Amazon refuses once picking has
//! started: the order goes to ERROR telling the operator the parcel is on its way.

use crate::amazon::AmazonError;
use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};
use events::order::{McfOrderCancelled, OrderEvent, Reason};
use events::{FulfillmentOrderId, OrderKey};
use projections::queries;

pub const STAGE: &str = "monitor";

pub async fn run(ctx: &mut StageContext<'_>) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("cancel");
    for order in
        queries::orders_with_pending_cancel(ctx.ledger.store().connection()).map_err(projections::LedgerError::from)?
    {
        if !ctx.steps.proceed(ctx.ledger, &mut report)? {
            break;
        }
        let Ok(key) = order.parse::<OrderKey>() else { continue };
        let state = ctx.ledger.order_state(&key)?;
        if state.cancel_requested.is_none() {
            continue;
        }
        report.examined += 1;
        let id = state.mcf_order_id.clone().unwrap_or_else(|| FulfillmentOrderId::for_order(&key));
        let event = match ctx.services.amazon.cancel(id.as_str()).await {
            Ok(()) => {
                tracing::info!(order = %key, mcf = %id, "MCF order cancelled: CANCELLED");
                OrderEvent::McfOrderCancelled(McfOrderCancelled { fulfillment_order_id: id, never_created: false })
            }
            Err(AmazonError::NotFound { .. }) => {
                tracing::info!(order = %key, mcf = %id, "Amazon never had the MCF order: CANCELLED");
                OrderEvent::McfOrderCancelled(McfOrderCancelled { fulfillment_order_id: id, never_created: true })
            }
            Err(AmazonError::Api { status: 400, message, .. }) => {
                tracing::warn!(order = %key, mcf = %id, message, "Amazon refused the cancellation");
                // Amazon's own words; the order's problem text says what the operator does.
                OrderEvent::McfCancelRefused(Reason { reason: format!("{message} ({id})") })
            }
            Err(e) => {
                tracing::warn!(order = %key, mcf = %id, error = %e, "cancel not confirmed; next cycle");
                crate::stages::orders::amazon_unread(ctx.ledger, &mut report, &e)?;
                report.deferred += 1;
                continue;
            }
        };
        let to_operator = matches!(event, OrderEvent::McfCancelRefused(_));
        crate::stages::orders::record_outcome(ctx.ledger, &key, STAGE, vec![event])?;
        if to_operator {
            report.needs_operator += 1;
        } else {
            report.advanced += 1;
        }
    }
    Ok(report)
}
