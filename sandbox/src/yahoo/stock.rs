//! Yahoo's 在庫更新API (setStock) and 在庫参照API (getStock), from stock-apis.md §2: form
//! bodies with comma lists of up to 1,000 `item_code[:sub_code]`, the same count of quantities
//! (a bare number sets; `+n`/`-n` add and subtract) and of `allow_overdraft` flags (omitted: the
//! store's default), answered in XML: 200 when every code was applied, 207 with each failing
//! code's `ErrorCode`. A code with no item gets a stock row anyway (it attaches when the item is
//! registered), so only getStock's `Status` tells a typo. `Quantity` empty is unlimited stock.

use super::http::{admit, error, finish, iso, seller_authorized, xml, Rejection, SharedState};
use super::StockRow;
use crate::xml::escape;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const CODES_LIMIT: usize = 1000;
const QUANTITY_LIMIT: i64 = 999_999_999;

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `item_code`, checked code by code: None for a code Yahoo refuses (st-02101).
fn codes(list: &str) -> Vec<Code> {
    list.split(',')
        .map(|code| {
            let valid_part = |p: &str| {
                !p.is_empty()
                    && p.chars().count() <= 99
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            let parsed = match code.split_once(':') {
                Some((item, sub)) if valid_part(item) && valid_part(sub) => Some((item.to_owned(), sub.to_owned())),
                None if valid_part(code) => Some((code.to_owned(), String::new())),
                _ => None,
            };
            (code.to_owned(), parsed)
        })
        .collect()
}

fn result_xml(item: &str, sub: &str, body: &str) -> String {
    format!("<Result><ItemCode>{}</ItemCode><SubCode>{}</SubCode>{body}</Result>", escape(item), escape(sub))
}

/// The stock APIs' common part: quota, faults, token, the store and its key check, and the
/// form's `item_code` list (1–1,000 codes). Err: the answer.
async fn form_gate(
    shared: &SharedState,
    operation: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Form, &'static str, Option<crate::faults::Fault>), Response> {
    let after = admit(shared, operation, headers).await?;
    let form = crate::form_pairs(body);
    let Some(seller_id) = field(&form, "seller_id").filter(|s| !s.is_empty()) else {
        return Err(error(StatusCode::BAD_REQUEST, "st-02100", "seller_id is invalid").into_response());
    };
    let status = seller_authorized(shared, headers, seller_id).map_err(IntoResponse::into_response)?;
    Ok((form, status, after))
}

type Form = Vec<(String, String)>;

/// The `item_code` list, checked for presence and count; Err: the answer.
fn item_codes(form: &Form) -> Result<Vec<Code>, Rejection> {
    let Some(item_codes) = field(form, "item_code").filter(|s| !s.is_empty()) else {
        return Err(error(StatusCode::BAD_REQUEST, "st-02101", "item_code is invalid"));
    };
    let codes = codes(item_codes);
    if codes.len() > CODES_LIMIT {
        return Err(error(StatusCode::BAD_REQUEST, "st-02102", "too many item_code"));
    }
    Ok(codes)
}

/// One `item_code` as sent, and its (item, sub) when Yahoo would take it.
type Code = (String, Option<(String, String)>);

pub(super) async fn set_stock(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let (form, status, after) = match form_gate(&shared, "setStock", &headers, &body).await {
        Ok(gated) => gated,
        Err(response) => return response,
    };
    let response = (|| {
        let codes = match item_codes(&form) {
            Ok(codes) => codes,
            Err(rejection) => return rejection.into_response(),
        };
        let mut keys: Vec<&str> = codes.iter().map(|(c, _)| c.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return error(StatusCode::BAD_REQUEST, "st-02103", "item_code is duplicated").into_response();
        }
        let quantities: Vec<&str> = field(&form, "quantity").unwrap_or("").split(',').collect();
        if quantities.len() != codes.len() {
            return error(StatusCode::BAD_REQUEST, "st-02105", "the number of quantity does not match item_code")
                .into_response();
        }
        let overdrafts: Option<Vec<&str>> = field(&form, "allow_overdraft").map(|v| v.split(',').collect());
        if overdrafts.as_ref().is_some_and(|o| o.len() != codes.len()) {
            return error(
                StatusCode::BAD_REQUEST,
                "st-02107",
                "the number of allow_overdraft does not match item_code",
            )
            .into_response();
        }
        if overdrafts.as_ref().is_some_and(|o| o.iter().any(|v| !matches!(*v, "0" | "1"))) {
            return error(StatusCode::BAD_REQUEST, "st-02106", "allow_overdraft is invalid").into_response();
        }
        let now = shared.clock.now();
        let mut state = shared.lock();
        let store_default = state.store_allows_overdraft;
        let mut results = Vec::new();
        let mut partial = false;
        for (n, (code, parsed)) in codes.iter().enumerate() {
            let Some((item, sub)) = parsed else {
                partial = true;
                results.push(result_xml(code, "", "<Quantity></Quantity><ErrorCode>st-02101</ErrorCode>"));
                continue;
            };
            // An integer only ("33.0", "INI" are refused); `+n` and `-n` are relative.
            let text = quantities[n].trim();
            let (relative, digits) = match text.strip_prefix(['+', '-']) {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let amount =
                digits.parse::<i64>().ok().filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            let row = state.stock.entry(code.clone()).or_insert_with(|| StockRow {
                quantity: Some(0),
                allow_overdraft: store_default,
                updated: now,
                close: false,
            });
            let new = match (amount, relative) {
                (Some(a), false) if a <= QUANTITY_LIMIT => Some(a),
                (Some(a), true) => {
                    let signed = if text.starts_with('-') { -a } else { a };
                    Some(row.quantity.unwrap_or(0) + signed).filter(|q| q.abs() <= QUANTITY_LIMIT)
                }
                _ => None,
            };
            let Some(new) = new else {
                partial = true;
                results.push(result_xml(item, sub, "<Quantity></Quantity><ErrorCode>st-02104</ErrorCode>"));
                continue;
            };
            row.quantity = Some(new);
            row.allow_overdraft = match overdrafts.as_ref() {
                Some(flags) => flags[n] == "1",
                None => store_default,
            };
            row.updated = now;
            results.push(result_xml(item, sub, &format!("<Quantity>{new}</Quantity>")));
        }
        state.stock_writes += 1;
        let count = results.len();
        xml(
            if partial { StatusCode::MULTI_STATUS } else { StatusCode::OK },
            format!(
                "<ResultSet totalResultsAvailable=\"{count}\" totalResultsReturned=\"{count}\" firstResultPosition=\"1\">{}</ResultSet>",
                results.concat()
            ),
        )
    })();
    finish(status, after, response).await
}

pub(super) async fn get_stock(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let (form, status, after) = match form_gate(&shared, "getStock", &headers, &body).await {
        Ok(gated) => gated,
        Err(response) => return response,
    };
    let response = (|| {
        let codes = match item_codes(&form) {
            Ok(codes) => codes,
            Err(rejection) => return rejection.into_response(),
        };
        if let Some((code, _)) = codes.iter().find(|(_, parsed)| parsed.is_none()) {
            return error(StatusCode::BAD_REQUEST, "st-02101", &format!("item_code is invalid: {code}"))
                .into_response();
        }
        let state = shared.lock();
        let (mut ok, mut ng) = (0, 0);
        let mut results = Vec::new();
        for (code, parsed) in &codes {
            let Some((item, sub)) = parsed else { continue };
            // A row counts as found only for a registered item: a typo's row stays Status 0.
            match state.stock.get(code).filter(|_| state.items.contains(code)) {
                Some(row) => {
                    ok += 1;
                    let quantity = row.quantity.map(|q| q.to_string()).unwrap_or_default();
                    results.push(result_xml(
                        item,
                        sub,
                        &format!(
                            "<Status>1</Status><Quantity>{quantity}</Quantity><AllowOverdraft>{}</AllowOverdraft><IsPublished>1</IsPublished><UpdateTime>{}</UpdateTime><StockClose>{}</StockClose>",
                            u8::from(row.allow_overdraft),
                            iso(row.updated),
                            u8::from(row.close),
                        ),
                    ));
                }
                None => {
                    ng += 1;
                    results.push(result_xml(item, sub, "<Status>0</Status>"));
                }
            }
        }
        let count = results.len();
        xml(
            StatusCode::OK,
            format!(
                "<ResultSet totalResultsAvailable=\"{count}\" totalResultsReturned=\"{count}\" firstResultPosition=\"1\" ok=\"{ok}\" ng=\"{ng}\">{}</ResultSet>",
                results.concat()
            ),
        )
    })();
    finish(status, after, response).await
}
