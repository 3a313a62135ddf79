//! The order list (filters, counts, search, sorting, paging, bulk actions) and the order detail
//! page with its actions. Every action is appended with the version the operator saw.

use super::security::Operator;
use super::views::{href, jst, jst_time, Badge, Choice};
use super::{field, parse_order_key, parse_page, AppState, FormPairs, WebError, WebResult};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use events::order::operator::allowed_targets;
use events::order::tasks::manual_tasks_due;
use events::order::{Address, EmailState, OrderState, SettlementKind, Status};
use events::Marketplace;
use projections::order_history::{order_with_history, HistoryRow};
use projections::queries::{self, OrderFilter, OrderRow, OrderSort};
use serde::Deserialize;
use std::sync::Arc;

pub const PAGE_SIZE: usize = 50;

fn parse_version(text: &str) -> WebResult<i64> {
    text.trim().parse().map_err(|_| {
        WebError::BadRequest("the form does not say which version of the order you saw: reload the page".into())
    })
}

fn marketplace_label(marketplace: &str) -> &'static str {
    match marketplace {
        "rakuten" => "楽天",
        "yahoo" => "Yahoo!",
        _ => "?",
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    mp: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: String,
}

pub struct Tab {
    pub label: String,
    pub count: i64,
    pub href: String,
    pub active: bool,
    pub class: String,
}

pub struct RowView {
    pub order: String,
    pub href: String,
    pub marketplace: &'static str,
    pub order_number: String,
    pub ordered_at: String,
    pub buyer: String,
    pub items: String,
    pub badge: Badge,
    pub updated_at: String,
    pub version: i64,
    pub mcf_order_id: String,
}

impl RowView {
    fn of(row: &OrderRow) -> Self {
        Self {
            order: row.order.clone(),
            href: format!("/orders/{}", row.order),
            marketplace: marketplace_label(&row.marketplace),
            order_number: row.order_number.clone(),
            ordered_at: row.ordered_at.as_deref().map(jst).unwrap_or_default(),
            buyer: row.buyer_name.clone().unwrap_or_default(),
            items: row.item_summary.clone().unwrap_or_default(),
            badge: Badge::of_stored(&row.status),
            updated_at: jst(&row.updated_at),
            version: row.version,
            mcf_order_id: row.mcf_order_id.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "web/orders.html")]
pub struct OrdersPage {
    pub csrf: String,
    pub tabs: Vec<Tab>,
    pub status: String,
    pub marketplaces: Vec<Choice>,
    pub sorts: Vec<Choice>,
    pub q: String,
    pub rows: Vec<RowView>,
    pub page: usize,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub legend: Vec<Badge>,
    pub bulk_targets: Vec<Choice>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Query(query): Query<ListQuery>,
) -> WebResult<Response> {
    let status = match query.status.trim() {
        "" => None,
        text => Some(text.parse::<Status>().map_err(|e| WebError::BadRequest(e.to_string()))?),
    };
    let marketplace = match query.mp.trim() {
        "" => None,
        text => Some(text.parse::<Marketplace>().map_err(|e| WebError::BadRequest(e.to_string()))?),
    };
    let sort = match query.sort.trim() {
        "" => OrderSort::default(),
        text => OrderSort::parse(text).ok_or_else(|| WebError::BadRequest(format!("unknown sort {text:?}")))?,
    };
    let page = parse_page(&query.page)?;
    let search = query.q.trim().chars().take(100).collect::<String>();
    let filter = OrderFilter {
        status,
        marketplace,
        search: (!search.is_empty()).then(|| search.clone()),
        sort,
        limit: Some(PAGE_SIZE + 1),
        offset: (page - 1) * PAGE_SIZE,
    };
    let (mut rows, counts) =
        state.db.read(move |conn| Ok((queries::list_orders(conn, &filter)?, queries::status_counts(conn)?))).await?;
    let has_next = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);

    let status_text = status.map(|s| s.as_str()).unwrap_or("");
    let mp_text = marketplace.map(|m| m.as_str()).unwrap_or("");
    let sort_text = if sort == OrderSort::default() { "" } else { sort.as_str() };
    let link = |status: &str, page: usize| {
        let page = if page > 1 { page.to_string() } else { String::new() };
        href("/", &[("status", status), ("mp", mp_text), ("q", &search), ("sort", sort_text), ("page", &page)])
    };
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut tabs = vec![Tab {
        label: "すべて (ALL)".into(),
        count: total,
        href: link("", 1),
        active: status.is_none(),
        class: String::new(),
    }];
    tabs.extend(counts.iter().map(|(s, n)| Tab {
        label: format!("{} {}", s.label(), s.as_str()),
        count: *n,
        href: link(s.as_str(), 1),
        active: status == Some(*s),
        class: Badge::of(*s).class,
    }));
    let mut marketplaces =
        vec![Choice { value: String::new(), label: "すべて".into(), selected: marketplace.is_none() }];
    marketplaces.extend(Marketplace::ALL.into_iter().map(|m| Choice {
        value: m.as_str().into(),
        label: marketplace_label(m.as_str()).into(),
        selected: marketplace == Some(m),
    }));
    let sort_labels = [
        (OrderSort::UpdatedDesc, "更新が新しい順"),
        (OrderSort::UpdatedAsc, "更新が古い順"),
        (OrderSort::OrderedDesc, "注文日が新しい順"),
        (OrderSort::OrderedAsc, "注文日が古い順"),
        (OrderSort::Number, "注文番号順"),
    ];
    let sorts = sort_labels
        .into_iter()
        .map(|(s, label)| Choice { value: s.as_str().into(), label: label.into(), selected: s == sort })
        .collect();
    let mut bulk_targets: Vec<Choice> = vec![];
    for target in [Status::Verified, Status::Received, Status::ShippingRequested] {
        bulk_targets.push(Choice {
            value: target.as_str().into(),
            label: format!("{} {}", target.as_str(), target.label()),
            selected: false,
        });
    }
    let page_view = OrdersPage {
        csrf: state.csrf_token(&operator),
        tabs,
        status: status_text.into(),
        marketplaces,
        sorts,
        q: search.clone(),
        rows: rows.iter().map(RowView::of).collect(),
        page,
        prev_href: (page > 1).then(|| link(status_text, page - 1)),
        next_href: has_next.then(|| link(status_text, page + 1)),
        legend: Status::ALL.into_iter().map(Badge::of).collect(),
        bulk_targets,
    };
    Ok(Html(page_view.render()?).into_response())
}

pub struct BulkResult {
    pub order: String,
    pub href: String,
    pub applied: bool,
    pub message: String,
}

#[derive(Template)]
#[template(path = "web/bulk_result.html")]
pub struct BulkResultPage {
    pub action: String,
    pub results: Vec<BulkResult>,
    pub applied: usize,
    pub refused: usize,
}

/// Bulk status change or cancel over the checked rows. Each row is decided on its own, with the
/// version shown in the list; refused rows say why, and the others are still applied.
pub async fn bulk(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let action = field(&form, "action").to_owned();
    let target = match action.as_str() {
        "cancel" => Status::Cancelled,
        "status" => field(&form, "to").parse::<Status>().map_err(|e| WebError::BadRequest(e.to_string()))?,
        other => return Err(WebError::BadRequest(format!("unknown bulk action {other:?}"))),
    };
    let reason = field(&form, "reason").trim().to_owned();
    if reason.is_empty() {
        return Err(WebError::BadRequest("a bulk change needs a reason (理由を入力してください)".into()));
    }
    let mcf_confirmed = field(&form, "confirm_mcf") == "yes";
    let selected: Vec<String> = form.iter().filter(|(k, _)| k == "order").map(|(_, v)| v.clone()).collect();
    if selected.is_empty() {
        return Err(WebError::BadRequest("no order was checked (注文を選択してください)".into()));
    }
    if selected.len() > 500 {
        return Err(WebError::BadRequest("at most 500 orders at once".into()));
    }
    let results = state
        .db
        .write(move |ledger| {
            let mut results = Vec::new();
            for entry in selected {
                let (key_text, version_text) = entry.rsplit_once(':').unwrap_or((entry.as_str(), ""));
                let outcome = (|| -> WebResult<String> {
                    let key = parse_order_key(key_text)?;
                    let version = parse_version(version_text)?;
                    if target == Status::Cancelled && !mcf_confirmed {
                        let current = ledger.order_state(&key)?;
                        if current.status == Some(Status::Shipping) {
                            return Err(WebError::BadRequest(
                                "SHIPPING: cancelling also cancels the MCF order at Amazon; tick the confirmation box to do so".into(),
                            ));
                        }
                    }
                    ledger.operator_set_status(&key, target, &reason, operator.meta(), Some(version))?;
                    Ok(if target == Status::Cancelled {
                        "キャンセルを受け付けました (cancellation recorded)".to_owned()
                    } else {
                        format!("{target} に変更しました")
                    })
                })();
                tracing::info!(order = key_text, to = %target, applied = outcome.is_ok(), "bulk action");
                results.push(match outcome {
                    Ok(message) => {
                        BulkResult { href: format!("/orders/{key_text}"), order: key_text.to_owned(), applied: true, message }
                    }
                    Err(error) => BulkResult {
                        href: format!("/orders/{key_text}"),
                        order: key_text.to_owned(),
                        applied: false,
                        message: error.message(),
                    },
                });
            }
            Ok(results)
        })
        .await?;
    let applied = results.iter().filter(|r| r.applied).count();
    let page = BulkResultPage {
        action: if target == Status::Cancelled {
            "キャンセル (cancel)".into()
        } else {
            format!("ステータス変更 → {target}")
        },
        refused: results.len() - applied,
        applied,
        results,
    };
    Ok(Html(page.render()?).into_response())
}

pub struct ItemView {
    pub marketplace_sku: String,
    pub title: String,
    pub quantity: u32,
    pub price: String,
    pub amazon_sku: String,
}

pub struct TimelineRow {
    pub time: String,
    pub actor: String,
    pub event_type: String,
    pub summary: String,
    pub data: String,
    pub blob: Option<String>,
    pub position: i64,
}

pub struct Fact {
    pub label: &'static str,
    pub value: String,
}

pub struct AddressForm {
    pub name: String,
    pub postal_code: String,
    pub prefecture: String,
    pub city: String,
    pub line1: String,
    pub line2: String,
    pub phone: String,
    /// The counters beside the fields, counted as the ship stage counts (admin.js keeps them
    /// current while the operator types; the server checks again on submit).
    pub name_length: usize,
    pub lines_length: usize,
    pub limits: events::order::address::AddressLimits,
}

impl AddressForm {
    pub fn name_over(&self) -> bool {
        self.name_length > self.limits.name
    }

    pub fn lines_over(&self) -> bool {
        self.lines_length > self.limits.lines
    }
}

pub struct TaskView {
    pub name: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "web/order.html")]
pub struct OrderPage {
    pub csrf: String,
    pub key: String,
    pub marketplace: &'static str,
    pub badge: Badge,
    pub version: i64,
    pub notice: Option<String>,
    pub buyer: Vec<Fact>,
    pub delivery: Vec<Fact>,
    pub settlement: Vec<Fact>,
    pub mcf: Vec<Fact>,
    pub items: Vec<ItemView>,
    pub problem: Option<String>,
    pub advice: Vec<&'static str>,
    pub targets: Vec<Choice>,
    pub can_cancel: bool,
    pub cancel_note: Option<String>,
    pub address_form: Option<AddressForm>,
    pub tasks: Vec<TaskView>,
    pub emails: Vec<Fact>,
    /// The marketplace writes (confirmation, shipping, completion) and where each stands.
    pub writes: Vec<Fact>,
    pub timeline: Vec<TimelineRow>,
}

/// The guide's recovery steps for the order's current problem.
fn recovery_advice(state: &OrderState) -> Vec<&'static str> {
    match state.status {
        Some(Status::OutOfStock) => vec!["1. Amazonセラーセントラルで在庫補充", "2. ステータスを VERIFIED に変更"],
        Some(Status::DateUnavailable) => {
            vec!["1. 顧客と日時調整", "2. ステータスを SHIPPING_REQUESTED に変更 (通常配送へ)"]
        }
        Some(Status::Error) => {
            let error = state.error.as_ref();
            if error.and_then(|e| e.code.as_deref()) == Some("SKU_NOT_IN_MASTER") {
                vec![
                    "SKUマッピング エラー — 原因: master.xlsx に該当SKUが存在しない",
                    "対応: SKUMapping シートに追加後、VERIFIED に変更",
                ]
            } else if error.is_some_and(|e| e.stage == "ship" || e.stage.starts_with("amazon")) {
                vec![
                    "MCF 400 Client Error — 原因: 住所が40文字を超過している等のバリデーションエラー",
                    "対応: 下の「住所修正」で住所を手動修正し、ステータスを VERIFIED に変更して再処理",
                ]
            } else {
                vec!["1. 原因解消 (上のメッセージを確認)", "2. ステータスを VERIFIED または RECEIVED に変更"]
            }
        }
        _ => vec![],
    }
}

fn fact(label: &'static str, value: impl Into<String>) -> Fact {
    Fact { label, value: value.into() }
}

fn settlement_kind(kind: SettlementKind) -> &'static str {
    match kind {
        SettlementKind::CreditCard => "クレジットカード",
        SettlementKind::Prepaid => "前払い (入金確認後に出荷)",
        SettlementKind::CashOnDelivery => "代金引換",
        SettlementKind::Other => "その他",
    }
}

fn build_order_page(
    csrf: String,
    state: &OrderState,
    history: Vec<HistoryRow>,
    notice: Option<String>,
    address_limits: events::order::address::AddressLimits,
) -> WebResult<OrderPage> {
    let (Some(key), Some(status)) = (state.key.as_ref(), state.status) else {
        return Err(WebError::NotFound("この注文は台帳にありません".into()));
    };
    let (buyer, settlement) = buyer_and_settlement_facts(state);
    let targets = allowed_targets(status)
        .iter()
        .filter(|t| **t != Status::Cancelled)
        .map(|t| Choice { value: t.as_str().into(), label: format!("{} {}", t.as_str(), t.label()), selected: false })
        .collect();
    let can_cancel = allowed_targets(status).contains(&Status::Cancelled) && state.cancel_requested.is_none();
    let cancel_note = (can_cancel && (status == Status::Shipping || state.mcf_intent.is_some())).then(|| {
        "この注文はAmazon MCFに出荷依頼済みです。キャンセルするとMCFの出荷も取り消されます (確認画面があります)"
            .to_owned()
    });
    Ok(OrderPage {
        csrf,
        key: key.to_string(),
        marketplace: marketplace_label(key.marketplace.as_str()),
        badge: Badge::of(status),
        version: state.version,
        notice,
        buyer,
        delivery: delivery_facts(state),
        settlement,
        mcf: mcf_facts(state),
        items: item_views(state),
        problem: projections::order_status::problem(state),
        advice: recovery_advice(state),
        targets,
        can_cancel,
        cancel_note,
        address_form: address_form(state, status, address_limits),
        tasks: manual_tasks_due(state).into_iter().map(|t| TaskView { name: t.as_str(), label: t.label() }).collect(),
        emails: email_facts(state),
        writes: state
            .writes
            .iter()
            .map(|(write, progress)| Fact { label: write.label(), value: write_progress_text(progress) })
            .collect(),
        timeline: timeline_rows(history),
    })
}

/// Who ordered and how it is paid (or that only the mail has been seen).
fn buyer_and_settlement_facts(state: &OrderState) -> (Vec<Fact>, Vec<Fact>) {
    let (mut buyer, mut settlement) = (vec![], vec![]);
    match &state.details {
        Some(d) => {
            buyer.push(fact("注文日時", jst_time(d.ordered_at.with_timezone(&chrono::Utc))));
            buyer.push(fact("注文者", d.buyer.name.clone()));
            buyer.push(fact("メール", d.buyer.email.clone().unwrap_or_default()));
            buyer.push(fact("電話", d.buyer.phone.clone().unwrap_or_default()));
            settlement
                .push(fact("決済方法", format!("{} ({})", d.settlement.name, settlement_kind(d.settlement.kind))));
            settlement.push(fact("入金確認", if state.payment_confirmed { "済み" } else { "—" }));
            settlement.push(fact("合計", format!("¥{}", d.total_yen)));
        }
        None => buyer.push(fact("注文者", "マーケットプレイスAPIで未確認 (メールのみ)")),
    }
    if let Some(hold) = &state.hold {
        settlement.push(fact("保留", hold.clone()));
    }
    (buyer, settlement)
}

/// Where it goes, and the marketplace's delivery promise.
fn delivery_facts(state: &OrderState) -> Vec<Fact> {
    let mut delivery = vec![];
    if let Some(address) = state.delivery_address() {
        delivery.push(fact("お届け先", format!("{} 様", address.name)));
        delivery.push(fact("住所", address.one_line()));
        delivery.push(fact("電話", address.phone.clone().unwrap_or_default()));
    }
    let Some(d) = &state.details else { return delivery };
    if let Some(request) = &d.delivery_request {
        let slot = request.slot.clone().unwrap_or_else(|| "時間指定なし".into());
        delivery.push(fact("配送日時指定", format!("{} {slot}", request.date)));
    }
    if let Some(deadline) = d.premium_deadline {
        delivery.push(fact("優良配送 お届け期限", deadline.to_string()));
    }
    if state.delivery_slot_dropped {
        delivery.push(fact("日時指定", "オペレーターにより解除 (通常配送)"));
    }
    if state.corrected_address.is_some() {
        delivery.push(fact("修正前の住所", d.ship_to.one_line()));
    }
    delivery
}

/// The MCF order: its id, speed and why, tracking, a pending cancellation.
fn mcf_facts(state: &OrderState) -> Vec<Fact> {
    let mut mcf = vec![match (&state.mcf_order_id, &state.mcf_intent) {
        (Some(id), _) => fact("MCF注文ID", id.as_str()),
        (None, Some(intent)) => fact("MCF注文ID", format!("{} (依頼中)", intent.fulfillment_order_id.as_str())),
        (None, None) => fact("MCF注文ID", "—"),
    }];
    if let Some(speed) = state.shipping_speed {
        mcf.push(fact("配送速度", speed.as_str()));
    }
    if let Some(reason) = &state.speed_reason {
        mcf.push(fact("速度の理由", reason.clone()));
    }
    if let Some(tracking) = &state.tracking {
        mcf.push(fact("追跡番号", format!("{} ({})", tracking.tracking_number, tracking.carrier)));
        if let Some(shipped_at) = tracking.shipped_at {
            mcf.push(fact("出荷日時", jst_time(shipped_at)));
        }
        mcf.push(fact("マーケットプレイスへの出荷登録", if state.shipment_reported { "済み" } else { "未" }));
    }
    if let Some(cancel) = &state.cancel_requested {
        mcf.push(fact("キャンセル", format!("処理中: {}", cancel.reason)));
    }
    mcf
}

/// The order's lines, with the Amazon SKUs check allotted to each.
fn item_views(state: &OrderState) -> Vec<ItemView> {
    let Some(d) = &state.details else { return Vec::new() };
    d.items
        .iter()
        .map(|item| ItemView {
            marketplace_sku: item.marketplace_sku.clone(),
            title: item.title.clone(),
            quantity: item.quantity,
            price: format!("¥{}", item.unit_price_yen),
            amazon_sku: state
                .allotted
                .iter()
                .filter(|line| line.marketplace_sku == item.marketplace_sku)
                .map(|line| line.seller_sku.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// The correction form, while the address can still change (not once Amazon has the order).
fn address_form(
    state: &OrderState,
    status: Status,
    limits: events::order::address::AddressLimits,
) -> Option<AddressForm> {
    let editable = !status.is_final() && status != Status::Shipping && state.mcf_intent.is_none();
    let a: &Address = state.delivery_address().filter(|_| editable)?;
    let (name_length, lines_length) = events::order::address::lengths_for_amazon(a);
    Some(AddressForm {
        name_length,
        lines_length,
        limits,
        name: a.name.clone(),
        postal_code: a.postal_code.clone(),
        prefecture: a.prefecture.clone(),
        city: a.city.clone(),
        line1: a.line1.clone(),
        line2: a.line2.clone().unwrap_or_default(),
        phone: a.phone.clone().unwrap_or_default(),
    })
}

fn email_facts(state: &OrderState) -> Vec<Fact> {
    state
        .emails
        .iter()
        .map(|e| {
            let text = match &e.state {
                EmailState::Intended => "送信待ち".to_owned(),
                EmailState::Sending => {
                    "送信中に結果不明 — 二重送信を避けるため自動再送しません。確認してください".to_owned()
                }
                EmailState::Sent => "送信済み".to_owned(),
                EmailState::Failed(error) => format!("失敗: {error}"),
            };
            Fact { label: "顧客メール", value: format!("{} ({}): {text}", e.kind, e.email_id) }
        })
        .collect()
}

/// The order's history, newest first.
fn timeline_rows(history: Vec<HistoryRow>) -> Vec<TimelineRow> {
    history
        .into_iter()
        .rev()
        .map(|row| TimelineRow {
            time: jst(&row.recorded_at),
            actor: row.actor,
            event_type: row.event_type,
            summary: row.summary,
            data: serde_json::from_str::<serde_json::Value>(&row.data)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or(row.data),
            blob: row.blob,
            position: row.position,
        })
        .collect()
}

/// Where one marketplace write stands, in the operator's words.
pub(crate) fn write_progress_text(progress: &events::order::WriteState) -> String {
    use events::order::WriteState;
    match progress {
        WriteState::Done => "完了".to_owned(),
        WriteState::Intended => {
            "送信済み・結果未確認 — 次のサイクルでモール側の状態を確認し、未反映の場合のみ再送します".to_owned()
        }
        WriteState::Failed(message) => format!("モールが拒否しました。対応が必要です（モールのメッセージ: {message}）"),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    done: String,
}

pub async fn detail(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Query(query): Query<DetailQuery>,
) -> WebResult<Response> {
    let key = parse_order_key(&order)?;
    let lookup = key.clone();
    let (order_state, history) = state
        .db
        .read(move |conn| order_with_history(conn, &lookup).map_err(|e| WebError::Internal(e.to_string())))
        .await?;
    if order_state.status.is_none() {
        return Err(WebError::NotFound(format!("order {key} is not in the ledger")));
    }
    let notice = match query.done.as_str() {
        "status" => Some("ステータスを変更しました (status changed)".to_owned()),
        "cancel" => Some("キャンセルを受け付けました。次のサイクルで処理されます (cancellation recorded)".to_owned()),
        "address" => Some("住所を修正しました。修正前の住所も記録に残ります (address corrected)".to_owned()),
        "task" => Some("作業を完了にしました (task marked done)".to_owned()),
        _ => None,
    };
    let page =
        build_order_page(state.csrf_token(&operator), &order_state, history, notice, state.settings.address_limits)?;
    Ok(Html(page.render()?).into_response())
}

pub async fn change_status(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let key = parse_order_key(&order)?;
    let version = parse_version(field(&form, "version"))?;
    let to = field(&form, "to").parse::<Status>().map_err(|e| WebError::BadRequest(e.to_string()))?;
    if to == Status::Cancelled {
        return Err(WebError::BadRequest("use the cancel button to cancel an order".into()));
    }
    let reason = field(&form, "reason").to_owned();
    let target = key.clone();
    state
        .db
        .write(move |ledger| {
            ledger.operator_set_status(&target, to, &reason, operator.meta(), Some(version)).map_err(WebError::from)
        })
        .await?;
    tracing::info!(order = %key, %to, "operator changed the status");
    Ok(Redirect::to(&format!("/orders/{key}?done=status")).into_response())
}

#[derive(Template)]
#[template(path = "web/confirm_cancel.html")]
pub struct ConfirmCancelPage {
    pub csrf: String,
    pub key: String,
    pub version: i64,
    pub reason: String,
    pub mcf_order_id: String,
}

/// Cancels the order. An order already handed to MCF gets a confirmation page first, saying
/// that the MCF order will be cancelled too.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let key = parse_order_key(&order)?;
    let version = parse_version(field(&form, "version"))?;
    let reason = field(&form, "reason").trim().to_owned();
    if reason.is_empty() {
        return Err(WebError::BadRequest(format!("cancelling order {key} needs a reason (理由を入力してください)")));
    }
    let confirmed = field(&form, "confirm_mcf") == "yes";
    let target = key.clone();
    let csrf = state.csrf_token(&operator);
    let confirmation = state
        .db
        .write(move |ledger| {
            let current = ledger.order_state(&target)?;
            let with_mcf = current.status == Some(Status::Shipping) || current.mcf_intent.is_some();
            if with_mcf && !confirmed {
                if current.version != version {
                    return Err(WebError::from(projections::LedgerError::Stale {
                        order: target.to_string(),
                        seen: version,
                        actual: current.version,
                    }));
                }
                let mcf_order_id = current
                    .mcf_order_id
                    .as_ref()
                    .map(|id| id.as_str().to_owned())
                    .or_else(|| current.mcf_intent.as_ref().map(|i| i.fulfillment_order_id.as_str().to_owned()))
                    .unwrap_or_default();
                return Ok(Some(ConfirmCancelPage { csrf, key: target.to_string(), version, reason, mcf_order_id }));
            }
            ledger.operator_set_status(&target, Status::Cancelled, &reason, operator.meta(), Some(version))?;
            Ok(None)
        })
        .await?;
    match confirmation {
        Some(page) => Ok(Html(page.render()?).into_response()),
        None => {
            tracing::info!(order = %key, "operator cancelled the order");
            Ok(Redirect::to(&format!("/orders/{key}?done=cancel")).into_response())
        }
    }
}

pub async fn correct_address(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let key = parse_order_key(&order)?;
    let version = parse_version(field(&form, "version"))?;
    let optional = |name: &str| Some(field(&form, name).trim().to_owned()).filter(|v| !v.is_empty());
    let address = Address {
        name: field(&form, "name").trim().to_owned(),
        postal_code: field(&form, "postal_code").trim().to_owned(),
        prefecture: field(&form, "prefecture").trim().to_owned(),
        city: field(&form, "city").trim().to_owned(),
        line1: field(&form, "line1").trim().to_owned(),
        line2: optional("line2"),
        phone: optional("phone"),
    };
    if [&address.name, &address.city, &address.line1].iter().any(|v| v.chars().count() > 200) {
        return Err(WebError::BadRequest("住所の項目が200文字を超えています".into()));
    }
    let reason = field(&form, "reason").to_owned();
    let target = key.clone();
    let limits = state.settings.address_limits;
    state
        .db
        .write(move |ledger| {
            ledger
                .operator_correct_address(&target, address, &reason, operator.meta(), Some(version), limits)
                .map_err(WebError::from)
        })
        .await?;
    tracing::info!(order = %key, "operator corrected the address");
    Ok(Redirect::to(&format!("/orders/{key}?done=address")).into_response())
}
