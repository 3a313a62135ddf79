//! The Yahoo store-API client. Every call: a cached access token (refreshed with the refresh
//! token), a fresh public-key signature, an XML body; every answer: `X-SWS-Authorize-Status`
//! is kept for the stage to raise an alert when it is not `authorized` (a failed check still
//! answers 200, but the session then ends 12 hours after consent).

use super::mapping::request_time;
use super::signature::PublicKey;
use super::YahooError;
use crate::config::Secret;
use crate::transport::xml::{tag, Element};
use crate::transport::{with_retries, Attempt, GaveUp, Pace, RetryPolicy, USER_AGENT};
use chrono::{DateTime, Utc};
use events::{Clock, SystemClock};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use tokio::time::{Duration, Instant};

#[derive(Clone)]
pub struct YahooConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub seller_id: String,
    pub refresh_token: Secret,
    pub public_key: PublicKey,
    /// e.g. `https://circus.shopping.yahooapis.jp/ShoppingWebService/V1`
    pub api_base_url: String,
    /// e.g. `https://auth.login.yahoo.co.jp/yconnect/v2`
    pub auth_base_url: String,
    pub retry: RetryPolicy,
    pub rate: (f64, u32),
    /// The signature's timestamp comes from here.
    pub clock: Arc<dyn Clock>,
}

/// Yahoo's ceiling is 10 calls a second per API; stores are told to keep to 1–2 a second. One
/// a second for the whole client, with no burst.
pub const PRODUCTION_RATE: (f64, u32) = (1.0, 1);

impl YahooConfig {
    /// The production client: the store's settings, one call a second (no burst), the default
    /// retries, stopped by `shutdown`.
    pub fn from_settings(
        settings: &crate::config::YahooSettings,
        urls: &crate::config::ApiBaseUrls,
        shutdown: &crate::transport::Shutdown,
    ) -> Result<Self, YahooError> {
        Ok(Self {
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            seller_id: settings.seller_id.clone(),
            refresh_token: settings.refresh_token.clone(),
            public_key: PublicKey::load(&settings.public_key_pem, &settings.public_key_version)?,
            api_base_url: urls.yahoo_api.clone(),
            auth_base_url: urls.yahoo_auth.clone(),
            retry: RetryPolicy::default().stopped_by(shutdown),
            rate: PRODUCTION_RATE,
            clock: Arc::new(SystemClock),
        })
    }
}

/// One code's outcome in a setStock answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockResult {
    pub code: String,
    /// The quantity after the update (None when refused or unlimited).
    pub quantity: Option<i64>,
    /// Yahoo's error codes for this code (`st-02104`, possibly several, comma-separated).
    pub error: Option<String>,
}

/// One code's stock as getStock shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub code: String,
    /// Status 1: the store has this item (0: no such item, a mapping error).
    pub found: bool,
    pub quantity: Option<i64>,
    /// Quantity empty: no stock is kept (the item never sells out).
    pub unlimited: bool,
    /// Buyers may order past the stock (超過購入可).
    pub allow_overdraft: bool,
}

/// A text node trimmed (Yahoo's samples pad them); None when empty.
fn trimmed<'a>(element: &'a Element, path: &str) -> Option<&'a str> {
    element.text_at(path).map(str::trim).filter(|t| !t.is_empty())
}

/// `ItemCode` or `ItemCode:SubCode`, the key stock is written under.
fn stock_code(result: &Element) -> String {
    match (trimmed(result, "ItemCode"), trimmed(result, "SubCode")) {
        (Some(item), Some(sub)) => format!("{item}:{sub}"),
        (item, _) => item.unwrap_or("").to_owned(),
    }
}

/// One order as orderList shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOrder {
    pub order_id: String,
    pub order_status: String,
}

pub struct YahooClient {
    http: reqwest::Client,
    config: YahooConfig,
    pace: Pace,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    authorize_status: Mutex<Option<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl YahooClient {
    pub fn new(config: YahooConfig) -> Result<Self, YahooError> {
        let http = reqwest::Client::builder().user_agent(USER_AGENT).build().map_err(|e| YahooError::Unavailable {
            operation: "client setup",
            attempts: 0,
            last: e.to_string(),
            stopped: false,
        })?;
        let pace = Pace::new(config.rate.0, config.rate.1);
        Ok(Self { http, config, pace, token: tokio::sync::Mutex::new(None), authorize_status: Mutex::new(None) })
    }

    pub fn seller_id(&self) -> &str {
        &self.config.seller_id
    }

    /// The last `X-SWS-Authorize-Status` Yahoo sent (`authorized` when the key is good).
    pub fn authorize_status(&self) -> Option<String> {
        self.authorize_status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn access_token(&self) -> Result<String, YahooError> {
        let mut cached = self.token.lock().await;
        if let Some((token, _)) = cached.as_ref().filter(|(_, until)| Instant::now() < *until) {
            return Ok(token.clone());
        }
        let (token, lifetime) = with_retries(&self.config.retry, "token", || self.request_token()).await.map_err(
            |gave_up| match gave_up {
                GaveUp::Failed(error) => error,
                GaveUp::Unanswered { attempts, last, stopped } => {
                    YahooError::Unavailable { operation: "token", attempts, last, stopped }
                }
            },
        )?;
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// One refresh-token exchange: `invalid_grant` means the store must consent again, another
    /// 4xx that our client credentials are refused; 5xx and unreadable answers are retried.
    async fn request_token(&self) -> Result<(String, Duration), Attempt<YahooError>> {
        let url = format!("{}/token", self.config.auth_base_url);
        let form = [("grant_type", "refresh_token"), ("refresh_token", self.config.refresh_token.expose())];
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.config.client_id, Some(self.config.client_secret.expose()))
            .form(&form)
            .timeout(self.config.retry.request_timeout)
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let text = |key: &str| body.get(key).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        if status.is_success() {
            let token = body.get("access_token").and_then(|t| t.as_str());
            let token = token.ok_or_else(|| Attempt::Retry("token response without access_token".into()))?;
            let lifetime = body.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(3600).saturating_sub(60);
            return Ok((token.to_owned(), Duration::from_secs(lifetime)));
        }
        if text("error") == "invalid_grant" {
            return Err(Attempt::Fail(YahooError::Consent {
                error: text("error"),
                description: text("error_description"),
            }));
        }
        if status.is_client_error() {
            return Err(Attempt::Fail(YahooError::Credentials {
                error: text("error"),
                description: text("error_description"),
            }));
        }
        Err(Attempt::Retry(format!("HTTP {status}")))
    }

    /// Orders published (visible after the buyer's cancel window) in [from, to], all pages.
    pub async fn order_list(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ListedOrder>, YahooError> {
        let condition = format!(
            "{}{}",
            tag("PublicationTimeFrom", &request_time(from)),
            tag("PublicationTimeTo", &request_time(to))
        );
        self.list(&condition).await
    }

    /// Orders placed in [from, to] (by OrderTime), all pages, with their OrderStatus: the
    /// watch's view of every open order in one call per 2,000.
    pub async fn orders_placed_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ListedOrder>, YahooError> {
        let condition =
            format!("{}{}", tag("OrderTimeFrom", &request_time(from)), tag("OrderTimeTo", &request_time(to)));
        self.list(&condition).await
    }

    async fn list(&self, condition: &str) -> Result<Vec<ListedOrder>, YahooError> {
        let mut orders = Vec::new();
        let mut start = 1;
        loop {
            let body = format!(
                "<Req><Search><Result>2000</Result><Start>{start}</Start><Sort>+order_time</Sort><Condition>{condition}</Condition>{}</Search>{}</Req>",
                tag("Field", "OrderId,OrderTime,OrderStatus,PublicationTime"),
                tag("SellerId", &self.config.seller_id),
            );
            let root = self.call("orderList", Kind::Read, body).await?;
            let search = root.at("Search").ok_or_else(|| unreadable("orderList", "no Search element"))?;
            let total: usize = search.text_at("TotalCount").and_then(|t| t.parse().ok()).unwrap_or(0);
            let page: Vec<ListedOrder> = search
                .children_named("OrderInfo")
                .filter_map(|info| {
                    Some(ListedOrder {
                        order_id: info.text_at("OrderId")?.to_owned(),
                        order_status: info.text_at("OrderStatus").unwrap_or("").to_owned(),
                    })
                })
                .collect();
            let got = page.len();
            orders.extend(page);
            start += 2000;
            if got == 0 || start > total {
                return Ok(orders);
            }
        }
    }

    /// One order with every field routing needs; the raw XML comes back too (kept as a blob).
    pub async fn order_info(&self, order_id: &str) -> Result<(Element, String), YahooError> {
        let body = format!(
            "<Req><Target>{}{}</Target>{}</Req>",
            tag("OrderId", order_id),
            tag("Field", super::mapping::ORDER_INFO_FIELDS),
            tag("SellerId", &self.config.seller_id)
        );
        let (root, raw) = self.call_raw("orderInfo", Kind::Read, body).await?;
        let info =
            root.at("Result/OrderInfo").cloned().ok_or_else(|| unreadable("orderInfo", "no Result/OrderInfo"))?;
        Ok((info, raw))
    }

    /// ShipStatus 3 (shipped) with carrier, invoice number and date. Repeating it is harmless.
    pub async fn ship_status_change(
        &self,
        order_id: &str,
        company_code: &str,
        invoice: &str,
        ship_date: &str,
    ) -> Result<(), YahooError> {
        let body = format!(
            "<Req><Target>{}<IsPointFix>true</IsPointFix></Target><Order><Ship><ShipStatus>3</ShipStatus>{}{}{}</Ship></Order>{}</Req>",
            tag("OrderId", order_id),
            tag("ShipCompanyCode", company_code),
            tag("ShipInvoiceNumber1", invoice),
            tag("ShipDate", ship_date),
            tag("SellerId", &self.config.seller_id)
        );
        self.call("orderShipStatusChange", Kind::Write, body).await.map(|_| ())
    }

    /// setStock for up to 1,000 codes (`item_code[:sub_code]`): absolute quantities, and
    /// `allow_overdraft=0` for each (left out, the store's default would apply). Each code's
    /// result: the quantity after the update, or Yahoo's error codes (a 207 answer).
    pub async fn set_stock(&self, rows: &[(String, u32)]) -> Result<Vec<StockResult>, YahooError> {
        let codes = rows.iter().map(|(code, _)| code.as_str()).collect::<Vec<_>>().join(",");
        let quantities = rows.iter().map(|(_, quantity)| quantity.to_string()).collect::<Vec<_>>().join(",");
        let overdraft = vec!["0"; rows.len()].join(",");
        let fields = [
            ("seller_id", self.config.seller_id.clone()),
            ("item_code", codes),
            ("quantity", quantities),
            ("allow_overdraft", overdraft),
        ];
        let root = self.call_form("setStock", Kind::Write, &fields).await?;
        Ok(root
            .children_named("Result")
            .map(|result| StockResult {
                code: stock_code(result),
                quantity: trimmed(result, "Quantity").and_then(|q| q.parse().ok()),
                error: trimmed(result, "ErrorCode").map(str::to_owned),
            })
            .collect())
    }

    /// getStock for up to 1,000 codes: each one's stock as Yahoo shows it.
    pub async fn stock(&self, codes: &[String]) -> Result<Vec<StockLevel>, YahooError> {
        let fields = [("seller_id", self.config.seller_id.clone()), ("item_code", codes.join(","))];
        let root = self.call_form("getStock", Kind::Read, &fields).await?;
        Ok(root
            .children_named("Result")
            .map(|result| StockLevel {
                code: stock_code(result),
                found: trimmed(result, "Status") == Some("1"),
                quantity: trimmed(result, "Quantity").and_then(|q| q.parse().ok()),
                unlimited: trimmed(result, "Status") == Some("1") && trimmed(result, "Quantity").is_none(),
                allow_overdraft: trimmed(result, "AllowOverdraft") == Some("1"),
            })
            .collect())
    }

    /// OrderStatus 5 (完了) after shipping, with points fixed.
    pub async fn complete_order(&self, order_id: &str) -> Result<(), YahooError> {
        let body = format!(
            "<Req><Target>{}<IsPointFix>true</IsPointFix></Target><Order><OrderStatus>5</OrderStatus></Order>{}</Req>",
            tag("OrderId", order_id),
            tag("SellerId", &self.config.seller_id)
        );
        self.call("orderStatusChange", Kind::Write, body).await.map(|_| ())
    }

    async fn call(&self, operation: &'static str, kind: Kind, body: String) -> Result<Element, YahooError> {
        self.call_raw(operation, kind, body).await.map(|(root, _)| root)
    }

    async fn call_raw(
        &self,
        operation: &'static str,
        kind: Kind,
        body: String,
    ) -> Result<(Element, String), YahooError> {
        self.send(operation, kind, XML, body).await
    }

    /// The stock APIs take form bodies (and answer XML like the others).
    async fn call_form(
        &self,
        operation: &'static str,
        kind: Kind,
        fields: &[(&str, String)],
    ) -> Result<Element, YahooError> {
        // `:` and `,` of the stock lists are percent-encoded like any other byte.
        let body = serde_urlencoded::to_string(fields).map_err(|e| YahooError::Unavailable {
            operation,
            attempts: 0,
            last: format!("the form cannot be encoded: {e}"),
            stopped: false,
        })?;
        self.send(operation, kind, FORM, body).await.map(|(root, _)| root)
    }

    async fn send(
        &self,
        operation: &'static str,
        kind: Kind,
        content_type: &'static str,
        body: String,
    ) -> Result<(Element, String), YahooError> {
        let refreshed = std::sync::atomic::AtomicBool::new(false);
        with_retries(&self.config.retry, operation, || self.attempt(operation, kind, content_type, &body, &refreshed))
            .await
            .map_err(|gave_up| match gave_up {
                GaveUp::Failed(error) => error,
                GaveUp::Unanswered { attempts, last, stopped } => {
                    YahooError::Unavailable { operation, attempts, last, stopped }
                }
            })
    }

    /// One call. A read may always be made again; a write only when Yahoo cannot have processed
    /// it (no connection, 429, 503). An expired access token is refreshed once, at once.
    async fn attempt(
        &self,
        operation: &'static str,
        kind: Kind,
        content_type: &'static str,
        body: &str,
        refreshed: &std::sync::atomic::AtomicBool,
    ) -> Result<(Element, String), Attempt<YahooError>> {
        let unsure = |text: String| if kind == Kind::Read { Attempt::Retry(text) } else { Attempt::Unsure(text) };
        let url = format!("{}/{operation}", self.config.api_base_url);
        loop {
            self.pace
                .ready(&self.config.retry.shutdown)
                .await
                .map_err(|stopped| Attempt::Retry(stopped.to_string()))?;
            let token = self.access_token().await.map_err(Attempt::Fail)?;
            let signature = self
                .config
                .public_key
                .signature(&self.config.seller_id, self.config.clock.now().timestamp())
                .map_err(Attempt::Fail)?;
            let sent = self
                .http
                .post(&url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .header("X-sws-signature", signature)
                .header("X-sws-signature-version", &self.config.public_key.version)
                .body(body.to_owned())
                .timeout(self.config.retry.request_timeout)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if e.is_connect() => return Err(Attempt::Retry(format!("cannot connect: {e}"))),
                Err(e) if e.is_timeout() => return Err(unsure("timed out".to_owned())),
                Err(e) => return Err(unsure(e.to_string())),
            };
            let status = response.status();
            if let Some(value) = response.headers().get("x-sws-authorize-status").and_then(|v| v.to_str().ok()) {
                *self.authorize_status.lock().unwrap_or_else(|p| p.into_inner()) = Some(value.to_owned());
            }
            let invalid_token = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("invalid_token"));
            let text = response.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED
                && invalid_token
                && !refreshed.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                *self.token.lock().await = None;
                continue;
            }
            // Throttled or in maintenance: the request was not processed.
            let not_processed = status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS;
            let failed = |text: String| if not_processed { Attempt::Retry(text) } else { unsure(text) };
            return match Element::parse(&text) {
                Ok(root) if root.name == "Error" => {
                    let code = root.text_at("Code").unwrap_or("").to_owned();
                    let message = root.text_at("Message").unwrap_or("").to_owned();
                    if status.is_server_error() || not_processed {
                        Err(failed(format!("HTTP {status}: {code} {message}")))
                    } else {
                        Err(Attempt::Fail(YahooError::Api { operation, status: status.as_u16(), code, message }))
                    }
                }
                Ok(root) if status.is_success() => match ng_status(&root) {
                    Some((code, message)) => {
                        Err(Attempt::Fail(YahooError::Api { operation, status: status.as_u16(), code, message }))
                    }
                    None => Ok((root, text)),
                },
                Ok(_) => Err(failed(format!("HTTP {status}"))),
                Err(e) if status.is_success() => Err(unsure(format!("unreadable {operation} response ({e})"))),
                Err(_) => Err(failed(format!("HTTP {status}"))),
            };
        }
    }
}

const XML: &str = "application/xml; charset=UTF-8";
const FORM: &str = "application/x-www-form-urlencoded";

/// An answer whose `Status` is NG: Yahoo's code and message.
fn ng_status(root: &Element) -> Option<(String, String)> {
    if root.text_at("Status").or_else(|| root.text_at("Result/Status")) != Some("NG") {
        return None;
    }
    let code = root.text_at("Result/Error/Code").or_else(|| root.text_at("Error/Code")).unwrap_or("NG").to_owned();
    let message =
        root.text_at("Result/Error/Message").or_else(|| root.text_at("Error/Message")).unwrap_or("").to_owned();
    Some((code, message))
}

fn unreadable(operation: &'static str, what: &str) -> YahooError {
    YahooError::Unavailable { operation, attempts: 1, last: format!("unreadable response: {what}"), stopped: false }
}
