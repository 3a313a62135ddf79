//! RMS JSON as RMS spells it: PascalCase models and lists, camelCase scalars, and `null` where
//! a list is expected. Unknown fields are ignored; everything optional is an Option.

use serde::{Deserialize, Deserializer, Serialize};

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchOrderRequest {
    #[serde(rename = "dateType")]
    pub date_type: u8,
    #[serde(rename = "startDatetime")]
    pub start_datetime: String,
    #[serde(rename = "endDatetime")]
    pub end_datetime: String,
    #[serde(rename = "PaginationRequestModel")]
    pub pagination: PaginationRequest,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaginationRequest {
    #[serde(rename = "requestRecordsAmount")]
    pub records: u32,
    #[serde(rename = "requestPage")]
    pub page: u32,
    #[serde(rename = "SortModelList")]
    pub sort: Vec<SortModel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SortModel {
    #[serde(rename = "sortColumn")]
    pub column: u8,
    #[serde(rename = "sortDirection")]
    pub direction: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageModel {
    #[serde(rename = "messageType", default)]
    pub message_type: String,
    #[serde(rename = "messageCode", default)]
    pub message_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(rename = "orderNumber", default)]
    pub order_number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchOrderResponse {
    #[serde(rename = "orderNumberList", default, deserialize_with = "null_as_empty")]
    pub order_numbers: Vec<String>,
    #[serde(rename = "PaginationResponseModel", default)]
    pub pagination: Option<PaginationResponse>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaginationResponse {
    #[serde(rename = "totalRecordsAmount", default)]
    pub total_records: Option<u32>,
    #[serde(rename = "totalPages", default)]
    pub total_pages: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderNumbersRequest {
    #[serde(rename = "orderNumberList")]
    pub order_numbers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GetOrderResponse {
    #[serde(rename = "MessageModelList", default, deserialize_with = "null_as_empty")]
    pub messages: Vec<MessageModel>,
    #[serde(rename = "OrderModelList", default, deserialize_with = "null_as_empty")]
    pub orders: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessagesResponse {
    #[serde(rename = "MessageModelList", default, deserialize_with = "null_as_empty")]
    pub messages: Vec<MessageModel>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Person {
    #[serde(rename = "zipCode1", default)]
    pub zip_code1: Option<String>,
    #[serde(rename = "zipCode2", default)]
    pub zip_code2: Option<String>,
    #[serde(default)]
    pub prefecture: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(rename = "subAddress", default)]
    pub sub_address: Option<String>,
    #[serde(rename = "familyName", default)]
    pub family_name: Option<String>,
    #[serde(rename = "firstName", default)]
    pub first_name: Option<String>,
    #[serde(rename = "phoneNumber1", default)]
    pub phone1: Option<String>,
    #[serde(rename = "phoneNumber2", default)]
    pub phone2: Option<String>,
    #[serde(rename = "phoneNumber3", default)]
    pub phone3: Option<String>,
    #[serde(rename = "emailAddress", default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SettlementModel {
    #[serde(rename = "settlementMethodCode", default)]
    pub code: Option<i64>,
    #[serde(rename = "settlementMethod", default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SkuModel {
    #[serde(rename = "variantId", default)]
    pub variant_id: Option<String>,
    #[serde(rename = "merchantDefinedSkuId", default)]
    pub merchant_defined_sku_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ItemModel {
    #[serde(rename = "itemName", default)]
    pub item_name: Option<String>,
    #[serde(rename = "itemNumber", default)]
    pub item_number: Option<String>,
    #[serde(rename = "manageNumber", default)]
    pub manage_number: Option<String>,
    #[serde(default)]
    pub price: Option<i64>,
    #[serde(default)]
    pub units: Option<i64>,
    #[serde(rename = "deleteItemFlag", default)]
    pub delete_item_flag: Option<i64>,
    #[serde(rename = "SkuModelList", default, deserialize_with = "null_as_empty")]
    pub skus: Vec<SkuModel>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ShippingModel {
    #[serde(rename = "shippingDetailId", default, skip_serializing_if = "Option::is_none")]
    pub shipping_detail_id: Option<i64>,
    #[serde(rename = "deliveryCompany", default, skip_serializing_if = "Option::is_none")]
    pub delivery_company: Option<String>,
    #[serde(rename = "shippingNumber", default, skip_serializing_if = "Option::is_none")]
    pub shipping_number: Option<String>,
    #[serde(rename = "shippingDate", default, skip_serializing_if = "Option::is_none")]
    pub shipping_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageModel {
    #[serde(rename = "basketId")]
    pub basket_id: i64,
    #[serde(rename = "packageDeleteFlag", default)]
    pub package_delete_flag: Option<i64>,
    #[serde(rename = "SenderModel", default)]
    pub sender: Option<Person>,
    #[serde(rename = "ItemModelList", default, deserialize_with = "null_as_empty")]
    pub items: Vec<ItemModel>,
    #[serde(rename = "ShippingModelList", default, deserialize_with = "null_as_empty")]
    pub shippings: Vec<ShippingModel>,
}

/// The fields of an OrderModel that routing needs.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderModel {
    #[serde(rename = "orderNumber")]
    pub order_number: String,
    #[serde(rename = "orderProgress")]
    pub order_progress: i64,
    #[serde(rename = "orderDatetime")]
    pub order_datetime: String,
    #[serde(rename = "deliveryDate", default)]
    pub delivery_date: Option<String>,
    #[serde(rename = "shippingTerm", default)]
    pub shipping_term: Option<i64>,
    #[serde(rename = "rakutenConfirmFlag", default)]
    pub rakuten_confirm_flag: Option<i64>,
    #[serde(rename = "cautionDisplayType", default)]
    pub caution_display_type: Option<i64>,
    #[serde(rename = "socialGiftFlag", default)]
    pub social_gift_flag: Option<i64>,
    #[serde(rename = "totalPrice", default)]
    pub total_price: Option<i64>,
    #[serde(rename = "OrdererModel", default)]
    pub orderer: Option<Person>,
    #[serde(rename = "SettlementModel", default)]
    pub settlement: Option<SettlementModel>,
    #[serde(rename = "PackageModelList", default, deserialize_with = "null_as_empty")]
    pub packages: Vec<PackageModel>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpdateOrderShippingRequest {
    #[serde(rename = "orderNumber")]
    pub order_number: String,
    #[serde(rename = "BasketidModelList")]
    pub baskets: Vec<BasketShipping>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateOrderShippingAsyncRequest {
    #[serde(rename = "OrderShippingModelList")]
    pub orders: Vec<UpdateOrderShippingRequest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AsyncAcceptedResponse {
    #[serde(rename = "requestId", default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AsyncResultRequest {
    #[serde(rename = "requestId")]
    pub request_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AsyncResultResponse {
    #[serde(rename = "ResultShippingModelList", default, deserialize_with = "null_as_empty")]
    pub results: Vec<AsyncOrderResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AsyncOrderResult {
    #[serde(rename = "orderNumber")]
    pub order_number: String,
    #[serde(rename = "MessageModelList", default, deserialize_with = "null_as_empty")]
    pub messages: Vec<MessageModel>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BasketShipping {
    #[serde(rename = "basketId")]
    pub basket_id: i64,
    #[serde(rename = "ShippingModelList")]
    pub shippings: Vec<ShippingModel>,
}

/// 在庫API 2.0 (stock-apis.md §1): bulk-upsert and bulk-get bodies.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryUpsertRequest {
    pub inventories: Vec<InventoryUpsert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventoryUpsert {
    #[serde(rename = "manageNumber")]
    pub manage_number: String,
    #[serde(rename = "variantId")]
    pub variant_id: String,
    pub mode: &'static str,
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventoryGetRequest {
    pub inventories: Vec<InventoryKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventoryKey {
    #[serde(rename = "manageNumber")]
    pub manage_number: String,
    #[serde(rename = "variantId")]
    pub variant_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InventoryGetResponse {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub inventories: Vec<InventoryLevel>,
}

/// One SKU's stock as bulk-get shows it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InventoryLevel {
    #[serde(rename = "manageNumber")]
    pub manage_number: String,
    #[serde(rename = "variantId")]
    pub variant_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InventoryErrors {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<InventoryError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InventoryError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub metadata: Option<InventoryErrorMetadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InventoryErrorMetadata {
    #[serde(rename = "propertyPath", default)]
    pub property_path: Option<String>,
}

impl InventoryError {
    /// The message, with the field it is about when RMS names one.
    pub fn describe(&self) -> String {
        match self.metadata.as_ref().and_then(|m| m.property_path.as_deref()) {
            Some(path) => format!("{} ({path})", self.message),
            None => self.message.clone(),
        }
    }
}

/// ItemAPI 2.0 `inventory-related-settings` (stock-apis.md §1.6): the parts stock sync reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ItemInventorySettings {
    /// 在庫設定なし: the item keeps no stock (never sells out).
    #[serde(rename = "unlimitedInventoryFlag", default)]
    pub unlimited: bool,
    #[serde(default)]
    pub variants: std::collections::BTreeMap<String, VariantInventorySettings>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct VariantInventorySettings {
    /// 在庫切れ時の注文受付: orders are taken at 0.
    #[serde(rename = "backOrderFlag", default)]
    pub back_order: bool,
}
