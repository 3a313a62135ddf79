//! What every Yahoo sandbox endpoint shares: the quota, faults and Bearer token, the store and
//! its public-key check (the 12-hour rule), Yahoo's error XML, and how an answer is finished.

use super::Shared;
use crate::faults::Fault;
use crate::pacing::Meter;
use crate::xml::escape;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rsa::Pkcs1v15Encrypt;
use std::sync::Arc;

pub(super) type SharedState = Arc<Shared>;

pub(super) fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [("content-type", "application/xml; charset=UTF-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}"),
    )
        .into_response()
}

/// Yahoo's error XML, turned into a response at the end of a handler.
pub(super) struct Rejection {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        xml(
            self.status,
            format!("<Error><Message>{}</Message><Code>{}</Code></Error>", escape(&self.message), self.code),
        )
    }
}

pub(super) fn error(status: StatusCode, code: &'static str, message: &str) -> Rejection {
    Rejection { status, code, message: message.to_owned() }
}

/// The public-key check of one request: the value of `X-SWS-Authorize-Status`.
fn authorize_status(shared: &Shared, headers: &HeaderMap, seller_id: &str) -> &'static str {
    let Some(signature) = headers.get("x-sws-signature").and_then(|v| v.to_str().ok()) else { return "none" };
    let Some(version) = headers.get("x-sws-signature-version").and_then(|v| v.to_str().ok()) else { return "none" };
    if version != shared.config.key_version {
        return "not-found-key-version";
    }
    let Ok(encrypted) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return "invalid-authorize-value";
    };
    let Ok(plain) = shared.config.private_key.decrypt(Pkcs1v15Encrypt, &encrypted) else {
        return "invalid-authorize-value";
    };
    let plain = String::from_utf8_lossy(&plain).into_owned();
    let Some((seller, timestamp)) = plain.rsplit_once(':') else { return "invalid-authorize-value" };
    let Ok(timestamp) = timestamp.parse::<i64>() else { return "invalid-timestamp" };
    if seller != seller_id || seller != shared.config.seller_id {
        return "invalid-sellerid";
    }
    let age = (shared.clock.now().timestamp() - timestamp).abs();
    if age > shared.config.timestamp_tolerance.num_seconds() {
        return "expired-timestamp";
    }
    "authorized"
}

/// The quota, faults and the Bearer token, before the request is read. `Ok(Some(fault))`: a
/// fault that acts on the answer (malformed, hang).
pub(super) async fn admit(shared: &Shared, operation: &str, headers: &HeaderMap) -> Result<Option<Fault>, Response> {
    {
        let mut state = shared.lock();
        *state.calls.entry(operation.to_owned()).or_default() += 1;
        if let Some(quota) = shared.config.quota {
            let meter = state.meters.entry(operation.to_owned()).or_insert_with(|| Meter::new(quota));
            if !meter.admit() {
                state.throttled += 1;
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("content-type", "text/xml; charset=UTF-8")],
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Message>Service unavailable. Too many users</Message></Error>",
                )
                    .into_response());
            }
        }
    }
    let mut after = None;
    match shared.faults.take(operation) {
        Some(Fault::Status(503)) => {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "text/html")],
                "<html><body>Service Unavailable</body></html>",
            )
                .into_response())
        }
        Some(Fault::Status(status)) => {
            return Err(error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "od91001",
                "System error",
            )
            .into_response())
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(other) => after = Some(other),
        None => {}
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = shared.clock.now();
    let valid = shared.lock().tokens.get(token).is_some_and(|expiry| *expiry > now);
    if !valid {
        let mut response =
            error(StatusCode::UNAUTHORIZED, "px-04101", "Service Requires Authentication").into_response();
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"yahooapis.jp\", error=\"invalid_token\""),
        );
        return Err(response);
    }
    Ok(after)
}

/// The store named is this one, and the public-key check with the 12-hour rule: the value of
/// `X-SWS-Authorize-Status`.
pub(super) fn seller_authorized(
    shared: &Shared,
    headers: &HeaderMap,
    seller_id: &str,
) -> Result<&'static str, Rejection> {
    if seller_id != shared.config.seller_id {
        return Err(error(StatusCode::FORBIDDEN, "px-04307", "Use of API is not permitted."));
    }
    let status = authorize_status(shared, headers, seller_id);
    let consented_at = shared.lock().consented_at;
    if status != "authorized" && shared.clock.now() - consented_at > ChronoDuration::hours(12) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "px-04102",
            "AccessToken has been expired. This API session is shorter than another API.",
        ));
    }
    Ok(status)
}

pub(super) async fn finish(status: &'static str, after: Option<Fault>, mut response: Response) -> Response {
    response.headers_mut().insert("x-sws-authorize-status", HeaderValue::from_static(status));
    match after {
        Some(Fault::Malformed) if response.status().is_success() => {
            let mut cut = xml(StatusCode::OK, "<ResultSet><Result><Status>OK</Status><OrderInfo><OrderId>".into());
            cut.headers_mut().insert("x-sws-authorize-status", HeaderValue::from_static(status));
            cut
        }
        Some(Fault::ApplyThenHang(delay)) => {
            tokio::time::sleep(delay).await;
            response
        }
        _ => response,
    }
}

pub(super) fn iso(time: DateTime<Utc>) -> String {
    time.with_timezone(&crate::jst()).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}
