//! The web admin's access to the SQLite ledger: one writer (the ledger, which checks every
//! operator action against the state machine) and a few read-only connections so pages are
//! served in parallel. SQLite work runs on the blocking pool, never on the async workers.

use super::{WebError, WebResult};
use events::store::BUSY_TIMEOUT;
use events::Clock;
use projections::{Ledger, LedgerError};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Reads run at once, each on its own connection kept open; more requests than this wait
/// (asynchronously) for one to come back. Two cores gain nothing from more, and every reader
/// in flight holds a blocking thread, a SQLite page cache and its rows.
const READERS: usize = 4;

pub struct Db {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    writer: Mutex<Ledger>,
    readers: Mutex<Vec<Connection>>,
    reading: tokio::sync::Semaphore,
}

impl Db {
    pub fn new(ledger: Ledger) -> Result<Self, LedgerError> {
        let path = PathBuf::from(ledger.store().path());
        let clock = ledger.store().clock().clone();
        Ok(Self {
            path,
            clock,
            writer: Mutex::new(ledger),
            readers: Mutex::new(Vec::new()),
            reading: tokio::sync::Semaphore::new(READERS),
        })
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    fn open_reader(&self) -> WebResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| WebError::Internal(format!("opening {} for reading: {e}", self.path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| WebError::Internal(format!("busy_timeout: {e}")))?;
        Ok(conn)
    }

    /// Runs a read on a pooled read-only connection.
    pub async fn read<T, F>(self: &Arc<Self>, read: F) -> WebResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> WebResult<T> + Send + 'static,
    {
        let permit = self.reading.acquire().await.map_err(|e| WebError::Internal(format!("the read queue: {e}")))?;
        let db = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let pooled = db.readers.lock().map_err(|_| poisoned())?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => db.open_reader()?,
            };
            let result = read(&conn);
            let mut readers = db.readers.lock().map_err(|_| poisoned())?;
            if readers.len() < READERS {
                readers.push(conn);
            }
            result
        })
        .await
        .map_err(|e| WebError::Internal(format!("a read task failed: {e}")))?;
        drop(permit);
        read
    }

    /// Runs a write through the ledger (one writer at a time in this process; SQLite serialises
    /// it with the other processes, waiting up to the busy timeout).
    pub async fn write<T, F>(self: &Arc<Self>, write: F) -> WebResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> WebResult<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut ledger = db.writer.lock().map_err(|_| poisoned())?;
            write(&mut ledger)
        })
        .await
        .map_err(|e| WebError::Internal(format!("a write task failed: {e}")))?
    }
}

fn poisoned() -> WebError {
    WebError::Internal("a database handle was poisoned by an earlier panic".into())
}
