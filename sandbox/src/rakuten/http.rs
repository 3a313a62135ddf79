//! What every RMS sandbox endpoint shares: the gateway (quota, faults, ESA auth, content type),
//! RMS's message envelope and its 400s, and how an answer is finished (a fault acting on it).

use super::Shared;
use crate::faults::Fault;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) type SharedState = Arc<Shared>;

pub(super) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json;charset=utf-8")], body.to_string()).into_response()
}

pub(super) fn message(kind: &str, code: String, text: String) -> Value {
    json!({"messageType": kind, "messageCode": code, "message": text})
}

/// A 400 with RMS's message list, turned into a response at the end of a handler.
pub(super) struct Rejection(pub Value);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_response(StatusCode::BAD_REQUEST, self.0)
    }
}

pub(super) fn rejected(api: &str, number: &str, text: String) -> Rejection {
    Rejection(json!({"MessageModelList": [message("ERROR", format!("ORDER_EXT_API_{api}_ERROR_{number}"), text)]}))
}

/// The gateway's answer to a call beyond the quota (spec §10: the code is the gateway's form).
fn too_many_requests() -> Response {
    json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"Results": {"errorCode": "ES02-01", "message": "Too Many Requests"}}),
    )
}

fn unauthorised() -> Response {
    json_response(StatusCode::UNAUTHORIZED, json!({"Results": {"errorCode": "ES01-01", "message": "Un-Authorised"}}))
}

/// Auth, content type and faults, before the operation. `Ok(Some(fault))`: a fault that acts
/// on the answer (malformed, hang).
pub(super) async fn gate(
    shared: &Shared,
    operation: &str,
    headers: &HeaderMap,
    json_body: bool,
) -> Result<Option<Fault>, Response> {
    *shared.lock().calls.entry(operation.to_owned()).or_default() += 1;
    if shared.meter.as_ref().is_some_and(|meter| !meter.admit()) {
        shared.lock().throttled += 1;
        return Err(too_many_requests());
    }
    let mut after = None;
    match shared.faults.take(operation) {
        // An outage or maintenance: the gateway answers with an HTML page.
        Some(Fault::Status(503)) => {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "text/html")],
                "<html><body>ただいまメンテナンス中です</body></html>",
            )
                .into_response())
        }
        Some(Fault::Status(429)) => return Err(too_many_requests()),
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(json_response(
                status,
                json!({"MessageModelList": [message("ERROR", "SYSTEM_ERROR".into(), "システムエラーが発生しました。".into())]}),
            ));
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(other) => after = Some(other),
        None => {}
    }
    use base64::Engine;
    let expected = format!(
        "ESA {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", shared.config.service_secret, shared.config.license_key))
    );
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if given != expected || shared.lock().license_expired {
        return Err(unauthorised());
    }
    if json_body {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
            .replace(' ', "");
        if content_type != "application/json;charset=utf-8" {
            return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response());
        }
    }
    Ok(after)
}

pub(super) async fn finish(after: Option<Fault>, response: Response) -> Response {
    match after {
        Some(Fault::Malformed) if response.status().is_success() => (
            StatusCode::OK,
            [("content-type", "application/json;charset=utf-8")],
            "{\"OrderModelList\": [{\"orderNumber\": ",
        )
            .into_response(),
        Some(Fault::ApplyThenHang(delay)) => {
            tokio::time::sleep(delay).await;
            response
        }
        _ => response,
    }
}

pub(super) fn body_json(api: &str, body: &Bytes) -> Result<serde_json::Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(rejected(api, "001", "リクエストの形式が不正です。".into())),
    }
}
