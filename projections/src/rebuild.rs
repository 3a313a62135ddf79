//! Rebuilding the projections of a live ledger without ever leaving it worse: the whole log is
//! folded beside the live projections, into a private scratch file that reads the live log
//! through ATTACH, and only when every event folded are the rows swapped in, in one
//! transaction. A damaged page, an event this build cannot read, a full disk: the live
//! projections stay exactly as they were, and the error says so.

use crate::engine::{CatchUp, Projections};
use crate::projector::ProjectionError;
use crate::schema::{self, PROJECTION_MIGRATIONS};
use events::store::SqlContext;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, TransactionBehavior};
use std::path::Path;

/// The tables a swap replaces: every projection, and the checkpoints that say how far they go.
fn swapped() -> impl Iterator<Item = &'static str> {
    crate::PROJECTION_TABLES.iter().map(|(table, _)| *table).chain(["projection_checkpoints"])
}

/// How the live file's projection schema is brought up to this build's in the swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Same schema: replace the rows.
    Rows,
    /// An older schema: migrate the tables and fill them, in the same transaction.
    MigrateThenRows,
}

/// Folds the whole log of the ledger at `live_path` beside its projections and swaps the result
/// in. Returns what was folded; events appended meanwhile are caught up by the caller.
pub fn rebuild_beside(
    live: &mut Connection,
    live_path: &Path,
    projections: &mut Projections,
    swap: Swap,
    progress: &mut dyn FnMut(CatchUp),
) -> Result<CatchUp, ProjectionError> {
    if live_path.as_os_str() == ":memory:" {
        return Err(ProjectionError::Setup("an in-memory ledger cannot be rebuilt beside itself".into()));
    }
    let dir = tempfile::tempdir().map_err(|e| io_error("creating a scratch folder for the rebuild", e))?;
    let scratch_path = dir.path().join("projections.db");
    let folded = {
        let mut scratch = Connection::open(&scratch_path).context(|| "opening the rebuild's scratch file".into())?;
        scratch
            .execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .context(|| "configuring the rebuild's scratch file".into())?;
        schema::migrate_projections(&mut scratch)
            .map_err(|e| ProjectionError::Setup(format!("creating the scratch projections: {e}")))?;
        schema::drop_secondary_indexes(&scratch).context(|| "dropping the scratch indexes".into())?;
        scratch
            .execute("ATTACH DATABASE ?1 AS live", [live_path.to_string_lossy()])
            .context(|| format!("reading the log of {}", live_path.display()))?;
        let head: i64 = scratch
            .query_row("SELECT COALESCE(MAX(position), 0) FROM live.events", [], |row| row.get(0))
            .context(|| "reading the head of the log".into())?;
        projections.fold_into_scratch(&mut scratch, head, progress)?
    };
    swap_in(live, &scratch_path, swap)?;
    Ok(folded)
}

/// Replaces the live projection rows with the scratch file's, in one transaction.
fn swap_in(live: &mut Connection, scratch_path: &Path, swap: Swap) -> Result<(), ProjectionError> {
    let scratch = Connection::open(scratch_path).context(|| "reopening the rebuild's scratch file".into())?;
    let tx = live
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .context(|| "starting the swap of the rebuilt projections".into())?;
    if swap == Swap::MigrateThenRows {
        events::schema::migrate_within(&tx, "projections", PROJECTION_MIGRATIONS)
            .map_err(|e| ProjectionError::Setup(format!("migrating the projection tables: {e}")))?;
    }
    schema::drop_secondary_indexes(&tx).context(|| "dropping the projection indexes for the swap".into())?;
    for table in swapped() {
        tx.execute(&format!("DELETE FROM {table}"), []).context(|| format!("clearing {table}"))?;
        copy_rows(&scratch, &tx, table)?;
    }
    schema::ensure_secondary_indexes(&tx).context(|| "building the projection indexes".into())?;
    tx.commit().context(|| "committing the rebuilt projections".into())?;
    Ok(())
}

fn copy_rows(from: &Connection, to: &Connection, table: &str) -> Result<(), ProjectionError> {
    let mut select =
        from.prepare(&format!("SELECT * FROM {table}")).context(|| format!("reading the rebuilt {table}"))?;
    let columns: Vec<String> = select.column_names().map(str::to_owned).collect();
    let marks = vec!["?"; columns.len()].join(", ");
    let mut insert = to
        .prepare(&format!("INSERT INTO {table} ({}) VALUES ({marks})", columns.join(", ")))
        .context(|| format!("preparing the copy of {table}"))?;
    let mut rows = select.query([]).context(|| format!("reading the rebuilt {table}"))?;
    while let Some(row) = rows.next().context(|| format!("reading the rebuilt {table}"))? {
        let values: Vec<Value> = (0..columns.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<Result<_, _>>()
            .context(|| format!("reading the rebuilt {table}"))?;
        insert.execute(params_from_iter(values)).context(|| format!("copying a row of {table}"))?;
    }
    Ok(())
}

fn io_error(context: &str, error: std::io::Error) -> ProjectionError {
    ProjectionError::Setup(format!("{context}: {error}"))
}
