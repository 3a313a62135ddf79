//! The audit trail: every event of an order with its actor and time, in words an operator
//! reads. It is projected on read from the order's own stream (a range scan of the
//! `(stream, version)` index), so it always equals the log and costs nothing to rebuild;
//! materialising it would write every event a second time.

use events::order::{order_upcasters, OrderEvent};
use events::store::{format_time, read_stream_until_in, StoreError};
use events::OrderKey;
use rusqlite::Connection;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub position: i64,
    pub version: i64,
    pub recorded_at: String,
    pub actor: String,
    pub event_type: String,
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Decode(#[from] Box<events::order::LocatedDecodeError>),
}

/// The audit trail of one order, oldest first; empty when the order is unknown.
pub fn order_history(conn: &Connection, order: &OrderKey) -> Result<Vec<HistoryRow>, HistoryError> {
    let upcasters = order_upcasters();
    read_stream_until_in(conn, &order.stream(), i64::MAX)?
        .into_iter()
        .map(|recorded| {
            let event = OrderEvent::decode(&recorded, &upcasters).map_err(Box::new)?;
            Ok(HistoryRow {
                position: recorded.position,
                version: recorded.version,
                recorded_at: format_time(recorded.recorded_at),
                actor: recorded.meta.actor.to_string(),
                event_type: recorded.event_type,
                summary: event.describe(),
            })
        })
        .collect()
}
