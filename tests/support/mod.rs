//! A shop for integration tests: a real ledger file, a master.xlsx, the SP-API sandbox on a
//! loopback port, and the real Amazon client pointed at it.
#![allow(dead_code)]

pub mod mail_servers;

use chrono::{Duration, NaiveDate, Utc};
use events::clock::jst;
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::{self, OrderDetails, OrderEvent, OrderState};
use events::store::OpenMode;
use events::FixedClock;
use events::{Marketplace, OrderKey};
use mcf_ledger::amazon::{AmazonClient, AmazonConfig, LwaCredentials, RateLimits};
use mcf_ledger::config::Secret;
use mcf_ledger::cycle::{run_stage, Services, Stage};
use mcf_ledger::rakuten::{RakutenClient, RakutenConfig};
use mcf_ledger::stages::check::SkuMaster;
use mcf_ledger::stages::Steps;
use mcf_ledger::stages::{ShippingSettings, StageReport};
use mcf_ledger::transport::RetryPolicy;
use mcf_ledger::yahoo::signature::PublicKey;
use mcf_ledger::yahoo::{YahooClient, YahooConfig};
use projections::ledger::OrderAppend;
use projections::Ledger;
use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
use sandbox::rakuten::{RakutenSandbox, RakutenSandboxConfig};
use sandbox::yahoo::{YahooSandbox, YahooSandboxConfig};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Shop {
    pub dir: tempfile::TempDir,
    pub ledger: Ledger,
    pub sandbox: AmazonSandbox,
    pub services: Services,
    pub master: PathBuf,
    next_order: u32,
    pub rakuten: Option<RakutenSandbox>,
    pub yahoo: Option<YahooSandbox>,
    pub clock: Option<FixedClock>,
    /// Why this test ends with an outside write in doubt on purpose (None: it must not).
    leaves_open: Option<&'static str>,
}

/// Every test world is checked when it ends (after the crates.io test app's drop check): the
/// audit finds nothing, and no outside write is left in doubt (an email marked sending, a
/// marketplace write or an MCF create intended with no outcome), unless the test says why.
impl Drop for Shop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let audit = replay::audit::audit(self.ledger.store()).expect("the audit runs on the test's ledger");
        assert!(audit.anomalies.is_empty(), "the test left a ledger the audit refuses: {:?}", audit.anomalies);
        if self.leaves_open.is_some() {
            return;
        }
        let mut in_doubt = Vec::new();
        for stream in self.ledger.store().streams_in_category("order").unwrap() {
            let key = OrderKey::from_stream(&stream).unwrap();
            let state = self.ledger.order_state(&key).unwrap();
            for email in state.emails.iter().filter(|e| e.state == order::EmailState::Sending) {
                in_doubt.push(format!("{key}: email {} sending", email.email_id));
            }
            for (write, _) in state.writes.iter().filter(|(_, s)| **s == order::WriteState::Intended) {
                in_doubt.push(format!("{key}: {} intended", write.as_str()));
            }
            if state.mcf_intent.is_some()
                && state.mcf_order_id.is_none()
                && state.status == Some(order::Status::ShippingRequested)
            {
                in_doubt.push(format!("{key}: MCF create intended"));
            }
        }
        assert!(in_doubt.is_empty(), "the test ended with outside writes in doubt: {in_doubt:?}");
    }
}

pub fn yahoo_config(sandbox: &YahooSandbox, public_key_pem: &str, clock: Arc<dyn events::Clock>) -> YahooConfig {
    let config = sandbox.config();
    YahooConfig {
        client_id: config.client_id.clone(),
        client_secret: Secret::new(config.client_secret.clone()),
        seller_id: config.seller_id.clone(),
        refresh_token: Secret::new(config.refresh_token.clone()),
        public_key: PublicKey::load(public_key_pem, &config.key_version).unwrap(),
        api_base_url: sandbox.api_base_url(),
        auth_base_url: sandbox.auth_base_url(),
        retry: RetryPolicy::fast(),
        rate: (50.0, 50),
        clock,
    }
}

pub fn rakuten_config(sandbox: &RakutenSandbox) -> RakutenConfig {
    RakutenConfig {
        service_secret: Secret::new(sandbox.config().service_secret.clone()),
        license_key: Secret::new(sandbox.config().license_key.clone()),
        base_url: sandbox.base_url(),
        retry: RetryPolicy::fast(),
        rate: (50.0, 50),
        async_settle: std::time::Duration::from_secs(600),
    }
}

pub fn client_config(sandbox: &AmazonSandbox, retry: RetryPolicy) -> AmazonConfig {
    let config = sandbox.config();
    AmazonConfig {
        credentials: LwaCredentials {
            client_id: config.client_id.clone(),
            client_secret: Secret::new(config.client_secret.clone()),
            refresh_token: Secret::new(config.refresh_token.clone()),
        },
        marketplace_id: "A1VC38T7YXB528".into(),
        sp_api_base_url: sandbox.base_url(),
        lwa_token_url: sandbox.token_url(),
        retry,
        rate_limits: RateLimits::default(),
    }
}

/// master.xlsx with a `SKUMapping` sheet.
pub fn write_master(path: &std::path::Path, rows: &[(&str, &str, u32)]) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("SKUMapping").unwrap();
    for (c, title) in ["marketplace_sku", "seller_sku", "quantity"].iter().enumerate() {
        sheet.write_string(0, c as u16, *title).unwrap();
    }
    for (r, (key, seller, quantity)) in rows.iter().enumerate() {
        let row = r as u32 + 1;
        sheet.write_string(row, 0, *key).unwrap();
        sheet.write_string(row, 1, *seller).unwrap();
        sheet.write_number(row, 2, f64::from(*quantity)).unwrap();
    }
    workbook.save(path).unwrap();
}

impl Shop {
    pub async fn open(config: AmazonSandboxConfig) -> Self {
        Self::open_with(config, RetryPolicy::fast()).await
    }

    pub async fn open_with(config: AmazonSandboxConfig, retry: RetryPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = AmazonSandbox::start(config).await.unwrap();
        let ledger = Ledger::open(&dir.path().join("shop.db"), OpenMode::CreateIfMissing).unwrap();
        let master = dir.path().join("master.xlsx");
        write_master(&master, &[("tea-100", "JP-TEA-100", 1), ("tea-3pack", "JP-TEA-100", 3), ("cup", "JP-CUP", 1)]);
        let services = Services {
            shutdown: Default::default(),
            amazon: AmazonClient::new(client_config(&sandbox, retry)).unwrap(),
            rakuten: None,
            yahoo: None,
            imap: None,
            mailer: None,
            alerts: mcf_ledger::stages::stale::AlertSettings {
                admin_email: Some("admin@example.jp".into()),
                stale_after: Duration::hours(48),
                credential_expiries: vec![],
            },
            customer_mail: Default::default(),
            sku_master: SkuMaster::new(master.clone()),
            shipping: ShippingSettings {
                notification_email: Some("shop@example.jp".into()),
                ..ShippingSettings::default()
            },
            poll: Default::default(),
            stock: Default::default(),
        };
        Self {
            dir,
            ledger,
            sandbox,
            services,
            master,
            next_order: 0,
            rakuten: None,
            yahoo: None,
            clock: None,
            leaves_open: None,
        }
    }

    /// A shop that also sells on Rakuten. The ledger and the RMS sandbox share `clock`, so a
    /// test can let hours pass (an outage) in an instant.
    pub async fn with_rakuten(clock: FixedClock) -> Self {
        Self::with_rakuten_config(clock, RakutenSandboxConfig::default()).await
    }

    pub async fn with_rakuten_config(clock: FixedClock, config: RakutenSandboxConfig) -> Self {
        let mut shop = Self::open(AmazonSandboxConfig::default()).await;
        let path = shop.database();
        drop(std::mem::replace(
            &mut shop.ledger,
            Ledger::open_with_clock(&path, OpenMode::MustExist, Arc::new(clock.clone())).unwrap(),
        ));
        let rakuten =
            RakutenSandbox::start(config, mcf_ledger::demo::sandbox_clock(Arc::new(clock.clone()))).await.unwrap();
        shop.services.rakuten = Some(RakutenClient::new(rakuten_config(&rakuten)).unwrap());
        shop.rakuten = Some(rakuten);
        shop.clock = Some(clock);
        shop
    }

    /// A shop that sells on Yahoo! Shopping as `seller_id` (which may contain dashes).
    pub async fn with_yahoo(clock: FixedClock, seller_id: &str) -> Self {
        Self::with_yahoo_config(clock, YahooSandboxConfig::generate(seller_id)).await
    }

    pub async fn with_yahoo_config(clock: FixedClock, config: YahooSandboxConfig) -> Self {
        let mut shop = Self::open(AmazonSandboxConfig::default()).await;
        let path = shop.database();
        drop(std::mem::replace(
            &mut shop.ledger,
            Ledger::open_with_clock(&path, OpenMode::MustExist, Arc::new(clock.clone())).unwrap(),
        ));
        let yahoo =
            YahooSandbox::start(config, mcf_ledger::demo::sandbox_clock(Arc::new(clock.clone()))).await.unwrap();
        shop.services.yahoo = Some(
            YahooClient::new(yahoo_config(&yahoo, &yahoo.config().public_key_pem(), Arc::new(clock.clone()))).unwrap(),
        );
        shop.yahoo = Some(yahoo);
        shop.clock = Some(clock);
        shop
    }

    /// This test ends with an outside write in doubt on purpose (`why` says so).
    pub fn leaves_open(&mut self, why: &'static str) {
        self.leaves_open = Some(why);
    }

    pub fn store(&self) -> &YahooSandbox {
        self.yahoo.as_ref().expect("a shop with Yahoo")
    }

    pub fn rms(&self) -> &RakutenSandbox {
        self.rakuten.as_ref().expect("a shop with Rakuten")
    }

    pub fn advance(&self, by: Duration) {
        self.clock.as_ref().expect("a shop with its own clock").advance(by);
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("shop.db")
    }

    /// Japan's date today, as the sandbox sees it.
    pub fn today(&self) -> NaiveDate {
        self.sandbox.now().with_timezone(&jst()).date_naive()
    }

    /// A verified Yahoo order for `quantity` of `sku`, adjusted by `edit`.
    pub fn place(&mut self, sku: &str, quantity: u32, edit: impl FnOnce(&mut OrderDetails)) -> OrderKey {
        self.next_order += 1;
        let key = OrderKey::new(Marketplace::Yahoo, &format!("shop-{:08}", self.next_order)).unwrap();
        let mut details = order::sample::details("山田 太郎", sku, quantity);
        details.ordered_at =
            (Utc::now() - Duration::minutes(i64::from(100 - self.next_order.min(99)))).with_timezone(&jst());
        edit(&mut details);
        let events = vec![
            order::sample::detected(&key, order::DetectionSource::Api),
            OrderEvent::OrderDetailsRecorded(details),
            OrderEvent::OrderVerified(order::Note::default()),
        ];
        self.append(&key, events, Actor::reactor("receive"));
        key
    }

    pub fn append(&mut self, key: &OrderKey, events: Vec<OrderEvent>, actor: Actor) {
        let appends = events.into_iter().map(OrderAppend::from).collect();
        self.ledger.append_order(key, ExpectedVersion::Any, appends, Meta::by(actor)).unwrap();
    }

    pub async fn run(&mut self, stage: Stage) -> Vec<StageReport> {
        run_stage(&mut self.ledger, &self.services, stage, Steps::unbounded())
            .await
            .unwrap_or_else(|e| panic!("{stage}: {e}"))
    }

    pub async fn run_all(&mut self) {
        for stage in [Stage::Check, Stage::Ship, Stage::Monitor] {
            self.run(stage).await;
        }
    }

    pub fn state(&self, key: &OrderKey) -> OrderState {
        self.ledger.order_state(key).unwrap()
    }

    pub fn status(&self, key: &OrderKey) -> order::Status {
        self.state(key).status.unwrap()
    }

    pub fn operator_sets(&mut self, key: &OrderKey, to: order::Status, reason: &str) {
        self.ledger.operator_set_status(key, to, reason, Meta::by(Actor::operator("tanaka")), None).unwrap();
    }
}
