//! The ledger: every observation and decision is an immutable event in SQLite.
//!
//! - [`store`]: the append-only `events` table, `blobs` for raw inputs, migrations.
//! - [`envelope`]: what an event looks like on the way in and out.
//! - [`upcast`]: old payload shapes brought up to date on read, keyed by (type, schema).
//! - [`order`]: the order event types and the pure order state machine (their meaning).
//! - [`ids`]: typed identifiers parsed at the edge.
//! - [`codec`], [`ledger_event`]: every stored event is a type of this crate, one enum per
//!   category of stream ([`source`], [`system`], [`mailbox`], [`sku_master`], [`security`]);
//!   one that is not cannot be folded, and says where it stands.

pub mod clock;
pub mod codec;
pub mod envelope;
pub mod ids;
pub mod ledger_event;
pub mod mailbox;
pub mod order;
pub mod schema;
pub mod security;
pub mod sku_master;
pub mod source;
pub mod stock;
pub mod store;
#[cfg(test)]
mod store_tests;
pub mod system;
pub mod upcast;

pub use clock::{Clock, FixedClock, SystemClock};
pub use codec::{DecodeError, LocatedDecodeError};
pub use envelope::{Actor, AppendOutcome, ExpectedVersion, Meta, NewEvent, RecordedEvent};
pub use ids::{FulfillmentOrderId, Marketplace, OrderKey, SellerSku};
pub use ledger_event::LedgerEvent;
pub use store::{BlobRef, EventStore, OpenMode, StoreError};
