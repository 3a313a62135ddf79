//! The to-do list: the guide's manual emails per order, each with a button that records it
//! done, and the orders that wait on a human.

use super::orders::page::TaskView;
use super::orders::PAGE_SIZE;
use super::security::Operator;
use super::views::{href, jst, Badge};
use super::{field, parse_order_key, parse_page, AppState, FormPairs, WebError, WebResult};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use events::envelope::ExpectedVersion;
use events::order::tasks::{manual_tasks_due, ManualTask};
use events::order::{ManualTaskDone, OrderEvent};
use projections::ledger::OrderAppend;
use projections::queries;
use serde::Deserialize;
use std::sync::Arc;

pub struct TodoRow {
    pub order: String,
    pub href: String,
    pub buyer: String,
    pub badge: Badge,
    pub updated_at: String,
    pub tasks: Vec<TaskView>,
}

/// An order the marketplace holds; Rakuten's with the days left before RMS cancels it.
pub struct HeldRow {
    pub order: String,
    pub href: String,
    pub why: String,
    pub ordered_at: String,
    pub deadline: String,
    /// Five days or fewer left.
    pub urgent: bool,
}

/// RMS cancels an order the shop has not confirmed within this many days of it.
const RAKUTEN_CONFIRM_DAYS: i64 = 14;

fn held_row(row: &projections::OrderRow, today: chrono::NaiveDate) -> HeldRow {
    let ordered = row.ordered_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let (deadline, urgent) = match (row.marketplace.as_str(), ordered) {
        ("rakuten", Some(at)) => {
            let last_day =
                at.with_timezone(&events::clock::jst()).date_naive() + chrono::Duration::days(RAKUTEN_CONFIRM_DAYS);
            let left = (last_day - today).num_days();
            let text = if left >= 0 {
                format!("あと{left}日（{last_day} までに確認しないと楽天が自動キャンセル）")
            } else {
                format!("期限切れ（{last_day}）: RMSで状態を確認してください")
            };
            (text, left <= 5)
        }
        _ => ("—".to_owned(), false),
    };
    HeldRow {
        order: row.order.clone(),
        href: format!("/orders/{}", row.order),
        why: row.hold.clone().unwrap_or_default(),
        ordered_at: row.ordered_at.as_deref().map(jst).unwrap_or_default(),
        deadline,
        urgent,
    }
}

pub struct WaitingRow {
    pub order: String,
    pub href: String,
    pub badge: Badge,
    pub why: String,
    pub updated_at: String,
}

#[derive(Template)]
#[template(path = "web/todo.html")]
pub struct TodoPage {
    pub csrf: String,
    pub total: i64,
    pub rows: Vec<TodoRow>,
    pub waiting: Vec<WaitingRow>,
    pub held: Vec<HeldRow>,
    pub page: usize,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct TodoQuery {
    #[serde(default)]
    page: String,
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Query(query): Query<TodoQuery>,
) -> WebResult<Response> {
    let page = parse_page(&query.page)?;
    let (mut tasks, total, waiting, held) = state
        .db
        .read(move |conn| {
            Ok((
                queries::orders_with_tasks_due(conn, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)?,
                queries::count_tasks_due(conn)?,
                queries::orders_needing_operator(conn)?,
                queries::held_orders(conn)?,
            ))
        })
        .await?;
    let today = state.db.now().with_timezone(&events::clock::jst()).date_naive();
    let held = held.iter().map(|row| held_row(row, today)).collect();
    let has_next = tasks.len() > PAGE_SIZE;
    tasks.truncate(PAGE_SIZE);
    let rows = tasks
        .iter()
        .map(|row| TodoRow {
            order: row.order.clone(),
            href: format!("/orders/{}", row.order),
            buyer: row.buyer_name.clone().unwrap_or_default(),
            badge: Badge::of_stored(&row.status),
            updated_at: jst(&row.updated_at),
            tasks: row
                .tasks_due
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(ManualTask::parse)
                .map(|t| TaskView { name: t.as_str(), label: t.label() })
                .collect(),
        })
        .collect();
    let waiting = waiting
        .iter()
        .map(|row| {
            let mut why = row.error.clone().unwrap_or_default();
            if row.email_sending {
                why.push_str(" 顧客メールの送信結果が不明です (自動再送しません): 送信されたか確認してください");
            }
            WaitingRow {
                order: row.order.clone(),
                href: format!("/orders/{}", row.order),
                badge: Badge::of_stored(&row.status),
                why: if why.trim().is_empty() { "顧客メール送信待ち".into() } else { why.trim().to_owned() },
                updated_at: jst(&row.updated_at),
            }
        })
        .collect();
    let link = |page: usize| href("/todo", &[("page", &page.to_string())]);
    let view = TodoPage {
        csrf: state.csrf_token(&operator),
        total,
        rows,
        waiting,
        held,
        page,
        prev_href: (page > 1).then(|| link(page - 1)),
        next_href: has_next.then(|| link(page + 1)),
    };
    Ok(Html(view.render()?).into_response())
}

/// Records a manual task done. Pressing twice records it once (idempotency key).
pub async fn mark_done(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let key = parse_order_key(&order)?;
    let task_name = field(&form, "task");
    let task = ManualTask::parse(task_name).ok_or_else(|| {
        WebError::BadRequest(format!("作業「{}」はありません", task_name.chars().take(60).collect::<String>()))
    })?;
    let back_to_order = field(&form, "back") == "order";
    let target = key.clone();
    state
        .db
        .write(move |ledger| {
            let current = ledger.order_state(&target)?;
            if current.status.is_none() {
                return Err(WebError::NotFound(format!("注文 {target} は台帳にありません")));
            }
            if !manual_tasks_due(&current).contains(&task) {
                return Err(WebError::BadRequest(format!(
                    "注文 {target} に未完了の作業「{}」はありません（完了済み、またはまだ不要です）",
                    task.label()
                )));
            }
            let event = OrderEvent::ManualTaskDone(ManualTaskDone { task: task.as_str().into(), note: String::new() });
            let append = OrderAppend::idempotent(event, format!("task:{target}:{}", task.as_str()));
            ledger.append_order(&target, ExpectedVersion::Any, vec![append], operator.meta())?;
            Ok(())
        })
        .await?;
    tracing::info!(order = %key, task = task.as_str(), "manual task done");
    let to = if back_to_order { format!("/orders/{key}?done=task") } else { "/todo".to_owned() };
    Ok(Redirect::to(&to).into_response())
}
