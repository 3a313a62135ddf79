//! The order as it stands: a pure fold of its events.

use super::event::*;
use super::Status;
use crate::ids::{FulfillmentOrderId, OrderKey};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    Intended,
    /// Handed to SMTP; no outcome recorded (yet).
    Sending,
    Sent,
    Failed(String),
    /// Not sent, and never will be: the order ended first.
    Withdrawn(String),
}

/// Where a marketplace write stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteState {
    /// Sent, or about to be, with no outcome recorded: read the marketplace before sending again.
    Intended,
    /// Accepted for later processing under this request id: ask for its result, or read the
    /// marketplace; never send again while it may still be processed.
    Submitted(String),
    Done,
    /// Refused by the marketplace, with its message: an operator decides.
    Failed(String),
}

impl WriteState {
    /// Sent (or about to be) and its outcome not yet known.
    pub fn awaits_outcome(&self) -> bool {
        matches!(self, Self::Intended | Self::Submitted(_))
    }
}

/// The error code of an order whose cancellation Amazon refused (its own recovery path).
pub const CANCEL_REFUSED: &str = "CANCEL_REFUSED";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailRecord {
    pub email_id: String,
    pub kind: String,
    pub state: EmailState,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct OrderState {
    pub key: Option<OrderKey>,
    /// The stream version this state was folded up to.
    pub version: i64,
    /// None until the order's first event.
    pub status: Option<Status>,
    pub detected_via: Vec<DetectionSource>,
    pub details: Option<OrderDetails>,
    /// The operator's corrected delivery address, which replaces the marketplace's.
    pub corrected_address: Option<Address>,
    pub hold: Option<String>,
    pub marketplace_confirmed: bool,
    pub payment_confirmed: bool,
    pub allotted: Vec<AllottedLine>,
    pub shortage: Vec<Shortage>,
    pub error: Option<OrderFailed>,
    pub mcf_intent: Option<McfCreateIntended>,
    pub mcf_order_id: Option<FulfillmentOrderId>,
    pub shipping_speed: Option<ShippingSpeed>,
    pub speed_reason: Option<String>,
    /// The marketplace's delivery promise the chosen speed misses: a task for the operator.
    pub promise_missed: Option<String>,
    pub delivery_slot_unavailable: Option<DeliverySlotUnavailable>,
    /// Set by the operator's DATE_UNAVAILABLE -> SHIPPING_REQUESTED: ship normally, no slot.
    pub delivery_slot_dropped: bool,
    /// The slot the operator agreed with the customer instead (one Amazon offered).
    pub delivery_slot_chosen: Option<String>,
    /// Amazon refused to cancel (the parcel is picked or on its way): the operator arranges its
    /// return, then records it; until then the order waits in ERROR for nothing else.
    pub cancel_refused: Option<String>,
    /// The operators' memos, oldest first.
    pub memos: Vec<String>,
    pub tracking: Option<Tracking>,
    pub shipment_reported: bool,
    /// A cancellation waiting for the MCF order to be cancelled first.
    pub cancel_requested: Option<CancellationRequested>,
    /// The marketplace cancelled the order and we acted on it once; if Amazon refused, the
    /// operator resolves it (asking again every cycle would change nothing).
    pub cancelled_by_marketplace: bool,
    pub emails: Vec<EmailRecord>,
    /// Each marketplace write this order needed, and where it stands.
    pub writes: std::collections::BTreeMap<OutsideWrite, WriteState>,
    /// When each write was last intended or submitted: how long its outcome has been awaited.
    pub writes_since: std::collections::BTreeMap<OutsideWrite, DateTime<Utc>>,
    pub tasks_done: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When the order became SHIPPING (the stale warning counts from here).
    pub shipping_since: Option<DateTime<Utc>>,
}

/// A system event that cannot happen in the order's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} is not possible for order {order} in status {status}: {why}")]
pub struct TransitionError {
    pub order: String,
    pub event_type: String,
    pub status: String,
    pub why: String,
}

impl OrderState {
    pub fn new(key: OrderKey) -> Self {
        Self { key: Some(key), ..Self::default() }
    }

    pub fn fold<'a>(key: OrderKey, events: impl IntoIterator<Item = &'a OrderEvent>) -> Self {
        let mut state = Self::new(key);
        for event in events {
            state.apply(event);
        }
        state
    }

    /// The address to ship to: the operator's correction if any, else the marketplace's.
    pub fn delivery_address(&self) -> Option<&Address> {
        self.corrected_address.as_ref().or(self.details.as_ref().map(|d| &d.ship_to))
    }

    pub fn status_or_new(&self) -> String {
        self.status.map_or_else(|| "(new)".to_owned(), |s| s.to_string())
    }

    /// An MCF order may exist at Amazon: created, or intended with no outcome recorded.
    pub fn mcf_order_may_exist(&self) -> bool {
        self.mcf_order_id.is_some() || self.mcf_intent.is_some()
    }

    /// An email intended, or handed to SMTP with no outcome: the operator's to-do list.
    pub fn has_unresolved_email_intent(&self) -> bool {
        self.emails.iter().any(|e| matches!(e.state, EmailState::Intended | EmailState::Sending))
    }

    /// Records the stream position bookkeeping that comes with a stored event.
    pub fn apply_recorded(&mut self, event: &OrderEvent, version: i64, at: DateTime<Utc>) {
        let before = self.status;
        self.apply(event);
        if self.status == Some(Status::Shipping) && before != Some(Status::Shipping) {
            self.shipping_since = Some(at);
        }
        match event {
            OrderEvent::WriteIntended(super::WriteIntended { write })
            | OrderEvent::WriteSubmitted(super::WriteSubmitted { write, .. }) => {
                self.writes_since.insert(*write, at);
            }
            _ => {}
        }
        self.version = version;
        self.created_at.get_or_insert(at);
        self.updated_at = Some(at);
    }

    /// Folds one event. Events are facts: this never refuses; `check` guards new ones.
    pub fn apply(&mut self, event: &OrderEvent) {
        use OrderEvent as E;
        match event {
            E::OrderDetected(detected) => self.on_detected(detected),
            E::OrderDetailsRecorded(details) => {
                self.details = Some(details.clone());
                self.status.get_or_insert(Status::Received);
            }
            E::AwaitingConfirmation(_) => self.status = Some(Status::AwaitingConfirmation),
            E::MarketplaceConfirmed(_) => self.marketplace_confirmed = true,
            E::PaymentConfirmed(_) => self.payment_confirmed = true,
            E::OrderHeld(hold) => self.hold = Some(hold.reason.clone()),
            E::HoldReleased(_) => self.hold = None,
            E::OrderVerified(_) => self.on_verified(),
            E::StockAllotted(allotted) => self.on_allotted(allotted),
            E::OutOfStock(out) => {
                self.status = Some(Status::OutOfStock);
                self.shortage = out.short.clone();
            }
            E::OrderFailed(failed) => {
                self.status = Some(Status::Error);
                self.error = Some(failed.clone());
            }
            E::McfCreateIntended(intent) => self.mcf_intent = Some(intent.clone()),
            E::McfOrderCreated(created) => self.on_mcf_created(created),
            E::McfCreateRejected(rejected) => self.on_mcf_rejected(rejected),
            E::DeliverySlotUnavailable(unavailable) => {
                self.status = Some(Status::DateUnavailable);
                self.delivery_slot_unavailable = Some(unavailable.clone());
            }
            E::TrackingRecorded(tracking) => self.tracking = Some(tracking.clone()),
            E::ShipmentReported(tracking) => self.on_shipment_reported(tracking),
            E::CancellationRequested(cancel) => self.on_cancellation_requested(cancel),
            E::McfOrderCancelled(_) => self.on_mcf_cancelled(),
            E::McfCancelRefused(refused) => self.on_cancel_refused(refused),
            E::ReturnHandled(_) => self.on_return_handled(),
            E::DeliverySlotChosen(chosen) => self.on_slot_chosen(chosen),
            E::MemoAdded(memo) => self.memos.push(memo.note.clone()),
            E::OperatorStatusChanged(change) => self.on_operator_status_changed(change),
            E::AddressCorrected(corrected) => self.corrected_address = Some(corrected.new.clone()),
            E::CustomerEmailIntended(intent) => self.emails.push(EmailRecord {
                email_id: intent.email_id.clone(),
                kind: intent.kind.clone(),
                state: EmailState::Intended,
            }),
            E::CustomerEmailSending(sending) => self.set_email_state(&sending.email_id, EmailState::Sending),
            E::CustomerEmailSent(sent) => self.set_email_state(&sent.email_id, EmailState::Sent),
            E::CustomerEmailWithdrawn(withdrawn) => {
                self.set_email_state(&withdrawn.email_id, EmailState::Withdrawn(withdrawn.reason.clone()))
            }
            E::CustomerEmailFailed(failed) => {
                self.set_email_state(&failed.email_id, EmailState::Failed(failed.error.clone()))
            }
            E::ManualTaskDone(done) => self.on_task_done(done),
            E::WriteIntended(intent) => {
                self.writes.insert(intent.write, WriteState::Intended);
            }
            E::WriteSubmitted(submitted) => {
                self.writes.insert(submitted.write, WriteState::Submitted(submitted.request_id.clone()));
            }
            E::WriteDone(done) => self.on_write_done(done),
            E::WriteFailed(failed) => {
                self.writes.insert(failed.write, WriteState::Failed(failed.message.clone()));
            }
        }
    }

    fn on_detected(&mut self, detected: &super::OrderDetected) {
        if !self.detected_via.contains(&detected.via) {
            self.detected_via.push(detected.via);
        }
        self.status.get_or_insert(Status::Received);
    }

    fn on_verified(&mut self) {
        self.status = Some(Status::Verified);
        self.error = None;
        self.shortage.clear();
    }

    fn on_allotted(&mut self, allotted: &super::StockAllotted) {
        self.status = Some(Status::ShippingRequested);
        self.allotted = allotted.lines.clone();
        self.shortage.clear();
    }

    fn on_mcf_created(&mut self, created: &super::McfOrderCreated) {
        self.status = Some(Status::Shipping);
        self.mcf_order_id = Some(created.fulfillment_order_id.clone());
        self.shipping_speed = Some(created.speed);
        self.speed_reason = self.mcf_intent.as_ref().map(|i| i.reason.clone());
        self.promise_missed = self.mcf_intent.as_ref().and_then(|i| i.promise_missed.clone());
        self.mcf_intent = None;
        self.error = None;
    }

    fn on_mcf_rejected(&mut self, rejected: &super::McfCreateRejected) {
        self.status = Some(Status::Error);
        self.mcf_intent = None;
        self.error = Some(OrderFailed {
            stage: "ship".into(),
            code: Some(rejected.code.clone()),
            message: format!("Amazonが出荷依頼を受け付けませんでした。Amazonのメッセージ: {}", rejected.message),
        });
    }

    fn on_shipment_reported(&mut self, tracking: &super::Tracking) {
        self.status = Some(Status::Shipped);
        self.tracking.get_or_insert_with(|| tracking.clone());
        self.shipment_reported = true;
    }

    fn on_cancellation_requested(&mut self, cancel: &super::CancellationRequested) {
        self.cancelled_by_marketplace |= cancel.source == CancelSource::Marketplace;
        if self.mcf_order_may_exist() {
            // Amazon must cancel first; the order stays where it is until then.
            self.cancel_requested = Some(cancel.clone());
        } else {
            self.status = Some(Status::Cancelled);
            self.cancel_requested = None;
        }
    }

    fn on_mcf_cancelled(&mut self) {
        self.status = Some(Status::Cancelled);
        self.cancel_requested = None;
        self.mcf_intent = None;
    }

    fn on_cancel_refused(&mut self, refused: &super::Reason) {
        self.status = Some(Status::Error);
        self.cancel_requested = None;
        self.cancel_refused = Some(refused.reason.clone());
        self.error = Some(OrderFailed {
            stage: "cancel".into(),
            code: Some(CANCEL_REFUSED.into()),
            message: format!(
                "Amazonが取り消しを受け付けませんでした（ピッキング済み・発送済みの可能性）。荷物は届きます: 返品を手配し、戻ったらモールでキャンセル・返金して「返品対応済み」を記録してください。Amazonのメッセージ: {}",
                refused.reason
            ),
        });
    }

    fn on_return_handled(&mut self) {
        self.status = Some(Status::Cancelled);
        self.cancel_refused = None;
        self.error = None;
    }

    fn on_slot_chosen(&mut self, chosen: &super::DeliverySlotChosen) {
        self.status = Some(Status::ShippingRequested);
        self.delivery_slot_chosen = Some(chosen.slot.clone());
        self.delivery_slot_dropped = false;
    }

    fn on_operator_status_changed(&mut self, change: &super::OperatorStatusChanged) {
        self.status = Some(change.to);
        match (change.from, change.to) {
            (Status::DateUnavailable, Status::ShippingRequested) => self.delivery_slot_dropped = true,
            (_, Status::Verified) | (_, Status::Received) => {
                self.error = None;
                self.shortage.clear();
            }
            _ => {}
        }
    }

    fn on_task_done(&mut self, done: &super::ManualTaskDone) {
        if !self.tasks_done.contains(&done.task) {
            self.tasks_done.push(done.task.clone());
        }
    }

    fn on_write_done(&mut self, done: &super::WriteDone) {
        self.writes.insert(done.write, WriteState::Done);
        if done.write == OutsideWrite::RakutenConfirm {
            self.marketplace_confirmed = true;
        }
    }

    /// Where a marketplace write stands (None: never intended).
    pub fn write(&self, write: OutsideWrite) -> Option<&WriteState> {
        self.writes.get(&write)
    }

    /// Writes sent with no outcome, or refused: what the order and the health page show.
    pub fn writes_open(&self) -> Vec<(OutsideWrite, &WriteState)> {
        self.writes.iter().filter(|(_, state)| **state != WriteState::Done).map(|(w, s)| (*w, s)).collect()
    }

    fn set_email_state(&mut self, email_id: &str, state: EmailState) {
        if let Some(record) = self.emails.iter_mut().find(|e| e.email_id == email_id) {
            record.state = state;
        }
    }

    /// Whether a system (reactor) event is possible now. Operator changes go through
    /// [`super::operator`] instead, which explains the allowed alternatives.
    pub fn check(&self, event: &OrderEvent) -> Result<(), TransitionError> {
        match self.refusal(event) {
            None => Ok(()),
            Some(why) => Err(TransitionError {
                order: self.key.as_ref().map_or_else(|| "?".to_owned(), |k| k.to_string()),
                event_type: event.event_type().to_owned(),
                status: self.status_or_new(),
                why: why.to_owned(),
            }),
        }
    }

    /// Why the state machine refuses `event` in this state; None when it may be appended.
    fn refusal(&self, event: &OrderEvent) -> Option<&'static str> {
        use OrderEvent as E;
        use Status as S;
        let status = self.status;
        let refuse = Some;
        let is = |allowed: &[Status]| status.is_some_and(|s| allowed.contains(&s));
        if status.is_some_and(Status::is_final) && !allowed_on_a_final_order(event) {
            return refuse("the order is final");
        }
        match event {
            E::OrderDetected(_) | E::OrderDetailsRecorded(_) => None,
            _ if status.is_none() => refuse("the order has not been detected yet"),
            E::AwaitingConfirmation(_) if !is(&[S::Received]) => refuse("only a RECEIVED order awaits confirmation"),
            E::OrderVerified(_) if !is(&[S::Received, S::AwaitingConfirmation]) => {
                refuse("only RECEIVED or AWAITING_CONFIRMATION orders are verified")
            }
            E::OrderVerified(_) if self.details.is_none() => {
                refuse("the marketplace API has not confirmed this order (mail alone never verifies)")
            }
            E::OrderVerified(_) if self.hold.is_some() => refuse("the order is held by the marketplace"),
            E::StockAllotted(_) | E::OutOfStock(_) if !is(&[S::Verified]) => {
                refuse("stock is checked only for VERIFIED orders")
            }
            E::McfCreateIntended(_) | E::DeliverySlotUnavailable(_) if !is(&[S::ShippingRequested]) => {
                refuse("only SHIPPING_REQUESTED orders are shipped")
            }
            E::McfCreateIntended(_) if self.cancel_requested.is_some() => refuse("a cancellation is pending"),
            E::McfCreateRejected(_) if self.mcf_intent.is_none() => refuse("no MCF order was requested for this order"),
            E::McfOrderCreated(_) if !is(&[S::ShippingRequested]) && self.mcf_intent.is_none() => {
                refuse("no MCF order was requested for this order")
            }
            E::TrackingRecorded(_) if !is(&[S::Shipping, S::Shipped]) => {
                refuse("tracking exists only for SHIPPING orders")
            }
            E::ShipmentReported(_) if !is(&[S::Shipping]) => refuse("only SHIPPING orders are reported as shipped"),
            E::ShipmentReported(_) if self.tracking.is_none() => refuse("there is no tracking number to report"),
            E::McfOrderCancelled(_) | E::McfCancelRefused(_) if self.cancel_requested.is_none() => {
                refuse("no cancellation was requested")
            }
            E::AddressCorrected(_) if is(&[S::Shipping]) => refuse("the parcel is already with Amazon"),
            E::CustomerEmailSending(sending) if !self.email_is(&sending.email_id, EmailState::Intended) => {
                refuse("that email is not waiting to be sent (at most once)")
            }
            E::CustomerEmailSent(sent) if !self.email_is(&sent.email_id, EmailState::Sending) => {
                refuse("that email was not being sent")
            }
            E::CustomerEmailWithdrawn(withdrawn) if !self.email_is(&withdrawn.email_id, EmailState::Intended) => {
                refuse("only an email not yet sent can be withdrawn")
            }
            E::CustomerEmailWithdrawn(_) if !status.is_some_and(Status::is_final) => {
                refuse("an email is withdrawn only once the order has ended")
            }
            E::CustomerEmailFailed(failed) if !self.email_is(&failed.email_id, EmailState::Sending) => {
                refuse("that email was not being sent")
            }
            E::WriteDone(WriteDone { write, .. }) | E::WriteFailed(WriteFailed { write, .. })
                if !self.write(*write).is_some_and(WriteState::awaits_outcome) =>
            {
                refuse("that write was not intended, or already has its outcome")
            }
            E::WriteSubmitted(submitted) if self.write(submitted.write) != Some(&WriteState::Intended) => {
                refuse("only an intended write can be submitted")
            }
            E::ReturnHandled(_) if self.cancel_refused.is_none() => {
                refuse("only an order whose cancellation Amazon refused has a return to handle")
            }
            E::DeliverySlotChosen(_) if !is(&[S::DateUnavailable]) => {
                refuse("a slot is chosen only for a DATE_UNAVAILABLE order")
            }
            E::OperatorStatusChanged(change) if Some(change.from) != status => refuse("the order changed meanwhile"),
            E::OperatorStatusChanged(change) if !super::operator::allowed_targets_for(self).contains(&change.to) => {
                refuse("the operating guide does not allow this change")
            }
            _ => None,
        }
    }

    fn email_is(&self, email_id: &str, state: EmailState) -> bool {
        self.emails.iter().any(|e| e.email_id == email_id && e.state == state)
    }
}

/// What may still happen to a SHIPPED or CANCELLED order: records of what already happened
/// (mail seen, tracking, outcomes of writes), operator notes, and withdrawing an unsent email.
fn allowed_on_a_final_order(event: &OrderEvent) -> bool {
    use OrderEvent as E;
    matches!(
        event,
        E::OrderDetected(_)
            | E::ManualTaskDone(_)
            | E::MemoAdded(_)
            | E::CustomerEmailSent(_)
            | E::CustomerEmailFailed(_)
            | E::CustomerEmailWithdrawn(_)
            | E::TrackingRecorded(_)
            | E::WriteIntended(_)
            | E::WriteSubmitted(_)
            | E::WriteDone(_)
            | E::WriteFailed(_)
    )
}
