//! The SP-API client: one token bucket per operation at Amazon's published rate and burst,
//! bounded retries on 429/5xx/timeouts, one token refresh on "expired", and Amazon's own error
//! code and message on everything else.

use super::auth::TokenCache;
use super::model::*;
use super::{AmazonError, LwaCredentials};
use crate::transport::{with_retries, Attempt, GaveUp, Pace, RetryPolicy, USER_AGENT};
use events::SellerSku;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct AmazonConfig {
    pub credentials: LwaCredentials,
    pub marketplace_id: String,
    /// e.g. `https://sellingpartnerapi-fe.amazon.com`
    pub sp_api_base_url: String,
    /// e.g. `https://api.amazon.com/auth/o2/token`
    pub lwa_token_url: String,
    pub retry: RetryPolicy,
    pub rate_limits: RateLimits,
}

/// Per-operation (rate per second, burst), as Amazon publishes them.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub inventory: (f64, u32),
    pub outbound: (f64, u32),
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { inventory: (2.0, 2), outbound: (2.0, 30) }
    }
}

/// Stock of one seller SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InventoryLevel {
    /// Pickable now: what routing may promise.
    pub fulfillable: u32,
    pub total: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Operation {
    GetInventorySummaries,
    GetFulfillmentPreview,
    CreateFulfillmentOrder,
    GetFulfillmentOrder,
    CancelFulfillmentOrder,
    ListAllFulfillmentOrders,
}

impl Operation {
    const ALL: [Operation; 6] = [
        Self::GetInventorySummaries,
        Self::GetFulfillmentPreview,
        Self::CreateFulfillmentOrder,
        Self::GetFulfillmentOrder,
        Self::CancelFulfillmentOrder,
        Self::ListAllFulfillmentOrders,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::GetInventorySummaries => "getInventorySummaries",
            Self::GetFulfillmentPreview => "getFulfillmentPreview",
            Self::CreateFulfillmentOrder => "createFulfillmentOrder",
            Self::GetFulfillmentOrder => "getFulfillmentOrder",
            Self::CancelFulfillmentOrder => "cancelFulfillmentOrder",
            Self::ListAllFulfillmentOrders => "listAllFulfillmentOrders",
        }
    }
}

pub struct AmazonClient {
    http: reqwest::Client,
    config: AmazonConfig,
    tokens: TokenCache,
    paces: HashMap<Operation, Pace>,
}

/// One request, rebuilt for each attempt.
struct Call<'a> {
    operation: Operation,
    method: Method,
    path: String,
    query: Vec<(&'a str, String)>,
    body: Option<serde_json::Value>,
}

impl AmazonClient {
    pub fn new(config: AmazonConfig) -> Result<Self, AmazonError> {
        let http = reqwest::Client::builder().user_agent(USER_AGENT).build().map_err(|e| AmazonError::Unavailable {
            operation: "client setup",
            attempts: 0,
            last: e.to_string(),
            stopped: false,
        })?;
        let paces = Operation::ALL
            .into_iter()
            .map(|op| {
                let (rate, burst) = match op {
                    Operation::GetInventorySummaries => config.rate_limits.inventory,
                    _ => config.rate_limits.outbound,
                };
                (op, Pace::new(rate, burst))
            })
            .collect();
        let tokens = TokenCache::new(config.credentials.clone(), config.lwa_token_url.clone());
        Ok(Self { http, config, tokens, paces })
    }

    pub fn marketplace_id(&self) -> &str {
        &self.config.marketplace_id
    }

    /// Fulfillable and total stock of each SKU (in batches of 50, following pages). A SKU FBA
    /// does not know is absent from the answer and reported here as zero.
    pub async fn inventory(&self, skus: &[SellerSku]) -> Result<HashMap<SellerSku, InventoryLevel>, AmazonError> {
        let mut levels = self.inventory_found(skus).await?;
        for sku in skus {
            levels.entry(sku.clone()).or_default();
        }
        Ok(levels)
    }

    /// The SKUs FBA has a summary for, 50 a call (a SKU it does not know is absent, not 0).
    pub async fn inventory_found(&self, skus: &[SellerSku]) -> Result<HashMap<SellerSku, InventoryLevel>, AmazonError> {
        let mut levels: HashMap<SellerSku, InventoryLevel> = HashMap::new();
        let mut unique: Vec<&SellerSku> = skus.iter().collect();
        unique.sort();
        unique.dedup();
        for batch in unique.chunks(50) {
            let joined = batch.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(",");
            let mut next_token: Option<String> = None;
            loop {
                let mut query = vec![
                    ("granularityType", "Marketplace".to_owned()),
                    ("granularityId", self.config.marketplace_id.clone()),
                    ("marketplaceIds", self.config.marketplace_id.clone()),
                    ("details", "true".to_owned()),
                    ("sellerSkus", joined.clone()),
                ];
                if let Some(token) = &next_token {
                    query.push(("nextToken", token.clone()));
                }
                let call = Call {
                    operation: Operation::GetInventorySummaries,
                    method: Method::GET,
                    path: "/fba/inventory/v1/summaries".into(),
                    query,
                    body: None,
                };
                let response: InventoryResponse = self.send(&call).await?;
                for summary in response.payload.inventory_summaries {
                    let fulfillable = summary.inventory_details.and_then(|d| d.fulfillable_quantity).unwrap_or(0);
                    levels.insert(
                        SellerSku(summary.seller_sku),
                        InventoryLevel {
                            fulfillable: u32::try_from(fulfillable.max(0)).unwrap_or(u32::MAX),
                            total: u32::try_from(summary.total_quantity.unwrap_or(0).max(0)).unwrap_or(u32::MAX),
                        },
                    );
                }
                next_token = response.pagination.and_then(|p| p.next_token).filter(|t| !t.is_empty());
                if next_token.is_none() {
                    break;
                }
            }
        }
        Ok(levels)
    }

    pub async fn preview(&self, request: &PreviewRequest) -> Result<Vec<Preview>, AmazonError> {
        let call = Call {
            operation: Operation::GetFulfillmentPreview,
            method: Method::POST,
            path: "/fba/outbound/2020-07-01/fulfillmentOrders/preview".into(),
            query: vec![],
            body: Some(to_json(request)),
        };
        let response: PreviewResponse = self.send(&call).await?;
        Ok(response.payload.fulfillment_previews)
    }

    pub async fn create(&self, request: &CreateRequest) -> Result<(), AmazonError> {
        let call = Call {
            operation: Operation::CreateFulfillmentOrder,
            method: Method::POST,
            path: "/fba/outbound/2020-07-01/fulfillmentOrders".into(),
            query: vec![],
            body: Some(to_json(request)),
        };
        self.send::<serde_json::Value>(&call).await.map(|_| ())
    }

    /// The fulfillment order, or `NotFound` (Amazon answers 404, or 400 "… not found").
    pub async fn get(&self, seller_fulfillment_order_id: &str) -> Result<FulfillmentOrder, AmazonError> {
        let call = Call {
            operation: Operation::GetFulfillmentOrder,
            method: Method::GET,
            path: format!("/fba/outbound/2020-07-01/fulfillmentOrders/{}", path_segment(seller_fulfillment_order_id)),
            query: vec![],
            body: None,
        };
        let response: GetOrderResponse =
            self.send(&call).await.map_err(|e| not_found(e, seller_fulfillment_order_id))?;
        Ok(response.payload.into_order())
    }

    /// Asks Amazon to cancel; a repeated request counts as accepted.
    pub async fn cancel(&self, seller_fulfillment_order_id: &str) -> Result<(), AmazonError> {
        let call = Call {
            operation: Operation::CancelFulfillmentOrder,
            method: Method::PUT,
            path: format!(
                "/fba/outbound/2020-07-01/fulfillmentOrders/{}/cancel",
                path_segment(seller_fulfillment_order_id)
            ),
            query: vec![],
            body: None,
        };
        match self.send::<serde_json::Value>(&call).await {
            Ok(_) => Ok(()),
            Err(AmazonError::Api { message, .. }) if message.contains("DuplicateCancelRequest") => Ok(()),
            Err(e) => Err(not_found(e, seller_fulfillment_order_id)),
        }
    }

    /// Ids and statuses of the fulfillment orders changed since `since` (all pages).
    pub async fn list_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, OrderStatus)>, AmazonError> {
        let mut out = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let mut query = vec![("queryStartDate", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))];
            if let Some(token) = &next_token {
                query.push(("nextToken", token.clone()));
            }
            let call = Call {
                operation: Operation::ListAllFulfillmentOrders,
                method: Method::GET,
                path: "/fba/outbound/2020-07-01/fulfillmentOrders".into(),
                query,
                body: None,
            };
            let response: ListResponse = self.send(&call).await?;
            out.extend(
                response
                    .payload
                    .fulfillment_orders
                    .into_iter()
                    .map(|o| (o.seller_fulfillment_order_id, OrderStatus::parse(&o.fulfillment_order_status))),
            );
            next_token = response.payload.next_token.filter(|t| !t.is_empty());
            if next_token.is_none() {
                return Ok(out);
            }
        }
    }

    /// One call with rate limit, token, retries and error mapping.
    async fn send<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, AmazonError> {
        let operation = call.operation.name();
        let refreshed_once = std::sync::atomic::AtomicBool::new(false);
        with_retries(&self.config.retry, operation, || self.attempt(call, &refreshed_once)).await.map_err(|gave_up| {
            match gave_up {
                GaveUp::Failed(error) => error,
                GaveUp::Unanswered { attempts, last, stopped } => {
                    AmazonError::Unavailable { operation, attempts, last, stopped }
                }
            }
        })
    }

    /// One attempt: 429, 5xx, timeouts and unreadable answers are worth another (creates are
    /// keyed by their id, so a repeated create is refused, never doubled); an expired token is
    /// refreshed once and the call made again at once.
    async fn attempt<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        refreshed_once: &std::sync::atomic::AtomicBool,
    ) -> Result<T, Attempt<AmazonError>> {
        let operation = call.operation.name();
        let url = format!("{}{}", self.config.sp_api_base_url, call.path);
        let retry = &self.config.retry;
        loop {
            if let Some(pace) = self.paces.get(&call.operation) {
                pace.ready(&retry.shutdown).await.map_err(|stopped| Attempt::Retry(stopped.to_string()))?;
            }
            let token = self.tokens.access_token(&self.http, retry).await.map_err(Attempt::Fail)?;
            let mut request = self
                .http
                .request(call.method.clone(), &url)
                .header("x-amz-access-token", token)
                .header("accept", "application/json")
                .timeout(retry.request_timeout);
            if !call.query.is_empty() {
                request = request.query(&call.query);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| Attempt::Retry(describe_transport(&e)))?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status.is_success() {
                let text = if body.trim().is_empty() { "{}" } else { body.as_str() };
                return serde_json::from_str::<T>(text)
                    .map_err(|e| Attempt::Retry(format!("unreadable {operation} response ({e})")));
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                return Err(Attempt::Retry(format!(
                    "HTTP {status}: {}",
                    first_error(&body).map_or(body.clone(), |e| e.message)
                )));
            }
            let error = first_error(&body).unwrap_or(ApiError {
                code: format!("HTTP{}", status.as_u16()),
                message: body.clone(),
                details: None,
            });
            let details = error.details.unwrap_or_default();
            if status == StatusCode::FORBIDDEN
                && details.to_ascii_lowercase().contains("expired")
                && !refreshed_once.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                self.tokens.invalidate().await;
                tracing::info!(operation, "access token expired; refreshing once");
                continue;
            }
            return Err(Attempt::Fail(AmazonError::Api {
                operation,
                status: status.as_u16(),
                code: error.code,
                message: error.message,
                details,
            }));
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // Request types are plain structs of strings and numbers: they always encode.
    serde_json::to_value(value).unwrap_or_else(|e| unreachable!("SP-API request encodes: {e}"))
}

fn first_error(body: &str) -> Option<ApiError> {
    serde_json::from_str::<ErrorList>(body).ok()?.errors.into_iter().next()
}

fn not_found(error: AmazonError, id: &str) -> AmazonError {
    match error {
        AmazonError::Api { operation, status, ref message, .. }
            if status == 404 || (status == 400 && message.to_ascii_lowercase().contains("not found")) =>
        {
            AmazonError::NotFound { operation, id: id.to_owned() }
        }
        other => other,
    }
}

fn describe_transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        format!("cannot connect: {error}")
    } else {
        error.to_string()
    }
}

/// Our ids are `[A-Za-z0-9_-]`, but an id read from elsewhere is escaped all the same.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl AmazonConfig {
    /// The production client: the seller's settings, Amazon's published rates, the default
    /// retries, stopped by `shutdown`.
    pub fn from_settings(
        settings: &crate::config::AmazonSettings,
        urls: &crate::config::ApiBaseUrls,
        shutdown: &crate::transport::Shutdown,
    ) -> Self {
        AmazonConfig {
            credentials: LwaCredentials {
                client_id: settings.client_id.clone(),
                client_secret: settings.client_secret.clone(),
                refresh_token: settings.refresh_token.clone(),
            },
            marketplace_id: settings.marketplace_id.clone(),
            sp_api_base_url: urls.amazon_sp_api.clone(),
            lwa_token_url: urls.amazon_lwa_token.clone(),
            retry: RetryPolicy::default().stopped_by(shutdown),
            rate_limits: RateLimits::default(),
        }
    }
}
