//! `mcf-ledger demo`: the whole system on its embedded default. The sandbox marketplaces and
//! SP-API run in-process on loopback, every client is pointed at them, a fresh ledger and
//! master.xlsx are created, and a seeded stream of orders (every case of the operating guide)
//! flows through the cycles while the web admin watches.

use crate::amazon::{AmazonClient, AmazonConfig, LwaCredentials, RateLimits};
use crate::config::Secret;
use crate::cycle::Services;
use crate::daemon::{cycle_timer, termination_signal, Shutdown};
use crate::mail::imap::{ImapConfig, ImapSecurity};
use crate::mail::smtp::{Mailer, SmtpConfig, SmtpSecurity};
use crate::rakuten::{RakutenClient, RakutenConfig};
use crate::sandbox::amazon::{package_tracking, AmazonSandbox, AmazonSandboxConfig};
use crate::sandbox::mailbox::{notices, MailAccount, MailSandbox, MailSandboxConfig};
use crate::sandbox::rakuten::{NewRakutenOrder, RakutenSandbox, RakutenSandboxConfig};
use crate::sandbox::yahoo::{NewYahooOrder, YahooSandbox, YahooSandboxConfig};
use crate::sku_master::SkuMaster;
use crate::stages::alerts::{AlertSettings, ConfiguredExpiry, DEFAULT_PAYMENT_GUIDANCE};
use crate::stages::ShippingSettings;
use crate::transport::RetryPolicy;
use crate::web::{AppState, WebSettings};
use crate::yahoo::signature::PublicKey;
use crate::yahoo::{YahooClient, YahooConfig};
use chrono::{Duration as ChronoDuration, Utc};
use events::order::{order_upcasters, OrderEvent, OrderState, Status};
use events::store::OpenMode;
use events::{Clock, OrderKey, SystemClock};
use projections::queries::{self, OrderFilter};
use projections::Ledger;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub orders: u32,
    pub seed: u64,
    pub run_for: Option<Duration>,
    pub cycle_every: Duration,
    pub port: u16,
    pub bind: std::net::IpAddr,
    /// None: a fresh file under `mcf-ledger-demo/`.
    pub database: Option<PathBuf>,
}

/// What the demo leaves behind, printed when it stops.
#[derive(Debug)]
pub struct DemoSummary {
    pub database: PathBuf,
    pub orders_placed: u32,
    pub per_status: Vec<(Status, i64)>,
    /// Every status some order passed through.
    pub reached: BTreeSet<Status>,
    /// Mails the shop's mailbox received (order notices, Amazon's shipment notices).
    pub mail_received: usize,
    /// Mails the system sent: to buyers (payment guidance) and to the admin (alerts).
    pub mail_sent: usize,
}

/// The shop's mailbox: marketplaces and Amazon write to it, the receive stage reads it.
pub const SHOP_MAIL: &str = "shop@demo.example.jp";
/// Where alerts go (ADMIN_EMAIL).
pub const ADMIN_MAIL: &str = "admin@demo.example.jp";
const SHOP_NAME: &str = "緑茶本舗 (demo)";

/// The demo's mail server: the shop's and the admin's mailboxes, both with `password`.
pub async fn start_mail_sandbox(password: &str) -> Result<MailSandbox, String> {
    let account = |user: &str, address: &str| MailAccount {
        user: user.into(),
        password: password.into(),
        address: address.into(),
    };
    MailSandbox::start(MailSandboxConfig {
        accounts: vec![account("shop", SHOP_MAIL), account("admin", ADMIN_MAIL)],
        hostname: "mail.demo.example.jp".into(),
        ..MailSandboxConfig::default()
    })
    .await
    .map_err(|e| format!("starting the sandbox mail server: {e}"))
}

/// The cases of the operating guide, one order each; the stream repeats the ordinary ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    RakutenCard,
    RakutenPrepaid,
    YahooCard,
    YahooPremium,
    YahooSlot,
    YahooSlotNotOffered,
    OutOfStockSku,
    UnmappedSku,
    AddressTooLong,
    BuyerCancels,
}

const FIRST_CASES: [Case; 10] = [
    Case::RakutenCard,
    Case::RakutenPrepaid,
    Case::YahooCard,
    Case::YahooPremium,
    Case::YahooSlot,
    Case::YahooSlotNotOffered,
    Case::OutOfStockSku,
    Case::UnmappedSku,
    Case::AddressTooLong,
    Case::BuyerCancels,
];

/// After the first round, mostly ordinary orders with the odd exception.
fn random_case(rng: &mut fastrand::Rng) -> Case {
    match rng.u32(0..100) {
        0..=29 => Case::RakutenCard,
        30..=54 => Case::YahooCard,
        55..=64 => Case::YahooPremium,
        65..=74 => Case::YahooSlot,
        75..=82 => Case::RakutenPrepaid,
        83..=86 => Case::YahooSlotNotOffered,
        87..=90 => Case::OutOfStockSku,
        91..=93 => Case::UnmappedSku,
        94..=96 => Case::AddressTooLong,
        _ => Case::BuyerCancels,
    }
}

const FAMILY: [&str; 8] = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村"];
const GIVEN: [&str; 8] = ["一郎", "花子", "健太", "美咲", "翔", "陽菜", "大輔", "さくら"];
const PLACES: [(&str, &str, &str); 4] = [
    ("東京都", "渋谷区", "神宮前1-2-3"),
    ("大阪府", "大阪市北区", "梅田3-1-1"),
    ("北海道", "札幌市中央区", "北1条西2-1"),
    ("福岡県", "福岡市博多区", "博多駅前2-2-1"),
];
/// (marketplace SKU, title); mapped in the sample master.xlsx except where noted.
const ITEMS: [(&str, &str, i64); 3] = [
    ("tea-100", "有機緑茶 100g", 1280),
    ("tea-3pack", "有機緑茶 100g 3個セット", 3480),
    ("cup", "湯呑み 有田焼", 2200),
];

struct Generator<'a> {
    rng: fastrand::Rng,
    rakuten: &'a RakutenSandbox,
    yahoo: &'a YahooSandbox,
    amazon: &'a AmazonSandbox,
    mail: &'a MailSandbox,
    placed: u32,
    /// MCF orders whose shipment notice Amazon has mailed.
    shipment_mailed: BTreeSet<String>,
    /// Prepaid orders to pay, and orders the buyer cancels, when their time comes.
    to_pay: Vec<(std::time::Instant, String)>,
    to_cancel: Vec<String>,
}

impl Generator<'_> {
    fn buyer(&mut self) -> (&'static str, &'static str, (&'static str, &'static str, &'static str)) {
        (
            FAMILY[self.rng.usize(..FAMILY.len())],
            GIVEN[self.rng.usize(..GIVEN.len())],
            PLACES[self.rng.usize(..PLACES.len())],
        )
    }

    fn item(&mut self) -> (String, String, u32, i64) {
        let (sku, title, price) = ITEMS[self.rng.usize(..ITEMS.len())];
        (sku.to_owned(), title.to_owned(), self.rng.u32(1..=3), price)
    }

    fn place(&mut self, case: Case) {
        let (family, given, (prefecture, city, street)) = self.buyer();
        let now = std::time::Instant::now();
        let today = Utc::now().with_timezone(&events::clock::jst()).date_naive();
        let rakuten = |item: (String, String, u32, i64)| NewRakutenOrder {
            buyer_family: family.into(),
            buyer_first: given.into(),
            prefecture: prefecture.into(),
            city: city.into(),
            sub_address: street.into(),
            items: vec![item],
            ..NewRakutenOrder::card("tea-100", 1)
        };
        let yahoo = |item: (String, String, u32, i64)| NewYahooOrder {
            ship_last: family.into(),
            ship_first: given.into(),
            prefecture: prefecture.into(),
            city: city.into(),
            address1: street.into(),
            items: vec![item],
            ..NewYahooOrder::card("tea-100", 1)
        };
        // Yahoo shows an order only after the buyer's 10-minute cancel window: the demo's
        // Yahoo buyers ordered just before that window closed.
        let published = Utc::now() - ChronoDuration::minutes(10) - ChronoDuration::seconds(5);
        let item = self.item();
        let id = match case {
            Case::RakutenCard => self.rakuten.place(rakuten(item)),
            Case::RakutenPrepaid => {
                let number = self.rakuten.place(NewRakutenOrder {
                    settlement_code: 9,
                    settlement_name: "銀行振込".into(),
                    ..rakuten(item)
                });
                self.to_pay.push((now + Duration::from_secs(20), number.clone()));
                number
            }
            Case::YahooCard => self.yahoo.place_at(yahoo(item), published),
            Case::YahooPremium => {
                self.yahoo.place_at(NewYahooOrder { excellent_delivery: 1, ..yahoo(item) }, published)
            }
            Case::YahooSlot => self.yahoo.place_at(
                NewYahooOrder {
                    ship_request_date: Some(today + ChronoDuration::days(3)),
                    ship_request_time: Some("14:00～16:00".into()),
                    ..yahoo(item)
                },
                published,
            ),
            Case::YahooSlotNotOffered => self.yahoo.place_at(
                NewYahooOrder {
                    ship_request_date: Some(today + ChronoDuration::days(3)),
                    ship_request_time: Some("12:00～14:00".into()),
                    ..yahoo(item)
                },
                published,
            ),
            Case::OutOfStockSku => {
                self.rakuten.place(rakuten(("matcha-30".into(), "抹茶 30g (在庫切れ)".into(), 1, 1980)))
            }
            Case::UnmappedSku => {
                self.yahoo.place_at(yahoo(("new-item-2027".into(), "新商品 (マスタ未登録)".into(), 1, 1500)), published)
            }
            Case::AddressTooLong => self.yahoo.place_at(
                NewYahooOrder {
                    // Longer than Amazon's three 60-character lines: createFulfillmentOrder
                    // answers 400 and the operator corrects the address.
                    address1: "大手町一丁目二番三号 大手町グランドセントラルタワー北館アネックス棟 二十三階 受付気付 総務部 御中 ".repeat(3),
                    ..yahoo(item)
                },
                published,
            ),
            Case::BuyerCancels => {
                // The buyer cancels once the shop has seen the order (RMS then says 900).
                let number = self.rakuten.place(rakuten(item));
                self.to_cancel.push(number.clone());
                number
            }
        };
        self.placed += 1;
        tracing::info!(order = %id, ?case, "demo: a buyer placed an order");
        self.mail_order_notice(&id);
    }

    /// The marketplace's order notice to the shop, as its mail servers send it.
    fn mail_order_notice(&self, id: &str) {
        let lines = |items: &[(String, String, u32, i64)]| -> Vec<notices::Line> {
            items.iter().map(|(_, title, units, price)| (title.clone(), *units, *price)).collect()
        };
        let jst = |at: chrono::DateTime<Utc>| at.with_timezone(&events::clock::jst()).fixed_offset();
        let notice = if let Some((order, at)) = self.rakuten.placed(id) {
            let buyer = format!("{} {}", order.buyer_family, order.buyer_first);
            notices::rakuten_order(SHOP_NAME, id, jst(at), &buyer, &order.settlement_name, &lines(&order.items))
        } else if let Some((order, at)) = self.yahoo.placed(id) {
            let buyer = format!("{} {}", order.ship_last, order.ship_first);
            notices::yahoo_order(SHOP_NAME, id, jst(at), &buyer, &lines(&order.items))
        } else {
            return;
        };
        self.mail.deliver(SHOP_MAIL, notice);
    }

    /// Amazon mails the notification address once an MCF order has shipped.
    fn mail_shipment_notices(&mut self) {
        for order in self.amazon.orders() {
            let notify_shop = order.request["notificationEmails"]
                .as_array()
                .is_some_and(|emails| emails.iter().any(|e| e.as_str() == Some(SHOP_MAIL)));
            if order.status != "Complete" || !notify_shop || self.shipment_mailed.contains(&order.id) {
                continue;
            }
            let (carrier, tracking) = package_tracking(&order.id);
            let now = Utc::now().with_timezone(&events::clock::jst()).fixed_offset();
            self.mail.deliver(
                SHOP_MAIL,
                notices::amazon_shipment(&order.id, notices::carrier_name(carrier), &tracking, now),
            );
            tracing::info!(mcf = %order.id, "demo: Amazon mailed the shipment notice");
            self.shipment_mailed.insert(order.id);
        }
    }

    /// Buyers pay and cancel when their time comes.
    fn follow_up(&mut self, ledger: &events::EventStore) {
        self.mail_shipment_notices();
        let now = std::time::Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.to_pay).into_iter().partition(|(at, _)| *at <= now);
        self.to_pay = later;
        for (_, number) in due {
            self.rakuten.pay(&number);
            tracing::info!(order = %number, "demo: the buyer paid by bank transfer");
        }
        let seen = |number: &String| {
            OrderKey::new(events::Marketplace::Rakuten, number)
                .ok()
                .and_then(|key| ledger.stream_version(&key.stream()).ok())
                .is_some_and(|version| version > 0)
        };
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.to_cancel).into_iter().partition(seen);
        self.to_cancel = later;
        for number in due {
            self.rakuten.cancel(&number);
            tracing::info!(order = %number, "demo: the buyer cancelled");
        }
    }
}

fn demo_database(options: &DemoOptions) -> Result<PathBuf, String> {
    match &options.database {
        Some(path) if path.exists() => Err(format!(
            "{} already exists: the demo starts from a fresh ledger (give a new --database path)",
            path.display()
        )),
        Some(path) => Ok(path.clone()),
        None => {
            let dir = PathBuf::from("mcf-ledger-demo");
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let stamp = Utc::now().with_timezone(&events::clock::jst()).format("%Y%m%d-%H%M%S");
            Ok(dir.join(format!("ledger-{stamp}-seed{}.db", options.seed)))
        }
    }
}

/// The sample master.xlsx: sheet SKUMapping (marketplace SKU -> Amazon seller SKU × units).
pub fn write_sample_master(path: &Path) -> Result<(), String> {
    let rows: [(&str, &str, u32); 4] = [
        ("tea-100", "JP-TEA-100", 1),
        ("tea-3pack", "JP-TEA-100", 3),
        ("cup", "JP-CUP-ARITA", 1),
        ("matcha-30", "JP-MATCHA-30", 1),
    ];
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let failed = |e: rust_xlsxwriter::XlsxError| format!("writing {}: {e}", path.display());
    sheet.set_name("SKUMapping").map_err(failed)?;
    for (column, title) in ["marketplace_sku", "seller_sku", "quantity"].iter().enumerate() {
        sheet.write_string(0, column as u16, *title).map_err(failed)?;
    }
    for (index, (marketplace_sku, seller_sku, quantity)) in rows.iter().enumerate() {
        let row = index as u32 + 1;
        sheet.write_string(row, 0, *marketplace_sku).map_err(failed)?;
        sheet.write_string(row, 1, *seller_sku).map_err(failed)?;
        sheet.write_number(row, 2, f64::from(*quantity)).map_err(failed)?;
    }
    workbook.save(path).map_err(failed)
}

fn demo_password(seed: u64) -> String {
    let mut bytes = [0u8; 8];
    let random = getrandom::getrandom(&mut bytes).map(|_| u64::from_le_bytes(bytes)).unwrap_or(seed ^ 0x5eed);
    let mut rng = fastrand::Rng::with_seed(random);
    (0..16).map(|_| rng.alphanumeric()).collect()
}

/// Statuses every order passed through, and how many orders are in each now.
type Tally = (Vec<(Status, i64)>, BTreeSet<Status>);

fn tally(ledger: &Ledger) -> Result<Tally, String> {
    let conn = ledger.store().connection();
    let counts = queries::status_counts(conn).map_err(|e| e.to_string())?;
    let mut reached = BTreeSet::new();
    let upcasters = order_upcasters();
    let orders = queries::list_orders(conn, &OrderFilter::default()).map_err(|e| e.to_string())?;
    for row in orders {
        let key: OrderKey = row.order.parse().map_err(|e: events::ids::IdError| e.to_string())?;
        let mut state = OrderState::new(key.clone());
        for recorded in ledger.store().read_stream(&key.stream()).map_err(|e| e.to_string())? {
            let event = OrderEvent::decode(&recorded, &upcasters).map_err(|e| e.to_string())?;
            state.apply(&event);
            reached.extend(state.status);
        }
    }
    Ok((counts, reached))
}

pub async fn run(options: DemoOptions) -> Result<DemoSummary, String> {
    let database = demo_database(&options)?;
    let master = database.with_extension("master.xlsx");
    write_sample_master(&master)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ledger = Ledger::open(&database, OpenMode::CreateIfMissing).map_err(|e| e.to_string())?;
    drop(ledger);

    // The outside world, faithful to the specs, on loopback; MCF orders move on in seconds.
    let amazon = AmazonSandbox::start(AmazonSandboxConfig {
        to_planning: ChronoDuration::seconds(5),
        to_processing: ChronoDuration::seconds(10),
        to_complete: ChronoDuration::seconds(20),
        ..AmazonSandboxConfig::default()
    })
    .await
    .map_err(|e| format!("starting the SP-API sandbox: {e}"))?;
    for (sku, stock) in [("JP-TEA-100", 100_000), ("JP-CUP-ARITA", 100_000), ("JP-MATCHA-30", 0)] {
        amazon.set_stock(sku, stock);
    }
    let rakuten = RakutenSandbox::start(
        RakutenSandboxConfig { processing_delay: ChronoDuration::seconds(10), ..RakutenSandboxConfig::default() },
        clock.clone(),
    )
    .await
    .map_err(|e| format!("starting the RMS sandbox: {e}"))?;
    let yahoo = YahooSandbox::start(YahooSandboxConfig::generate("demo-green-tea"), clock.clone())
        .await
        .map_err(|e| format!("starting the Yahoo sandbox: {e}"))?;

    let password = demo_password(options.seed);
    let mail = start_mail_sandbox(&password).await?;
    let services = sandbox_services(&amazon, &rakuten, &yahoo, &mail, &master, clock.clone())?;
    let listener = tokio::net::TcpListener::bind((options.bind, options.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e} (choose another with --port)", options.bind, options.port))?;
    let web_ledger = Ledger::open(&database, OpenMode::MustExist).map_err(|e| e.to_string())?;
    let state = AppState::new(web_ledger, WebSettings::new("demo", &password, false).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;

    println!("mcf-ledger demo");
    println!("  ledger:      {}", database.display());
    println!("  master.xlsx: {}", master.display());
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("  admin:       http://{address}/  (user: demo  password: {password})");
    println!("  sandboxes:   SP-API {}  RMS {}  Yahoo {}", amazon.base_url(), rakuten.base_url(), yahoo.api_base_url());
    println!(
        "  mail:        IMAP {host}:{}  SMTP {host}:{}  (users shop and admin, with the admin password)",
        mail.imap_port(),
        mail.smtp_port(),
        host = mail.host()
    );
    println!(
        "  orders:      {} (seed {}), a cycle every {} s; Ctrl-C stops",
        options.orders,
        options.seed,
        options.cycle_every.as_secs()
    );

    let shutdown = Shutdown::new();
    let web_stop = shutdown.clone();
    let web = tokio::spawn(crate::web::serve(listener, state, async move { web_stop.wait().await }));
    let cycle_ledger = Ledger::open(&database, OpenMode::MustExist).map_err(|e| e.to_string())?;
    let timer = tokio::spawn(cycle_timer(cycle_ledger, services, options.cycle_every, shutdown.clone()));

    let mut generator = Generator {
        rng: fastrand::Rng::with_seed(options.seed),
        rakuten: &rakuten,
        yahoo: &yahoo,
        amazon: &amazon,
        mail: &mail,
        placed: 0,
        shipment_mailed: BTreeSet::new(),
        to_pay: vec![],
        to_cancel: vec![],
    };
    let watch = events::EventStore::open(&database, OpenMode::ReadOnly).map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let deadline = options.run_for.map(|d| started + d);
    let mut next_order = started;
    loop {
        if generator.placed < options.orders && tokio::time::Instant::now() >= next_order {
            let case = match FIRST_CASES.get(generator.placed as usize) {
                Some(case) => *case,
                None => random_case(&mut generator.rng),
            };
            generator.place(case);
            // The guide's cases arrive together; then an order every few seconds.
            let gap = if generator.placed < FIRST_CASES.len() as u32 { 0 } else { generator.rng.u64(1_000..5_000) };
            next_order += Duration::from_millis(gap);
        }
        generator.follow_up(&watch);
        let tick = tokio::time::sleep(Duration::from_millis(250));
        tokio::select! {
            _ = tick => {}
            _ = termination_signal() => break,
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
    }
    shutdown.trigger();
    let _ = timer.await;
    let _ = web.await;
    let ledger = Ledger::open(&database, OpenMode::MustExist).map_err(|e| e.to_string())?;
    let (per_status, reached) = tally(&ledger)?;
    Ok(DemoSummary {
        database,
        orders_placed: generator.placed,
        per_status,
        reached,
        mail_received: mail.inbox(SHOP_MAIL).len(),
        mail_sent: mail.relayed().len() + mail.inbox(ADMIN_MAIL).len(),
    })
}

/// Every client pointed at the in-process sandboxes (the demo and `replay dry-run`); mail is
/// read from the shop's mailbox of `mail` and sent through its SMTP.
pub fn sandbox_services(
    amazon: &AmazonSandbox,
    rakuten: &RakutenSandbox,
    yahoo: &YahooSandbox,
    mail: &MailSandbox,
    master: &Path,
    clock: Arc<dyn Clock>,
) -> Result<Services, String> {
    let shop = mail
        .config()
        .accounts
        .iter()
        .find(|a| a.address == SHOP_MAIL)
        .ok_or_else(|| format!("the sandbox mail server has no mailbox for {SHOP_MAIL}"))?;
    let imap = ImapConfig {
        host: mail.host(),
        port: mail.imap_port(),
        username: shop.user.clone(),
        password: Secret::new(shop.password.clone()),
        mailbox: "INBOX".into(),
        security: ImapSecurity::Plain,
        accept_invalid_certs: false,
        timeout: Duration::from_secs(10),
    };
    let mailer = Mailer::new(SmtpConfig {
        host: mail.host(),
        port: mail.smtp_port(),
        credentials: None,
        from: SHOP_MAIL.into(),
        security: SmtpSecurity::Plain,
        accept_invalid_certs: false,
        timeout: Duration::from_secs(10),
    })
    .map_err(|e| e.to_string())?;
    let amazon_config = amazon.config();
    let amazon_client = AmazonClient::new(AmazonConfig {
        credentials: LwaCredentials {
            client_id: amazon_config.client_id.clone(),
            client_secret: Secret::new(amazon_config.client_secret.clone()),
            refresh_token: Secret::new(amazon_config.refresh_token.clone()),
        },
        marketplace_id: "A1VC38T7YXB528".into(),
        sp_api_base_url: amazon.base_url(),
        lwa_token_url: amazon.token_url(),
        retry: RetryPolicy::fast(),
        rate_limits: RateLimits::default(),
    })
    .map_err(|e| e.to_string())?;
    let rakuten_client = RakutenClient::new(RakutenConfig {
        service_secret: Secret::new(rakuten.config().service_secret.clone()),
        license_key: Secret::new(rakuten.config().license_key.clone()),
        base_url: rakuten.base_url(),
        retry: RetryPolicy::fast(),
        rate: (1.0, 5),
    })
    .map_err(|e| e.to_string())?;
    let yahoo_config = yahoo.config();
    let yahoo_client = YahooClient::new(YahooConfig {
        client_id: yahoo_config.client_id.clone(),
        client_secret: Secret::new(yahoo_config.client_secret.clone()),
        seller_id: yahoo_config.seller_id.clone(),
        refresh_token: Secret::new(yahoo_config.refresh_token.clone()),
        public_key: PublicKey::load(&yahoo_config.public_key_pem(), &yahoo_config.key_version)
            .map_err(|e| e.to_string())?,
        api_base_url: yahoo.api_base_url(),
        auth_base_url: yahoo.auth_base_url(),
        retry: RetryPolicy::fast(),
        rate: (1.0, 5),
        clock,
    })
    .map_err(|e| e.to_string())?;
    Ok(Services {
        amazon: amazon_client,
        rakuten: Some(rakuten_client),
        yahoo: Some(yahoo_client),
        imap: Some(imap),
        mailer: Some(mailer),
        alerts: AlertSettings {
            admin_email: Some(ADMIN_MAIL.into()),
            stale_after: ChronoDuration::hours(48),
            payment_guidance_template: DEFAULT_PAYMENT_GUIDANCE.to_owned(),
            // The demo's Yahoo key is as fresh as Store Creator Pro issues it: a year.
            credential_expiries: vec![ConfiguredExpiry {
                stream: crate::stages::yahoo::POLL_STREAM.into(),
                credential: "YAHOO_PUBLIC_KEY".into(),
                expires_on: Utc::now().date_naive() + ChronoDuration::days(365),
            }],
        },
        sku_master: SkuMaster::new(master.to_path_buf()),
        shipping: ShippingSettings { notification_email: Some(SHOP_MAIL.into()), ..ShippingSettings::default() },
        poll: Default::default(),
    })
}

/// The lines printed when the demo stops.
pub fn summary_text(summary: &DemoSummary) -> String {
    let mut text = format!(
        "ledger: {}\norders placed: {}\norders per status:\n",
        summary.database.display(),
        summary.orders_placed
    );
    let by_status: BTreeMap<&str, i64> = summary.per_status.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    for status in Status::ALL {
        text.push_str(&format!("  {:<22} {}\n", status.as_str(), by_status.get(status.as_str()).copied().unwrap_or(0)));
    }
    text.push_str(&format!(
        "mail: {} received by the shop (order and shipment notices), {} sent (payment guidance, alerts)\n",
        summary.mail_received, summary.mail_sent
    ));
    let missing: Vec<&str> =
        Status::ALL.into_iter().filter(|s| !summary.reached.contains(s)).map(|s| s.as_str()).collect();
    if missing.is_empty() {
        text.push_str("every status of the guide was reached\n");
    } else {
        text.push_str(&format!("statuses not reached yet: {}\n", missing.join(", ")));
    }
    text
}
