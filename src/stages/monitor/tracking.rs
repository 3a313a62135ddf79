//! monitor (Amazon side): SHIPPING orders are looked up at Amazon; a package with a tracking
//! number is recorded (the marketplace's notify stage writes it back); Unfulfillable, Invalid
//! or an Amazon-side cancellation puts the order in ERROR with the reason.
//!
//! listAllFulfillmentOrders (50 per call) finds which orders changed since the oldest open one
//! was created; only those are read one by one, which keeps the calls within Amazon's rate.

use crate::amazon::model::{FulfillmentOrder, OrderStatus};
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
                    message: format!("AmazonにMCF注文 {id} がありません。セラーセントラルで確認してください"),
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
        match outcome(&order, &id) {
            Some(event @ OrderEvent::TrackingRecorded(_)) => {
                tracing::info!(order = %key, mcf = %id, "tracking number received");
                if record(ctx.ledger, &key, &state, STAGE, vec![event])? {
                    report.advanced += 1;
                }
            }
            Some(event) => {
                tracing::warn!(order = %key, mcf = %id, status = ?order.status, "the MCF order will not ship");
                if record(ctx.ledger, &key, &state, STAGE, vec![event])? {
                    report.needs_operator += 1;
                }
            }
            None => report.deferred += 1,
        }
    }
    Ok(report)
}

/// What Amazon's answer for a SHIPPING order means: its tracking number once a package has
/// one; ERROR when Amazon will not ship it (Unfulfillable, Invalid, cancelled at Amazon);
/// nothing while it is on its way.
fn outcome(order: &FulfillmentOrder, id: &FulfillmentOrderId) -> Option<OrderEvent> {
    if let Some(package) = order.packages.first() {
        return Some(OrderEvent::TrackingRecorded(Tracking {
            carrier: package.carrier_code.clone(),
            tracking_number: package.tracking_number.clone(),
            shipped_at: package.shipped_at,
        }));
    }
    let message = match &order.status {
        OrderStatus::Unfulfillable => {
            "AmazonがこのMCF注文を出荷不可 (Unfulfillable) としました。出荷されません。FBA在庫を確認してください"
        }
        OrderStatus::Invalid => "AmazonがこのMCF注文を無効 (Invalid) としました。Amazonの検証に通らず、出荷されません",
        OrderStatus::Cancelled => {
            "MCF注文がAmazon側でキャンセルされました (mcf-ledgerによるものではありません)。出荷されません"
        }
        _ => return None,
    };
    Some(OrderEvent::OrderFailed(OrderFailed {
        stage: STAGE.into(),
        code: Some(format!("{:?}", order.status)),
        message: format!("{message} ({id})"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amazon::model::PackageTracking;

    fn order(status: OrderStatus, packages: Vec<PackageTracking>) -> FulfillmentOrder {
        FulfillmentOrder { id: "YH-shop-10000001".into(), status, shipping_speed: None, packages }
    }

    #[test]
    fn a_package_brings_its_tracking_a_refusal_is_an_error_and_progress_is_nothing() {
        let id = FulfillmentOrderId::for_order(&"yahoo-shop-10000001".parse().unwrap());
        let package = PackageTracking {
            carrier_code: "YAMATO".into(),
            tracking_number: "1234-5678-9012".into(),
            shipped_at: None,
        };
        assert!(matches!(
            outcome(&order(OrderStatus::Complete, vec![package]), &id),
            Some(OrderEvent::TrackingRecorded(t)) if t.tracking_number == "1234-5678-9012"
        ));
        let Some(OrderEvent::OrderFailed(failed)) = outcome(&order(OrderStatus::Unfulfillable, vec![]), &id) else {
            panic!("Unfulfillable is an error")
        };
        assert!(
            failed.message.contains("出荷不可") && failed.message.contains("YH-shop-10000001"),
            "{}",
            failed.message
        );
        assert_eq!(outcome(&order(OrderStatus::Processing, vec![]), &id), None);
    }
}
