//! RMS shipping reports (spec §8): updateOrderShipping (one order, at once) and
//! updateOrderShippingAsync (up to 100 orders, processed later under a `requestId`, whose
//! result getResultUpdateOrderShippingAsync gives once processed). A record without
//! `shippingDetailId` is added, one with it is updated; the order moves 300 -> 500 once every
//! record has carrier, number and date.

use super::http::{body_json, finish, gate, json_response, message, rejected, Rejection, SharedState};
use super::{Shared, State as SandboxState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

/// Orders one async call may carry.
const ASYNC_LIMIT: usize = 100;

/// An async request RMS accepted: processed once the sandbox's `async_delay` has passed.
#[derive(Debug, Clone)]
pub(crate) struct AsyncShipping {
    pub accepted_at: DateTime<Utc>,
    pub orders: Vec<OrderShipping>,
    /// One `{orderNumber, MessageModelList}` per order, once processed.
    pub results: Option<Vec<Value>>,
}

/// One order's baskets of ShippingModels, as checked on arrival.
#[derive(Debug, Clone)]
pub(crate) struct OrderShipping {
    number: String,
    baskets: Vec<(i64, Vec<Shipping>)>,
}

#[derive(Debug, Clone)]
struct Shipping {
    detail_id: Option<i64>,
    company: Option<String>,
    tracking: Option<String>,
    date: Option<String>,
}

fn valid_company(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|c| (1000..=1031).contains(&c))
}

/// A ShippingModel's fields, each checked as RMS checks them.
fn shipping(api: &str, value: &Value) -> Result<Shipping, Rejection> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let (company, tracking, date) = (field("deliveryCompany"), field("shippingNumber"), field("shippingDate"));
    if company.as_deref().is_some_and(|c| !valid_company(c)) {
        return Err(rejected(api, "011", "deliveryCompanyの書式が不正です。".into()));
    }
    if tracking.as_deref().is_some_and(|t| t.chars().count() > 120 || t.chars().any(|c| c.is_control())) {
        return Err(rejected(api, "011", "shippingNumberの書式が不正です。".into()));
    }
    if date.as_deref().is_some_and(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() || d.len() != 10) {
        return Err(rejected(api, "011", "shippingDateの書式が不正です。".into()));
    }
    let detail_id = match value.get("shippingDetailId") {
        None | Some(Value::Null) => None,
        Some(id) => Some(id.as_i64().ok_or_else(|| rejected(api, "011", "shippingDetailIdの書式が不正です。".into()))?),
    };
    Ok(Shipping { detail_id, company, tracking, date })
}

/// `{orderNumber, BasketidModelList}` checked for form (not yet against the order).
fn order_shipping(api: &str, body: &serde_json::Map<String, Value>) -> Result<OrderShipping, Rejection> {
    let number = body
        .get("orderNumber")
        .and_then(Value::as_str)
        .ok_or_else(|| rejected(api, "009", "orderNumberの項目を指定して下さい".into()))?
        .to_owned();
    let baskets = body
        .get("BasketidModelList")
        .and_then(Value::as_array)
        .ok_or_else(|| rejected(api, "009", "BasketidModelListの項目を指定して下さい".into()))?;
    let mut checked = Vec::new();
    for basket in baskets {
        let basket_id = basket
            .get("basketId")
            .and_then(Value::as_i64)
            .ok_or_else(|| rejected(api, "009", "basketIdの項目を指定して下さい".into()))?;
        let shippings = basket
            .get("ShippingModelList")
            .and_then(Value::as_array)
            .ok_or_else(|| rejected(api, "009", "ShippingModelListの項目を指定して下さい".into()))?;
        if shippings.len() > 20 {
            return Err(rejected(api, "011", "ShippingModelListの件数が上限(20件)を超えています".into()));
        }
        checked.push((basket_id, shippings.iter().map(|s| shipping(api, s)).collect::<Result<_, _>>()?));
    }
    Ok(OrderShipping { number, baskets: checked })
}

/// Applies one order's shipping records; RMS's message per ShippingModel, or the error that
/// stopped it (`(code number, text)`).
fn apply(api: &str, state: &mut SandboxState, request: &OrderShipping) -> Result<Vec<Value>, (&'static str, String)> {
    let mut next_id = state.next_detail_id;
    let Some(order) = state.orders.get_mut(&request.number) else {
        return Err(("101", "指定された注文番号は存在しません。".into()));
    };
    if order.progress >= 800 {
        return Err((
            "102",
            "指定された注文番号は既にキャンセルされているため、発送完了報告が出来る状態ではありませんでした。".into(),
        ));
    }
    if request.baskets.iter().any(|(basket_id, _)| *basket_id != order.basket_id) {
        return Err(("011", "basketIdの書式が不正です".into()));
    }
    let ids = request.baskets.iter().flat_map(|(_, s)| s).filter_map(|s| s.detail_id);
    if ids.clone().any(|id| !order.shippings.iter().any(|r| r.0 == id)) {
        return Err(("011", "shippingDetailIdの書式が不正です。".into()));
    }
    let mut messages = Vec::new();
    for (n, shipping) in request.baskets.iter().flat_map(|(_, s)| s).enumerate() {
        let data_number = n + 1;
        match shipping.detail_id {
            Some(id) => {
                if let Some(record) = order.shippings.iter_mut().find(|r| r.0 == id) {
                    if let Some(c) = &shipping.company {
                        record.1 = c.clone();
                    }
                    if let Some(t) = &shipping.tracking {
                        record.2 = t.clone();
                    }
                    if let Some(d) = &shipping.date {
                        record.3 = d.clone();
                    }
                }
                messages.push(json!({"messageType": "INFO", "messageCode": format!("ORDER_EXT_API_{api}_INFO_102"), "message": "発送情報の更新設定が完了しました。", "dataNumber": data_number, "shippingDetailId": id}));
            }
            None => {
                let id = next_id;
                next_id += 1;
                order.shippings.push((
                    id,
                    shipping.company.clone().unwrap_or_default(),
                    shipping.tracking.clone().unwrap_or_default(),
                    shipping.date.clone().unwrap_or_default(),
                ));
                messages.push(json!({"messageType": "INFO", "messageCode": format!("ORDER_EXT_API_{api}_INFO_101"), "message": "発送情報の追加設定が完了しました。", "dataNumber": data_number, "shippingDetailId": id}));
            }
        }
    }
    let complete = !order.shippings.is_empty()
        && order.shippings.iter().all(|(_, c, t, d)| !c.is_empty() && !t.is_empty() && !d.is_empty());
    if order.progress == 300 && complete {
        order.progress = 500;
    }
    state.next_detail_id = next_id;
    Ok(messages)
}

impl Shared {
    /// Processes the async shipping requests whose time has come, in the order accepted.
    pub(crate) fn process_async_shippings(&self, state: &mut SandboxState) {
        const API: &str = "UPDATE_ORDERSHIPPING_ASYNC";
        let now = self.clock.now();
        let due: Vec<String> = state
            .async_shippings
            .iter()
            .filter(|(_, r)| r.results.is_none() && now >= r.accepted_at + self.config.async_delay)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(orders) = state.async_shippings.get(&id).map(|r| r.orders.clone()) else { continue };
            let results = orders
                .iter()
                .map(|order| {
                    let messages = match apply(API, state, order) {
                        Ok(messages) => messages,
                        Err((number, text)) => {
                            vec![message("ERROR", format!("ORDER_EXT_API_{API}_ERROR_{number}"), text)]
                        }
                    };
                    json!({"orderNumber": order.number, "MessageModelList": messages})
                })
                .collect();
            if let Some(request) = state.async_shippings.get_mut(&id) {
                request.results = Some(results);
            }
        }
    }
}

pub(super) async fn update_order_shipping(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const API: &str = "UPDATE_ORDERSHIPPING";
    let after = match gate(&shared, "updateOrderShipping", &headers, true).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let request = order_shipping(API, &body_json(API, &body)?)?;
        let mut state = shared.lock();
        shared.settle(&mut state);
        let messages = apply(API, &mut state, &request).map_err(|(number, text)| rejected(API, number, text))?;
        Ok(json_response(StatusCode::OK, json!({"MessageModelList": messages})))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

/// Accepts up to 100 orders' shipping records for later processing. The whole request is
/// refused when any order's records are malformed (the messages name the order), when an order
/// number repeats, or when there are more than 100.
pub(super) async fn update_order_shipping_async(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const API: &str = "UPDATE_ORDERSHIPPING_ASYNC";
    let after = match gate(&shared, "updateOrderShippingAsync", &headers, true).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let body = body_json(API, &body)?;
        let list = body
            .get("OrderShippingModelList")
            .and_then(Value::as_array)
            .ok_or_else(|| rejected(API, "009", "OrderShippingModelListの項目を指定して下さい".into()))?;
        if list.is_empty() {
            return Err(rejected(API, "010", "OrderShippingModelListの値を指定して下さい".into()));
        }
        if list.len() > ASYNC_LIMIT {
            return Err(rejected(API, "011", "OrderShippingModelListの件数が上限(100件)を超えています".into()));
        }
        let mut orders: Vec<OrderShipping> = Vec::new();
        let mut errors = Vec::new();
        for item in list {
            let number = item.get("orderNumber").and_then(Value::as_str).unwrap_or_default().to_owned();
            let checked = match item.as_object() {
                Some(object) => order_shipping(API, object),
                None => Err(rejected(API, "011", "OrderShippingModelListの書式が不正です".into())),
            };
            match checked {
                Ok(order) if orders.iter().any(|o| o.number == order.number) => errors.push(json!({
                    "messageType": "ERROR", "messageCode": format!("ORDER_EXT_API_{API}_ERROR_012"),
                    "message": "orderNumberが重複しています。", "orderNumber": number,
                })),
                Ok(order) => orders.push(order),
                Err(Rejection(rejection)) => {
                    for mut error in rejection["MessageModelList"].as_array().cloned().unwrap_or_default() {
                        error["orderNumber"] = json!(number);
                        errors.push(error);
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(Rejection(json!({"MessageModelList": errors})));
        }
        let mut state = shared.lock();
        state.request_serial += 1;
        let request_id = format!("{}{:012}", shared.config.shop_id, state.request_serial);
        let accepted_at = shared.clock.now();
        state.async_shippings.insert(request_id.clone(), AsyncShipping { accepted_at, orders, results: None });
        Ok(json_response(
            StatusCode::OK,
            json!({
                "MessageModelList": [message("INFO", format!("ORDER_EXT_API_{API}_INFO_101"), "発送情報の更新を受付けました。".into())],
                "requestId": request_id,
            }),
        ))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

/// The result of an async request: per order its messages once processed. A request not yet
/// processed, unknown, or older than 30 days gets the same answer with no results (spec §8).
pub(super) async fn get_result_update_order_shipping_async(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const API: &str = "GET_RESULT_UPDATEORDERSHIPPING_ASYNC";
    let after = match gate(&shared, "getResultUpdateOrderShippingAsync", &headers, true).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let body = body_json(API, &body)?;
        let request_id = match body.get("requestId") {
            None | Some(Value::Null) => return Err(rejected(API, "009", "requestIdの項目を指定して下さい".into())),
            Some(Value::String(id)) if id.is_empty() => {
                return Err(rejected(API, "010", "requestIdの値を指定して下さい".into()))
            }
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(rejected(API, "011", "requestIdの書式が不正です".into())),
        };
        let mut state = shared.lock();
        shared.settle(&mut state);
        let kept = chrono::Duration::days(30);
        let results = state
            .async_shippings
            .get(&request_id)
            .filter(|r| shared.clock.now() < r.accepted_at + kept)
            .and_then(|r| r.results.clone());
        Ok(json_response(
            StatusCode::OK,
            json!({
                "MessageModelList": [message("INFO", format!("ORDER_EXT_API_{API}_INFO_101"), "発送情報の更新結果を取得しました。".into())],
                "ResultShippingModelList": results,
            }),
        ))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}
