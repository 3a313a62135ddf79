//! Projection tables. They hold nothing that is not derived from events, so a schema change is
//! a drop-and-rebuild: each migration step recreates the tables and resets the checkpoints.

use events::schema::{migrate, MigrationError};
use rusqlite::Connection;

/// Every table a rebuild clears and `replay verify` compares, with the key to order rows by.
pub const PROJECTION_TABLES: &[(&str, &str)] = &[
    ("order_status", "order_key"),
    ("status_counts", "status"),
    ("source_status", "stream"),
    ("cycles", "started_position"),
    ("fba_stock", "seller_sku"),
];

const CREATE_V1: &str = "
    DROP TABLE IF EXISTS projection_checkpoints;
    DROP TABLE IF EXISTS order_status;
    DROP TABLE IF EXISTS status_counts;
    DROP TABLE IF EXISTS order_history;
    CREATE TABLE projection_checkpoints (
        projector TEXT PRIMARY KEY,
        position  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE order_status (
        order_key       TEXT PRIMARY KEY,
        marketplace     TEXT NOT NULL,
        order_number    TEXT NOT NULL,
        status          TEXT NOT NULL,
        buyer_name      TEXT,
        item_summary    TEXT,
        ordered_at      TEXT,
        mcf_order_id    TEXT,
        shipping_speed  TEXT,
        tracking_number TEXT,
        carrier         TEXT,
        error           TEXT,
        hold            TEXT,
        cancel_pending  INTEGER NOT NULL,
        version         INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;
    CREATE TABLE status_counts (
        status TEXT PRIMARY KEY,
        count  INTEGER NOT NULL
    ) STRICT;
";

/// 2: `email_intent` (a customer email waits to be sent), for the mail stage.
const CREATE_V2: &str = "
    DROP TABLE IF EXISTS projection_checkpoints;
    DROP TABLE IF EXISTS order_status;
    DROP TABLE IF EXISTS status_counts;
    DROP TABLE IF EXISTS order_history;
    CREATE TABLE projection_checkpoints (
        projector TEXT PRIMARY KEY,
        position  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE order_status (
        order_key       TEXT PRIMARY KEY,
        marketplace     TEXT NOT NULL,
        order_number    TEXT NOT NULL,
        status          TEXT NOT NULL,
        buyer_name      TEXT,
        item_summary    TEXT,
        ordered_at      TEXT,
        mcf_order_id    TEXT,
        shipping_speed  TEXT,
        tracking_number TEXT,
        carrier         TEXT,
        error           TEXT,
        hold            TEXT,
        cancel_pending  INTEGER NOT NULL,
        email_intent    INTEGER NOT NULL,
        version         INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;
    CREATE TABLE status_counts (
        status TEXT PRIMARY KEY,
        count  INTEGER NOT NULL
    ) STRICT;
";

/// 3: `email_sending` (an email handed to SMTP with no outcome) and `tasks_due` (the guide's manual
/// emails not yet marked done), for the to-do list.
const CREATE_V3: &str = "
    DROP TABLE IF EXISTS projection_checkpoints;
    DROP TABLE IF EXISTS order_status;
    DROP TABLE IF EXISTS status_counts;
    DROP TABLE IF EXISTS order_history;
    CREATE TABLE projection_checkpoints (
        projector TEXT PRIMARY KEY,
        position  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE order_status (
        order_key       TEXT PRIMARY KEY,
        marketplace     TEXT NOT NULL,
        order_number    TEXT NOT NULL,
        status          TEXT NOT NULL,
        buyer_name      TEXT,
        item_summary    TEXT,
        ordered_at      TEXT,
        mcf_order_id    TEXT,
        shipping_speed  TEXT,
        tracking_number TEXT,
        carrier         TEXT,
        error           TEXT,
        hold            TEXT,
        cancel_pending  INTEGER NOT NULL,
        email_intent    INTEGER NOT NULL,
        email_sending   INTEGER NOT NULL,
        tasks_due       TEXT,
        version         INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;
    CREATE TABLE status_counts (
        status TEXT PRIMARY KEY,
        count  INTEGER NOT NULL
    ) STRICT;
";

/// 4: the order list's search. `order_status` gets a stable integer `id` (kept by VACUUM, unlike
/// an implicit rowid) that keys `order_search`, a trigram full-text index over order key, buyer
/// and MCF id, so a search at 100,000 orders reads an index instead of every row.
const CREATE_V4: &str = "
    DROP TABLE IF EXISTS projection_checkpoints;
    DROP TABLE IF EXISTS order_status;
    DROP TABLE IF EXISTS status_counts;
    DROP TABLE IF EXISTS order_history;
    DROP TABLE IF EXISTS order_search;
    CREATE TABLE projection_checkpoints (
        projector TEXT PRIMARY KEY,
        position  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE order_status (
        id              INTEGER PRIMARY KEY,
        order_key       TEXT NOT NULL UNIQUE,
        marketplace     TEXT NOT NULL,
        order_number    TEXT NOT NULL,
        status          TEXT NOT NULL,
        buyer_name      TEXT,
        item_summary    TEXT,
        ordered_at      TEXT,
        mcf_order_id    TEXT,
        shipping_speed  TEXT,
        tracking_number TEXT,
        carrier         TEXT,
        error           TEXT,
        hold            TEXT,
        cancel_pending  INTEGER NOT NULL,
        email_intent    INTEGER NOT NULL,
        email_sending   INTEGER NOT NULL,
        tasks_due       TEXT,
        version         INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;
    CREATE TABLE status_counts (
        status TEXT PRIMARY KEY,
        count  INTEGER NOT NULL
    ) STRICT;
    CREATE VIRTUAL TABLE order_search USING fts5(terms, tokenize = 'trigram');
";

/// Indexes that only serve reads; a rebuild drops them and builds them once at the end.
const SECONDARY_INDEXES: &[(&str, &str)] = &[
    ("order_status_by_status", "order_status (status, updated_at)"),
    ("order_status_by_update", "order_status (updated_at)"),
    ("order_status_by_mcf", "order_status (mcf_order_id) WHERE mcf_order_id IS NOT NULL"),
    ("order_status_by_email_intent", "order_status (order_key) WHERE email_intent = 1"),
    ("order_status_by_email_sending", "order_status (order_key) WHERE email_sending = 1"),
    ("order_status_by_tasks_due", "order_status (updated_at) WHERE tasks_due IS NOT NULL"),
    ("order_status_by_ordered", "order_status (ordered_at)"),
    ("cycles_unfinished", "cycles (holder) WHERE finished_at IS NULL"),
    ("order_status_by_open_writes", "order_status (updated_at) WHERE writes_open IS NOT NULL"),
    ("order_status_held", "order_status (ordered_at) WHERE hold IS NOT NULL"),
];

pub fn ensure_secondary_indexes(conn: &Connection) -> rusqlite::Result<()> {
    for (name, definition) in SECONDARY_INDEXES {
        conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {definition};"))?;
    }
    ensure_search_index(conn)
}

/// What a search matches: the order key and everything on the order's label.
fn search_terms(row: &str) -> String {
    format!("{row}.order_key || ' ' || coalesce({row}.search_text, '')")
}

/// The search index follows `order_status` through triggers. Their presence means the index is
/// in step; without them (a fresh schema, or after a rebuild dropped them to write faster) the
/// index is filled from the table in one statement and the triggers are created.
fn ensure_search_index(conn: &Connection) -> rusqlite::Result<()> {
    let in_step: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'order_search_on_insert'",
        [],
        |row| row.get(0),
    )?;
    if in_step > 0 {
        return Ok(());
    }
    let (new, old, table) = (search_terms("new"), search_terms("old"), search_terms("order_status"));
    conn.execute_batch(&format!(
        "SAVEPOINT search_index;
         DELETE FROM order_search;
         INSERT INTO order_search (rowid, terms) SELECT id, {table} FROM order_status;
         CREATE TRIGGER order_search_on_insert AFTER INSERT ON order_status BEGIN
             INSERT INTO order_search (rowid, terms) VALUES (new.id, {new});
         END;
         CREATE TRIGGER order_search_on_update AFTER UPDATE OF search_text ON order_status
             WHEN {old} IS NOT {new} BEGIN
             UPDATE order_search SET terms = {new} WHERE rowid = new.id;
         END;
         CREATE TRIGGER order_search_on_delete AFTER DELETE ON order_status BEGIN
             DELETE FROM order_search WHERE rowid = old.id;
         END;
         RELEASE search_index;"
    ))
}

pub fn drop_secondary_indexes(conn: &Connection) -> rusqlite::Result<()> {
    for (name, _) in SECONDARY_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {name};"))?;
    }
    for trigger in ["order_search_on_insert", "order_search_on_update", "order_search_on_delete"] {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {trigger};"))?;
    }
    Ok(())
}

/// 5: `source_status`, each polled source's state folded once (it was folded from its whole
/// stream on every read). The other projections are emptied, so the catch-up rebuilds all.
const CREATE_V5: &str = "
    DELETE FROM projection_checkpoints;
    DELETE FROM order_status;
    DELETE FROM status_counts;
    DROP TABLE IF EXISTS source_status;
    CREATE TABLE source_status (
        stream TEXT PRIMARY KEY,
        state  TEXT NOT NULL
    ) STRICT;
";

/// 6: `cycles`, one row per cycle (who ran it, when it started, and its `CycleFinished` once it
/// finished), so the health page shows a cycle whose process died as what it is.
const CREATE_V6: &str = "
    DROP TABLE IF EXISTS cycles;
    CREATE TABLE cycles (
        started_position INTEGER PRIMARY KEY,
        holder           TEXT NOT NULL,
        started_at       TEXT NOT NULL,
        finished_at      TEXT,
        finished         TEXT
    ) STRICT;
    DELETE FROM projection_checkpoints WHERE projector = 'cycles';
";

/// 7: `writes_open`, the marketplace writes of an order sent without an outcome or refused
/// (space-separated), so the stages find pending writes (a Yahoo completion) without folding
/// every shipped order, and the health page counts them.
const CREATE_V7: &str = "
    ALTER TABLE order_status ADD COLUMN writes_open TEXT;
    DELETE FROM projection_checkpoints;
    DELETE FROM order_status;
    DELETE FROM status_counts;
";

/// 8: `search_text`, everything on an order's label (buyer, phone, email, address, items and
/// SKUs, MCF id, tracking number, memos) for the list's search; the search index follows it
/// (its triggers are made again, on the new column). The rows are refilled by the catch-up.
const CREATE_V8: &str = "
    ALTER TABLE order_status ADD COLUMN search_text TEXT;
    DROP TRIGGER IF EXISTS order_search_on_insert;
    DROP TRIGGER IF EXISTS order_search_on_update;
    DROP TRIGGER IF EXISTS order_search_on_delete;
    DELETE FROM projection_checkpoints;
    DELETE FROM order_status;
    DELETE FROM status_counts;
";

/// 9: `fba_stock`, the last FBA reading per seller SKU (check's, or the stock stage's).
const CREATE_V9: &str = "
    DROP TABLE IF EXISTS fba_stock;
    CREATE TABLE fba_stock (
        seller_sku  TEXT PRIMARY KEY,
        fulfillable INTEGER NOT NULL,
        read_at     TEXT NOT NULL,
        read_by     TEXT NOT NULL
    ) STRICT;
    DELETE FROM projection_checkpoints WHERE projector = 'fba_stock';
";

pub const PROJECTION_MIGRATIONS: &[&str] =
    &[CREATE_V1, CREATE_V2, CREATE_V3, CREATE_V4, CREATE_V5, CREATE_V6, CREATE_V7, CREATE_V8, CREATE_V9];

/// Drops and recreates every projection table at the current shape (used by `replay verify`
/// on its scratch copy). Version 4 recreates every table it knows; later steps build on it.
pub fn recreate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    drop_secondary_indexes(conn)?;
    for step in &PROJECTION_MIGRATIONS[3..] {
        conn.execute_batch(step)?;
    }
    ensure_secondary_indexes(conn)
}

pub fn migrate_projections(conn: &mut Connection) -> Result<(), MigrationError> {
    migrate(conn, "projections", PROJECTION_MIGRATIONS)?;
    ensure_secondary_indexes(conn)?;
    Ok(())
}

/// The projection schema this build writes.
pub fn projection_schema_version() -> i64 {
    PROJECTION_MIGRATIONS.len() as i64
}

/// The file's projection schema version (0 before the first), refusing one newer than this
/// build. Reads only: a read-only file without the version table is at version 0.
pub fn check_projections_not_newer(conn: &Connection) -> Result<i64, MigrationError> {
    let has_table: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'ledger_schema'",
        [],
        |row| row.get(0),
    )?;
    if has_table == 0 {
        return Ok(0);
    }
    events::schema::check_not_newer(conn, "projections", PROJECTION_MIGRATIONS)
}
