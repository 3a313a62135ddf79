//! One row per cycle: who ran it and when it started, and its record once it finished. A cycle
//! without a finish whose lease is gone was interrupted (its process died): the health page
//! says so instead of "running".

use crate::projector::{Projected, ProjectionError, Projector};
use events::store::{format_time, parse_time, SqlContext, StoreError};
use events::system::{CycleFinished, SystemEvent};
use events::upcast::Upcasters;
use events::LedgerEvent;
use rusqlite::{params, Connection, Transaction};

pub const NAME: &str = "cycles";

#[derive(Default)]
pub struct CycleProjector;

impl Projector for CycleProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, tx: &Transaction<'_>, events: &[Projected<'_>], _: &Upcasters) -> Result<(), ProjectionError> {
        for projected in events {
            let recorded = projected.recorded;
            match projected.event {
                LedgerEvent::System(SystemEvent::CycleStarted(started)) => {
                    tx.prepare_cached(
                        "INSERT INTO cycles (started_position, holder, started_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (started_position) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![recorded.position, started.holder, format_time(recorded.recorded_at)])
                    })
                    .context(|| format!("recording the cycle started at position {}", recorded.position))?;
                }
                LedgerEvent::System(SystemEvent::CycleFinished(finished)) => {
                    let json =
                        serde_json::to_string(finished).map_err(|e| ProjectionError::event(NAME, recorded, e))?;
                    tx.prepare_cached(
                        "UPDATE cycles SET finished_at = ?2, finished = ?3
                         WHERE started_position = (SELECT max(started_position) FROM cycles
                                                   WHERE holder = ?1 AND finished_at IS NULL)",
                    )
                    .and_then(|mut s| s.execute(params![finished.holder, format_time(recorded.recorded_at), json]))
                    .context(|| format!("recording the cycle finished at position {}", recorded.position))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn forget_cache(&mut self) {}
}

/// A cycle as the health page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleRow {
    pub started_position: i64,
    pub holder: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its record; None while it runs, or when its process died.
    pub finished: Option<CycleFinished>,
}

/// The newest cycles first.
pub fn recent_cycles(conn: &Connection, limit: usize) -> Result<Vec<CycleRow>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT started_position, holder, started_at, finished_at, finished FROM cycles
             ORDER BY started_position DESC LIMIT ?1",
        )
        .context(|| "preparing the cycle listing".into())?;
    let rows = statement
        .query_map([limit as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .context(|| "listing cycles".into())?;
    let corrupt =
        |key: i64, reason: String| StoreError::CorruptProjection { table: NAME, key: key.to_string(), reason };
    rows.map(|row| {
        let (position, holder, started_at, finished_at, finished) = row.context(|| "listing cycles".into())?;
        Ok(CycleRow {
            started_position: position,
            holder,
            started_at: parse_time(&started_at).map_err(|e| corrupt(position, e.to_string()))?,
            finished_at: finished_at
                .map(|t| parse_time(&t))
                .transpose()
                .map_err(|e| corrupt(position, e.to_string()))?,
            finished: finished
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| corrupt(position, e.to_string()))?,
        })
    })
    .collect()
}
