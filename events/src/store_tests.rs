//! The event store against a real SQLite file.

use crate::clock::FixedClock;
use crate::envelope::{category_of, Actor, ExpectedVersion, Meta, NewEvent};
use crate::store::{EventStore, OpenMode, StoreError};
use chrono::{TimeZone, Utc};
use std::sync::Arc;

fn clock() -> FixedClock {
    FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap())
}

fn open(dir: &tempfile::TempDir) -> EventStore {
    EventStore::open_with_clock(&dir.path().join("ledger.db"), OpenMode::CreateIfMissing, Arc::new(clock())).unwrap()
}

fn event(kind: &str, n: i64) -> NewEvent {
    NewEvent::new(kind, 1, format!(r#"{{"n":{n}}}"#), Meta::by(Actor::system()))
}

#[test]
fn appends_get_gap_free_positions_and_per_stream_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let a = store.append("order-rakuten-1", ExpectedVersion::NoStream, &[event("A", 1), event("B", 2)]).unwrap();
    let b = store.append("order-yahoo-s-1", ExpectedVersion::Any, &[event("A", 3)]).unwrap();
    let c = store.append("order-rakuten-1", ExpectedVersion::Exact(2), &[event("C", 4)]).unwrap();
    let positions: Vec<i64> = [a.appended, b.appended, c.appended].concat().iter().map(|x| x.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4]);
    assert_eq!(c.stream_version, 3);
    let stream = store.read_stream("order-rakuten-1").unwrap();
    assert_eq!(
        stream.iter().map(|e| (e.version, e.event_type.as_str())).collect::<Vec<_>>(),
        vec![(1, "A"), (2, "B"), (3, "C")]
    );
    assert_eq!(stream[0].recorded_at, Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
    assert_eq!(store.head_position().unwrap(), 4);
    assert_eq!(store.read_stream_until("order-rakuten-1", 2).unwrap().len(), 2);
    let all = store.read_all(1, 2).unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(category_of(&all[1].stream), "order");
}

#[test]
fn a_wrong_expected_version_is_a_conflict_that_says_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.append("order-rakuten-1", ExpectedVersion::NoStream, &[event("A", 1)]).unwrap();
    let err = store.append("order-rakuten-1", ExpectedVersion::Exact(3), &[event("B", 2)]).unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(
        err.to_string(),
        "version conflict on stream order-rakuten-1: expected version 3, but the stream is at version 1"
    );
    let err = store.append("order-rakuten-1", ExpectedVersion::NoStream, &[event("B", 2)]).unwrap_err();
    assert!(err.to_string().contains("expected no stream (version 0), but the stream is at version 1"), "{err}");
    assert_eq!(store.read_stream("order-rakuten-1").unwrap().len(), 1, "nothing was appended");
}

#[test]
fn the_same_observation_twice_is_skipped_and_the_caller_can_tell() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let first =
        store.append("order-rakuten-1", ExpectedVersion::Any, &[event("Seen", 1).idempotent("seen:1")]).unwrap();
    assert_eq!(first.appended.len(), 1);
    let again = store
        .append("order-rakuten-1", ExpectedVersion::Any, &[event("Seen", 1).idempotent("seen:1"), event("Other", 2)])
        .unwrap();
    assert_eq!(again.skipped_keys, vec!["seen:1".to_owned()]);
    assert_eq!(again.appended.len(), 1);
    assert_eq!(again.appended[0].version, 2);
    // A retry with a stale expected version of events that are all recorded is a no-op, not a conflict.
    let retry =
        store.append("order-rakuten-1", ExpectedVersion::Exact(0), &[event("Seen", 1).idempotent("seen:1")]).unwrap();
    assert!(retry.nothing_new());
    assert_eq!(retry.skipped_keys, vec!["seen:1".to_owned()]);
    assert_eq!(store.head_position().unwrap(), 2);
}

#[test]
fn update_and_delete_are_refused_by_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.append("order-rakuten-1", ExpectedVersion::Any, &[event("A", 1)]).unwrap();
    store.put_blob(b"raw", "text/plain").unwrap();
    let conn = store.connection();
    for sql in [
        "UPDATE events SET type = 'B'",
        "DELETE FROM events",
        "UPDATE blobs SET content_type = 'x'",
        "DELETE FROM blobs",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("refused"), "{sql}: {err}");
    }
    assert_eq!(store.read_stream("order-rakuten-1").unwrap()[0].event_type, "A");
}

#[test]
fn category_reads_see_only_that_category() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.append("order-rakuten-1", ExpectedVersion::Any, &[event("A", 1)]).unwrap();
    store.append("poll-rakuten", ExpectedVersion::Any, &[event("P", 2)]).unwrap();
    store.append("orders-misnamed", ExpectedVersion::Any, &[event("X", 3)]).unwrap();
    store.append("order-yahoo-s-2", ExpectedVersion::Any, &[event("A", 4)]).unwrap();
    let orders = store.read_category("order", 0, 100).unwrap();
    assert_eq!(
        orders.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>(),
        vec!["order-rakuten-1", "order-yahoo-s-2"]
    );
    assert_eq!(store.streams_in_category("order").unwrap(), vec!["order-rakuten-1", "order-yahoo-s-2"]);
}

#[test]
fn blobs_are_content_addressed_and_referenced_by_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let blob = store.put_blob("件名: ご注文".as_bytes(), "message/rfc822").unwrap();
    assert_eq!(store.put_blob("件名: ご注文".as_bytes(), "message/rfc822").unwrap(), blob);
    assert_eq!(blob.sha256.len(), 64);
    store.append("mailbox-inbox", ExpectedVersion::Any, &[event("MailReceived", 1).with_blob(&blob.sha256)]).unwrap();
    let stored = store.read_stream("mailbox-inbox").unwrap();
    let (content_type, bytes) = store.get_blob(stored[0].blob.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!((content_type.as_str(), bytes.as_slice()), ("message/rfc822", "件名: ご注文".as_bytes()));
    let dangling = store
        .append("mailbox-inbox", ExpectedVersion::Any, &[event("MailReceived", 2).with_blob("0".repeat(64))])
        .unwrap_err();
    assert!(dangling.to_string().contains("not stored"), "{dangling}");
}

#[test]
fn malformed_payloads_and_stream_names_are_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.append("order-rakuten-1", ExpectedVersion::Any, &[event("A", 1)]).unwrap();
    let bad = NewEvent::new("B", 1, "{not json".into(), Meta::by(Actor::system()));
    let err = store.append("order-rakuten-1", ExpectedVersion::Any, &[event("ok", 2), bad]).unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    assert!(store.append("order rakuten", ExpectedVersion::Any, &[event("A", 1)]).is_err());
    assert!(store.append("", ExpectedVersion::Any, &[event("A", 1)]).is_err());
    assert_eq!(store.read_stream("order-rakuten-1").unwrap().len(), 1, "the whole append rolled back");
}

#[test]
fn the_file_is_configured_for_concurrent_processes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let conn = store.connection();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!((mode.as_str(), fk, busy, sync), ("wal", 1, 5000, 1));
}

#[test]
fn missing_foreign_corrupt_and_newer_databases_are_refused_without_changes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let err = EventStore::open(&missing, OpenMode::MustExist).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(!missing.exists(), "opening must not create the file");

    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, b"this is not sqlite, just text that is long enough to look like a header......").unwrap();
    let err = EventStore::open(&corrupt, OpenMode::CreateIfMissing).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE customers (id INTEGER);").unwrap();
    let err = EventStore::open(&foreign, OpenMode::CreateIfMissing).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "the foreign database was not touched");

    let path = dir.path().join("ledger.db");
    drop(open(&dir));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE ledger_schema SET version = 99 WHERE component = 'events'", [])
        .unwrap();
    let err = EventStore::open(&path, OpenMode::MustExist).unwrap_err();
    assert!(err.to_string().contains("version 99, newer than this build understands (1)"), "{err}");
    let err = EventStore::open(&path, OpenMode::ReadOnly).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_read_only_store_reads_and_refuses_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    store.append("order-rakuten-1", ExpectedVersion::Any, &[event("A", 1)]).unwrap();
    drop(store);
    let mut reader = EventStore::open(&dir.path().join("ledger.db"), OpenMode::ReadOnly).unwrap();
    assert_eq!(reader.read_stream("order-rakuten-1").unwrap().len(), 1);
    assert!(reader.append("order-rakuten-1", ExpectedVersion::Any, &[event("B", 2)]).is_err());
}

#[test]
fn two_connections_racing_on_one_stream_never_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(open(&dir));
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = EventStore::open(&path, OpenMode::MustExist).unwrap();
                let mut wins = 0;
                for i in 0..50 {
                    let version = store.stream_version("order-rakuten-race").unwrap();
                    match store.append(
                        "order-rakuten-race",
                        ExpectedVersion::Exact(version),
                        &[event("Step", n * 100 + i)],
                    ) {
                        Ok(_) => wins += 1,
                        Err(e) if e.is_conflict() => {}
                        Err(e) => panic!("no other error may reach a caller: {e}"),
                    }
                }
                wins
            })
        })
        .collect();
    let wins: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let store = EventStore::open(&path, OpenMode::MustExist).unwrap();
    let versions: Vec<i64> = store.read_stream("order-rakuten-race").unwrap().iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=wins).collect::<Vec<_>>());
}
