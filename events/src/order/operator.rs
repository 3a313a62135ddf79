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

/// The statuses this order may be moved to. An order whose cancellation Amazon refused has one
/// way on only, the return (`decide_return_handled`): putting it back on the shipping path or
/// cancelling it again would change nothing at Amazon.
pub fn allowed_targets_for(state: &OrderState) -> &'static [Status] {
    match state.status {
        Some(_) if state.cancel_refused.is_some() => &[],
        Some(status) => allowed_targets(status),
        None => &[],
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
        "なし".to_owned()
    } else {
        statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn order_name(state: &OrderState) -> String {
    state.key.as_ref().map_or_else(|| "?".to_owned(), |k| k.to_string())
}

/// The order as the operator's action finds it: it exists, with a reason that is not empty
/// and not too long.
fn present<'a>(state: &OrderState, reason: &'a str, action: &str) -> Result<(Status, &'a str), Refusal> {
    let order = order_name(state);
    let Some(status) = state.status else {
        return Err(Refusal(format!("注文 {order} は台帳にありません")));
    };
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Refusal(format!("{action}には理由が必要です（注文 {order}）")));
    }
    check_text_length("理由", reason)?;
    Ok((status, reason))
}

/// Decides an operator's status change. CANCELLED becomes a cancellation request, which
/// cancels the MCF order first when one may exist.
pub fn decide_status_change(state: &OrderState, to: Status, reason: &str) -> Result<OrderEvent, Refusal> {
    let order = order_name(state);
    let (from, reason) = present(state, reason, "ステータスの変更")?;
    if from == to {
        return Err(Refusal(format!("注文 {order} はすでに {to} です")));
    }
    if state.cancel_refused.is_some() {
        return Err(Refusal(format!(
            "注文 {order} はAmazonが取り消しを受け付けなかった注文です。荷物の返品を手配し、戻ったら「返品対応済み」を記録してください"
        )));
    }
    let allowed = allowed_targets_for(state);
    if !allowed.contains(&to) {
        return Err(Refusal(format!(
            "注文 {order} を {from} から {to} には変更できません（{from} から変更できるのは: {}）",
            names(allowed)
        )));
    }
    if to == Status::Cancelled {
        if state.cancel_requested.is_some() {
            return Err(Refusal(format!("注文 {order} はすでにキャンセル処理中です")));
        }
        return Ok(OrderEvent::CancellationRequested(CancellationRequested {
            source: CancelSource::Operator,
            reason: reason.to_owned(),
        }));
    }
    if to == Status::Verified && state.details.is_none() {
        return Err(Refusal(format!(
            "注文 {order} はまだモールAPIで確認できていないため VERIFIED にできません。RECEIVED にすると再取得します"
        )));
    }
    Ok(OrderEvent::OperatorStatusChanged(OperatorStatusChanged { from, to, reason: reason.to_owned() }))
}

/// The return of an order Amazon shipped although it was cancelled has been handled (the
/// parcel came back, the marketplace order is cancelled or refunded): the order is CANCELLED.
pub fn decide_return_handled(state: &OrderState, note: &str) -> Result<OrderEvent, Refusal> {
    let (_, note) = present(state, note, "返品対応の記録")?;
    if state.cancel_refused.is_none() {
        return Err(Refusal(format!(
            "注文 {} は取り消しを拒否された注文ではありません。返品対応の記録は不要です",
            order_name(state)
        )));
    }
    Ok(OrderEvent::ReturnHandled(Note { note: note.to_owned() }))
}

/// A DATE_UNAVAILABLE order ships in another slot the operator agreed with the customer: one of
/// those Amazon offered.
pub fn decide_slot_choice(state: &OrderState, slot: &str, reason: &str) -> Result<OrderEvent, Refusal> {
    let order = order_name(state);
    let (status, reason) = present(state, reason, "配送枠の選択")?;
    let Some(unavailable) = state.delivery_slot_unavailable.as_ref().filter(|_| status == Status::DateUnavailable)
    else {
        return Err(Refusal(format!(
            "注文 {order} は {status} です。配送枠を選べるのは DATE_UNAVAILABLE の注文だけです"
        )));
    };
    let slot = slot.trim();
    if !unavailable.offered.iter().any(|offered| offered == slot) {
        return Err(Refusal(format!(
            "配送枠「{slot}」はAmazonが提示した枠ではありません（提示された枠: {}）",
            if unavailable.offered.is_empty() { "なし".to_owned() } else { unavailable.offered.join(", ") }
        )));
    }
    Ok(OrderEvent::DeliverySlotChosen(DeliverySlotChosen { slot: slot.to_owned(), reason: reason.to_owned() }))
}

/// An operator's memo on the order (any status, final ones too).
pub fn decide_memo(state: &OrderState, text: &str) -> Result<OrderEvent, Refusal> {
    let order = order_name(state);
    if state.status.is_none() {
        return Err(Refusal(format!("注文 {order} は台帳にありません")));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(Refusal("メモが空です".into()));
    }
    check_text_length("メモ", text)?;
    Ok(OrderEvent::MemoAdded(Note { note: text.to_owned() }))
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
    let (status, reason) = present(state, reason, "住所の修正")?;
    if status.is_final() || status == Status::Shipping || state.mcf_intent.is_some() {
        return Err(Refusal(format!("注文 {order} は {status} のため、住所はもう変更できません")));
    }
    let Some(old) = state.delivery_address().cloned() else {
        return Err(Refusal(format!("注文 {order} にはまだ住所がありません（モールAPIが未取得です）")));
    };
    let problems = super::address::problems_of_correction(&new, limits);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(Refusal(format!("修正後の住所を受け付けられません: {}", lines.join(" / "))));
    }
    if old == new {
        return Err(Refusal(format!("注文 {order} の修正後の住所が現在の住所と同じです")));
    }
    Ok(OrderEvent::AddressCorrected(AddressCorrected { old, new, reason: reason.to_owned() }))
}
