//! The Yahoo sandbox's HTTP surface. Bodies are parsed as XML whatever the content type, as
//! Yahoo's servers do.

use super::http::{admit, error, finish, iso, seller_authorized, xml, Rejection, SharedState};
use super::{Shared, StoredOrder, CANCEL_WINDOW_MINUTES};
use crate::faults::Fault;
use crate::xml::{escape, Node};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, TimeZone, Utc};

pub fn router(shared: SharedState) -> Router {
    Router::new()
        .route("/yconnect/v2/token", post(token))
        .route("/ShoppingWebService/V1/orderList", post(order_list))
        .route("/ShoppingWebService/V1/orderInfo", post(order_info))
        .route("/ShoppingWebService/V1/orderStatusChange", post(order_status_change))
        .route("/ShoppingWebService/V1/orderShipStatusChange", post(order_ship_status_change))
        .route("/ShoppingWebService/V1/setStock", post(super::stock::set_stock))
        .route("/ShoppingWebService/V1/getStock", post(super::stock::get_stock))
        .with_state(shared)
}

fn jst() -> chrono::FixedOffset {
    crate::jst()
}

fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

async fn token(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let oauth = |status: StatusCode, error: &str, description: &str| {
        (status, axum::Json(serde_json::json!({"error": error, "error_description": description}))).into_response()
    };
    if let Some(Fault::Status(status)) = shared.faults.take("token") {
        return oauth(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "server_error",
            "temporarily unavailable",
        );
    }
    let config = &shared.config;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", config.client_id, config.client_secret))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return oauth(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    }
    let form = crate::form_pairs(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    if field("grant_type") != "refresh_token" {
        return oauth(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type is not supported");
    }
    let now = shared.clock.now();
    let mut state = shared.lock();
    if field("refresh_token") != config.refresh_token
        || state.consent_revoked
        || now - state.consented_at > ChronoDuration::days(28)
    {
        return oauth(StatusCode::BAD_REQUEST, "invalid_grant", "refresh_token is invalid or expired");
    }
    state.issued += 1;
    let access = format!("sandbox-access-{}-{}", state.issued, fastrand::u64(..));
    state.tokens.insert(access.clone(), now + ChronoDuration::hours(1));
    axum::Json(serde_json::json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600})).into_response()
}

/// Faults, Bearer token, body, SellerId, and the public-key check with the 12-hour rule.
async fn gate(
    shared: &Shared,
    operation: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Node, &'static str, Option<Fault>), Response> {
    let after = admit(shared, operation, headers).await?;
    let text = String::from_utf8_lossy(body);
    let request = Node::parse(&text)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "od90101", &format!("Invalid Request XML: {e}")).into_response())?;
    let Some(seller_id) = request.text_at("SellerId") else {
        return Err(error(StatusCode::BAD_REQUEST, "px-04001", "seller_id is not specified").into_response());
    };
    let status = seller_authorized(shared, headers, seller_id).map_err(IntoResponse::into_response)?;
    Ok((request, status, after))
}

fn request_time(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").ok().filter(|_| text.len() == 14)?;
    jst().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

fn publication_time(order: &StoredOrder) -> DateTime<Utc> {
    order.ordered_at + ChronoDuration::minutes(CANCEL_WINDOW_MINUTES)
}

async fn order_list(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, status, after) = match gate(&shared, "orderList", &headers, &body).await {
        Ok(gated) => gated,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let bad = |what: &str| error(StatusCode::BAD_REQUEST, "od90101", &format!("Invalid Parameter: {what}"));
        let search = request.at("Search").ok_or_else(|| bad("Search"))?;
        let fields: Vec<&str> =
            search.text_at("Field").ok_or_else(|| bad("Field"))?.split(',').map(str::trim).collect();
        let condition = search.at("Condition").ok_or_else(|| bad("Condition"))?;
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, Rejection> {
            match condition.text_at(name) {
                None => Ok(None),
                Some(text) => request_time(text).map(Some).ok_or_else(|| bad(name)),
            }
        };
        let (from, to) = (time("PublicationTimeFrom")?, time("PublicationTimeTo")?);
        let (order_from, order_to) = (time("OrderTimeFrom")?, time("OrderTimeTo")?);
        if from.is_none()
            && to.is_none()
            && order_from.is_none()
            && order_to.is_none()
            && condition.text_at("OrderId").is_none()
        {
            return Err(bad("a time condition or OrderId is required"));
        }
        let per_page: usize = search.text_at("Result").map_or(Ok(10), |r| r.parse().map_err(|_| bad("Result")))?;
        let start: usize = search.text_at("Start").map_or(Ok(1), |s| s.parse().map_err(|_| bad("Start")))?;
        if !(1..=2000).contains(&per_page) || start == 0 {
            return Err(bad("Result/Start"));
        }
        let read_only_mode = condition.text_at("ReadOnlyMode").unwrap_or("0");
        let now = shared.clock.now();
        let state = shared.lock();
        let matching: Vec<&StoredOrder> = state
            .orders
            .values()
            .filter(|o| {
                let in_window = now < publication_time(o);
                match read_only_mode {
                    "1" => in_window,
                    "2" => true,
                    _ => !in_window,
                }
            })
            .filter(|o| from.is_none_or(|f| publication_time(o) >= f) && to.is_none_or(|t| publication_time(o) <= t))
            .filter(|o| order_from.is_none_or(|f| o.ordered_at >= f) && order_to.is_none_or(|t| o.ordered_at <= t))
            .collect();
        let mut rows = String::new();
        for (index, order) in matching.iter().enumerate().skip(start - 1).take(per_page) {
            rows.push_str(&format!("<OrderInfo><Index>{}</Index>", index + 1));
            for field in &fields {
                let value = match *field {
                    "OrderId" => order.id.clone(),
                    "OrderTime" => iso(order.ordered_at),
                    "OrderStatus" => order.status.to_string(),
                    "PublicationTime" => iso(publication_time(order)),
                    "ShipStatus" => order.ship_status.to_string(),
                    "ExcellentDelivery" => order.placed.excellent_delivery.to_string(),
                    _ => continue,
                };
                rows.push_str(&format!("<{field}>{}</{field}>", escape(&value)));
            }
            rows.push_str("</OrderInfo>");
        }
        Ok(xml(
            StatusCode::OK,
            format!(
                "<Result><Status>OK</Status><Search><TotalCount>{}</TotalCount>{rows}</Search></Result>",
                matching.len()
            ),
        ))
    })();
    finish(status, after, response.unwrap_or_else(IntoResponse::into_response)).await
}

fn order_info_xml(order: &StoredOrder, now: DateTime<Utc>) -> String {
    let placed = &order.placed;
    let read_only = if now < publication_time(order) { 1 } else { 0 };
    let items: String = placed
        .items
        .iter()
        .enumerate()
        .map(|(n, (sku, title, quantity, price))| {
            format!(
                "<Item><LineId>{}</LineId><ItemId>{}</ItemId><SubCode>{}</SubCode><Title>{}</Title><UnitPrice>{price}</UnitPrice><Quantity>{quantity}</Quantity></Item>",
                n + 1,
                cdata(sku.split('-').next().unwrap_or(sku)),
                cdata(sku),
                cdata(title)
            )
        })
        .collect();
    let total: i64 = placed.items.iter().map(|(_, _, q, p)| i64::from(*q) * p).sum();
    format!(
        "<OrderInfo><OrderId>{id}</OrderId><OrderTime>{time}</OrderTime><OrderStatus>{status}</OrderStatus><IsSeen>false</IsSeen><IsReadOnly>{read_only}</IsReadOnly>\
         <Suspect>0</Suspect><FraudHoldStatus>0</FraudHoldStatus><PublicationTime>{publication}</PublicationTime>\
         <Pay><PayStatus>{pay_status}</PayStatus><PayMethod>{pay_method}</PayMethod><PayMethodName>{pay_name}</PayMethodName>\
         <BillLastName>{last}</BillLastName><BillFirstName>{first}</BillFirstName><BillMailAddress>{mail}</BillMailAddress><BillPhoneNumber>03-0000-0000</BillPhoneNumber></Pay>\
         <Ship><ShipStatus>{ship_status}</ShipStatus><ShipRequestDate>{request_date}</ShipRequestDate><ShipRequestTime>{request_time}</ShipRequestTime>\
         <ShipLastName>{last}</ShipLastName><ShipFirstName>{first}</ShipFirstName><ShipZipCode>1000001</ShipZipCode><ShipPrefecture>{prefecture}</ShipPrefecture>\
         <ShipCity>{city}</ShipCity><ShipAddress1>{address1}</ShipAddress1><ShipAddress2>{address2}</ShipAddress2><ShipPhoneNumber>03-0000-0000</ShipPhoneNumber>\
         <ExcellentDelivery>{excellent}</ExcellentDelivery><ShipCompanyCode>{company}</ShipCompanyCode><ShipInvoiceNumber1>{invoice}</ShipInvoiceNumber1></Ship>\
         <Detail><TotalPrice>{total}</TotalPrice></Detail>{items}</OrderInfo>",
        id = order.id,
        time = iso(order.ordered_at),
        status = order.status,
        publication = iso(publication_time(order)),
        pay_status = if order.ship_status == 0 { 0 } else { 1 },
        pay_method = placed.pay_method,
        pay_name = cdata(&placed.pay_method_name),
        last = cdata(&placed.ship_last),
        first = cdata(&placed.ship_first),
        mail = cdata(&format!("{}@yahoo.example", order.id)),
        ship_status = order.ship_status,
        request_date = placed.ship_request_date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        request_time = cdata(placed.ship_request_time.as_deref().unwrap_or("")),
        prefecture = cdata(&placed.prefecture),
        city = cdata(&placed.city),
        address1 = cdata(&placed.address1),
        address2 = cdata(&placed.address2),
        excellent = placed.excellent_delivery,
        company = order.company.clone().unwrap_or_default(),
        invoice = cdata(order.invoice.as_deref().unwrap_or("")),
    )
}

async fn order_info(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, status, after) = match gate(&shared, "orderInfo", &headers, &body).await {
        Ok(gated) => gated,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let order_id = request
            .text_at("Target/OrderId")
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "od90101", "Invalid Parameter: OrderId"))?;
        request
            .text_at("Target/Field")
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "od90101", "Invalid Parameter: Field"))?;
        let state = shared.lock();
        let order = state.orders.get(order_id).ok_or_else(|| error(StatusCode::NOT_FOUND, "od91801", "Not Exists"))?;
        Ok(xml(
            StatusCode::OK,
            format!("<ResultSet totalResultsAvailable=\"1\" totalResultsReturned=\"1\" firstResultPosition=\"1\"><Result><Status>OK</Status>{}</Result></ResultSet>", order_info_xml(order, shared.clock.now())),
        ))
    })();
    finish(status, after, response.unwrap_or_else(IntoResponse::into_response)).await
}

fn updated() -> Response {
    xml(StatusCode::OK, "<ResultSet totalResultsAvailable=\"1\" totalResultsReturned=\"1\" ok=\"1\" ng=\"0\"><Result><Status>OK</Status></Result></ResultSet>".into())
}

async fn order_status_change(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, status, after) = match gate(&shared, "orderStatusChange", &headers, &body).await {
        Ok(gated) => gated,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let bad = |what: &str| error(StatusCode::BAD_REQUEST, "od90101", &format!("Invalid Parameter: {what}"));
        let order_id = request.text_at("Target/OrderId").ok_or_else(|| bad("OrderId"))?;
        let point_fix = request.text_at("Target/IsPointFix").ok_or_else(|| bad("IsPointFix"))?;
        let new_status: u8 = request
            .text_at("Order/OrderStatus")
            .and_then(|s| s.parse().ok())
            .filter(|s| (1..=5).contains(s))
            .ok_or_else(|| bad("OrderStatus"))?;
        if new_status == 5 && point_fix != "true" {
            return Err(bad("IsPointFix must be true to complete an order"));
        }
        let mut state = shared.lock();
        let order =
            state.orders.get_mut(order_id).ok_or_else(|| error(StatusCode::NOT_FOUND, "od91801", "Not Exists"))?;
        if order.status == 4 && new_status != 4 {
            return Err(error(StatusCode::BAD_REQUEST, "od91702", "Cannot Be Operated : CancelOrder OrderStatus"));
        }
        order.status = new_status;
        Ok(updated())
    })();
    finish(status, after, response.unwrap_or_else(IntoResponse::into_response)).await
}

async fn order_ship_status_change(State(shared): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, status, after) = match gate(&shared, "orderShipStatusChange", &headers, &body).await {
        Ok(gated) => gated,
        Err(response) => return response,
    };
    let response = (|| -> Result<Response, Rejection> {
        let bad = |what: &str| error(StatusCode::BAD_REQUEST, "od90101", &format!("Invalid Parameter: {what}"));
        let order_id = request.text_at("Target/OrderId").ok_or_else(|| bad("OrderId"))?;
        if request.text_at("Target/IsPointFix") != Some("true") {
            return Err(bad("IsPointFix"));
        }
        let ship = request.at("Order/Ship").ok_or_else(|| bad("Ship"))?;
        let ship_status: u8 = ship
            .text_at("ShipStatus")
            .and_then(|s| s.parse().ok())
            .filter(|s| *s <= 4)
            .ok_or_else(|| bad("ShipStatus"))?;
        let company = ship.text_at("ShipCompanyCode");
        let invoice = ship.text_at("ShipInvoiceNumber1");
        if invoice.is_some() && ship.text_at("ShipInvoiceNumberEmptyReason").is_some() {
            return Err(bad("ShipInvoiceNumber1 and ShipInvoiceNumberEmptyReason are exclusive"));
        }
        if let Some(invoice) = invoice {
            let digits_only = invoice.chars().all(|c| c.is_ascii_digit() || c == '-');
            let ok = invoice.len() <= 30
                && invoice.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && match company {
                    Some("1001") => digits_only && invoice.len() <= 14,
                    Some("1003") => (11..=13).contains(&invoice.chars().filter(|c| *c != '-').count()),
                    _ => true,
                };
            if !ok {
                return Err(bad("ShipInvoiceNumber1"));
            }
        }
        if let Some(date) = ship.text_at("ShipDate") {
            if chrono::NaiveDate::parse_from_str(date, "%Y%m%d").is_err() || date.len() != 8 {
                return Err(bad("ShipDate"));
            }
        }
        let mut state = shared.lock();
        state.ship_changes += 1;
        let order =
            state.orders.get_mut(order_id).ok_or_else(|| error(StatusCode::NOT_FOUND, "od91801", "Not Exists"))?;
        if order.status == 4 {
            return Err(error(StatusCode::BAD_REQUEST, "od91702", "Cannot Be Operated : CancelOrder OrderStatus"));
        }
        order.ship_status = ship_status;
        order.company = company.map(str::to_owned).or(order.company.take());
        order.invoice = invoice.map(str::to_owned).or(order.invoice.take());
        order.ship_date = ship.text_at("ShipDate").map(str::to_owned).or(order.ship_date.take());
        Ok(updated())
    })();
    finish(status, after, response.unwrap_or_else(IntoResponse::into_response)).await
}
