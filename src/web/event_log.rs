//! The event log: every event, newest first, filtered by stream, type and actor, paged by
//! position; and the raw emails and API responses kept beside the events.

use super::views::{href, jst};
use super::{AppState, WebError, WebResult};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use projections::queries::{self, EventLogFilter};
use serde::Deserialize;
use std::sync::Arc;

const PAGE_SIZE: usize = 100;

#[derive(Debug, Deserialize, Default)]
pub struct EventQuery {
    #[serde(default)]
    stream: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    actor: String,
    /// Show events before this position (the next page).
    #[serde(default)]
    before: String,
}

pub struct EventRow {
    pub position: i64,
    pub time: String,
    pub stream: String,
    pub stream_href: String,
    pub order_href: Option<String>,
    pub event_type: String,
    pub actor: String,
    pub data: String,
    pub blob: Option<String>,
}

#[derive(Template)]
#[template(path = "web/events.html")]
pub struct EventsPage {
    pub stream: String,
    pub event_type: String,
    pub actor: String,
    pub rows: Vec<EventRow>,
    pub next_href: Option<String>,
    pub first_href: Option<String>,
}

pub async fn page(State(state): State<Arc<AppState>>, Query(query): Query<EventQuery>) -> WebResult<Response> {
    let before: i64 = match query.before.trim() {
        "" => i64::MAX,
        text => text.parse().map_err(|_| WebError::BadRequest(format!("{text:?} is not an event position")))?,
    };
    let stream = query.stream.trim().chars().take(200).collect::<String>();
    let event_type = query.event_type.trim().chars().take(100).collect::<String>();
    let actor = query.actor.trim().chars().take(100).collect::<String>();
    let filter = EventLogFilter {
        before,
        stream: stream.clone(),
        event_type: event_type.clone(),
        actor: actor.clone(),
        limit: PAGE_SIZE + 1,
    };
    let mut rows = state.db.read(move |conn| Ok(queries::event_log(conn, &filter)?)).await?;
    let has_next = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let next_href = has_next.then(|| {
        let last = rows.last().map_or(0, |r| r.position).to_string();
        href("/events", &[("stream", &stream), ("type", &event_type), ("actor", &actor), ("before", &last)])
    });
    let first_href =
        (before != i64::MAX).then(|| href("/events", &[("stream", &stream), ("type", &event_type), ("actor", &actor)]));
    let rows = rows
        .into_iter()
        .map(|row| EventRow {
            position: row.position,
            time: jst(&row.recorded_at),
            stream_href: href("/events", &[("stream", &row.stream)]),
            order_href: row.stream.strip_prefix("order-").map(|key| format!("/orders/{key}")),
            stream: row.stream,
            event_type: row.event_type,
            actor: row.actor.unwrap_or_default(),
            data: row.data,
            blob: row.blob,
        })
        .collect();
    let page = EventsPage { stream, event_type, actor, rows, next_href, first_href };
    Ok(Html(page.render()?).into_response())
}

/// A kept raw email or API response, as a download (never rendered as a page).
pub async fn blob(State(state): State<Arc<AppState>>, Path(sha256): Path<String>) -> WebResult<Response> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebError::NotFound("その元データはありません".into()));
    }
    let name = sha256.clone();
    let found = state.db.read(move |conn| Ok(queries::raw_record(conn, &name)?)).await?;
    let Some((content_type, data)) = found else {
        return Err(WebError::NotFound(format!("元データ {sha256} はありません")));
    };
    let extension = if content_type.contains("rfc822") { "eml" } else { "txt" };
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{sha256}.{extension}\"")),
        ],
        data,
    )
        .into_response())
}
