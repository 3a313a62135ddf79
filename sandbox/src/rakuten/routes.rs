//! The RMS sandbox's HTTP surface.

use super::http::{body_json, finish, gate, json_response, message, rejected, Rejection, SharedState};
use super::{inventory, shipping, Shared, StoredOrder};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn router(shared: SharedState) -> Router {
    Router::new()
        .route("/es/2.0/order/searchOrder/", post(search_order))
        .route("/es/2.0/order/getOrder/", post(get_order))
        .route("/es/2.0/order/confirmOrder/", post(confirm_order))
        .route("/es/2.0/order/updateOrderShipping/", post(shipping::update_order_shipping))
        .route("/es/2.0/order/updateOrderShippingAsync/", post(shipping::update_order_shipping_async))
        .route(
            "/es/2.0/order/getResultUpdateOrderShippingAsync/",
            post(shipping::get_result_update_order_shipping_async),
        )
        .route("/es/1.0/license-management/license-key/expiry-date", get(license_expiry))
        .route("/es/2.0/inventories/bulk-upsert", post(inventory::bulk_upsert))
        .route("/es/2.0/inventories/bulk-get", post(inventory::bulk_get))
        .route(
            "/es/2.0/items/inventory-related-settings/manage-numbers/{manage_number}",
            get(inventory::inventory_related_settings),
        )
        .with_state(shared)
}

fn datetime(api: &str, body: &serde_json::Map<String, Value>, field: &str) -> Result<DateTime<Utc>, Rejection> {
    let value = match body.get(field) {
        None | Some(Value::Null) => return Err(rejected(api, "009", format!("{field}の項目を指定して下さい"))),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(rejected(api, "010", format!("{field}の値を指定して下さい")))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(rejected(api, "011", format!("{field}の書式が不正です"))),
    };
    let form_ok = value.len() == 24
        && value.as_bytes().iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'+',
            _ => b.is_ascii_digit(),
        })
        && value.ends_with("+0900");
    if !form_ok {
        return Err(rejected(api, "011", format!("{field}の書式が不正です")));
    }
    DateTime::parse_from_str(&value, "%Y-%m-%dT%H:%M:%S%z")
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| rejected(api, "011", format!("{field}の書式が不正です")))
}

fn rms_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&crate::jst()).format("%Y-%m-%dT%H:%M:%S+0900").to_string()
}

async fn search_order(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    const API: &str = "SEARCH_ORDER";
    let after = match gate(&shared, "searchOrder", &headers, true).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let body = body_json(API, &body)?;
        match body.get("dateType").and_then(Value::as_i64) {
            None => return Err(rejected(API, "009", "dateTypeの項目を指定して下さい".into())),
            Some(1..=6) => {}
            Some(_) => return Err(rejected(API, "011", "dateTypeの書式が不正です".into())),
        }
        let start = datetime(API, &body, "startDatetime")?;
        let end = datetime(API, &body, "endDatetime")?;
        let now = shared.clock.now();
        if end < start || end - start > ChronoDuration::days(63) || start < now - ChronoDuration::days(730) {
            return Err(rejected(
                API,
                "012",
                "検索期間の指定が不正です（開始日時は過去730日以内、期間は63日以内）".into(),
            ));
        }
        let pagination = body.get("PaginationRequestModel").cloned().unwrap_or(Value::Null);
        let per_page = pagination.get("requestRecordsAmount").and_then(Value::as_u64).unwrap_or(30);
        let page = pagination.get("requestPage").and_then(Value::as_u64).unwrap_or(1);
        if !(1..=1000).contains(&per_page) {
            return Err(rejected(API, "011", "requestRecordsAmountの書式が不正です".into()));
        }
        if page == 0 {
            return Err(rejected(API, "011", "requestPageの書式が不正です".into()));
        }
        let progress_filter: Option<Vec<i64>> = body
            .get("orderProgressList")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_i64).collect());
        let mut state = shared.lock();
        shared.settle(&mut state);
        let mut matching: Vec<&StoredOrder> = state
            .orders
            .values()
            .filter(|o| o.ordered_at >= start && o.ordered_at <= end)
            .filter(|o| progress_filter.as_ref().is_none_or(|list| list.contains(&o.progress)))
            .collect();
        matching.sort_by_key(|o| (o.ordered_at, o.number.clone()));
        matching.truncate(15_000);
        if matching.is_empty() {
            return Ok(json_response(
                StatusCode::OK,
                json!({
                    "orderNumberList": [],
                    "MessageModelList": [message("INFO", "ORDER_EXT_API_SEARCH_ORDER_INFO_102".into(), "注文検索に成功しました。(検索結果０件)".into())],
                    "PaginationResponseModel": {"totalRecordsAmount": null, "totalPages": null, "requestPage": null},
                }),
            ));
        }
        let total = matching.len() as u64;
        let pages = total.div_ceil(per_page);
        let numbers: Vec<&String> =
            matching.iter().skip(((page - 1) * per_page) as usize).take(per_page as usize).map(|o| &o.number).collect();
        Ok(json_response(
            StatusCode::OK,
            json!({
                "orderNumberList": numbers,
                "MessageModelList": [message("INFO", "ORDER_EXT_API_SEARCH_ORDER_INFO_101".into(), "注文検索に成功しました。".into())],
                "PaginationResponseModel": {"totalRecordsAmount": total, "totalPages": pages, "requestPage": page},
            }),
        ))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

fn order_numbers(api: &str, body: &serde_json::Map<String, Value>) -> Result<Vec<String>, Rejection> {
    let list = match body.get("orderNumberList") {
        None | Some(Value::Null) => return Err(rejected(api, "009", "orderNumberListの項目を指定して下さい".into())),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(rejected(api, "010", "orderNumberListの値を指定して下さい".into()))
        }
        Some(Value::Array(list)) => list,
        Some(_) => return Err(rejected(api, "011", "orderNumberListの書式が不正です".into())),
    };
    if list.len() > 100 {
        return Err(rejected(api, "011", "orderNumberListの件数が上限(100件)を超えています".into()));
    }
    list.iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| rejected(api, "011", "orderNumberListの書式が不正です".into()))
        })
        .collect()
}

/// The OrderModel getOrder returns (version 10 shape, nulls where RMS gives nulls).
pub(super) fn order_model(shared: &Shared, order: &StoredOrder) -> Value {
    let placed = &order.placed;
    let goods: i64 = placed.items.iter().map(|(_, _, units, price)| i64::from(*units) * price).sum();
    let person = json!({
        "zipCode1": "158", "zipCode2": "0094", "prefecture": placed.prefecture, "city": placed.city, "subAddress": placed.sub_address,
        "familyName": placed.buyer_family, "firstName": placed.buyer_first, "familyNameKana": "ラクテン", "firstNameKana": "タロウ",
        "phoneNumber1": "03", "phoneNumber2": "0000", "phoneNumber3": "0000",
    });
    let mut orderer = person.clone();
    orderer["emailAddress"] = json!(format!("{}s1@pc.fw.rakuten.ne.jp", &order.number.replace('-', "")));
    let items: Vec<Value> = placed
        .items
        .iter()
        .enumerate()
        .map(|(n, (sku, name, units, price))| json!({
            "itemDetailId": order.basket_id * 10 + n as i64, "itemName": name, "itemId": 10_000_000 + n as i64, "itemNumber": sku.to_lowercase(),
            "manageNumber": sku.to_lowercase(), "price": price, "priceTaxIncl": price, "taxRate": 0.1, "units": units, "includeTaxFlag": 1,
            "includePostageFlag": 1, "selectedChoice": null, "deleteItemFlag": 0,
            "SkuModelList": [{"variantId": "default", "merchantDefinedSkuId": sku, "skuInfo": null}],
        }))
        .collect();
    let shippings: Vec<Value> = order
        .shippings
        .iter()
        .map(|(id, company, number, date)| json!({"shippingDetailId": id, "shippingNumber": number, "deliveryCompany": company, "deliveryCompanyName": null, "shippingDate": date}))
        .collect();
    json!({
        "orderNumber": order.number, "orderProgress": order.progress, "subStatusId": null, "subStatusName": null,
        "orderDatetime": rms_time(order.ordered_at),
        "shopOrderCfmDatetime": order.confirmed_at.map(rms_time),
        "orderFixDatetime": if order.progress >= 300 && order.progress < 800 { order.confirmed_at.map(|t| rms_time(t + shared.config.processing_delay)) } else { None },
        "shippingInstDatetime": null, "shippingCmplRptDatetime": null, "cancelDueDate": null,
        "deliveryDate": placed.delivery_date.map(|d| d.format("%Y-%m-%d").to_string()), "shippingTerm": placed.shipping_term,
        "remarks": null, "giftCheckFlag": 0, "socialGiftFlag": 0, "severalSenderFlag": 0, "orderType": 1, "reserveNumber": null,
        "cautionDisplayType": 0, "rakutenConfirmFlag": if placed.rakuten_confirm_flag { 1 } else { 0 },
        "goodsPrice": goods, "postagePrice": 0, "deliveryPrice": 0, "paymentCharge": 0, "totalPrice": goods, "requestPrice": goods,
        "asurakuFlag": 0, "deliveryCertPrgFlag": 0, "oneDayOperationFlag": 0,
        "OrdererModel": orderer,
        "SettlementModel": {"settlementMethodCode": placed.settlement_code, "settlementMethod": placed.settlement_name, "rpaySettlementFlag": 1, "cardName": null, "cardNumber": null},
        "DeliveryModel": {"deliveryName": "宅配便", "deliveryClass": null}, "PointModel": {"usedPoint": 0},
        "WrappingModel1": null, "WrappingModel2": null,
        "PackageModelList": [{
            "basketId": order.basket_id, "postagePrice": 0, "deliveryPrice": 0, "goodsPrice": goods, "totalPrice": goods, "noshi": null,
            "packageDeleteFlag": 0, "defaultDeliveryCompanyCode": "1001", "dropOffFlag": 0, "dropOffLocation": null,
            "DeliveryCvsModel": null, "SocialGiftModel": null, "SenderModel": person, "ItemModelList": items,
            "ShippingModelList": if shippings.is_empty() { Value::Null } else { json!(shippings) },
        }],
        "CouponModelList": null, "ChangeReasonModelList": null, "DueDateModelList": [],
    })
}

async fn get_order(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    const API: &str = "GET_ORDER";
    let after = match gate(&shared, "getOrder", &headers, true).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let body = body_json(API, &body)?;
        let numbers = order_numbers(API, &body)?;
        let version = body
            .get("version")
            .and_then(Value::as_i64)
            .ok_or_else(|| rejected(API, "009", "versionの項目を指定して下さい".into()))?;
        if !(3..=10).contains(&version) {
            return Err(rejected(API, "011", "versionの書式が不正です".into()));
        }
        let mut state = shared.lock();
        shared.settle(&mut state);
        let orders: Vec<Value> =
            numbers.iter().filter_map(|n| state.orders.get(n)).map(|o| order_model(&shared, o)).collect();
        Ok(json_response(
            StatusCode::OK,
            json!({
                "MessageModelList": [message("INFO", "ORDER_EXT_API_GET_ORDER_INFO_101".into(), format!("受注情報取得に成功しました。(取得件数{}件)", orders.len()))],
                "version": version,
                "OrderModelList": orders,
            }),
        ))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

async fn confirm_order(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    const API: &str = "CONFIRM_ORDER";
    let after = match gate(&shared, "confirmOrder", &headers, true).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let body = body_json(API, &body)?;
        let numbers = order_numbers(API, &body)?;
        let now = shared.clock.now();
        let mut state = shared.lock();
        let messages: Vec<Value> = numbers
            .iter()
            .map(|number| {
                let mut entry = match state.orders.get_mut(number) {
                    None => message(
                        "ERROR",
                        format!("ORDER_EXT_API_{API}_ERROR_101"),
                        "指定された注文番号は存在しません。".into(),
                    ),
                    Some(order) if order.progress >= 800 => message(
                        "ERROR",
                        format!("ORDER_EXT_API_{API}_ERROR_102"),
                        "指定された注文はキャンセルされています。".into(),
                    ),
                    Some(order) if order.progress != 100 => message(
                        "ERROR",
                        format!("ORDER_EXT_API_{API}_ERROR_103"),
                        "指定された注文は注文確認待ちではありません。".into(),
                    ),
                    Some(order) => {
                        order.progress = 200;
                        order.confirmed_at = Some(now);
                        message("INFO", format!("ORDER_EXT_API_{API}_INFO_101"), "注文確認に成功しました。".into())
                    }
                };
                entry["orderNumber"] = json!(number);
                entry
            })
            .collect();
        Ok(json_response(StatusCode::OK, json!({"MessageModelList": messages})))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

async fn license_expiry(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = gate(&shared, "licenseKeyExpiryDate", &headers, false).await {
        return response;
    }
    if query.get("licenseKey") != Some(&shared.config.license_key) {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"Results": {"errorCode": "ES04-01", "message": "Bad Request"}}),
        );
    }
    json_response(
        StatusCode::OK,
        json!({"expiryDate": format!("{}T23:59:59", shared.config.license_expires.format("%Y-%m-%d"))}),
    )
}
