//! The catch-up engine: reads the log after the projectors' checkpoints, in batches, and gives
//! each batch to every projector inside one write transaction that also moves the checkpoints.
//! A crash mid-batch loses nothing: the batch is simply projected again.
//!
//! Several processes (web, cron cycle, CLI) may catch up the same file: the checkpoint is read
//! inside the write transaction, so each batch is projected exactly once.

pub use crate::projector::{Projected, ProjectionError, Projector};
use events::store::{for_each_after_in, SqlContext, StoreError};
use events::upcast::Upcasters;
use events::{LedgerEvent, RecordedEvent};
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

/// Decodes every event of a batch; the first one that cannot be folded stops the batch, and
/// nothing of it is projected.
fn decode_all(batch: &[RecordedEvent], upcasters: &Upcasters) -> Result<Vec<LedgerEvent>, ProjectionError> {
    batch.iter().map(|event| LedgerEvent::decode(event, upcasters).map_err(ProjectionError::from)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatchUp {
    pub events: u64,
    pub position: i64,
}

/// Events per transaction during a rebuild: fewer, larger batches fold each order fewer times.
const REBUILD_BATCH: usize = 20_000;

pub struct Projections {
    projectors: Vec<Box<dyn Projector>>,
    upcasters: Upcasters,
    batch_size: usize,
    /// How each batch's transaction begins: IMMEDIATE on the live file, where other processes
    /// project too; DEFERRED on a private scratch file that reads the live log through ATTACH
    /// (IMMEDIATE would take the live file's write lock as well).
    behavior: TransactionBehavior,
}

impl Projections {
    /// The projections every process keeps: order status with the counts per status, and the
    /// status of every polled source. (The
    /// audit trail is read straight from each order's stream: see [`crate::order_history`].)
    pub fn standard() -> Self {
        Self {
            projectors: vec![
                Box::new(crate::order_status::OrderStatusProjector::default()),
                Box::new(crate::source_status::SourceStatusProjector),
                Box::new(crate::cycles::CycleProjector),
                Box::new(crate::stock::FbaStockProjector),
            ],
            upcasters: events::ledger_event::upcasters(),
            batch_size: 5_000,
            behavior: TransactionBehavior::Immediate,
        }
    }

    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projectors.iter().map(|p| p.name()).collect()
    }

    /// Brings every projector up to the head of the log.
    pub fn catch_up(&mut self, conn: &mut Connection) -> Result<CatchUp, ProjectionError> {
        self.catch_up_to(conn, i64::MAX, &mut |_| {})
    }

    /// Brings every projector up to `max_position`, reporting progress after each batch.
    pub fn catch_up_to(
        &mut self,
        conn: &mut Connection,
        max_position: i64,
        progress: &mut dyn FnMut(CatchUp),
    ) -> Result<CatchUp, ProjectionError> {
        let mut total = CatchUp::default();
        if self.projectors.is_empty() {
            return Ok(total);
        }
        loop {
            match self.project_one_batch(conn, max_position) {
                Ok(None) => return Ok(total),
                Ok(Some(batch)) => {
                    total.events += batch.events;
                    total.position = batch.position;
                    progress(total);
                }
                Err(error) => {
                    self.projectors.iter_mut().for_each(|p| p.forget_cache());
                    return Err(error);
                }
            }
        }
    }

    fn project_one_batch(
        &mut self,
        conn: &mut Connection,
        max_position: i64,
    ) -> Result<Option<CatchUp>, ProjectionError> {
        let tx = conn.transaction_with_behavior(self.behavior).context(|| "starting a projection batch".into())?;
        let checkpoints =
            self.projectors.iter().map(|p| read_checkpoint(&tx, p.name())).collect::<Result<Vec<_>, _>>()?;
        let from = checkpoints.iter().copied().min().unwrap_or(0);
        if from >= max_position {
            return Ok(None);
        }
        let mut batch = Vec::with_capacity(self.batch_size.min(1024));
        for_each_after_in(&tx, from, Some(self.batch_size), &mut |event| {
            if event.position <= max_position {
                batch.push(event);
            }
            Ok(())
        })?;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(None);
        };
        let decoded = decode_all(&batch, &self.upcasters)?;
        let projected: Vec<Projected<'_>> =
            batch.iter().zip(&decoded).map(|(recorded, event)| Projected { recorded, event }).collect();
        for (projector, checkpoint) in self.projectors.iter_mut().zip(checkpoints) {
            let start = batch.partition_point(|e| e.position <= checkpoint);
            if start < batch.len() {
                projector.apply(&tx, &projected[start..], &self.upcasters)?;
            }
            write_checkpoint(&tx, projector.name(), last)?;
        }
        tx.commit().context(|| format!("committing projections up to position {last}"))?;
        Ok(Some(CatchUp { events: batch.len() as u64, position: last }))
    }

    /// Clears every projection and its checkpoint (the first step of a rebuild).
    pub fn reset(&mut self, conn: &mut Connection) -> Result<(), ProjectionError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(|| "starting a projection reset".into())?;
        for (table, _) in crate::PROJECTION_TABLES {
            tx.execute(&format!("DELETE FROM {table}"), []).context(|| format!("clearing {table}"))?;
        }
        tx.execute("DELETE FROM projection_checkpoints", []).context(|| "clearing checkpoints".into())?;
        tx.commit().context(|| "committing a projection reset".into())?;
        self.projectors.iter_mut().for_each(|p| p.forget_cache());
        Ok(())
    }

    /// Clears every projection and projects the whole log again, up to `max_position`.
    /// Secondary indexes are dropped for the duration and built once at the end, which is far
    /// cheaper than maintaining them row by row.
    pub fn rebuild(
        &mut self,
        conn: &mut Connection,
        max_position: i64,
        progress: &mut dyn FnMut(CatchUp),
    ) -> Result<CatchUp, ProjectionError> {
        crate::schema::drop_secondary_indexes(conn).context(|| "dropping projection indexes for the rebuild".into())?;
        self.reset(conn)?;
        let saved_batch = self.batch_size;
        self.batch_size = saved_batch.max(REBUILD_BATCH);
        let done = self.catch_up_to(conn, max_position, progress);
        self.batch_size = saved_batch;
        // Indexes come back whatever happened, so a failed rebuild leaves a usable schema.
        crate::schema::ensure_secondary_indexes(conn).context(|| "building projection indexes".into())?;
        done
    }

    /// Folds the log up to `max_position` into a private scratch database whose own tables
    /// are empty projections and whose log is the live file's, attached (see
    /// [`crate::rebuild`]). Batches are large, committed to the scratch file only.
    pub(crate) fn fold_into_scratch(
        &mut self,
        scratch: &mut Connection,
        max_position: i64,
        progress: &mut dyn FnMut(CatchUp),
    ) -> Result<CatchUp, ProjectionError> {
        self.forget_all();
        let saved = (self.batch_size, self.behavior);
        self.batch_size = self.batch_size.max(REBUILD_BATCH);
        self.behavior = TransactionBehavior::Deferred;
        let done = self.catch_up_to(scratch, max_position, progress);
        (self.batch_size, self.behavior) = saved;
        self.forget_all();
        done
    }

    /// Drops every in-memory cache (after the tables were rewritten behind the projectors).
    pub fn forget_all(&mut self) {
        self.projectors.iter_mut().for_each(|p| p.forget_cache());
    }

    /// The lowest checkpoint: every projection is complete up to here.
    pub fn checkpoint(&self, conn: &Connection) -> Result<i64, ProjectionError> {
        let positions =
            self.projectors.iter().map(|p| read_checkpoint(conn, p.name())).collect::<Result<Vec<_>, _>>()?;
        Ok(positions.into_iter().min().unwrap_or(0))
    }
}

pub fn read_checkpoint(conn: &Connection, projector: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COALESCE((SELECT position FROM projection_checkpoints WHERE projector = ?1), 0)")
        .and_then(|mut s| s.query_row([projector], |row| row.get(0)))
        .context(|| format!("reading the checkpoint of {projector}"))
}

fn write_checkpoint(tx: &Transaction<'_>, projector: &str, position: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO projection_checkpoints (projector, position) VALUES (?1, ?2)
         ON CONFLICT (projector) DO UPDATE SET position = excluded.position",
    )
    .and_then(|mut s| s.execute(params![projector, position]))
    .map(|_| ())
    .context(|| format!("moving the checkpoint of {projector} to {position}"))
}
