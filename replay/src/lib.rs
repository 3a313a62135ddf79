//! Replay: how an admin examines history. Nothing here calls an outside system or writes to
//! the events table; `rebuild` rewrites the projections, everything else only reads.
//!
//! - [`rebuild`]: drop and rebuild every projection from the log.
//! - [`verify`]: rebuild into a scratch copy and diff against the live projections.
//! - [`time_travel`]: one order as it stood at a position or a time.
//! - [`export`]: events as JSON lines.

pub mod audit;
pub mod export;
pub mod incident;
pub mod rebuild;
pub mod time_travel;
pub mod verify;

use events::store::OpenMode;
use events::EventStore;
use std::path::Path;

/// Opens a ledger to examine it: read-only, and refused (exit 1, one line) when its events or
/// its projections were written by a newer build, whose events this build may not understand.
pub fn open_for_examination(path: &Path) -> Result<EventStore, ReplayError> {
    let store = EventStore::open(path, OpenMode::ReadOnly)?;
    projections::check_projections_not_newer(store.connection()).map_err(|source| {
        projections::LedgerError::Schema { path: path.display().to_string(), source: Box::new(source) }
    })?;
    Ok(store)
}

/// Decodes every event of the ledger with the types of this build; the first one that cannot
/// be folded is the error, naming its position, stream and type. Returns how many events.
pub fn check_every_event_folds(store: &EventStore) -> Result<u64, ReplayError> {
    let upcasters = events::ledger_event::upcasters();
    let mut checked = 0;
    let mut unfoldable = None;
    store.for_each_after(0, None, |event| {
        if unfoldable.is_none() {
            match events::LedgerEvent::decode(&event, &upcasters) {
                Ok(_) => checked += 1,
                Err(error) => unfoldable = Some(error),
            }
        }
        Ok(())
    })?;
    match unfoldable {
        Some(error) => Err(ReplayError::Decode(error)),
        None => Ok(checked),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Ledger(#[from] projections::LedgerError),
    #[error(transparent)]
    Projection(#[from] projections::ProjectionError),
    #[error(transparent)]
    Store(#[from] events::StoreError),
    #[error("{0}")]
    Decode(#[from] events::order::LocatedDecodeError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests;
