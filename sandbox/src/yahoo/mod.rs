//! A fake of the Yahoo! Shopping store order APIs and the Yahoo! ID token endpoint, from
//! `shared/specs/yahoo-shopping.md`: Bearer tokens, the public-key check (it decrypts the
//! signature with the store's private key and answers `X-SWS-Authorize-Status`), the 12-hour
//! session rule without it, orders hidden in their 10-minute buyer-cancel window, premium
//! delivery and slot fields, status and ship-status changes with Yahoo's validation, error XML,
//! and faults (outage, 5xx, slow, malformed XML); and the stock APIs setStock and getStock
//! (`stock`).

mod http;
mod routes;
mod stock;

use super::faults::Faults;
use crate::pacing::{Meter, Quota};
use crate::Clock;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct YahooSandboxConfig {
    pub client_id: String,
    pub client_secret: String,
    pub seller_id: String,
    pub refresh_token: String,
    pub private_key: RsaPrivateKey,
    pub key_version: String,
    /// How far a signature's timestamp may be from the sandbox's clock.
    pub timestamp_tolerance: ChronoDuration,
    /// Yahoo's ceiling is per API (10 a second in its old help; stores are told to keep to 1–2).
    /// With a quota, a call beyond it is answered 503 "Too many users" [unverified: Yahoo's
    /// other Web APIs answer so]; None lets every call through.
    pub quota: Option<Quota>,
}

impl YahooSandboxConfig {
    /// A fresh store with a newly generated 2048-bit key pair.
    pub fn generate(seller_id: &str) -> Self {
        let private_key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .unwrap_or_else(|e| panic!("generating a sandbox key: {e}"));
        Self {
            client_id: "dj00sandbox-client".into(),
            client_secret: "sandbox-secret".into(),
            seller_id: seller_id.to_owned(),
            refresh_token: "sandbox-refresh-token".into(),
            private_key,
            key_version: "1".into(),
            timestamp_tolerance: ChronoDuration::minutes(10),
            quota: None,
        }
    }

    /// The public key in PEM form, as Store Creator Pro issues it (YAHOO_PUBLIC_KEY).
    pub fn public_key_pem(&self) -> String {
        RsaPublicKey::from(&self.private_key).to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }
}

/// An order as a buyer places it.
#[derive(Debug, Clone)]
pub struct NewYahooOrder {
    pub pay_method: String,
    pub pay_method_name: String,
    pub ship_last: String,
    pub ship_first: String,
    pub prefecture: String,
    pub city: String,
    pub address1: String,
    pub address2: String,
    /// (SubCode, title, quantity, unit price)
    pub items: Vec<(String, String, u32, i64)>,
    /// 0 none, 1 優良配送, 2 翌日優良配送
    pub excellent_delivery: u8,
    pub ship_request_date: Option<NaiveDate>,
    pub ship_request_time: Option<String>,
}

impl NewYahooOrder {
    pub fn card(sku: &str, quantity: u32) -> Self {
        Self {
            pay_method: "payment_a1".into(),
            pay_method_name: "クレジットカード決済".into(),
            ship_last: "山田".into(),
            ship_first: "花子".into(),
            prefecture: "東京都".into(),
            city: "千代田区".into(),
            address1: "千代田1-1".into(),
            address2: "サンプルビル3F".into(),
            items: vec![(sku.to_owned(), "有機緑茶 100g".into(), quantity, 1280)],
            excellent_delivery: 0,
            ship_request_date: None,
            ship_request_time: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredOrder {
    pub id: String,
    pub placed: NewYahooOrder,
    pub ordered_at: DateTime<Utc>,
    pub status: u8,
    pub ship_status: u8,
    pub company: Option<String>,
    pub invoice: Option<String>,
    pub ship_date: Option<String>,
}

pub(crate) struct State {
    pub orders: BTreeMap<String, StoredOrder>,
    pub serial: u64,
    pub tokens: BTreeMap<String, DateTime<Utc>>,
    pub issued: u64,
    pub consented_at: DateTime<Utc>,
    pub consent_revoked: bool,
    pub calls: BTreeMap<String, u64>,
    /// One quota meter per API (operation), made at its first call.
    pub meters: BTreeMap<String, Meter>,
    /// Calls refused for coming faster than the quota.
    pub throttled: u64,
    pub ship_changes: u64,
    /// Stock rows by `item_code[:sub_code]`, made by setStock whether or not the item exists.
    pub stock: BTreeMap<String, StockRow>,
    /// The item codes the store has registered (only their rows read back as found).
    pub items: std::collections::BTreeSet<String>,
    /// The store's default for `allow_overdraft` when a setStock call leaves it out.
    pub store_allows_overdraft: bool,
    pub stock_writes: u64,
}

/// One stock row: the quantity (None: unlimited), whether buyers may order past it.
#[derive(Debug, Clone)]
pub(crate) struct StockRow {
    pub quantity: Option<i64>,
    pub allow_overdraft: bool,
    pub updated: DateTime<Utc>,
    pub close: bool,
}

pub(crate) struct Shared {
    pub config: YahooSandboxConfig,
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub faults: Faults,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a test sees of one order at Yahoo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub order_status: u8,
    pub ship_status: u8,
    pub company: Option<String>,
    pub invoice: Option<String>,
    pub ship_date: Option<String>,
}

/// The buyer's cancel window: orders are read-only and unlisted this long.
pub const CANCEL_WINDOW_MINUTES: i64 = 10;

pub struct YahooSandbox {
    shared: Arc<Shared>,
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl YahooSandbox {
    pub async fn start(config: YahooSandboxConfig, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let now = clock.now();
        let shared = Arc::new(Shared {
            config,
            clock,
            state: Mutex::new(State {
                orders: BTreeMap::new(),
                serial: 10_000_000,
                tokens: BTreeMap::new(),
                issued: 0,
                consented_at: now,
                consent_revoked: false,
                calls: BTreeMap::new(),
                meters: BTreeMap::new(),
                throttled: 0,
                ship_changes: 0,
                stock: BTreeMap::new(),
                items: Default::default(),
                store_allows_overdraft: false,
                stock_writes: 0,
            }),
            faults: Faults::default(),
        });
        let (address, task) = super::serve(routes::router(shared.clone())).await?;
        Ok(Self { shared, address, task })
    }

    /// YAHOO_API_BASE_URL
    pub fn api_base_url(&self) -> String {
        format!("http://{}/ShoppingWebService/V1", self.address)
    }

    /// YAHOO_AUTH_BASE_URL
    pub fn auth_base_url(&self) -> String {
        format!("http://{}/yconnect/v2", self.address)
    }

    pub fn config(&self) -> &YahooSandboxConfig {
        &self.shared.config
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The store registers an item (`item_code` or `item_code:sub_code`) with this stock.
    pub fn list_item(&self, code: &str, quantity: i64) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let allow_overdraft = state.store_allows_overdraft;
        state.items.insert(code.to_owned());
        state.stock.insert(
            code.to_owned(),
            StockRow { quantity: Some(quantity), allow_overdraft, updated: now, close: false },
        );
    }

    /// A registered item's stock: its quantity (None: unlimited) and whether it may be ordered
    /// past it; None for an unregistered code.
    pub fn stock(&self, code: &str) -> Option<(Option<i64>, bool)> {
        let state = self.shared.lock();
        state.stock.get(code).filter(|_| state.items.contains(code)).map(|r| (r.quantity, r.allow_overdraft))
    }

    /// The store's default for `allow_overdraft` (used when a setStock call leaves it out), and
    /// an item set to it in the store editor.
    pub fn allow_overdraft(&self, code: Option<&str>, allowed: bool) {
        let mut state = self.shared.lock();
        match code {
            Some(code) => {
                if let Some(row) = state.stock.get_mut(code) {
                    row.allow_overdraft = allowed;
                }
            }
            None => state.store_allows_overdraft = allowed,
        }
    }

    /// setStock calls that were applied (in whole or in part).
    pub fn stock_writes(&self) -> u64 {
        self.shared.lock().stock_writes
    }

    pub fn place(&self, order: NewYahooOrder) -> String {
        self.place_at(order, self.shared.clock.now())
    }

    /// An order the buyer placed at `ordered_at` (the demo places orders already out of their
    /// cancel window, so they show at once).
    pub fn place_at(&self, order: NewYahooOrder, ordered_at: DateTime<Utc>) -> String {
        let now = ordered_at;
        let mut state = self.shared.lock();
        state.serial += 1;
        let id = format!("{}-{}", self.shared.config.seller_id, state.serial);
        let prepaid = order.pay_method.starts_with("payment_b");
        state.orders.insert(
            id.clone(),
            StoredOrder {
                id: id.clone(),
                placed: order,
                ordered_at: now,
                status: 2,
                ship_status: if prepaid { 0 } else { 1 },
                company: None,
                invoice: None,
                ship_date: None,
            },
        );
        id
    }

    /// What the buyer placed as `id`, and when.
    pub fn placed(&self, id: &str) -> Option<(NewYahooOrder, DateTime<Utc>)> {
        self.shared.lock().orders.get(id).map(|o| (o.placed.clone(), o.ordered_at))
    }

    /// The buyer pays a prepaid order: it becomes shippable.
    pub fn pay(&self, id: &str) {
        if let Some(order) = self.shared.lock().orders.get_mut(id) {
            order.ship_status = 1;
        }
    }

    pub fn set_status(&self, id: &str, status: u8) {
        if let Some(order) = self.shared.lock().orders.get_mut(id) {
            order.status = status;
        }
    }

    pub fn revoke_consent(&self) {
        self.shared.lock().consent_revoked = true;
    }

    pub fn order_state(&self, id: &str) -> Option<OrderView> {
        self.shared.lock().orders.get(id).map(|o| OrderView {
            order_status: o.status,
            ship_status: o.ship_status,
            company: o.company.clone(),
            invoice: o.invoice.clone(),
            ship_date: o.ship_date.clone(),
        })
    }

    pub fn order_ids(&self) -> Vec<String> {
        self.shared.lock().orders.keys().cloned().collect()
    }

    pub fn calls(&self, operation: &str) -> u64 {
        self.shared.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// Calls refused for coming faster than the quota.
    pub fn throttled(&self) -> u64 {
        self.shared.lock().throttled
    }

    pub fn tokens_issued(&self) -> u64 {
        self.shared.lock().issued
    }
}

impl Drop for YahooSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}
