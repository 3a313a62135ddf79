//! Order event payloads. Each variant's name is its stored `type`; each payload is its `data`.

use super::Status;
use crate::ids::{FulfillmentOrderId, Marketplace, SellerSku};
use crate::upcast::Upcasters;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Which detector saw the order. Mail and API are independent; either alone suffices to make
/// the order visible, but only the marketplace API can confirm it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectionSource {
    Mail,
    Api,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetected {
    pub marketplace: Marketplace,
    pub order_number: String,
    pub via: DetectionSource,
    /// Message-ID of the mail, or the API call that saw it.
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A Japanese delivery address, in the order Japanese addresses are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub postal_code: String,
    pub prefecture: String,
    pub city: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl Address {
    pub fn one_line(&self) -> String {
        let mut text = format!("〒{} {}{}{}", self.postal_code, self.prefecture, self.city, self.line1);
        if let Some(line2) = &self.line2 {
            text.push(' ');
            text.push_str(line2);
        }
        text
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The marketplace's SKU, as the shop registered it there.
    pub marketplace_sku: String,
    pub title: String,
    pub quantity: u32,
    pub unit_price_yen: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementKind {
    CreditCard,
    /// Bank transfer, convenience store: ship only after payment is seen.
    Prepaid,
    CashOnDelivery,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The marketplace's own code and name, kept as given.
    pub code: String,
    pub name: String,
    pub kind: SettlementKind,
}

/// A buyer's requested delivery date and time slot (日時指定).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    pub date: NaiveDate,
    /// e.g. "14-16"; None means any time that day.
    #[serde(default)]
    pub slot: Option<String>,
}

/// "14-16" (also "14:00-16:00", "1416") -> (14, 16).
/// A time slot as marketplaces write it (`14-16`, `14:00-16:00`, `1416`); None for anything
/// that names no slot (`指定なし`, `午前中` is the marketplace mapping's to translate).
pub fn parse_slot(slot: &str) -> Option<(u32, u32)> {
    let digits: Vec<u32> =
        slot.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
    match digits.as_slice() {
        [from, to] if from < to && *to <= 24 => Some((*from, *to)),
        [from, 0, to, 0] if from < to && *to <= 24 => Some((*from, *to)),
        [both] if *both >= 100 => Some((both / 100, both % 100)).filter(|(a, b)| a < b && *b <= 24),
        _ => None,
    }
}

/// The order as the marketplace API reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    pub ordered_at: DateTime<FixedOffset>,
    pub buyer: Buyer,
    pub ship_to: Address,
    pub items: Vec<OrderItem>,
    pub settlement: Settlement,
    #[serde(default)]
    pub delivery_request: Option<DeliveryRequest>,
    /// Yahoo premium delivery (優良配送): the date the parcel must arrive by.
    #[serde(default)]
    pub premium_deadline: Option<NaiveDate>,
    pub total_yen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Note {
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllottedLine {
    pub marketplace_sku: String,
    pub seller_sku: SellerSku,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockAllotted {
    pub lines: Vec<AllottedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub seller_sku: SellerSku,
    pub needed: u32,
    pub available: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfStock {
    pub short: Vec<Shortage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFailed {
    /// Which stage or call failed: `check`, `ship`, `amazon.createFulfillmentOrder`, …
    pub stage: String,
    /// The outside system's own error code, when it gave one.
    #[serde(default)]
    pub code: Option<String>,
    /// The outside system's own message, or ours.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShippingSpeed {
    Standard,
    Expedited,
    Priority,
    ScheduledDelivery,
}

impl ShippingSpeed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "Standard",
            Self::Expedited => "Expedited",
            Self::Priority => "Priority",
            Self::ScheduledDelivery => "ScheduledDelivery",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Recorded before createFulfillmentOrder, so a crash between the call and its record is
/// resolved by looking the id up, never by creating again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McfCreateIntended {
    pub fulfillment_order_id: FulfillmentOrderId,
    pub speed: ShippingSpeed,
    /// Why this speed: the estimates compared and the rule applied.
    pub reason: String,
    #[serde(default)]
    pub delivery_window: Option<DeliveryWindow>,
    /// The marketplace's promise no speed keeps (the operator tells the customer).
    #[serde(default)]
    pub promise_missed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McfOrderCreated {
    pub fulfillment_order_id: FulfillmentOrderId,
    pub speed: ShippingSpeed,
    /// True when the order already existed at Amazon and was adopted rather than created.
    #[serde(default)]
    pub adopted: bool,
}

/// Amazon refused to create the MCF order (a 400): nothing was created, the intent is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McfCreateRejected {
    pub fulfillment_order_id: FulfillmentOrderId,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverySlotUnavailable {
    pub requested: String,
    pub offered: Vec<String>,
}

/// The operator agreed another slot with the customer: one of those Amazon offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverySlotChosen {
    /// `2026-11-25 14-16`, as Amazon's preview offered it.
    pub slot: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub carrier: String,
    pub tracking_number: String,
    #[serde(default)]
    pub shipped_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelSource {
    Marketplace,
    Operator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRequested {
    pub source: CancelSource,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McfOrderCancelled {
    pub fulfillment_order_id: FulfillmentOrderId,
    /// True when Amazon never had the order (an intent whose create never arrived).
    #[serde(default)]
    pub never_created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorStatusChanged {
    pub from: Status,
    pub to: Status,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressCorrected {
    pub old: Address,
    pub new: Address,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEmailIntended {
    pub email_id: String,
    /// e.g. `payment_guidance`.
    pub kind: String,
}

/// Recorded just before the email is handed to the SMTP server: an attempt without an outcome
/// after a crash is shown to the operator and never sent again by itself (at most once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEmailSending {
    pub email_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEmailSent {
    pub email_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEmailFailed {
    pub email_id: String,
    pub error: String,
}

/// An intended email that will not be sent: the order reached its end (shipped or cancelled)
/// before it went out, and what it said no longer holds (a payment guidance for a paid order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEmailWithdrawn {
    pub email_id: String,
    pub reason: String,
}

/// A write to a marketplace, in one shape: intended, then done or failed. An intent without
/// an outcome is a write whose answer was lost: the marketplace is read before it is sent
/// again. (MCF creates and cancels, and emails, have their own events of the same shape.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideWrite {
    /// RMS confirmOrder (100 -> 200), the first step of the two-step confirmation.
    RakutenConfirm,
    /// RMS updateOrderShippingAsync (100 orders a call): carrier, tracking number, date.
    RakutenShipping,
    /// Yahoo orderShipStatusChange: ShipStatus 3 with carrier, invoice number, date.
    YahooShipStatus,
    /// Yahoo orderStatusChange to OrderStatus 5 (完了) after shipping.
    YahooCompletion,
}

impl OutsideWrite {
    pub const ALL: [OutsideWrite; 4] =
        [Self::RakutenConfirm, Self::RakutenShipping, Self::YahooShipStatus, Self::YahooCompletion];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RakutenConfirm => "rakuten_confirm",
            Self::RakutenShipping => "rakuten_shipping",
            Self::YahooShipStatus => "yahoo_ship_status",
            Self::YahooCompletion => "yahoo_completion",
        }
    }

    /// What it is, in the operator's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::RakutenConfirm => "楽天の注文確認 (confirmOrder)",
            Self::RakutenShipping => "楽天への発送登録 (updateOrderShippingAsync)",
            Self::YahooShipStatus => "Yahoo!への出荷登録 (orderShipStatusChange)",
            Self::YahooCompletion => "Yahoo!の注文完了 (OrderStatus 5)",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteIntended {
    pub write: OutsideWrite,
}

/// The marketplace accepted the write for later processing (RMS's async shipping update): its
/// outcome is asked for with `request_id`, or read from the order once processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSubmitted {
    pub write: OutsideWrite,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteDone {
    pub write: OutsideWrite,
    /// How it was known: the call's answer, or the marketplace read back after a lost answer.
    #[serde(default)]
    pub note: String,
}

/// The marketplace refused the write: an operator decides (it is not sent again by itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteFailed {
    pub write: OutsideWrite,
    #[serde(default)]
    pub code: Option<String>,
    /// The marketplace's own message.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualTaskDone {
    /// e.g. `yahoo_order_received_email`.
    pub task: String,
    #[serde(default)]
    pub note: String,
}

crate::event_enum! {
    /// Everything that happens to an order.
    pub enum OrderEvent {
        OrderDetected(OrderDetected) = 1,
        OrderDetailsRecorded(OrderDetails) = 1,
        AwaitingConfirmation(Reason) = 1,
        MarketplaceConfirmed(Note) = 1,
        PaymentConfirmed(Note) = 1,
        OrderHeld(Reason) = 1,
        HoldReleased(Note) = 1,
        OrderVerified(Note) = 1,
        StockAllotted(StockAllotted) = 1,
        OutOfStock(OutOfStock) = 1,
        OrderFailed(OrderFailed) = 1,
        McfCreateIntended(McfCreateIntended) = 1,
        McfOrderCreated(McfOrderCreated) = 1,
        McfCreateRejected(McfCreateRejected) = 1,
        DeliverySlotUnavailable(DeliverySlotUnavailable) = 1,
        TrackingRecorded(Tracking) = 1,
        ShipmentReported(Tracking) = 1,
        CancellationRequested(CancellationRequested) = 1,
        McfOrderCancelled(McfOrderCancelled) = 1,
        McfCancelRefused(Reason) = 1,
        OperatorStatusChanged(OperatorStatusChanged) = 1,
        AddressCorrected(AddressCorrected) = 1,
        CustomerEmailIntended(CustomerEmailIntended) = 1,
        CustomerEmailSending(CustomerEmailSending) = 1,
        CustomerEmailSent(CustomerEmailSent) = 1,
        CustomerEmailFailed(CustomerEmailFailed) = 1,
        ManualTaskDone(ManualTaskDone) = 1,
        WriteIntended(WriteIntended) = 1,
        WriteDone(WriteDone) = 1,
        WriteFailed(WriteFailed) = 1,
        ReturnHandled(Note) = 1,
        DeliverySlotChosen(DeliverySlotChosen) = 1,
        MemoAdded(Note) = 1,
        CustomerEmailWithdrawn(CustomerEmailWithdrawn) = 1,
        WriteSubmitted(WriteSubmitted) = 1,
    }
}

pub use crate::codec::{DecodeError, LocatedDecodeError};

/// The upcasters for order events in this build. Every order payload is still at schema 1;
/// when a payload changes shape, its step from the old schema is registered here.
pub fn order_upcasters() -> Upcasters {
    Upcasters::new()
}
