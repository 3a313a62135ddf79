//! What shipping an order takes, decided from its state alone (no I/O): the MCF id, the
//! address (refused here, before any call, when Amazon would refuse it), the items, the
//! marketplace's promise, and the speeds to preview; then, from Amazon's previews, the event
//! the ship stage records.

use super::speed::{choose_speed, PreviewOption, Promise, SpeedDecision, PREVIEWED};
use events::order::address::{problems_for_amazon, AddressLimits};
use events::order::{
    Address, DeliverySlotUnavailable, McfCreateIntended, OrderEvent, OrderFailed, OrderState, ShippingSpeed,
};
use events::{FulfillmentOrderId, OrderKey, SellerSku};

pub const STAGE: &str = "ship";

/// One line of the MCF order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub seller_sku: SellerSku,
    /// `sellerFulfillmentOrderItemId`: unique within the order.
    pub item_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: FulfillmentOrderId,
    pub address: Address,
    pub lines: Vec<Line>,
    pub promise: Promise,
    pub speeds: Vec<ShippingSpeed>,
}

fn failed(code: &str, message: String) -> OrderFailed {
    OrderFailed { stage: STAGE.into(), code: Some(code.into()), message }
}

/// The plan, or the failure that stops the order before any call (no address, an address
/// Amazon would refuse: ERROR, with what to correct).
pub fn plan(key: &OrderKey, state: &OrderState, limits: AddressLimits) -> Result<Plan, OrderFailed> {
    let id = FulfillmentOrderId::for_order(key);
    let Some(address) = state.delivery_address().cloned() else {
        return Err(failed("NO_ADDRESS", "お届け先住所がありません (the order has no delivery address)".into()));
    };
    let problems = problems_for_amazon(&address, limits);
    if !problems.is_empty() {
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(failed(
            "ADDRESS_LIMIT",
            format!(
                "{}。注文画面で住所を修正し、ステータスをVERIFIEDにしてください（Amazonには送っていません）",
                reasons.join(" / ")
            ),
        ));
    }
    let lines = state
        .allotted
        .iter()
        .enumerate()
        .map(|(n, line)| Line {
            seller_sku: line.seller_sku.clone(),
            item_id: format!("{id}-{}", n + 1),
            quantity: line.quantity,
        })
        .collect();
    let details = state.details.as_ref();
    let promise = Promise {
        premium_deadline: details.and_then(|d| d.premium_deadline),
        delivery_request: match (&state.delivery_slot_chosen, state.delivery_slot_dropped) {
            (_, true) => None,
            // The slot the operator agreed with the customer (`2026-11-25 14-16`, as offered).
            (Some(chosen), false) => chosen_slot(chosen).or_else(|| details.and_then(|d| d.delivery_request.clone())),
            (None, false) => details.and_then(|d| d.delivery_request.clone()),
        },
    };
    let mut speeds = PREVIEWED.to_vec();
    if promise.delivery_request.is_some() {
        speeds.push(ShippingSpeed::ScheduledDelivery);
    }
    Ok(Plan { id, address, lines, promise, speeds })
}

/// A slot as the preview offered it (`2026-11-25 14-16`) as a delivery request.
fn chosen_slot(label: &str) -> Option<events::order::DeliveryRequest> {
    let (date, slot) = label.split_once(' ')?;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(events::order::DeliveryRequest { date, slot: Some(slot.to_owned()) })
}

/// What Amazon's previews decide: the intent to create (with the speed, its reason and every
/// estimate), DATE_UNAVAILABLE, or ERROR when Amazon cannot fulfil the order at all.
pub fn decide(plan: &Plan, options: &[PreviewOption]) -> OrderEvent {
    match choose_speed(&plan.promise, options) {
        SpeedDecision::Ship { speed, window, reason, late } => OrderEvent::McfCreateIntended(McfCreateIntended {
            fulfillment_order_id: plan.id.clone(),
            speed,
            reason,
            delivery_window: window,
            promise_missed: late,
        }),
        SpeedDecision::SlotUnavailable { requested, offered } => {
            OrderEvent::DeliverySlotUnavailable(DeliverySlotUnavailable { requested, offered })
        }
        SpeedDecision::Unfulfillable { reason } => OrderEvent::OrderFailed(failed(
            "Unfulfillable",
            format!("Amazonがこの注文を出荷できません（相手側の理由: {reason}）"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::order::sample::lifecycle_to;
    use events::order::Status;
    use events::Marketplace;

    fn key() -> OrderKey {
        OrderKey::new(Marketplace::Yahoo, "store-10000001").unwrap()
    }

    fn given(edit: impl FnOnce(&mut Address)) -> OrderState {
        let mut state = OrderState::fold(key(), &lifecycle_to(&key(), Status::ShippingRequested));
        let mut address = state.delivery_address().unwrap().clone();
        edit(&mut address);
        state.corrected_address = Some(address);
        state
    }

    #[test]
    fn given_an_address_amazon_would_refuse_then_error_before_any_call_naming_length_and_limit() {
        let state = given(|a| a.name = "株式会社サンプル商事 山田 太郎".into());
        let Err(failed) = plan(&key(), &state, AddressLimits::default()) else { panic!("stopped before any call") };
        assert_eq!(failed.code.as_deref(), Some("ADDRESS_LIMIT"));
        assert!(
            failed.message.starts_with(
                "お届け先の氏名が16文字です（Amazonの上限は15文字）。会社名「株式会社サンプル商事」を住所2"
            ),
            "{}",
            failed.message
        );
        assert!(failed.message.ends_with("（Amazonには送っていません）"));
    }

    #[test]
    fn given_a_good_order_then_every_speed_is_previewed_and_items_carry_their_own_ids() {
        let state = given(|_| {});
        let plan = plan(&key(), &state, AddressLimits::default()).unwrap();
        assert_eq!(plan.speeds, [ShippingSpeed::Standard, ShippingSpeed::Expedited, ShippingSpeed::Priority]);
        assert_eq!(plan.lines[0].item_id, "YH-store-10000001-1");
    }
}
