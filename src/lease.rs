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
    format!("{}:{}", this_host(), std::process::id())
}

pub fn ensure_table(conn: &mut Connection) -> Result<(), LeaseError> {
    migrate(conn, "runtime", MIGRATIONS)?;
    Ok(())
}

fn this_host() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

/// A holder on this machine whose process is gone (killed, or the machine's cron job crashed):
/// its lease need not be waited out. Holders on other hosts are trusted until they expire.
fn died_on_this_host(holder: &str) -> bool {
    let Some((host, pid)) = holder.rsplit_once(':') else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    let dead = host == this_host() && !std::path::Path::new(&format!("/proc/{pid}")).exists();
    if dead {
        tracing::warn!(holder, "the lease holder's process is gone; taking the lease over");
    }
    dead
}

/// Takes (or renews) the lease until `now + ttl`, unless someone else holds an unexpired one
/// (a holder on this host whose process has died holds nothing).
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
        if other != holder && until > now && !died_on_this_host(&other) {
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

/// Who holds the lease now, if anyone does (an expired lease, or one whose holder's process
/// is gone from this host, is held by nobody).
pub fn current_holder(conn: &Connection, name: &str, now: DateTime<Utc>) -> Result<Option<Held>, LeaseError> {
    let exists: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'leases'", [], |row| row.get(0))
        .context(|| "looking for the leases table".into())?;
    if exists == 0 {
        return Ok(None);
    }
    let row: Option<(String, String)> = conn
        .query_row("SELECT holder, expires_at FROM leases WHERE name = ?1", [name], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .context(|| format!("reading the {name} lease"))?;
    Ok(row.and_then(|(holder, expires)| {
        let until = parse_time(&expires).ok()?;
        (until > now && !died_on_this_host(&holder)).then_some(Held { holder, until })
    }))
}

/// A lease someone holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub holder: String,
    pub until: DateTime<Utc>,
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

    #[test]
    fn a_lease_whose_holder_died_on_this_host_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("l.db")).unwrap();
        let mut finished = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = finished.id();
        finished.wait().unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        let dead = format!("{}:{dead_pid}", this_host());
        acquire(&mut conn, "cycle", &dead, t0, Duration::minutes(15)).unwrap();
        acquire(&mut conn, "cycle", "elsewhere:1", t0 + Duration::minutes(1), Duration::minutes(15))
            .expect("a dead local holder does not block");
        let alive = format!("{}:{}", this_host(), std::process::id());
        let err = acquire(&mut conn, "cycle", &alive, t0 + Duration::minutes(2), Duration::minutes(15)).unwrap_err();
        assert!(err.to_string().contains("held by elsewhere:1"), "another host's holder is waited out: {err}");
    }
}
