use crate::export::{export, ExportFilter};
use crate::rebuild::rebuild;
use crate::time_travel::{order_at, At};
use crate::verify::verify;
use chrono::{Duration, TimeZone, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::sample::lifecycle_to;
use events::order::Status;
use events::store::OpenMode;
use events::{FixedClock, Marketplace, OrderKey};
use projections::ledger::OrderAppend;
use projections::Ledger;
use std::sync::Arc;

fn key(n: u32) -> OrderKey {
    OrderKey::new(if n.is_multiple_of(2) { Marketplace::Rakuten } else { Marketplace::Yahoo }, &format!("200-{n:04}"))
        .unwrap()
}

/// A ledger with one order in each status, one event a minute.
fn ledger_with_orders(dir: &tempfile::TempDir) -> (Ledger, FixedClock) {
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap());
    let mut ledger =
        Ledger::open_with_clock(&dir.path().join("l.db"), OpenMode::CreateIfMissing, Arc::new(clock.clone())).unwrap();
    for (n, status) in Status::ALL.into_iter().enumerate() {
        let k = key(n as u32);
        for event in lifecycle_to(&k, status) {
            ledger
                .append_order(
                    &k,
                    ExpectedVersion::Any,
                    vec![OrderAppend::from(event)],
                    Meta::by(Actor::reactor("test")),
                )
                .unwrap();
            clock.advance(Duration::minutes(1));
        }
    }
    (ledger, clock)
}

#[test]
fn verify_finds_no_difference_in_a_consistent_ledger_and_names_a_tampered_row() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger_with_orders(&dir);
    let path = dir.path().join("l.db");
    let report = verify(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.position, ledger.store().head_position().unwrap());
    ledger
        .store()
        .connection()
        .execute("UPDATE order_status SET status = 'SHIPPED' WHERE order_key = ?1", [key(0).to_string()])
        .unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(report.differences.len(), 1, "{report:?}");
    let difference = &report.differences[0];
    assert_eq!(difference.table, "order_status");
    assert_eq!((difference.only_live_count, difference.only_rebuilt_count), (1, 1));
    assert!(difference.only_live[0].contains("status=\"SHIPPED\""), "{:?}", difference.only_live);
    assert!(difference.only_rebuilt[0].contains("status=\"RECEIVED\""), "{:?}", difference.only_rebuilt);
}

#[test]
fn verify_refuses_what_is_not_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let err = verify(&dir.path().join("missing.db")).unwrap_err().to_string();
    assert!(err.contains("no ledger at"), "{err}");
}

#[test]
fn rebuild_reproduces_the_live_projections() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = ledger_with_orders(&dir);
    let before = projections::queries::list_orders(ledger.store().connection(), &Default::default()).unwrap();
    let report = rebuild(&mut ledger, false).unwrap();
    assert_eq!(report.events as i64, ledger.store().head_position().unwrap());
    let after = projections::queries::list_orders(ledger.store().connection(), &Default::default()).unwrap();
    assert_eq!(before, after);
    assert!(verify(&dir.path().join("l.db")).unwrap().is_clean());
}

#[test]
fn an_order_is_shown_as_it_stood_at_a_position_or_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger_with_orders(&dir);
    let shipped = key(7);
    let now = order_at(&ledger, &shipped, At::Head).unwrap();
    assert_eq!(now.state.status, Some(Status::Shipped));
    let positions: Vec<i64> = now.timeline.iter().map(|e| e.position).collect();
    let third = positions[2];
    let then = order_at(&ledger, &shipped, At::Position(third)).unwrap();
    // A Yahoo order: detected, details, verified.
    assert_eq!(then.state.status, Some(Status::Verified));
    assert_eq!(then.timeline.len(), 3);
    assert_eq!(then.later_events, positions.len() - 3);
    let time = now.timeline[3].recorded_at;
    let by_time = order_at(&ledger, &shipped, At::Time(time)).unwrap();
    assert_eq!(by_time.as_of_position, positions[3]);
    assert_eq!(by_time.state.status, Some(Status::ShippingRequested));
    let before_anything = order_at(&ledger, &shipped, At::Position(0)).unwrap();
    assert_eq!(before_anything.state.status, None);
    assert!(order_at(&ledger, &key(99), At::Head).unwrap_err().to_string().contains("not in the ledger"));
}

#[test]
fn export_writes_json_lines_filtered_by_position_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger_with_orders(&dir);
    let mut out = Vec::new();
    let all = export(ledger.store(), &ExportFilter::default(), &mut out).unwrap();
    assert_eq!(all as i64, ledger.store().head_position().unwrap());
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["position"], 1);
    assert_eq!(lines[0]["type"], "OrderDetected");
    assert_eq!(lines[0]["data"]["marketplace"], "rakuten", "data is embedded JSON, not a string");
    assert_eq!(lines[0]["meta"]["actor"], "reactor:test");

    let mut out = Vec::new();
    let filter = ExportFilter { from_position: 10, stream: Some(key(7).stream()) };
    export(ledger.store(), &filter, &mut out).unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["stream"] == key(7).stream().as_str() && l["position"].as_i64().unwrap() > 10));

    let mut out = Vec::new();
    let yahoo =
        export(ledger.store(), &ExportFilter { from_position: 0, stream: Some("order-yahoo-*".into()) }, &mut out)
            .unwrap();
    assert!(yahoo > 0 && yahoo < all);
}
