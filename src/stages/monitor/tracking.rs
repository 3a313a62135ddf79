//! monitor (Amazon side): SHIPPING orders are looked up at Amazon; a package with a tracking
//! number is recorded (the marketplace's notify stage writes it back); Unfulfillable, Invalid
//! or an Amazon-side cancellation puts the order in ERROR with the reason.
//!
//! listAllFulfillmentOrders (50 per call) finds which orders changed since the oldest open one
//! was created; only those are read one by one, which keeps the calls within Amazon's rate.

use crate::amazon::model::OrderStatus;
use crate::amazon::AmazonError;
use crate::stages::context::StageContext;
use crate::stages::orders::{record, state_in};
use crate::stages::report::{StageError, StageReport};
use events::order::{OrderEvent, OrderFailed, Status, Tracking};
use events::store::parse_time;
use events::{FulfillmentOrderId, OrderKey};
use projections::queries::{self, OrderFilter};
use projections::LedgerError;
use std::collections::HashMap;

pub const STAGE: &str = "monitor";

pub async fn run(ctx: &mut StageContext<'_>) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("tracking");
    let filter = OrderFilter { status: Some(Status::Shipping), ..Default::default() };
    let open: Vec<_> = queries::list_orders(ctx.ledger.store().connection(), &filter)
        .map_err(LedgerError::from)?
        .into_iter()
        .filter(|row| row.tracking_number.is_none() && !row.cancel_pending)
        .collect();
    if open.is_empty() {
        return Ok(report);
    }
    // Every MCF order was created after its marketplace order was first recorded.
    let oldest = open.iter().filter_map(|row| parse_time(&row.created_at).ok()).min().unwrap_or_else(chrono::Utc::now);
    let keys: Vec<OrderKey> = open.into_iter().filter_map(|row| row.order.parse().ok()).collect();
    let changed: HashMap<String, OrderStatus> =
        ctx.services.amazon.list_since(oldest - chrono::Duration::hours(1)).await?.into_iter().collect();
    for key in keys {
        if !ctx.steps.proceed(ctx.ledger, &mut report)? {
            break;
        }
        let Some(state) = state_in(ctx.ledger, &key, Status::Shipping)? else { continue };
        if state.tracking.is_some() || state.cancel_requested.is_some() {
            continue;
        }
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
        let order = match ctx.services.amazon.get(id.as_str()).await {
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
                crate::stages::orders::amazon_unread(ctx.ledger, &mut report, &e)?;
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
