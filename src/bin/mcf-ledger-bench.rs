//! Benchmarks of the ledger core, printed as figures (run by `scripts/bench`). Each figure is
//! compared with a baseline measured in the same run on the same file system, because timing on
//! a shared machine is noisy and only ratios travel.

use chrono::{Duration, TimeZone, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta, NewEvent};
use events::order::sample::lifecycle_to;
use events::order::Status;
use events::store::{format_time, OpenMode};
use events::{EventStore, Marketplace, OrderKey};
use projections::Ledger;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::time::Instant;

const SINGLE_APPENDS: usize = 20_000;
const BATCH: usize = 1_000;
const BATCHES: usize = 200;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--rebuild-child") {
        let path = args.get(2).expect("--rebuild-child needs a path");
        rebuild_child(Path::new(path));
        return;
    }
    if let Some(orders) = arg_value(&args, "--ship-only") {
        ship_benchmark(orders);
        return;
    }
    let events: usize = arg_value(&args, "--events").unwrap_or(1_000_000);
    let orders: usize = arg_value(&args, "--orders").unwrap_or(100_000);
    if let Some(path) = args.iter().position(|a| a == "--generate-only").and_then(|i| args.get(i + 1)) {
        // A ledger to profile or to try the CLI on.
        let written = generate_ledger(Path::new(path), events, orders);
        println!("generated {written} events over {orders} orders into {path}");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("mcf-bench")
        .tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("scratch folder");
    println!("# mcf-ledger ledger benchmarks (scratch: {})", dir.path().display());

    let (ours, baseline) =
        best_of(3, || (append_single(&dir.path().join("a.db")), baseline_single(&dir.path().join("b.db"))));
    println!("append, 1 event per transaction:      {ours:>10.0} events/s; raw rusqlite {baseline:>10.0}/s; ratio {:.2} (goal >= 0.80)", ours / baseline);
    let (ours, baseline) =
        best_of(3, || (append_batched(&dir.path().join("c.db")), baseline_batched(&dir.path().join("d.db"))));
    println!("append, {BATCH} events per transaction:  {ours:>10.0} events/s; raw rusqlite {baseline:>10.0}/s; ratio {:.2} (goal >= 0.70)", ours / baseline);

    let path = dir.path().join("rebuild.db");
    let started = Instant::now();
    let written = generate_ledger(&path, events, orders);
    println!("generated {written} events over {orders} orders in {:.1}s", started.elapsed().as_secs_f64());
    let baseline = read_and_decode_baseline(&path);
    let child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--rebuild-child")
        .arg(&path)
        .output()
        .expect("rebuild child");
    let report = String::from_utf8_lossy(&child.stdout);
    let field = |name: &str| -> f64 {
        report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    if !child.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&child.stderr));
    }
    let rate = field("events_per_second");
    println!("replay rebuild:                       {rate:>10.0} events/s (goal >= 150000); read+decode baseline {baseline:>10.0}/s; ratio {:.2} (goal >= 0.25)", rate / baseline);
    println!("replay rebuild peak RSS:              {:>10.1} MB (goal < 200)", field("peak_rss_kib") / 1024.0);
    ship_benchmark(arg_value(&args, "--ship-orders").unwrap_or(1_000));
}

/// The ship stage over `orders` SHIPPING_REQUESTED orders against the SP-API sandbox with 50 ms
/// latency and Amazon's real rate limits, against the lower bound those limits impose.
fn ship_benchmark(orders: usize) {
    use mcf_ledger::amazon::{AmazonClient, AmazonConfig, LwaCredentials, RateLimits};
    use mcf_ledger::sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    use mcf_ledger::stages::{ship, ShippingSettings, StageContext};
    use mcf_ledger::transport::{RetryPolicy, TokenBucket};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("scratch");
        let config = AmazonSandboxConfig { latency: std::time::Duration::from_millis(50), ..AmazonSandboxConfig::default() };
        let sandbox = AmazonSandbox::start(config.clone()).await.expect("sandbox");
        sandbox.set_stock("JP-TEA-100", (orders * 2) as u32 + 10);
        let mut ledger = Ledger::open(&dir.path().join("ship.db"), OpenMode::CreateIfMissing).expect("ledger");
        for n in 0..orders {
            let key = OrderKey::new(Marketplace::Yahoo, &format!("bench-{n:06}")).expect("key");
            let events = lifecycle_to(&key, Status::ShippingRequested).into_iter().map(projections::ledger::OrderAppend::from).collect();
            ledger.append_order(&key, ExpectedVersion::Any, events, Meta::by(Actor::reactor("bench"))).expect("order");
        }
        let amazon = AmazonClient::new(AmazonConfig {
            credentials: LwaCredentials {
                client_id: config.client_id.clone(),
                client_secret: mcf_ledger::config::Secret::new(config.client_secret.clone()),
                refresh_token: mcf_ledger::config::Secret::new(config.refresh_token.clone()),
            },
            marketplace_id: "A1VC38T7YXB528".into(),
            sp_api_base_url: sandbox.base_url(),
            lwa_token_url: sandbox.token_url(),
            retry: RetryPolicy::default(),
            rate_limits: RateLimits::default(),
        })
        .expect("client");
        let mut sku_master = mcf_ledger::sku_master::SkuMaster::new(dir.path().join("unused.xlsx"));
        let settings = ShippingSettings::default();
        let mut ctx = StageContext { ledger: &mut ledger, amazon: &amazon, sku_master: &mut sku_master, shipping: &settings };
        let started = std::time::Instant::now();
        let report = ship::run(&mut ctx).await.expect("ship stage");
        let elapsed = started.elapsed().as_secs_f64();
        // Each order needs one preview and one create, each operation metered at 2/s, burst 30.
        let bound = TokenBucket::new(2.0, 30).lower_bound(orders as u32).as_secs_f64() + 2.0 * 0.05;
        println!(
            "ship stage, {orders} orders (50 ms latency, real limits): {elapsed:.1}s, {} shipped; lower bound {bound:.1}s; ratio {:.2} (goal <= 1.15)",
            report.advanced,
            elapsed / bound
        );
    });
}

fn arg_value(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

/// The better rate of each over `rounds` alternating rounds.
fn best_of(rounds: usize, mut measure: impl FnMut() -> (f64, f64)) -> (f64, f64) {
    (0..rounds).map(|_| measure()).fold((0.0, 0.0), |(a, b), (x, y)| (f64::max(a, x), f64::max(b, y)))
}

fn sample_event(i: usize) -> NewEvent {
    NewEvent::new("OrderVerified", 1, format!(r#"{{"note":"bench {i}"}}"#), Meta::by(Actor::reactor("bench")))
        .idempotent(format!("bench:{i}"))
}

fn fresh_store(path: &Path) -> EventStore {
    let _ = std::fs::remove_file(path);
    EventStore::open(path, OpenMode::CreateIfMissing).expect("bench store")
}

fn append_single(path: &Path) -> f64 {
    let mut store = fresh_store(path);
    let started = Instant::now();
    for i in 0..SINGLE_APPENDS {
        store.append(&format!("order-rakuten-{}", i % 1000), ExpectedVersion::Any, &[sample_event(i)]).expect("append");
    }
    SINGLE_APPENDS as f64 / started.elapsed().as_secs_f64()
}

fn append_batched(path: &Path) -> f64 {
    let mut store = fresh_store(path);
    let started = Instant::now();
    for b in 0..BATCHES {
        let batch: Vec<NewEvent> = (0..BATCH).map(|i| sample_event(b * BATCH + i)).collect();
        store.append(&format!("order-rakuten-{b}"), ExpectedVersion::Any, &batch).expect("append");
    }
    (BATCHES * BATCH) as f64 / started.elapsed().as_secs_f64()
}

/// The same table and rows, inserted with no store logic (no version check, no idempotency).
fn baseline_connection(path: &Path) -> Connection {
    drop(fresh_store(path));
    let conn = Connection::open(path).expect("baseline db");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").expect("pragmas");
    conn
}

const INSERT: &str =
    "INSERT INTO events (stream, version, event_id, type, schema, data, meta, idempotency_key, blob, recorded_at)
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)";

fn insert_raw(conn: &Connection, stream: &str, version: i64, event: &NewEvent) {
    conn.prepare_cached(INSERT)
        .and_then(|mut s| {
            s.execute(params![
                stream,
                version,
                uuid::Uuid::now_v7().to_string(),
                event.event_type,
                event.schema,
                event.data,
                r#"{"actor":"reactor:bench"}"#,
                event.idempotency_key,
                format_time(Utc::now()),
            ])
        })
        .expect("raw insert");
}

fn baseline_single(path: &Path) -> f64 {
    let mut conn = baseline_connection(path);
    let mut versions = vec![0i64; 1000];
    let started = Instant::now();
    for i in 0..SINGLE_APPENDS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        versions[i % 1000] += 1;
        insert_raw(&tx, &format!("order-rakuten-{}", i % 1000), versions[i % 1000], &sample_event(i));
        tx.commit().expect("commit");
    }
    SINGLE_APPENDS as f64 / started.elapsed().as_secs_f64()
}

fn baseline_batched(path: &Path) -> f64 {
    let mut conn = baseline_connection(path);
    let started = Instant::now();
    for b in 0..BATCHES {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        let stream = format!("order-rakuten-{b}");
        for i in 0..BATCH {
            insert_raw(&tx, &stream, i as i64 + 1, &sample_event(b * BATCH + i));
        }
        tx.commit().expect("commit");
    }
    (BATCHES * BATCH) as f64 / started.elapsed().as_secs_f64()
}

/// Orders arrive in waves of 1,000 whose lives interleave, as in a shop: each wave's orders
/// take their next step together. Rows are what the store writes for these order events.
fn generate_ledger(path: &Path, events: usize, orders: usize) -> usize {
    drop(fresh_store(path));
    let mut conn = Connection::open(path).expect("ledger");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;").expect("pragmas");
    let per_order = (events / orders.max(1)).max(1);
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("start");
    let meta = serde_json::to_string(&Meta::by(Actor::reactor("bench"))).expect("meta");
    let mut written = 0;
    for wave in (0..orders).step_by(1000) {
        let keys: Vec<OrderKey> = (wave..(wave + 1000).min(orders))
            .map(|n| OrderKey::new(Marketplace::Rakuten, &format!("100000-20260101-{n:08}")).expect("key"))
            .collect();
        let lives: Vec<_> = keys.iter().map(|k| lifecycle_to(k, Status::Shipped)).collect();
        let tx = conn.transaction().expect("begin");
        for step in 0..per_order {
            for (key, life) in keys.iter().zip(&lives) {
                // Lives longer than a shipped order's are padded with the operator's to-do marks.
                let event = life.get(step).cloned().unwrap_or_else(|| {
                    events::order::OrderEvent::ManualTaskDone(events::order::ManualTaskDone {
                        task: format!("task-{step}"),
                        note: String::new(),
                    })
                });
                let at = start + Duration::seconds(written as i64);
                tx.prepare_cached(INSERT)
                    .and_then(|mut s| {
                        s.execute(params![
                            key.stream(),
                            step as i64 + 1,
                            uuid::Uuid::now_v7().to_string(),
                            event.event_type(),
                            1,
                            event.payload_json(),
                            meta,
                            Option::<String>::None,
                            format_time(at),
                        ])
                    })
                    .expect("insert");
                written += 1;
            }
        }
        tx.commit().expect("commit");
    }
    written
}

/// Reads every row and decodes its JSON payload: the least any rebuild must do.
fn read_and_decode_baseline(path: &Path) -> f64 {
    let conn = Connection::open(path).expect("ledger");
    let started = Instant::now();
    let mut statement = conn.prepare("SELECT position, stream, version, event_id, type, schema, data, meta, idempotency_key, blob, recorded_at FROM events ORDER BY position").expect("select");
    let mut rows = statement.query([]).expect("query");
    let mut count = 0usize;
    while let Some(row) = rows.next().expect("row") {
        let data: String = row.get(6).expect("data");
        let meta: String = row.get(7).expect("meta");
        let value: serde_json::Value = serde_json::from_str(&data).expect("json");
        let meta: serde_json::Value = serde_json::from_str(&meta).expect("json");
        std::hint::black_box((value, meta, row.get::<_, String>(1).expect("stream")));
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn rebuild_child(path: &Path) {
    let mut ledger = Ledger::open(&PathBuf::from(path), OpenMode::MustExist).expect("open (first projection)");
    let report = replay::rebuild::rebuild(&mut ledger, false).expect("rebuild");
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "events={} seconds={:.3} events_per_second={:.0} peak_rss_kib={peak}",
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second()
    );
}
