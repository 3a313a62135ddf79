//! Projections: everything an operator sees, folded from the ledger and rebuildable from it.
//!
//! - [`engine`]: pulls events by position and hands them to each [`Projector`] in batches,
//!   writing each projector's checkpoint in the same transaction as its rows.
//! - [`projector`]: the contract every read model keeps, and the events it is given.
//! - [`order_status`]: one row per order, and the counts per status.
//! - [`order_history`]: the audit trail in words, projected on read from an order's stream.
//! - [`source_status`]: one row per polled source (cursor, outage, credentials).
//! - [`ledger`]: the event store plus projections kept up to date after every append.
//! - [`queries`]: reads for the CLI and the web admin.

pub mod cycles;
pub mod engine;
pub mod ledger;
pub mod order_history;
pub mod order_status;
pub mod projector;
pub mod queries;
pub mod rebuild;
pub(crate) mod schema;
pub mod source_status;
pub mod stock;

pub use engine::{CatchUp, Projections};
pub use ledger::{Ledger, LedgerError};
pub use order_history::HistoryRow;
pub use projector::{Projected, ProjectionError, Projector};
pub use queries::{OrderFilter, OrderRow, OrderSort};
pub use schema::{check_projections_not_newer, projection_schema_version, PROJECTION_TABLES};

/// Recreates every projection table empty, at the current shape.
pub fn schema_recreate(conn: &rusqlite::Connection) -> Result<(), events::StoreError> {
    use events::store::SqlContext;
    schema::recreate(conn).context(|| "recreating the projection tables".into())
}
#[cfg(test)]
mod tests;
