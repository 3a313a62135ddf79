//! A fake of Login with Amazon and the SP-API operations mcf-ledger uses, from
//! `shared/specs/amazon-sp-api.md`: same paths, JSON shapes, 403/400/429/500 bodies, per-operation
//! token buckets, fulfillment orders that move Received -> Planning -> Processing -> Complete
//! over (accelerated) time, stock that is reserved and released, ScheduledDelivery windows.

mod routes;
pub use routes::package_tracking;
mod validate;

use super::faults::Faults;
use crate::pacing::{Meter, Quota};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AmazonSandboxConfig {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// `expires_in` of issued access tokens.
    pub token_lifetime: Duration,
    /// Time from creation to Planning, Processing and Complete (sandbox time).
    pub to_planning: ChronoDuration,
    pub to_processing: ChronoDuration,
    pub to_complete: ChronoDuration,
    /// Days from now to the latest arrival of Standard, Expedited and Priority previews
    /// (None: Priority is not offered, DeliverySLAUnavailable).
    pub standard_days: i64,
    pub expedited_days: i64,
    pub priority_days: Option<i64>,
    /// Japan's address limits Amazon applies (Crossma's FBA error table): the name, and
    /// address lines 1-3 together, in characters.
    pub name_limit: usize,
    pub address_lines_limit: usize,
    /// Added to every answer (e.g. 50 ms for the benchmark).
    pub latency: Duration,
    /// Enforce Amazon's per-operation rate limits with 429s.
    pub enforce_rate_limits: bool,
    /// Inventory summaries per page (Amazon: up to 50).
    pub inventory_page_size: usize,
}

impl Default for AmazonSandboxConfig {
    fn default() -> Self {
        Self {
            client_id: "amzn1.application-oa2-client.sandbox".into(),
            client_secret: "sandbox-client-secret".into(),
            refresh_token: "Atzr|sandbox-refresh-token".into(),
            token_lifetime: Duration::from_secs(3600),
            to_planning: ChronoDuration::minutes(30),
            to_processing: ChronoDuration::hours(2),
            to_complete: ChronoDuration::hours(6),
            standard_days: 3,
            expedited_days: 1,
            priority_days: Some(1),
            name_limit: 15,
            address_lines_limit: 40,
            latency: Duration::ZERO,
            enforce_rate_limits: true,
            inventory_page_size: 50,
        }
    }
}

/// The delivery slots (JST hours) Amazon offers for ScheduledDelivery.
pub const DELIVERY_SLOTS: [(u32, u32); 5] = [(8, 12), (14, 16), (16, 18), (18, 20), (19, 21)];

#[derive(Debug, Clone)]
pub(crate) struct StoredOrder {
    pub id: String,
    pub request: Value,
    pub created_at: DateTime<Utc>,
    pub speed: String,
    /// (sellerSku, quantity) reserved at creation.
    pub lines: Vec<(String, u32)>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub unfulfillable: bool,
    pub forced_status: Option<String>,
    pub stock_released: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stock {
    pub fulfillable: u32,
    pub reserved: u32,
    pub shipped: u32,
}

#[derive(Debug)]
pub(crate) struct State {
    pub now_offset: ChronoDuration,
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub issued: u64,
    pub stock: BTreeMap<String, Stock>,
    pub orders: BTreeMap<String, StoredOrder>,
    pub create_requests: u64,
    pub inventory_pages: HashMap<String, (Vec<String>, DateTime<Utc>)>,
    /// Calls answered per operation (faulted and throttled ones included).
    pub calls: BTreeMap<&'static str, u64>,
    /// Calls answered 429 for coming faster than the operation's quota (injected 429s not counted).
    pub throttled: u64,
}

pub(crate) struct Shared {
    pub config: AmazonSandboxConfig,
    pub state: Mutex<State>,
    pub faults: Faults,
    pub buckets: HashMap<&'static str, Meter>,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.lock().now_offset
    }
}

/// A running SP-API sandbox on a loopback port.
pub struct AmazonSandbox {
    shared: Arc<Shared>,
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// What a test sees of one fulfillment order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub id: String,
    pub status: String,
    pub speed: String,
    pub request: Value,
}

impl AmazonSandbox {
    pub async fn start(config: AmazonSandboxConfig) -> std::io::Result<Self> {
        let buckets = [
            ("getInventorySummaries", Meter::new(Quota::new(2.0, 2))),
            ("getFulfillmentPreview", Meter::new(Quota::new(2.0, 30))),
            ("createFulfillmentOrder", Meter::new(Quota::new(2.0, 30))),
            ("getFulfillmentOrder", Meter::new(Quota::new(2.0, 30))),
            ("cancelFulfillmentOrder", Meter::new(Quota::new(2.0, 30))),
            ("listAllFulfillmentOrders", Meter::new(Quota::new(2.0, 30))),
        ]
        .into_iter()
        .collect();
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State {
                now_offset: ChronoDuration::zero(),
                tokens: HashMap::new(),
                issued: 0,
                stock: BTreeMap::new(),
                orders: BTreeMap::new(),
                create_requests: 0,
                inventory_pages: HashMap::new(),
                calls: BTreeMap::new(),
                throttled: 0,
            }),
            faults: Faults::default(),
            buckets,
        });
        let (address, task) = super::serve(routes::router(shared.clone())).await?;
        Ok(Self { shared, address, task })
    }

    /// The SP-API base URL (AMAZON_SP_API_BASE_URL).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The LWA token endpoint (AMAZON_LWA_TOKEN_URL).
    pub fn token_url(&self) -> String {
        format!("http://{}/auth/o2/token", self.address)
    }

    pub fn config(&self) -> &AmazonSandboxConfig {
        &self.shared.config
    }

    /// Sets the fulfillable stock of a seller SKU (FBA knows the SKU from then on).
    pub fn set_stock(&self, seller_sku: &str, fulfillable: u32) {
        self.shared.lock().stock.entry(seller_sku.to_owned()).or_default().fulfillable = fulfillable;
    }

    pub fn fulfillable(&self, seller_sku: &str) -> Option<u32> {
        self.shared.lock().stock.get(seller_sku).map(|s| s.fulfillable)
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every access token issued so far is expired from now on.
    pub fn expire_tokens(&self) {
        let past = self.shared.now() - ChronoDuration::seconds(1);
        self.shared.lock().tokens.values_mut().for_each(|expiry| *expiry = past);
    }

    pub fn tokens_issued(&self) -> u64 {
        self.shared.lock().issued
    }

    /// Moves sandbox time forward (orders progress, windows move).
    pub fn advance(&self, by: ChronoDuration) {
        self.shared.lock().now_offset += by;
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// createFulfillmentOrder requests received, accepted or not.
    /// Calls per operation so far (a benchmark's count against the rate limits).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.shared.lock().calls.clone()
    }

    /// Calls refused with 429 for coming faster than the quota.
    pub fn throttled(&self) -> u64 {
        self.shared.lock().throttled
    }

    pub fn create_requests(&self) -> u64 {
        self.shared.lock().create_requests
    }

    /// Forces a fulfillment order's status (as Amazon's sandbox-only status update does).
    pub fn force_status(&self, id: &str, status: &str) -> bool {
        match self.shared.lock().orders.get_mut(id) {
            Some(order) => {
                order.forced_status = Some(status.to_owned());
                true
            }
            None => false,
        }
    }

    pub fn orders(&self) -> Vec<OrderView> {
        let now = self.shared.now();
        let config = &self.shared.config;
        self.shared
            .lock()
            .orders
            .values()
            .map(|o| OrderView {
                id: o.id.clone(),
                status: routes::status_at(config, o, now).0,
                speed: o.speed.clone(),
                request: o.request.clone(),
            })
            .collect()
    }

    pub fn order(&self, id: &str) -> Option<OrderView> {
        self.orders().into_iter().find(|o| o.id == id)
    }
}

impl Drop for AmazonSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}
