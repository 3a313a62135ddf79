//! One cycle at a time across processes: a lease row in the ledger's SQLite file. Taking it is
//! one `BEGIN IMMEDIATE` transaction; it expires on its own if its holder dies, and a second
//! cycle is told at once who holds it. (Coordination, not history: it is not an event.)

use chrono::{DateTime, Duration, Utc};
use events::schema::{migrate, MigrationError};
use events::store::{format_time, parse_time, SqlContext, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

const MIGRATIONS: &[&str] = &["CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;"];

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("another cycle is running: the {name} lease is held by {holder} until {until} (it expires by itself if that process died)")]
    Held { name: String, holder: String, until: DateTime<Utc> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schema(#[from] MigrationError),
}

/// Who we are, for the other processes: `host:pid`.
pub fn holder_name() -> String {
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

pub fn ensure_table(conn: &mut Connection) -> Result<(), LeaseError> {
    migrate(conn, "runtime", MIGRATIONS)?;
    Ok(())
}

/// Takes (or renews) the lease until `now + ttl`, unless someone else holds an unexpired one.
pub fn acquire(
    conn: &mut Connection,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<(), LeaseError> {
    ensure_table(conn)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .context(|| format!("taking the {name} lease"))?;
    let current: Option<(String, String)> = tx
        .query_row("SELECT holder, expires_at FROM leases WHERE name = ?1", [name], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .context(|| format!("reading the {name} lease"))?;
    if let Some((other, expires)) = current {
        let until = parse_time(&expires).unwrap_or(now);
        if other != holder && until > now {
            return Err(LeaseError::Held { name: name.to_owned(), holder: other, until });
        }
    }
    tx.execute(
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
        params![name, holder, format_time(now), format_time(now + ttl)],
    )
    .context(|| format!("writing the {name} lease"))?;
    tx.commit().context(|| format!("committing the {name} lease"))?;
    Ok(())
}

/// Gives the lease back (only if we still hold it).
pub fn release(conn: &Connection, name: &str, holder: &str) -> Result<(), LeaseError> {
    conn.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder])
        .context(|| format!("releasing the {name} lease"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_second_holder_is_refused_until_the_lease_expires_or_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut a = Connection::open(&path).unwrap();
        let mut b = Connection::open(&path).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        acquire(&mut a, "cycle", "host:1", t0, Duration::minutes(15)).unwrap();
        let err = acquire(&mut b, "cycle", "host:2", t0 + Duration::minutes(1), Duration::minutes(15)).unwrap_err();
        assert!(err.to_string().contains("held by host:1"), "{err}");
        acquire(&mut a, "cycle", "host:1", t0 + Duration::minutes(5), Duration::minutes(15))
            .expect("the holder renews");
        acquire(&mut b, "cycle", "host:2", t0 + Duration::minutes(21), Duration::minutes(15))
            .expect("an expired lease (dead holder) is taken over");
        release(&a, "cycle", "host:1").unwrap();
        assert!(
            acquire(&mut a, "cycle", "host:1", t0 + Duration::minutes(22), Duration::minutes(15)).is_err(),
            "releasing someone else's lease does nothing"
        );
        release(&b, "cycle", "host:2").unwrap();
        acquire(&mut a, "cycle", "host:1", t0 + Duration::minutes(23), Duration::minutes(15)).unwrap();
    }
}
