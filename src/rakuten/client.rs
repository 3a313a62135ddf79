//! The RMS client: ESA auth on every call, ~1 request a second, retries on 5xx/429/timeouts
//! for reads, and no blind retry of a write whose outcome is unknown (the stage re-reads the
//! order instead, which is how a duplicate shipping record is avoided).

use super::model::*;
use super::RakutenError;
use crate::config::Secret;
use crate::transport::{with_retries, Attempt, GaveUp, Pace, RetryPolicy, USER_AGENT};
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

/// getOrder response version (10: social gift fields; ≥7 has SKU fields).
pub const GET_ORDER_VERSION: u32 = 10;
/// searchOrder page size (RMS maximum).
const PAGE_SIZE: u32 = 1000;
/// getOrder takes at most this many order numbers per call.
pub const GET_ORDER_LIMIT: usize = 100;
/// updateOrderShippingAsync takes at most this many orders per call.
pub const SHIPPING_ASYNC_LIMIT: usize = 100;

/// One order's outcome in an async shipping request: RMS's error messages (code, text), none
/// when it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncShippingResult {
    pub order_number: String,
    pub errors: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct RakutenConfig {
    pub service_secret: Secret,
    pub license_key: Secret,
    /// e.g. `https://api.rms.rakuten.co.jp`
    pub base_url: String,
    pub retry: RetryPolicy,
    /// Requests per second and burst.
    pub rate: (f64, u32),
    /// How long RMS may take to process an async shipping report (see `RakutenSettings`).
    pub async_settle: std::time::Duration,
}

/// RMS publishes no rate; integrators keep to about one call a second, with no burst.
pub const PRODUCTION_RATE: (f64, u32) = (1.0, 1);

impl RakutenConfig {
    /// The production client: RMS's settings, about one call a second (no burst), the
    /// default retries, stopped by `shutdown`.
    pub fn from_settings(
        settings: &crate::config::RakutenSettings,
        base_url: &str,
        shutdown: &crate::transport::Shutdown,
    ) -> Self {
        Self {
            service_secret: settings.service_secret.clone(),
            license_key: settings.license_key.clone(),
            base_url: base_url.to_owned(),
            retry: RetryPolicy::default().stopped_by(shutdown),
            rate: PRODUCTION_RATE,
            async_settle: settings.async_settle,
        }
    }
}

pub struct RakutenClient {
    http: reqwest::Client,
    config: RakutenConfig,
    pace: Pace,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl RakutenClient {
    pub fn new(config: RakutenConfig) -> Result<Self, RakutenError> {
        let http = reqwest::Client::builder().user_agent(USER_AGENT).build().map_err(|e| {
            RakutenError::Unavailable { operation: "client setup", attempts: 0, last: e.to_string(), stopped: false }
        })?;
        let pace = Pace::new(config.rate.0, config.rate.1);
        Ok(Self { http, config, pace })
    }

    /// How long RMS may take to process an async shipping report.
    pub fn async_settle(&self) -> std::time::Duration {
        self.config.async_settle
    }

    /// `ESA base64(serviceSecret:licenseKey)`.
    fn authorization(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.config.service_secret.expose(), self.config.license_key.expose());
        format!("ESA {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }

    /// Every order number whose order datetime is in [start, end], across pages and windows of
    /// at most 63 days.
    pub async fn search_orders(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<String>, RakutenError> {
        let mut numbers = Vec::new();
        let mut window_start = start;
        while window_start < end {
            let window_end = (window_start + chrono::Duration::days(63)).min(end);
            let mut page = 1;
            loop {
                let request = SearchOrderRequest {
                    date_type: 1,
                    start_datetime: super::mapping::format_datetime(window_start),
                    end_datetime: super::mapping::format_datetime(window_end),
                    pagination: PaginationRequest {
                        records: PAGE_SIZE,
                        page,
                        sort: vec![SortModel { column: 1, direction: 1 }],
                    },
                };
                let response: SearchOrderResponse = self.post("searchOrder", Kind::Read, &request).await?;
                numbers.extend(response.order_numbers);
                let pages = response.pagination.and_then(|p| p.total_pages).unwrap_or(0);
                if page >= pages {
                    break;
                }
                page += 1;
            }
            window_start = window_end;
        }
        numbers.sort();
        numbers.dedup();
        Ok(numbers)
    }

    /// Orders by number, 100 per call. Each order comes back as its raw JSON (kept as the
    /// ledger's blob), so one malformed order does not hide the others.
    pub async fn get_orders(&self, numbers: &[String]) -> Result<Vec<serde_json::Value>, RakutenError> {
        let mut orders = Vec::with_capacity(numbers.len());
        for batch in numbers.chunks(GET_ORDER_LIMIT) {
            let request = OrderNumbersRequest { order_numbers: batch.to_vec(), version: Some(GET_ORDER_VERSION) };
            let response: GetOrderResponse = self.post("getOrder", Kind::Read, &request).await?;
            orders.extend(response.orders);
        }
        Ok(orders)
    }

    /// confirmOrder for up to 100 orders; returns RMS's message per order.
    pub async fn confirm_orders(&self, numbers: &[String]) -> Result<Vec<MessageModel>, RakutenError> {
        let mut messages = Vec::new();
        for batch in numbers.chunks(GET_ORDER_LIMIT) {
            let request = OrderNumbersRequest { order_numbers: batch.to_vec(), version: None };
            let response: MessagesResponse = self.post("confirmOrder", Kind::Write, &request).await?;
            messages.extend(response.messages);
        }
        Ok(messages)
    }

    /// updateOrderShippingAsync for up to 100 orders (one request each): the `requestId` RMS
    /// accepted them under. They are processed later; ask with `shipping_async_result`.
    pub async fn update_order_shipping_async(
        &self,
        orders: &[UpdateOrderShippingRequest],
    ) -> Result<String, RakutenError> {
        let request = UpdateOrderShippingAsyncRequest { orders: orders.to_vec() };
        let response: AsyncAcceptedResponse = self.post("updateOrderShippingAsync", Kind::Write, &request).await?;
        response.request_id.filter(|id| !id.is_empty()).ok_or_else(|| RakutenError::Unavailable {
            operation: "updateOrderShippingAsync",
            attempts: 1,
            stopped: false,
            last: "accepted without a requestId".into(),
        })
    }

    /// getResultUpdateOrderShippingAsync: each processed order's messages. An empty result is
    /// RMS's one answer for "not processed yet", "unknown" and "older than 30 days".
    pub async fn shipping_async_result(&self, request_id: &str) -> Result<Vec<AsyncShippingResult>, RakutenError> {
        let request = AsyncResultRequest { request_id: request_id.to_owned() };
        let response: AsyncResultResponse =
            self.post("getResultUpdateOrderShippingAsync", Kind::Read, &request).await?;
        Ok(response
            .results
            .into_iter()
            .map(|result| AsyncShippingResult {
                order_number: result.order_number,
                errors: result
                    .messages
                    .into_iter()
                    .filter(|m| m.message_type == "ERROR")
                    .map(|m| (m.message_code, m.message))
                    .collect(),
            })
            .collect())
    }

    /// 在庫API 2.0 bulk-upsert: absolute quantities (never relative: a retry must not add
    /// twice) for up to 400 SKUs (manageNumber, variantId, quantity). RMS answers 204 and says
    /// nothing per SKU, and takes SKUs it has no item for without error: read them back.
    pub async fn upsert_inventory(&self, rows: &[(String, String, u32)]) -> Result<(), RakutenError> {
        let inventories: Vec<InventoryUpsert> = rows
            .iter()
            .map(|(manage_number, variant_id, quantity)| InventoryUpsert {
                manage_number: manage_number.clone(),
                variant_id: variant_id.clone(),
                mode: "ABSOLUTE",
                quantity: *quantity,
            })
            .collect();
        let url = format!("{}/es/2.0/inventories/bulk-upsert", self.config.base_url);
        self.post_json::<()>(url, "inventories.bulk.upsert", Kind::Write, &InventoryUpsertRequest { inventories }).await
    }

    /// 在庫API 2.0 bulk-get for up to 1,000 SKUs: the quantity of each SKU RMS has an item for
    /// (a SKU it lacks is simply not in the answer).
    pub async fn inventory(&self, keys: &[(String, String)]) -> Result<Vec<InventoryLevel>, RakutenError> {
        let inventories: Vec<InventoryKey> = keys
            .iter()
            .map(|(manage_number, variant_id)| InventoryKey {
                manage_number: manage_number.clone(),
                variant_id: variant_id.clone(),
            })
            .collect();
        let url = format!("{}/es/2.0/inventories/bulk-get", self.config.base_url);
        let response: InventoryGetResponse =
            self.post_json(url, "inventories.bulk.get", Kind::Read, &InventoryGetRequest { inventories }).await?;
        Ok(response.inventories)
    }

    /// ItemAPI 2.0 `inventory-related-settings` of one item (商品管理番号): whether it keeps no
    /// stock and which variants take orders at 0. None when RMS has no such item.
    pub async fn inventory_settings(&self, manage_number: &str) -> Result<Option<ItemInventorySettings>, RakutenError> {
        let url =
            format!("{}/es/2.0/items/inventory-related-settings/manage-numbers/{manage_number}", self.config.base_url);
        match self.send("items.inventory-related-settings.get", Kind::Read, self.http.get(url)).await {
            Ok(settings) => Ok(Some(settings)),
            Err(RakutenError::Api { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The license key's expiry date (JST).
    pub async fn license_expiry(&self) -> Result<NaiveDate, RakutenError> {
        #[derive(serde::Deserialize)]
        struct Expiry {
            #[serde(rename = "expiryDate")]
            expiry_date: String,
        }
        let url = format!("{}/es/1.0/license-management/license-key/expiry-date", self.config.base_url);
        let request = self.http.get(url).query(&[("licenseKey", self.config.license_key.expose())]);
        let expiry: Expiry = self.send("licenseKeyExpiryDate", Kind::Read, request).await?;
        NaiveDate::parse_from_str(expiry.expiry_date.get(..10).unwrap_or_default(), "%Y-%m-%d").map_err(|e| {
            RakutenError::Unavailable {
                operation: "licenseKeyExpiryDate",
                attempts: 1,
                stopped: false,
                last: format!("unreadable expiryDate {:?}: {e}", expiry.expiry_date),
            }
        })
    }

    async fn post<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        kind: Kind,
        body: &impl serde::Serialize,
    ) -> Result<T, RakutenError> {
        let url = format!("{}/es/2.0/order/{operation}/", self.config.base_url);
        self.post_json(url, operation, kind, body).await
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        url: String,
        operation: &'static str,
        kind: Kind,
        body: &impl serde::Serialize,
    ) -> Result<T, RakutenError> {
        let body = serde_json::to_vec(body).unwrap_or_else(|e| unreachable!("RMS requests encode: {e}"));
        let request = self.http.post(url).header("content-type", "application/json; charset=utf-8").body(body);
        self.send(operation, kind, request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        kind: Kind,
        request: reqwest::RequestBuilder,
    ) -> Result<T, RakutenError> {
        with_retries(&self.config.retry, operation, || self.attempt(operation, kind, &request)).await.map_err(
            |gave_up| match gave_up {
                GaveUp::Failed(error) => error,
                GaveUp::Unanswered { attempts, last, stopped } => {
                    RakutenError::Unavailable { operation, attempts, last, stopped }
                }
            },
        )
    }

    /// One attempt. A read may always be made again; a write only when RMS cannot have
    /// processed it (no connection, 429, 503): a lost answer to a write is not repeated blind.
    async fn attempt<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        kind: Kind,
        request: &reqwest::RequestBuilder,
    ) -> Result<T, Attempt<RakutenError>> {
        let unsure = |text: String| if kind == Kind::Read { Attempt::Retry(text) } else { Attempt::Unsure(text) };
        self.pace.ready(&self.config.retry.shutdown).await.map_err(|stopped| Attempt::Retry(stopped.to_string()))?;
        let attempt = request
            .try_clone()
            .ok_or_else(|| Attempt::Unsure("request cannot be repeated".into()))?
            .header("authorization", self.authorization())
            .timeout(self.config.retry.request_timeout);
        let response = match attempt.send().await {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Err(Attempt::Retry(format!("cannot connect: {e}"))),
            Err(e) if e.is_timeout() => return Err(unsure("timed out".to_owned())),
            Err(e) => return Err(unsure(e.to_string())),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            // 204 No Content (the inventory API's writes) reads as JSON null.
            let text = if text.trim().is_empty() { "null" } else { text.as_str() };
            return serde_json::from_str::<T>(text)
                .map_err(|e| unsure(format!("unreadable {operation} response ({e})")));
        }
        if let Some((code, message)) = gateway_error(&text).filter(|_| matches!(status.as_u16(), 400 | 401 | 403)) {
            return Err(Attempt::Fail(RakutenError::Auth { operation, code, message }));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            // Throttled or in maintenance: the request was not processed.
            return Err(Attempt::Retry(format!("HTTP {status}")));
        }
        if status.is_server_error() {
            return Err(unsure(format!("HTTP {status}")));
        }
        let (messages, orders) = match serde_json::from_str::<MessagesResponse>(&text) {
            // The inventory API's own shape: {"errors":[{code, message, metadata}]}.
            Ok(response) if response.messages.is_empty() => match serde_json::from_str::<InventoryErrors>(&text) {
                Ok(inventory) if !inventory.errors.is_empty() => {
                    (inventory.errors.into_iter().map(|e| (e.code.clone(), e.describe())).collect(), vec![])
                }
                _ => (vec![(format!("HTTP{}", status.as_u16()), text.chars().take(200).collect())], vec![]),
            },
            Ok(response) => {
                let orders = response.messages.iter().filter_map(|m| m.order_number.clone()).collect();
                (response.messages.into_iter().map(|m| (m.message_code, m.message)).collect(), orders)
            }
            Err(_) => (vec![(format!("HTTP{}", status.as_u16()), text.chars().take(200).collect())], vec![]),
        };
        Err(Attempt::Fail(RakutenError::Api { operation, status: status.as_u16(), messages, orders }))
    }
}

/// The gateway's own error shape: `{"Results":{"errorCode":"ES01-01","message":"Un-Authorised"}}`.
fn gateway_error(text: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let results = value.get("Results")?;
    Some((
        results.get("errorCode")?.as_str()?.to_owned(),
        results.get("message").and_then(|m| m.as_str()).unwrap_or("").to_owned(),
    ))
}
