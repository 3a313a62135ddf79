//! Replay: how an admin examines history. Nothing here calls an outside system or writes to
//! the events table; `rebuild` rewrites the projections, everything else only reads.
//!
//! - [`rebuild`]: drop and rebuild every projection from the log.
//! - [`verify`]: rebuild into a scratch copy and diff against the live projections.
//! - [`time_travel`]: one order as it stood at a position or a time.
//! - [`export`]: events as JSON lines.

pub mod audit;
pub mod export;
pub mod rebuild;
pub mod time_travel;
pub mod verify;

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
