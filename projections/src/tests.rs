use crate::ledger::{Ledger, LedgerError, OrderAppend};
use crate::queries::{self, OrderFilter};
use crate::{Projections, PROJECTION_TABLES};
use chrono::NaiveDate;
use chrono::{Duration, TimeZone, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta, NewEvent};
use events::order::sample::lifecycle_to;
use events::order::{OrderEvent, Status};
use events::source::{CredentialChecked, PollFailed, PollSucceeded, SourceEvent, SourceState};
use events::store::OpenMode;
use events::{Clock, FixedClock, Marketplace, OrderKey};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

fn clock() -> FixedClock {
    FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap())
}

fn open(path: &Path, clock: &FixedClock) -> Ledger {
    Ledger::open_with_clock(path, OpenMode::CreateIfMissing, Arc::new(clock.clone())).unwrap()
}

fn key(n: u32) -> OrderKey {
    let marketplace = if n.is_multiple_of(2) { Marketplace::Rakuten } else { Marketplace::Yahoo };
    OrderKey::new(marketplace, &format!("100-{n:08}")).unwrap()
}

fn record(ledger: &mut Ledger, key: &OrderKey, events: Vec<OrderEvent>, actor: Actor) {
    let appends = events.into_iter().map(OrderAppend::from).collect();
    ledger.append_order(key, ExpectedVersion::Any, appends, Meta::by(actor)).unwrap();
}

/// Every projection table as sorted text, to compare live and rebuilt bit for bit.
fn dump(conn: &Connection) -> Vec<String> {
    let mut out = vec![];
    for (table, order_by) in PROJECTION_TABLES {
        let mut statement = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {order_by}")).unwrap();
        let columns = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                let values: Vec<String> = (0..columns).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
                Ok(format!("{table}: {}", values.join(" | ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[test]
fn order_rows_counts_and_history_follow_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut ledger = open(&dir.path().join("l.db"), &clock);
    for (n, status) in Status::ALL.into_iter().enumerate() {
        record(&mut ledger, &key(n as u32), lifecycle_to(&key(n as u32), status), Actor::reactor("test"));
        clock.advance(Duration::minutes(1));
    }
    let conn = ledger.store().connection();
    let counts = queries::status_counts(conn).unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    let shipped =
        queries::list_orders(conn, &OrderFilter { status: Some(Status::Shipped), ..Default::default() }).unwrap();
    assert_eq!(shipped.len(), 1);
    let row = &shipped[0];
    assert_eq!(row.order, key(7).to_string());
    assert_eq!(row.tracking_number.as_deref(), Some("123456789012"));
    assert_eq!(row.shipping_speed.as_deref(), Some("Standard"));
    assert_eq!(row.buyer_name.as_deref(), Some("山田 太郎"));
    assert_eq!(row.item_summary.as_deref(), Some("有機緑茶 100g ×2"));
    let error = queries::list_orders(conn, &OrderFilter { status: Some(Status::Error), ..Default::default() }).unwrap();
    assert!(error[0].error.as_deref().unwrap().contains("master.xlsx"));
    let newest_first = queries::list_orders(conn, &OrderFilter::default()).unwrap();
    assert_eq!(newest_first[0].order, key(9).to_string());
    let search =
        queries::list_orders(conn, &OrderFilter { search: Some("00000007".into()), ..Default::default() }).unwrap();
    assert_eq!(search.len(), 1);
    let history = crate::order_history::order_history(conn, &key(7)).unwrap();
    assert_eq!(history.len(), lifecycle_to(&key(7), Status::Shipped).len());
    assert_eq!(history[0].actor, "reactor:test");
    assert!(history.last().unwrap().summary.contains("モールに出荷を登録しました"), "{:?}", history.last());
}

#[test]
fn search_finds_anything_on_the_label_through_the_index_and_after_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = dir.path().join("l.db");
    let mut ledger = open(&path, &clock);
    for (n, status) in [(1, Status::Received), (2, Status::Shipping), (3, Status::Shipped)] {
        record(&mut ledger, &key(n), lifecycle_to(&key(n), status), Actor::reactor("test"));
    }
    let found = |ledger: &Ledger, text: &str| -> Vec<String> {
        let filter = OrderFilter { search: Some(text.into()), sort: queries::OrderSort::Number, ..Default::default() };
        queries::list_orders(ledger.store().connection(), &filter).unwrap().into_iter().map(|r| r.order).collect()
    };
    let uses_index = |text: &str| {
        let plan: Vec<String> = ledger
            .store()
            .connection()
            .prepare("EXPLAIN QUERY PLAN SELECT id FROM order_status WHERE id IN (SELECT rowid FROM order_search WHERE order_search MATCH ?1)")
            .unwrap()
            .query_map([text], |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        plan.iter().any(|step| step.contains("VIRTUAL TABLE INDEX"))
    };
    assert!(uses_index("\"0000002\""), "the search reads the trigram index");
    assert_eq!(found(&ledger, "0000002"), [key(2).to_string()], "the middle of an order number");
    assert_eq!(found(&ledger, "山田 太"), [key(2), key(1), key(3)].map(|k| k.to_string()), "a buyer, once recorded");
    let mcf = events::FulfillmentOrderId::for_order(&key(3)).to_string();
    assert_eq!(found(&ledger, &mcf[..mcf.len() - 2]), [key(3).to_string()], "an MCF id, once created");
    assert_eq!(found(&ledger, "rakuten-100-00000002").len(), 1, "a whole order key");
    assert!(found(&ledger, "\" OR *").is_empty(), "query syntax in the text is only text");
    assert_eq!(found(&ledger, "03").len(), 3, "two characters: a plain scan (every buyer's phone)");
    assert_eq!(found(&ledger, "神宮前").len(), 3, "an address");
    assert_eq!(found(&ledger, "0312345678").len(), 3, "a phone typed without hyphens");
    assert_eq!(found(&ledger, "有機緑茶").len(), 3, "an item's name");
    let tracking = events::order::sample::tracking().tracking_number;
    assert_eq!(found(&ledger, &tracking), [key(3).to_string()], "a tracking number");

    {
        let (projections, store) = ledger.projections_mut();
        let head = store.head_position().unwrap();
        projections.rebuild(store.connection_mut(), head, &mut |_| {}).unwrap();
    }
    assert_eq!(found(&ledger, "0000002"), [key(2).to_string()], "the index is whole again after a rebuild");
    record(&mut ledger, &key(4), lifecycle_to(&key(4), Status::Verified), Actor::reactor("test"));
    assert_eq!(found(&ledger, "00000004"), [key(4).to_string()], "and follows new orders again");
}

#[test]
fn a_rebuild_equals_the_live_projections_whatever_the_batch_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = dir.path().join("l.db");
    let mut ledger = open(&path, &clock);
    // Interleave orders so that batches cut through every order's life.
    let lives: Vec<(OrderKey, Vec<OrderEvent>)> =
        (0..30).map(|n| (key(n), lifecycle_to(&key(n), Status::ALL[n as usize % 10]))).collect();
    let longest = lives.iter().map(|(_, e)| e.len()).max().unwrap();
    for step in 0..longest {
        for (key, events) in &lives {
            if let Some(event) = events.get(step) {
                record(&mut ledger, key, vec![event.clone()], Actor::reactor("test"));
                clock.advance(Duration::seconds(7));
            }
        }
    }
    let live = dump(ledger.store().connection());
    for batch_size in [1, 3, 1000] {
        let (projections, store) = ledger.projections_mut();
        let mut rebuilt = Projections::standard().with_batch_size(batch_size);
        rebuilt.reset(store.connection_mut()).unwrap();
        rebuilt.catch_up(store.connection_mut()).unwrap();
        projections.forget_all();
        assert_eq!(dump(store.connection()), live, "batch size {batch_size}");
    }
}

#[test]
fn another_process_appending_is_seen_and_never_folded_onto_a_stale_cache() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = dir.path().join("l.db");
    let mut web = open(&path, &clock);
    let mut cron = open(&path, &clock);
    let k = key(2);
    let events = lifecycle_to(&k, Status::Shipping);
    let (first, rest) = events.split_at(3);
    record(&mut web, &k, first.to_vec(), Actor::operator("web"));
    record(&mut cron, &k, rest.to_vec(), Actor::reactor("ship"));
    // The web process's cache still holds the order at version 3; its next append must not
    // fold onto it.
    record(
        &mut web,
        &k,
        vec![OrderEvent::TrackingRecorded(events::order::sample::tracking())],
        Actor::reactor("monitor"),
    );
    let row = queries::get_order(web.store().connection(), &k.to_string()).unwrap().unwrap();
    assert_eq!(row.status, "SHIPPING");
    assert_eq!(row.mcf_order_id.as_deref(), Some("RK-100-00000002"));
    assert_eq!(row.tracking_number.as_deref(), Some("123456789012"));
    assert_eq!(row.version as usize, events.len() + 1);
    web.catch_up().unwrap();
    cron.catch_up().unwrap();
    assert_eq!(dump(web.store().connection()), dump(cron.store().connection()));
}

#[test]
fn a_poison_event_stops_projection_with_its_position_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = dir.path().join("l.db");
    let mut ledger = open(&path, &clock);
    record(&mut ledger, &key(0), lifecycle_to(&key(0), Status::Received), Actor::system());
    let before = dump(ledger.store().connection());
    let checkpoint = ledger.checkpoint().unwrap();
    // Two good events and then one this build does not know, in one batch.
    let good = lifecycle_to(&key(4), Status::Received).into_iter().map(|e| e.to_new_event(Meta::by(Actor::system())));
    ledger.store_mut().append(&key(4).stream(), ExpectedVersion::Any, &good.collect::<Vec<_>>()).unwrap();
    let poison = NewEvent::new("OrderTeleported", 1, "{}".into(), Meta::by(Actor::system()));
    ledger.store_mut().append(&key(4).stream(), ExpectedVersion::Any, &[poison]).unwrap();
    let err = ledger.catch_up().unwrap_err().to_string();
    assert_eq!(
        err,
        "cannot fold the event at position 5 (stream order-rakuten-100-00000004, type OrderTeleported): \
         unknown event type \"OrderTeleported\" (written by a newer build, or not by mcf-ledger)"
    );
    assert_eq!(dump(ledger.store().connection()), before, "the failed batch left no rows");
    assert_eq!(ledger.checkpoint().unwrap(), checkpoint);
    assert_eq!(ledger.store().head_position().unwrap(), 5, "nothing recorded was lost");
}

#[test]
fn operator_actions_on_a_stale_view_are_refused_and_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut ledger = open(&dir.path().join("l.db"), &clock);
    let k = key(2);
    record(&mut ledger, &k, lifecycle_to(&k, Status::OutOfStock), Actor::reactor("check"));
    let seen = ledger.order_state(&k).unwrap().version;
    record(
        &mut ledger,
        &k,
        vec![OrderEvent::ManualTaskDone(events::order::ManualTaskDone { task: "x".into(), note: String::new() })],
        Actor::operator("b"),
    );
    let err = ledger
        .operator_set_status(&k, Status::Verified, "在庫補充", Meta::by(Actor::operator("a")), Some(seen))
        .unwrap_err();
    assert!(matches!(err, LedgerError::Stale { .. }), "{err}");
    assert!(err.to_string().contains("再読み込み"), "{err}");
    let now = ledger.order_state(&k).unwrap();
    assert_eq!(now.status, Some(Status::OutOfStock));
    ledger
        .operator_set_status(&k, Status::Verified, "在庫補充", Meta::by(Actor::operator("a")), Some(now.version))
        .unwrap();
    let row = queries::get_order(ledger.store().connection(), &k.to_string()).unwrap().unwrap();
    assert_eq!(row.status, "VERIFIED");
    let history = crate::order_history::order_history(ledger.store().connection(), &k).unwrap();
    assert_eq!(history.last().unwrap().actor, "operator:a");
    assert!(history.last().unwrap().summary.contains("OUT_OF_STOCK → VERIFIED"));
}

#[test]
fn impossible_transitions_and_unknown_orders_are_refused_before_anything_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut ledger = open(&dir.path().join("l.db"), &clock);
    let k = key(2);
    record(&mut ledger, &k, lifecycle_to(&k, Status::Shipped), Actor::system());
    let head = ledger.store().head_position().unwrap();
    let err = ledger.operator_set_status(&k, Status::Verified, "x", Meta::by(Actor::operator("a")), None).unwrap_err();
    assert!(err.to_string().contains("SHIPPED から変更できるのは: なし"), "{err}");
    let err = ledger
        .append_order(
            &k,
            ExpectedVersion::Any,
            vec![events::order::sample::allotted().into()],
            Meta::by(Actor::system()),
        )
        .unwrap_err();
    assert!(matches!(err, LedgerError::Transition(_)), "{err}");
    let err =
        ledger.operator_set_status(&key(99), Status::Cancelled, "x", Meta::by(Actor::operator("a")), None).unwrap_err();
    assert!(matches!(err, LedgerError::UnknownOrder(_)), "{err}");
    assert_eq!(ledger.store().head_position().unwrap(), head);
}

#[test]
fn repeated_observations_collapse_on_their_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut ledger = open(&dir.path().join("l.db"), &clock);
    let k = key(2);
    let detected = events::order::sample::detected(&k, events::order::DetectionSource::Api);
    for _ in 0..3 {
        ledger
            .append_order(
                &k,
                ExpectedVersion::Any,
                vec![OrderAppend::idempotent(detected.clone(), "api:rakuten:100-00000002")],
                Meta::by(Actor::reactor("receive")),
            )
            .unwrap();
    }
    assert_eq!(ledger.order_state(&k).unwrap().version, 1);
    let counts = queries::status_counts(ledger.store().connection()).unwrap();
    assert_eq!(counts.iter().find(|(s, _)| *s == Status::Received).unwrap().1, 1);
}

fn append_source(ledger: &mut Ledger, stream: &str, event: SourceEvent) {
    ledger.append(stream, ExpectedVersion::Any, &[event.to_new_event(Meta::by(Actor::reactor("receive")))]).unwrap();
}

fn poll_failed(error: &str) -> SourceEvent {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap();
    SourceEvent::PollFailed(PollFailed {
        window_start: at,
        window_end: at,
        error: error.into(),
        kind: events::system::FailureKind::Outage,
    })
}

#[test]
fn each_source_row_is_the_fold_of_its_poll_stream_and_a_rebuild_gives_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let mut ledger = open(&dir.path().join("l.db"), &clock);
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap();
    let succeeded =
        SourceEvent::PollSucceeded(PollSucceeded { window_start: at, window_end: at, orders_seen: 3, orders_new: 2 });
    let expiry = NaiveDate::from_ymd_opt(2027, 2, 28).unwrap();
    let checked = SourceEvent::CredentialChecked(CredentialChecked {
        credential: "RAKUTEN_LICENSE_KEY".into(),
        expires_on: expiry,
    });
    let stream = [succeeded, poll_failed("RMS 503"), poll_failed("RMS 503 again"), checked];
    let mut folded = SourceState::default();
    for (n, event) in stream.iter().enumerate() {
        clock.advance(Duration::minutes(10));
        append_source(&mut ledger, "poll-rakuten", event.clone());
        folded.apply(event, clock.now());
        // An order's events in between: the row follows only its own stream.
        if n == 1 {
            record(&mut ledger, &key(4), lifecycle_to(&key(4), Status::Verified), Actor::system());
        }
    }
    append_source(&mut ledger, "poll-yahoo", poll_failed("Yahoo 500"));
    let conn = ledger.store().connection();
    let projected = crate::source_status::source_state(conn, "poll-rakuten").unwrap().unwrap();
    assert_eq!(projected, folded);
    assert_eq!(projected.cursor, Some(at));
    assert_eq!(projected.last_failure.as_ref().map(|(_, m)| m.as_str()), Some("RMS 503 again"));
    assert_eq!(projected.credentials.get("RAKUTEN_LICENSE_KEY"), Some(&expiry));
    let sources: Vec<String> = crate::source_status::sources(conn).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(sources, vec!["poll-rakuten", "poll-yahoo"]);
    let live = dump(conn);
    let (projections, store) = ledger.projections_mut();
    let mut rebuilt = Projections::standard().with_batch_size(2);
    rebuilt.reset(store.connection_mut()).unwrap();
    rebuilt.catch_up(store.connection_mut()).unwrap();
    projections.forget_all();
    assert_eq!(dump(store.connection()), live);
}

#[test]
fn an_older_projection_schema_is_migrated_by_rebuilding_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = dir.path().join("l.db");
    let mut ledger = open(&path, &clock);
    record(&mut ledger, &key(2), lifecycle_to(&key(2), Status::Shipping), Actor::system());
    append_source(&mut ledger, "poll-rakuten", poll_failed("RMS 503"));
    let before = dump(ledger.store().connection());
    assert!(before.iter().any(|row| row.starts_with("source_status: ")), "{before:?}");
    drop(ledger);
    // What a build with schema 1 left behind: version 1, tables without the newer column.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(crate::schema::PROJECTION_MIGRATIONS[0]).unwrap();
    conn.execute("UPDATE ledger_schema SET version = 1 WHERE component = 'projections'", []).unwrap();
    drop(conn);
    let ledger = open(&path, &clock);
    assert_eq!(dump(ledger.store().connection()), before, "migrated and rebuilt from the events alone");
}

#[test]
fn a_migration_whose_rebuild_fails_leaves_the_old_projections_and_schema_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let path = dir.path().join("l.db");
    let mut ledger = open(&path, &clock);
    record(&mut ledger, &key(2), lifecycle_to(&key(2), Status::Shipping), Actor::system());
    let before = dump(ledger.store().connection());
    let poison = NewEvent::new("OrderTeleported", 1, "{}".into(), Meta::by(Actor::system()));
    ledger.store_mut().append(&key(2).stream(), ExpectedVersion::Any, &[poison]).unwrap();
    drop(ledger);
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE ledger_schema SET version = 4 WHERE component = 'projections'", []).unwrap();
    drop(conn);
    let error = Ledger::open(&path, OpenMode::MustExist).map(|_| ()).unwrap_err().to_string();
    assert!(error.starts_with("the projections were not rebuilt, and nothing was changed"), "{error}");
    assert!(error.contains("type OrderTeleported"), "{error}");
    let conn = Connection::open(&path).unwrap();
    let version: i64 =
        conn.query_row("SELECT version FROM ledger_schema WHERE component = 'projections'", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 4, "the migration was not committed without its rebuild");
    assert_eq!(dump(&conn), before, "the old rows are untouched");
}

#[test]
fn the_last_whole_fba_reading_is_the_stock_stages_not_checks() {
    use events::stock::{FbaLevel, FbaStockRead, StockEvent, FBA_STOCK_STREAM};
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(&dir.path().join("shop.db"), &clock());
    assert_eq!(crate::stock::last_whole_reading(ledger.store().connection()).unwrap(), None);
    let read = |by: &str, whole: bool, skus: &[&str]| {
        let levels = skus.iter().map(|s| FbaLevel { seller_sku: (*s).into(), fulfillable: 1 }).collect();
        StockEvent::FbaStockRead(FbaStockRead { by: by.into(), whole, levels })
            .to_new_event(Meta::by(Actor::reactor(by)))
    };
    for event in [read("stock", true, &["A", "B"]), read("stock", true, &["A", "C"]), read("check", false, &["A"])] {
        ledger.append(FBA_STOCK_STREAM, ExpectedVersion::Any, &[event]).unwrap();
    }
    let last = crate::stock::last_whole_reading(ledger.store().connection()).unwrap();
    assert_eq!(last, Some(vec!["A".to_owned(), "C".to_owned()]), "check's partial reading is not whole");
}
