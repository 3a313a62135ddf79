//! The sandbox's HTTP surface: LWA token, FBA Inventory and Fulfillment Outbound.

use super::validate::{self, Invalid};
use super::{Shared, Stock, StoredOrder, DELIVERY_SLOTS};
use crate::faults::Fault;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Shared_ = Arc<Shared>;

/// Amazon's Japan marketplace id (spec §1).
const MARKETPLACE_JP: &str = "A1VC38T7YXB528";

pub fn router(shared: Shared_) -> Router {
    const ORDERS: &str = "/fba/outbound/2020-07-01/fulfillmentOrders";
    Router::new()
        .route("/auth/o2/token", post(token))
        .route("/fba/inventory/v1/summaries", get(inventory))
        .route(&format!("{ORDERS}/preview"), post(preview))
        .route(ORDERS, post(create).get(list))
        .route(&format!("{ORDERS}/{{id}}"), get(get_order))
        .route(&format!("{ORDERS}/{{id}}/cancel"), put(cancel))
        .route(&format!("{ORDERS}/{{id}}/status"), put(force_status))
        .with_state(shared)
}

fn jst() -> FixedOffset {
    crate::jst()
}

fn request_id() -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u64(..) & 0xffff_ffff_ffff
    )
}

fn errors(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    let mut response =
        (status, axum::Json(json!({"errors": [{"code": code, "message": message, "details": details}]})))
            .into_response();
    response.headers_mut().insert("x-amzn-RequestId", request_id().parse().expect("ascii"));
    response
}

fn invalid(error: Invalid) -> Response {
    errors(StatusCode::BAD_REQUEST, "InvalidInput", &error.0, "")
}

fn ok(body: Value) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-amzn-RequestId", request_id().parse().expect("ascii"));
    headers.insert("x-amzn-RateLimit-Limit", "2.0".parse().expect("ascii"));
    response
}

fn fault_response(status: u16) -> Response {
    match status {
        429 => errors(
            StatusCode::TOO_MANY_REQUESTS,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
            "",
        ),
        503 => errors(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service is temporarily unavailable. Please try again.",
            "",
        ),
        other => errors(
            StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "InternalFailure",
            "We encountered an internal error. Please try again.",
            "",
        ),
    }
}

/// What happens to a call before its operation runs: latency, faults, rate limit, access token.
/// `Ok(Some(fault))` hands a fault that acts after the operation (malformed, hang) to the caller.
async fn gate(shared: &Shared, operation: &'static str, headers: &HeaderMap) -> Result<Option<Fault>, Response> {
    *shared.lock().calls.entry(operation).or_default() += 1;
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let mut after = None;
    match shared.faults.take(operation) {
        Some(Fault::Status(status)) => return Err(fault_response(status)),
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(other) => after = Some(other),
        None => {}
    }
    if shared.config.enforce_rate_limits && !shared.buckets.get(operation).is_none_or(|b| b.admit()) {
        shared.lock().throttled += 1;
        return Err(fault_response(429));
    }
    let forbidden = |details: &str| {
        errors(StatusCode::FORBIDDEN, "Unauthorized", "Access to requested resource is denied.", details)
    };
    let Some(token) = headers.get("x-amz-access-token").and_then(|v| v.to_str().ok()) else {
        return Err(forbidden("Access token is missing in the request header."));
    };
    let expiry = shared.lock().tokens.get(token).copied();
    match expiry {
        None => return Err(forbidden("The access token you provided is revoked, malformed or invalid.")),
        Some(expiry) if expiry <= shared.now() => return Err(forbidden("The access token you provided has expired.")),
        Some(_) => {}
    }
    if headers.get("user-agent").and_then(|v| v.to_str().ok()).is_none_or(|ua| ua.is_empty() || ua.len() > 500) {
        return Err(invalid(Invalid("A valid User-Agent header is required.".into())));
    }
    Ok(after)
}

/// Applies a fault that acts on the answer of an operation that already ran.
async fn finish(after: Option<Fault>, response: Response) -> Response {
    match after {
        Some(Fault::Malformed) if response.status().is_success() => {
            (StatusCode::OK, [("content-type", "application/json")], "{\"payload\": {\"fulfillment").into_response()
        }
        Some(Fault::ApplyThenHang(delay)) => {
            tokio::time::sleep(delay).await;
            response
        }
        _ => response,
    }
}

fn parse_body(body: &Bytes) -> Result<Value, Invalid> {
    serde_json::from_slice(body).map_err(|e| Invalid(format!("The request body is not valid JSON: {e}")))
}

async fn token(State(shared): State<Shared_>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(Fault::Status(status)) = shared.faults.take("token") {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            axum::Json(json!({"error": "server_error", "error_description": "Internal Server Error"})),
        )
            .into_response();
    }
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (status, axum::Json(json!({"error": error, "error_description": description}))).into_response()
    };
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let fields: HashMap<String, String> = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<HashMap<String, Value>>(&body) {
            Ok(map) => map.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect(),
            Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The request body is malformed"),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        crate::form_pairs(&body).into_iter().collect()
    } else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    };
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    if field("grant_type") != "refresh_token" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "The grant type is not supported");
    }
    let config = &shared.config;
    if field("client_id") != config.client_id || field("client_secret") != config.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
    }
    if field("refresh_token") != config.refresh_token {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    }
    let expires_at = shared.now() + ChronoDuration::from_std(config.token_lifetime).unwrap_or(ChronoDuration::hours(1));
    let mut state = shared.lock();
    state.issued += 1;
    let access_token = format!("Atza|sandbox-{}-{}", state.issued, fastrand::u64(..));
    state.tokens.insert(access_token.clone(), expires_at);
    (
        StatusCode::OK,
        axum::Json(json!({
            "access_token": access_token,
            "refresh_token": config.refresh_token,
            "token_type": "bearer",
            "expires_in": config.token_lifetime.as_secs(),
        })),
    )
        .into_response()
}

/// Moves stock of orders that completed from reserved to shipped (lazily, on every call).
fn settle(shared: &Shared, now: DateTime<Utc>) {
    let config = &shared.config;
    let mut state = shared.lock();
    let completed: Vec<(String, Vec<(String, u32)>)> = state
        .orders
        .values()
        .filter(|o| !o.stock_released && status_at(config, o, now).0 == "Complete")
        .map(|o| (o.id.clone(), o.lines.clone()))
        .collect();
    for (id, lines) in completed {
        for (sku, quantity) in lines {
            let stock = state.stock.entry(sku).or_default();
            stock.reserved = stock.reserved.saturating_sub(quantity);
            stock.shipped += quantity;
        }
        if let Some(order) = state.orders.get_mut(&id) {
            order.stock_released = true;
        }
    }
}

/// The order's status now, and when it last changed.
pub(super) fn status_at(
    config: &super::AmazonSandboxConfig,
    order: &StoredOrder,
    now: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    if let Some(at) = order.cancelled_at {
        return ("Cancelled".into(), at);
    }
    if order.unfulfillable {
        return ("Unfulfillable".into(), order.created_at);
    }
    if let Some(forced) = &order.forced_status {
        return (forced.clone(), order.created_at);
    }
    let steps =
        [(config.to_complete, "Complete"), (config.to_processing, "Processing"), (config.to_planning, "Planning")];
    for (after, status) in steps {
        if now >= order.created_at + after {
            return (status.into(), order.created_at + after);
        }
    }
    ("Received".into(), order.created_at)
}

async fn inventory(
    State(shared): State<Shared_>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let after = match gate(&shared, "getInventorySummaries", &headers).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let now = shared.now();
    settle(&shared, now);
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let response = (|| -> Result<Response, Invalid> {
        let granularity = param("granularityType").ok_or_else(|| validate::missing("granularityType"))?;
        if granularity != "Marketplace" {
            return Err(validate::invalid_value(&granularity, "granularityType", "InvalidValue"));
        }
        let granularity_id = param("granularityId").ok_or_else(|| validate::missing("granularityId"))?;
        let marketplaces: Vec<String> = query
            .iter()
            .filter(|(k, _)| k == "marketplaceIds")
            .flat_map(|(_, v)| v.split(',').map(str::to_owned))
            .collect();
        if marketplaces.is_empty() {
            return Err(validate::missing("marketplaceIds"));
        }
        if marketplaces.len() > 1 || marketplaces[0] != granularity_id {
            return Err(validate::invalid_value(&marketplaces.join(","), "marketplaceIds", "InvalidValue"));
        }
        let details = param("details").is_some_and(|d| d == "true");
        let skus: Vec<String> = match (param("nextToken"), param("sellerSkus"), param("sellerSku")) {
            (Some(token), _, _) => {
                let mut state = shared.lock();
                match state.inventory_pages.remove(&token) {
                    Some((remaining, issued)) if now - issued <= ChronoDuration::seconds(30) => remaining,
                    _ => return Err(Invalid("Next token is invalid or expired".into())),
                }
            }
            (None, Some(list), _) => {
                let skus: Vec<String> = list.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                if skus.len() > 50 {
                    return Err(validate::invalid_value(&skus.len().to_string(), "sellerSkus", "InvalidValue"));
                }
                skus
            }
            (None, None, Some(one)) => vec![one],
            (None, None, None) => shared.lock().stock.keys().cloned().collect(),
        };
        let state = shared.lock();
        let known: Vec<&String> = skus.iter().filter(|s| state.stock.contains_key(*s)).collect();
        let page_size = shared.config.inventory_page_size.max(1);
        let (page, rest) = known.split_at(known.len().min(page_size));
        let summaries: Vec<Value> = page
            .iter()
            .map(|sku| inventory_summary(sku, state.stock.get(*sku).copied().unwrap_or_default(), details))
            .collect();
        drop(state);
        let mut body = json!({"payload": {"granularity": {"granularityType": "Marketplace", "granularityId": granularity_id}, "inventorySummaries": summaries}});
        if !rest.is_empty() {
            let token = format!("sandbox-next-{}", fastrand::u64(..));
            shared.lock().inventory_pages.insert(token.clone(), (rest.iter().map(|s| (*s).clone()).collect(), now));
            body["pagination"] = json!({"nextToken": token});
        }
        Ok(ok(body))
    })();
    finish(after, response.unwrap_or_else(invalid)).await
}

/// One SKU's InventorySummary, with inventoryDetails when asked for.
fn inventory_summary(sku: &str, stock: Stock, details: bool) -> Value {
    let mut summary = json!({
        "asin": format!("B0{:08}", fnv(sku) % 100_000_000),
        "fnSku": format!("X00{:07}", fnv(sku) % 10_000_000),
        "sellerSku": sku,
        "condition": "NewItem",
        "productName": format!("Sandbox item {sku}"),
        "lastUpdatedTime": "",
        "totalQuantity": stock.fulfillable + stock.reserved,
        "stores": [],
    });
    if details {
        summary["inventoryDetails"] = json!({
            "fulfillableQuantity": stock.fulfillable,
            "inboundWorkingQuantity": 0, "inboundShippedQuantity": 0, "inboundReceivingQuantity": 0,
            "reservedQuantity": {"totalReservedQuantity": stock.reserved, "pendingCustomerOrderQuantity": stock.reserved, "pendingTransshipmentQuantity": 0, "fcProcessingQuantity": 0},
            "researchingQuantity": {"totalResearchingQuantity": 0, "researchingQuantityBreakdown": []},
            "unfulfillableQuantity": {"totalUnfulfillableQuantity": 0},
        });
    }
    summary
}

const SPEEDS: [&str; 4] = ["Standard", "Expedited", "Priority", "ScheduledDelivery"];

/// Windows offered for ScheduledDelivery at `now`: days +2 to +5 (JST), the standard slots.
fn delivery_windows(now: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let today = now.with_timezone(&jst()).date_naive();
    (2..=5)
        .flat_map(|days| {
            let date = today + ChronoDuration::days(days);
            DELIVERY_SLOTS.iter().filter_map(move |(from, to)| {
                let at = |hour: u32| {
                    jst().from_local_datetime(&date.and_hms_opt(hour, 0, 0)?).single().map(|t| t.with_timezone(&Utc))
                };
                Some((at(*from)?, at(*to)?))
            })
        })
        .collect()
}

fn arrival(now: DateTime<Utc>, days: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let date = now.with_timezone(&jst()).date_naive() + ChronoDuration::days(days);
    let at = |hour| {
        jst()
            .from_local_datetime(&date.and_hms_opt(hour, 0, 0).unwrap_or_default())
            .single()
            .map_or(now, |t| t.with_timezone(&Utc))
    };
    (at(9), at(21))
}

fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn preview(State(shared): State<Shared_>, headers: HeaderMap, body: Bytes) -> Response {
    let after = match gate(&shared, "getFulfillmentPreview", &headers).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let now = shared.now();
    settle(&shared, now);
    let response = (|| -> Result<Response, Invalid> {
        let body = parse_body(&body)?;
        let request = validate::object(&body, "body")?;
        validate::address(validate::required(request, "address", "Address")?, "Address")?;
        validate::japan_limits(&request["address"], "Address", &shared.config)?;
        let lines = validate::items(request.get("items"))?;
        let speeds: Vec<String> = match request.get("shippingSpeedCategories").and_then(Value::as_array) {
            None => vec!["Standard".into(), "Expedited".into(), "ScheduledDelivery".into()],
            Some(list) => list.iter().map(|v| v.as_str().unwrap_or("").to_owned()).collect(),
        };
        if let Some(bad) = speeds.iter().find(|s| !SPEEDS.contains(&s.as_str())) {
            return Err(validate::invalid_value(bad, "ShippingSpeedCategories", "InvalidValue"));
        }
        let with_windows = request.get("includeDeliveryWindows").and_then(Value::as_bool).unwrap_or(false);
        let state = shared.lock();
        let unfulfillable: Vec<Value> = lines
            .iter()
            .filter_map(|(sku, id, quantity)| {
                let reason = match state.stock.get(sku) {
                    None => "InvalidSKU",
                    Some(stock) if stock.fulfillable < *quantity => "InventoryUnavailable",
                    Some(_) => return None,
                };
                Some(json!({"sellerSku": sku, "quantity": quantity, "sellerFulfillmentOrderItemId": id, "itemUnfulfillableReasons": [reason]}))
            })
            .collect();
        drop(state);
        let previews: Vec<Value> = speeds
            .iter()
            .map(|speed| {
                let (days, fee) = match speed.as_str() {
                    "Expedited" => (Some(shared.config.expedited_days), 650),
                    "Priority" => (shared.config.priority_days, 900),
                    "ScheduledDelivery" => (Some(2), 700),
                    _ => (Some(shared.config.standard_days), 450),
                };
                let (earliest, latest) = arrival(now, days.unwrap_or(0));
                let mut reasons = vec![];
                if days.is_none() {
                    reasons.push("DeliverySLAUnavailable");
                }
                let fulfillable = unfulfillable.is_empty() && reasons.is_empty();
                let mut preview = json!({
                    "shippingSpeedCategory": speed,
                    "isFulfillable": fulfillable,
                    "isCODCapable": false,
                    "marketplaceId": MARKETPLACE_JP,
                    "estimatedShippingWeight": {"unit": "KG", "value": "0.8"},
                    "estimatedFees": [{"name": "FBAPerUnitFulfillmentFee", "amount": {"currencyCode": "JPY", "value": fee.to_string()}}],
                    "fulfillmentPreviewShipments": if fulfillable { json!([{
                        "earliestShipDate": iso(now), "latestShipDate": iso(now + ChronoDuration::hours(8)),
                        "earliestArrivalDate": iso(earliest), "latestArrivalDate": iso(latest),
                        "fulfillmentPreviewItems": lines.iter().map(|(sku, id, q)| json!({"sellerSku": sku, "quantity": q, "sellerFulfillmentOrderItemId": id})).collect::<Vec<_>>(),
                    }]) } else { json!([]) },
                    "unfulfillablePreviewItems": unfulfillable,
                    "orderUnfulfillableReasons": reasons,
                });
                if speed == "ScheduledDelivery" && with_windows && fulfillable {
                    preview["scheduledDeliveryInfo"] = json!({
                        "deliveryTimeZone": "Asia/Tokyo",
                        "deliveryWindows": delivery_windows(now).iter().map(|(s, e)| json!({"startDate": iso(*s), "endDate": iso(*e)})).collect::<Vec<_>>(),
                    });
                }
                preview
            })
            .collect();
        Ok(ok(json!({"payload": {"fulfillmentPreviews": previews}})))
    })();
    finish(after, response.unwrap_or_else(invalid)).await
}

async fn create(State(shared): State<Shared_>, headers: HeaderMap, body: Bytes) -> Response {
    let after = match gate(&shared, "createFulfillmentOrder", &headers).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    shared.lock().create_requests += 1;
    let now = shared.now();
    settle(&shared, now);
    let response = (|| -> Result<Response, Invalid> {
        let body = parse_body(&body)?;
        let request = validate::object(&body, "body")?;
        let id = validate::text(request, "sellerFulfillmentOrderId", "SellerFulfillmentOrderId", 40)?.to_owned();
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(validate::invalid_value(&id, "SellerFulfillmentOrderId", "InvalidValue"));
        }
        let displayable = validate::text(request, "displayableOrderId", "DisplayableOrderId", 40)?;
        validate::latin1(displayable, "DisplayableOrderId")?;
        validate::timestamp(validate::text(request, "displayableOrderDate", "DisplayableOrderDate", 64)?)?;
        validate::text(request, "displayableOrderComment", "DisplayableOrderComment", 750)?;
        let speed = validate::text(request, "shippingSpeedCategory", "ShippingSpeedCategory", 32)?.to_owned();
        let priority_refused = speed == "Priority" && shared.config.priority_days.is_none();
        if !SPEEDS.contains(&speed.as_str()) || priority_refused {
            return Err(validate::invalid_value(&speed, "ShippingSpeedCategory", "InvalidValue"));
        }
        validate::address(
            validate::required(request, "destinationAddress", "DestinationAddress")?,
            "DestinationAddress",
        )?;
        validate::japan_limits(&request["destinationAddress"], "DestinationAddress", &shared.config)?;
        let lines = validate::items(request.get("items"))?;
        check_delivery_window(&speed, request.get("deliveryWindow"), now)?;
        if let Some(action) = request.get("fulfillmentAction").and_then(Value::as_str) {
            if !["Ship", "Hold"].contains(&action) || (action == "Hold" && speed == "ScheduledDelivery") {
                return Err(validate::invalid_value(action, "FulfillmentAction", "InvalidValue"));
            }
        }
        let mut state = shared.lock();
        if state.orders.contains_key(&id) {
            return Err(Invalid(format!("A create request already exists for MerchantFulfillmentOrderId : {id}")));
        }
        if let Some((_, item_id, _)) = lines.iter().find(|(sku, _, _)| !state.stock.contains_key(sku)) {
            return Err(Invalid(format!("the SellerSKU for Item Id: {item_id} is invalid.")));
        }
        // FillOrKill: all lines reserve, or the order is Unfulfillable and nothing ships.
        let covered = lines.iter().all(|(sku, _, q)| state.stock.get(sku).is_some_and(|s| s.fulfillable >= *q));
        if covered {
            for (sku, _, quantity) in &lines {
                let stock = state.stock.entry(sku.clone()).or_default();
                stock.fulfillable -= quantity;
                stock.reserved += quantity;
            }
        }
        state.orders.insert(
            id.clone(),
            StoredOrder {
                id: id.clone(),
                request: body.clone(),
                created_at: now,
                speed,
                lines: lines.iter().map(|(sku, _, q)| (sku.clone(), *q)).collect(),
                cancelled_at: None,
                unfulfillable: !covered,
                forced_status: None,
                stock_released: !covered,
            },
        );
        Ok(ok(json!({})))
    })();
    finish(after, response.unwrap_or_else(invalid)).await
}

/// A delivery window goes with ScheduledDelivery only, and must be one the preview offered.
fn check_delivery_window(speed: &str, window: Option<&Value>, now: DateTime<Utc>) -> Result<(), Invalid> {
    match (speed, window) {
        ("ScheduledDelivery", None) => Err(validate::missing("DeliveryWindow")),
        ("ScheduledDelivery", Some(window)) => {
            let start = window.get("startDate").and_then(Value::as_str).map(validate::timestamp);
            let end = window.get("endDate").and_then(Value::as_str).map(validate::timestamp);
            let offered = match (start, end) {
                (Some(Ok(s)), Some(Ok(e))) => delivery_windows(now).contains(&(s, e)),
                _ => false,
            };
            if offered {
                Ok(())
            } else {
                Err(validate::invalid_value(&window.to_string(), "DeliveryWindow", "InvalidValue"))
            }
        }
        (_, Some(window)) => Err(validate::invalid_value(&window.to_string(), "DeliveryWindow", "InvalidValue")),
        (_, None) => Ok(()),
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The carrier and tracking number a completed order's package gets (stable per order).
pub fn package_tracking(id: &str) -> (&'static str, String) {
    let hash = fnv(id);
    let carrier = ["YAMATO", "SAGAWA", "JAPAN POST"][(hash % 3) as usize];
    (carrier, format!("{:012}", hash % 1_000_000_000_000))
}

fn order_json(shared: &Shared, order: &StoredOrder, now: DateTime<Utc>) -> Value {
    let (status, updated) = status_at(&shared.config, order, now);
    let request = &order.request;
    let items: Vec<Value> = request["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let cancelled = if status == "Cancelled" { item["quantity"].clone() } else { json!(0) };
                    let unfulfillable = if status == "Unfulfillable" { item["quantity"].clone() } else { json!(0) };
                    json!({"sellerSku": item["sellerSku"], "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"], "quantity": item["quantity"], "cancelledQuantity": cancelled, "unfulfillableQuantity": unfulfillable, "orderItemDisposition": "Sellable"})
                })
                .collect()
        })
        .unwrap_or_default();
    let shipment_items: Vec<Value> = request["items"]
        .as_array()
        .map(|items| items.iter().map(|i| json!({"sellerSku": i["sellerSku"], "sellerFulfillmentOrderItemId": i["sellerFulfillmentOrderItemId"], "quantity": i["quantity"], "packageNumber": 171_000_000 + (fnv(&order.id) % 999_999) as i64})).collect())
        .unwrap_or_default();
    let shipments = match status.as_str() {
        "Processing" => {
            json!([{"amazonShipmentId": format!("D{:09}", fnv(&order.id) % 1_000_000_000), "fulfillmentCenterId": "NRT5", "fulfillmentShipmentStatus": "PENDING", "fulfillmentShipmentItem": shipment_items}])
        }
        "Complete" => {
            let (carrier, tracking) = package_tracking(&order.id);
            let shipped = order.created_at + shared.config.to_complete - ChronoDuration::minutes(30);
            json!([{
                "amazonShipmentId": format!("D{:09}", fnv(&order.id) % 1_000_000_000), "fulfillmentCenterId": "NRT5",
                "fulfillmentShipmentStatus": "SHIPPED", "shippingDate": iso(shipped), "estimatedArrivalDate": iso(shipped + ChronoDuration::days(1)),
                "fulfillmentShipmentItem": shipment_items,
                "fulfillmentShipmentPackage": [{"packageNumber": 171_000_000 + (fnv(&order.id) % 999_999) as i64, "carrierCode": carrier, "trackingNumber": tracking, "estimatedArrivalDate": iso(shipped + ChronoDuration::days(1))}],
            }])
        }
        _ => json!([]),
    };
    json!({
        "fulfillmentOrder": {
            "sellerFulfillmentOrderId": order.id,
            "marketplaceId": request.get("marketplaceId").cloned().unwrap_or(json!(MARKETPLACE_JP)),
            "displayableOrderId": request["displayableOrderId"], "displayableOrderDate": request["displayableOrderDate"], "displayableOrderComment": request["displayableOrderComment"],
            "shippingSpeedCategory": order.speed,
            "deliveryWindow": request.get("deliveryWindow").cloned().unwrap_or(Value::Null),
            "destinationAddress": request["destinationAddress"],
            "fulfillmentAction": request.get("fulfillmentAction").cloned().unwrap_or(json!("Ship")),
            "fulfillmentPolicy": request.get("fulfillmentPolicy").cloned().unwrap_or(json!("FillOrKill")),
            "receivedDate": iso(order.created_at),
            "fulfillmentOrderStatus": status,
            "statusUpdatedDate": iso(updated),
            "notificationEmails": request.get("notificationEmails").cloned().unwrap_or(json!([])),
        },
        "fulfillmentOrderItems": items,
        "fulfillmentShipments": shipments,
        "returnItems": [],
        "returnAuthorizations": [],
    })
}

async fn get_order(State(shared): State<Shared_>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let after = match gate(&shared, "getFulfillmentOrder", &headers).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let now = shared.now();
    settle(&shared, now);
    let order = shared.lock().orders.get(&id).cloned();
    let response = match order {
        None => invalid(Invalid(format!("Requested order '{id}' not found"))),
        Some(order) => ok(json!({"payload": order_json(&shared, &order, now)})),
    };
    finish(after, response).await
}

async fn cancel(State(shared): State<Shared_>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let after = match gate(&shared, "cancelFulfillmentOrder", &headers).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let now = shared.now();
    settle(&shared, now);
    let response = {
        let config = shared.config.clone();
        let mut state = shared.lock();
        match state.orders.get(&id).cloned() {
            None => invalid(Invalid(format!("Requested order '{id}' not found"))),
            Some(order) => match status_at(&config, &order, now).0.as_str() {
                "Cancelled" => {
                    invalid(validate::invalid_value(&id, "SellerFulfillmentOrderId", "DuplicateCancelRequest"))
                }
                "New" | "Received" | "Planning" => {
                    if !order.stock_released {
                        for (sku, quantity) in &order.lines {
                            let stock = state.stock.entry(sku.clone()).or_default();
                            stock.reserved = stock.reserved.saturating_sub(*quantity);
                            stock.fulfillable += quantity;
                        }
                    }
                    if let Some(stored) = state.orders.get_mut(&id) {
                        stored.cancelled_at = Some(now);
                        stored.stock_released = true;
                    }
                    ok(json!({}))
                }
                // Picking has started (or it is over): too late to cancel.
                _ => invalid(validate::invalid_value(&id, "SellerFulfillmentOrderId", "OrderNotCancellable")),
            },
        }
    };
    finish(after, response).await
}

async fn list(
    State(shared): State<Shared_>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let after = match gate(&shared, "listAllFulfillmentOrders", &headers).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let now = shared.now();
    settle(&shared, now);
    let response = (|| -> Result<Response, Invalid> {
        let since =
            validate::timestamp(query.get("queryStartDate").ok_or_else(|| validate::missing("QueryStartDate"))?)?;
        let offset: usize = match query.get("nextToken") {
            None => 0,
            Some(token) => token
                .strip_prefix("page-")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Invalid("Next token is invalid or expired".into()))?,
        };
        let state = shared.lock();
        let matching: Vec<Value> = state
            .orders
            .values()
            .filter(|o| status_at(&shared.config, o, now).1 >= since)
            .map(|o| order_json(&shared, o, now)["fulfillmentOrder"].clone())
            .collect();
        let page: Vec<Value> = matching.iter().skip(offset).take(50).cloned().collect();
        let mut payload = json!({"fulfillmentOrders": page});
        if offset + 50 < matching.len() {
            payload["nextToken"] = json!(format!("page-{}", offset + 50));
        }
        Ok(ok(json!({"payload": payload})))
    })();
    finish(after, response.unwrap_or_else(invalid)).await
}

/// Sandbox only (mirrors submitFulfillmentOrderStatusUpdate): force a status.
async fn force_status(
    State(shared): State<Shared_>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = gate(&shared, "getFulfillmentOrder", &headers).await {
        return response;
    }
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(e) => return invalid(e),
    };
    let Some(status) = body.get("fulfillmentOrderStatus").and_then(Value::as_str) else {
        return invalid(validate::missing("FulfillmentOrderStatus"));
    };
    let mut state = shared.lock();
    match state.orders.get_mut(&id) {
        None => invalid(Invalid(format!("Requested order '{id}' not found"))),
        Some(order) => {
            order.forced_status = Some(status.to_owned());
            ok(json!({}))
        }
    }
}
