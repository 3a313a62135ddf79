//! The web admin: the operator's window on the ledger (axum + askama, templates in
//! `templates/web/`). Every page reads the projections; every action is an event appended with
//! the version the operator saw.

mod assets;
mod db;
mod event_log;
mod health;
pub mod incidents;
mod master;
mod orders;
mod security;
mod stock;
mod todo;
pub mod users;
mod views;

use crate::config::Config;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
pub use db::Db;
use projections::{Ledger, LedgerError};
pub use security::{LoginGuard, BLOCK_MINUTES, FAILURES_BEFORE_BLOCK, FAILURE_WINDOW_MINUTES, SECURITY_STREAM};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where an order's own page is in each marketplace's admin (`{order_number}`, `{seller_id}`,
/// `{order_id}` are replaced).
#[derive(Debug, Clone)]
pub struct MarketplaceLinks {
    pub rakuten: String,
    pub yahoo: String,
}

impl Default for MarketplaceLinks {
    fn default() -> Self {
        let default = |name| {
            crate::config::variables::VARIABLES
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.default)
                .unwrap_or_default()
                .to_owned()
        };
        Self { rakuten: default("RAKUTEN_ORDER_PAGE_URL"), yahoo: default("YAHOO_ORDER_PAGE_URL") }
    }
}

/// Who may log in, and whether a reverse proxy's X-Forwarded-For is believed.
#[derive(Clone)]
pub struct WebSettings {
    /// The guide's single login (WEB_USERNAME / WEB_PASSWORD); None with a users file alone.
    pub username: String,
    password: String,
    /// Named operators, beside the single login.
    pub users: Option<Arc<users::Users>>,
    pub marketplace_links: MarketplaceLinks,
    pub trust_forwarded_for: bool,
    /// How often cycles run: an order standing still longer than two of them is worth a look.
    pub cycle_interval: chrono::Duration,
    /// What Amazon accepts of an address: a correction must fit.
    pub address_limits: events::order::address::AddressLimits,
    /// STOCK_SYNC and the buffer, for the stock page's plan.
    pub stock: crate::config::StockSettings,
    /// The SKU master file (the stock page plans from the ledger's copy once one was recorded).
    pub sku_master: std::path::PathBuf,
}

impl std::fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSettings")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebSetupError {
    #[error("the web admin will not start without a login: set WEB_USERNAME and WEB_PASSWORD, or WEB_USERS_FILE")]
    NoPassword,
    #[error("{0}")]
    Users(#[from] users::UsersError),
    #[error("the web admin needs WEB_USERNAME")]
    NoUsername,
    #[error("no randomness for the CSRF key: {0}")]
    Random(String),
    #[error("reading the security stream: {0}")]
    Ledger(#[from] LedgerError),
}

impl WebSettings {
    pub fn new(username: &str, password: &str, trust_forwarded_for: bool) -> Result<Self, WebSetupError> {
        if password.is_empty() {
            return Err(WebSetupError::NoPassword);
        }
        if username.trim().is_empty() {
            return Err(WebSetupError::NoUsername);
        }
        Ok(Self {
            username: username.to_owned(),
            password: password.to_owned(),
            users: None,
            marketplace_links: MarketplaceLinks::default(),
            trust_forwarded_for,
            cycle_interval: chrono::Duration::minutes(10),
            address_limits: Default::default(),
            stock: Default::default(),
            sku_master: std::path::PathBuf::from("master.xlsx"),
        })
    }

    /// Named operators from a users file, alone or beside the single login.
    pub fn with_users_file(mut self, path: &std::path::Path) -> Result<Self, WebSetupError> {
        let users = users::Users::load(path)?;
        tracing::info!(path = %path.display(), operators = users.count(), "named operators loaded");
        self.users = Some(Arc::new(users));
        Ok(self)
    }

    pub fn from_config(config: &Config) -> Result<Self, WebSetupError> {
        let password = config.web.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default();
        let username = config.web.username.as_deref().unwrap_or("");
        let mut settings = match (&config.web.users_file, password.is_empty()) {
            // A users file alone: the single login is off (nobody matches an empty password).
            (Some(path), true) if username.trim().is_empty() => Self {
                username: String::new(),
                password: String::new(),
                users: None,
                marketplace_links: MarketplaceLinks::default(),
                trust_forwarded_for: config.web.trust_forwarded_for,
                cycle_interval: chrono::Duration::minutes(10),
                address_limits: Default::default(),
                stock: Default::default(),
                sku_master: std::path::PathBuf::new(),
            }
            .with_users_file(path)?,
            (Some(path), _) => Self::new(username, &password, config.web.trust_forwarded_for)?.with_users_file(path)?,
            (None, _) => Self::new(username, &password, config.web.trust_forwarded_for)?,
        };
        settings.marketplace_links = MarketplaceLinks {
            rakuten: config.web.rakuten_order_page.clone(),
            yahoo: config.web.yahoo_order_page.clone(),
        };
        settings.cycle_interval = chrono::Duration::minutes(i64::from(config.cycle_minutes));
        settings.address_limits = config.address_limits;
        settings.stock = config.stock;
        settings.sku_master = config.sku_master.clone();
        Ok(settings)
    }
}

/// What every handler shares.
pub struct AppState {
    pub db: Arc<Db>,
    pub(crate) settings: WebSettings,
    guard: std::sync::Mutex<LoginGuard>,
    /// Signs CSRF tokens; new per process, so a restart invalidates open forms (they reload).
    csrf_key: [u8; 32],
}

impl AppState {
    /// Opens the web admin's view of the ledger; the IP blocks recorded earlier still hold.
    pub fn new(ledger: Ledger, settings: WebSettings) -> Result<Arc<Self>, WebSetupError> {
        let guard = LoginGuard::load(&ledger)?;
        let db = Db::new(ledger).map_err(WebSetupError::Ledger)?;
        let mut csrf_key = [0u8; 32];
        getrandom::getrandom(&mut csrf_key).map_err(|e| WebSetupError::Random(e.to_string()))?;
        Ok(Arc::new(Self { db: Arc::new(db), settings, guard: std::sync::Mutex::new(guard), csrf_key }))
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(orders::list))
        .route("/orders.csv", get(orders::csv))
        .route("/orders/bulk", post(orders::bulk))
        .route("/orders/{order}", get(orders::detail))
        .route("/orders/{order}/status", post(orders::change_status))
        .route("/orders/{order}/cancel", post(orders::cancel))
        .route("/orders/{order}/address", post(orders::correct_address))
        .route("/orders/{order}/return", post(orders::return_handled))
        .route("/orders/{order}/slot", post(orders::choose_slot))
        .route("/orders/{order}/memo", post(orders::memo))
        .route("/orders/{order}/tasks", post(todo::mark_done))
        .route("/todo", get(todo::page))
        .route("/master", get(master::page))
        .route("/stock", get(stock::page))
        .route("/stock/confirm", post(stock::confirm))
        .route("/health", get(health::page))
        .route("/events", get(event_log::page))
        .route("/incidents", get(incidents::page))
        .route("/blobs/{sha256}", get(event_log::blob))
        .route("/assets/admin.css", get(assets::css))
        .route("/assets/admin.js", get(assets::js))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::guard))
        // Monitoring probes do not log in.
        .route("/healthz", get(health::healthz))
        .with_state(state)
}

/// Serves until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// A failed request, shown as a page that says what happened and what to do.
#[derive(Debug)]
pub enum WebError {
    NotFound(String),
    BadRequest(String),
    Forbidden(String),
    /// The order changed since the operator saw it; nothing was applied.
    Conflict(String),
    Internal(String),
}

impl From<LedgerError> for WebError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Stale { .. } => Self::Conflict(error.to_string()),
            LedgerError::UnknownOrder(_) => Self::NotFound(error.to_string()),
            LedgerError::Refused(refusal) => Self::BadRequest(refusal.0),
            LedgerError::Transition(_) => Self::BadRequest(error.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<events::store::StoreError> for WebError {
    fn from(error: events::store::StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<askama::Error> for WebError {
    fn from(error: askama::Error) -> Self {
        Self::Internal(format!("rendering the page: {error}"))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "見つかりません (not found)", m),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "実行できません (refused)", m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "拒否されました (forbidden)", m),
            Self::Conflict(m) => (
                StatusCode::CONFLICT,
                "この注文は変更されました。再読み込みしてください (this order changed, reload)",
                m,
            ),
            Self::Internal(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "内部エラー (internal error)", internal_error_text(&m))
            }
        };
        let page = views::MessagePage { title: title.to_owned(), message, back: None };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, format!("{title}\n")).into_response(),
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// What an operator reads of an internal error: no detail of the system (paths, SQL, the
/// ledger's layout), but a reference that finds the detail in the server's log.
fn internal_error_text(detail: &str) -> String {
    let reference = uuid::Uuid::now_v7().simple().to_string();
    let reference = &reference[reference.len() - 8..];
    tracing::error!(reference, error = %detail, "web request failed");
    format!(
        "処理中に内部エラーが発生しました。記録済みの内容は失われていません。時間をおいて再度お試しください。\
         続く場合は管理者に参照番号 {reference} をお伝えください（詳細はサーバーのログにあります）。"
    )
}

impl From<rusqlite::Error> for WebError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Internal(error.to_string())
    }
}

impl WebError {
    /// The message alone, for a row of a result table.
    pub fn message(&self) -> String {
        match self {
            Self::NotFound(m) | Self::BadRequest(m) | Self::Forbidden(m) => m.clone(),
            Self::Internal(m) => internal_error_text(m),
            Self::Conflict(m) => format!("この注文は変更されました。再読み込みしてください: {m}"),
        }
    }
}

/// A posted form as its pairs in order (a bulk form repeats `order`).
pub type FormPairs = Vec<(String, String)>;

/// A form field's value; "" when absent.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The order named in a path; an unparseable name is a page that does not exist.
pub fn parse_order_key(text: &str) -> WebResult<events::OrderKey> {
    text.parse()
        .map_err(|_| WebError::NotFound(format!("注文「{}」はありません", text.chars().take(80).collect::<String>())))
}

/// A `page` query value: 1 when empty.
pub fn parse_page(text: &str) -> WebResult<usize> {
    match text.trim() {
        "" => Ok(1),
        text => text
            .parse()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| WebError::BadRequest("ページ番号が正しくありません".into())),
    }
}
