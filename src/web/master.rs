//! The SKU master as the system uses it: which workbook (file, hash, rows, when), the last one
//! refused and why, every mapping with the last FBA stock `check` saw for its Amazon SKU.

use super::views::jst;
use super::{AppState, WebResult};
use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;

pub struct WorkbookView {
    pub path: String,
    pub sha256: String,
    pub rows: String,
    pub at: String,
}

pub struct RejectionView {
    pub path: String,
    pub at: String,
    pub why: String,
}

pub struct MappingView {
    pub marketplace_sku: String,
    pub seller_sku: String,
    pub units: u32,
    pub fba: String,
    pub read_at: String,
}

#[derive(Template)]
#[template(path = "web/master.html")]
pub struct MasterPage {
    pub in_use: Option<WorkbookView>,
    pub rejection: Option<RejectionView>,
    /// Why the workbook in use could not be read back for its rows (it was recorded, but this
    /// build cannot parse it).
    pub unreadable: Option<String>,
    pub mappings: Vec<MappingView>,
}

pub async fn page(State(state): State<Arc<AppState>>) -> WebResult<Response> {
    let page = state
        .db
        .read(|conn| {
            let history = projections::queries::sku_master_history(conn, 50)?;
            let stock = projections::stock::fba_stock(conn)?;
            let loaded = history.iter().find(|r| r.rows.is_some());
            // A rejection matters while it is newer than the workbook in use.
            let rejection = history.iter().take_while(|r| r.rows.is_none()).next().map(|r| RejectionView {
                path: r.path.clone(),
                at: jst(&events::store::format_time(r.at)),
                why: r.rejected.clone().unwrap_or_default(),
            });
            let mut unreadable = None;
            let mut mappings = Vec::new();
            if let Some(blob) = loaded.and_then(|r| r.blob.as_deref()) {
                let bytes = projections::queries::raw_record(conn, blob)?.map(|(_, bytes)| bytes).unwrap_or_default();
                match crate::sku_master::parse_workbook(&bytes, loaded.map_or("", |r| r.path.as_str())) {
                    Ok(mapping) => {
                        let mut entries: Vec<_> = mapping.entries.into_iter().collect();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        // One line per component: a set of different products shows each.
                        mappings = entries
                            .into_iter()
                            .flat_map(|(marketplace_sku, mapped)| {
                                let stock = &stock;
                                mapped.components.into_iter().map(move |component| {
                                    let seen = stock.iter().find(|s| s.seller_sku == component.seller_sku.0);
                                    MappingView {
                                        marketplace_sku: marketplace_sku.clone(),
                                        seller_sku: component.seller_sku.to_string(),
                                        units: component.multiplier,
                                        fba: seen.map_or_else(|| "未取得".to_owned(), |s| s.fulfillable.to_string()),
                                        read_at: seen.map(|s| jst(&s.read_at)).unwrap_or_default(),
                                    }
                                })
                            })
                            .collect();
                    }
                    Err(error) => unreadable = Some(error.to_string()),
                }
            }
            Ok(MasterPage {
                in_use: loaded.map(|r| WorkbookView {
                    path: r.path.clone(),
                    sha256: r.sha256.clone(),
                    rows: r.rows.map_or_else(String::new, |n| n.to_string()),
                    at: jst(&events::store::format_time(r.at)),
                }),
                rejection,
                unreadable,
                mappings,
            })
        })
        .await?;
    Ok(Html(page.render()?).into_response())
}
