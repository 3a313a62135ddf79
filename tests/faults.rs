//! The fault-injection suite: our promise, tested. Seeded runs of the whole pipeline (both
//! marketplaces, SP-API, the shop's IMAP mailbox, SMTP) with faults at every outside call
//! (timeouts, 5xx, 429, malformed bodies, hours-long outages, expired tokens, a mailbox that
//! refuses or drops the connection) and the process killed between an outside call and the
//! append that records it. After each run the faults are lifted, cycles run until
//! quiet, and the invariants are checked against the sandboxes' own records and the ledger:
//! every order placed is in the ledger exactly once (seen once by each detector, and every
//! order notice in the mailbox recorded once), at most one MCF order per order, no
//! customer email twice, tracking at its marketplace exactly once, a cancelled order has no
//! live MCF order, `audit` finds nothing and `replay verify` finds no difference.
//!
//! `FAULT_RUNS` and `FAULT_SEED` choose how many runs and from which seed (a failure names the
//! seed that reproduces its orders and faults; kill timing follows the wall clock).

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use events::order::{EmailState, Status};
use events::store::OpenMode;
use events::{Clock, FixedClock, Marketplace, OrderKey};
use mcf_ledger::amazon::AmazonClient;
use mcf_ledger::cycle::{run_cycle, Services, Stage};
use mcf_ledger::mail::imap::{ImapConfig, ImapSecurity};
use mcf_ledger::mail::smtp::{Mailer, SmtpConfig, SmtpSecurity};
use mcf_ledger::rakuten::{RakutenClient, RakutenConfig};
use mcf_ledger::stages::check::SkuMaster;
use mcf_ledger::stages::stale::AlertSettings;
use mcf_ledger::stages::ShippingSettings;
use mcf_ledger::transport::RetryPolicy;
use mcf_ledger::yahoo::{YahooClient, YahooConfig};
use projections::Ledger;
use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
use sandbox::faults::{Fault, Faults};
use sandbox::mailbox::{notices, MailAccount, MailSandbox, MailSandboxConfig};
use sandbox::rakuten::{NewRakutenOrder, RakutenSandbox, RakutenSandboxConfig};
use sandbox::yahoo::{NewYahooOrder, YahooSandbox, YahooSandboxConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::mail_servers::SmtpSink;

const AMAZON_OPERATIONS: [&str; 7] = [
    "token",
    "getInventorySummaries",
    "getFulfillmentPreview",
    "createFulfillmentOrder",
    "getFulfillmentOrder",
    "cancelFulfillmentOrder",
    "listAllFulfillmentOrders",
];
const RAKUTEN_OPERATIONS: [&str; 7] = [
    "searchOrder",
    "getOrder",
    "confirmOrder",
    "updateOrderShippingAsync",
    "getResultUpdateOrderShippingAsync",
    "inventories.bulk.upsert",
    "inventories.bulk.get",
];
const YAHOO_OPERATIONS: [&str; 7] =
    ["token", "orderList", "orderInfo", "orderStatusChange", "orderShipStatusChange", "setStock", "getStock"];
const MAIL_OPERATIONS: [&str; 2] = ["imap.greeting", "imap.fetch"];
/// The shop's mailbox, where the marketplaces send their order notices.
const SHOP_MAIL: &str = "shop@example.jp";

/// What the suite went through, printed at the end.
#[derive(Debug, Default)]
struct Tally {
    runs: u32,
    faults: u64,
    outages: u32,
    token_expiries: u32,
    kills: u32,
    orders: usize,
    cycles: u32,
    /// What the checked orders came to, so a pass is known not to be an empty one.
    shipped: usize,
    cancelled: usize,
    emails: usize,
    /// Order notices that reached the shop's mailbox.
    notices: usize,
}

/// One shop and its outside world for one run.
struct World {
    seed: u64,
    dir: tempfile::TempDir,
    /// None: the wall clock (child processes cannot share a test's clock).
    fixed: Option<FixedClock>,
    clock: Arc<dyn Clock>,
    amazon: AmazonSandbox,
    rakuten: RakutenSandbox,
    yahoo: YahooSandbox,
    mail: MailSandbox,
    master: PathBuf,
    smtp_port: u16,
    rng: fastrand::Rng,
    prepaid_unpaid: Vec<String>,
    /// Rakuten orders whose buyer will cancel once the shop has seen them.
    to_cancel: Vec<String>,
    cancelled: Vec<String>,
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        request_timeout: Duration::from_millis(600),
        ..RetryPolicy::default()
    }
}

impl World {
    async fn start(seed: u64, smtp_port: u16, fixed: Option<FixedClock>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = match &fixed {
            Some(fixed) => Arc::new(fixed.clone()),
            None => Arc::new(events::SystemClock),
        };
        let shared = clock.clone();
        // On the wall clock, MCF orders and RMS processing move on in seconds.
        let minute = if fixed.is_some() { ChronoDuration::minutes(1) } else { ChronoDuration::milliseconds(100) };
        let amazon = AmazonSandbox::start(AmazonSandboxConfig {
            to_planning: minute * 20,
            to_processing: minute * 40,
            to_complete: minute * 90,
            ..AmazonSandboxConfig::default()
        })
        .await
        .unwrap();
        for (sku, stock) in [("JP-TEA-100", 10_000), ("JP-CUP-ARITA", 10_000), ("JP-MATCHA-30", 0)] {
            amazon.set_stock(sku, stock);
        }
        // Each run its own shop id, so order numbers (and the emails naming them) never repeat.
        let rakuten = RakutenSandbox::start(
            RakutenSandboxConfig {
                shop_id: format!("{}", 200_000 + seed % 700_000),
                processing_delay: minute * 5,
                // Well inside the clients' settle time: 10 minutes in process, 2 s for cron.
                async_delay: minute * 2,
                ..RakutenSandboxConfig::default()
            },
            mcf_ledger::demo::sandbox_clock(shared.clone()),
        )
        .await
        .unwrap();
        let yahoo = YahooSandbox::start(
            YahooSandboxConfig::generate("fault-suite-store"),
            mcf_ledger::demo::sandbox_clock(shared),
        )
        .await
        .unwrap();
        let mail = MailSandbox::start(MailSandboxConfig {
            accounts: vec![MailAccount {
                user: "shop".into(),
                password: "imap-secret".into(),
                address: SHOP_MAIL.into(),
            }],
            ..MailSandboxConfig::default()
        })
        .await
        .unwrap();
        let master = dir.path().join("master.xlsx");
        mcf_ledger::demo::write_sample_master(&master).unwrap();
        // Stock sync is on: the shop's items are listed at both marketplaces.
        mcf_ledger::demo::list_sample_items(&rakuten, &yahoo);
        Ledger::open_with_clock(&dir.path().join("shop.db"), OpenMode::CreateIfMissing, clock.clone()).unwrap();
        Self {
            seed,
            dir,
            fixed,
            clock,
            amazon,
            rakuten,
            yahoo,
            mail,
            master,
            smtp_port,
            rng: fastrand::Rng::with_seed(seed),
            prepaid_unpaid: vec![],
            to_cancel: vec![],
            cancelled: vec![],
        }
    }

    fn database(&self) -> PathBuf {
        self.dir.path().join("shop.db")
    }

    /// What a freshly started process has: the ledger reopened and new clients (no tokens).
    fn start_process(&self) -> (Ledger, Services) {
        let clock = self.clock.clone();
        let ledger = Ledger::open_with_clock(&self.database(), OpenMode::MustExist, clock.clone()).unwrap();
        let yahoo_sandbox = self.yahoo.config();
        let services = Services {
            shutdown: Default::default(),
            amazon: AmazonClient::new(support::client_config(&self.amazon, retry())).unwrap(),
            rakuten: Some(
                RakutenClient::new(RakutenConfig { retry: retry(), ..support::rakuten_config(&self.rakuten) }).unwrap(),
            ),
            yahoo: Some(
                YahooClient::new(YahooConfig {
                    retry: retry(),
                    ..support::yahoo_config(&self.yahoo, &yahoo_sandbox.public_key_pem(), clock)
                })
                .unwrap(),
            ),
            imap: Some(ImapConfig {
                host: self.mail.host(),
                port: self.mail.imap_port(),
                username: "shop".into(),
                password: mcf_ledger::config::Secret::new("imap-secret"),
                mailbox: "INBOX".into(),
                security: ImapSecurity::Plain,
                accept_invalid_certs: false,
                timeout: Duration::from_millis(600),
            }),
            mailer: Some(
                Mailer::new(SmtpConfig {
                    host: "127.0.0.1".into(),
                    port: self.smtp_port,
                    credentials: None,
                    from: "shop@example.jp".into(),
                    security: SmtpSecurity::Plain,
                    accept_invalid_certs: false,
                    timeout: Duration::from_secs(5),
                })
                .unwrap(),
            ),
            alerts: AlertSettings {
                admin_email: Some("admin@example.jp".into()),
                stale_after: ChronoDuration::hours(48),
                credential_expiries: vec![],
            },
            customer_mail: Default::default(),
            sku_master: SkuMaster::new(self.master.clone()),
            shipping: ShippingSettings::default(),
            poll: Default::default(),
            stock: mcf_ledger::config::StockSettings { sync: mcf_ledger::config::StockSync::On, ..Default::default() },
        };
        (ledger, services)
    }

    /// Buyers place between zero and three orders of every kind the guide knows.
    fn buyers_order(&mut self) -> usize {
        let count = self.rng.usize(0..=3);
        for _ in 0..count {
            let item = match self.rng.u8(0..10) {
                0 => ("matcha-30", 1),     // out of stock at FBA
                1 => ("new-item-2027", 1), // not in the master
                2..=4 => ("tea-3pack", self.rng.u32(1..=2)),
                5 => ("cup", 1),
                6 => ("tea-cup-gift", 1), // a set of different products
                _ => ("tea-100", self.rng.u32(1..=3)),
            };
            let today = self.clock.now().with_timezone(&events::clock::jst()).date_naive();
            let id = match self.rng.u8(0..10) {
                0..=2 => self.rakuten.place(NewRakutenOrder::card(item.0, item.1)),
                3 => {
                    let number = self.rakuten.place(NewRakutenOrder::prepaid(item.0, item.1));
                    self.prepaid_unpaid.push(number.clone());
                    number
                }
                4 => {
                    let number = self.rakuten.place(NewRakutenOrder::card(item.0, item.1));
                    self.to_cancel.push(number.clone());
                    number
                }
                5..=6 => self.place_at_yahoo(NewYahooOrder::card(item.0, item.1)),
                7 => {
                    self.place_at_yahoo(NewYahooOrder { excellent_delivery: 1, ..NewYahooOrder::card(item.0, item.1) })
                }
                8 => {
                    let slot = if self.rng.bool() { "14:00～16:00" } else { "12:00～14:00" };
                    self.place_at_yahoo(NewYahooOrder {
                        ship_request_date: Some(today + ChronoDuration::days(3)),
                        ship_request_time: Some(slot.into()),
                        ..NewYahooOrder::card(item.0, item.1)
                    })
                }
                _ => self.place_at_yahoo(NewYahooOrder {
                    address1: "大手町一丁目二番三号 大手町グランドセントラルタワー北館アネックス棟 二十三階 ".repeat(3),
                    ..NewYahooOrder::card(item.0, item.1)
                }),
            };
            // Mail is the second detector, and not a reliable one: a third of the notices never come.
            if self.rng.u8(0..3) > 0 {
                self.mail_notice(&id);
            }
        }
        count
    }

    /// The marketplace's order notice to the shop's mailbox.
    fn mail_notice(&self, id: &str) {
        let jst = |at: chrono::DateTime<Utc>| at.with_timezone(&events::clock::jst()).fixed_offset();
        let notice = match (self.rakuten.placed(id), self.yahoo.placed(id)) {
            (Some((order, at)), _) => {
                let lines: Vec<notices::Line> = order.items.iter().map(|(_, t, n, p)| (t.clone(), *n, *p)).collect();
                notices::rakuten_order("テスト店", id, jst(at), "楽天 太郎", &order.settlement_name, &lines)
            }
            (None, Some((order, at))) => {
                let lines: Vec<notices::Line> = order.items.iter().map(|(_, t, n, p)| (t.clone(), *n, *p)).collect();
                notices::yahoo_order("テスト店", id, jst(at), "山田 花子", &lines)
            }
            (None, None) => panic!("{id} was placed nowhere"),
        };
        assert!(self.mail.deliver(SHOP_MAIL, notice));
    }

    /// On the test's clock the order waits out Yahoo's cancel window as time advances; on the
    /// wall clock the buyer ordered just before the window closed.
    fn place_at_yahoo(&self, order: NewYahooOrder) -> String {
        match self.fixed {
            Some(_) => self.yahoo.place(order),
            None => self.yahoo.place_at(order, Utc::now() - ChronoDuration::minutes(10) - ChronoDuration::seconds(1)),
        }
    }

    /// Buyers pay now and then, and cancel orders the shop has already seen.
    fn buyers_follow_up(&mut self, store: &events::EventStore, everyone: bool) {
        let unpaid = std::mem::take(&mut self.prepaid_unpaid);
        for number in unpaid {
            if everyone || self.rng.u8(0..3) == 0 {
                self.rakuten.pay(&number);
            } else {
                self.prepaid_unpaid.push(number);
            }
        }
        let waiting = std::mem::take(&mut self.to_cancel);
        for number in waiting {
            let key = OrderKey::new(Marketplace::Rakuten, &number).unwrap();
            let seen = store.stream_version(&key.stream()).unwrap() > 0;
            if seen && (everyone || self.rng.bool()) {
                self.rakuten.cancel(&number);
                self.cancelled.push(number);
            } else {
                self.to_cancel.push(number);
            }
        }
    }

    fn advance(&self, by: ChronoDuration) {
        if let Some(fixed) = &self.fixed {
            fixed.advance(by);
            self.amazon.advance(by);
        }
    }

    /// A random fault at one sandbox: a few failed calls of one operation (or of any), an
    /// outage, or expired tokens.
    fn inject(&mut self, tally: &mut Tally, outages: &mut Vec<(&'static str, u32)>) {
        let which = self.rng.u8(0..4);
        let (faults, operations): (&Faults, &[&str]) = match which {
            0 => (self.amazon.faults(), &AMAZON_OPERATIONS),
            1 => (self.rakuten.faults(), &RAKUTEN_OPERATIONS),
            2 => (self.yahoo.faults(), &YAHOO_OPERATIONS),
            _ => (self.mail.faults(), &MAIL_OPERATIONS),
        };
        let name = ["amazon", "rakuten", "yahoo", "mail"][usize::from(which)];
        let operation =
            if self.rng.u8(0..4) == 0 { None } else { Some(operations[self.rng.usize(..operations.len())]) };
        let fault = match self.rng.u8(0..12) {
            0..=2 => Fault::Status(*[500u16, 502, 503].get(self.rng.usize(0..3)).unwrap_or(&500)),
            3..=4 => Fault::Status(429),
            5..=6 => Fault::Malformed,
            7 => Fault::Slow(Duration::from_millis(self.rng.u64(100..900))),
            8 => Fault::ApplyThenHang(Duration::from_millis(900)),
            9 if outages.iter().all(|(n, _)| *n != name) => {
                // Down for a few rounds, each of which lets an hour or more pass.
                faults.start_outage(Fault::Status(503));
                outages.push((name, self.rng.u32(2..=4)));
                tally.outages += 1;
                return;
            }
            10 => {
                // Access tokens expire under the client's feet (Yahoo's after an hour).
                self.amazon.expire_tokens();
                self.advance(ChronoDuration::minutes(61));
                tally.token_expiries += 1;
                return;
            }
            _ => Fault::Status(500),
        };
        faults.inject(operation, fault, self.rng.u32(1..=4));
    }

    fn lift_faults(&self) {
        self.amazon.faults().lift();
        self.rakuten.faults().lift();
        self.yahoo.faults().lift();
        self.mail.faults().lift();
    }

    fn faults_injected(&self) -> u64 {
        self.amazon.faults().injected()
            + self.rakuten.faults().injected()
            + self.yahoo.faults().injected()
            + self.mail.faults().injected()
    }
}

/// Order events in the ledger (cycles' own records excluded).
fn order_events(ledger: &Ledger) -> i64 {
    ledger
        .store()
        .connection()
        .query_row("SELECT COUNT(*) FROM events WHERE stream LIKE 'order-%'", [], |row| row.get(0))
        .unwrap()
}

/// Orders whose MCF order Amazon is still working on: the run is not over until they ship.
fn parcels_on_the_way(ledger: &Ledger) -> bool {
    projections::queries::status_counts(ledger.store().connection())
        .unwrap()
        .iter()
        .any(|(status, count)| *status == Status::Shipping && *count > 0)
}

/// One seeded run: rounds of orders, faults and (sometimes killed) cycles, then quiet, then the
/// invariants.
async fn one_run(seed: u64, sink: &SmtpSink, tally: &mut Tally) {
    let mut world = World::start(seed, sink.port, Some(FixedClock::at(Utc::now()))).await;
    let (mut ledger, mut services) = world.start_process();
    let mut outages: Vec<(&'static str, u32)> = vec![];
    let rounds = world.rng.u32(6..=10);
    for _ in 0..rounds {
        tally.orders += world.buyers_order();
        world.buyers_follow_up(ledger.store(), false);
        for _ in 0..world.rng.u8(0..=2) {
            world.inject(tally, &mut outages);
        }
        let minutes = if outages.is_empty() { world.rng.i64(2..=30) } else { world.rng.i64(60..=120) };
        world.advance(ChronoDuration::minutes(minutes));

        // A kill at a random moment of the cycle: the process dies wherever it is (inside an
        // outside call, or between it and its append) and a new one starts from the file.
        let kill_after = (world.rng.u8(0..3) == 0).then(|| Duration::from_millis(world.rng.u64(0..400)));
        tally.cycles += 1;
        let finished = {
            let cycle = run_cycle(&mut ledger, &services, &Stage::ALL);
            match kill_after {
                Some(after) => tokio::select! {
                    report = cycle => Some(report),
                    _ = tokio::time::sleep(after) => None,
                },
                None => Some(cycle.await),
            }
        };
        match finished {
            Some(report) => {
                report.unwrap_or_else(|e| panic!("seed {seed}: a cycle failed as a whole: {e}"));
            }
            None => {
                tally.kills += 1;
                drop((ledger, services));
                (ledger, services) = world.start_process();
            }
        }
        for outage in outages.iter_mut() {
            outage.1 -= 1;
        }
        if outages.iter().any(|(_, left)| *left == 0) {
            // Outages end one at a time; counted faults elsewhere may still be pending.
            for (name, _) in outages.iter().filter(|(_, left)| *left == 0) {
                match *name {
                    "amazon" => world.amazon.faults().lift(),
                    "rakuten" => world.rakuten.faults().lift(),
                    "mail" => world.mail.faults().lift(),
                    _ => world.yahoo.faults().lift(),
                }
            }
            outages.retain(|(_, left)| *left > 0);
        }
    }

    // The faults are lifted and everyone pays or cancels: cycles run until three in a row
    // append nothing to any order.
    world.lift_faults();
    tally.faults += world.faults_injected();
    let mut quiet = 0;
    let mut quiet_cycles = 0;
    while quiet < 3 {
        quiet_cycles += 1;
        if quiet_cycles > 40 {
            let recent: Vec<String> = ledger
                .store()
                .read_all(ledger.store().head_position().unwrap() - 40, 40)
                .unwrap()
                .iter()
                .filter(|e| e.stream.starts_with("order-"))
                .map(|e| format!("{} {} {}", e.stream, e.event_type, e.data))
                .collect();
            panic!("seed {seed}: not quiet after 40 cycles without faults; last order events:\n{}", recent.join("\n"));
        }
        world.buyers_follow_up(ledger.store(), true);
        world.advance(ChronoDuration::minutes(30));
        let before = order_events(&ledger);
        let report = run_cycle(&mut ledger, &services, &Stage::ALL).await.unwrap();
        tally.cycles += 1;
        assert!(report.failures.is_empty(), "seed {seed}: a stage failed with no faults: {:?}", report.failures);
        quiet = if order_events(&ledger) == before && !parcels_on_the_way(&ledger) { quiet + 1 } else { 0 };
    }
    check_invariants(&world, &ledger, sink, tally);
    tally.runs += 1;
}

/// The promises, against what the sandboxes and the mail server recorded.
/// Stock: no write is left without an outcome, and every quantity the ledger says a marketplace
/// was told is what the marketplace shows.
fn check_stock(world: &World, ledger: &Ledger) {
    let seed = world.seed;
    for marketplace in Marketplace::ALL {
        let published = mcf_ledger::stages::stock::sync::published(ledger, marketplace).unwrap();
        assert!(published.pending.is_none(), "seed {seed}: a {marketplace} stock write has no outcome");
        assert!(!published.quantities.is_empty(), "seed {seed}: nothing was published to {marketplace}");
        for (sku, told) in &published.quantities {
            let listing = mcf_ledger::demo::SAMPLE_LISTINGS.iter().find(|l| l.marketplace_sku == sku).unwrap();
            let shown = match marketplace {
                Marketplace::Rakuten => world.rakuten.inventory(listing.rakuten.0, listing.rakuten.1),
                Marketplace::Yahoo => world.yahoo.stock(listing.yahoo).and_then(|(quantity, _)| quantity),
            };
            assert_eq!(shown, Some(i64::from(*told)), "seed {seed}: {marketplace} {sku} shows another quantity");
        }
    }
}

fn check_invariants(world: &World, ledger: &Ledger, sink: &SmtpSink, tally: &mut Tally) {
    check_stock(world, ledger);
    let seed = world.seed;
    let store = ledger.store();
    let in_ledger: Vec<String> = store.streams_in_category("order").unwrap();
    let mut placed: Vec<OrderKey> = world
        .rakuten
        .order_numbers()
        .iter()
        .map(|n| OrderKey::new(Marketplace::Rakuten, n).unwrap())
        .chain(world.yahoo.order_ids().iter().map(|id| OrderKey::new(Marketplace::Yahoo, id).unwrap()))
        .collect();
    placed.sort_by_key(|k| k.stream());

    // Every order placed is in the ledger exactly once, and nothing else is.
    let mut streams: Vec<String> = placed.iter().map(|k| k.stream()).collect();
    streams.sort();
    let mut ledger_streams = in_ledger.clone();
    ledger_streams.sort();
    assert_eq!(ledger_streams, streams, "seed {seed}: the ledger's orders are the marketplaces' orders");
    for key in &placed {
        let detections = store.read_stream_of_types(&key.stream(), &["OrderDetected"]).unwrap();
        let via = |detector: &str| detections.iter().filter(|e| e.data.contains(detector)).count();
        let (by_api, by_mail) = (via("\"via\":\"api\""), via("\"via\":\"mail\""));
        assert_eq!(by_api, 1, "seed {seed}: {key} detected {by_api} times by the marketplace API");
        assert!(by_mail <= 1, "seed {seed}: {key} detected {by_mail} times by mail");
    }

    // Every order notice that reached the mailbox is recorded once, and each detected its order.
    let notices = world.mail.inbox(SHOP_MAIL).len();
    let received = store.read_stream_of_types("mailbox-inbox", &["MailReceived"]).unwrap();
    assert_eq!(received.len(), notices, "seed {seed}: {notices} notices in the mailbox, recorded {}", received.len());
    let by_mail = store.read_category("order", 0, 1_000_000).unwrap();
    let mail_detections =
        by_mail.iter().filter(|e| e.event_type == "OrderDetected" && e.data.contains("\"via\":\"mail\"")).count();
    assert_eq!(mail_detections, notices, "seed {seed}: every notice made its order visible once");
    tally.notices += notices;

    // At most one MCF order per order, and every MCF order belongs to an order.
    let mut mcf_per_order: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for order in world.amazon.orders() {
        let displayable = order.request["displayableOrderId"].as_str().unwrap_or_default().to_owned();
        mcf_per_order.entry(displayable).or_default().push((order.id.clone(), order.status.clone()));
    }
    for (displayable, orders) in &mcf_per_order {
        assert_eq!(orders.len(), 1, "seed {seed}: order {displayable} has {} MCF orders: {orders:?}", orders.len());
    }

    // No customer email twice; every email the ledger calls sent was delivered.
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for raw in sink.messages() {
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let subject = message.subject().unwrap_or_default();
        if subject.contains("ご入金のお願い") {
            if let Some(number) = world.rakuten.order_numbers().into_iter().find(|n| subject.contains(n.as_str())) {
                *delivered.entry(number).or_default() += 1;
            }
        }
    }

    for key in &placed {
        let state = ledger.order_state(key).unwrap();
        let status = state.status.unwrap_or_else(|| panic!("seed {seed}: {key} has no status"));
        let number = &key.order_number;
        let mcf = mcf_per_order.get(&mcf_ledger::amazon::address::displayable_order_id(number));
        let emails = delivered.get(number).copied().unwrap_or(0);
        tally.emails += emails;
        tally.shipped += usize::from(status == Status::Shipped);
        tally.cancelled += usize::from(status == Status::Cancelled);
        assert!(emails <= 1, "seed {seed}: {key} got the payment guidance {emails} times");
        if state.emails.iter().any(|e| e.state == EmailState::Sent) {
            assert_eq!(emails, 1, "seed {seed}: {key}: the ledger says sent, the mail server has {emails}");
        }
        if let Some(id) = &state.mcf_order_id {
            let at_amazon = mcf.and_then(|o| o.first()).map(|(id, _)| id.clone());
            assert_eq!(at_amazon.as_deref(), Some(id.as_str()), "seed {seed}: {key}: the ledger's MCF order");
        } else if status != Status::Error {
            assert!(mcf.is_none(), "seed {seed}: {key} ({status}) has an MCF order the ledger does not know: {mcf:?}");
        }

        // No outside write is left without an outcome once the world is quiet.
        let awaiting: Vec<_> = state.writes_open().into_iter().filter(|(_, w)| w.awaits_outcome()).collect();
        assert!(awaiting.is_empty(), "seed {seed}: {key} ({status}) has writes without an outcome: {awaiting:?}");

        // Tracking at the marketplace exactly once, and only for orders the ledger reported.
        let tracking = state.tracking.as_ref().map(|t| t.tracking_number.clone());
        match key.marketplace {
            Marketplace::Rakuten => {
                let shippings = world.rakuten.shippings(number);
                // A report RMS applied before the order stopped waiting for it (the buyer
                // cancelled after Amazon shipped) is recorded done on an order that is not SHIPPED.
                let reported =
                    state.write(events::order::OutsideWrite::RakutenShipping) == Some(&events::order::WriteState::Done);
                if status == Status::Shipped || reported {
                    assert_eq!(shippings.len(), 1, "seed {seed}: {key} shipping records at RMS: {shippings:?}");
                    assert_eq!(Some(&shippings[0].1), tracking.as_ref(), "seed {seed}: {key} tracking at RMS");
                } else {
                    assert!(shippings.is_empty(), "seed {seed}: {key} ({status}) has tracking at RMS: {shippings:?}");
                }
            }
            Marketplace::Yahoo => {
                let at_yahoo = world.yahoo.order_state(number).unwrap();
                if status == Status::Shipped {
                    assert_eq!(at_yahoo.invoice, tracking, "seed {seed}: {key} tracking at Yahoo");
                    // The completion is a write like any other: failed calls are tried again
                    // until Yahoo shows 完了 (its own auto-completion may be off).
                    assert_eq!(
                        at_yahoo.order_status, 5,
                        "seed {seed}: {key} is SHIPPED but Yahoo shows OrderStatus {}",
                        at_yahoo.order_status
                    );
                    assert_eq!(
                        state.write(events::order::OutsideWrite::YahooCompletion),
                        Some(&events::order::WriteState::Done),
                        "seed {seed}: {key} completion recorded"
                    );
                } else {
                    assert_eq!(at_yahoo.invoice, None, "seed {seed}: {key} ({status}) has tracking at Yahoo");
                }
            }
        }

        // A cancelled order has no live MCF order; a buyer's cancellation is never ignored.
        if status == Status::Cancelled {
            if let Some((id, mcf_status)) = mcf.and_then(|o| o.first()) {
                assert_eq!(mcf_status, "Cancelled", "seed {seed}: {key} is CANCELLED but MCF {id} is {mcf_status}");
            }
        }
        if world.cancelled.contains(number) {
            assert!(
                matches!(status, Status::Cancelled | Status::Error | Status::Shipped),
                "seed {seed}: {key} was cancelled by the buyer but is {status}"
            );
        }
    }

    let audit = replay::audit::audit(store).unwrap();
    assert!(audit.anomalies.is_empty(), "seed {seed}: audit: {:?}", audit.anomalies);
    let verify = replay::verify::verify(&world.database()).unwrap();
    assert!(verify.is_clean(), "seed {seed}: replay verify: {:?}", verify.differences);
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(name: &str, tally: &Tally, started: std::time::Instant) -> String {
    let line = format!(
        "{name}: {} runs, {} faults injected ({} outages, {} token expiries), {} kills, {} cycles, {} orders \
         ({} shipped, {} cancelled, {} order notices read by IMAP, {} payment emails) in {:.0}s",
        tally.runs,
        tally.faults + u64::from(tally.outages) + u64::from(tally.token_expiries),
        tally.outages,
        tally.token_expiries,
        tally.kills,
        tally.cycles,
        tally.orders,
        tally.shipped,
        tally.cancelled,
        tally.notices,
        tally.emails,
        started.elapsed().as_secs_f64()
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.txt"));
    let _ = std::fs::write(out, format!("{line}\n"));
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_runs_with_faults_at_every_outside_call_and_kills_lose_nothing_and_ship_nothing_twice() {
    let runs = env_number("FAULT_RUNS", 12);
    let first_seed = env_number("FAULT_SEED", 20_261_122);
    let sink = SmtpSink::start();
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    for run in 0..runs {
        one_run(first_seed + run, &sink, &mut tally).await;
    }
    assert_eq!(u64::from(tally.runs), runs);
    assert!(tally.kills > 0 && tally.faults > 0, "the suite must actually kill and fault: {tally:?}");
    println!("{}", report("fault-suite", &tally, started));
}

impl World {
    /// The environment a shop's crontab gives `mcf-ledger cycle`, pointed at this world.
    fn child_env(&self) -> Vec<(&'static str, String)> {
        let amazon = self.amazon.config();
        let rakuten = self.rakuten.config();
        let yahoo = self.yahoo.config();
        vec![
            ("RUST_LOG", "warn".into()),
            ("AMAZON_CLIENT_ID", amazon.client_id.clone()),
            ("AMAZON_CLIENT_SECRET", amazon.client_secret.clone()),
            ("AMAZON_REFRESH_TOKEN", amazon.refresh_token.clone()),
            ("AMAZON_SP_API_BASE_URL", self.amazon.base_url()),
            ("AMAZON_LWA_TOKEN_URL", self.amazon.token_url()),
            ("RAKUTEN_SERVICE_SECRET", rakuten.service_secret.clone()),
            ("RAKUTEN_LICENSE_KEY", rakuten.license_key.clone()),
            ("RAKUTEN_API_BASE_URL", self.rakuten.base_url()),
            ("RAKUTEN_ASYNC_SETTLE_SECONDS", "2".into()),
            ("STOCK_SYNC", "on".into()),
            ("YAHOO_CLIENT_ID", yahoo.client_id.clone()),
            ("YAHOO_CLIENT_SECRET", yahoo.client_secret.clone()),
            ("YAHOO_SELLER_ID", yahoo.seller_id.clone()),
            ("YAHOO_REFRESH_TOKEN", yahoo.refresh_token.clone()),
            ("YAHOO_PUBLIC_KEY", yahoo.public_key_pem()),
            ("YAHOO_PUBLIC_KEY_VERSION", yahoo.key_version.clone()),
            ("YAHOO_API_BASE_URL", self.yahoo.api_base_url()),
            ("YAHOO_AUTH_BASE_URL", self.yahoo.auth_base_url()),
            ("SKU_MASTER_PATH", self.master.display().to_string()),
            ("IMAP_HOST", self.mail.host()),
            ("IMAP_PORT", self.mail.imap_port().to_string()),
            ("IMAP_SECURITY", "none".into()),
            ("IMAP_USERNAME", "shop".into()),
            ("IMAP_PASSWORD", "imap-secret".into()),
            ("SMTP_HOST", "127.0.0.1".into()),
            ("SMTP_PORT", self.smtp_port.to_string()),
            ("SMTP_SECURITY", "none".into()),
            ("SMTP_FROM", "shop@example.jp".into()),
            ("ADMIN_EMAIL", "admin@example.jp".into()),
        ]
    }

    /// `mcf-ledger cycle` as cron starts it; its log goes to `child-N.log` in the run's folder.
    fn spawn_cycle(&self, n: u32) -> tokio::process::Child {
        let log = std::fs::File::create(self.dir.path().join(format!("child-{n}.log"))).unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.child_env())
            .arg("--database")
            .arg(self.database())
            .arg("cycle")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_cycles_killed_with_sigkill_at_random_moments_lose_nothing_and_ship_nothing_twice() {
    let kills_wanted = env_number("FAULT_KILLS", 10) as u32;
    let seed = env_number("FAULT_SEED", 20_261_122) + 100_000;
    let sink = SmtpSink::start();
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    let mut world = World::start(seed, sink.port, None).await;
    let mut spawned = 0;
    while tally.kills < kills_wanted {
        assert!(spawned < kills_wanted * 5, "seed {seed}: cycles keep finishing before the kill");
        tally.orders += world.buyers_order();
        {
            let store = events::EventStore::open(&world.database(), OpenMode::ReadOnly).unwrap();
            world.buyers_follow_up(&store, false);
        }
        if world.rng.bool() {
            // Counted faults only: an outage would make every cycle a quick failure.
            let operation = AMAZON_OPERATIONS[world.rng.usize(..AMAZON_OPERATIONS.len())];
            let fault = match world.rng.u8(0..4) {
                0 => Fault::Status(503),
                1 => Fault::Status(429),
                2 => Fault::Malformed,
                _ => Fault::ApplyThenHang(Duration::from_millis(300)),
            };
            world.amazon.faults().inject(Some(operation), fault.clone(), 1);
            let operation = RAKUTEN_OPERATIONS[world.rng.usize(..RAKUTEN_OPERATIONS.len())];
            world.rakuten.faults().inject(Some(operation), fault, 1);
        }
        spawned += 1;
        let mut child = world.spawn_cycle(spawned);
        let kill_after = Duration::from_millis(world.rng.u64(20..1_500));
        tokio::select! {
            status = child.wait() => {
                // With faults a stage may fail (exit 1, said on stderr); the next cycle retries.
                assert!(status.unwrap().code().is_some(), "seed {seed}: cycle {spawned} crashed");
                tally.cycles += 1;
            }
            _ = tokio::time::sleep(kill_after) => {
                child.start_kill().unwrap(); // SIGKILL
                let status = child.wait().await.unwrap();
                if status.code().is_none() {
                    tally.kills += 1;
                } else {
                    tally.cycles += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(world.rng.u64(0..300))).await;
    }
    tally.faults += world.faults_injected();
    world.lift_faults();

    let mut quiet = 0;
    while quiet < 3 {
        assert!(spawned < kills_wanted * 5 + 60, "seed {seed}: not quiet after 60 cycles without kills");
        {
            let store = events::EventStore::open(&world.database(), OpenMode::ReadOnly).unwrap();
            world.buyers_follow_up(&store, true);
        }
        let ledger = Ledger::open(&world.database(), OpenMode::MustExist).unwrap();
        let before = order_events(&ledger);
        drop(ledger);
        spawned += 1;
        let status = tokio::time::timeout(Duration::from_secs(120), world.spawn_cycle(spawned).wait())
            .await
            .expect("a cycle within two minutes")
            .unwrap();
        tally.cycles += 1;
        assert!(
            status.success(),
            "seed {seed}: cycle {spawned} failed ({status}); its log:\n{}",
            std::fs::read_to_string(world.dir.path().join(format!("child-{spawned}.log"))).unwrap_or_default()
        );
        let ledger = Ledger::open(&world.database(), OpenMode::MustExist).unwrap();
        quiet = if order_events(&ledger) == before && !parcels_on_the_way(&ledger) { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ledger = Ledger::open(&world.database(), OpenMode::MustExist).unwrap();
    check_invariants(&world, &ledger, &sink, &mut tally);
    tally.runs += 1;
    println!("{}", report("kill-suite", &tally, started));
}
