//! `replay verify`: rebuild the projections from the log into a scratch copy of the ledger and
//! compare them with the live ones, row by row. The live file is only read.

use crate::ReplayError;
use events::store::{EventStore, OpenMode, SqlContext};
use projections::{Projections, PROJECTION_TABLES};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    pub table: String,
    /// Rows the live projection has that a rebuild does not produce.
    pub only_live: Vec<String>,
    pub only_live_count: i64,
    /// Rows a rebuild produces that the live projection lacks.
    pub only_rebuilt: Vec<String>,
    pub only_rebuilt_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The live projections' checkpoint; the comparison is of a rebuild exactly this far.
    pub position: i64,
    /// The newest event of the snapshot: every event up to here was folded.
    pub head: i64,
    pub tables_compared: usize,
    pub differences: Vec<TableDifference>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// How many differing rows of each kind a report shows.
const SHOWN_ROWS: i64 = 20;

pub fn verify(live_path: &Path) -> Result<VerifyReport, ReplayError> {
    // Refuses a missing, foreign, corrupt or newer-schema file before anything else.
    drop(crate::open_for_examination(live_path)?);
    let scratch_dir = tempfile::tempdir()
        .map_err(|source| ReplayError::Io { context: "creating a scratch folder".into(), source })?;
    let scratch_path = scratch_dir.path().join("verify.db");
    {
        let live = Connection::open_with_flags(live_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .context(|| format!("opening {} read-only", live_path.display()))?;
        // One consistent snapshot of events and projections, whatever writes meanwhile.
        live.execute("VACUUM INTO ?1", [scratch_path.to_string_lossy()])
            .context(|| "copying the ledger into a scratch database".into())?;
    }
    let mut scratch = EventStore::open(&scratch_path, OpenMode::MustExist)?;
    let conn = scratch.connection_mut();
    let projections_present: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'projection_checkpoints'", [], |r| r.get(0))
        .context(|| "looking for projections".into())?;
    if projections_present == 0 {
        return Err(ReplayError::Invalid(format!(
            "{} has no projections yet; open it once with a writing command (e.g. `mcf-ledger order list`)",
            live_path.display()
        )));
    }
    let mut projections = Projections::standard();
    let position = projections.checkpoint(conn)?;
    let head: i64 = conn
        .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0))
        .context(|| "reading the head of the snapshot".into())?;
    set_aside_live_tables(conn)?;
    projections::schema_recreate(conn)?;
    projections.rebuild(conn, position, &mut |_| {})?;
    let mut differences = Vec::new();
    for (table, order_by) in PROJECTION_TABLES {
        let live_table = format!("live_{table}");
        let (only_live, only_live_count) = except(conn, &live_table, table, order_by)?;
        let (only_rebuilt, only_rebuilt_count) = except(conn, table, &live_table, order_by)?;
        if only_live_count > 0 || only_rebuilt_count > 0 {
            differences.push(TableDifference {
                table: table.to_string(),
                only_live,
                only_live_count,
                only_rebuilt,
                only_rebuilt_count,
            });
        }
    }
    // The live projections may stop short of the head: another process just appended, or they
    // could not fold the next event. Folding on to the head tells which.
    projections.catch_up_to(conn, head, &mut |_| {})?;
    Ok(VerifyReport { position, head, tables_compared: PROJECTION_TABLES.len(), differences })
}

/// Renames the snapshot's projection tables to `live_*` (dropping their indexes, whose names
/// the fresh tables need).
fn set_aside_live_tables(conn: &Connection) -> Result<(), ReplayError> {
    for (table, _) in PROJECTION_TABLES {
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")
            .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
            .context(|| format!("listing indexes of {table}"))?;
        for index in indexes {
            conn.execute(&format!("DROP INDEX \"{index}\""), []).context(|| format!("dropping index {index}"))?;
        }
        // Its triggers keep the search index; the fresh table gets its own.
        let triggers: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1")
            .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
            .context(|| format!("listing triggers of {table}"))?;
        for trigger in triggers {
            conn.execute(&format!("DROP TRIGGER \"{trigger}\""), [])
                .context(|| format!("dropping trigger {trigger}"))?;
        }
        conn.execute(&format!("ALTER TABLE {table} RENAME TO live_{table}"), [])
            .context(|| format!("setting aside {table}"))?;
    }
    Ok(())
}

fn except(conn: &Connection, left: &str, right: &str, order_by: &str) -> Result<(Vec<String>, i64), ReplayError> {
    let difference = format!("SELECT * FROM {left} EXCEPT SELECT * FROM {right}");
    let count: i64 = conn
        .query_row(&format!("SELECT count(*) FROM ({difference})"), [], |r| r.get(0))
        .context(|| format!("comparing {left} with {right}"))?;
    let mut statement = conn
        .prepare(&format!("{difference} ORDER BY {order_by} LIMIT {SHOWN_ROWS}"))
        .context(|| format!("comparing {left} with {right}"))?;
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let rows = statement
        .query_map([], |row| {
            let fields: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, name)| Ok(format!("{name}={}", show_value(row.get_ref(i)?))))
                .collect::<rusqlite::Result<_>>()?;
            Ok(fields.join(" "))
        })
        .context(|| format!("comparing {left} with {right}"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .context(|| format!("comparing {left} with {right}"))?;
    Ok((rows, count))
}

fn show_value(value: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
    }
}
