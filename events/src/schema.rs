//! Versioned schema migrations, one sequence per component (`events`, `projections`).
//!
//! Each component's version lives in `ledger_schema`. A database written by a newer build
//! (a version above the highest this build knows) is refused, never "migrated down".

use rusqlite::{params, Connection, OptionalExtension};

/// `PRAGMA application_id` of an mcf-ledger database ("MCFL"), so a foreign SQLite file is
/// recognised as such instead of being written into.
pub const APPLICATION_ID: i32 = 0x4D43_464C;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the {component} schema is at version {found}, newer than this build understands ({known}); use a newer mcf-ledger")]
    Newer { component: String, found: i64, known: i64 },
    #[error("{component} schema migration to version {version} failed: {source}")]
    Step { component: String, version: i64, source: rusqlite::Error },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub fn ensure_schema_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS ledger_schema (
             component TEXT PRIMARY KEY,
             version   INTEGER NOT NULL
         ) STRICT;",
    )
}

pub fn current_version(conn: &Connection, component: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row("SELECT version FROM ledger_schema WHERE component = ?1", [component], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Refuses a schema newer than `steps` knows, without changing anything.
pub fn check_not_newer(conn: &Connection, component: &str, steps: &[&str]) -> Result<i64, MigrationError> {
    let found = current_version(conn, component)?;
    let known = steps.len() as i64;
    if found > known {
        return Err(MigrationError::Newer { component: component.to_owned(), found, known });
    }
    Ok(found)
}

/// Applies the steps after the stored version, each in its own transaction.
/// `steps[0]` brings the component to version 1, and so on.
pub fn migrate(conn: &mut Connection, component: &str, steps: &[&str]) -> Result<(), MigrationError> {
    ensure_schema_table(conn)?;
    let found = check_not_newer(conn, component, steps)?;
    for (index, sql) in steps.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let step = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Another process may have migrated while we waited for the lock.
            if current_version(&tx, component)? >= version {
                return tx.commit();
            }
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO ledger_schema (component, version) VALUES (?1, ?2)
                 ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                params![component, version],
            )?;
            tx.commit()
        };
        step(conn).map_err(|source| MigrationError::Step { component: component.to_owned(), version, source })?;
    }
    Ok(())
}

/// Applies the steps after the stored version inside the caller's transaction, so they commit
/// (or roll back) with whatever else it does (a projection rebuild swapped in with them).
pub fn migrate_within(tx: &rusqlite::Transaction<'_>, component: &str, steps: &[&str]) -> Result<(), MigrationError> {
    ensure_schema_table(tx)?;
    let found = check_not_newer(tx, component, steps)?;
    for (index, sql) in steps.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let step = || -> rusqlite::Result<()> {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO ledger_schema (component, version) VALUES (?1, ?2)
                 ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                params![component, version],
            )?;
            Ok(())
        };
        step().map_err(|source| MigrationError::Step { component: component.to_owned(), version, source })?;
    }
    Ok(())
}

/// The event store's own tables. Append-only is enforced by triggers, not by convention.
pub const EVENT_STORE_MIGRATIONS: &[&str] = &[
    // 1: events, blobs, immutability.
    "CREATE TABLE blobs (
         sha256       TEXT PRIMARY KEY,
         content_type TEXT NOT NULL,
         size         INTEGER NOT NULL,
         data         BLOB NOT NULL,
         stored_at    TEXT NOT NULL
     ) STRICT;
     CREATE TABLE events (
         position        INTEGER PRIMARY KEY,
         stream          TEXT NOT NULL,
         version         INTEGER NOT NULL CHECK (version >= 1),
         event_id        TEXT NOT NULL UNIQUE,
         type            TEXT NOT NULL,
         schema          INTEGER NOT NULL,
         data            TEXT NOT NULL CHECK (json_valid(data)),
         meta            TEXT NOT NULL CHECK (json_valid(meta)),
         idempotency_key TEXT UNIQUE,
         blob            TEXT REFERENCES blobs(sha256),
         recorded_at     TEXT NOT NULL,
         UNIQUE (stream, version)
     ) STRICT;
     CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
     BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
     CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
     BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
     CREATE TRIGGER blobs_refuse_update BEFORE UPDATE ON blobs
     BEGIN SELECT RAISE(ABORT, 'blobs are immutable: UPDATE refused'); END;
     CREATE TRIGGER blobs_refuse_delete BEFORE DELETE ON blobs
     BEGIN SELECT RAISE(ABORT, 'blobs are immutable: DELETE refused'); END;",
];
