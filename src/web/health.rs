//! Source health: per marketplace, Amazon and the mailbox, the last success and failure, any
//! outage, the cursor and expiring credentials; the last cycles with their stage counts.
//! `/healthz` is the unauthenticated probe for monitoring.

use super::views::jst_time;
use super::{AppState, WebResult};
use crate::stages::sources::AMAZON_HEALTH_STREAM;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use events::source::SourceState;
use rusqlite::Connection;
use std::sync::Arc;

pub struct SourceView {
    pub name: String,
    pub last_success: String,
    pub last_failure: String,
    pub failure_message: String,
    pub outage: String,
    pub cursor: String,
    pub credentials: String,
    pub healthy: bool,
}

pub struct CycleView {
    pub started: String,
    pub finished: String,
    pub duration: String,
    pub stages: Vec<String>,
    pub failures: Vec<String>,
}

/// One kind of marketplace write with orders still waiting for its outcome (or refused).
pub struct OpenWriteView {
    pub label: &'static str,
    pub count: i64,
    pub oldest: String,
    /// The first few orders, to open from here.
    pub orders: Vec<String>,
}

/// How many orders the health page names per kind of open write.
const OPEN_WRITE_ORDERS_SHOWN: usize = 10;

fn open_writes(conn: &Connection) -> WebResult<Vec<OpenWriteView>> {
    let mut views = Vec::new();
    for (name, count, oldest) in projections::queries::open_write_counts(conn)? {
        let Some(write) = events::order::OutsideWrite::ALL.into_iter().find(|w| w.as_str() == name) else {
            return Err(super::WebError::Internal(format!("unknown write {name:?} in the order_status projection")));
        };
        let mut orders = projections::queries::orders_with_open_write(conn, write)?;
        orders.truncate(OPEN_WRITE_ORDERS_SHOWN);
        let oldest = chrono::DateTime::parse_from_rfc3339(&oldest)
            .map(|t| jst_time(t.with_timezone(&chrono::Utc)))
            .unwrap_or(oldest);
        views.push(OpenWriteView { label: write.label(), count, oldest, orders });
    }
    Ok(views)
}

#[derive(Template)]
#[template(path = "web/health.html")]
pub struct HealthPage {
    pub now: String,
    pub sources: Vec<SourceView>,
    pub open_writes: Vec<OpenWriteView>,
    pub cycles: Vec<CycleView>,
    pub lease: String,
    /// The stock sync's last run, or its hold; None when it never ran.
    pub stock: Option<String>,
    pub stock_held: bool,
}

/// The stock sync as health shows it: held (waiting for an operator), or its last run.
fn stock_status(conn: &rusqlite::Connection) -> WebResult<(Option<String>, bool)> {
    use events::stock::{StockSyncFinished, StockSyncHeld, STOCK_SYNC_STREAM};
    let last = projections::queries::last_event_of(conn, STOCK_SYNC_STREAM, &["StockSyncHeld", "StockSyncFinished"])?;
    let Some((kind, data, at)) = last else { return Ok((None, false)) };
    let at = super::views::jst(&at);
    let unreadable = |e: serde_json::Error| super::WebError::Internal(format!("an unreadable {kind}: {e}"));
    if kind == "StockSyncHeld" {
        let held: StockSyncHeld = serde_json::from_str(&data).map_err(unreadable)?;
        return Ok((Some(format!("{at} から止めています（承認待ち）: {}", held.reasons.join(" / "))), true));
    }
    let run: StockSyncFinished = serde_json::from_str(&data).map_err(unreadable)?;
    let mut text = format!("{at} 書き込み {} 件、変更なし {} 件、問題 {} 件", run.written, run.unchanged, run.problems);
    if !run.unavailable.is_empty() {
        text.push_str(&format!("、応答なし: {}", run.unavailable.join(", ")));
    }
    Ok((Some(text), run.problems > 0 || !run.unavailable.is_empty()))
}

/// The display name of a poll stream.
fn source_name(stream: &str) -> String {
    match stream {
        "poll-rakuten" => "楽天 RMS (Rakuten)".into(),
        "poll-yahoo" => "Yahoo!ショッピング (Yahoo)".into(),
        other => match other.strip_prefix("poll-mailbox-") {
            Some(mailbox) => format!("メールボックス (IMAP {mailbox})"),
            None => other.to_owned(),
        },
    }
}

/// Every known expiry date, with the days left; the one being warned about first.
fn credentials_text(state: &SourceState, today: NaiveDate) -> String {
    let mut parts: Vec<String> = state
        .credentials
        .iter()
        .map(|(credential, expires_on)| {
            let left = (*expires_on - today).num_days();
            let warned = state.expiring.as_ref().is_some_and(|e| &e.credential == credential);
            format!("{}{credential} の期限 {expires_on} (残り{left}日)", if warned { "⚠ " } else { "" })
        })
        .collect();
    if let Some(problem) = &state.signature_problem {
        parts.push(format!("署名: {problem}"));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(" / ")
    }
}

fn source_view(conn: &Connection, stream: &str, state: &SourceState, today: NaiveDate) -> WebResult<SourceView> {
    let mailbox = match stream.strip_prefix("poll-").filter(|s| s.starts_with("mailbox-")) {
        Some(mailbox_stream) => projections::queries::mailbox_cursor(conn, mailbox_stream)?,
        None => None,
    };
    let cursor = match mailbox {
        Some(cursor) => format!("UIDVALIDITY {} / 最終UID {}", cursor.uid_validity, cursor.last_uid),
        None => state.cursor.map(jst_time).unwrap_or_else(|| "—".into()),
    };
    Ok(SourceView {
        name: source_name(stream),
        last_success: state.last_success.map(jst_time).unwrap_or_else(|| "—".into()),
        last_failure: state.last_failure.as_ref().map(|(at, _)| jst_time(*at)).unwrap_or_else(|| "—".into()),
        failure_message: state.last_failure.as_ref().map(|(_, m)| m.clone()).unwrap_or_default(),
        outage: match (state.failing_since, state.outage_declared) {
            (Some(since), true) => format!("障害中 (outage) {} から", jst_time(since)),
            (Some(since), false) => format!("失敗が続いています {} から", jst_time(since)),
            (None, _) => "正常".into(),
        },
        cursor,
        credentials: credentials_text(state, today),
        healthy: state.failing_since.is_none(),
    })
}

/// The last cycles, newest first, with Amazon's health read off the stages that call it. A
/// cycle that never finished is running while its holder holds the lease, and otherwise was
/// interrupted: its process ended (killed, or the machine went down).
fn cycles(
    conn: &Connection,
    credentials: String,
    running: Option<&crate::lease::Held>,
) -> WebResult<(Vec<CycleView>, SourceView)> {
    let rows = projections::cycles::recent_cycles(conn, 20)?;
    let mut views = Vec::new();
    let mut amazon_success: Option<String> = None;
    let mut amazon_failure: Option<(String, String)> = None;
    let mut amazon_failing = false;
    for (index, row) in rows.iter().enumerate() {
        let Some(cycle) = &row.finished else {
            views.push(unfinished_cycle(row, running));
            continue;
        };
        let finished_at = row.finished_at.map(jst_time).unwrap_or_else(|| "—".into());
        let amazon_error = cycle
            .failures
            .iter()
            .find(|f| matches!(f.stage.as_str(), "check" | "ship" | "monitor"))
            .map(|f| f.error.clone())
            .or_else(|| {
                cycle.failed_sources.iter().find(|f| f.source == AMAZON_HEALTH_STREAM).map(|f| f.error.clone())
            });
        let ran_amazon = cycle.reports.iter().any(|r| matches!(r.stage.as_str(), "check" | "ship"));
        match amazon_error {
            Some(error) => {
                if index == 0 {
                    amazon_failing = true;
                }
                if amazon_failure.is_none() {
                    amazon_failure = Some((finished_at.clone(), error));
                }
            }
            None if ran_amazon && amazon_success.is_none() => amazon_success = Some(finished_at.clone()),
            None => {}
        }
        views.push(finished_cycle(row, cycle, finished_at));
    }
    let amazon = SourceView {
        name: "Amazon SP-API (MCF)".into(),
        last_success: amazon_success.unwrap_or_else(|| "—".into()),
        last_failure: amazon_failure.as_ref().map(|(at, _)| at.clone()).unwrap_or_else(|| "—".into()),
        failure_message: amazon_failure.map(|(_, m)| m).unwrap_or_default(),
        outage: if amazon_failing { "直近のサイクルで失敗".into() } else { "正常".into() },
        cursor: "— (注文ごとに処理)".into(),
        credentials: format!("{credentials} (LWAアクセストークンは1時間ごとに自動更新)"),
        healthy: !amazon_failing,
    };
    Ok((views, amazon))
}

/// A cycle with no CycleFinished: still running, or its process ended without recording it.
fn unfinished_cycle(row: &projections::cycles::CycleRow, running: Option<&crate::lease::Held>) -> CycleView {
    let alive = running.is_some_and(|held| held.holder == row.holder);
    CycleView {
        started: jst_time(row.started_at),
        finished: if alive {
            "実行中 (running)".into()
        } else {
            "中断 (プロセス終了: process ended)".into()
        },
        duration: "—".into(),
        stages: vec![format!("実行者 {}", row.holder)],
        failures: if alive {
            vec![]
        } else {
            vec!["記録なしで終了しました。次のサイクルが続きを行います (the next cycle resumes)".into()]
        },
    }
}

/// A finished cycle: each stage's counts, and whatever failed.
fn finished_cycle(
    row: &projections::cycles::CycleRow,
    cycle: &events::system::CycleFinished,
    finished_at: String,
) -> CycleView {
    let mut failures: Vec<String> = cycle.failures.iter().map(|f| format!("{}: {}", f.stage, f.error)).collect();
    failures.extend(
        cycle.failed_sources.iter().map(|f| format!("{} を読めませんでした: {}", source_name(&f.source), f.error)),
    );
    if cycle.interrupted {
        failures.push("シグナルで停止しました (stopped by a signal); 次のサイクルが続きを行います".into());
    }
    CycleView {
        started: jst_time(row.started_at),
        finished: finished_at,
        duration: format!("{:.1} s", cycle.duration_ms as f64 / 1000.0),
        stages: cycle
            .reports
            .iter()
            .map(|r| {
                format!(
                    "{}: 対象 {} / 進行 {} / 保留 {} / 要対応 {}",
                    r.stage, r.examined, r.advanced, r.deferred, r.needs_operator
                )
            })
            .collect(),
        failures,
    }
}

fn lease_text(running: Option<&crate::lease::Held>) -> String {
    match running {
        Some(held) => format!("サイクル実行中: {} (リース期限 {})", held.holder, jst_time(held.until)),
        None => "実行中のサイクルはありません".into(),
    }
}

pub async fn page(State(state): State<Arc<AppState>>) -> WebResult<Response> {
    let state_now = state.db.now();
    let now = jst_time(state_now);
    let today = state_now.with_timezone(&events::clock::jst()).date_naive();
    let page = state
        .db
        .read(move |conn| {
            let mut sources = Vec::new();
            let mut amazon_credentials = "—".to_owned();
            for (stream, source) in projections::source_status::sources(conn)? {
                if stream == AMAZON_HEALTH_STREAM {
                    amazon_credentials = credentials_text(&source, today);
                } else {
                    sources.push(source_view(conn, &stream, &source, today)?);
                }
            }
            let running = crate::lease::current_holder(conn, crate::cycle::LEASE, state_now)
                .map_err(|e| super::WebError::Internal(e.to_string()))?;
            let (cycles, amazon) = cycles(conn, amazon_credentials, running.as_ref())?;
            sources.push(amazon);
            let open_writes = open_writes(conn)?;
            let (stock, stock_held) = stock_status(conn)?;
            Ok(HealthPage { now, sources, open_writes, cycles, lease: lease_text(running.as_ref()), stock, stock_held })
        })
        .await?;
    Ok(Html(page.render()?).into_response())
}

/// 200 when the ledger answers a query, 503 otherwise. No login, no personal data.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let probe = state.db.read(|conn| projections::queries::ledger_answers(conn).map_err(super::WebError::from)).await;
    match probe {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "ledger unavailable\n").into_response(),
    }
}
