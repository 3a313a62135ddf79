//! The admin's stylesheet and its one small script, compiled into the binary (the CSP allows
//! only these, from this origin).

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../../templates/web/assets/admin.css");
const JS: &str = include_str!("../../templates/web/assets/admin.js");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
}

pub async fn js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], JS)
}
