//! The audit trail: every order event with its actor and time, in words an operator reads.

use crate::engine::{ProjectionError, Projector};
use events::order::OrderEvent;
use events::store::{format_time, SqlContext};
use events::upcast::Upcasters;
use events::{OrderKey, RecordedEvent};
use rusqlite::{params, Transaction};

pub const NAME: &str = "order_history";

pub struct OrderHistoryProjector;

impl Projector for OrderHistoryProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
        upcasters: &Upcasters,
    ) -> Result<(), ProjectionError> {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO order_history (position, order_key, version, recorded_at, actor, event_type, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .context(|| "preparing the history insert".into())?;
        for event in events
            .iter()
            .filter(|e| e.category() == OrderKey::STREAM_CATEGORY)
        {
            let decoded = OrderEvent::decode(event, upcasters)
                .map_err(|e| ProjectionError::event(NAME, event, e))?;
            let order_key = &event.stream["order-".len()..];
            insert
                .execute(params![
                    event.position,
                    order_key,
                    event.version,
                    format_time(event.recorded_at),
                    event.meta.actor.as_str(),
                    event.event_type,
                    decoded.describe(),
                ])
                .context(|| format!("writing history for {}", event.locator()))?;
        }
        Ok(())
    }

    fn forget_cache(&mut self) {}
}
