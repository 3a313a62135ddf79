//! RMS 在庫API 2.0 (stock-apis.md §1): `inventories/bulk-upsert` (1–400 SKUs, `mode`
//! ABSOLUTE or RELATIVE, 204 with no body) and `inventories/bulk-get` (1–1,000 SKUs). Errors
//! come in the inventory API's own shape (`{"errors":[{code, message, metadata}]}`). The
//! manageNumber is lowercased, the variantId is case-sensitive. An upsert of a SKU the shop has
//! not registered is no error: the row is kept as "inventory only", invisible to bulk-get (so
//! only a read-back tells the typo).

use super::http::{finish, gate, json_response, SharedState};
use super::InventoryRow;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const UPSERT_LIMIT: usize = 400;
const GET_LIMIT: usize = 1000;
const QUANTITY_MAX: i64 = 99_999;

/// A refusal in the inventory API's shape, answered at the end of a handler.
struct Refused {
    status: StatusCode,
    body: Option<Value>,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self.body {
            Some(body) => json_response(self.status, body),
            None => self.status.into_response(),
        }
    }
}

fn errors(status: StatusCode, list: Vec<(&str, String, Option<String>)>) -> Refused {
    let errors: Vec<Value> = list
        .into_iter()
        .map(|(code, message, path)| match path {
            Some(path) => json!({"code": code, "message": message, "metadata": {"propertyPath": path}}),
            None => json!({"code": code, "message": message}),
        })
        .collect();
    Refused { status, body: Some(json!({ "errors": errors })) }
}

fn bad(code: &str, message: String, path: String) -> Refused {
    errors(StatusCode::BAD_REQUEST, vec![(code, message, Some(path))])
}

/// The `inventories` list of a JSON body; `Err` is the answer.
fn inventories(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Vec<Value>, Refused> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return Err(Refused { status: StatusCode::UNSUPPORTED_MEDIA_TYPE, body: None });
    }
    if body.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, vec![("GE0011", "Request body is missing.".into(), None)]));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(errors(StatusCode::BAD_REQUEST, vec![("GE0011", "Request body is invalid.".into(), None)]));
    };
    let Some(list) = map.get("inventories").and_then(Value::as_array) else {
        return Err(bad("IE0001", "inventories is mandatory.".into(), "inventories".into()));
    };
    if list.is_empty() {
        return Err(bad("IE0001", "inventories is mandatory.".into(), "inventories".into()));
    }
    if list.len() > limit {
        return Err(bad("IE1101", format!("inventories size must be between 1 and {limit}."), "inventories".into()));
    }
    Ok(list.clone())
}

/// One SKU's (manageNumber lowercased, variantId), checked as RMS checks them.
fn sku(item: &Value, n: usize) -> Result<(String, String), Refused> {
    let part = |name: &str| -> Result<String, Refused> {
        let path = format!("inventories[{n}].{name}");
        let value = match item.get(name) {
            None | Some(Value::Null) => return Err(bad("IE0001", format!("{name} is mandatory."), path)),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(bad("IE0002", format!("{name} has an invalid value : {other}."), path)),
        };
        if value.len() > 32 {
            return Err(bad("IE0004", format!("{name} must be 32 bytes or less."), path));
        }
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(bad("IE0002", format!("{name} has an invalid value : {value}."), path));
        }
        Ok(value)
    };
    Ok((part("manageNumber")?.to_ascii_lowercase(), part("variantId")?))
}

fn no_duplicates(keys: &[(String, String)]) -> Result<(), Refused> {
    let mut sorted: Vec<&(String, String)> = keys.iter().collect();
    sorted.sort();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(errors(
            StatusCode::BAD_REQUEST,
            vec![(
                "IE1102",
                format!(
                    "There are multiple occurrences of the same manageNumber and variantId : {}, {}",
                    w[0].0, w[0].1
                ),
                None,
            )],
        )),
        None => Ok(()),
    }
}

pub(super) async fn bulk_upsert(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let after = match gate(&shared, "inventories.bulk.upsert", &headers, false).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Refused> {
        let list = inventories(&headers, &body, UPSERT_LIMIT)?;
        let mut writes = Vec::new();
        for (n, item) in list.iter().enumerate() {
            let key = sku(item, n)?;
            let mode = match item.get("mode").and_then(Value::as_str) {
                Some(mode @ ("ABSOLUTE" | "RELATIVE")) => mode,
                None => return Err(bad("IE0001", "mode is mandatory.".into(), format!("inventories[{n}].mode"))),
                Some(other) => {
                    return Err(bad(
                        "IE0002",
                        format!("mode has an invalid value : {other}."),
                        format!("inventories[{n}].mode"),
                    ))
                }
            };
            let path = format!("inventories[{n}].quantity");
            let Some(quantity) = item.get("quantity").and_then(Value::as_i64) else {
                return Err(bad("IE0002", "quantity has an invalid value.".into(), path));
            };
            if mode == "ABSOLUTE" && !(0..=QUANTITY_MAX).contains(&quantity) {
                return Err(bad("IE0003", "quantity must be between 0 and 99999.".into(), path));
            }
            writes.push((key, mode == "RELATIVE", quantity, path));
        }
        no_duplicates(&writes.iter().map(|(k, ..)| k.clone()).collect::<Vec<_>>())?;
        let now = shared.clock.now();
        let mut state = shared.lock();
        // Checked whole before anything is applied: a refused request changes nothing.
        for (key, relative, delta, path) in &writes {
            match (state.inventory.get(key), relative) {
                (None, true) => return Err(bad("IE0500", "Cannot use relative mode to update inventory which the combination of manageNumber and variantId does not exist.".into(), path.clone())),
                (Some(row), true) if !(0..=QUANTITY_MAX).contains(&(row.quantity + delta)) => {
                    return Err(bad("IE0117", "quantity after update must be between 0 and 99999.".into(), path.clone()))
                }
                _ => {}
            }
        }
        for (key, relative, quantity, _) in writes {
            let row = state.inventory.entry(key).or_insert_with(|| InventoryRow::orphan(now));
            row.quantity = if relative { row.quantity + quantity } else { quantity };
            row.updated = now;
        }
        state.inventory_writes += 1;
        Ok(StatusCode::NO_CONTENT.into_response())
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

pub(super) async fn bulk_get(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let after = match gate(&shared, "inventories.bulk.get", &headers, false).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Refused> {
        let list = inventories(&headers, &body, GET_LIMIT)?;
        let keys = list.iter().enumerate().map(|(n, item)| sku(item, n)).collect::<Result<Vec<_>, _>>()?;
        no_duplicates(&keys)?;
        let state = shared.lock();
        let rows: Vec<Value> = keys
            .iter()
            .filter_map(|key| {
                let row = state.inventory.get(key).filter(|r| r.registered)?;
                Some(json!({
                    "manageNumber": key.0, "variantId": key.1, "quantity": row.quantity,
                    "created": rfc3339(row.created), "updated": rfc3339(row.updated),
                }))
            })
            .collect();
        Ok(json_response(StatusCode::OK, json!({ "inventories": rows })))
    })();
    finish(after, response.unwrap_or_else(IntoResponse::into_response)).await
}

/// ItemAPI 2.0 `inventory-related-settings` of one item: whether stock is kept at all
/// (`unlimitedInventoryFlag`) and, per variant, whether it takes orders at 0 (`backOrderFlag`).
pub(super) async fn inventory_related_settings(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    axum::extract::Path(manage_number): axum::extract::Path<String>,
) -> Response {
    let after = match gate(&shared, "items.inventory-related-settings.get", &headers, false).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let manage_number = manage_number.to_ascii_lowercase();
    let response = {
        let state = shared.lock();
        let variants: serde_json::Map<String, Value> = state
            .inventory
            .iter()
            .filter(|((manage, _), row)| *manage == manage_number && row.registered)
            .map(|((_, variant), row)| {
                (variant.clone(), json!({"restockOnCancel": false, "backOrderFlag": row.back_order}))
            })
            .collect();
        let response = if variants.is_empty() {
            errors(
                StatusCode::NOT_FOUND,
                vec![("GE0014", format!("Not found for inputs; manageNumber={manage_number}"), None)],
            )
            .into_response()
        } else {
            json_response(
                StatusCode::OK,
                json!({
                    "manageNumber": manage_number,
                    "unlimitedInventoryFlag": state.unlimited_items.contains(&manage_number),
                    "features": {"inventoryDisplay": "DISPLAY_ABSOLUTE_STOCK_COUNT"},
                    "variants": variants,
                }),
            )
        };
        response
    };
    finish(after, response).await
}

/// The inventory API's timestamps: `2022-02-28T19:30:00+09:00` (unlike the order API's `+0900`).
fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.with_timezone(&crate::jst()).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}
