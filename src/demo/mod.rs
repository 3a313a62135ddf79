//! `mcf-ledger demo`: the whole system on its embedded default. The sandbox marketplaces,
//! SP-API and a mail server run in-process on loopback, every client is pointed at them, a fresh
//! ledger and master.xlsx are created, and a seeded stream of orders (every case of the
//! operating guide) flows through the cycles while the web admin watches.
//!
//! - [`buyers`]: who orders what, pays and cancels, and the mails the marketplaces and Amazon
//!   send the shop about it;
//! - [`sandboxes`]: the outside world's servers and every client pointed at them (also used by
//!   `replay dry-run`).

mod buyers;
mod sandboxes;

use buyers::{Buyers, World};
pub use sandboxes::{
    list_sample_items, sandbox_clock, sandbox_services, start_mail_sandbox, write_sample_master, ADMIN_MAIL,
    MARKETPLACE_RATE, SAMPLE_LISTINGS, SHOP_MAIL,
};

use crate::daemon::{cycle_timer, termination_signal};
use crate::web::{AppState, WebSettings};
use chrono::{Duration as ChronoDuration, Utc};
use events::order::{order_upcasters, OrderEvent, OrderState, Status};
use events::store::OpenMode;
use events::{Clock, OrderKey, SystemClock};
use projections::queries::{self, OrderFilter};
use projections::Ledger;
use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
use sandbox::rakuten::{RakutenSandbox, RakutenSandboxConfig};
use sandbox::yahoo::{YahooSandbox, YahooSandboxConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
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
    /// Calls each sandbox refused for coming faster than its quota (Amazon, RMS, Yahoo).
    pub throttled: [(&'static str, u64); 3],
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

    let (amazon, rakuten, yahoo) = start_marketplaces(clock.clone()).await?;
    let password = demo_password(options.seed);
    let mail = start_mail_sandbox(&password).await?;
    let mut services = sandbox_services((&amazon, &rakuten, &yahoo, &mail), &master, MARKETPLACE_RATE, clock.clone())?;
    // The demo publishes stock: the shop's items are listed at both marketplaces, and a listing
    // whose FBA stock is gone (matcha, then cups) shows 0 there.
    list_sample_items(&rakuten, &yahoo);
    services.stock = crate::config::StockSettings { sync: crate::config::StockSync::On, ..Default::default() };
    let listener = tokio::net::TcpListener::bind((options.bind, options.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e} (choose another with --port)", options.bind, options.port))?;
    let web_ledger = Ledger::open(&database, OpenMode::MustExist).map_err(|e| e.to_string())?;
    let mut web_settings = WebSettings::new("demo", &password, false).map_err(|e| e.to_string())?;
    web_settings.stock = services.stock;
    web_settings.sku_master = master.clone();
    let state = AppState::new(web_ledger, web_settings).map_err(|e| e.to_string())?;

    let address = listener.local_addr().map_err(|e| e.to_string())?;
    print_banner(&options, &database, &master, address, &password, (&amazon, &rakuten, &yahoo), &mail);

    let shutdown = services.shutdown.clone();
    let web_stop = shutdown.clone();
    let web = tokio::spawn(crate::web::serve(listener, state, async move { web_stop.wait().await }));
    let cycle_ledger = Ledger::open(&database, OpenMode::MustExist).map_err(|e| e.to_string())?;
    let timer = tokio::spawn(cycle_timer(
        cycle_ledger,
        services,
        crate::daemon::Timer { every: options.cycle_every, mail_check: Some(Duration::from_secs(5)) },
        shutdown.clone(),
    ));

    let mut buyers = Buyers::new(
        options.seed,
        options.orders,
        World { rakuten: &rakuten, yahoo: &yahoo, amazon: &amazon, mail: &mail },
    );
    let watch = events::EventStore::open(&database, OpenMode::ReadOnly).map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let deadline = options.run_for.map(|d| started + d);
    loop {
        buyers.order_when_due();
        buyers.follow_up(&watch);
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
        orders_placed: buyers.placed(),
        per_status,
        reached,
        mail_received: mail.inbox(SHOP_MAIL).len(),
        mail_sent: mail.relayed().len() + mail.inbox(ADMIN_MAIL).len(),
        throttled: [("Amazon", amazon.throttled()), ("RMS", rakuten.throttled()), ("Yahoo", yahoo.throttled())],
    })
}

/// The outside world, faithful to the specs, on loopback; MCF orders move on in seconds, and
/// the marketplaces enforce the quota the demo's clients keep to.
async fn start_marketplaces(clock: Arc<dyn Clock>) -> Result<(AmazonSandbox, RakutenSandbox, YahooSandbox), String> {
    let amazon = AmazonSandbox::start(AmazonSandboxConfig {
        to_planning: ChronoDuration::seconds(5),
        to_processing: ChronoDuration::seconds(10),
        to_complete: ChronoDuration::seconds(20),
        ..AmazonSandboxConfig::default()
    })
    .await
    .map_err(|e| format!("starting the SP-API sandbox: {e}"))?;
    // Cups are few: as they sell, the listings at RMS and Yahoo fall to 0 (the stock page shows
    // it), and a cup ordered after that is OUT_OF_STOCK, as matcha is from the start.
    for (sku, stock) in [("JP-TEA-100", 100_000), ("JP-CUP-ARITA", 12), ("JP-MATCHA-30", 0)] {
        amazon.set_stock(sku, stock);
    }
    let rakuten = RakutenSandbox::start(
        RakutenSandboxConfig {
            processing_delay: ChronoDuration::seconds(10),
            quota: Some(sandbox::Quota::new(sandboxes::MARKETPLACE_RATE.0, sandboxes::MARKETPLACE_RATE.1)),
            ..RakutenSandboxConfig::default()
        },
        sandbox_clock(clock.clone()),
    )
    .await
    .map_err(|e| format!("starting the RMS sandbox: {e}"))?;
    let yahoo_store = YahooSandboxConfig {
        quota: Some(sandbox::Quota::new(sandboxes::MARKETPLACE_RATE.0, sandboxes::MARKETPLACE_RATE.1)),
        ..YahooSandboxConfig::generate("demo-green-tea")
    };
    let yahoo = YahooSandbox::start(yahoo_store, sandbox_clock(clock.clone()))
        .await
        .map_err(|e| format!("starting the Yahoo sandbox: {e}"))?;

    Ok((amazon, rakuten, yahoo))
}

fn print_banner(
    options: &DemoOptions,
    database: &std::path::Path,
    master: &std::path::Path,
    address: std::net::SocketAddr,
    password: &str,
    (amazon, rakuten, yahoo): (&AmazonSandbox, &RakutenSandbox, &YahooSandbox),
    mail: &sandbox::mailbox::MailSandbox,
) {
    println!("mcf-ledger demo");
    println!("  ledger:      {}", database.display());
    println!("  master.xlsx: {}", master.display());
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
    let throttled: Vec<String> = summary.throttled.iter().map(|(api, n)| format!("{api} {n}")).collect();
    text.push_str(&format!("calls refused for coming faster than the quota: {}\n", throttled.join(", ")));
    let missing: Vec<&str> =
        Status::ALL.into_iter().filter(|s| !summary.reached.contains(s)).map(|s| s.as_str()).collect();
    if missing.is_empty() {
        text.push_str("every status of the guide was reached\n");
    } else {
        text.push_str(&format!("statuses not reached yet: {}\n", missing.join(", ")));
    }
    text
}
