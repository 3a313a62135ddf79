//! The ledger: every observation and decision is an immutable event in SQLite.
//!
//! - [`store`]: the append-only `events` table, `blobs` for raw inputs, migrations.
//! - [`envelope`]: what an event looks like on the way in and out.
//! - [`upcast`]: old payload shapes brought up to date on read, keyed by (type, schema).
//! - [`order`]: the order event types and the pure order state machine (their meaning).
//! - [`ids`]: typed identifiers parsed at the edge.

pub mod clock;
pub mod envelope;
pub mod ids;
pub mod order;
pub mod schema;
pub mod source;
pub mod store;
#[cfg(test)]
mod store_tests;
pub mod upcast;

pub use clock::{Clock, FixedClock, SystemClock};
pub use envelope::{Actor, AppendOutcome, ExpectedVersion, Meta, NewEvent, RecordedEvent};
pub use ids::{FulfillmentOrderId, Marketplace, OrderKey, SellerSku};
pub use store::{BlobRef, EventStore, OpenMode, StoreError};
