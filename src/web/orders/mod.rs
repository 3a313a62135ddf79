//! Orders in the web admin: the list (filters, counts, search, sorting, paging) and its CSV
//! export, the detail page, and the operator's actions. Every action is appended with the
//! version the operator saw.

mod actions;
mod export;
mod list;
pub(crate) mod page;

pub use actions::{bulk, cancel, change_status, choose_slot, correct_address, memo, return_handled};
pub use export::csv;
pub use list::list;
pub use page::detail;

use super::{WebError, WebResult};

pub(crate) const PAGE_SIZE: usize = 50;

pub(super) fn parse_version(text: &str) -> WebResult<i64> {
    text.trim()
        .parse()
        .map_err(|_| WebError::BadRequest("フォームに注文の版がありません。ページを再読み込みしてください".into()))
}

pub(super) fn marketplace_label(marketplace: &str) -> &'static str {
    match marketplace {
        "rakuten" => "楽天",
        "yahoo" => "Yahoo!",
        _ => "?",
    }
}
