//! One order as it stood at a position or a time, folded from the log alone.

use crate::ReplayError;
use chrono::{DateTime, Utc};
use events::order::{OrderEvent, OrderState};
use events::{OrderKey, RecordedEvent};
use projections::Ledger;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Head,
    Position(i64),
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub position: i64,
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderAt {
    pub order: String,
    /// The last position of this order's stream included.
    pub as_of_position: i64,
    pub state: OrderState,
    pub timeline: Vec<TimelineEntry>,
    /// Events of this order after the cut-off, not shown in the state.
    pub later_events: usize,
}

pub fn order_at(ledger: &Ledger, key: &OrderKey, at: At) -> Result<OrderAt, ReplayError> {
    let all = ledger.store().read_stream(&key.stream())?;
    if all.is_empty() {
        return Err(ReplayError::Invalid(format!("order {key} is not in the ledger")));
    }
    let included = |event: &RecordedEvent| match at {
        At::Head => true,
        At::Position(position) => event.position <= position,
        At::Time(time) => event.recorded_at <= time,
    };
    let upcasters = events::order::order_upcasters();
    let mut state = OrderState::new(key.clone());
    let mut timeline = Vec::new();
    let mut as_of_position = 0;
    for recorded in all.iter().filter(|e| included(e)) {
        let event = OrderEvent::decode(recorded, &upcasters)?;
        state.apply_recorded(&event, recorded.version, recorded.recorded_at);
        as_of_position = recorded.position;
        timeline.push(TimelineEntry {
            position: recorded.position,
            version: recorded.version,
            recorded_at: recorded.recorded_at,
            actor: recorded.meta.actor.to_string(),
            event_type: recorded.event_type.clone(),
            summary: event.describe(),
        });
    }
    let later_events = all.len() - timeline.len();
    Ok(OrderAt { order: key.to_string(), as_of_position, state, timeline, later_events })
}
