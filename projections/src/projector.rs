//! What a read model is to the engine: the [`Projector`] contract, the decoded events it is
//! given, and the errors it may report. The engine and every projector depend on this module,
//! never on each other.

use events::order::OrderEvent;
use events::source::SourceEvent;
use events::store::StoreError;
use events::upcast::Upcasters;
use events::{LedgerEvent, LocatedDecodeError, RecordedEvent};
use rusqlite::Transaction;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event no type of this build describes: the projections stop before it.
    #[error(transparent)]
    Unfoldable(#[from] LocatedDecodeError),
    /// The rebuild could not set up its scratch file or migrate the tables.
    #[error("{0}")]
    Setup(String),
    #[error("projector {projector} cannot project the event at {locator}: {reason}")]
    Event { projector: &'static str, locator: String, reason: String },
}

impl ProjectionError {
    pub fn event(projector: &'static str, event: &RecordedEvent, reason: impl ToString) -> Self {
        Self::Event { projector, locator: event.locator(), reason: reason.to_string() }
    }
}

/// One read model. `apply` sees each event after its checkpoint exactly once per successful
/// commit; in-memory caches must be dropped by `forget_cache` when a batch rolls back.
pub trait Projector: Send {
    fn name(&self) -> &'static str;
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        events: &[Projected<'_>],
        upcasters: &Upcasters,
    ) -> Result<(), ProjectionError>;
    fn forget_cache(&mut self);
}

/// An event of the batch, decoded once for every projector.
pub struct Projected<'a> {
    pub recorded: &'a RecordedEvent,
    pub event: &'a LedgerEvent,
}

impl Projected<'_> {
    /// The order event, for events of `order-*` streams.
    pub fn order(&self) -> Option<&OrderEvent> {
        match self.event {
            LedgerEvent::Order(event) => Some(event),
            _ => None,
        }
    }

    /// The source event, for events of `poll-*` streams.
    pub fn source(&self) -> Option<&SourceEvent> {
        match self.event {
            LedgerEvent::Source(event) => Some(event),
            _ => None,
        }
    }
}
