//! The peak day: a burst of new orders, split across both marketplaces, through whole cycles
//! run back to back (as `run` would when each cycle leaves work), against the sandboxes with
//! their real rate limits and 50 ms latency. Printed against the tight bound: for each outside
//! API, the fewest calls it allows for this work at its own rate; the bound is the largest.

use chrono::{Duration, Utc};
use events::order::Status;
use events::store::OpenMode;
use projections::Ledger;
use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
use sandbox::rakuten::{NewRakutenOrder, RakutenSandbox, RakutenSandboxConfig};
use sandbox::yahoo::{NewYahooOrder, YahooSandbox, YahooSandboxConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What RMS and Yahoo allow a shop, and what the clients keep to in production.
const MARKETPLACE_RATE: (f64, u32) = mcf_ledger::rakuten::PRODUCTION_RATE;
/// SP-API's fulfillment operations: 2 calls a second, a burst of 30, each its own bucket.
const AMAZON_RATE: (f64, u32) = (2.0, 30);
const LATENCY: std::time::Duration = std::time::Duration::from_millis(50);
/// Batch limits the APIs document (RMS getOrder, confirmOrder and updateOrderShippingAsync take
/// 100 orders a call; searchOrder pages 1,000; Yahoo's orderList pages 2,000).
const RMS_BATCH: u64 = 100;
const RMS_SEARCH_PAGE: u64 = 1_000;
const YAHOO_LIST_PAGE: u64 = 2_000;

/// The outside world of one benchmark: the three sandboxes, the mail server, the sample master.
pub struct BenchShop {
    pub amazon: AmazonSandbox,
    pub rakuten: RakutenSandbox,
    pub yahoo: YahooSandbox,
    pub mail: sandbox::mailbox::MailSandbox,
    pub services: mcf_ledger::cycle::Services,
    pub dir: tempfile::TempDir,
}

impl BenchShop {
    /// Sandboxes that refuse calls beyond the marketplaces' quota, and clients keeping to it.
    pub async fn start(prefix: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .expect("scratch folder");
        let clock: Arc<dyn events::Clock> = Arc::new(events::SystemClock);
        let sandbox_clock = mcf_ledger::demo::sandbox_clock(clock.clone());
        let quota = Some(sandbox::Quota::new(MARKETPLACE_RATE.0, MARKETPLACE_RATE.1));
        let amazon = AmazonSandbox::start(AmazonSandboxConfig {
            latency: LATENCY,
            to_planning: Duration::seconds(1),
            to_processing: Duration::seconds(2),
            to_complete: Duration::seconds(3),
            ..AmazonSandboxConfig::default()
        })
        .await
        .expect("SP-API sandbox");
        amazon.set_stock("JP-TEA-100", 1_000_000);
        let rakuten = RakutenSandbox::start(
            RakutenSandboxConfig { processing_delay: Duration::seconds(1), quota, ..RakutenSandboxConfig::default() },
            sandbox_clock.clone(),
        )
        .await
        .expect("RMS sandbox");
        let yahoo = YahooSandbox::start(
            YahooSandboxConfig { quota, ..YahooSandboxConfig::generate("bench-store") },
            sandbox_clock,
        )
        .await
        .expect("Yahoo sandbox");
        let mail = mcf_ledger::demo::start_mail_sandbox("bench-password").await.expect("mail sandbox");
        let master = dir.path().join("master.xlsx");
        mcf_ledger::demo::write_sample_master(&master).expect("master");
        let services =
            mcf_ledger::demo::sandbox_services((&amazon, &rakuten, &yahoo, &mail), &master, MARKETPLACE_RATE, clock)
                .expect("clients");
        Self { amazon, rakuten, yahoo, mail, services, dir }
    }

    /// Half the orders at Rakuten, half at Yahoo (placed 11 minutes ago: Yahoo shows an order
    /// once the buyer's 10-minute cancel window is over), all paid by card.
    pub fn place(&self, orders: usize) {
        for n in 0..orders {
            if n % 2 == 0 {
                self.rakuten.place(NewRakutenOrder::card("tea-100", 1));
            } else {
                self.yahoo.place_at(NewYahooOrder::card("tea-100", 1), Utc::now() - Duration::minutes(11));
            }
        }
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::open(&self.dir.path().join("ledger.db"), OpenMode::CreateIfMissing).expect("ledger")
    }
}

/// When the sampled milestones were first seen, in seconds from the start.
#[derive(Debug, Default, Clone, Copy)]
struct Milestones {
    first_created: Option<f64>,
    last_created: Option<f64>,
    last_reported: Option<f64>,
}

/// Samples every 100 ms, until `done`: MCF orders at Amazon, orders reported shipped.
async fn watch(shop: &BenchShop, orders: usize, started: Instant, done: &AtomicBool) -> Milestones {
    let ledger = shop.ledger();
    let mut milestones = Milestones::default();
    loop {
        // Read before sampling, so the last sample comes after the last cycle.
        let finished = done.load(Ordering::SeqCst);
        let created = shop.amazon.orders().len();
        let reported = shipped(&ledger);
        let now = started.elapsed().as_secs_f64();
        if created > 0 && milestones.first_created.is_none() {
            milestones.first_created = Some(now);
        }
        if created >= orders && milestones.last_created.is_none() {
            milestones.last_created = Some(now);
        }
        if reported >= orders as i64 && milestones.last_reported.is_none() {
            milestones.last_reported = Some(now);
        }
        if finished {
            return milestones;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn shipped(ledger: &Ledger) -> i64 {
    projections::queries::status_counts(ledger.store().connection())
        .expect("status counts")
        .iter()
        .find(|(status, _)| *status == Status::Shipped)
        .map_or(0, |(_, n)| *n)
}

/// The fewest calls each API allows for `orders` new orders (half each marketplace, no
/// shipment mail), and the least time they take at its rate, each bucket starting full.
fn tight_bound(orders: usize) -> Vec<(&'static str, u64, f64)> {
    let rakuten = orders.div_ceil(2) as u64;
    let yahoo = (orders / 2) as u64;
    let all = orders as u64;
    let at = |(rate, burst): (f64, u32), calls: u64| {
        (calls.saturating_sub(u64::from(burst)) as f64 / rate) + LATENCY.as_secs_f64()
    };
    let rms_calls = rakuten.div_ceil(RMS_SEARCH_PAGE)
        + rakuten.div_ceil(RMS_BATCH) // getOrder
        + rakuten.div_ceil(RMS_BATCH) // confirmOrder
        + 2 * rakuten.div_ceil(RMS_BATCH); // updateOrderShippingAsync and its result
                                           // Yahoo has no batch: orderInfo, orderShipStatusChange and the completion, one order each.
    let yahoo_calls = yahoo.div_ceil(YAHOO_LIST_PAGE) + 3 * yahoo;
    vec![
        ("RMS", rms_calls, at(MARKETPLACE_RATE, rms_calls)),
        ("Yahoo", yahoo_calls, at(MARKETPLACE_RATE, yahoo_calls)),
        ("SP-API getFulfillmentPreview", all, at(AMAZON_RATE, all)),
        ("SP-API createFulfillmentOrder", all, at(AMAZON_RATE, all)),
        ("SP-API getFulfillmentOrder", all, at(AMAZON_RATE, all)),
    ]
}

/// `scripts/bench --peak-only N`: one line starting with `peak`, then the calls made per API.
pub fn peak_benchmark(orders: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let shop = BenchShop::start("mcf-bench-peak").await;
        shop.place(orders);
        let mut ledger = shop.ledger();
        let started = Instant::now();
        let done = AtomicBool::new(false);
        let mut cycles = 0;
        let run_cycles = async {
            let give_up = std::time::Duration::from_secs(3 * 3_600);
            while shipped(&ledger) < orders as i64 && started.elapsed() < give_up {
                cycles += 1;
                let cycle = mcf_ledger::cycle::run_cycle(&mut ledger, &shop.services, &mcf_ledger::cycle::Stage::ALL);
                if let Err(error) = cycle.await {
                    println!("  cycle {cycles}: {error}");
                }
            }
            done.store(true, Ordering::SeqCst);
        };
        let ((), milestones) = tokio::join!(run_cycles, watch(&shop, orders, started, &done));
        let bounds = tight_bound(orders);
        let (slowest, calls, bound) = bounds.iter().cloned().fold(("", 0, 0.0), |a, b| if b.2 > a.2 { b } else { a });
        let shown = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.0}s"));
        let ratio = milestones.last_reported.map_or(f64::NAN, |t| t / bound);
        println!(
            "peak {orders} orders: last MCF order created after {}, last tracking written back after {}, first MCF created after {}; tight bound {bound:.0}s ({slowest}: {calls} calls at {}/s); ratio {ratio:.2} (goals: ratio <= 1.15, first MCF <= 30s); {cycles} cycles",
            shown(milestones.last_created),
            shown(milestones.last_reported),
            shown(milestones.first_created.map(|t| t.max(0.0))),
            MARKETPLACE_RATE.0,
        );
        for (api, fewest, bound) in &bounds {
            println!("  {api:<30} fewest calls {fewest:>5}, least time {bound:>6.0}s");
        }
        let rms: u64 = ["searchOrder", "getOrder", "confirmOrder", "updateOrderShipping", "updateOrderShippingAsync", "getResultUpdateOrderShippingAsync", "licenseKeyExpiryDate"]
            .iter()
            .map(|op| shop.rakuten.calls(op))
            .sum();
        let yahoo: u64 = ["orderList", "orderInfo", "orderStatusChange", "orderShipStatusChange"]
            .iter()
            .map(|op| shop.yahoo.calls(op))
            .sum();
        println!(
            "  calls made: RMS {rms}, Yahoo {yahoo}, SP-API {:?}; refused for coming faster than the quota: Amazon {}, RMS {}, Yahoo {}",
            shop.amazon.calls(),
            shop.amazon.throttled(),
            shop.rakuten.throttled(),
            shop.yahoo.throttled()
        );
    });
}
