//! 在庫連携: what each listing is told, from what (FBA's reading, the units open orders hold,
//! the buffer), what each marketplace last showed, each write's outcome, and the brake's hold
//! with its confirm button.

use super::security::Operator;
use super::{field, AppState, FormPairs, WebError, WebResult};
use crate::config::StockSync;
use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use events::Marketplace;
use std::sync::Arc;

pub struct RowView {
    pub marketplace: &'static str,
    pub marketplace_sku: String,
    pub key: String,
    pub seller_sku: String,
    /// A set of different products: each component and the sets it makes (empty otherwise).
    pub set: String,
    pub units: u32,
    pub fba: String,
    pub allotted: u32,
    pub buffer: u32,
    pub quantity: String,
    pub published: String,
    pub problem: String,
}

pub struct MarketplaceView {
    pub name: &'static str,
    pub last_outcome: String,
    /// A write whose answer was lost, read back at the next run.
    pub pending: Option<usize>,
}

#[derive(Template)]
#[template(path = "web/stock.html")]
pub struct StockPage {
    pub mode: &'static str,
    pub master: String,
    pub last_reading: String,
    pub last_run: String,
    pub held: Option<Vec<String>>,
    pub confirmed: bool,
    pub marketplaces: Vec<MarketplaceView>,
    pub rows: Vec<RowView>,
    pub csrf: String,
    pub notice: Option<&'static str>,
}

fn marketplace_name(marketplace: Marketplace) -> &'static str {
    match marketplace {
        Marketplace::Rakuten => "楽天",
        Marketplace::Yahoo => "Yahoo!",
    }
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>,
) -> WebResult<Response> {
    let settings = state.settings.stock;
    let master_path = state.settings.sku_master.clone();
    let csrf = state.csrf_token(&operator);
    let notice = (field(&query, "done") == "confirmed").then_some("承認しました。次のサイクルでモールに反映します。");
    let page = state
        .db
        .write(move |ledger| {
            // Without a master (none recorded, the file unreadable) there is no plan, but the
            // sync's state and its hold still show.
            let plan = crate::stages::stock::current_plan(ledger, &master_path, Marketplace::ALL.to_vec(), settings)
                .map_err(|e| e.to_string());
            let sync = crate::stages::stock::sync::sync_state(ledger)?;
            let mut marketplaces = Vec::new();
            let mut problems = std::collections::BTreeMap::new();
            for marketplace in Marketplace::ALL {
                let published = crate::stages::stock::sync::published(ledger, marketplace)?;
                for (sku, (problem, _)) in &published.problems {
                    problems.insert((marketplace, sku.clone()), problem.clone());
                }
                marketplaces.push(MarketplaceView {
                    name: marketplace_name(marketplace),
                    last_outcome: published.last_outcome.clone().unwrap_or_else(|| "まだ書き込んでいません".into()),
                    pending: published.pending.as_ref().map(|p| p.rows.len()),
                });
            }
            let shown = |n: Option<u32>| n.map_or_else(|| "—".to_owned(), |n| n.to_string());
            let plan_rows = plan.as_ref().map(|p| p.rows.clone()).unwrap_or_default();
            let rows = plan_rows
                .iter()
                .map(|row| RowView {
                    marketplace: marketplace_name(row.marketplace),
                    marketplace_sku: row.marketplace_sku.clone(),
                    key: row.key.as_ref().map_or_else(|| "（キーなし: 反映しません）".into(), |k| k.to_string()),
                    seller_sku: row.seller_sku.clone(),
                    set: set_text(&row.components),
                    units: row.units_per_item,
                    fba: row.fba_fulfillable.map_or_else(|| "未取得".into(), |n| n.to_string()),
                    allotted: row.allotted,
                    buffer: row.buffer,
                    quantity: shown(row.quantity),
                    published: shown(row.published),
                    problem: problems.get(&(row.marketplace, row.marketplace_sku.clone())).cloned().unwrap_or_default(),
                })
                .collect();
            let last_run = match &sync.last_finished {
                None => "まだ実行されていません".to_owned(),
                Some(f) if !f.unavailable.is_empty() => format!(
                    "書き込み {} 件、変更なし {} 件、問題 {} 件。応答のなかった相手: {}（次の実行で全件を書き直します）",
                    f.written,
                    f.unchanged,
                    f.problems,
                    f.unavailable.join(", ")
                ),
                Some(f) => format!("書き込み {} 件、変更なし {} 件、問題 {} 件", f.written, f.unchanged, f.problems),
            };
            Ok(StockPage {
                mode: match settings.sync {
                    StockSync::Off => "停止中 (STOCK_SYNC=off)",
                    StockSync::Plan => "計画のみ・反映しません (STOCK_SYNC=plan)",
                    StockSync::On => "反映中 (STOCK_SYNC=on)",
                },
                master: match &plan {
                    Ok(plan) => plan.master.clone(),
                    Err(error) => format!("計画を作れません: {error}"),
                },
                last_reading: plan
                    .as_ref()
                    .ok()
                    .and_then(|p| p.last_reading.as_deref())
                    .map_or_else(|| "未取得".into(), super::views::jst),
                last_run,
                held: sync.held,
                confirmed: sync.confirmed,
                marketplaces,
                rows,
                csrf,
                notice,
            })
        })
        .await?;
    Ok(Html(page.render()?).into_response())
}

/// The brake's button: the held plan is published at the next cycle.
pub async fn confirm(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let by = operator.0.clone();
    let confirmed = state.db.write(move |ledger| Ok(crate::stages::stock::sync::confirm(ledger, &by)?)).await?;
    if !confirmed {
        return Err(WebError::BadRequest(
            "承認を待っている在庫の計画はありません（承認済みか、止まっていません）".into(),
        ));
    }
    tracing::info!(operator = operator.0, "held stock plan confirmed");
    Ok(Redirect::to("/stock?done=confirmed").into_response())
}

/// `セット: JP-TEA-100×1（20セット分）、JP-CUP×2（3セット分）。少ない方で計算`; empty for a
/// single product.
fn set_text(components: &[events::stock::plan::ComponentFigures]) -> String {
    if components.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = components
        .iter()
        .map(|c| {
            let sets = c.sets.map_or_else(|| "FBA未取得".to_owned(), |n| format!("{n}セット分"));
            format!("{}×{}（{sets}）", c.seller_sku, c.units_per_item)
        })
        .collect();
    format!("セット: {}。最も少ない部品で計算", parts.join("、"))
}
