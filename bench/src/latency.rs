//! An ordinary day's latency: `mcf-ledger run` (its defaults: a cycle every 10 minutes, the
//! mailbox looked at every 15 s) while 50 orders arrive over 10 minutes, each by the
//! marketplace's mail and API at once; from the order mail to the MCF order created.

use crate::peak::BenchShop;
use chrono::{DateTime, Duration, Utc};
use sandbox::mailbox::notices;
use sandbox::rakuten::NewRakutenOrder;
use sandbox::yahoo::NewYahooOrder;
use std::collections::BTreeMap;
use std::time::Instant;

const ORDERS: usize = 50;
const ARRIVALS_OVER: std::time::Duration = std::time::Duration::from_secs(600);
/// After the last arrival, how long the MCF orders still have to come.
const GRACE: std::time::Duration = std::time::Duration::from_secs(900);

/// `scripts/bench --latency-only`: one line starting with `latency`.
pub fn latency_benchmark() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let shop = BenchShop::start("mcf-bench-latency").await;
        let database = shop.dir.path().join("ledger.db");
        let binary = std::env::current_exe().expect("own path").with_file_name("mcf-ledger");
        let init = std::process::Command::new(&binary).arg("--database").arg(&database).arg("init").output();
        assert!(init.is_ok_and(|o| o.status.success()), "mcf-ledger init ({}; scripts/bench builds it)", binary.display());
        let mut run = std::process::Command::new(&binary)
            .envs(run_environment(&shop))
            .arg("--database")
            .arg(&database)
            .args(["run", "--port", "0"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let started = Instant::now();
        let mut mailed: BTreeMap<String, Instant> = BTreeMap::new();
        let mut created: BTreeMap<String, Instant> = BTreeMap::new();
        let gap = ARRIVALS_OVER / ORDERS as u32;
        while created.len() < ORDERS && started.elapsed() < ARRIVALS_OVER + GRACE {
            if mailed.len() < ORDERS && started.elapsed() >= gap * mailed.len() as u32 {
                let number = place_and_mail(&shop, mailed.len());
                mailed.insert(number, Instant::now());
            }
            for order in shop.amazon.orders() {
                if let Some(number) = mailed.keys().find(|n| order.id.ends_with(n.as_str())) {
                    created.entry(number.clone()).or_insert_with(Instant::now);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let _ = std::process::Command::new("kill").args(["-TERM", &run.id().to_string()]).status();
        let _ = run.wait();
        let mut latencies: Vec<f64> = created
            .iter()
            .filter_map(|(number, at)| mailed.get(number).map(|sent| at.duration_since(*sent).as_secs_f64()))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| {
            latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
        };
        println!(
            "latency {ORDERS} orders over {}s by mail and API under `run` (CYCLE_MINUTES 10, MAIL_CHECK_SECONDS 15): order mail to MCF order created p50 {:.0}s, p95 {:.0}s, max {:.0}s (goal p50 <= 60s); {} of {ORDERS} created",
            ARRIVALS_OVER.as_secs(),
            percentile(0.50),
            percentile(0.95),
            latencies.last().copied().unwrap_or(f64::NAN),
            created.len()
        );
    });
}

/// One order at its marketplace and its order mail in the shop's mailbox, at the same moment.
/// Yahoo shows an order through its API only after the buyer's 10-minute cancel window, so a
/// Yahoo order is placed as ordered 10 minutes ago and mailed now: the latency measured is
/// ours, not the window's.
fn place_and_mail(shop: &BenchShop, n: usize) -> String {
    let jst = |at: DateTime<Utc>| at.with_timezone(&events::clock::jst()).fixed_offset();
    let line = [("有機緑茶 100g".to_owned(), 1, 1280)];
    let (number, notice) = if n.is_multiple_of(2) {
        let number = shop.rakuten.place(NewRakutenOrder::card("tea-100", 1));
        let at = shop.rakuten.placed(&number).map_or_else(Utc::now, |(_, at)| at);
        let notice = notices::rakuten_order("ベンチ茶舗", &number, jst(at), "楽天 太郎", "クレジットカード", &line);
        (number, notice)
    } else {
        let at = Utc::now() - Duration::minutes(10);
        let number = shop.yahoo.place_at(NewYahooOrder::card("tea-100", 1), at);
        (number.clone(), notices::yahoo_order("ベンチ茶舗", &number, jst(at), "山田 花子", &line))
    };
    shop.mail.deliver(mcf_ledger::demo::SHOP_MAIL, notice);
    number
}

/// `run` pointed at the bench's sandboxes, with its own defaults for the timer.
fn run_environment(shop: &BenchShop) -> Vec<(&'static str, String)> {
    let amazon = shop.amazon.config();
    let rakuten = shop.rakuten.config();
    let yahoo = shop.yahoo.config();
    let key = shop.dir.path().join("yahoo-public.pem");
    std::fs::write(&key, yahoo.public_key_pem()).expect("Yahoo public key file");
    let account = shop
        .mail
        .config()
        .accounts
        .iter()
        .find(|a| a.address == mcf_ledger::demo::SHOP_MAIL)
        .expect("the shop's mailbox")
        .clone();
    vec![
        ("RUST_LOG", "warn".into()),
        ("WEB_USERNAME", "bench".into()),
        ("WEB_PASSWORD", "bench-secret".into()),
        ("SKU_MASTER_PATH", shop.dir.path().join("master.xlsx").display().to_string()),
        ("AMAZON_CLIENT_ID", amazon.client_id.clone()),
        ("AMAZON_CLIENT_SECRET", amazon.client_secret.clone()),
        ("AMAZON_REFRESH_TOKEN", amazon.refresh_token.clone()),
        ("AMAZON_SP_API_BASE_URL", shop.amazon.base_url()),
        ("AMAZON_LWA_TOKEN_URL", shop.amazon.token_url()),
        ("RAKUTEN_SERVICE_SECRET", rakuten.service_secret.clone()),
        ("RAKUTEN_LICENSE_KEY", rakuten.license_key.clone()),
        ("RAKUTEN_API_BASE_URL", shop.rakuten.base_url()),
        ("YAHOO_CLIENT_ID", yahoo.client_id.clone()),
        ("YAHOO_CLIENT_SECRET", yahoo.client_secret.clone()),
        ("YAHOO_SELLER_ID", yahoo.seller_id.clone()),
        ("YAHOO_REFRESH_TOKEN", yahoo.refresh_token.clone()),
        ("YAHOO_PUBLIC_KEY", key.display().to_string()),
        ("YAHOO_PUBLIC_KEY_VERSION", yahoo.key_version.clone()),
        ("YAHOO_API_BASE_URL", shop.yahoo.api_base_url()),
        ("YAHOO_AUTH_BASE_URL", shop.yahoo.auth_base_url()),
        ("IMAP_HOST", shop.mail.host()),
        ("IMAP_PORT", shop.mail.imap_port().to_string()),
        ("IMAP_SECURITY", "none".into()),
        ("IMAP_USERNAME", account.user),
        ("IMAP_PASSWORD", account.password),
    ]
}
