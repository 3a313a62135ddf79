//! ship: SHIPPING_REQUESTED orders -> plan (address checked against Amazon's limits, items,
//! promise) -> preview every speed -> choose -> record the intent -> create -> SHIPPING.
//!
//! Exactly once: the MCF id is derived from the order, and the intent is recorded before the
//! create call. On any doubt (no answer, a crash before the outcome was recorded, "already
//! exists") the stage looks the id up at Amazon and adopts what exists.

pub mod plan;
pub mod speed;

use crate::amazon::address::{destination, displayable_order_id};
use crate::amazon::model::{CreateRequest, OrderItemRequest, PreviewRequest, Window};
use crate::amazon::AmazonError;
use crate::stages::context::StageContext;
use crate::stages::orders::{failpoint, order_keys_in, record, state_in};
use crate::stages::report::{StageError, StageReport};
use events::order::{
    DeliveryWindow, McfCreateRejected, McfOrderCreated, OrderEvent, OrderFailed, OrderState, ShippingSpeed, Status,
};
use events::{FulfillmentOrderId, OrderKey};
use speed::PreviewOption;

pub use plan::STAGE;

enum Outcome {
    Advanced,
    Deferred,
    NeedsOperator,
}

pub async fn run(ctx: &mut StageContext<'_>) -> Result<StageReport, StageError> {
    let mut report = StageReport::new(STAGE);
    for key in order_keys_in(ctx.ledger, Status::ShippingRequested)? {
        if !ctx.steps.proceed(ctx.ledger, &mut report)? {
            break;
        }
        let Some(state) = state_in(ctx.ledger, &key, Status::ShippingRequested)? else { continue };
        report.examined += 1;
        if state.cancel_requested.is_some() {
            report.deferred += 1; // the cancel stage settles it with Amazon first
            continue;
        }
        match ship_one(ctx, &key, state, &mut report).await? {
            Outcome::Advanced => report.advanced += 1,
            Outcome::Deferred => report.deferred += 1,
            Outcome::NeedsOperator => report.needs_operator += 1,
        }
    }
    Ok(report)
}

async fn ship_one(
    ctx: &mut StageContext<'_>,
    key: &OrderKey,
    mut state: OrderState,
    report: &mut StageReport,
) -> Result<Outcome, StageError> {
    let id = FulfillmentOrderId::for_order(key);
    if let Some(intent) = state.mcf_intent.clone() {
        // An earlier attempt's outcome was never recorded: ask Amazon before anything else.
        match ctx.services.amazon.get(id.as_str()).await {
            Ok(existing) => return adopt(ctx, key, &id, existing.shipping_speed.as_deref(), intent.speed),
            Err(AmazonError::NotFound { .. }) => {
                tracing::info!(order = %key, mcf = %id, "the earlier create never reached Amazon; creating now");
            }
            Err(e) => {
                tracing::warn!(order = %key, mcf = %id, error = %e, "cannot confirm an earlier create; retrying next cycle");
                crate::stages::orders::amazon_unread(ctx.ledger, report, &e)?;
                return Ok(Outcome::Deferred);
            }
        }
    }
    let plan = match plan::plan(key, &state, ctx.services.shipping.address_limits) {
        Ok(plan) => plan,
        Err(failed) => {
            tracing::warn!(order = %key, code = failed.code, message = failed.message, "not sent to Amazon");
            return decided(ctx, key, &state, OrderEvent::OrderFailed(failed), Outcome::NeedsOperator);
        }
    };
    let destination = destination(&plan.address);
    let items: Vec<OrderItemRequest> = plan
        .lines
        .iter()
        .map(|line| OrderItemRequest {
            seller_sku: line.seller_sku.0.clone(),
            seller_fulfillment_order_item_id: line.item_id.clone(),
            quantity: line.quantity,
        })
        .collect();
    let previews = match preview(&ctx.services.amazon, key, &plan, &destination, &items).await {
        Ok(previews) => previews,
        Err(PreviewFailed::Refused(failed)) => {
            return decided(ctx, key, &state, OrderEvent::OrderFailed(failed), Outcome::NeedsOperator);
        }
        Err(PreviewFailed::Unread(e)) => {
            tracing::warn!(order = %key, error = %e, "preview failed; retrying next cycle");
            crate::stages::orders::amazon_unread(ctx.ledger, report, &e)?;
            return Ok(Outcome::Deferred);
        }
    };
    let intent = match plan::decide(&plan, &options(&previews)) {
        OrderEvent::McfCreateIntended(intent) => intent,
        other => {
            tracing::info!(order = %key, "{}", other.describe());
            return decided(ctx, key, &state, other, Outcome::NeedsOperator);
        }
    };
    tracing::info!(order = %key, mcf = %id, speed = intent.speed.as_str(), reason = intent.reason, "shipping");
    if !record(ctx.ledger, key, &state, STAGE, vec![OrderEvent::McfCreateIntended(intent.clone())])? {
        return Ok(Outcome::Deferred);
    }
    state.apply(&OrderEvent::McfCreateIntended(intent.clone()));
    let ordered_at =
        state.details.as_ref().map(|d| d.ordered_at.with_timezone(&chrono::Utc)).unwrap_or_else(chrono::Utc::now);
    let request = CreateRequest {
        marketplace_id: ctx.services.amazon.marketplace_id().to_owned(),
        seller_fulfillment_order_id: id.to_string(),
        displayable_order_id: displayable_order_id(&key.order_number),
        displayable_order_date: ordered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        displayable_order_comment: ctx.services.shipping.packing_slip_comment.clone(),
        shipping_speed_category: intent.speed.as_str().to_owned(),
        delivery_window: intent.delivery_window.map(|w| Window { start_date: w.start, end_date: w.end }),
        destination_address: destination,
        fulfillment_action: "Ship".into(),
        fulfillment_policy: "FillOrKill".into(),
        notification_emails: ctx.services.shipping.notification_email.iter().cloned().collect(),
        items,
    };
    let created = ctx.services.amazon.create(&request).await;
    failpoint("ship.after_create");
    created_outcome(ctx, key, &id, intent.speed, created, report).await
}

enum PreviewFailed {
    /// Amazon refused the request (400): the order goes to an operator.
    Refused(OrderFailed),
    /// No answer worth acting on: the next cycle asks again.
    Unread(AmazonError),
}

/// getFulfillmentPreview for every speed the plan considers.
async fn preview(
    amazon: &crate::amazon::AmazonClient,
    key: &OrderKey,
    plan: &plan::Plan,
    destination: &crate::amazon::model::DestinationAddress,
    items: &[OrderItemRequest],
) -> Result<Vec<crate::amazon::model::Preview>, PreviewFailed> {
    let request = PreviewRequest {
        marketplace_id: amazon.marketplace_id().to_owned(),
        address: destination.clone(),
        items: items.to_vec(),
        shipping_speed_categories: plan.speeds.iter().map(|s| s.as_str().to_owned()).collect(),
        include_delivery_windows: plan.promise.delivery_request.is_some(),
    };
    match amazon.preview(&request).await {
        Ok(previews) => Ok(previews),
        Err(AmazonError::Api { code, message, status: 400, .. }) => {
            tracing::warn!(order = %key, code, "Amazon refused the preview");
            Err(PreviewFailed::Refused(OrderFailed {
                stage: "amazon.getFulfillmentPreview".into(),
                code: Some(code),
                message: format!("Amazonが出荷プレビューを受け付けませんでした。Amazonのメッセージ: {message}"),
            }))
        }
        Err(e) => Err(PreviewFailed::Unread(e)),
    }
}

/// What createFulfillmentOrder came to: created, an order Amazon already had (adopted),
/// refused (ERROR with Amazon's code and message), or unknown (the intent stays; the next
/// cycle asks Amazon).
async fn created_outcome(
    ctx: &mut StageContext<'_>,
    key: &OrderKey,
    id: &FulfillmentOrderId,
    speed: ShippingSpeed,
    created: Result<(), AmazonError>,
    report: &mut StageReport,
) -> Result<Outcome, StageError> {
    match created {
        Ok(()) => {
            let event = OrderEvent::McfOrderCreated(McfOrderCreated {
                fulfillment_order_id: id.clone(),
                speed,
                adopted: false,
            });
            observed(ctx, key, event, Outcome::Advanced)
        }
        Err(AmazonError::Api { message, .. }) if message.contains("already exists") => {
            match ctx.services.amazon.get(id.as_str()).await {
                Ok(existing) => adopt(ctx, key, id, existing.shipping_speed.as_deref(), speed),
                Err(e) => {
                    tracing::warn!(order = %key, mcf = %id, error = %e, "Amazon says it exists but cannot show it; next cycle");
                    crate::stages::orders::amazon_unread(ctx.ledger, report, &e)?;
                    Ok(Outcome::Deferred)
                }
            }
        }
        Err(AmazonError::Api { status: 400, code, message, .. }) => {
            tracing::warn!(order = %key, mcf = %id, code, message, "Amazon refused the MCF order");
            let event =
                OrderEvent::McfCreateRejected(McfCreateRejected { fulfillment_order_id: id.clone(), code, message });
            observed(ctx, key, event, Outcome::NeedsOperator)
        }
        Err(e) => {
            // The create may or may not have happened: the intent stays, the next cycle asks Amazon.
            tracing::warn!(order = %key, mcf = %id, error = %e, "create outcome unknown; reconciling next cycle");
            crate::stages::orders::amazon_unread(ctx.ledger, report, &e)?;
            Ok(Outcome::Deferred)
        }
    }
}

/// Each speed's preview as the speed choice reads it.
fn options(previews: &[crate::amazon::model::Preview]) -> Vec<PreviewOption> {
    previews
        .iter()
        .filter_map(|p| {
            let speed = match p.shipping_speed_category.as_str() {
                "Standard" => ShippingSpeed::Standard,
                "Expedited" => ShippingSpeed::Expedited,
                "Priority" => ShippingSpeed::Priority,
                "ScheduledDelivery" => ShippingSpeed::ScheduledDelivery,
                _ => return None,
            };
            let windows = p
                .scheduled_delivery_info
                .as_ref()
                .map(|info| {
                    info.delivery_windows
                        .iter()
                        .map(|w| DeliveryWindow { start: w.start_date, end: w.end_date })
                        .collect()
                })
                .unwrap_or_default();
            let mut reasons = p.order_unfulfillable_reasons.clone();
            reasons.extend(p.unfulfillable_preview_items.iter().map(|item| {
                format!(
                    "{}: {}",
                    item["sellerSku"].as_str().unwrap_or("?"),
                    item["itemUnfulfillableReasons"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("/"))
                        .unwrap_or_default()
                )
            }));
            Some(PreviewOption {
                speed,
                fulfillable: p.is_fulfillable,
                latest_arrival: p.latest_arrival(),
                windows,
                reasons,
                fee_yen: p.fee_yen(),
            })
        })
        .collect()
}

fn adopt(
    ctx: &mut StageContext<'_>,
    key: &OrderKey,
    id: &FulfillmentOrderId,
    amazon_speed: Option<&str>,
    intended: ShippingSpeed,
) -> Result<Outcome, StageError> {
    let speed = match amazon_speed {
        Some("Standard") => ShippingSpeed::Standard,
        Some("Expedited") => ShippingSpeed::Expedited,
        Some("Priority") => ShippingSpeed::Priority,
        Some("ScheduledDelivery") => ShippingSpeed::ScheduledDelivery,
        _ => intended,
    };
    tracing::info!(order = %key, mcf = %id, "MCF order already exists at Amazon: adopted");
    let event = OrderEvent::McfOrderCreated(McfOrderCreated { fulfillment_order_id: id.clone(), speed, adopted: true });
    observed(ctx, key, event, Outcome::Advanced)
}

/// What Amazon's answer showed, recorded whatever happened to the order meanwhile.
fn observed(
    ctx: &mut StageContext<'_>,
    key: &OrderKey,
    event: OrderEvent,
    outcome: Outcome,
) -> Result<Outcome, StageError> {
    crate::stages::orders::record_outcome(ctx.ledger, key, STAGE, vec![event])?;
    Ok(outcome)
}

fn decided(
    ctx: &mut StageContext<'_>,
    key: &OrderKey,
    state: &OrderState,
    event: OrderEvent,
    outcome: Outcome,
) -> Result<Outcome, StageError> {
    Ok(if record(ctx.ledger, key, state, STAGE, vec![event])? { outcome } else { Outcome::Deferred })
}
