//! What a marketplace's view of an order means for the ledger. The adapters only translate: RMS's
//! JSON and Yahoo's XML each become a [`MarketplaceView`] (details, hold, cancelled, confirmed,
//! ready to ship). This one decision turns a view into events, for every marketplace; what
//! differs between them (Rakuten's two-step confirmation, where the shop checks a payment) is
//! named in [`MarketplaceRules`], not spread over the adapters.

use super::{
    CancelSource, CancellationRequested, CustomerEmailIntended, DetectionSource, Note, OrderDetails, OrderDetected,
    OrderEvent, OrderFailed, OrderState, OutsideWrite, Reason, Settlement, SettlementKind, Status, WriteDone,
    WriteState,
};
use crate::Marketplace;

/// One order as the marketplace's API shows it, in the ledger's words.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketplaceView {
    pub marketplace: Marketplace,
    pub order_number: String,
    /// The call the order was read with, recorded with its detection.
    pub read_with: String,
    /// The order's details, or why the marketplace's answer cannot be used.
    pub details: Result<OrderDetails, String>,
    /// Why the marketplace holds the order (its flag, in words).
    pub hold: Option<String>,
    /// The marketplace cancelled the order: its status, in words.
    pub cancelled: Option<String>,
    /// The marketplace has the shop's confirmation (Rakuten's first step): how we know.
    pub confirmed: Option<String>,
    /// Ready to ship (processed, out of any cancel window, paid when prepaid): how we know.
    pub ready_to_ship: Option<String>,
    /// Shipped or cancelled before this system first saw the order: not ours to ship.
    pub closed_before_first_sight: bool,
}

/// What differs between the marketplaces' intake, as the operating guide describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketplaceRules {
    /// The shop confirms each order first (楽天の2段階確認) and then waits for the marketplace.
    pub two_step_confirmation: bool,
    /// A prepaid order gets the shop's payment-guidance email when it is confirmed.
    pub payment_guidance: bool,
    /// The marketplace's own name, in messages.
    pub name: &'static str,
    /// Its order API, in messages.
    pub api: &'static str,
    /// Where the shop checks an order by hand, in messages.
    pub admin_screen: &'static str,
    /// The OrderFailed code of an answer that cannot be used.
    pub unusable_code: &'static str,
}

impl MarketplaceRules {
    pub fn of(marketplace: Marketplace) -> Self {
        match marketplace {
            Marketplace::Rakuten => Self {
                two_step_confirmation: true,
                payment_guidance: true,
                name: "Rakuten",
                api: "RMS",
                admin_screen: "RMS",
                unusable_code: "RMS_ORDER",
            },
            Marketplace::Yahoo => Self {
                two_step_confirmation: false,
                payment_guidance: false,
                name: "Yahoo",
                api: "Yahoo",
                admin_screen: "Store Creator",
                unusable_code: "YAHOO_ORDER",
            },
        }
    }
}

/// The customer email the operating guide sends to prepaid buyers at confirmation.
pub const PAYMENT_GUIDANCE: &str = "payment_guidance";

/// The payment-guidance email's id: one per order, so it is intended once.
pub fn payment_guidance_email_id(marketplace: Marketplace, order_number: &str) -> String {
    format!("payment-guidance-{}-{order_number}", marketplace.as_str())
}

/// What `view` adds to what the ledger knows of the order, in order; each event is valid after
/// the ones before it (the state machine checks them again on append).
pub fn decide(state: &OrderState, view: &MarketplaceView) -> Vec<OrderEvent> {
    let rules = MarketplaceRules::of(view.marketplace);
    let mut decision = Decision { state: state.clone(), events: Vec::new() };
    if decision.state.status.is_some_and(Status::is_final)
        || (decision.state.status.is_none() && view.closed_before_first_sight)
    {
        return Vec::new();
    }
    if !decision.state.detected_via.contains(&DetectionSource::Api) {
        decision.push(OrderEvent::OrderDetected(OrderDetected {
            marketplace: view.marketplace,
            order_number: view.order_number.clone(),
            via: DetectionSource::Api,
            reference: Some(view.read_with.clone()),
        }));
    }
    if !decision.record_details(view, rules) {
        return decision.events;
    }
    if rules.two_step_confirmation
        && decision.state.status == Some(Status::Received)
        && decision.state.details.is_some()
    {
        decision.push(OrderEvent::AwaitingConfirmation(Reason {
            reason: format!("楽天の2段階確認: waiting for {} to make the order ready to ship", rules.name),
        }));
    }
    if let Some(event) = hold_change(decision.state.hold.as_ref(), view.hold.clone(), rules.name) {
        decision.push(event);
    }
    if let Some(reason) = &view.cancelled {
        if decision.state.cancel_requested.is_none() && !decision.state.cancelled_by_marketplace {
            decision.push(OrderEvent::CancellationRequested(CancellationRequested {
                source: CancelSource::Marketplace,
                reason: reason.clone(),
            }));
            return decision.events;
        }
    }
    // The marketplace has the order confirmed (our confirmation whose answer was lost, or the
    // shop's own): read, never asked again.
    if let Some(note) = view.confirmed.as_deref().filter(|_| rules.two_step_confirmation) {
        if decision.state.status == Some(Status::AwaitingConfirmation) && !decision.state.marketplace_confirmed {
            for event in confirmed(&decision.state, note) {
                decision.push(event);
            }
        }
    }
    let verifiable = if rules.two_step_confirmation { Status::AwaitingConfirmation } else { Status::Received };
    if let Some(ready) = &view.ready_to_ship {
        if decision.state.status == Some(verifiable) && decision.state.hold.is_none() {
            let prepaid = decision.state.details.as_ref().is_some_and(|d| d.settlement.kind == SettlementKind::Prepaid);
            if prepaid && !decision.state.payment_confirmed {
                decision.push(OrderEvent::PaymentConfirmed(Note {
                    note: format!("{} shows it paid: {ready}", rules.name),
                }));
            }
            decision.push(OrderEvent::OrderVerified(Note { note: ready.clone() }));
        }
    }
    decision.events
}

/// Events recorded once the marketplace has the order confirmed (our confirmation answered, or
/// read back): the confirmation write done (or, when we never sent one, the confirmation seen),
/// and where the guide says so, the payment-guidance email intended once for a prepaid order.
pub fn confirmed(state: &OrderState, note: &str) -> Vec<OrderEvent> {
    let write = OutsideWrite::RakutenConfirm;
    let mut events = vec![if state.write(write) == Some(&WriteState::Intended) {
        OrderEvent::WriteDone(WriteDone { write, note: note.to_owned() })
    } else {
        OrderEvent::MarketplaceConfirmed(Note { note: note.to_owned() })
    }];
    let Some(key) = &state.key else { return events };
    let prepaid = state.details.as_ref().is_some_and(|d| d.settlement.kind == SettlementKind::Prepaid);
    if MarketplaceRules::of(key.marketplace).payment_guidance
        && prepaid
        && !state.emails.iter().any(|e| e.kind == PAYMENT_GUIDANCE)
    {
        events.push(OrderEvent::CustomerEmailIntended(CustomerEmailIntended {
            email_id: payment_guidance_email_id(key.marketplace, &key.order_number),
            kind: PAYMENT_GUIDANCE.into(),
        }));
    }
    events
}

/// Why an order paid this way cannot go through MCF by itself (`admin_screen`: where the shop
/// checks the payment, named in the message).
pub fn settlement_problem(settlement: &Settlement, admin_screen: &str) -> Option<String> {
    match settlement.kind {
        SettlementKind::Other => Some(format!(
            "不明な決済方法 {}（{}）: {admin_screen}で入金を確認してから VERIFIED にしてください",
            settlement.code, settlement.name
        )),
        SettlementKind::CashOnDelivery => {
            Some("代金引換: Amazon MCFは代金を回収できません。この注文は手作業で出荷してください".into())
        }
        SettlementKind::CreditCard | SettlementKind::Prepaid => None,
    }
}

/// The marketplace's hold flag against the ledger's: a new or changed hold, a release, or nothing.
fn hold_change(current: Option<&String>, flagged: Option<String>, marketplace: &str) -> Option<OrderEvent> {
    match (flagged, current) {
        (Some(reason), current) if current != Some(&reason) => Some(OrderEvent::OrderHeld(Reason { reason })),
        (None, Some(_)) => {
            Some(OrderEvent::HoldReleased(Note { note: format!("{marketplace} no longer holds the order") }))
        }
        _ => None,
    }
}

fn failed_at_receive(code: &str, message: String) -> OrderEvent {
    OrderEvent::OrderFailed(OrderFailed { stage: "receive".into(), code: Some(code.to_owned()), message })
}

/// The events decided so far, and the state they lead to.
struct Decision {
    state: OrderState,
    events: Vec<OrderEvent>,
}

impl Decision {
    fn push(&mut self, event: OrderEvent) {
        self.state.apply(&event);
        self.events.push(event);
    }

    /// Records new or changed details (never once the parcel is with Amazon); false when the
    /// intake ends here: an order paid in a way MCF cannot take, or an answer that cannot be used.
    fn record_details(&mut self, view: &MarketplaceView, rules: MarketplaceRules) -> bool {
        let first = self.state.details.is_none();
        let editable = first || !matches!(self.state.status, Some(Status::Shipping | Status::Shipped));
        match &view.details {
            Ok(new) if editable && self.state.details.as_ref() != Some(new) => {
                let problem = settlement_problem(&new.settlement, rules.admin_screen);
                self.push(OrderEvent::OrderDetailsRecorded(new.clone()));
                match problem {
                    Some(message) if first => {
                        self.push(failed_at_receive("SETTLEMENT", message));
                        false
                    }
                    _ => true,
                }
            }
            Err(reason) if first => {
                let message = format!("{}の注文データを使えません（{}の応答: {reason}）", rules.api, rules.api);
                let told = self.state.error.as_ref().is_some_and(|e| e.message == message);
                if !told && self.state.status != Some(Status::Error) {
                    self.push(failed_at_receive(rules.unusable_code, message));
                }
                false
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::sample;
    use crate::order::testing::{given, given_nothing, Given};
    use crate::OrderKey;

    fn rakuten() -> OrderKey {
        OrderKey::new(Marketplace::Rakuten, "123456-20261122-00000001").unwrap()
    }

    fn yahoo() -> OrderKey {
        OrderKey::new(Marketplace::Yahoo, "green-tea-10000001").unwrap()
    }

    /// A view as an adapter gives it: a card order, nothing flagged, not yet ready.
    fn view(key: &OrderKey) -> MarketplaceView {
        MarketplaceView {
            marketplace: key.marketplace,
            order_number: key.order_number.clone(),
            read_with: "getOrder".into(),
            details: Ok(sample::details("楽天 花子", "tea-100", 1)),
            hold: None,
            cancelled: None,
            confirmed: None,
            ready_to_ship: None,
            closed_before_first_sight: false,
        }
    }

    fn prepaid(mut view: MarketplaceView) -> MarketplaceView {
        if let Ok(details) = &mut view.details {
            details.settlement =
                Settlement { code: "9".into(), name: "銀行振込".into(), kind: SettlementKind::Prepaid };
        }
        view
    }

    fn ready(mut view: MarketplaceView, note: &str) -> MarketplaceView {
        view.confirmed = Some(note.into());
        view.ready_to_ship = Some(note.into());
        view
    }

    #[test]
    fn given_a_new_rakuten_order_when_seen_then_detected_recorded_and_awaiting_confirmation() {
        let state = given_nothing(&rakuten()).when(|s| decide(s, &view(&rakuten()))).then_expect_types(&[
            "OrderDetected",
            "OrderDetailsRecorded",
            "AwaitingConfirmation",
        ]);
        assert_eq!(state.status, Some(Status::AwaitingConfirmation));
        Given::state(state).when(|s| decide(s, &view(&rakuten()))).then_expect_nothing();
    }

    #[test]
    fn given_a_new_yahoo_order_when_ready_then_verified_without_a_confirmation_step() {
        let seen = given_nothing(&yahoo())
            .when(|s| decide(s, &view(&yahoo())))
            .then_expect_types(&["OrderDetected", "OrderDetailsRecorded"]);
        assert_eq!(seen.status, Some(Status::Received), "in the cancel window: seen, not verified");
        let mut shippable = view(&yahoo());
        shippable.ready_to_ship = Some("Yahoo: out of the cancel window, shippable".into());
        Given::state(seen).when(|s| decide(s, &shippable)).then_expect_events(&[OrderEvent::OrderVerified(Note {
            note: "Yahoo: out of the cancel window, shippable".into(),
        })]);
    }

    #[test]
    fn given_awaiting_when_rakuten_shows_it_ready_then_confirmed_seen_and_verified() {
        given(&rakuten(), &decide(&OrderState::new(rakuten()), &view(&rakuten())))
            .when(|s| decide(s, &ready(view(&rakuten()), "orderProgress 300")))
            .then_expect_types(&["MarketplaceConfirmed", "OrderVerified"]);
    }

    #[test]
    fn given_a_confirmation_whose_answer_was_lost_when_read_back_then_the_write_is_done_once() {
        let mut history = decide(&OrderState::new(rakuten()), &prepaid(view(&rakuten())));
        history.push(OrderEvent::WriteIntended(super::super::WriteIntended { write: OutsideWrite::RakutenConfirm }));
        let mut confirmed_view = prepaid(view(&rakuten()));
        confirmed_view.confirmed = Some("RMS shows orderProgress 200".into());
        let state = given(&rakuten(), &history)
            .when(|s| decide(s, &confirmed_view))
            .then_expect_types(&["WriteDone", "CustomerEmailIntended"]);
        assert!(state.marketplace_confirmed);
        assert_eq!(state.write(OutsideWrite::RakutenConfirm), Some(&WriteState::Done));
        Given::state(state).when(|s| decide(s, &confirmed_view)).then_expect_nothing();
    }

    #[test]
    fn given_a_prepaid_order_then_the_guidance_is_intended_once_and_ready_means_paid() {
        let state = given(&rakuten(), &decide(&OrderState::new(rakuten()), &prepaid(view(&rakuten()))))
            .when(|s| confirmed(s, "confirmOrder"))
            .then_expect_events(&[
                OrderEvent::MarketplaceConfirmed(Note { note: "confirmOrder".into() }),
                OrderEvent::CustomerEmailIntended(CustomerEmailIntended {
                    email_id: "payment-guidance-rakuten-123456-20261122-00000001".into(),
                    kind: PAYMENT_GUIDANCE.into(),
                }),
            ]);
        let again = confirmed(&state, "confirmOrder");
        assert_eq!(again.len(), 1, "the guidance email is intended once: {again:?}");
        Given::state(state)
            .when(|s| decide(s, &ready(prepaid(view(&rakuten())), "orderProgress 300")))
            .then_expect_types(&["PaymentConfirmed", "OrderVerified"]);
    }

    #[test]
    fn given_a_flag_then_held_with_the_reason_and_released_when_cleared() {
        let awaiting = decide(&OrderState::new(rakuten()), &view(&rakuten()));
        let mut flagged = ready(view(&rakuten()), "orderProgress 300");
        flagged.hold = Some("楽天確認中".into());
        let held = given(&rakuten(), &awaiting)
            .when(|s| decide(s, &flagged))
            .then_expect_types(&["OrderHeld", "MarketplaceConfirmed"]);
        assert_eq!(held.status, Some(Status::AwaitingConfirmation), "held orders are not verified");
        Given::state(held)
            .when(|s| decide(s, &ready(view(&rakuten()), "orderProgress 300")))
            .then_expect_types(&["HoldReleased", "OrderVerified"]);
    }

    #[test]
    fn given_a_cancellation_then_requested_once_and_not_again_after_amazon_refused_it() {
        let mut history = decide(&OrderState::new(yahoo()), &ready(view(&yahoo()), "shippable"));
        history.push(sample::allotted());
        history.extend(sample::mcf_created(&yahoo()));
        let mut cancelled = view(&yahoo());
        cancelled.cancelled = Some("Yahoo OrderStatus 4 (キャンセル)".into());
        let mut state =
            given(&yahoo(), &history).when(|s| decide(s, &cancelled)).then_expect_types(&["CancellationRequested"]);
        state.apply(&OrderEvent::McfCancelRefused(Reason { reason: "picking has started".into() }));
        assert_eq!(state.status, Some(Status::Error));
        Given::state(state).when(|s| decide(s, &cancelled)).then_expect_nothing();
    }

    #[test]
    fn given_cash_on_delivery_or_an_unknown_method_then_error_naming_where_to_check() {
        let mut unknown = view(&yahoo());
        if let Ok(details) = &mut unknown.details {
            details.settlement =
                Settlement { code: "payment_z9".into(), name: "謎".into(), kind: SettlementKind::Other };
        }
        let then = given_nothing(&yahoo()).when(|s| decide(s, &unknown));
        let OrderEvent::OrderFailed(failed) = &then.events()[2] else { panic!("{:?}", then.events()) };
        assert!(failed.message.contains("Store Creatorで入金を確認"), "{}", failed.message);
        let state = then.then_expect_types(&["OrderDetected", "OrderDetailsRecorded", "OrderFailed"]);
        assert_eq!(state.status, Some(Status::Error));
    }

    #[test]
    fn given_an_unusable_answer_then_one_error_and_nothing_when_seen_again() {
        let mut broken = view(&rakuten());
        broken.details = Err("no package".into());
        let state =
            given_nothing(&rakuten()).when(|s| decide(s, &broken)).then_expect_types(&["OrderDetected", "OrderFailed"]);
        assert!(state.error.as_ref().unwrap().message.contains("RMSの注文データを使えません（RMSの応答: no package）"));
        Given::state(state).when(|s| decide(s, &broken)).then_expect_nothing();
    }

    #[test]
    fn an_order_first_seen_closed_or_final_orders_add_nothing() {
        let mut closed = view(&rakuten());
        closed.closed_before_first_sight = true;
        given_nothing(&rakuten()).when(|s| decide(s, &closed)).then_expect_nothing();
        let shipped = sample::lifecycle_to(&rakuten(), Status::Shipped);
        given(&rakuten(), &shipped).when(|s| decide(s, &view(&rakuten()))).then_expect_nothing();
    }
}
