//! The order list: status tabs with counts, marketplace, search by anything on the label, order
//! date range, sorting and paging, with the bulk actions' form.

use super::{marketplace_label, PAGE_SIZE};
use crate::web::security::Operator;
use crate::web::views::{href, jst, Badge, Choice};
use crate::web::{parse_page, AppState, WebError, WebResult};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use events::order::Status;
use events::Marketplace;
use projections::queries::{self, OrderFilter, OrderRow, OrderSort};
use serde::Deserialize;
use std::sync::Arc;

/// The list's query, shared by its CSV export (which ignores `page`).
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) mp: String,
    #[serde(default)]
    pub(super) q: String,
    /// Order date range, JST days (`2026-12-01`).
    #[serde(default)]
    pub(super) from: String,
    #[serde(default)]
    pub(super) to: String,
    #[serde(default)]
    pub(super) sort: String,
    #[serde(default)]
    page: String,
    /// For the export: `sjis` (CP932) instead of UTF-8 with a BOM.
    #[serde(default)]
    pub(super) encoding: String,
}

/// The filter a query asks for (every order when nothing is set); a value the list cannot
/// read is refused with what it expected.
pub(super) fn filter_of(query: &ListQuery) -> WebResult<OrderFilter> {
    let status = match query.status.trim() {
        "" => None,
        text => Some(text.parse::<Status>().map_err(|_| {
            WebError::BadRequest(format!("ステータス「{}」はありません", text.chars().take(40).collect::<String>()))
        })?),
    };
    let marketplace = match query.mp.trim() {
        "" => None,
        text => Some(text.parse::<Marketplace>().map_err(|_| {
            WebError::BadRequest(format!("マーケット「{}」はありません", text.chars().take(40).collect::<String>()))
        })?),
    };
    let sort = match query.sort.trim() {
        "" => OrderSort::default(),
        text => OrderSort::parse(text).ok_or_else(|| WebError::BadRequest("並び順が正しくありません".into()))?,
    };
    let date = |text: &str, which: &str| -> WebResult<Option<chrono::NaiveDate>> {
        match text.trim() {
            "" => Ok(None),
            text => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| WebError::BadRequest(format!("{which}は 2026-12-01 の形で入力してください"))),
        }
    };
    let search = query.q.trim().chars().take(100).collect::<String>();
    Ok(OrderFilter {
        status,
        marketplace,
        search: (!search.is_empty()).then_some(search),
        ordered_from: date(&query.from, "注文日（から）")?,
        ordered_to: date(&query.to, "注文日（まで）")?,
        sort,
        limit: None,
        offset: 0,
    })
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
    pub from: String,
    pub to: String,
    /// The CSV of this very list, in UTF-8 (with a BOM, for Excel) and Shift_JIS.
    pub export_utf8: String,
    pub export_sjis: String,
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
    let page = parse_page(&query.page)?;
    let filter = OrderFilter { limit: Some(PAGE_SIZE + 1), offset: (page - 1) * PAGE_SIZE, ..filter_of(&query)? };
    let (status, marketplace, sort) = (filter.status, filter.marketplace, filter.sort);
    let search = filter.search.clone().unwrap_or_default();
    let (from, to) = (query.from.trim().to_owned(), query.to.trim().to_owned());
    let (mut rows, counts) =
        state.db.read(move |conn| Ok((queries::list_orders(conn, &filter)?, queries::status_counts(conn)?))).await?;
    let has_next = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);

    let status_text = status.map(|s| s.as_str()).unwrap_or("");
    let mp_text = marketplace.map(|m| m.as_str()).unwrap_or("");
    let sort_text = if sort == OrderSort::default() { "" } else { sort.as_str() };
    let link = |status: &str, page: usize| {
        let page = if page > 1 { page.to_string() } else { String::new() };
        href(
            "/",
            &[
                ("status", status),
                ("mp", mp_text),
                ("q", &search),
                ("from", &from),
                ("to", &to),
                ("sort", sort_text),
                ("page", &page),
            ],
        )
    };
    let export = |encoding: &str| {
        href(
            "/orders.csv",
            &[
                ("status", status_text),
                ("mp", mp_text),
                ("q", &search),
                ("from", &from),
                ("to", &to),
                ("sort", sort_text),
                ("encoding", encoding),
            ],
        )
    };
    let tabs = status_tabs(&counts, status, &link);
    let page_view = OrdersPage {
        csrf: state.csrf_token(&operator),
        tabs,
        status: status_text.into(),
        marketplaces: marketplace_choices(marketplace),
        sorts: sort_choices(sort),
        q: search.clone(),
        from: from.clone(),
        to: to.clone(),
        export_utf8: export(""),
        export_sjis: export("sjis"),
        rows: rows.iter().map(RowView::of).collect(),
        page,
        prev_href: (page > 1).then(|| link(status_text, page - 1)),
        next_href: has_next.then(|| link(status_text, page + 1)),
        legend: Status::ALL.into_iter().map(Badge::of).collect(),
        bulk_targets: [Status::Verified, Status::Received, Status::ShippingRequested]
            .into_iter()
            .map(|target| Choice {
                value: target.as_str().into(),
                label: format!("{} {}", target.as_str(), target.label()),
                selected: false,
            })
            .collect(),
    };
    Ok(Html(page_view.render()?).into_response())
}

/// One tab per status with its count, and ALL first.
fn status_tabs(counts: &[(Status, i64)], status: Option<Status>, link: &dyn Fn(&str, usize) -> String) -> Vec<Tab> {
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
    tabs
}

fn marketplace_choices(marketplace: Option<Marketplace>) -> Vec<Choice> {
    let mut choices = vec![Choice { value: String::new(), label: "すべて".into(), selected: marketplace.is_none() }];
    choices.extend(Marketplace::ALL.into_iter().map(|m| Choice {
        value: m.as_str().into(),
        label: marketplace_label(m.as_str()).into(),
        selected: marketplace == Some(m),
    }));
    choices
}

fn sort_choices(sort: OrderSort) -> Vec<Choice> {
    [
        (OrderSort::UpdatedDesc, "更新が新しい順"),
        (OrderSort::UpdatedAsc, "更新が古い順"),
        (OrderSort::OrderedDesc, "注文日が新しい順"),
        (OrderSort::OrderedAsc, "注文日が古い順"),
        (OrderSort::Number, "注文番号順"),
    ]
    .into_iter()
    .map(|(s, label)| Choice { value: s.as_str().into(), label: label.into(), selected: s == sort })
    .collect()
}
