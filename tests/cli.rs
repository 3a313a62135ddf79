//! The `mcf-ledger` binary against a real ledger file: what an operator and an admin type.

use chrono::{Duration, TimeZone, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta, NewEvent};
use events::order::sample::lifecycle_to;
use events::order::Status;
use events::store::OpenMode;
use events::{EventStore, FixedClock, Marketplace, OrderKey};
use projections::ledger::OrderAppend;
use projections::Ledger;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcf-ledger"));
    command.env("RUST_LOG", "warn").env_remove("DATABASE").env("USER", "tanaka");
    command
}

fn run(database: &Path, args: &[&str]) -> Output {
    bin().arg("--database").arg(database).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn key(status: Status) -> OrderKey {
    OrderKey::new(Marketplace::Rakuten, &format!("123456-20261122-{:08}", status as u32 + 1)).unwrap()
}

/// A ledger with one order in every status.
fn sample_ledger(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("shop.db");
    let init = run(&path, &["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
    let mut ledger = Ledger::open_with_clock(&path, OpenMode::MustExist, Arc::new(clock.clone())).unwrap();
    for status in Status::ALL {
        for event in lifecycle_to(&key(status), status) {
            ledger
                .append_order(
                    &key(status),
                    ExpectedVersion::Any,
                    vec![OrderAppend::from(event)],
                    Meta::by(Actor::reactor("test")),
                )
                .unwrap();
            clock.advance(Duration::minutes(1));
        }
    }
    path
}

#[test]
fn order_list_and_show_give_the_json_fields_scripts_rely_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    let output = run(&path, &["order", "list", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let list: Vec<Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(list.len(), 10);
    for row in &list {
        for field in [
            "order",
            "marketplace",
            "status",
            "mcf_order_id",
            "shipping_speed",
            "tracking_number",
            "carrier",
            "error",
            "updated_at",
        ] {
            assert!(row.get(field).is_some(), "{field} missing in {row}");
        }
    }
    let shipped = list.iter().find(|r| r["status"] == "SHIPPED").unwrap();
    assert_eq!(shipped["order"], key(Status::Shipped).to_string());
    assert_eq!(shipped["marketplace"], "rakuten");
    assert_eq!(shipped["mcf_order_id"], "RK-123456-20261122-00000008");
    assert_eq!(shipped["tracking_number"], "123456789012");
    let received = list.iter().find(|r| r["status"] == "RECEIVED").unwrap();
    assert!(received["mcf_order_id"].is_null() && received["tracking_number"].is_null() && received["error"].is_null());

    let filtered: Vec<Value> =
        serde_json::from_str(&stdout(&run(&path, &["order", "list", "--status", "out_of_stock", "--json"]))).unwrap();
    assert_eq!(filtered.len(), 1);
    assert!(filtered[0]["error"].as_str().unwrap().contains("在庫不足: JP-TEA-100 必要 2 / 在庫 1"));

    let output = run(&path, &["order", "show", &key(Status::Error).to_string(), "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(shown["status"], "ERROR");
    assert_eq!(shown["allowed_statuses"], serde_json::json!(["VERIFIED", "RECEIVED", "CANCELLED"]));
    assert_eq!(shown["ship_to"]["prefecture"], "東京都");
    assert!(shown["history"].as_array().unwrap().len() >= 5);

    let human = stdout(&run(&path, &["order", "show", &key(Status::Error).to_string()]));
    assert!(human.contains("problem    在庫確認: [SKU_NOT_IN_MASTER] SKU tea-100 が master.xlsx"), "{human}");
    assert!(human.contains("may change to: VERIFIED, RECEIVED, CANCELLED"), "{human}");
    let table = stdout(&run(&path, &["order", "list"]));
    assert!(table.contains("10 shown; all orders: RECEIVED 1,"), "{table}");
}

#[test]
fn set_status_records_the_os_user_and_refuses_what_the_guide_does_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    let order = key(Status::OutOfStock).to_string();
    let refused = run(&path, &["order", "set-status", &order, "SHIPPED", "--reason", "急ぎ"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("OUT_OF_STOCK から変更できるのは: VERIFIED, CANCELLED"), "{}", stderr(&refused));

    let stale =
        run(&path, &["order", "set-status", &order, "VERIFIED", "--reason", "在庫補充", "--expect-version", "2"]);
    assert!(stderr(&stale).contains("表示後に変更されました"), "{}", stderr(&stale));

    let done = run(&path, &["order", "set-status", &order, "VERIFIED", "--reason", "在庫補充済み"]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(stdout(&done).contains("VERIFIED"), "{}", stdout(&done));
    let shown: Value = serde_json::from_str(&stdout(&run(&path, &["order", "show", &order, "--json"]))).unwrap();
    assert_eq!(shown["status"], "VERIFIED");
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "operator:tanaka");
    assert!(last["summary"].as_str().unwrap().contains("在庫補充済み"));

    let shipping = key(Status::Shipping).to_string();
    let cancel = run(&path, &["order", "set-status", &shipping, "CANCELLED", "--reason", "購入者の依頼"]);
    assert!(stdout(&cancel).contains("cancellation requested"), "{}", stdout(&cancel));
}

#[test]
fn replay_verify_rebuild_time_travel_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    let verify = run(&path, &["replay", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).contains("equals the live projections"));

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE order_status SET tracking_number = 'forged' WHERE status = 'SHIPPED'", []).unwrap();
    let verify = run(&path, &["replay", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(stdout(&verify).contains("order_status: 1 rows only live, 1 rows only rebuilt"), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("tracking_number=\"forged\""), "{}", stdout(&verify));

    let rebuild = run(&path, &["replay", "rebuild"]);
    assert!(rebuild.status.success(), "{}", stderr(&rebuild));
    assert!(stdout(&rebuild).contains("rebuilt projections from"), "{}", stdout(&rebuild));
    assert!(run(&path, &["replay", "verify"]).status.success());

    let order = key(Status::Shipped).to_string();
    let at: Value = serde_json::from_str(&stdout(&run(&path, &["replay", "order", &order, "--json"]))).unwrap();
    let third = at["timeline"][2]["position"].as_i64().unwrap();
    let then: Value =
        serde_json::from_str(&stdout(&run(&path, &["replay", "order", &order, "--at", &third.to_string(), "--json"])))
            .unwrap();
    assert_eq!(then["state"]["status"], "AWAITING_CONFIRMATION");
    // 10:00 JST is 01:00 UTC, when the first order's first event was recorded.
    let by_time =
        stdout(&run(&path, &["replay", "order", &key(Status::Received).to_string(), "--at", "2026-11-22 10:00"]));
    assert!(by_time.contains("RECEIVED"), "{by_time}");
    let bad_at = run(&path, &["replay", "order", &order, "--at", "yesterday"]);
    assert!(stderr(&bad_at).contains("neither a position nor a time"), "{}", stderr(&bad_at));

    let export = stdout(&run(&path, &["replay", "export", "--stream", &format!("order-{order}")]));
    let lines: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[9]["type"], "ShipmentReported");
    let reparse = run(&path, &["replay", "reparse"]);
    assert!(reparse.status.success(), "{}", stderr(&reparse));
    assert!(
        stdout(&reparse).contains("re-parsed 0 emails and 0 marketplace answers: 0 would differ"),
        "{}",
        stdout(&reparse)
    );
    let from = stdout(&run(&path, &["replay", "export", "--from", "60"]));
    assert!(from.lines().all(|l| serde_json::from_str::<Value>(l).unwrap()["position"].as_i64().unwrap() > 60));
}

#[test]
fn the_incident_report_tells_a_window_from_the_events_alone_in_text_json_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    // An operator's action in the window, and a poll that failed.
    assert!(run(
        &path,
        &["order", "set-status", &key(Status::OutOfStock).to_string(), "VERIFIED", "--reason", "在庫補充済み"]
    )
    .status
    .success());
    {
        let mut store = EventStore::open(&path, OpenMode::MustExist).unwrap();
        let failed = events::source::SourceEvent::PollFailed(events::source::PollFailed {
            window_start: Utc::now(),
            window_end: Utc::now(),
            error: "RMS searchOrder failed after 5 attempts: HTTP 503".into(),
            kind: events::system::FailureKind::Outage,
        });
        store
            .append("poll-rakuten", ExpectedVersion::Any, &[failed.to_new_event(Meta::by(Actor::reactor("receive")))])
            .unwrap();
    }
    let html = dir.path().join("incident.html");
    let from = "2026-11-22 09:00";
    let out = run(&path, &["replay", "incident", "--from", from, "--html", html.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("インシデント報告: 2026-11-22 09:00 JST 〜 "), "{text}");
    assert!(
        text.contains("poll-rakuten: ") && text.contains("RMS searchOrder failed after 5 attempts: HTTP 503"),
        "{text}"
    );
    assert!(text.contains("まだ復旧していません"), "{text}");
    assert!(text.contains("■ この間に入った注文: 10 件"), "{text}");
    assert!(text.contains("operator:tanaka") && text.contains("在庫補充済み"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<title>インシデント報告") && page.contains("在庫補充済み") && page.contains("poll-rakuten"));
    let json: Value =
        serde_json::from_str(&stdout(&run(&path, &["replay", "incident", "--from", from, "--json"]))).unwrap();
    assert_eq!(json["arrived"].as_array().unwrap().len(), 10);
    assert_eq!(json["operator_actions"][0]["actor"], "operator:tanaka");
    let bad = run(&path, &["replay", "incident", "--from", "yesterday"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--from \"yesterday\" is not a time"), "{}", stderr(&bad));
}

#[test]
fn bad_databases_orders_statuses_and_events_get_one_clear_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = run(&dir.path().join("none.db"), &["order", "list"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no ledger at"), "{}", stderr(&missing));
    assert!(!dir.path().join("none.db").exists());

    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, vec![0x42u8; 8192]).unwrap();
    let out = run(&corrupt, &["order", "list"]);
    assert!(stderr(&out).contains("not an mcf-ledger database"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&corrupt).unwrap(), vec![0x42u8; 8192]);

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t (x);").unwrap();
    assert!(stderr(&run(&foreign, &["init"])).contains("another application"));

    let path = sample_ledger(&dir);
    let unknown = run(&path, &["order", "show", "rakuten-999"]);
    assert_eq!(stderr(&unknown).trim(), "mcf-ledger: error: 注文 rakuten-999 は台帳にありません");
    let bad_key = run(&path, &["order", "show", "amazon-1"]);
    assert!(stderr(&bad_key).contains("unknown marketplace"), "{}", stderr(&bad_key));
    let bad_status = run(&path, &["order", "list", "--status", "DONE"]);
    assert_ne!(bad_status.status.code(), Some(0));
    assert!(stderr(&bad_status).contains("unknown status \"DONE\""), "{}", stderr(&bad_status));

    // An event this build does not know, as a newer build might write it.
    let head = {
        let mut store = EventStore::open(&path, OpenMode::MustExist).unwrap();
        let stream = key(Status::Received).stream();
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                &[NewEvent::new("OrderTeleported", 1, "{}".into(), Meta::by(Actor::system()))],
            )
            .unwrap();
        store.head_position().unwrap()
    };
    let out = run(&path, &["order", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let line = stderr(&out);
    assert!(line.contains("OrderTeleported") && line.contains(&format!("position {head}")), "{line}");
    assert_eq!(line.trim().lines().count(), 1, "{line}");
    assert_eq!(EventStore::open(&path, OpenMode::ReadOnly).unwrap().head_position().unwrap(), head);

    // A ledger written by a newer schema.
    let newer = dir.path().join("newer.db");
    assert!(run(&newer, &["init"]).status.success());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute("UPDATE ledger_schema SET version = 7 WHERE component = 'events'", [])
        .unwrap();
    let out = run(&newer, &["order", "list"]);
    assert!(stderr(&out).contains("newer than this build understands"), "{}", stderr(&out));
}

/// A ledger of `orders` orders spread over every status.
fn larger_ledger(dir: &tempfile::TempDir, orders: u32) -> PathBuf {
    let path = dir.path().join("shop.db");
    assert!(run(&path, &["init"]).status.success());
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
    let mut ledger = Ledger::open_with_clock(&path, OpenMode::MustExist, Arc::new(clock.clone())).unwrap();
    for n in 0..orders {
        let status = Status::ALL[n as usize % Status::ALL.len()];
        let order = OrderKey::new(Marketplace::Yahoo, &format!("store-{:08}", 10_000_001 + n)).unwrap();
        let events = lifecycle_to(&order, status).into_iter().map(OrderAppend::from).collect();
        ledger.append_order(&order, ExpectedVersion::Any, events, Meta::by(Actor::reactor("test"))).unwrap();
        clock.advance(Duration::minutes(1));
    }
    path
}

fn order_rows(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row("SELECT count(*) FROM order_status", [], |r| r.get(0)).unwrap()
}

/// Overwrites one leaf page of the events table (not the last, so the head can still be read)
/// with garbage, as a failing disk would.
fn damage_an_events_page(path: &Path) {
    let (page, size) = {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let page: i64 = conn
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (page, size)
    };
    let mut bytes = std::fs::read(path).unwrap();
    let start = ((page - 1) * size) as usize;
    bytes[start..start + size as usize].fill(0xA5);
    std::fs::write(path, bytes).unwrap();
}

/// One stderr line, exit 1, naming what the issue names.
fn refuses(output: &Output, needles: &[&str]) {
    let line = stderr(output);
    assert_eq!(output.status.code(), Some(1), "exit code for {line}");
    assert_eq!(line.trim().lines().count(), 1, "one line: {line}");
    for needle in needles {
        assert!(line.contains(needle), "{line:?} should name {needle:?}");
    }
}

#[test]
fn damaged_ledgers_are_named_by_every_tool_and_nothing_recorded_is_lost() {
    // Events this build cannot fold, appended after the projections caught up, as a newer
    // build or a hand edit would leave them.
    let unfoldable = [
        ("OrderTeleported", 1, "{}", "unknown event type"),
        ("OrderVerified", 1, r#"{"note":7}"#, "malformed OrderVerified payload"),
        ("OrderVerified", 9, r#"{"note":""}"#, "schema 9 is newer than this build understands"),
    ];
    for (event_type, schema, data, why) in unfoldable {
        let dir = tempfile::tempdir().unwrap();
        let path = sample_ledger(&dir);
        let stream = key(Status::Received).stream();
        let position = {
            let mut store = EventStore::open(&path, OpenMode::MustExist).unwrap();
            let event = NewEvent::new(event_type, schema, data.into(), Meta::by(Actor::system()));
            store.append(&stream, ExpectedVersion::Any, &[event]).unwrap();
            store.head_position().unwrap()
        };
        let named = [
            format!("cannot fold the event at position {position} (stream {stream}, type {event_type})"),
            why.to_owned(),
        ];
        let named: Vec<&str> = named.iter().map(String::as_str).collect();
        refuses(&run(&path, &["replay", "verify"]), &named);
        refuses(&run(&path, &["audit"]), &named);
        let rebuild = run(&path, &["replay", "rebuild"]);
        refuses(&rebuild, &named);
        assert!(stderr(&rebuild).contains("nothing was changed"), "{}", stderr(&rebuild));
        assert_eq!(order_rows(&path), 10, "{event_type}: the live projections are as they were");
        let export = run(&path, &["replay", "export"]);
        assert!(export.status.success(), "export shows every stored event, the bad one too");
        assert!(stdout(&export).contains(&format!("\"position\":{position}")));
    }

    // Projections or events written by a newer build: every tool refuses, none says "fine".
    for component in ["projections", "events"] {
        let dir = tempfile::tempdir().unwrap();
        let path = sample_ledger(&dir);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE ledger_schema SET version = 99 WHERE component = ?1", [component])
            .unwrap();
        for args in
            [&["audit"][..], &["replay", "verify"], &["replay", "export"], &["order", "list"], &["replay", "rebuild"]]
        {
            refuses(&run(&path, args), &[component, "schema is at version 99, newer than this build understands"]);
        }
    }

    // One damaged page in the events table: a rebuild fails and leaves the projections alone.
    let dir = tempfile::tempdir().unwrap();
    let path = larger_ledger(&dir, 40);
    assert_eq!(order_rows(&path), 40);
    damage_an_events_page(&path);
    let rebuild = run(&path, &["replay", "rebuild"]);
    refuses(&rebuild, &["nothing was changed", "malformed"]);
    assert_eq!(order_rows(&path), 40, "40 order rows before, 40 after");
    let list = run(&path, &["order", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(serde_json::from_str::<Vec<Value>>(&stdout(&list)).unwrap().len(), 40);
    refuses(&run(&path, &["replay", "verify"]), &["malformed"]);
    refuses(&run(&path, &["audit"]), &["malformed"]);
}

#[test]
fn the_web_admin_refuses_to_start_without_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let database = sample_ledger(&dir);
    for command in ["serve", "run"] {
        let out = bin()
            .env_remove("WEB_PASSWORD")
            .env("WEB_USERNAME", "admin")
            .env("AMAZON_CLIENT_ID", "x")
            .env("AMAZON_CLIENT_SECRET", "x")
            .env("AMAZON_REFRESH_TOKEN", "x")
            .arg("--database")
            .arg(&database)
            .arg(command)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(stderr(&out).contains("will not start without a login"), "{}", stderr(&out));
    }
}

/// Reads the child's stdout until a line contains `marker`.
async fn line_with(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    marker: &str,
) -> String {
    loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
            .await
            .expect("the process answers in time")
            .unwrap()
            .unwrap_or_else(|| panic!("stdout ended before {marker:?}"));
        if line.contains(marker) {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_reaches_every_status_serves_the_admin_and_leaves_a_sound_ledger() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("demo.db");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
        .env("RUST_LOG", "warn")
        .arg("--database")
        .arg(&database)
        .args(["demo", "--for", "60", "--cycle-seconds", "2", "--orders", "14", "--seed", "7", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let admin = line_with(&mut lines, "admin:").await;
    let url = admin.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let password = admin.split("password: ").nth(1).unwrap().trim_end_matches(')').trim().to_owned();
    let http = reqwest::Client::new();
    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    let page = http.get(&url).basic_auth("demo", Some(&password)).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("注文一覧"), "the admin lists the demo's orders");
    assert_eq!(http.get(&url).send().await.unwrap().status(), reqwest::StatusCode::UNAUTHORIZED);
    let mut rest = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push(line);
    }
    let status = child.wait().await.unwrap();
    let text = rest.join("\n");
    assert!(status.success(), "{text}");
    assert!(text.contains("every status of the guide was reached"), "{text}");
    assert!(text.contains(&format!("ledger: {}", database.display())), "{text}");
    // Mail flowed both ways: the marketplaces' notices were read from the sandbox mailbox (an
    // order seen by mail, then confirmed by the API), and the system's mail went out by SMTP.
    let mail_line = text.lines().find(|l| l.starts_with("mail: ")).unwrap_or_else(|| panic!("{text}"));
    let counts: Vec<u64> = mail_line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(counts.len() == 2 && counts[0] >= 14 && counts[1] >= 1, "{mail_line}");
    assert!(
        text.contains("calls refused for coming faster than the quota: Amazon 0, RMS 0, Yahoo 0"),
        "the strict sandboxes throttled nothing: {text}"
    );
    let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
    let events = store.read_all(0, 1_000_000).unwrap();
    let count =
        |kind: &str, needle: &str| events.iter().filter(|e| e.event_type == kind && e.data.contains(needle)).count();
    assert!(count("MailReceived", "rakuten_order") >= 1 && count("MailReceived", "yahoo_order") >= 1);
    assert!(count("OrderDetected", "\"mail\"") >= 1, "orders were detected from their mail");
    assert!(count("CustomerEmailSent", "") >= 1, "the payment guidance went out");
    assert!(
        count("OrderFailed", "Amazonの上限は住所1〜3の合計40文字") >= 1,
        "the long address stopped before any call, in Japanese"
    );
    assert!(count("WriteDone", "yahoo_completion") >= 1, "Yahoo orders were completed (OrderStatus 5)");
    drop(store);
    // The invariant checker finds nothing wrong with what the demo did.
    let audit = run(&database, &["audit"]);
    assert!(audit.status.success(), "{}{}", stdout(&audit), stderr(&audit));
    // A second demo on the same file refuses: the demo starts fresh.
    let again = run(&database, &["demo", "--for", "1", "--port", "0"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
}

/// What `mcf-ledger run` needs: a web login, and Amazon pointed at `amazon`.
fn daemon_env(amazon: &sandbox::amazon::AmazonSandbox) -> Vec<(&'static str, String)> {
    let config = amazon.config();
    vec![
        ("RUST_LOG", "warn".into()),
        ("WEB_USERNAME", "admin".into()),
        ("WEB_PASSWORD", "s3cret-daemon".into()),
        ("AMAZON_CLIENT_ID", config.client_id.clone()),
        ("AMAZON_CLIENT_SECRET", config.client_secret.clone()),
        ("AMAZON_REFRESH_TOKEN", config.refresh_token.clone()),
        ("AMAZON_SP_API_BASE_URL", amazon.base_url()),
        ("AMAZON_LWA_TOKEN_URL", amazon.token_url()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_cycles_and_stops_gracefully_on_sigterm() {
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let database = sample_ledger(&dir);
    let amazon = AmazonSandbox::start(AmazonSandboxConfig::default()).await.unwrap();
    let rms = sandbox::rakuten::RakutenSandbox::start(Default::default(), Arc::new(sandbox::WallClock)).await.unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
        .envs(daemon_env(&amazon))
        .env("RAKUTEN_SERVICE_SECRET", &rms.config().service_secret)
        .env("RAKUTEN_LICENSE_KEY", &rms.config().license_key)
        .env("RAKUTEN_API_BASE_URL", rms.base_url())
        .env("SKU_MASTER_PATH", dir.path().join("missing-master.xlsx"))
        .env("CYCLE_MINUTES", "1")
        .arg("--database")
        .arg(&database)
        .args(["run", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = line_with(&mut lines, "web admin on").await;
    let url = banner.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches(',').to_owned();
    let probe = reqwest::get(format!("{url}healthz")).await.unwrap();
    assert_eq!(probe.status(), reqwest::StatusCode::OK);
    // The first cycle runs at start; wait for its record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
        let finished = store.read_stream("system").unwrap().iter().any(|e| e.event_type == "CycleFinished");
        if finished {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no cycle finished within a minute");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "a graceful stop exits 0");
    assert!(line_with(&mut lines, "stopped").await.contains("stopped"));
    assert!(run(&database, &["audit"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_that_cannot_read_a_source_exits_3_naming_each_and_refused_credentials_are_alerted_at_once() {
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    use sandbox::yahoo::{YahooSandbox, YahooSandboxConfig};
    let dir = tempfile::tempdir().unwrap();
    let database = sample_ledger(&dir);
    let amazon = AmazonSandbox::start(AmazonSandboxConfig::default()).await.unwrap();
    // RMS refuses the license key (401), Yahoo the refresh token (invalid_grant), and nothing
    // listens where the mailbox should be.
    let rms = sandbox::rakuten::RakutenSandbox::start(Default::default(), Arc::new(sandbox::WallClock)).await.unwrap();
    rms.expire_license();
    let yahoo =
        YahooSandbox::start(YahooSandboxConfig::generate("exit-store"), Arc::new(sandbox::WallClock)).await.unwrap();
    yahoo.revoke_consent();
    let master = dir.path().join("master.xlsx");
    mcf_ledger::demo::write_sample_master(&master).unwrap();
    amazon.set_stock("JP-TEA-100", 100);
    let key_file = dir.path().join("yahoo.pem");
    std::fs::write(&key_file, yahoo.config().public_key_pem()).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let yahoo_config = yahoo.config();
    let mut command = bin();
    command
        .envs(daemon_env(&amazon))
        .env("RAKUTEN_SERVICE_SECRET", &rms.config().service_secret)
        .env("RAKUTEN_LICENSE_KEY", &rms.config().license_key)
        .env("RAKUTEN_API_BASE_URL", rms.base_url())
        .env("YAHOO_CLIENT_ID", &yahoo_config.client_id)
        .env("YAHOO_CLIENT_SECRET", &yahoo_config.client_secret)
        .env("YAHOO_SELLER_ID", &yahoo_config.seller_id)
        .env("YAHOO_REFRESH_TOKEN", &yahoo_config.refresh_token)
        .env("YAHOO_PUBLIC_KEY", &key_file)
        .env("YAHOO_PUBLIC_KEY_VERSION", &yahoo_config.key_version)
        .env("YAHOO_API_BASE_URL", yahoo.api_base_url())
        .env("YAHOO_AUTH_BASE_URL", yahoo.auth_base_url())
        .env("IMAP_HOST", "127.0.0.1")
        .env("IMAP_PORT", closed_port.to_string())
        .env("IMAP_SECURITY", "none")
        .env("IMAP_USERNAME", "shop")
        .env("IMAP_PASSWORD", "x")
        .env("SKU_MASTER_PATH", &master)
        .arg("--database")
        .arg(&database)
        .arg("cycle")
        .current_dir(dir.path());
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let lines = stderr(&out);
    let source_lines: Vec<&str> = lines.lines().filter(|l| l.starts_with("mcf-ledger: source ")).collect();
    assert_eq!(source_lines.len(), 3, "one line per source: {lines}");
    assert!(
        lines.contains("source poll-rakuten refused our credentials (renew them; alerted by mail): Rakuten RMS"),
        "{lines}"
    );
    assert!(lines.contains("source poll-yahoo refused our credentials") && lines.contains("invalid_grant"), "{lines}");
    assert!(lines.contains("source poll-mailbox-inbox could not be read (outage; retried every cycle)"), "{lines}");
    assert!(
        lines
            .trim_end()
            .ends_with("the cycle ran, but 3 source(s) could not be read (see above); it retries next cycle"),
        "{lines}"
    );

    let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
    let system = store.read_stream("system").unwrap();
    let finished = system.iter().rev().find(|e| e.event_type == "CycleFinished").unwrap();
    let finished: Value = serde_json::from_str(&finished.data).unwrap();
    let failed: Vec<&str> =
        finished["failed_sources"].as_array().unwrap().iter().map(|f| f["source"].as_str().unwrap()).collect();
    assert_eq!(failed, ["poll-mailbox-inbox", "poll-rakuten", "poll-yahoo"]);
    // Refused credentials are alerted in this very cycle; the outage only after OUTAGE_ALERT_MINUTES.
    let alerts: Vec<Value> = system
        .iter()
        .filter(|e| e.event_type == "AlertIntended")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let kinds: Vec<&str> =
        alerts.iter().map(|a| a["kind"].as_str().unwrap()).filter(|k| *k != "daily_summary").collect();
    assert_eq!(kinds, ["credential_refused", "credential_refused"], "{alerts:?}");
    assert!(alerts.iter().any(|a| a["subject"].as_str().unwrap().contains("yahoo: 認証エラー")));
    assert!(store.read_stream("poll-rakuten").unwrap().iter().all(|e| e.event_type != "OutageStarted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_retry_backoff_at_once() {
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    use sandbox::faults::Fault;
    let dir = tempfile::tempdir().unwrap();
    let database = sample_ledger(&dir);
    let amazon = AmazonSandbox::start(AmazonSandboxConfig::default()).await.unwrap();
    let rms = sandbox::rakuten::RakutenSandbox::start(Default::default(), Arc::new(sandbox::WallClock)).await.unwrap();
    // RMS answers 503 to everything: the client backs off 0.25, 0.5, 1 and 2 s (and more with jitter).
    rms.faults().start_outage(Fault::Status(503));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
        .envs(daemon_env(&amazon))
        .env("RAKUTEN_SERVICE_SECRET", &rms.config().service_secret)
        .env("RAKUTEN_LICENSE_KEY", &rms.config().license_key)
        .env("RAKUTEN_API_BASE_URL", rms.base_url())
        .arg("--database")
        .arg(&database)
        .arg("cycle")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once the second attempt was refused: the client is in a backoff of at least 0.5 s,
    // with more than 3 s of backoff still ahead of it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rms.calls("searchOrder") < 2 {
        assert!(std::time::Instant::now() < deadline, "RMS was never called twice");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let signalled = std::time::Instant::now();
    let calls_at_signal = rms.calls("searchOrder");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output =
        tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let took = signalled.elapsed();
    // The backoff still ahead was at least 3.5 s; stopping well before it is what counts (a
    // loaded machine may take a moment to schedule the process's exit).
    assert!(took < std::time::Duration::from_secs(3), "stopped {took:?} after SIGTERM");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("stopped by a signal"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(rms.calls("searchOrder") <= calls_at_signal + 1, "no new attempt after the signal (one may be in flight)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_inside_a_long_stage_stops_after_the_order_under_way_and_the_next_cycle_ships_the_rest() {
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    use tokio::io::AsyncBufReadExt;
    const ORDERS: u32 = 30;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shop.db");
    assert!(run(&database, &["init"]).status.success());
    let mut ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
    let keys: Vec<OrderKey> = (1..=ORDERS)
        .map(|n| OrderKey::new(Marketplace::Rakuten, &format!("123456-20261122-{n:08}")).unwrap())
        .collect();
    for key in &keys {
        let events = lifecycle_to(key, Status::ShippingRequested).into_iter().map(OrderAppend::from).collect();
        ledger.append_order(key, ExpectedVersion::Exact(0), events, Meta::by(Actor::reactor("test"))).unwrap();
    }
    drop(ledger);
    // Each order takes a preview and a create, 150 ms each: the ship stage lasts about 9 s.
    let amazon = AmazonSandbox::start(AmazonSandboxConfig {
        latency: std::time::Duration::from_millis(150),
        ..AmazonSandboxConfig::default()
    })
    .await
    .unwrap();
    amazon.set_stock("JP-TEA-100", 1_000);
    let shop_env = |command: &mut tokio::process::Command| {
        command
            .envs(daemon_env(&amazon))
            .env("SKU_MASTER_PATH", dir.path().join("missing-master.xlsx"))
            .arg("--database")
            .arg(&database);
    };
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"));
    shop_env(&mut command);
    let mut child = command.args(["run", "--port", "0"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    line_with(&mut lines, "web admin on").await;
    let shipping = || {
        let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
        let ledger = Ledger::from_store(store, true).unwrap();
        keys.iter().filter(|k| ledger.order_state(k).unwrap().status == Some(Status::Shipping)).count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while shipping() < 3 {
        assert!(std::time::Instant::now() < deadline, "the ship stage never got going");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let asked = std::time::Instant::now();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "a graceful stop exits 0");
    let shipped_before_stop = shipping();
    assert!(
        shipped_before_stop < ORDERS as usize,
        "the stage stopped after the order under way ({shipped_before_stop} of {ORDERS} shipped, {took:?} after SIGTERM), not at its end"
    );
    let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
    let finished =
        store.read_stream("system").unwrap().into_iter().rev().find(|e| e.event_type == "CycleFinished").unwrap();
    let finished: serde_json::Value = serde_json::from_str(&finished.data).unwrap();
    assert_eq!(finished["interrupted"], true, "{finished}");
    let failures = finished["failures"].to_string();
    assert!(!failures.contains("stopped by a signal"), "a stage the shutdown stopped is no failure: {failures}");
    let ship = finished["reports"].as_array().unwrap().iter().find(|r| r["stage"] == "ship").unwrap();
    assert_eq!(ship["interrupted"], true, "{ship}");
    assert_eq!(ship["advanced"].as_u64().unwrap() as usize, shipped_before_stop, "{ship}");
    assert_eq!(amazon.create_requests() as usize, shipped_before_stop, "every created MCF order was recorded");
    drop(store);
    assert!(run(&database, &["audit"]).status.success());

    // A cron cycle stops the same way, and says so in its exit status.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"));
    shop_env(&mut command);
    let cron = command.args(["cycle", "--stage", "ship"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    while shipping() < shipped_before_stop + 2 {
        assert!(std::time::Instant::now() < deadline, "the cron cycle never got going");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = cron.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cron.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped by a signal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shipping() < ORDERS as usize, "the cron cycle stopped before the end too");

    // The next cycle ships the rest, each once.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"));
    shop_env(&mut command);
    let out = command.args(["cycle", "--stage", "ship"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(shipping(), ORDERS as usize);
    assert_eq!(amazon.orders().len(), ORDERS as usize, "one MCF order per order");
    assert_eq!(amazon.create_requests(), u64::from(ORDERS));
    assert!(run(&database, &["audit"]).status.success());
}

#[test]
fn replay_dry_run_prints_what_a_cycle_would_append_and_leaves_the_ledger_alone() {
    let dir = tempfile::tempdir().unwrap();
    let database = sample_ledger(&dir);
    let before = EventStore::open(&database, OpenMode::ReadOnly).unwrap().head_position().unwrap();
    let out = bin()
        .env("SKU_MASTER_PATH", dir.path().join("missing-master.xlsx"))
        .arg("--database")
        .arg(&database)
        .args(["replay", "dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let appended: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(appended.iter().any(|e| e["type"] == "CycleStarted"), "{}", stdout(&out));
    assert!(stderr(&out).contains("was not changed"));
    let after = EventStore::open(&database, OpenMode::ReadOnly).unwrap().head_position().unwrap();
    assert_eq!(before, after, "the live ledger is untouched");
}

#[test]
fn check_config_reports_per_feature_without_secrets() {
    let out = bin()
        .args(["check-config"])
        .env("WEB_USERNAME", "admin")
        .env("WEB_PASSWORD", "pa55-very-secret")
        .env("AMAZON_REFRESH_TOKEN", "Atzr|secret-token")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("[ready]   web admin"), "{text}");
    assert!(text.contains("[missing] Amazon SP-API (FBA MCF): AMAZON_CLIENT_ID, AMAZON_CLIENT_SECRET"), "{text}");
    assert!(!text.contains("pa55") && !text.contains("Atzr"), "{text}");
}

#[test]
fn the_cli_never_prints_control_characters_raw_and_names_the_uids_account_without_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    assert!(run(&path, &["init"]).status.success());
    let order = OrderKey::new(Marketplace::Yahoo, "store-10000001").unwrap();
    {
        let mut ledger = Ledger::open(&path, OpenMode::MustExist).unwrap();
        let mut details = events::order::sample::details("山田\u{1b}[31m 太郎\u{7}", "tea-100", 1);
        details.items[0].title = "緑茶\r\n偽の行".into();
        let events = vec![
            events::order::sample::detected(&order, events::order::DetectionSource::Api),
            events::order::OrderEvent::OrderDetailsRecorded(details),
            events::order::OrderEvent::OrderFailed(events::order::OrderFailed {
                stage: "check".into(),
                code: None,
                message: "bad\u{1b}]0;owned\u{7}".into(),
            }),
        ];
        let appends = events.into_iter().map(OrderAppend::from).collect();
        ledger.append_order(&order, ExpectedVersion::Any, appends, Meta::by(Actor::reactor("receive"))).unwrap();
    }
    for args in [
        &["order", "show", "yahoo-store-10000001"][..],
        &["order", "list"],
        &["replay", "order", "yahoo-store-10000001"],
    ] {
        let out = run(&path, args);
        assert!(out.status.success(), "{}", stderr(&out));
        let raw = out.stdout.clone();
        assert!(!raw.iter().any(|b| *b == 0x1b || *b == 0x07 || *b == b'\r'), "{args:?}: {}", stdout(&out));
        if args[1] == "show" {
            assert!(stdout(&out).contains("山田\\u{1b}[31m 太郎\\u{7}"), "{}", stdout(&out));
        }
    }
    let whoami = Command::new("id").arg("-un").output().unwrap();
    let account = String::from_utf8_lossy(&whoami.stdout).trim().to_owned();
    let out = bin()
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("USERNAME")
        .arg("--database")
        .arg(&path)
        .args(["order", "set-status", "yahoo-store-10000001", "CANCELLED", "--reason", "お客様都合"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let store = EventStore::open(&path, OpenMode::ReadOnly).unwrap();
    let last = store.read_stream(&order.stream()).unwrap().pop().unwrap();
    assert_eq!(last.meta.actor.as_str(), format!("operator:{account}"));
}

#[test]
fn invalid_configuration_is_one_line_per_variable_at_start_and_in_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    let bad = [("IMAP_PORT", "abc"), ("IMAP_SECURITY", "bogus"), ("SMTP_SECURITY", "bogus")];
    let expected = [
        "mcf-ledger: error: IMAP_PORT=\"abc\" is not valid: a port number 1-65535",
        "mcf-ledger: error: IMAP_SECURITY=\"bogus\" is not valid: tls or none",
        "mcf-ledger: error: SMTP_SECURITY=\"bogus\" is not valid: starttls, tls or none",
    ];
    for args in [&["order", "list"][..], &["cycle"], &["check-config"]] {
        let out = bin().arg("--database").arg(&path).args(args).envs(bad).current_dir(dir.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let lines: Vec<String> = stderr(&out).lines().map(str::to_owned).collect();
        assert_eq!(lines, expected, "{args:?}");
    }
    // Nothing falls back to a default in silence.
    let out =
        bin().args(["check-config"]).env("IMAP_HOST", "mail.example.jp").current_dir(dir.path()).output().unwrap();
    assert!(stderr(&out).contains("IMAP_USERNAME is not set, but mail intake (IMAP) needs it"), "{}", stderr(&out));
}

#[test]
fn init_says_what_it_did_to_an_empty_file_and_names_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let out = run(&empty, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("initialised the empty file {} as a ledger", empty.display()));
    let again = run(&empty, &["init"]);
    assert_eq!(stdout(&again).trim(), format!("{} is already a ledger (0 events); nothing changed", empty.display()));
    let nowhere = dir.path().join("no-such-dir").join("shop.db");
    let out = run(&nowhere, &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "mcf-ledger: error: cannot create {}: the directory {} does not exist",
            nowhere.display(),
            dir.path().join("no-such-dir").display()
        )
    );
}

#[test]
fn mail_inspect_classifies_a_file_without_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("order.eml");
    std::fs::write(
        &file,
        "From: order@rakuten.co.jp\r\nSubject: =?UTF-8?B?44CQ5qW95aSp5biC5aC044CR5rOo5paH5YaF5a6544GU56K66KqN?=\r\nMessage-ID: <m1@rakuten>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n[受注番号] 123456-20261122-00000001\r\n",
    )
    .unwrap();
    let out = bin().args(["mail", "inspect"]).arg(&file).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["subject"], "【楽天市場】注文内容ご確認");
    assert_eq!(json["classification"]["kind"], "rakuten_order");
    assert_eq!(json["classification"]["order_number"], "123456-20261122-00000001");
    assert!(!dir.path().join("mcf-ledger.db").exists(), "no ledger was created");
    let shipment = dir.path().join("shipment.eml");
    let body = encoding_rs::SHIFT_JIS
        .encode("注文番号: RK-123456-20261122-00000001\r\nお問い合わせ伝票番号: 3690-1234-5678\r\n")
        .0;
    let mut raw =
        b"From: ship-confirm@amazon.co.jp\r\nSubject: shipped\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n"
            .to_vec();
    raw.extend(body.iter());
    std::fs::write(&shipment, raw).unwrap();
    let out = bin().args(["mail", "inspect"]).arg(&shipment).output().unwrap();
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["classification"]["tracking_number"], "3690-1234-5678", "{json}");
    let missing = bin().args(["mail", "inspect", "/nonexistent.eml"]).output().unwrap();
    assert!(stderr(&missing).contains("cannot read /nonexistent.eml"));
}

#[test]
fn a_second_cycle_exits_at_once_naming_who_holds_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    mcf_ledger::lease::acquire(&mut conn, "cycle", "cron-host:4242", chrono::Utc::now(), chrono::Duration::minutes(15))
        .unwrap();
    let started = std::time::Instant::now();
    let out = bin()
        .arg("--database")
        .arg(&path)
        .args(["cycle"])
        .env("AMAZON_CLIENT_ID", "x")
        .env("AMAZON_CLIENT_SECRET", "x")
        .env("AMAZON_REFRESH_TOKEN", "x")
        .env("AMAZON_SP_API_BASE_URL", "http://127.0.0.1:9")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("held by cron-host:4242"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "exits at once");
    let unconfigured = bin()
        .arg("--database")
        .arg(&path)
        .args(["cycle", "--stage", "check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        stderr(&unconfigured).contains("Amazon is not configured: set AMAZON_CLIENT_ID"),
        "{}",
        stderr(&unconfigured)
    );
}

#[test]
fn audit_passes_a_sound_ledger_and_names_a_broken_promise() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_ledger(&dir);
    let ok = run(&path, &["audit"]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("audited 10 orders"), "{}", stdout(&ok));
    let shipped = key(Status::Shipped);
    let mut store = EventStore::open(&path, OpenMode::MustExist).unwrap();
    let again = events::order::OrderEvent::ShipmentReported(events::order::sample::tracking())
        .to_new_event(Meta::by(Actor::system()));
    store.append(&shipped.stream(), ExpectedVersion::Any, &[again]).unwrap();
    drop(store);
    let bad = run(&path, &["audit"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains(&format!("{shipped} shipment_reported_twice")), "{}", stdout(&bad));
}

/// The web admin, cron cycles and CLI operators on one file at once: nobody sees "database is
/// locked", and every operator's change is in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_admin_cron_cycles_and_cli_actions_share_the_ledger_without_lost_updates() {
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    let dir = tempfile::tempdir().unwrap();
    let database = sample_ledger(&dir);
    let error_order = |n: u32| OrderKey::new(Marketplace::Yahoo, &format!("store-{:08}", 50_000 + n)).unwrap();
    {
        let mut ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
        for n in 0..24 {
            let key = error_order(n);
            let appends = lifecycle_to(&key, Status::Error).into_iter().map(OrderAppend::from).collect();
            ledger.append_order(&key, ExpectedVersion::Any, appends, Meta::by(Actor::reactor("test"))).unwrap();
        }
    }
    let amazon = AmazonSandbox::start(AmazonSandboxConfig::default()).await.unwrap();
    let ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
    let state = mcf_ledger::web::AppState::new(
        ledger,
        mcf_ledger::web::WebSettings::new("admin", "concurrent-pass", false).unwrap(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mcf_ledger::web::serve(listener, state, std::future::pending()));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let list = http.get(format!("{base}/")).basic_auth("admin", Some("concurrent-pass")).send().await.unwrap();
    let html = list.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = html[start..start + 64].to_owned();

    let config = amazon.config().clone();
    let cycle_env = move |command: &mut Command| {
        command
            .env("AMAZON_CLIENT_ID", &config.client_id)
            .env("AMAZON_CLIENT_SECRET", &config.client_secret)
            .env("AMAZON_REFRESH_TOKEN", &config.refresh_token)
            .env("AMAZON_SP_API_BASE_URL", amazon.base_url())
            .env("AMAZON_LWA_TOKEN_URL", amazon.token_url())
            .env("SKU_MASTER_PATH", "/nonexistent/master.xlsx");
    };
    let cron = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            let mut outputs = Vec::new();
            for _ in 0..4 {
                let mut command = bin();
                cycle_env(&mut command);
                outputs.push(
                    command.arg("--database").arg(&database).args(["cycle", "--stage", "check"]).output().unwrap(),
                );
            }
            outputs
        })
    };
    let cli = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            (0..12)
                .map(|n| {
                    let order = error_order(n).to_string();
                    run(&database, &["order", "set-status", &order, "RECEIVED", "--reason", "CLI: fetch again"])
                })
                .collect::<Vec<_>>()
        })
    };
    let mut web_answers = Vec::new();
    for n in 12..24 {
        let order = error_order(n);
        let version = Ledger::open(&database, OpenMode::ReadOnly).unwrap().order_state(&order).unwrap().version;
        let answer = http
            .post(format!("{base}/orders/{order}/status"))
            .basic_auth("admin", Some("concurrent-pass"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("to", "RECEIVED"),
                ("reason", "web: fetch again"),
                ("version", &version.to_string()),
            ])
            .send()
            .await
            .unwrap();
        let status = answer.status();
        web_answers.push((status, answer.text().await.unwrap()));
    }
    let cron = cron.await.unwrap();
    let cli = cli.await.unwrap();
    for output in cron.iter().chain(cli.iter()) {
        let text = format!("{}{}", stdout(output), stderr(output));
        assert!(!text.to_lowercase().contains("database is locked"), "{text}");
    }
    for (output, n) in cli.iter().zip(0..) {
        assert!(output.status.success(), "CLI action {n}: {}", stderr(output));
    }
    for (status, body) in &web_answers {
        assert_eq!(*status, reqwest::StatusCode::SEE_OTHER, "{body}");
        assert!(!body.to_lowercase().contains("locked"));
    }
    // No update lost: every order moved, each by its own operator.
    let ledger = Ledger::open(&database, OpenMode::ReadOnly).unwrap();
    for n in 0..24 {
        let order = error_order(n);
        let events = ledger.store().read_stream(&order.stream()).unwrap();
        let changes: Vec<_> = events.iter().filter(|e| e.event_type == "OperatorStatusChanged").collect();
        assert_eq!(changes.len(), 1, "{order}");
        let actor = changes[0].meta.actor.to_string();
        assert!(if n < 12 { actor == "operator:tanaka" } else { actor == "operator:admin" }, "{order}: {actor}");
    }
    assert!(run(&database, &["audit"]).status.success());
}

#[test]
fn user_add_reads_the_password_from_stdin_and_writes_an_argon2id_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let add = |name: &str, password: &str| {
        let mut child = bin()
            .args(["user", "add", name, "--users-file"])
            .arg(&users)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let added = add("sato", "sakura-2026\n");
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stdout(&added).contains("added sato"), "{}", stdout(&added));
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.starts_with("sato:$argon2id$") && !text.contains("sakura"), "{text}");
    let again = add("sato", "momiji\n");
    assert!(stdout(&again).contains("changed the password of sato"), "{}", stdout(&again));
    assert_eq!(std::fs::read_to_string(&users).unwrap().lines().count(), 1);
    let bad = add("sato san", "x\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("is not allowed"), "{}", stderr(&bad));
    let empty = add("suzuki", "\n");
    assert!(stderr(&empty).contains("the password is empty"), "{}", stderr(&empty));
    let nowhere = bin().args(["user", "add", "kato"]).env_remove("WEB_USERS_FILE").output().unwrap();
    assert!(stderr(&nowhere).contains("--users-file"), "{}", stderr(&nowhere));
}

#[test]
fn stock_plan_shows_what_each_listing_would_be_told_from_the_last_fba_reading_offline() {
    use events::stock::{FbaLevel, FbaStockRead, StockEvent, FBA_STOCK_STREAM};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shop.db");
    assert!(run(&database, &["init"]).status.success());
    let master = dir.path().join("master.xlsx");
    mcf_ledger::demo::write_sample_master(&master).unwrap();
    let mut ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
    // One order holds two units Amazon has not reserved yet (no MCF order).
    let held = OrderKey::new(Marketplace::Rakuten, "123456-20261122-00000001").unwrap();
    let events = lifecycle_to(&held, Status::ShippingRequested).into_iter().map(OrderAppend::from).collect();
    ledger.append_order(&held, ExpectedVersion::Exact(0), events, Meta::by(Actor::reactor("test"))).unwrap();
    let read = StockEvent::FbaStockRead(FbaStockRead {
        by: "check".into(),
        whole: false,
        levels: vec![
            FbaLevel { seller_sku: "JP-TEA-100".into(), fulfillable: 10 },
            FbaLevel { seller_sku: "JP-CUP-ARITA".into(), fulfillable: 0 },
            FbaLevel { seller_sku: "JP-MATCHA-30".into(), fulfillable: 0 },
        ],
    });
    ledger
        .append(FBA_STOCK_STREAM, ExpectedVersion::Any, &[read.to_new_event(Meta::by(Actor::reactor("check")))])
        .unwrap();
    drop(ledger);
    let plan = |args: &[&str]| {
        bin()
            .env("SKU_MASTER_PATH", &master)
            .env("STOCK_BUFFER", "1")
            .arg("--database")
            .arg(&database)
            .args(args)
            .output()
            .unwrap()
    };
    let json = plan(&["stock", "plan", "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10, "5 listings at each marketplace: {json}");
    let row = |market: &str, sku: &str| {
        rows.iter().find(|r| r["marketplace"] == market && r["marketplace_sku"] == sku).unwrap().clone()
    };
    // 10 fulfillable, 2 allotted, buffer 1: 7 single packs; floor(8 / 3) - 1 = 1 set of three.
    let tea = row("rakuten", "tea-100");
    assert_eq!(
        (tea["fba_fulfillable"].as_u64(), tea["allotted"].as_u64(), tea["quantity"].as_u64()),
        (Some(10), Some(2), Some(7))
    );
    assert_eq!(row("yahoo", "tea-3pack")["quantity"], 1);
    assert_eq!(tea["key"]["manage_number"], "green-tea", "where it is written at RMS: {tea}");
    assert_eq!(row("yahoo", "tea-3pack")["key"]["item_code"], "green-tea:3pack");
    assert_eq!(row("rakuten", "cup")["quantity"], 0, "never below 0");
    assert_eq!(row("rakuten", "matcha-30")["published"], Value::Null, "never told");
    // The gift set (one tea, two cups) is as scarce as its cups: its row shows them, and both parts.
    let gift = row("yahoo", "tea-cup-gift");
    assert_eq!((gift["quantity"].as_u64(), gift["seller_sku"].as_str()), (Some(0), Some("JP-CUP-ARITA")), "{gift}");
    assert_eq!(gift["components"][0]["sets"], 8, "tea alone: (10 - 2) / 1");
    // 2 of the 3 FBA SKUs on sale would go to 0 at once (cups and matcha): over the default 30%.
    assert_eq!(json["brakes"][0]["kind"], "many_to_zero", "{json}");
    assert_eq!((json["brakes"][0]["to_zero"].as_u64(), json["brakes"][0]["on_sale"].as_u64()), (Some(2), Some(3)));

    let human = plan(&["stock", "plan"]);
    assert!(human.status.success(), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(text.contains("JST"), "the reading's time is JST: {text}");
    assert!(text.contains("ブレーキ: 販売中の 3 SKU のうち 2 SKU が一度に在庫0になります"), "{text}");
    assert!(text.contains("set component JP-CUP-ARITA x2: fba 0, allotted 0 -> 0 sets"), "{text}");
    // Before any workbook was recorded, a master that cannot be read is a clear error, exit 1.
    let missing = bin()
        .env("SKU_MASTER_PATH", dir.path().join("nowhere.xlsx"))
        .arg("--database")
        .arg(&database)
        .args(["stock", "plan"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("nowhere.xlsx"), "{}", stderr(&missing));
    // Once check has recorded a workbook, the plan uses that one, as check does, even when the
    // file on disk is broken meanwhile.
    let mut ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
    mcf_ledger::stages::check::SkuMaster::new(master.clone()).mapping(&mut ledger).unwrap();
    drop(ledger);
    std::fs::write(&master, b"not a workbook").unwrap();
    let recorded = plan(&["stock", "plan", "--json"]);
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    let recorded: Value = serde_json::from_slice(&recorded.stdout).unwrap();
    assert_eq!(recorded["rows"].as_array().unwrap().len(), 10, "{recorded}");
    assert!(recorded["master"].as_str().unwrap().contains("sha256"), "{recorded}");
}

/// `stock confirm` lets a held plan go, once; with nothing held it says so and exits 1.
#[test]
fn stock_confirm_lets_a_held_plan_go_once() {
    use events::stock::{StockEvent, StockSyncHeld, STOCK_SYNC_STREAM};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shop.db");
    assert!(run(&database, &["init"]).status.success());
    let nothing = run(&database, &["stock", "confirm"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(stderr(&nothing).contains("no stock plan is held"), "{}", stderr(&nothing));
    let mut ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
    let held = StockEvent::StockSyncHeld(StockSyncHeld { reasons: vec!["many to zero".into()] });
    ledger
        .append(STOCK_SYNC_STREAM, ExpectedVersion::Any, &[held.to_new_event(Meta::by(Actor::reactor("stock")))])
        .unwrap();
    drop(ledger);
    let confirmed = run(&database, &["stock", "confirm"]);
    assert!(confirmed.status.success(), "{}", stderr(&confirmed));
    assert!(stdout(&confirmed).contains("published at the next cycle"));
    assert_eq!(run(&database, &["stock", "confirm"]).status.code(), Some(1), "already confirmed");
    let ledger = Ledger::open(&database, OpenMode::MustExist).unwrap();
    assert_eq!(ledger.store().read_stream_of_types(STOCK_SYNC_STREAM, &["StockSyncConfirmed"]).unwrap().len(), 1);
}
