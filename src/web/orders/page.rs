//! The order detail page: what the order is, what is wrong with it and the guide's way on,
//! the actions the operator may take now, and its history.

use super::marketplace_label;
use crate::web::security::Operator;
use crate::web::views::{jst, jst_time, Badge, Choice};
use crate::web::{parse_order_key, AppState, WebError, WebResult};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use events::order::operator::allowed_targets_for;
use events::order::tasks::manual_tasks_due;
use events::order::{Address, EmailState, OrderState, SettlementKind, Status};
use projections::order_history::{order_with_history, HistoryRow};
use serde::Deserialize;
use std::sync::Arc;

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

pub(crate) struct TaskView {
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
    /// Amazon refused the cancellation: the return is the way on.
    pub return_pending: bool,
    /// DATE_UNAVAILABLE: the slots Amazon offered, to agree one with the customer.
    pub slot_choices: Vec<String>,
    /// The order's page in RMS or ストアクリエイターPro.
    pub marketplace_link: Option<MarketplaceLink>,
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
        Some(Status::DateUnavailable) => vec![
            "1. お客様と日時を調整",
            "2. Amazonが提示した枠から選んで記録する（下の「配送枠を選ぶ」）か、ステータスを SHIPPING_REQUESTED に変更して通常配送へ",
        ],
        Some(Status::Error) if state.cancel_refused.is_some() => vec![
            "1. 荷物はお客様に届きます（Amazonはピッキング済み・発送済み）",
            "2. お客様に連絡し、返品を手配する",
            "3. 荷物が戻ったら、モールで注文をキャンセル・返金する",
            "4. 下の「返品対応済み」を記録する（注文はキャンセル済みになります）",
        ],
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
        Some(Status::AwaitingConfirmation) if state.hold.is_some() => vec![
            "1. モールの管理画面で保留の理由を確認し、解消する",
            "2. 楽天は注文から14日以内に確認しない注文を自動でキャンセルします。期限にご注意ください",
        ],
        _ => vec![],
    }
}

/// The order's own page in the marketplace's admin (RMS, ストアクリエイターPro).
pub struct MarketplaceLink {
    pub label: &'static str,
    pub url: String,
}

impl MarketplaceLink {
    fn of(key: &events::OrderKey, links: &crate::web::MarketplaceLinks) -> Option<Self> {
        let number = &key.order_number;
        match key.marketplace {
            events::Marketplace::Rakuten => {
                Some(Self { label: "RMSで開く", url: links.rakuten.replace("{order_number}", number) })
            }
            events::Marketplace::Yahoo => {
                let seller = number.rsplit_once('-').map_or("", |(seller, _)| seller);
                Some(Self {
                    label: "ストアクリエイターProで開く",
                    url: links.yahoo.replace("{seller_id}", seller).replace("{order_id}", number),
                })
            }
        }
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
    links: &crate::web::MarketplaceLinks,
) -> WebResult<OrderPage> {
    let (Some(key), Some(status)) = (state.key.as_ref(), state.status) else {
        return Err(WebError::NotFound("この注文は台帳にありません".into()));
    };
    let (buyer, settlement) = buyer_and_settlement_facts(state);
    let targets = allowed_targets_for(state)
        .iter()
        .filter(|t| **t != Status::Cancelled)
        .map(|t| Choice { value: t.as_str().into(), label: format!("{} {}", t.as_str(), t.label()), selected: false })
        .collect();
    let can_cancel = allowed_targets_for(state).contains(&Status::Cancelled) && state.cancel_requested.is_none();
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
        return_pending: state.cancel_refused.is_some() && status == Status::Error,
        slot_choices: match (&state.delivery_slot_unavailable, status) {
            (Some(unavailable), Status::DateUnavailable) => unavailable.offered.clone(),
            _ => Vec::new(),
        },
        marketplace_link: MarketplaceLink::of(key, links),
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
    let editable = !status.is_final()
        && status != Status::Shipping
        && state.mcf_intent.is_none()
        && state.cancel_refused.is_none();
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
                EmailState::Withdrawn(reason) => format!("送信せず: {reason}"),
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
        WriteState::Submitted(request_id) => {
            format!("モールが受け付けました・処理結果待ち（requestId: {request_id}） — 結果が出るまで再送しません")
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
        return Err(WebError::NotFound(format!("注文 {key} は台帳にありません")));
    }
    let notice = match query.done.as_str() {
        "status" => Some("ステータスを変更しました (status changed)".to_owned()),
        "cancel" => Some("キャンセルを受け付けました。次のサイクルで処理されます (cancellation recorded)".to_owned()),
        "address" => Some("住所を修正しました。修正前の住所も記録に残ります (address corrected)".to_owned()),
        "task" => Some("作業を完了にしました (task marked done)".to_owned()),
        "return" => Some("返品対応済みを記録し、注文をキャンセル済みにしました".to_owned()),
        "slot" => Some("配送枠を記録しました。次のサイクルでこの枠で出荷依頼します".to_owned()),
        "memo" => Some("メモを記録しました".to_owned()),
        _ => None,
    };
    let page = build_order_page(
        state.csrf_token(&operator),
        &order_state,
        history,
        notice,
        state.settings.address_limits,
        &state.settings.marketplace_links,
    )?;
    Ok(Html(page.render()?).into_response())
}
