//! A fake of the RMS 楽天ペイ受注API from `shared/specs/rakuten-rms.md`: ESA auth, the exact
//! `+0900` datetime form, 63-day windows and 1,000-row pages, getOrder batches of 100 with a
//! required version, orders that move 100 -> 200 -> 300 -> 500 (prepaid ones wait in 200 for
//! payment), cancellations 800/900, shipping records with add/update semantics, the license
//! expiry endpoint, and faults (an outage as on 2020-02-10, 5xx, slow, malformed); and the
//! 在庫API 2.0 bulk-upsert and bulk-get (`inventory`).

mod http;
mod inventory;
mod routes;
mod shipping;

use super::faults::Faults;
use crate::pacing::{Meter, Quota};
use crate::Clock;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Timelike, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct RakutenSandboxConfig {
    pub service_secret: String,
    pub license_key: String,
    pub license_expires: NaiveDate,
    pub shop_id: String,
    /// Card orders leave 200 (楽天処理中) for 300 this long after confirmOrder.
    pub processing_delay: ChronoDuration,
    /// RMS publishes no rate; integrators keep to about one call a second for the whole API.
    /// With a quota, a call beyond it is answered 429 (`ES02-01`); None lets every call through.
    pub quota: Option<Quota>,
    /// updateOrderShippingAsync requests are processed this long after RMS accepted them.
    pub async_delay: ChronoDuration,
}

impl Default for RakutenSandboxConfig {
    fn default() -> Self {
        Self {
            service_secret: "SP000001_sandbox".into(),
            license_key: "SL000001_sandbox".into(),
            license_expires: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap_or_default(),
            shop_id: "123456".into(),
            processing_delay: ChronoDuration::minutes(5),
            quota: None,
            async_delay: ChronoDuration::seconds(2),
        }
    }
}

/// An order as a shop places it in the sandbox.
#[derive(Debug, Clone)]
pub struct NewRakutenOrder {
    pub settlement_code: i64,
    pub settlement_name: String,
    pub buyer_family: String,
    pub buyer_first: String,
    pub prefecture: String,
    pub city: String,
    pub sub_address: String,
    /// (merchantDefinedSkuId, item name, units, price)
    pub items: Vec<(String, String, u32, i64)>,
    pub delivery_date: Option<NaiveDate>,
    pub shipping_term: Option<i64>,
    pub rakuten_confirm_flag: bool,
}

impl NewRakutenOrder {
    pub fn card(sku: &str, units: u32) -> Self {
        Self {
            settlement_code: 1,
            settlement_name: "クレジットカード".into(),
            buyer_family: "楽天".into(),
            buyer_first: "太郎".into(),
            prefecture: "東京都".into(),
            city: "世田谷区".into(),
            sub_address: "玉川1-14-1".into(),
            items: vec![(sku.to_owned(), "有機緑茶 100g".into(), units, 1280)],
            delivery_date: None,
            shipping_term: None,
            rakuten_confirm_flag: false,
        }
    }

    pub fn prepaid(sku: &str, units: u32) -> Self {
        Self { settlement_code: 9, settlement_name: "銀行振込".into(), ..Self::card(sku, units) }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredOrder {
    pub number: String,
    pub placed: NewRakutenOrder,
    pub ordered_at: DateTime<Utc>,
    pub progress: i64,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub paid: bool,
    pub basket_id: i64,
    /// (shippingDetailId, deliveryCompany, shippingNumber, shippingDate)
    pub shippings: Vec<(i64, String, String, String)>,
}

pub(crate) struct State {
    pub orders: BTreeMap<String, StoredOrder>,
    pub serial: u64,
    pub next_detail_id: i64,
    pub calls: BTreeMap<String, u64>,
    /// Calls answered 429 because they came faster than the quota.
    pub throttled: u64,
    pub license_expired: bool,
    /// updateOrderShippingAsync requests by requestId.
    pub async_shippings: BTreeMap<String, shipping::AsyncShipping>,
    pub request_serial: u64,
    /// Stock rows by (manageNumber, variantId).
    pub inventory: BTreeMap<(String, String), InventoryRow>,
    pub inventory_writes: u64,
    /// Items set to 在庫設定なし (item API `unlimitedInventoryFlag`), by manageNumber.
    pub unlimited_items: std::collections::BTreeSet<String>,
}

/// One SKU's stock at RMS; `registered` false for a row made by an upsert of a SKU the shop
/// has no item for (kept, but no read shows it).
#[derive(Debug, Clone)]
pub(crate) struct InventoryRow {
    pub quantity: i64,
    pub registered: bool,
    /// 在庫切れ時の注文受付 (item API `variants.{id}.backOrderFlag`): orderable at 0.
    pub back_order: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

impl InventoryRow {
    pub fn orphan(now: DateTime<Utc>) -> Self {
        Self { quantity: 0, registered: false, back_order: false, created: now, updated: now }
    }
}

pub(crate) struct Shared {
    pub config: RakutenSandboxConfig,
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub faults: Faults,
    /// One meter for every operation: the limit is the API's.
    pub meter: Option<Meter>,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves card orders on from 200 once Rakuten's processing is over, and paid prepaid ones;
    /// processes the async shipping requests whose time has come.
    pub fn settle(&self, state: &mut State) {
        self.process_async_shippings(state);
        let now = self.clock.now();
        for order in state.orders.values_mut() {
            if order.progress == 200 {
                let prepaid = matches!(order.placed.settlement_code, 9 | 13 | 14);
                let processed = order.confirmed_at.is_some_and(|at| now >= at + self.config.processing_delay);
                if (prepaid && order.paid) || (!prepaid && processed) {
                    order.progress = 300;
                }
            }
        }
    }
}

pub struct RakutenSandbox {
    shared: Arc<Shared>,
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RakutenSandbox {
    pub async fn start(config: RakutenSandboxConfig, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let config_quota = config.quota;
        let shared = Arc::new(Shared {
            config,
            clock,
            state: Mutex::new(State {
                orders: BTreeMap::new(),
                serial: 0,
                next_detail_id: 1,
                calls: BTreeMap::new(),
                throttled: 0,
                license_expired: false,
                async_shippings: BTreeMap::new(),
                request_serial: 0,
                inventory: BTreeMap::new(),
                inventory_writes: 0,
                unlimited_items: Default::default(),
            }),
            faults: Faults::default(),
            meter: config_quota.map(Meter::new),
        });
        let (address, task) = super::serve(routes::router(shared.clone())).await?;
        Ok(Self { shared, address, task })
    }

    /// RAKUTEN_API_BASE_URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn config(&self) -> &RakutenSandboxConfig {
        &self.shared.config
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// A buyer places an order now (orderProgress 100). Works during an outage too: the shop's
    /// storefront keeps taking orders while the API is down.
    pub fn place(&self, order: NewRakutenOrder) -> String {
        // RMS keeps order times to the second.
        let now = self.shared.clock.now().with_nanosecond(0).unwrap_or_else(|| self.shared.clock.now());
        let mut state = self.shared.lock();
        state.serial += 1;
        let date = now.with_timezone(&crate::jst()).format("%Y%m%d");
        let number = format!("{}-{date}-{:010}", self.shared.config.shop_id, state.serial);
        let basket_id = 1_000_000_000 + state.serial as i64;
        state.orders.insert(
            number.clone(),
            StoredOrder {
                number: number.clone(),
                placed: order,
                ordered_at: now,
                progress: 100,
                confirmed_at: None,
                paid: false,
                basket_id,
                shippings: vec![],
            },
        );
        number
    }

    /// What the buyer placed as `number`, and when.
    pub fn placed(&self, number: &str) -> Option<(NewRakutenOrder, DateTime<Utc>)> {
        self.shared.lock().orders.get(number).map(|o| (o.placed.clone(), o.ordered_at))
    }

    /// The buyer pays a prepaid order.
    pub fn pay(&self, number: &str) {
        if let Some(order) = self.shared.lock().orders.get_mut(number) {
            order.paid = true;
        }
    }

    /// The buyer or Rakuten cancels (900 キャンセル確定).
    pub fn cancel(&self, number: &str) {
        if let Some(order) = self.shared.lock().orders.get_mut(number) {
            order.progress = 900;
        }
    }

    pub fn set_progress(&self, number: &str, progress: i64) {
        if let Some(order) = self.shared.lock().orders.get_mut(number) {
            order.progress = progress;
        }
    }

    pub fn set_confirm_flag(&self, number: &str, flag: bool) {
        if let Some(order) = self.shared.lock().orders.get_mut(number) {
            order.placed.rakuten_confirm_flag = flag;
        }
    }

    pub fn expire_license(&self) {
        self.shared.lock().license_expired = true;
    }

    /// The shop registers a SKU (an item's variant) with this stock.
    pub fn list_sku(&self, manage_number: &str, variant_id: &str, quantity: i64) {
        let now = self.shared.clock.now();
        let key = (manage_number.to_ascii_lowercase(), variant_id.to_owned());
        self.shared
            .lock()
            .inventory
            .insert(key, InventoryRow { quantity, registered: true, back_order: false, created: now, updated: now });
    }

    /// A registered SKU's stock; None for a SKU the shop has no item for.
    pub fn inventory(&self, manage_number: &str, variant_id: &str) -> Option<i64> {
        let key = (manage_number.to_ascii_lowercase(), variant_id.to_owned());
        self.shared.lock().inventory.get(&key).filter(|r| r.registered).map(|r| r.quantity)
    }

    /// The shop sets a SKU to take orders when out of stock (在庫切れ時の注文受付).
    pub fn set_back_order(&self, manage_number: &str, variant_id: &str, on: bool) {
        let key = (manage_number.to_ascii_lowercase(), variant_id.to_owned());
        if let Some(row) = self.shared.lock().inventory.get_mut(&key) {
            row.back_order = on;
        }
    }

    /// bulk-upsert calls applied.
    pub fn inventory_writes(&self) -> u64 {
        self.shared.lock().inventory_writes
    }

    /// orderProgress now.
    pub fn progress(&self, number: &str) -> Option<i64> {
        let mut state = self.shared.lock();
        self.shared.settle(&mut state);
        state.orders.get(number).map(|o| o.progress)
    }

    /// Shipping records of the order: (deliveryCompany, shippingNumber, shippingDate), with
    /// the async requests whose time has come processed.
    pub fn shippings(&self, number: &str) -> Vec<(String, String, String)> {
        let mut state = self.shared.lock();
        self.shared.settle(&mut state);
        state
            .orders
            .get(number)
            .map(|o| o.shippings.iter().map(|(_, c, n, d)| (c.clone(), n.clone(), d.clone())).collect())
            .unwrap_or_default()
    }

    pub fn order_numbers(&self) -> Vec<String> {
        self.shared.lock().orders.keys().cloned().collect()
    }

    /// Calls answered per operation (faulted ones included).
    pub fn calls(&self, operation: &str) -> u64 {
        self.shared.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// Calls refused with 429 for coming faster than the quota.
    pub fn throttled(&self) -> u64 {
        self.shared.lock().throttled
    }

    /// The order as getOrder shows it (for assertions).
    pub fn order_json(&self, number: &str) -> Option<Value> {
        let mut state = self.shared.lock();
        self.shared.settle(&mut state);
        state.orders.get(number).map(|o| routes::order_model(&self.shared, o))
    }
}

impl Drop for RakutenSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}
