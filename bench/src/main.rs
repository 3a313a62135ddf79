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

mod latency;
mod peak;

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
    if args.iter().any(|a| a == "--latency-only") {
        latency::latency_benchmark();
        return;
    }
    if let Some(orders) = arg_value(&args, "--peak-only") {
        peak::peak_benchmark(orders);
        return;
    }
    if let Some(orders) = arg_value(&args, "--ship-only") {
        ship_benchmark(orders);
        return;
    }
    let events: usize = arg_value(&args, "--events").unwrap_or(1_000_000);
    let orders: usize = arg_value(&args, "--orders").unwrap_or(100_000);
    if let Some(orders) = arg_value(&args, "--cycle-only") {
        cycle_benchmark(orders);
        return;
    }
    if args.iter().any(|a| a == "--rss-only") {
        run_rss_benchmark(events, orders);
        return;
    }
    if args.iter().any(|a| a == "--web-only") {
        web_benchmark(events, orders, arg_value(&args, "--web-seconds").unwrap_or(10));
        return;
    }
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
    cycle_benchmark(arg_value(&args, "--cycle-orders").unwrap_or(1_000));
    web_benchmark(events, orders, arg_value(&args, "--web-seconds").unwrap_or(10));
    run_rss_benchmark(events, orders);
}

/// Peak RSS of `mcf-ledger run` (web admin and cycle timer in one process) on a ledger of
/// `orders` orders: it starts, runs its first cycle against the sandboxes while the admin is
/// loaded by wrk, and is stopped with SIGTERM after the cycle (or 120 s). Goal: < 100 MB.
fn run_rss_benchmark(events: usize, orders: usize) {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::Builder::new()
        .prefix("mcf-bench-rss")
        .tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("scratch folder");
    let path = dir.path().join("run.db");
    generate_ledger(&path, events, orders);
    drop(Ledger::open(&path, OpenMode::MustExist).expect("projections caught up, as on a running shop"));
    let master = dir.path().join("master.xlsx");
    mcf_ledger::demo::write_sample_master(&master).expect("master");
    let binary = std::env::current_exe().expect("own path").with_file_name("mcf-ledger");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
        use sandbox::rakuten::RakutenSandbox;
        let amazon = AmazonSandbox::start(AmazonSandboxConfig::default()).await.expect("SP-API sandbox");
        amazon.set_stock("JP-TEA-100", 1_000_000);
        let rakuten = RakutenSandbox::start(Default::default(), std::sync::Arc::new(sandbox::WallClock))
            .await
            .expect("RMS sandbox");
        let mut child = run_command(&binary, &amazon, &rakuten, &master, &path)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/bench builds it)", binary.display()));
        let pid = child.id();
        // The first line names the address; the rest is drained, so `run` never writes to a
        // closed pipe.
        let mut out = child.stdout.take().map(BufReader::new).expect("run's stdout");
        let mut banner = String::new();
        let banner = out.read_line(&mut banner).ok().map(|_| banner);
        std::thread::spawn(move || out.lines().for_each(drop));
        let url = banner
            .as_deref()
            .and_then(|b| b.split_whitespace().find(|w| w.starts_with("http://")))
            .map(|u| u.trim_end_matches(',').to_owned())
            .expect("run prints its address");
        let started = Instant::now();
        let wrk = tokio::task::spawn_blocking(move || {
            use base64::Engine;
            let authorization =
                format!("Authorization: Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:bench-secret"));
            for page in ["", "?q=00050000", "?status=SHIPPING"] {
                let _ = std::process::Command::new("wrk")
                    .args(["-t2", "-c20", "-d10s", "-H", &authorization])
                    .arg(format!("{url}{page}"))
                    .output();
            }
        });
        let cycle_finished = || {
            events::EventStore::open(&path, OpenMode::ReadOnly)
                .and_then(|store| store.read_stream("system"))
                .map(|events| events.iter().any(|e| e.event_type == "CycleFinished"))
                .unwrap_or(false)
        };
        while !cycle_finished() && started.elapsed() < std::time::Duration::from_secs(120) {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let _ = wrk.await;
        let finished = cycle_finished();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let (peak, now) = (kib("VmHWM:"), kib("VmRSS:"));
        let exit = stop_gracefully(&mut child).await;
        println!(
            "run, {orders} orders: peak RSS {:.1} MB, {:.1} MB at the end (goal < 100 MB); {} in {:.0}s under wrk load; SIGTERM: {}",
            peak / 1024.0,
            now / 1024.0,
            if finished { "first cycle finished" } else { "first cycle still running" },
            started.elapsed().as_secs_f64(),
            exit
        );
    });
}

/// `mcf-ledger run` on `ledger` against the bench's Amazon and RMS sandboxes.
fn run_command(
    binary: &Path,
    amazon: &sandbox::amazon::AmazonSandbox,
    rakuten: &sandbox::rakuten::RakutenSandbox,
    master: &Path,
    ledger: &Path,
) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .env("RUST_LOG", "warn")
        .env("WEB_USERNAME", "bench")
        .env("WEB_PASSWORD", "bench-secret")
        .env("AMAZON_CLIENT_ID", &amazon.config().client_id)
        .env("AMAZON_CLIENT_SECRET", &amazon.config().client_secret)
        .env("AMAZON_REFRESH_TOKEN", &amazon.config().refresh_token)
        .env("AMAZON_SP_API_BASE_URL", amazon.base_url())
        .env("AMAZON_LWA_TOKEN_URL", amazon.token_url())
        .env("RAKUTEN_SERVICE_SECRET", &rakuten.config().service_secret)
        .env("RAKUTEN_LICENSE_KEY", &rakuten.config().license_key)
        .env("RAKUTEN_API_BASE_URL", rakuten.base_url())
        .env("SKU_MASTER_PATH", master)
        .arg("--database")
        .arg(ledger)
        .args(["run", "--port", "0"])
        .stdout(std::process::Stdio::piped());
    command
}

/// SIGTERM, then how the process ended. It lets the stage under way finish; a stage over
/// 100,000 orders at the shops' one call per second can outlast the wait, as systemd's stop
/// timeout would.
async fn stop_gracefully(child: &mut std::process::Child) -> String {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let stop_started = Instant::now();
    let mut exit = "still in its stage after 60 s (killed)".to_owned();
    while stop_started.elapsed() < std::time::Duration::from_secs(60) {
        if let Ok(Some(status)) = child.try_wait() {
            exit = format!("exit {} after {:.0}s", status.code().unwrap_or(-1), stop_started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    exit
}

/// The web admin over a ledger of `orders` orders and `events` events, loaded by wrk with 20
/// concurrent connections: p50 and p99 per page (goal: p99 < 50 ms). wrk and the server share
/// this machine's cores, as they would on a small shop's server.
fn web_benchmark(events: usize, orders: usize, seconds: usize) {
    use base64::Engine;
    if std::process::Command::new("wrk").arg("--version").output().is_err() {
        println!("web admin: wrk is not installed (scripts/bench installs it); skipped");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("mcf-bench-web")
        .tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("scratch folder");
    let path = dir.path().join("web.db");
    let started = Instant::now();
    let written = generate_ledger(&path, events, orders);
    let generated = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let ledger = Ledger::open(&path, OpenMode::MustExist).expect("ledger (projections catch up)");
    println!(
        "web admin ledger: {written} events over {orders} orders generated in {generated:.1}s, projections built in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let settings = mcf_ledger::web::WebSettings::new("bench", "bench-secret", false).expect("settings");
        let state = mcf_ledger::web::AppState::new(ledger, settings).expect("web state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mcf_ledger::web::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let authorization =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:bench-secret"));
        let middle = format!("100000-20260101-{:08}", orders / 2);
        let pages = [
            ("order list, first page", "/".to_owned()),
            ("order list, status ERROR", "/?status=ERROR".to_owned()),
            ("order list, search", format!("/?q={}", &middle[middle.len() - 6..])),
            ("order detail", format!("/orders/rakuten-{middle}")),
        ];
        let client = reqwest::Client::new();
        for (name, page) in pages {
            let url = format!("http://{address}{page}");
            let probe = client.get(&url).header("Authorization", &authorization).send().await.expect("probe");
            assert!(probe.status().is_success(), "{url}: {}", probe.status());
            let (url, authorization) = (url.clone(), authorization.clone());
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new("wrk")
                    .args(["-t2", "-c20", &format!("-d{seconds}s"), "--latency", "-H"])
                    .arg(format!("Authorization: {authorization}"))
                    .arg(&url)
                    .output()
            })
            .await
            .expect("wrk thread")
            .expect("wrk");
            let report = String::from_utf8_lossy(&output.stdout);
            let (p50, p99) = (wrk_latency_ms(&report, "50%"), wrk_latency_ms(&report, "99%"));
            let rate = report
                .lines()
                .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            let failed = report
                .lines()
                .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| "0".into());
            println!(
                "web {name:<26} p50 {p50:>6.1} ms  p99 {p99:>6.1} ms  {rate:>7.0} req/s  (20 connections, non-2xx: {failed}) goal p99 < 50 ms"
            );
        }
        let _ = stop.send(());
        let _ = server.await;
    });
}

/// A percentile from wrk's `--latency` distribution, in milliseconds.
fn wrk_latency_ms(report: &str, percentile: &str) -> f64 {
    let Some(value) = report.lines().find_map(|l| l.trim().strip_prefix(percentile)).map(str::trim) else {
        return f64::NAN;
    };
    let number = |suffix: &str| value.strip_suffix(suffix).and_then(|v| v.parse::<f64>().ok());
    number("us")
        .map(|v| v / 1000.0)
        .or_else(|| number("ms"))
        .or_else(|| number("s").map(|v| v * 1000.0))
        .unwrap_or(f64::NAN)
}

/// The ship stage over `orders` SHIPPING_REQUESTED orders against the SP-API sandbox with 50 ms
/// latency and Amazon's real rate limits, against the lower bound those limits impose.
fn ship_benchmark(orders: usize) {
    use mcf_ledger::amazon::{AmazonClient, AmazonConfig, LwaCredentials, RateLimits};
    use mcf_ledger::stages::{ship, ShippingSettings, StageContext, Steps};
    use mcf_ledger::transport::RetryPolicy;
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
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
        let mut services = mcf_ledger::stages::Services {
            amazon,
            rakuten: None,
            yahoo: None,
            imap: None,
            mailer: None,
            alerts: mcf_ledger::stages::stale::AlertSettings {
                admin_email: None,
                stale_after: chrono::Duration::hours(48),
                credential_expiries: Vec::new(),
            },
            customer_mail: Default::default(),
            sku_master: mcf_ledger::stages::check::SkuMaster::new(dir.path().join("unused.xlsx")),
            shipping: ShippingSettings::default(),
            poll: Default::default(),
            stock: Default::default(),
            shutdown: Default::default(),
        };
        let mut ctx = StageContext { ledger: &mut ledger, services: &mut services, steps: Steps::unbounded() };
        let started = std::time::Instant::now();
        let report = ship::run(&mut ctx).await.expect("ship stage");
        let elapsed = started.elapsed().as_secs_f64();
        // Each order needs one preview and one create, each operation metered at 2/s, burst 30.
        let bound = lower_bound(2.0, 30, orders as u32).as_secs_f64() + 2.0 * 0.05;
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
        let lives: Vec<_> = keys.iter().enumerate().map(|(i, k)| lifecycle_to(k, shop_status(wave + i))).collect();
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

/// A shop's spread: most orders shipped, some on their way, a few waiting on the operator.
fn shop_status(n: usize) -> Status {
    match n % 20 {
        0 => Status::Error,
        1 => Status::OutOfStock,
        2 => Status::DateUnavailable,
        3 => Status::Cancelled,
        4 => Status::AwaitingConfirmation,
        5 | 6 => Status::Shipping,
        7 => Status::Verified,
        _ => Status::Shipped,
    }
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

/// Calls per rate-limit bucket, read from the sandboxes: Rakuten and Yahoo meter each shop as a
/// whole, SP-API each operation.
#[derive(Debug, Clone, Default)]
struct Calls {
    rakuten: u64,
    yahoo: u64,
    amazon: std::collections::BTreeMap<&'static str, u64>,
}

impl Calls {
    fn read(
        amazon: &sandbox::amazon::AmazonSandbox,
        rakuten: &sandbox::rakuten::RakutenSandbox,
        yahoo: &sandbox::yahoo::YahooSandbox,
    ) -> Self {
        Self {
            rakuten: ["searchOrder", "getOrder", "confirmOrder", "updateOrderShipping", "licenseKeyExpiryDate"]
                .iter()
                .map(|op| rakuten.calls(op))
                .sum(),
            yahoo: ["orderList", "orderInfo", "orderStatusChange", "orderShipStatusChange"]
                .iter()
                .map(|op| yahoo.calls(op))
                .sum(),
            amazon: amazon.calls(),
        }
    }

    /// The least time the calls made since `before` can take under the clients' (and the real
    /// APIs') rate limits, each bucket starting full: the shops' buckets one after the other (a
    /// stage calls them in turn), Amazon's operations side by side (each has its own bucket).
    fn lower_bound_since(&self, before: &Calls, latency: std::time::Duration) -> f64 {
        let (rate, burst) = mcf_ledger::rakuten::PRODUCTION_RATE;
        let shop = |now: u64, then: u64| lower_bound(rate, burst, (now - then) as u32).as_secs_f64();
        let amazon = self
            .amazon
            .iter()
            .map(|(op, now)| {
                let calls = now - before.amazon.get(op).copied().unwrap_or(0);
                let bucket = if *op == "getInventorySummaries" { (2.0, 2) } else { (2.0, 30) };
                let one_answer = if calls > 0 { latency.as_secs_f64() } else { 0.0 };
                lower_bound(bucket.0, bucket.1, calls as u32).as_secs_f64() + one_answer
            })
            .fold(0.0, f64::max);
        shop(self.rakuten, before.rakuten) + shop(self.yahoo, before.yahoo) + amazon
    }

    fn total(&self) -> u64 {
        self.rakuten + self.yahoo + self.amazon.values().sum::<u64>()
    }
}

/// `orders` new orders (half Rakuten, half Yahoo) through every stage, cycle after cycle until
/// all are shipped and reported, against the sandboxes with SP-API's 50 ms latency and the real
/// rate limits of all three APIs: time per stage against the rate-limit lower bound.
fn cycle_benchmark(orders: usize) {
    use mcf_ledger::cycle::{run_stage, Stage};
    use mcf_ledger::stages::Steps;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let shop = peak::BenchShop::start("mcf-bench-cycle").await;
        let (amazon, rakuten, yahoo, services) = (&shop.amazon, &shop.rakuten, &shop.yahoo, &shop.services);
        let latency = std::time::Duration::from_millis(50);
        shop.place(orders);
        let mut ledger = shop.ledger();
        let mut per_stage: Vec<(Stage, f64, f64)> = Stage::ALL.iter().map(|s| (*s, 0.0, 0.0)).collect();
        let started = Instant::now();
        let mut cycles = 0;
        let shipped = |ledger: &Ledger| -> i64 {
            projections::queries::status_counts(ledger.store().connection())
                .expect("counts")
                .iter()
                .find(|(s, _)| *s == Status::Shipped)
                .map_or(0, |(_, n)| *n)
        };
        while shipped(&ledger) < orders as i64 && cycles < 100 {
            cycles += 1;
            let cycle_started = Instant::now();
            for (stage, time, bound) in per_stage.iter_mut() {
                let before = Calls::read(amazon, rakuten, yahoo);
                let stage_started = Instant::now();
                if let Err(error) = run_stage(&mut ledger, services, *stage, Steps::unbounded()).await {
                    println!("  cycle {cycles} stage {stage}: {error}");
                }
                *time += stage_started.elapsed().as_secs_f64();
                *bound += Calls::read(amazon, rakuten, yahoo).lower_bound_since(&before, latency);
            }
            // Let the marketplaces and Amazon move on when a cycle had little to do.
            if cycle_started.elapsed() < std::time::Duration::from_secs(2) {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
        let calls = Calls::read(amazon, rakuten, yahoo);
        println!(
            "cycle, {orders} new orders to shipped and reported (50 ms SP-API latency, real limits): {cycles} cycles, {:.0}s, {} of {orders} shipped, {} API calls",
            started.elapsed().as_secs_f64(),
            shipped(&ledger),
            calls.total()
        );
        let (mut time_sum, mut bound_sum) = (0.0, 0.0);
        for (stage, time, bound) in &per_stage {
            time_sum += time;
            bound_sum += bound;
            let ratio = if *bound >= 1.0 { format!("ratio {:.2}", time / bound) } else { "bound < 1 s".into() };
            println!("  stage {:<8} {time:>7.1}s; rate-limit lower bound {bound:>7.1}s; {ratio}", stage.name());
        }
        println!(
            "  all stages      {time_sum:>7.1}s; rate-limit lower bound {bound_sum:>7.1}s; ratio {:.2} (goal <= 1.15)",
            time_sum / bound_sum
        );
    });
}

/// The least time `calls` calls can take at `rate` a second from a full bucket of `burst`.
fn lower_bound(rate: f64, burst: u32, calls: u32) -> std::time::Duration {
    let beyond_burst = (f64::from(calls) - f64::from(burst)).max(0.0);
    std::time::Duration::from_secs_f64(beyond_burst / rate)
}
