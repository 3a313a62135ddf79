//! `/incidents`: the incident report of a time window (default: the last 24 hours), the same
//! report `mcf-ledger replay incident` prints, read from the events alone.

use super::{AppState, WebError, WebResult};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use replay::incident::{jst, IncidentReport};
use serde::Deserialize;
use std::sync::Arc;

pub struct FailingRow {
    pub source: String,
    pub first: String,
    pub last: String,
    pub failures: u32,
    pub kind: String,
    pub errors: String,
    pub declared: String,
    pub recovery: String,
}

pub struct AlertRowView {
    pub at: String,
    pub subject: String,
    pub outcome: String,
}

pub struct ArrivedRow {
    pub order: String,
    pub ordered: String,
    pub mail: String,
    pub api: String,
    pub backfilled: String,
    pub status: String,
}

pub struct StuckRow {
    pub order: String,
    pub status: String,
    pub period: String,
    pub length: String,
    pub why: String,
}

pub struct EffectRow {
    pub at: String,
    pub order: String,
    pub what: String,
    pub who: String,
}

pub struct ActionRow {
    pub at: String,
    pub actor: String,
    pub order: String,
    pub what: String,
}

/// The report as the pages show it.
pub struct IncidentView {
    pub from: String,
    pub to: String,
    pub events: u64,
    pub backfilled: usize,
    pub failing: Vec<FailingRow>,
    pub alerts: Vec<AlertRowView>,
    pub arrived: Vec<ArrivedRow>,
    pub stuck: Vec<StuckRow>,
    pub side_effects: Vec<EffectRow>,
    pub operator_actions: Vec<ActionRow>,
}

fn or_dash(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), jst)
}

impl From<&IncidentReport> for IncidentView {
    fn from(report: &IncidentReport) -> Self {
        Self {
            from: jst(report.from),
            to: jst(report.to),
            events: report.events,
            backfilled: report.backfilled(),
            failing: report.failing.iter().map(failing_row).collect(),
            alerts: report
                .alerts
                .iter()
                .map(|a| AlertRowView {
                    at: jst(a.at),
                    subject: a.subject.clone(),
                    outcome: match (&a.sent_at, &a.failed) {
                        (Some(at), _) => format!("送信済み {}", jst(*at)),
                        (None, Some(error)) => format!("送信失敗: {error}"),
                        (None, None) => "未送信".into(),
                    },
                })
                .collect(),
            arrived: report
                .arrived
                .iter()
                .map(|o| ArrivedRow {
                    order: o.order.clone(),
                    ordered: or_dash(o.ordered_at),
                    mail: or_dash(o.mail_detected_at),
                    api: or_dash(o.api_detected_at),
                    backfilled: if o.backfilled { "復旧時に取り込み".into() } else { String::new() },
                    status: o.status_now.map_or_else(|| "—".into(), |s| format!("{} {}", s.as_str(), s.label())),
                })
                .collect(),
            stuck: report
                .stuck
                .iter()
                .map(|s| StuckRow {
                    order: s.order.clone(),
                    status: format!("{} {}", s.status.as_str(), s.status.label()),
                    period: format!("{} 〜 {}", jst(s.from), s.until.map_or_else(|| "期間の終わりまで".into(), jst)),
                    length: format!("{}分", s.minutes),
                    why: s.while_failing.join(", "),
                })
                .collect(),
            side_effects: report
                .side_effects
                .iter()
                .map(|e| EffectRow {
                    at: jst(e.at),
                    order: e.order.clone(),
                    what: e.what.clone(),
                    who: if e.for_operator { "要対応".into() } else { "システムが解決".into() },
                })
                .collect(),
            operator_actions: report
                .operator_actions
                .iter()
                .map(|a| ActionRow {
                    at: jst(a.at),
                    actor: a.actor.clone(),
                    order: a.order.clone(),
                    what: a.what.clone(),
                })
                .collect(),
        }
    }
}

/// One source that failed during the incident, for the operator.
fn failing_row(p: &replay::incident::FailingPeriod) -> FailingRow {
    FailingRow {
        source: p.source.clone(),
        first: jst(p.first_failure),
        last: jst(p.last_failure),
        failures: p.failures,
        kind: if p.kinds.contains(&events::system::FailureKind::Credentials) {
            "認証エラー (更新が必要)".into()
        } else {
            "障害 (自動で再試行)".into()
        },
        errors: p.errors.join(" / "),
        declared: or_dash(p.outage_declared_at),
        recovery: match (p.recovered_at, p.backfilled) {
            (Some(at), Some(n)) => format!("{} (新しい注文 {n} 件)", jst(at)),
            (Some(at), None) => jst(at),
            (None, _) => "未復旧".into(),
        },
    }
}

/// The report as one HTML file with its own styles (`replay incident --html`).
#[derive(Template)]
#[template(path = "incident/standalone.html")]
pub struct IncidentFile {
    pub view: IncidentView,
}

#[derive(Template)]
#[template(path = "web/incidents.html")]
struct IncidentPage {
    view: IncidentView,
    from_input: String,
    to_input: String,
}

#[derive(Deserialize)]
pub struct Window {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn input(at: DateTime<Utc>) -> String {
    at.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M").to_string()
}

pub async fn page(State(state): State<Arc<AppState>>, Query(window): Query<Window>) -> WebResult<Response> {
    let now = state.db.now();
    let time = |text: &str, default: DateTime<Utc>, name: &str| -> WebResult<DateTime<Utc>> {
        match text.trim() {
            "" => Ok(default),
            text => events::clock::parse_time_input(text).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "{name} {:?} は日時ではありません (例: 2026-12-02 09:00)",
                    text.chars().take(40).collect::<String>()
                ))
            }),
        }
    };
    let to = time(&window.to, now, "終了")?;
    let from = time(&window.from, to - Duration::hours(24), "開始")?;
    if from >= to {
        return Err(WebError::BadRequest("開始は終了より前にしてください".into()));
    }
    let interval = state.settings.cycle_interval;
    let report = state
        .db
        .read(move |conn| {
            replay::incident::incident(conn, from, to, interval).map_err(|e| WebError::Internal(e.to_string()))
        })
        .await?;
    let page = IncidentPage { view: IncidentView::from(&report), from_input: input(from), to_input: input(to) };
    Ok(Html(page.render()?).into_response())
}
