//! The ledger as a process uses it: the event store, with projections caught up on open and
//! right after every append, and order events checked against the state machine before they
//! are appended.

use crate::engine::{CatchUp, Projections};
use crate::projector::ProjectionError;
use crate::rebuild::Swap;
use crate::schema::{check_projections_not_newer, migrate_projections, projection_schema_version};
use events::envelope::{AppendOutcome, ExpectedVersion, Meta, NewEvent};
use events::order::operator::{self, Refusal};
use events::order::{OrderEvent, OrderState, Status, TransitionError};
use events::store::{EventStore, OpenMode, StoreError};
use events::{Clock, OrderKey, SystemClock};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Transition(Box<TransitionError>),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("注文 {order} は表示後に変更されました（表示時の版 {seen}、現在の版 {actual}）。再読み込みしてやり直してください")]
    Stale { order: String, seen: i64, actual: i64 },
    #[error("注文 {0} は台帳にありません")]
    UnknownOrder(String),
    #[error("{0}")]
    Decode(Box<events::order::LocatedDecodeError>),
    #[error("{path}: {source}")]
    Schema { path: String, source: Box<events::schema::MigrationError> },
    #[error("the projections were not rebuilt, and nothing was changed (the live projections are as they were): {0}")]
    RebuildFailed(Box<ProjectionError>),
    #[error("recorded at position {position}, but the projections could not catch up: {source}")]
    ProjectionAfterAppend { position: i64, source: Box<ProjectionError> },
}

impl From<TransitionError> for LedgerError {
    fn from(error: TransitionError) -> Self {
        Self::Transition(Box::new(error))
    }
}

impl From<events::order::LocatedDecodeError> for LedgerError {
    fn from(error: events::order::LocatedDecodeError) -> Self {
        Self::Decode(Box::new(error))
    }
}

pub struct Ledger {
    store: EventStore,
    projections: Projections,
    read_only: bool,
    /// The cycle under way (its `CycleStarted` event): every event appended meanwhile carries it
    /// as its correlation id, so an admin finds all that one cycle did.
    correlation: Option<uuid::Uuid>,
}

/// One order event to append, with the key that makes a repeated observation a no-op.
pub struct OrderAppend {
    pub event: OrderEvent,
    pub idempotency_key: Option<String>,
    pub blob: Option<String>,
}

impl From<OrderEvent> for OrderAppend {
    fn from(event: OrderEvent) -> Self {
        Self { event, idempotency_key: None, blob: None }
    }
}

impl OrderAppend {
    pub fn idempotent(event: OrderEvent, key: impl Into<String>) -> Self {
        Self { event, idempotency_key: Some(key.into()), blob: None }
    }
}

impl Ledger {
    pub fn open(path: &Path, mode: OpenMode) -> Result<Self, LedgerError> {
        Self::open_with_clock(path, mode, Arc::new(SystemClock))
    }

    pub fn open_with_clock(path: &Path, mode: OpenMode, clock: Arc<dyn Clock>) -> Result<Self, LedgerError> {
        let store = EventStore::open_with_clock(path, mode, clock)?;
        Self::from_store(store, mode == OpenMode::ReadOnly)
    }

    /// Opens a ledger whose projections are about to be rebuilt: migrated like any other, but
    /// not caught up, so an event that cannot be folded is reported by the rebuild (which
    /// changes nothing then) instead of refusing the open.
    pub fn open_for_rebuild(path: &Path) -> Result<Self, LedgerError> {
        let store = EventStore::open(path, OpenMode::MustExist)?;
        let path = store.path().to_owned();
        let found = check_projections_not_newer(store.connection())
            .map_err(|source| LedgerError::Schema { path: path.clone(), source: Box::new(source) })?;
        let mut ledger = Self { store, projections: Projections::standard(), read_only: false, correlation: None };
        if found == 0 {
            migrate_projections(ledger.store.connection_mut())
                .map_err(|source| LedgerError::Schema { path, source: Box::new(source) })?;
        }
        Ok(ledger)
    }

    pub fn from_store(store: EventStore, read_only: bool) -> Result<Self, LedgerError> {
        let path = store.path().to_owned();
        let schema_error = |source| LedgerError::Schema { path: path.clone(), source: Box::new(source) };
        if read_only {
            check_projections_not_newer(store.connection()).map_err(schema_error)?;
            return Ok(Self { store, projections: Projections::standard(), read_only, correlation: None });
        }
        let found = check_projections_not_newer(store.connection()).map_err(schema_error)?;
        let head = store.head_position()?;
        let mut ledger = Self { store, projections: Projections::standard(), read_only, correlation: None };
        if found > 0 && found < projection_schema_version() && head > 0 {
            // An older projection schema over a log: the new tables are built beside the old
            // ones and swapped in with the migration, or not at all.
            tracing::info!(events = head, found, "projection schema is older: rebuilding it from the log");
            ledger.rebuild_beside(Swap::MigrateThenRows)?;
        } else {
            migrate_projections(ledger.store.connection_mut()).map_err(schema_error)?;
            if head > 0 && ledger.checkpoint()? == 0 {
                tracing::info!(events = head, "projections are empty: rebuilding them from the log");
                ledger.rebuild_beside(Swap::Rows)?;
            }
        }
        ledger.catch_up()?;
        Ok(ledger)
    }

    /// Rebuilds every projection from the whole log, beside the live ones, and swaps the result
    /// in only when every event folded; then catches up what was appended meanwhile.
    pub fn rebuild_projections(&mut self, progress: &mut dyn FnMut(CatchUp)) -> Result<CatchUp, LedgerError> {
        if self.read_only {
            return Err(LedgerError::RebuildFailed(Box::new(ProjectionError::Setup(
                "the ledger was opened read-only".into(),
            ))));
        }
        let found = check_projections_not_newer(self.store.connection())
            .map_err(|source| LedgerError::Schema { path: self.store.path().to_owned(), source: Box::new(source) })?;
        let swap = if found < projection_schema_version() { Swap::MigrateThenRows } else { Swap::Rows };
        let folded = self.rebuild_beside_with(swap, progress)?;
        self.catch_up()?;
        Ok(folded)
    }

    fn rebuild_beside(&mut self, swap: Swap) -> Result<CatchUp, LedgerError> {
        self.rebuild_beside_with(swap, &mut |_| {})
    }

    fn rebuild_beside_with(&mut self, swap: Swap, progress: &mut dyn FnMut(CatchUp)) -> Result<CatchUp, LedgerError> {
        let path = std::path::PathBuf::from(self.store.path());
        crate::rebuild::rebuild_beside(self.store.connection_mut(), &path, &mut self.projections, swap, progress)
            .map_err(|source| LedgerError::RebuildFailed(Box::new(source)))
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut EventStore {
        &mut self.store
    }

    pub fn projections_mut(&mut self) -> (&mut Projections, &mut EventStore) {
        (&mut self.projections, &mut self.store)
    }

    /// Projects whatever was appended since the checkpoint (by this or another process).
    pub fn catch_up(&mut self) -> Result<CatchUp, LedgerError> {
        if self.read_only {
            return Ok(CatchUp::default());
        }
        Ok(self.projections.catch_up(self.store.connection_mut())?)
    }

    pub fn checkpoint(&self) -> Result<i64, LedgerError> {
        Ok(self.projections.checkpoint(self.store.connection())?)
    }

    /// The order folded from its stream (`status` is None when it has no events).
    pub fn order_state(&self, key: &OrderKey) -> Result<OrderState, LedgerError> {
        self.order_state_until(key, i64::MAX)
    }

    /// The order as it stood at `max_position` (time travel).
    pub fn order_state_until(&self, key: &OrderKey, max_position: i64) -> Result<OrderState, LedgerError> {
        let upcasters = self.projections.upcasters();
        let mut state = OrderState::new(key.clone());
        for recorded in self.store.read_stream_until(&key.stream(), max_position)? {
            let event = OrderEvent::decode(&recorded, upcasters)?;
            state.apply_recorded(&event, recorded.version, recorded.recorded_at);
        }
        Ok(state)
    }

    /// Events appended from now on carry `cycle` (a `CycleStarted` event's id) as their
    /// correlation id; None when the cycle is over.
    pub fn correlate_with(&mut self, cycle: Option<uuid::Uuid>) {
        self.correlation = cycle;
    }

    /// The meta of an append: the cycle under way as correlation, unless given.
    fn with_context(&self, mut meta: Meta) -> Meta {
        meta.correlation_id = meta.correlation_id.or(self.correlation);
        meta
    }

    /// Appends order events after checking each against the state machine, atomically with
    /// the version the decision was made on (`expected`; `Any` means the version just read).
    /// Unless the meta names one, the causation id is the order's event that version stands at:
    /// the last thing the decision (or the operator) saw.
    pub fn append_order(
        &mut self,
        key: &OrderKey,
        expected: ExpectedVersion,
        events: Vec<OrderAppend>,
        meta: Meta,
    ) -> Result<AppendOutcome, LedgerError> {
        let mut state = self.order_state(key)?;
        let expected = match expected {
            ExpectedVersion::Any => ExpectedVersion::Exact(state.version),
            other => other,
        };
        let mut meta = self.with_context(meta);
        if let (None, ExpectedVersion::Exact(seen)) = (meta.causation_id, expected) {
            meta.causation_id = self.store.event_id_at(&key.stream(), seen)?;
        }
        let mut envelopes = Vec::with_capacity(events.len());
        for append in &events {
            let repeated = match &append.idempotency_key {
                Some(k) => self.idempotency_key_exists(k)?,
                None => false,
            };
            if !repeated {
                state.check(&append.event)?;
                state.apply(&append.event);
            }
            let mut envelope: NewEvent = append.event.to_new_event(meta.clone());
            envelope.idempotency_key = append.idempotency_key.clone();
            envelope.blob = append.blob.clone();
            envelopes.push(envelope);
        }
        let outcome = self.store.append(&key.stream(), expected, &envelopes)?;
        self.after_append(outcome)
    }

    /// Appends to a non-order stream (polls, mailboxes, system).
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, LedgerError> {
        let correlated: Vec<NewEvent>;
        let events = match self.correlation {
            Some(_) => {
                correlated = events
                    .iter()
                    .cloned()
                    .map(|mut event| {
                        event.meta = self.with_context(event.meta);
                        event
                    })
                    .collect();
                &correlated[..]
            }
            None => events,
        };
        let outcome = self.store.append(stream, expected, events)?;
        self.after_append(outcome)
    }

    fn after_append(&mut self, outcome: AppendOutcome) -> Result<AppendOutcome, LedgerError> {
        if let Some(position) = outcome.last_position() {
            if let Err(source) = self.projections.catch_up(self.store.connection_mut()) {
                return Err(LedgerError::ProjectionAfterAppend { position, source: Box::new(source) });
            }
        }
        Ok(outcome)
    }

    fn idempotency_key_exists(&self, key: &str) -> Result<bool, LedgerError> {
        use events::store::SqlContext;
        Ok(self
            .store
            .connection()
            .prepare_cached("SELECT 1 FROM events WHERE idempotency_key = ?1")
            .and_then(|mut s| s.exists([key]))
            .context(|| format!("looking up idempotency key {key}"))?)
    }

    /// An operator's status change, applied only if the order is still at `seen_version`
    /// (when given): otherwise the operator is told to reload and nothing is applied.
    pub fn operator_set_status(
        &mut self,
        key: &OrderKey,
        to: Status,
        reason: &str,
        meta: Meta,
        seen_version: Option<i64>,
    ) -> Result<AppendOutcome, LedgerError> {
        let state = self.state_as_seen(key, seen_version)?;
        let event = operator::decide_status_change(&state, to, reason)?;
        self.append_stale_aware(key, state.version, vec![event.into()], meta)
    }

    /// An operator's address correction; the old address stays in the ledger.
    pub fn operator_correct_address(
        &mut self,
        key: &OrderKey,
        new: events::order::Address,
        reason: &str,
        meta: Meta,
        seen_version: Option<i64>,
        limits: events::order::address::AddressLimits,
    ) -> Result<AppendOutcome, LedgerError> {
        let state = self.state_as_seen(key, seen_version)?;
        let event = operator::decide_address_correction(&state, new, reason, limits)?;
        self.append_stale_aware(key, state.version, vec![event.into()], meta)
    }

    /// Any other operator action: `decide` (one of `events::order::operator`'s decisions) on the
    /// order as the operator saw it, appended only if it has not changed since.
    pub fn operator_act(
        &mut self,
        key: &OrderKey,
        seen_version: Option<i64>,
        meta: Meta,
        decide: impl FnOnce(&OrderState) -> Result<OrderEvent, Refusal>,
    ) -> Result<AppendOutcome, LedgerError> {
        let state = self.state_as_seen(key, seen_version)?;
        let event = decide(&state)?;
        self.append_stale_aware(key, state.version, vec![event.into()], meta)
    }

    /// The order for an operator's action: it must exist, and be at the version the operator
    /// saw (when given), or the operator is told to reload.
    fn state_as_seen(&self, key: &OrderKey, seen_version: Option<i64>) -> Result<OrderState, LedgerError> {
        let state = self.order_state(key)?;
        if state.status.is_none() {
            return Err(LedgerError::UnknownOrder(key.to_string()));
        }
        match seen_version {
            Some(seen) if seen != state.version => {
                Err(LedgerError::Stale { order: key.to_string(), seen, actual: state.version })
            }
            _ => Ok(state),
        }
    }

    fn append_stale_aware(
        &mut self,
        key: &OrderKey,
        version: i64,
        events: Vec<OrderAppend>,
        meta: Meta,
    ) -> Result<AppendOutcome, LedgerError> {
        match self.append_order(key, ExpectedVersion::Exact(version), events, meta) {
            Err(LedgerError::Store(StoreError::Conflict { actual, .. })) => {
                Err(LedgerError::Stale { order: key.to_string(), seen: version, actual })
            }
            other => other,
        }
    }
}
