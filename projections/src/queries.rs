//! Reads of the projections for the CLI and the web admin.

use events::order::Status;
use events::store::{SqlContext, StoreError};
use events::Marketplace;
use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension, Row};
use serde::Serialize;

/// One order as the list shows it. Field names are the CLI's `--json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRow {
    pub order: String,
    pub marketplace: String,
    pub order_number: String,
    pub status: String,
    pub buyer_name: Option<String>,
    pub item_summary: Option<String>,
    pub ordered_at: Option<String>,
    pub mcf_order_id: Option<String>,
    pub shipping_speed: Option<String>,
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
    pub error: Option<String>,
    pub hold: Option<String>,
    pub cancel_pending: bool,
    /// A customer email was handed to SMTP and no outcome was recorded: the operator decides.
    pub email_sending: bool,
    /// The guide's manual emails not yet marked done, space-separated.
    pub tasks_due: Option<String>,
    /// Marketplace writes sent without an outcome, or refused, space-separated.
    pub writes_open: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

const ROW_COLUMNS: &str =
    "order_key, marketplace, order_number, status, buyer_name, item_summary, ordered_at, mcf_order_id,
     shipping_speed, tracking_number, carrier, error, hold, cancel_pending, email_sending, tasks_due, version, created_at, updated_at, writes_open";

fn order_row(row: &Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow {
        order: row.get(0)?,
        marketplace: row.get(1)?,
        order_number: row.get(2)?,
        status: row.get(3)?,
        buyer_name: row.get(4)?,
        item_summary: row.get(5)?,
        ordered_at: row.get(6)?,
        mcf_order_id: row.get(7)?,
        shipping_speed: row.get(8)?,
        tracking_number: row.get(9)?,
        carrier: row.get(10)?,
        error: row.get(11)?,
        hold: row.get(12)?,
        cancel_pending: row.get(13)?,
        email_sending: row.get(14)?,
        tasks_due: row.get(15)?,
        version: row.get(16)?,
        created_at: row.get(17)?,
        updated_at: row.get(18)?,
        writes_open: row.get(19)?,
    })
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<Status>,
    pub marketplace: Option<Marketplace>,
    /// Any part of what is on the order's label (substring): order number, buyer, phone, email,
    /// address, item name or SKU, MCF id, tracking number, memo.
    pub search: Option<String>,
    /// Orders placed on or after this day, and on or before that one (JST).
    pub ordered_from: Option<chrono::NaiveDate>,
    pub ordered_to: Option<chrono::NaiveDate>,
    pub sort: OrderSort,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The list's sort orders; each is backed by an index, so any page is cheap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrderSort {
    /// Most recently changed first (the default).
    #[default]
    UpdatedDesc,
    UpdatedAsc,
    /// Newest order date first.
    OrderedDesc,
    OrderedAsc,
    /// By marketplace and order number.
    Number,
}

impl OrderSort {
    pub const ALL: [OrderSort; 5] = [
        OrderSort::UpdatedDesc,
        OrderSort::UpdatedAsc,
        OrderSort::OrderedDesc,
        OrderSort::OrderedAsc,
        OrderSort::Number,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdatedDesc => "updated_desc",
            Self::UpdatedAsc => "updated_asc",
            Self::OrderedDesc => "ordered_desc",
            Self::OrderedAsc => "ordered_asc",
            Self::Number => "number",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sort| sort.as_str() == text)
    }

    fn sql(self) -> &'static str {
        match self {
            Self::UpdatedDesc => "updated_at DESC, order_key",
            Self::UpdatedAsc => "updated_at ASC, order_key",
            Self::OrderedDesc => "ordered_at DESC, order_key",
            Self::OrderedAsc => "ordered_at ASC, order_key",
            Self::Number => "order_key",
        }
    }
}

/// The list's SQL and its values for `filter`.
fn list_sql(filter: &OrderFilter) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {ROW_COLUMNS} FROM order_status WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        values.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(marketplace) = filter.marketplace {
        sql.push_str(" AND marketplace = ?");
        values.push(Value::Text(marketplace.as_str().to_owned()));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if search.chars().count() >= 3 {
            // The trigram index finds any substring of three characters or more (each a quoted
            // phrase, so the operator's text is never read as query syntax).
            sql.push_str(" AND id IN (SELECT rowid FROM order_search WHERE order_search MATCH ?)");
            values.push(Value::Text(search_phrases(search)));
        } else {
            sql.push_str(" AND (instr(order_key, ?) > 0 OR instr(coalesce(search_text, ''), ?) > 0)");
            values.push(Value::Text(search.to_owned()));
            values.push(Value::Text(search.to_owned()));
        }
    }
    // Order times are stored as the marketplace wrote them, in JST (`…+09:00`).
    if let Some(from) = filter.ordered_from {
        sql.push_str(" AND ordered_at >= ?");
        values.push(Value::Text(format!("{from}T00:00:00+09:00")));
    }
    if let Some(to) = filter.ordered_to.and_then(|to| to.succ_opt()) {
        sql.push_str(" AND ordered_at < ?");
        values.push(Value::Text(format!("{to}T00:00:00+09:00")));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(filter.sort.sql());
    sql.push_str(" LIMIT ? OFFSET ?");
    values.push(Value::Integer(filter.limit.map_or(-1, |l| l as i64)));
    values.push(Value::Integer(filter.offset as i64));
    (sql, values)
}

/// Orders in the filter's sort order, a page at a time (`limit`, `offset`).
pub fn list_orders(conn: &Connection, filter: &OrderFilter) -> Result<Vec<OrderRow>, StoreError> {
    let mut rows = Vec::new();
    for_each_order(conn, filter, |row| {
        rows.push(row);
        Ok::<(), StoreError>(())
    })?;
    Ok(rows)
}

/// Every order the filter selects, one row at a time (an export of 100,000 orders holds one
/// row, not the list); `each` may stop the walk with an error.
pub fn for_each_order<E: From<StoreError>>(
    conn: &Connection,
    filter: &OrderFilter,
    mut each: impl FnMut(OrderRow) -> Result<(), E>,
) -> Result<(), E> {
    let (sql, values) = list_sql(filter);
    let mut statement = conn.prepare_cached(&sql).context(|| "preparing the order list".into())?;
    let mut rows = statement.query(params_from_iter(values)).context(|| "listing orders".into())?;
    while let Some(row) = rows.next().context(|| "listing orders".into())? {
        each(order_row(row).context(|| "reading an order row".into())?)?;
    }
    Ok(())
}

/// The search as an FTS5 query: the text as one quoted phrase, and when it is a number written
/// with separators (a phone, a tracking number), its digits alone too.
fn search_phrases(search: &str) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let digits: String = search.chars().filter(char::is_ascii_digit).collect();
    let numeric = search.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | ' ' | '(' | ')' | '+'));
    if numeric && digits.len() >= 3 && digits != search {
        format!("{} OR {}", quote(search), quote(&digits))
    } else {
        quote(search)
    }
}

/// Keys of the orders in `status` with their order time (RFC 3339, None before the details
/// are known): what a stage needs to fold its orders one at a time, oldest first.
pub fn order_keys_in(conn: &Connection, status: Status) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT order_key, ordered_at FROM order_status WHERE status = ?1")
        .context(|| "preparing the order keys of a status".into())?;
    let rows = statement
        .query_map([status.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .context(|| format!("listing the {status} orders"))?;
    rows.map(|r| r.context(|| format!("listing the {status} orders"))).collect()
}

pub fn get_order(conn: &Connection, order_key: &str) -> Result<Option<OrderRow>, StoreError> {
    conn.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM order_status WHERE order_key = ?1"))
        .and_then(|mut s| s.query_row([order_key], order_row).optional())
        .context(|| format!("reading order {order_key}"))
}

/// Orders per status, in the guide's order of statuses; absent statuses count 0.
pub fn status_counts(conn: &Connection) -> Result<Vec<(Status, i64)>, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT status, count FROM status_counts").context(|| "preparing counts".into())?;
    let stored: Vec<(String, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .context(|| "reading counts".into())?
        .collect::<rusqlite::Result<_>>()
        .context(|| "reading counts".into())?;
    Ok(Status::ALL
        .into_iter()
        .map(|status| (status, stored.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n)))
        .collect())
}

/// Orders whose cancellation waits for Amazon to cancel the MCF order.
pub fn orders_with_pending_cancel(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT order_key FROM order_status WHERE cancel_pending = 1 ORDER BY updated_at")
        .context(|| "preparing the pending-cancel query".into())?;
    let rows = statement.query_map([], |row| row.get(0)).context(|| "listing pending cancellations".into())?;
    rows.map(|r| r.context(|| "listing pending cancellations".into())).collect()
}

/// Orders with a customer email waiting to be sent (intended, not yet attempted).
pub fn orders_with_email_intent(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT order_key FROM order_status WHERE email_intent = 1 ORDER BY order_key")
        .context(|| "preparing the email-intent query".into())?;
    let rows = statement.query_map([], |row| row.get(0)).context(|| "listing email intents".into())?;
    rows.map(|r| r.context(|| "listing email intents".into())).collect()
}

/// Orders with manual emails due, most recently changed first.
pub fn orders_with_tasks_due(conn: &Connection, limit: usize, offset: usize) -> Result<Vec<OrderRow>, StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM order_status WHERE tasks_due IS NOT NULL ORDER BY updated_at DESC LIMIT ?1 OFFSET ?2"
        ))
        .context(|| "preparing the manual-task query".into())?;
    let rows =
        statement.query_map([limit as i64, offset as i64], order_row).context(|| "listing manual tasks".into())?;
    rows.map(|r| r.context(|| "listing manual tasks".into())).collect()
}

/// How many orders have manual emails due.
pub fn count_tasks_due(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT count(*) FROM order_status WHERE tasks_due IS NOT NULL", [], |row| row.get(0))
        .context(|| "counting manual tasks".into())
}

/// Orders that wait on a human: OUT_OF_STOCK, DATE_UNAVAILABLE, ERROR, and customer emails
/// intended or being sent with no outcome.
pub fn orders_needing_operator(conn: &Connection) -> Result<Vec<OrderRow>, StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM order_status WHERE status IN ('OUT_OF_STOCK', 'DATE_UNAVAILABLE', 'ERROR')
             UNION SELECT {ROW_COLUMNS} FROM order_status WHERE email_intent = 1
             UNION SELECT {ROW_COLUMNS} FROM order_status WHERE email_sending = 1
             ORDER BY updated_at LIMIT 1000"
        ))
        .context(|| "preparing the needs-operator query".into())?;
    let rows = statement.query_map([], order_row).context(|| "listing orders needing an operator".into())?;
    rows.map(|r| r.context(|| "listing orders needing an operator".into())).collect()
}

/// Orders a marketplace holds (not final), oldest order first: Rakuten cancels an order the
/// shop has not confirmed within 14 days of it.
pub fn held_orders(conn: &Connection) -> Result<Vec<OrderRow>, StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM order_status WHERE hold IS NOT NULL AND status NOT IN ('SHIPPED', 'CANCELLED')
             ORDER BY ordered_at LIMIT 1000"
        ))
        .context(|| "preparing the held orders query".into())?;
    let rows = statement.query_map([], order_row).context(|| "listing held orders".into())?;
    rows.map(|r| r.context(|| "listing held orders".into())).collect()
}

/// Keys of the orders with `write` sent without an outcome or refused, oldest change first.
pub fn orders_with_open_write(
    conn: &Connection,
    write: events::order::OutsideWrite,
) -> Result<Vec<String>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT order_key, writes_open FROM order_status WHERE writes_open IS NOT NULL ORDER BY updated_at",
        )
        .context(|| "preparing the open writes listing".into())?;
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
        .context(|| "listing open writes".into())?;
    let mut out = Vec::new();
    for row in rows {
        let (key, writes) = row.context(|| "listing open writes".into())?;
        if writes.split(' ').any(|w| w == write.as_str()) {
            out.push(key);
        }
    }
    Ok(out)
}

/// How many orders have each kind of write open, and the oldest such order's last change.
pub fn open_write_counts(conn: &Connection) -> Result<Vec<(String, i64, String)>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT writes_open, updated_at FROM order_status WHERE writes_open IS NOT NULL")
        .context(|| "preparing the open writes count".into())?;
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
        .context(|| "counting open writes".into())?;
    let mut counts: std::collections::BTreeMap<String, (i64, String)> = Default::default();
    for row in rows {
        let (writes, updated_at) = row.context(|| "counting open writes".into())?;
        for write in writes.split(' ') {
            let entry = counts.entry(write.to_owned()).or_insert((0, updated_at.clone()));
            entry.0 += 1;
            if updated_at < entry.1 {
                entry.1 = updated_at.clone();
            }
        }
    }
    Ok(counts.into_iter().map(|(write, (n, oldest))| (write, n, oldest)).collect())
}

/// What the event log page filters on; empty strings filter nothing.
#[derive(Debug, Clone, Default)]
pub struct EventLogFilter {
    /// Events before this position (the page's start); `i64::MAX` for the newest.
    pub before: i64,
    pub stream: String,
    pub event_type: String,
    /// An actor or its prefix (`operator:` lists every operator's actions).
    pub actor: String,
    pub limit: usize,
}

/// One event as the event log lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogRow {
    pub position: i64,
    pub stream: String,
    pub event_type: String,
    pub data: String,
    pub actor: Option<String>,
    pub blob: Option<String>,
    pub recorded_at: String,
}

/// The log, newest first, filtered (the log itself is the record; this only reads it).
pub fn event_log(conn: &Connection, filter: &EventLogFilter) -> Result<Vec<EventLogRow>, StoreError> {
    let mut sql = "SELECT position, stream, type, data, json_extract(meta, '$.actor'), blob, recorded_at FROM events \
                   WHERE position < ?"
        .to_owned();
    let mut values = vec![Value::Integer(filter.before)];
    if !filter.stream.is_empty() {
        sql.push_str(" AND stream = ?");
        values.push(Value::Text(filter.stream.clone()));
    }
    if !filter.event_type.is_empty() {
        sql.push_str(" AND type = ?");
        values.push(Value::Text(filter.event_type.clone()));
    }
    if !filter.actor.is_empty() {
        values.push(Value::Text(filter.actor.clone()));
        let n = values.len();
        sql.push_str(&format!(" AND substr(json_extract(meta, '$.actor'), 1, length(?{n})) = ?{n}"));
    }
    sql.push_str(&format!(" ORDER BY position DESC LIMIT {}", filter.limit));
    let mut statement = conn.prepare(&sql).context(|| "preparing the event log".into())?;
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok(EventLogRow {
                position: row.get(0)?,
                stream: row.get(1)?,
                event_type: row.get(2)?,
                data: row.get(3)?,
                actor: row.get(4)?,
                blob: row.get(5)?,
                recorded_at: row.get(6)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .context(|| "reading the event log".into())?;
    Ok(rows)
}

/// A kept raw input (an email, an API answer): its content type and bytes.
pub fn raw_record(conn: &Connection, sha256: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    conn.query_row("SELECT content_type, data FROM blobs WHERE sha256 = ?1", [sha256], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .optional()
    .context(|| format!("reading the raw record {sha256}"))
}

/// The mailbox's last recorded cursor (UIDVALIDITY, last UID), decoded.
pub fn mailbox_cursor(
    conn: &Connection,
    mailbox_stream: &str,
) -> Result<Option<events::mailbox::MailboxCursor>, StoreError> {
    let last: Option<events::RecordedEvent> = events::store::last_of_type_in(conn, mailbox_stream, "MailboxCursor")?;
    let Some(last) = last else { return Ok(None) };
    match events::mailbox::MailboxEvent::decode(&last, &events::ledger_event::upcasters()) {
        Ok(events::mailbox::MailboxEvent::MailboxCursor(cursor)) => Ok(Some(cursor)),
        Ok(_) => Ok(None),
        Err(error) => Err(StoreError::CorruptRow { position: last.position, reason: error.to_string() }),
    }
}

/// Whether the ledger answers a query at all (the unauthenticated probe).
pub fn ledger_answers(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("SELECT count(*) FROM projection_checkpoints", [], |row| row.get::<_, i64>(0))
        .map(|_| ())
        .context(|| "probing the ledger".into())
}

/// One load or rejection of the SKU master, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuMasterRecord {
    pub at: chrono::DateTime<chrono::Utc>,
    pub path: String,
    pub sha256: String,
    /// Rows of a loaded workbook; None for a rejected one.
    pub rows: Option<usize>,
    /// Why a workbook was rejected.
    pub rejected: Option<String>,
    /// The kept workbook (loaded ones only).
    pub blob: Option<String>,
}

/// The SKU master's last `limit` loads and rejections, newest first (read from its stream).
pub fn sku_master_history(conn: &Connection, limit: usize) -> Result<Vec<SkuMasterRecord>, StoreError> {
    use events::sku_master::{SkuMasterEvent, SKU_MASTER_STREAM};
    let upcasters = events::ledger_event::upcasters();
    let mut records = Vec::new();
    for event in events::store::read_stream_until_in(conn, SKU_MASTER_STREAM, i64::MAX)?.into_iter().rev().take(limit) {
        let record = match SkuMasterEvent::decode(&event, &upcasters) {
            Ok(SkuMasterEvent::SkuMasterLoaded(loaded)) => SkuMasterRecord {
                at: event.recorded_at,
                path: loaded.path,
                sha256: loaded.sha256,
                rows: Some(loaded.rows),
                rejected: None,
                blob: event.blob,
            },
            Ok(SkuMasterEvent::SkuMasterRejected(rejected)) => SkuMasterRecord {
                at: event.recorded_at,
                path: rejected.path,
                sha256: rejected.sha256,
                rows: None,
                rejected: Some(rejected.error),
                blob: None,
            },
            Err(error) => return Err(StoreError::CorruptRow { position: event.position, reason: error.to_string() }),
        };
        records.push(record);
    }
    Ok(records)
}

/// The newest event of one of `types` in `stream`: its type, data (JSON) and when it was recorded.
pub fn last_event_of(
    conn: &Connection,
    stream: &str,
    types: &[&str],
) -> Result<Option<(String, String, String)>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT type, data, recorded_at FROM events WHERE stream = ?1 AND type IN (SELECT value FROM json_each(?2))
             ORDER BY position DESC LIMIT 1",
        )
        .context(|| format!("preparing the last event of {stream}"))?;
    let types = serde_json::to_string(types).unwrap_or_else(|_| "[]".into());
    let mut rows = statement
        .query_map(rusqlite::params![stream, types], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .context(|| format!("reading the last event of {stream}"))?;
    rows.next().transpose().context(|| format!("reading the last event of {stream}"))
}
