//! The SQLite event store: one append-only `events` table (global `position`, per-stream
//! `version`, unique idempotency keys) and content-addressed `blobs` for raw inputs.
//!
//! Writers are serialised by SQLite (`BEGIN IMMEDIATE`), so positions are gap-free and the
//! expected-version check and the insert happen atomically.

use crate::clock::{Clock, SystemClock};
use crate::envelope::{AppendOutcome, Appended, ExpectedVersion, Meta, NewEvent, RecordedEvent};
use crate::schema::{self, MigrationError, APPLICATION_ID, EVENT_STORE_MIGRATIONS};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a writer waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create and initialise the ledger if the file does not exist (`init`, `demo`).
    CreateIfMissing,
    /// The ledger must already exist (every other command, so a typo in a path is caught).
    MustExist,
    /// Open without writing anything (replay, audit, export).
    ReadOnly,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no ledger at {path}: run `mcf-ledger init --database {path}` first")]
    Missing { path: String },
    #[error("{path} is not an mcf-ledger database: the file is corrupt or not SQLite at all")]
    NotADatabase { path: String },
    #[error("{path} is an SQLite database of another application (application_id {found:#x}); refusing to use it")]
    Foreign { path: String, found: i32 },
    #[error("{path}: {source}")]
    Schema { path: String, source: Box<MigrationError> },
    #[error("version conflict on stream {stream}: expected {expected}, but the stream is at version {actual}")]
    Conflict { stream: String, expected: ExpectedVersion, actual: i64 },
    #[error("refused to append {event_type} to stream {stream}: {reason}")]
    Invalid { stream: String, event_type: String, reason: String },
    #[error("corrupt event at position {position}: {reason}")]
    CorruptRow { position: i64, reason: String },
    #[error("SQLite error while {context}: {source}")]
    Sqlite { context: String, source: rusqlite::Error },
    #[error(
        "the {table} row of {key} cannot be read: {reason} (`mcf-ledger replay rebuild` rebuilds it from the log)"
    )]
    CorruptProjection { table: &'static str, key: String, reason: String },
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Adds "while <doing what>" to SQLite errors.
pub trait SqlContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context: context(), source })
    }
}

/// A raw input stored by content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub sha256: String,
    pub size: usize,
}

pub struct EventStore {
    conn: Connection,
    clock: Arc<dyn Clock>,
    path: String,
}

const EVENT_COLUMNS: &str =
    "position, stream, version, event_id, type, schema, data, meta, idempotency_key, blob, recorded_at";

impl EventStore {
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        Self::open_with_clock(path, mode, Arc::new(SystemClock))
    }

    pub fn open_with_clock(path: &Path, mode: OpenMode, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        if mode != OpenMode::CreateIfMissing && !path.exists() {
            return Err(StoreError::Missing { path: shown });
        }
        let flags = match mode {
            OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            _ => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        };
        let conn = Connection::open_with_flags(path, flags).map_err(|source| classify_open_error(&shown, source))?;
        Self::initialise(conn, shown, mode, clock)
    }

    /// A private in-memory ledger, for unit tests only.
    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().context(|| "opening an in-memory ledger".into())?;
        Self::initialise(conn, ":memory:".into(), OpenMode::CreateIfMissing, clock)
    }

    fn initialise(
        mut conn: Connection,
        path: String,
        mode: OpenMode,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).context(|| format!("setting busy_timeout on {path}"))?;
        let application_id: i32 = conn
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .map_err(|source| classify_open_error(&path, source))?;
        let table_count: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|source| classify_open_error(&path, source))?;
        let fresh = application_id == 0 && table_count == 0;
        if !fresh && application_id != APPLICATION_ID {
            return Err(StoreError::Foreign { path, found: application_id });
        }
        if fresh && mode != OpenMode::CreateIfMissing {
            return Err(StoreError::Missing { path });
        }
        if mode == OpenMode::ReadOnly {
            conn.execute_batch("PRAGMA foreign_keys = ON;").context(|| format!("configuring {path}"))?;
            schema::check_not_newer(&conn, "events", EVENT_STORE_MIGRATIONS)
                .map_err(|source| StoreError::Schema { path: path.clone(), source: Box::new(source) })?;
        } else {
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                .context(|| format!("configuring {path}"))?;
            if fresh {
                conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID};"))
                    .context(|| format!("marking {path} as an mcf-ledger database"))?;
            }
            schema::migrate(&mut conn, "events", EVENT_STORE_MIGRATIONS)
                .map_err(|source| StoreError::Schema { path: path.clone(), source: Box::new(source) })?;
        }
        Ok(Self { conn, clock, path })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The connection, for projections that live in the same file and must read events and
    /// write their rows in one transaction.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Appends `events` to `stream` atomically if the stream is at `expected`.
    ///
    /// An event whose idempotency key is already stored is skipped, and reported in
    /// `skipped_keys`. If every event of a conflicting append is such a repeat, the append is a
    /// no-op rather than a conflict: the observation was already recorded.
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        validate_stream_name(stream, events)?;
        let recorded_at = format_time(self.clock.now());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(|| format!("starting an append to {stream}"))?;
        let actual = stream_version_in(&tx, stream)?;
        let mut outcome = AppendOutcome { stream_version: actual, ..AppendOutcome::default() };
        if !expected.matches(actual) {
            if !events.is_empty() && all_keys_recorded(&tx, events)? {
                outcome.skipped_keys = events.iter().filter_map(|e| e.idempotency_key.clone()).collect();
                return Ok(outcome);
            }
            return Err(StoreError::Conflict { stream: stream.to_owned(), expected, actual });
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (stream, version, event_id, type, schema, data, meta, idempotency_key, blob, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .context(|| "preparing the event insert".into())?;
            for event in events {
                let version = outcome.stream_version + 1;
                let event_id = Uuid::now_v7();
                let meta = serde_json::to_string(&event.meta).map_err(|e| invalid(stream, event, e.to_string()))?;
                let inserted = insert
                    .execute(params![
                        stream,
                        version,
                        event_id.to_string(),
                        event.event_type,
                        event.schema,
                        event.data,
                        meta,
                        event.idempotency_key,
                        event.blob,
                        recorded_at,
                    ])
                    .map_err(|source| explain_insert_error(stream, event, source))?;
                if inserted == 0 {
                    outcome.skipped_keys.extend(event.idempotency_key.clone());
                    continue;
                }
                outcome.stream_version = version;
                outcome.appended.push(Appended { position: tx.last_insert_rowid(), version, event_id });
            }
        }
        tx.commit().context(|| format!("committing an append to {stream}"))?;
        Ok(outcome)
    }

    /// The stream's last version; 0 when it has no events.
    pub fn stream_version(&self, stream: &str) -> Result<i64, StoreError> {
        stream_version_in(&self.conn, stream)
    }

    /// The position of the newest event; 0 when the ledger is empty.
    pub fn head_position(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| row.get(0))
            .context(|| "reading the head position".into())
    }

    pub fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_stream_until(stream, i64::MAX)
    }

    /// The stream's events up to and including `max_position` (time travel).
    pub fn read_stream_until(&self, stream: &str, max_position: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream_until_in(&self.conn, stream, max_position)
    }

    /// The stream's events of the given types, in stream order. The filter runs in SQLite, so
    /// a long stream of other events (every poll, every cycle) costs no decoding.
    pub fn read_stream_of_types(&self, stream: &str, types: &[&str]) -> Result<Vec<RecordedEvent>, StoreError> {
        let marks = vec!["?"; types.len()].join(", ");
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream = ? AND type IN ({marks}) ORDER BY version");
        let mut statement = self.conn.prepare_cached(&sql).context(|| "preparing a typed stream read".into())?;
        let values = std::iter::once(stream).chain(types.iter().copied());
        let rows = statement
            .query_map(rusqlite::params_from_iter(values), raw_row)
            .context(|| format!("reading {types:?} of stream {stream}"))?;
        rows.map(|row| row.context(|| format!("reading stream {stream}")).and_then(RawRow::into_event)).collect()
    }

    /// The stream's newest event of type `event_type`, read backwards from its head.
    /// The id of the event at `version` of `stream` (None before the stream's first event).
    pub fn event_id_at(&self, stream: &str, version: i64) -> Result<Option<Uuid>, StoreError> {
        let id: Option<String> = self
            .conn
            .prepare_cached("SELECT event_id FROM events WHERE stream = ?1 AND version = ?2")
            .and_then(|mut s| s.query_row(params![stream, version], |row| row.get(0)).optional())
            .context(|| format!("reading the id of {stream} version {version}"))?;
        id.map(|id| {
            Uuid::parse_str(&id).map_err(|e| StoreError::Invalid {
                stream: stream.to_owned(),
                event_type: "?".into(),
                reason: format!("event_id {id:?}: {e}"),
            })
        })
        .transpose()
    }

    pub fn last_of_type(&self, stream: &str, event_type: &str) -> Result<Option<RecordedEvent>, StoreError> {
        last_of_type_in(&self.conn, stream, event_type)
    }

    /// Up to `limit` events after `after_position`, in global order.
    pub fn read_all(&self, after_position: i64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        self.for_each_after(after_position, Some(limit), |event| {
            out.push(event);
            Ok(())
        })?;
        Ok(out)
    }

    /// Up to `limit` events of one category (`order` for every `order-*` stream).
    pub fn read_category(
        &self,
        category: &str,
        after_position: i64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let prefix = format!("{category}-");
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE position > ?1 AND substr(stream, 1, ?2) = ?3
             ORDER BY position LIMIT ?4"
        );
        let mut statement = self.conn.prepare_cached(&sql).context(|| "preparing a category read".into())?;
        let rows = statement
            .query_map(params![after_position, prefix.len() as i64, prefix, limit as i64], raw_row)
            .context(|| format!("reading category {category}"))?;
        rows.map(|row| row.context(|| format!("reading category {category}")).and_then(RawRow::into_event)).collect()
    }

    /// Streams every event after `after_position` through `visit` without holding them all.
    pub fn for_each_after(
        &self,
        after_position: i64,
        limit: Option<usize>,
        mut visit: impl FnMut(RecordedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for_each_after_in(&self.conn, after_position, limit, &mut visit)
    }

    /// Every stream name of a category, e.g. all `order-*` streams.
    pub fn streams_in_category(&self, category: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{category}-");
        let mut statement = self
            .conn
            .prepare_cached("SELECT DISTINCT stream FROM events WHERE stream >= ?1 AND stream < ?2 ORDER BY stream")
            .context(|| "preparing a stream listing".into())?;
        let upper = format!("{category}.");
        let rows = statement
            .query_map(params![prefix, upper], |row| row.get::<_, String>(0))
            .context(|| format!("listing streams of {category}"))?;
        rows.map(|row| row.context(|| format!("listing streams of {category}"))).collect()
    }

    /// Stores a raw input (an email, a response body) by content; storing it twice is a no-op.
    pub fn put_blob(&self, bytes: &[u8], content_type: &str) -> Result<BlobRef, StoreError> {
        let sha256 = sha256_hex(bytes);
        self.conn
            .prepare_cached(
                "INSERT INTO blobs (sha256, content_type, size, data, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![sha256, content_type, bytes.len() as i64, bytes, format_time(self.clock.now())])
            })
            .context(|| format!("storing a {content_type} blob of {} bytes", bytes.len()))?;
        Ok(BlobRef { sha256, size: bytes.len() })
    }

    /// A stored raw input and its content type.
    pub fn get_blob(&self, sha256: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.conn
            .query_row("SELECT content_type, data FROM blobs WHERE sha256 = ?1", [sha256], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .context(|| format!("reading blob {sha256}"))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Fixed-width UTC timestamps, so text order is time order.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_time(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

pub fn stream_version_in(conn: &Connection, stream: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1")
        .and_then(|mut s| s.query_row([stream], |row| row.get(0)))
        .context(|| format!("reading the version of {stream}"))
}

pub fn read_stream_until_in(
    conn: &Connection,
    stream: &str,
    max_position: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream = ?1 AND position <= ?2 ORDER BY version");
    let mut statement = conn.prepare_cached(&sql).context(|| "preparing a stream read".into())?;
    let rows =
        statement.query_map(params![stream, max_position], raw_row).context(|| format!("reading stream {stream}"))?;
    rows.map(|row| row.context(|| format!("reading stream {stream}")).and_then(RawRow::into_event)).collect()
}

/// The newest event of `event_type` in `stream`, on any connection to a ledger.
pub fn last_of_type_in(conn: &Connection, stream: &str, event_type: &str) -> Result<Option<RecordedEvent>, StoreError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream = ?1 AND type = ?2 ORDER BY version DESC LIMIT 1");
    let mut statement = conn.prepare_cached(&sql).context(|| "preparing a last-event read".into())?;
    let row = statement
        .query_row(params![stream, event_type], raw_row)
        .optional()
        .context(|| format!("reading the last {event_type} of {stream}"))?;
    row.map(RawRow::into_event).transpose()
}

pub fn for_each_after_in(
    conn: &Connection,
    after_position: i64,
    limit: Option<usize>,
    visit: &mut dyn FnMut(RecordedEvent) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2");
    let mut statement = conn.prepare_cached(&sql).context(|| "preparing a log read".into())?;
    let limit = limit.map_or(-1, |l| l as i64);
    let mut rows = statement
        .query(params![after_position, limit])
        .context(|| format!("reading events after position {after_position}"))?;
    while let Some(row) = rows.next().context(|| format!("reading events after position {after_position}"))? {
        let event = raw_row(row).context(|| format!("reading events after position {after_position}"))?.into_event()?;
        visit(event)?;
    }
    Ok(())
}

fn all_keys_recorded(conn: &Connection, events: &[NewEvent]) -> Result<bool, StoreError> {
    let mut lookup = conn
        .prepare_cached("SELECT 1 FROM events WHERE idempotency_key = ?1")
        .context(|| "preparing an idempotency lookup".into())?;
    for event in events {
        let Some(key) = &event.idempotency_key else {
            return Ok(false);
        };
        let found = lookup.exists([key]).context(|| format!("looking up idempotency key {key}"))?;
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

fn validate_stream_name(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    let bad_char = stream.chars().find(|c| c.is_whitespace() || c.is_control());
    let reason = if stream.is_empty() {
        Some("the stream name is empty".to_owned())
    } else if let Some(c) = bad_char {
        Some(format!("the stream name {stream:?} contains {c:?}"))
    } else {
        events.iter().find(|e| e.event_type.is_empty()).map(|_| "an event has an empty type".to_owned())
    };
    match reason {
        Some(reason) => Err(StoreError::Invalid {
            stream: stream.to_owned(),
            event_type: events.first().map_or_else(String::new, |e| e.event_type.clone()),
            reason,
        }),
        None => Ok(()),
    }
}

fn invalid(stream: &str, event: &NewEvent, reason: String) -> StoreError {
    StoreError::Invalid { stream: stream.to_owned(), event_type: event.event_type.clone(), reason }
}

fn explain_insert_error(stream: &str, event: &NewEvent, source: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &source {
        if failure.code == ErrorCode::ConstraintViolation {
            let message = message.clone().unwrap_or_default();
            let reason = if message.contains("json_valid") {
                "the payload or meta is not valid JSON".to_owned()
            } else if message.contains("FOREIGN KEY") {
                format!("it references blob {:?}, which is not stored", event.blob.as_deref().unwrap_or(""))
            } else {
                message
            };
            return invalid(stream, event, reason);
        }
    }
    StoreError::Sqlite { context: format!("appending {} to {stream}", event.event_type), source }
}

fn classify_open_error(path: &str, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            StoreError::NotADatabase { path: path.to_owned() }
        }
        _ => StoreError::Sqlite { context: format!("opening {path}"), source },
    }
}

/// A row read by `EVENT_COLUMNS`, before its text columns are parsed (so a corrupt value can
/// be reported with its position instead of as an SQLite error).
struct RawRow {
    position: i64,
    stream: String,
    version: i64,
    event_type: String,
    schema: i64,
    data: String,
    idempotency_key: Option<String>,
    blob: Option<String>,
    parsed: Result<(Uuid, Meta, DateTime<Utc>), String>,
}

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    // The id, meta and time are parsed from the row in place: no intermediate Strings.
    let text = |i: usize| -> rusqlite::Result<&str> { row.get_ref(i)?.as_str().map_err(rusqlite::Error::from) };
    let event_id = text(3)?;
    let meta = text(7)?;
    let recorded_at = text(10)?;
    let parsed = (|| {
        let event_id = Uuid::parse_str(event_id).map_err(|e| format!("event_id {event_id:?}: {e}"))?;
        let meta: Meta = serde_json::from_str(meta).map_err(|e| format!("meta: {e}"))?;
        let recorded_at = parse_time(recorded_at).map_err(|e| format!("recorded_at {recorded_at:?}: {e}"))?;
        Ok((event_id, meta, recorded_at))
    })();
    Ok(RawRow {
        position: row.get(0)?,
        stream: row.get(1)?,
        version: row.get(2)?,
        event_type: row.get(4)?,
        schema: row.get(5)?,
        data: row.get(6)?,
        idempotency_key: row.get(8)?,
        blob: row.get(9)?,
        parsed,
    })
}

impl RawRow {
    fn into_event(self) -> Result<RecordedEvent, StoreError> {
        let position = self.position;
        let corrupt = |reason: String| StoreError::CorruptRow { position, reason };
        let (event_id, meta, recorded_at) = self.parsed.map_err(corrupt)?;
        let schema = u32::try_from(self.schema).map_err(|_| corrupt(format!("schema {}", self.schema)))?;
        Ok(RecordedEvent {
            position: self.position,
            stream: self.stream,
            version: self.version,
            event_id,
            event_type: self.event_type,
            schema,
            data: self.data,
            meta,
            idempotency_key: self.idempotency_key,
            blob: self.blob,
            recorded_at,
        })
    }
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Where a ledger file lives when no `--database` is given.
pub fn default_path() -> PathBuf {
    PathBuf::from("mcf-ledger.db")
}
