//! The SP-API wire shapes the client sends and reads (camelCase as Amazon spells them).
//! Responses ignore unknown fields and parse enums leniently: Amazon adds values without notice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationAddress {
    pub name: String,
    pub address_line1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line3: Option<String>,
    pub state_or_region: String,
    pub postal_code: String,
    pub country_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemRequest {
    pub seller_sku: String,
    pub seller_fulfillment_order_item_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRequest {
    pub marketplace_id: String,
    pub address: DestinationAddress,
    pub items: Vec<OrderItemRequest>,
    pub shipping_speed_categories: Vec<String>,
    pub include_delivery_windows: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    #[serde(deserialize_with = "timestamp")]
    pub start_date: DateTime<Utc>,
    #[serde(deserialize_with = "timestamp")]
    pub end_date: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    pub marketplace_id: String,
    pub seller_fulfillment_order_id: String,
    pub displayable_order_id: String,
    pub displayable_order_date: String,
    pub displayable_order_comment: String,
    pub shipping_speed_category: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_window: Option<Window>,
    pub destination_address: DestinationAddress,
    pub fulfillment_action: String,
    pub fulfillment_policy: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notification_emails: Vec<String>,
    pub items: Vec<OrderItemRequest>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorList {
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct InventoryResponse {
    pub payload: InventoryPayload,
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Pagination {
    #[serde(default, rename = "nextToken")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InventoryPayload {
    #[serde(default)]
    pub inventory_summaries: Vec<InventorySummary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InventorySummary {
    pub seller_sku: String,
    #[serde(default)]
    pub total_quantity: Option<i64>,
    #[serde(default)]
    pub inventory_details: Option<InventoryDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InventoryDetails {
    #[serde(default)]
    pub fulfillable_quantity: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PreviewResponse {
    pub payload: PreviewPayload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PreviewPayload {
    #[serde(default)]
    pub fulfillment_previews: Vec<Preview>,
}

/// One speed's preview.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub shipping_speed_category: String,
    pub is_fulfillable: bool,
    #[serde(default)]
    pub fulfillment_preview_shipments: Vec<PreviewShipment>,
    #[serde(default)]
    pub unfulfillable_preview_items: Vec<serde_json::Value>,
    #[serde(default)]
    pub order_unfulfillable_reasons: Vec<String>,
    #[serde(default)]
    pub scheduled_delivery_info: Option<ScheduledDeliveryInfo>,
    #[serde(default)]
    pub estimated_fees: Vec<Fee>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fee {
    #[serde(default)]
    pub name: String,
    pub amount: Money,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    #[serde(default)]
    pub currency_code: String,
    /// A decimal, as a string ("450", "450.00").
    pub value: String,
}

impl Preview {
    /// Amazon's estimated fees in yen (None when it gave none, or not in yen).
    pub fn fee_yen(&self) -> Option<i64> {
        let mut total = 0.0;
        for fee in &self.estimated_fees {
            if fee.amount.currency_code != "JPY" {
                return None;
            }
            total += fee.amount.value.trim().parse::<f64>().ok()?;
        }
        (!self.estimated_fees.is_empty()).then_some(total.round() as i64)
    }

    /// The latest arrival over all shipments: when the whole order is there at the latest.
    pub fn latest_arrival(&self) -> Option<DateTime<Utc>> {
        self.fulfillment_preview_shipments.iter().filter_map(|s| s.latest_arrival_date).max()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewShipment {
    #[serde(default, deserialize_with = "optional_timestamp")]
    pub earliest_arrival_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_timestamp")]
    pub latest_arrival_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledDeliveryInfo {
    #[serde(default)]
    pub delivery_windows: Vec<Window>,
}

#[derive(Debug, Deserialize)]
pub(super) struct GetOrderResponse {
    pub payload: GetOrderPayload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetOrderPayload {
    pub fulfillment_order: FulfillmentOrderHeader,
    #[serde(default)]
    pub fulfillment_shipments: Option<Vec<Shipment>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FulfillmentOrderHeader {
    pub seller_fulfillment_order_id: String,
    pub fulfillment_order_status: String,
    #[serde(default)]
    pub shipping_speed_category: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Shipment {
    #[serde(default)]
    pub fulfillment_shipment_status: String,
    #[serde(default, deserialize_with = "optional_timestamp")]
    pub shipping_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub fulfillment_shipment_package: Option<Vec<Package>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Package {
    #[serde(default)]
    pub carrier_code: String,
    #[serde(default)]
    pub tracking_number: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ListResponse {
    pub payload: ListPayload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListPayload {
    #[serde(default)]
    pub fulfillment_orders: Vec<FulfillmentOrderHeader>,
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `fulfillmentOrderStatus`, read case-insensitively and ignoring `_`; anything new is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    Received,
    Planning,
    Processing,
    Complete,
    CompletePartialled,
    Unfulfillable,
    Invalid,
    Cancelled,
    Unknown(String),
}

impl OrderStatus {
    pub fn parse(text: &str) -> Self {
        let folded: String = text.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect();
        match folded.as_str() {
            "new" => Self::New,
            "received" => Self::Received,
            "planning" => Self::Planning,
            "processing" => Self::Processing,
            "complete" => Self::Complete,
            "completepartialled" => Self::CompletePartialled,
            "unfulfillable" => Self::Unfulfillable,
            "invalid" => Self::Invalid,
            "cancelled" => Self::Cancelled,
            _ => Self::Unknown(text.to_owned()),
        }
    }
}

/// A shipped package's tracking, as Amazon reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageTracking {
    pub carrier_code: String,
    pub tracking_number: String,
    pub shipped_at: Option<DateTime<Utc>>,
}

/// What the client returns for getFulfillmentOrder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfillmentOrder {
    pub id: String,
    pub status: OrderStatus,
    pub shipping_speed: Option<String>,
    pub packages: Vec<PackageTracking>,
}

impl GetOrderPayload {
    pub(super) fn into_order(self) -> FulfillmentOrder {
        let packages = self
            .fulfillment_shipments
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.fulfillment_shipment_status.to_ascii_uppercase().starts_with("CANCELLED"))
            .flat_map(|shipment| {
                let shipped_at = shipment.shipping_date;
                shipment.fulfillment_shipment_package.unwrap_or_default().into_iter().filter_map(move |p| {
                    let number = p.tracking_number.filter(|n| !n.trim().is_empty())?;
                    Some(PackageTracking { carrier_code: p.carrier_code, tracking_number: number, shipped_at })
                })
            })
            .collect();
        FulfillmentOrder {
            id: self.fulfillment_order.seller_fulfillment_order_id,
            status: OrderStatus::parse(&self.fulfillment_order.fulfillment_order_status),
            shipping_speed: self.fulfillment_order.shipping_speed_category,
            packages,
        }
    }
}

/// ISO 8601 text, or (Japan previews until 2025-08) UNIX epoch seconds.
fn timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    optional_timestamp(deserializer)?.ok_or_else(|| serde::de::Error::custom("missing timestamp"))
}

fn optional_timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Epoch(i64),
        EpochFloat(f64),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(Raw::Text(text)) => DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("timestamp {text:?}: {e}"))),
        Some(Raw::Epoch(seconds)) => {
            DateTime::from_timestamp(seconds, 0).map(Some).ok_or_else(|| serde::de::Error::custom("epoch out of range"))
        }
        Some(Raw::EpochFloat(seconds)) => DateTime::from_timestamp(seconds as i64, 0)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("epoch out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_in_any_casing_and_unknown_ones_are_kept() {
        assert_eq!(OrderStatus::parse("Complete"), OrderStatus::Complete);
        assert_eq!(OrderStatus::parse("PROCESSING"), OrderStatus::Processing);
        assert_eq!(OrderStatus::parse("COMPLETE_PARTIALLED"), OrderStatus::CompletePartialled);
        assert_eq!(OrderStatus::parse("Teleported"), OrderStatus::Unknown("Teleported".into()));
    }

    #[test]
    fn preview_times_parse_as_text_or_epoch() {
        let text: PreviewShipment = serde_json::from_str(r#"{"latestArrivalDate":"2025-01-16T12:00:00Z"}"#).unwrap();
        let epoch: PreviewShipment = serde_json::from_str(r#"{"latestArrivalDate":1737028800}"#).unwrap();
        assert_eq!(text.latest_arrival_date, epoch.latest_arrival_date);
        let none: PreviewShipment = serde_json::from_str(r#"{"latestArrivalDate":""}"#).unwrap();
        assert_eq!(none.latest_arrival_date, None);
    }
}
