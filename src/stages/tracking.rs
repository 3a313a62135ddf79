//! monitor (Amazon side): SHIPPING orders are looked up at Amazon; a package with a tracking
//! number is recorded (the marketplace's notify stage writes it back); Unfulfillable, Invalid
//! or an Amazon-side cancellation puts the order in ERROR with the reason.
//!
//! listAllFulfillmentOrders (50 per call) finds which orders changed since the oldest open one
//! was created; only those are read one by one, which keeps the calls within Amazon's rate.

use super::{orders_in, record, StageContext, StageError, StageReport};
use crate::amazon::model::OrderStatus;
use crate::amazon::AmazonError;
use events::order::{OrderEvent, OrderFailed, Status, Tracking};
use events::FulfillmentOrderId;
use std::collections::HashMap;

pub const STAGE: &str = "monitor";

pub async fn run(ctx: &mut StageContext<'_>) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("tracking");
    let open: Vec<_> = orders_in(ctx.ledger, Status::Shipping)?
        .into_iter()
        .filter(|(_, state)| state.tracking.is_none() && state.cancel_requested.is_none())
        .collect();
    if open.is_empty() {
        return Ok(report);
    }
    // Every MCF order was created after its marketplace order was first recorded.
    let oldest = open.iter().filter_map(|(_, s)| s.created_at).min().unwrap_or_else(chrono::Utc::now);
    let changed: HashMap<String, OrderStatus> =
        ctx.amazon.list_since(oldest - chrono::Duration::hours(1)).await?.into_iter().collect();
    for (key, state) in open {
        report.examined += 1;
        let id = state.mcf_order_id.clone().unwrap_or_else(|| FulfillmentOrderId::for_order(&key));
        let status = changed.get(id.as_str());
        let worth_reading = matches!(
            status,
            None | Some(
                OrderStatus::Complete
                    | OrderStatus::CompletePartialled
                    | OrderStatus::Unfulfillable
                    | OrderStatus::Invalid
                    | OrderStatus::Cancelled
                    | OrderStatus::Unknown(_)
            )
        );
        // Listed as still in progress: nothing to read yet. Absent from the list: read it, to find out.
        if !worth_reading {
            report.deferred += 1;
            continue;
        }
        let order = match ctx.amazon.get(id.as_str()).await {
            Ok(order) => order,
            Err(AmazonError::NotFound { .. }) => {
                let failed = OrderFailed {
                    stage: STAGE.into(),
                    code: Some("NotFound".into()),
                    message: format!("Amazon has no MCF order {id}"),
                };
                if record(ctx.ledger, &key, &state, STAGE, vec![OrderEvent::OrderFailed(failed)])? {
                    report.needs_operator += 1;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(order = %key, mcf = %id, error = %e, "cannot read the MCF order; next cycle");
                report.deferred += 1;
                continue;
            }
        };
        if let Some(package) = order.packages.first() {
            tracing::info!(order = %key, mcf = %id, carrier = package.carrier_code, "tracking number received");
            let tracking = Tracking {
                carrier: package.carrier_code.clone(),
                tracking_number: package.tracking_number.clone(),
                shipped_at: package.shipped_at,
            };
            if record(ctx.ledger, &key, &state, STAGE, vec![OrderEvent::TrackingRecorded(tracking)])? {
                report.advanced += 1;
            }
            continue;
        }
        let problem = match &order.status {
            OrderStatus::Unfulfillable => {
                Some("Amazon reports the MCF order Unfulfillable: nothing will ship (check FBA stock)")
            }
            OrderStatus::Invalid => {
                Some("Amazon reports the MCF order Invalid: it failed Amazon's validation and nothing will ship")
            }
            OrderStatus::Cancelled => {
                Some("the MCF order was cancelled at Amazon (not by mcf-ledger): nothing will ship")
            }
            _ => None,
        };
        match problem {
            Some(message) => {
                let failed = OrderFailed {
                    stage: STAGE.into(),
                    code: Some(format!("{:?}", order.status)),
                    message: format!("{message} ({id})"),
                };
                if record(ctx.ledger, &key, &state, STAGE, vec![OrderEvent::OrderFailed(failed)])? {
                    report.needs_operator += 1;
                }
            }
            None => report.deferred += 1,
        }
    }
    Ok(report)
}
