//! One row per polled source (`poll-*` stream): its cursor, failures, outage and credentials,
//! folded with [`SourceState`]. The stages and the health page read one row instead of folding
//! a stream that grows by an event every poll, for as long as the shop runs.

use crate::projector::{Projected, ProjectionError, Projector};
use events::source::SourceState;
use events::store::{SqlContext, StoreError};
use events::upcast::Upcasters;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;

pub const NAME: &str = "source_status";
pub use events::source::CATEGORY;

#[derive(Default)]
pub struct SourceStatusProjector;

impl Projector for SourceStatusProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, tx: &Transaction<'_>, events: &[Projected<'_>], _: &Upcasters) -> Result<(), ProjectionError> {
        let mut touched: BTreeMap<&str, SourceState> = BTreeMap::new();
        for (event, decoded) in events.iter().filter_map(|p| Some((p.recorded, p.source()?))) {
            if !touched.contains_key(event.stream.as_str()) {
                let state = source_state(tx, &event.stream)?.unwrap_or_default();
                touched.insert(event.stream.as_str(), state);
            }
            if let Some(state) = touched.get_mut(event.stream.as_str()) {
                state.apply(decoded, event.recorded_at);
            }
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO source_status (stream, state) VALUES (?1, ?2)
                 ON CONFLICT (stream) DO UPDATE SET state = excluded.state",
            )
            .context(|| "preparing the source_status upsert".into())?;
        for (stream, state) in touched {
            let json = serde_json::to_string(&state).map_err(|e| corrupt(stream, e))?;
            upsert.execute(params![stream, json]).context(|| format!("writing the status of {stream}"))?;
        }
        Ok(())
    }

    fn forget_cache(&mut self) {}
}

fn corrupt(stream: &str, error: serde_json::Error) -> StoreError {
    StoreError::CorruptProjection { table: NAME, key: stream.to_owned(), reason: error.to_string() }
}

/// The source's state as projected (None before its first event).
pub fn source_state(conn: &Connection, stream: &str) -> Result<Option<SourceState>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT state FROM source_status WHERE stream = ?1")
        .and_then(|mut s| s.query_row([stream], |row| row.get(0)).optional())
        .context(|| format!("reading the status of {stream}"))?;
    json.map(|json| serde_json::from_str(&json).map_err(|e| corrupt(stream, e))).transpose()
}

/// Every polled source, by stream name.
pub fn sources(conn: &Connection) -> Result<Vec<(String, SourceState)>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT stream, state FROM source_status ORDER BY stream")
        .context(|| "preparing the source listing".into())?;
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
        .context(|| "listing sources".into())?;
    rows.map(|row| {
        let (stream, json) = row.context(|| "listing sources".into())?;
        let state = serde_json::from_str(&json).map_err(|e| corrupt(&stream, e))?;
        Ok((stream, state))
    })
    .collect()
}
