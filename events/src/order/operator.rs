//! The operator's status changes, from the operating guide's recovery flow:
//! fix the cause -> change the status -> the next cycle resumes.

use super::event::*;
use super::{OrderState, Status};

/// The statuses an operator may move an order to from `from`.
pub fn allowed_targets(from: Status) -> &'static [Status] {
    use Status as S;
    match from {
        // 在庫補充後に VERIFIED へ。
        S::OutOfStock => &[S::Verified, S::Cancelled],
        // 顧客と日時調整後、通常配送で SHIPPING_REQUESTED へ。
        S::DateUnavailable => &[S::ShippingRequested, S::Cancelled],
        // 原因解消後に VERIFIED または RECEIVED へ。
        S::Error => &[S::Verified, S::Received, S::Cancelled],
        S::Shipped | S::Cancelled => &[],
        S::Received | S::AwaitingConfirmation | S::Verified | S::ShippingRequested | S::Shipping => &[S::Cancelled],
    }
}

/// The most characters a reason or a note may have: a sentence or two an operator types, and
/// never a pasted document.
pub const TEXT_LIMIT: usize = 500;

/// Refuses free text over [`TEXT_LIMIT`], naming the field and both lengths.
pub fn check_text_length(field: &str, text: &str) -> Result<(), Refusal> {
    let length = text.chars().count();
    if length > TEXT_LIMIT {
        return Err(Refusal(format!("{field}が長すぎます（{length}文字、上限{TEXT_LIMIT}文字）")));
    }
    Ok(())
}

/// Why an operator's action was not applied; shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn names(statuses: &[Status]) -> String {
    if statuses.is_empty() {
        "none (final status)".to_owned()
    } else {
        statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn order_name(state: &OrderState) -> String {
    state.key.as_ref().map_or_else(|| "?".to_owned(), |k| k.to_string())
}

/// Decides an operator's status change. CANCELLED becomes a cancellation request, which
/// cancels the MCF order first when one may exist.
pub fn decide_status_change(state: &OrderState, to: Status, reason: &str) -> Result<OrderEvent, Refusal> {
    let order = order_name(state);
    let Some(from) = state.status else {
        return Err(Refusal(format!("order {order} is not in the ledger")));
    };
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Refusal(format!("changing order {order} needs a reason")));
    }
    check_text_length("理由", reason)?;
    if from == to {
        return Err(Refusal(format!("order {order} is already {to}")));
    }
    let allowed = allowed_targets(from);
    if !allowed.contains(&to) {
        return Err(Refusal(format!(
            "cannot change order {order} from {from} to {to}; allowed from {from}: {}",
            names(allowed)
        )));
    }
    if to == Status::Cancelled {
        if state.cancel_requested.is_some() {
            return Err(Refusal(format!("order {order} already has a cancellation in progress")));
        }
        return Ok(OrderEvent::CancellationRequested(CancellationRequested {
            source: CancelSource::Operator,
            reason: reason.to_owned(),
        }));
    }
    if to == Status::Verified && state.details.is_none() {
        return Err(Refusal(format!(
            "order {order} has not been confirmed by the marketplace API yet, so it cannot be VERIFIED; set RECEIVED to fetch it again"
        )));
    }
    Ok(OrderEvent::OperatorStatusChanged(OperatorStatusChanged { from, to, reason: reason.to_owned() }))
}

/// Decides an operator's address correction (e.g. a line too long for Amazon). The old
/// address stays in the ledger beside the new one.
pub fn decide_address_correction(
    state: &OrderState,
    new: Address,
    reason: &str,
    limits: super::address::AddressLimits,
) -> Result<OrderEvent, Refusal> {
    let order = order_name(state);
    let Some(status) = state.status else {
        return Err(Refusal(format!("order {order} is not in the ledger")));
    };
    if status.is_final() || status == Status::Shipping || state.mcf_intent.is_some() {
        return Err(Refusal(format!("order {order} is {status}: the address can no longer be changed")));
    }
    let Some(old) = state.delivery_address().cloned() else {
        return Err(Refusal(format!("order {order} has no address yet: the marketplace API has not been read")));
    };
    let problems = super::address::problems_of_correction(&new, limits);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(Refusal(format!("修正後の住所を受け付けられません: {}", lines.join(" / "))));
    }
    if old == new {
        return Err(Refusal(format!("the corrected address of order {order} is the same as the current one")));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Refusal(format!("correcting the address of order {order} needs a reason")));
    }
    check_text_length("理由", reason)?;
    Ok(OrderEvent::AddressCorrected(AddressCorrected { old, new, reason: reason.to_owned() }))
}
