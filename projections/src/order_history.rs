//! The audit trail: every event of an order with its actor and time, in words an operator
//! reads. It is projected on read from the order's own stream (a range scan of the
//! `(stream, version)` index), so it always equals the log and costs nothing to rebuild;
//! materialising it would write every event a second time.

use events::order::{order_upcasters, OrderEvent, OrderState};
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
    /// The payload as stored (JSON), for the operator who wants the raw record.
    pub data: String,
    /// The raw email or API response the event was derived from, when kept.
    pub blob: Option<String>,
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
    order_with_history(conn, order).map(|(_, history)| history)
}

/// The order's current state and its audit trail from one read of its stream (the detail page
/// shows both, and they must agree).
pub fn order_with_history(conn: &Connection, order: &OrderKey) -> Result<(OrderState, Vec<HistoryRow>), HistoryError> {
    let upcasters = order_upcasters();
    let mut state = OrderState::new(order.clone());
    let mut history = Vec::new();
    for recorded in read_stream_until_in(conn, &order.stream(), i64::MAX)? {
        let event = OrderEvent::decode(&recorded, &upcasters).map_err(Box::new)?;
        state.apply_recorded(&event, recorded.version, recorded.recorded_at);
        history.push(HistoryRow {
            position: recorded.position,
            version: recorded.version,
            recorded_at: format_time(recorded.recorded_at),
            actor: recorded.meta.actor.to_string(),
            summary: event.describe(),
            event_type: recorded.event_type,
            data: recorded.data,
            blob: recorded.blob,
        });
    }
    Ok((state, history))
}
