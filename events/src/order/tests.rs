//! Given events / when a decision / then events (or a refusal): the state machine's rules.

use super::address::AddressLimits;
use super::operator::{
    allowed_targets, allowed_targets_for, decide_address_correction, decide_memo, decide_return_handled,
    decide_slot_choice, decide_status_change,
};
use super::sample::{self, lifecycle_to};
use super::*;
use crate::ids::{Marketplace, OrderKey};

fn key() -> OrderKey {
    OrderKey::new(Marketplace::Rakuten, "123456-20261122-00000001").unwrap()
}

fn given(events: Vec<OrderEvent>) -> OrderState {
    OrderState::fold(key(), &events)
}

fn given_status(status: Status) -> OrderState {
    let state = given(lifecycle_to(&key(), status));
    assert_eq!(state.status, Some(status), "fixture for {status}");
    state
}

/// A system event is checked, then applied; returns the new status.
fn when_system(mut state: OrderState, event: OrderEvent) -> Result<Option<Status>, TransitionError> {
    state.check(&event)?;
    state.apply(&event);
    Ok(state.status)
}

#[test]
fn every_status_is_reachable_by_its_usual_path() {
    for status in Status::ALL {
        given_status(status);
    }
}

#[test]
fn the_open_statuses_are_exactly_the_non_final_ones() {
    let open: Vec<Status> = Status::ALL.into_iter().filter(|s| !s.is_final()).collect();
    assert_eq!(open, Status::OPEN.to_vec());
}

#[test]
fn status_codes_parse_as_the_guide_spells_them() {
    for status in Status::ALL {
        assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        assert_eq!(status.as_str().to_lowercase().parse::<Status>(), Ok(status));
    }
    let unknown = "SHIPED".parse::<Status>().unwrap_err();
    assert!(unknown.to_string().contains("SHIPPING_REQUESTED"), "{unknown}");
}

#[test]
fn operator_transitions_follow_the_guide_and_every_other_is_refused_naming_the_allowed() {
    use Status as S;
    let expected: &[(Status, &[Status])] = &[
        (S::Received, &[S::Cancelled]),
        (S::AwaitingConfirmation, &[S::Cancelled]),
        (S::Verified, &[S::Cancelled]),
        (S::OutOfStock, &[S::Verified, S::Cancelled]),
        (S::ShippingRequested, &[S::Cancelled]),
        (S::DateUnavailable, &[S::ShippingRequested, S::Cancelled]),
        (S::Shipping, &[S::Cancelled]),
        (S::Shipped, &[]),
        (S::Cancelled, &[]),
        (S::Error, &[S::Verified, S::Received, S::Cancelled]),
    ];
    for &(from, allowed) in expected {
        assert_eq!(allowed_targets(from), allowed, "allowed from {from}");
        for to in Status::ALL {
            let state = given_status(from);
            let decision = decide_status_change(&state, to, "運用者の判断");
            if allowed.contains(&to) {
                let event = decision.unwrap_or_else(|r| panic!("{from} -> {to} should be allowed: {r}"));
                let status = when_system(state, event).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                // A SHIPPING order waits for Amazon's cancel before it is CANCELLED.
                let landed = if from == S::Shipping && to == S::Cancelled { S::Shipping } else { to };
                assert_eq!(status, Some(landed), "{from} -> {to}");
            } else {
                let refusal = decision.expect_err(&format!("{from} -> {to} should be refused"));
                if from != to {
                    let listed = if allowed.is_empty() {
                        "なし".to_owned()
                    } else {
                        allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    };
                    assert!(refusal.0.contains(&format!("{from} から変更できるのは: {listed}")), "{refusal}");
                }
            }
        }
    }
}

#[test]
fn out_of_stock_restocked_goes_back_to_verified_and_forgets_the_shortage() {
    let state = given_status(Status::OutOfStock);
    let event = decide_status_change(&state, Status::Verified, "在庫補充済み").unwrap();
    let mut state = state;
    state.apply(&event);
    assert_eq!(state.status, Some(Status::Verified));
    assert!(state.shortage.is_empty());
}

#[test]
fn date_unavailable_to_shipping_requested_drops_the_slot() {
    let mut state = given_status(Status::DateUnavailable);
    assert!(!state.delivery_slot_dropped);
    let event = decide_status_change(&state, Status::ShippingRequested, "顧客と調整、通常配送").unwrap();
    assert!(matches!(&event, OrderEvent::OperatorStatusChanged(c) if c.from == Status::DateUnavailable));
    state.apply(&event);
    assert_eq!(state.status, Some(Status::ShippingRequested));
    assert!(state.delivery_slot_dropped, "the next ship stage must ship Standard without the slot");
}

#[test]
fn error_recovers_to_verified_or_received_and_clears_the_error() {
    for to in [Status::Verified, Status::Received] {
        let mut state = given_status(Status::Error);
        assert!(state.error.is_some());
        state.apply(&decide_status_change(&state, to, "SKUをmaster.xlsxに追加").unwrap());
        assert_eq!(state.status, Some(to));
        assert_eq!(state.error, None);
    }
}

#[test]
fn error_of_a_mail_only_order_cannot_be_verified_by_hand() {
    let state = given(vec![
        sample::detected(&key(), DetectionSource::Mail),
        OrderEvent::OrderFailed(OrderFailed {
            stage: "receive".into(),
            code: None,
            message: "API: order not found".into(),
        }),
    ]);
    let refusal = decide_status_change(&state, Status::Verified, "確認した").unwrap_err();
    assert!(refusal.0.contains("まだモールAPIで確認できていない"), "{refusal}");
    assert!(decide_status_change(&state, Status::Received, "再取得").is_ok());
}

#[test]
fn operator_changes_need_a_reason_and_a_known_order() {
    let state = given_status(Status::OutOfStock);
    assert!(decide_status_change(&state, Status::Verified, "  ").unwrap_err().0.contains("理由が必要です"));
    let unknown = OrderState::new(key());
    assert!(decide_status_change(&unknown, Status::Cancelled, "x").unwrap_err().0.contains("台帳にありません"));
}

#[test]
fn cancelling_a_shipping_order_waits_for_amazon_then_cancels() {
    let state = given_status(Status::Shipping);
    let request = decide_status_change(&state, Status::Cancelled, "購入者の依頼").unwrap();
    let mut state = state;
    state.apply(&request);
    assert_eq!(state.status, Some(Status::Shipping));
    assert!(state.cancel_requested.is_some());
    assert!(decide_status_change(&state, Status::Cancelled, "again").unwrap_err().0.contains("すでにキャンセル処理中"));
    let cancelled = OrderEvent::McfOrderCancelled(McfOrderCancelled {
        fulfillment_order_id: state.mcf_order_id.clone().unwrap(),
        never_created: false,
    });
    assert_eq!(when_system(state, cancelled), Ok(Some(Status::Cancelled)));
}

#[test]
fn amazon_refusing_the_cancel_puts_the_order_in_error_saying_why() {
    let mut state = given_status(Status::Shipping);
    state.apply(&decide_status_change(&state, Status::Cancelled, "購入者の依頼").unwrap());
    let refused = OrderEvent::McfCancelRefused(Reason { reason: "already shipped; the parcel is on its way".into() });
    state.check(&refused).unwrap();
    state.apply(&refused);
    assert_eq!(state.status, Some(Status::Error));
    assert!(state.error.unwrap().message.contains("on its way"));
}

#[test]
fn a_cancel_after_an_unanswered_mcf_intent_waits_for_reconciliation() {
    let mut state = given_status(Status::ShippingRequested);
    state.apply(&sample::mcf_created(&key())[0]);
    state.apply(&decide_status_change(&state, Status::Cancelled, "購入者の依頼").unwrap());
    assert_eq!(state.status, Some(Status::ShippingRequested), "an MCF order may exist: cancel it first");
    let adopted = OrderEvent::McfOrderCreated(McfOrderCreated {
        fulfillment_order_id: state.mcf_intent.clone().unwrap().fulfillment_order_id,
        speed: ShippingSpeed::Standard,
        adopted: true,
    });
    assert_eq!(when_system(state, adopted), Ok(Some(Status::Shipping)));
}

#[test]
fn the_system_path_moves_through_every_stage() {
    let k = key();
    let mut state = OrderState::new(k.clone());
    let mut path = vec![];
    for event in lifecycle_to(&k, Status::Shipped) {
        state.check(&event).unwrap_or_else(|e| panic!("{e}"));
        state.apply(&event);
        path.push(state.status.unwrap());
    }
    path.dedup();
    use Status as S;
    assert_eq!(
        path,
        vec![S::Received, S::AwaitingConfirmation, S::Verified, S::ShippingRequested, S::Shipping, S::Shipped]
    );
    assert_eq!(state.tracking.unwrap().tracking_number, "123456789012");
}

#[test]
fn impossible_system_events_are_refused_with_the_reason() {
    let refusal = when_system(given_status(Status::Received), sample::allotted()).unwrap_err();
    assert!(
        refusal
            .to_string()
            .contains("StockAllotted is not possible for order rakuten-123456-20261122-00000001 in status RECEIVED"),
        "{refusal}"
    );
    let shipped = when_system(
        given_status(Status::Shipped),
        OrderEvent::OrderFailed(OrderFailed { stage: "x".into(), code: None, message: "y".into() }),
    );
    assert!(shipped.unwrap_err().why.contains("final"));
    let report_without_tracking =
        when_system(given_status(Status::Shipping), OrderEvent::ShipmentReported(sample::tracking()));
    assert!(report_without_tracking.unwrap_err().why.contains("no tracking"));
}

#[test]
fn mail_alone_never_verifies_an_order() {
    let state = given(vec![sample::detected(&key(), DetectionSource::Mail)]);
    assert_eq!(state.status, Some(Status::Received));
    let refusal = when_system(state, OrderEvent::OrderVerified(Note::default())).unwrap_err();
    assert!(refusal.why.contains("mail alone never verifies"), "{refusal}");
}

#[test]
fn a_second_detector_does_not_move_the_order() {
    let mut state = given_status(Status::Verified);
    state.apply(&sample::detected(&key(), DetectionSource::Mail));
    assert_eq!(state.status, Some(Status::Verified));
    assert_eq!(state.detected_via, vec![DetectionSource::Api, DetectionSource::Mail]);
}

#[test]
fn a_held_order_is_not_verified_until_released() {
    let mut state = given_status(Status::AwaitingConfirmation);
    state.apply(&OrderEvent::OrderHeld(Reason { reason: "要注意注文".into() }));
    assert!(when_system(state.clone(), OrderEvent::OrderVerified(Note::default())).is_err());
    state.apply(&OrderEvent::HoldReleased(Note::default()));
    assert_eq!(when_system(state, OrderEvent::OrderVerified(Note::default())), Ok(Some(Status::Verified)));
}

fn state_with_address() -> Address {
    given_status(Status::Error).delivery_address().unwrap().clone()
}

#[test]
fn address_correction_keeps_old_and_new_and_is_refused_once_shipping() {
    let state = given_status(Status::Error);
    let mut new = state.delivery_address().unwrap().clone();
    new.line2 = Some("101".into());
    let event =
        decide_address_correction(&state, new.clone(), "40文字超過のため短縮", AddressLimits::default()).unwrap();
    let OrderEvent::AddressCorrected(corrected) = &event else { panic!("{event:?}") };
    assert_eq!(corrected.old.line2.as_deref(), Some("サンプルマンション101"));
    let mut state = state;
    state.apply(&event);
    assert_eq!(state.delivery_address(), Some(&new));
    assert_eq!(state.details.as_ref().unwrap().ship_to.line2.as_deref(), Some("サンプルマンション101"));

    let shipping = given_status(Status::Shipping);
    assert!(decide_address_correction(&shipping, new.clone(), "x", AddressLimits::default())
        .unwrap_err()
        .0
        .contains("もう変更できません"));
    let mut empty = new;
    empty.city = " ".into();
    let refused = decide_address_correction(&given_status(Status::Error), empty, "x", AddressLimits::default());
    assert_eq!(refused.unwrap_err().0, "修正後の住所を受け付けられません: 市区町村が空です");
    let mut long = state_with_address();
    long.line1 = "一".repeat(45);
    let refused = decide_address_correction(&given_status(Status::Error), long, "x", AddressLimits::default());
    assert!(refused.unwrap_err().0.contains("（Amazonの上限は住所1〜3の合計40文字）"));
}

#[test]
fn customer_emails_are_tracked_from_intent_to_outcome() {
    let mut state = given_status(Status::AwaitingConfirmation);
    let intent = OrderEvent::CustomerEmailIntended(CustomerEmailIntended {
        email_id: "e1".into(),
        kind: "payment_guidance".into(),
    });
    state.apply(&intent);
    assert!(state.has_unresolved_email_intent());
    let sent = OrderEvent::CustomerEmailSent(CustomerEmailSent { email_id: "e1".into() });
    assert!(state.check(&sent).is_err(), "no outcome before the attempt");
    let sending = OrderEvent::CustomerEmailSending(CustomerEmailSending { email_id: "e1".into() });
    state.check(&sending).unwrap();
    state.apply(&sending);
    assert!(state.has_unresolved_email_intent(), "an attempt without outcome waits for the operator");
    assert!(state.check(&sending).is_err(), "never attempted twice");
    state.check(&sent).unwrap();
    state.apply(&sent);
    assert!(!state.has_unresolved_email_intent());
    assert!(state.check(&sent).is_err(), "an email is sent at most once");
}

#[test]
fn an_email_still_intended_when_the_order_ends_is_withdrawn_never_sent() {
    let intent = OrderEvent::CustomerEmailIntended(CustomerEmailIntended {
        email_id: "e1".into(),
        kind: "payment_guidance".into(),
    });
    let withdrawn = OrderEvent::CustomerEmailWithdrawn(CustomerEmailWithdrawn {
        email_id: "e1".into(),
        reason: "送信前に注文が SHIPPED になりました".into(),
    });
    let mut open = given_status(Status::AwaitingConfirmation);
    open.apply(&intent);
    assert!(open.check(&withdrawn).is_err(), "an open order's email is still sent");
    let mut shipped = given_status(Status::Shipped);
    shipped.apply(&intent);
    let sending = OrderEvent::CustomerEmailSending(CustomerEmailSending { email_id: "e1".into() });
    assert!(shipped.check(&sending).is_err(), "a final order sends nothing");
    shipped.check(&withdrawn).unwrap();
    shipped.apply(&withdrawn);
    assert!(!shipped.has_unresolved_email_intent(), "nothing left pending");
    assert!(shipped.check(&withdrawn).is_err(), "withdrawn once");
}

#[test]
fn payloads_round_trip_through_the_codec_and_unknown_types_are_named() {
    let upcasters = order_upcasters();
    for event in lifecycle_to(&key(), Status::Shipped) {
        let decoded = OrderEvent::decode_parts(event.event_type(), 1, &event.payload_json(), &upcasters).unwrap();
        assert_eq!(decoded, event);
        assert!(!event.describe().is_empty());
    }
    assert_eq!(
        OrderEvent::decode_parts("OrderTeleported", 1, "{}", &upcasters),
        Err(DecodeError::UnknownType("OrderTeleported".into()))
    );
    let malformed = OrderEvent::decode_parts("OrderVerified", 1, r#"{"note": 5}"#, &upcasters).unwrap_err();
    assert!(matches!(malformed, DecodeError::Malformed { .. }), "{malformed}");
    let newer = OrderEvent::decode_parts("OrderVerified", 9, "{}", &upcasters).unwrap_err();
    assert!(newer.to_string().contains("newer than this build"), "{newer}");
}

#[test]
fn an_old_payload_shape_loads_through_its_upcaster() {
    // Suppose OrderDetected once stored `mall` where it now stores `marketplace` (schema 0 -> 1).
    fn rename_mall(mut value: serde_json::Value) -> Result<serde_json::Value, String> {
        let object = value.as_object_mut().ok_or("not an object")?;
        let mall = object.remove("mall").ok_or("no mall")?;
        object.insert("marketplace".into(), mall);
        Ok(value)
    }
    let upcasters = crate::upcast::Upcasters::new().register("OrderDetected", 0, rename_mall);
    let old = r#"{"mall":"yahoo","order_number":"store-1","via":"mail"}"#;
    let event = OrderEvent::decode_parts("OrderDetected", 0, old, &upcasters).unwrap();
    let OrderEvent::OrderDetected(detected) = event else { panic!() };
    assert_eq!(detected.marketplace, Marketplace::Yahoo);
    assert_eq!(detected.via, DetectionSource::Mail);
}

mod manual_tasks {
    use super::*;
    use crate::order::tasks::{manual_tasks_due, ManualTask};

    fn yahoo() -> OrderKey {
        OrderKey::new(Marketplace::Yahoo, "store-10000001").unwrap()
    }

    fn at(key: OrderKey, status: Status) -> OrderState {
        OrderState::fold(key.clone(), &lifecycle_to(&key, status))
    }

    fn done(task: ManualTask) -> OrderEvent {
        OrderEvent::ManualTaskDone(ManualTaskDone { task: task.as_str().into(), note: String::new() })
    }

    #[test]
    fn yahoo_orders_need_the_order_received_email_from_receipt_until_marked_done() {
        let mut state = at(yahoo(), Status::Received);
        assert_eq!(manual_tasks_due(&state), vec![ManualTask::YahooOrderReceivedEmail]);
        state.apply(&done(ManualTask::YahooOrderReceivedEmail));
        assert_eq!(manual_tasks_due(&state), vec![]);
        assert_eq!(manual_tasks_due(&at(yahoo(), Status::Cancelled)), vec![]);
    }

    #[test]
    fn rakuten_credit_card_orders_need_the_thanks_email_once_shipping_is_requested() {
        assert_eq!(manual_tasks_due(&at(key(), Status::Verified)), vec![]);
        // The sample settles by credit card.
        assert_eq!(manual_tasks_due(&at(key(), Status::ShippingRequested)), vec![ManualTask::RakutenThanksEmail]);
        let mut prepaid = at(key(), Status::ShippingRequested);
        if let Some(details) = prepaid.details.as_mut() {
            details.settlement.kind = SettlementKind::Prepaid;
        }
        assert_eq!(manual_tasks_due(&prepaid), vec![]);
    }

    #[test]
    fn shipped_orders_of_both_marketplaces_need_the_shipping_notice() {
        let shipped = at(key(), Status::Shipped);
        assert!(manual_tasks_due(&shipped).contains(&ManualTask::ShippingNoticeEmail));
        let mut yahoo_shipped = at(yahoo(), Status::Shipped);
        yahoo_shipped.apply(&done(ManualTask::YahooOrderReceivedEmail));
        assert_eq!(manual_tasks_due(&yahoo_shipped), vec![ManualTask::ShippingNoticeEmail]);
        yahoo_shipped.apply(&done(ManualTask::ShippingNoticeEmail));
        assert_eq!(manual_tasks_due(&yahoo_shipped), vec![]);
        assert_eq!(ManualTask::parse("shipping_notice_email"), Some(ManualTask::ShippingNoticeEmail));
        assert_eq!(ManualTask::parse("<script>"), None);
    }
}

#[test]
fn a_refused_cancellation_has_one_way_on_the_return_and_nothing_puts_it_back_on_the_shipping_path() {
    let mut state = given_status(Status::Shipping);
    state.apply(&decide_status_change(&state, Status::Cancelled, "購入者の依頼").unwrap());
    state.apply(&OrderEvent::McfCancelRefused(Reason { reason: "picking has started".into() }));
    assert_eq!(state.status, Some(Status::Error));
    assert!(state.error.as_ref().unwrap().message.contains("返品を手配"), "the problem says what to do");
    assert!(allowed_targets_for(&state).is_empty(), "no VERIFIED, no RECEIVED: the parcel is on its way");
    let refusal = decide_status_change(&state, Status::Verified, "戻す").unwrap_err();
    assert!(refusal.0.contains("返品対応済み"), "{refusal}");
    assert!(decide_return_handled(&state, " ").is_err(), "a note is needed");
    let handled = decide_return_handled(&state, "返品受領、楽天でキャンセル済み").unwrap();
    state.check(&handled).unwrap();
    state.apply(&handled);
    assert_eq!(state.status, Some(Status::Cancelled));
    assert!(decide_return_handled(&given_status(Status::Error), "x").is_err(), "only after a refused cancellation");
}

#[test]
fn a_date_unavailable_order_ships_in_a_slot_amazon_offered_and_no_other() {
    let mut state = given_status(Status::ShippingRequested);
    state.apply(&OrderEvent::DeliverySlotUnavailable(DeliverySlotUnavailable {
        requested: "2026-11-25 12-14".into(),
        offered: vec!["2026-11-25 14-16".into(), "2026-11-26 08-12".into()],
    }));
    assert_eq!(state.status, Some(Status::DateUnavailable));
    let refusal = decide_slot_choice(&state, "2026-11-25 19-21", "お客様と調整").unwrap_err();
    assert!(refusal.0.contains("提示された枠: 2026-11-25 14-16, 2026-11-26 08-12"), "{refusal}");
    assert!(decide_slot_choice(&state, "2026-11-25 14-16", "").is_err(), "a reason is needed");
    let chosen = decide_slot_choice(&state, "2026-11-25 14-16", "お客様と電話で調整").unwrap();
    state.check(&chosen).unwrap();
    state.apply(&chosen);
    assert_eq!(state.status, Some(Status::ShippingRequested));
    assert_eq!(state.delivery_slot_chosen.as_deref(), Some("2026-11-25 14-16"));
    assert!(decide_slot_choice(&state, "2026-11-25 14-16", "again").is_err(), "only from DATE_UNAVAILABLE");
}

#[test]
fn a_memo_is_kept_on_any_order_even_a_final_one() {
    let mut state = given_status(Status::Shipped);
    assert!(decide_memo(&state, "  ").is_err());
    assert!(decide_memo(&state, &"長".repeat(501)).is_err());
    let memo = decide_memo(&state, "お客様から電話: 受取日の確認").unwrap();
    state.check(&memo).unwrap();
    state.apply(&memo);
    assert_eq!(state.memos, ["お客様から電話: 受取日の確認"]);
}
