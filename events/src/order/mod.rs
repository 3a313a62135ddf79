//! Orders: the event types and the pure state machine that gives them meaning.
//!
//! `OrderState::apply` folds events into the current state; `OrderState::check` says whether a
//! system event is possible in the current state; `operator` holds the operator's transitions
//! from the operating guide. None of this does I/O.

pub mod address;
mod carrier;
mod describe;
mod event;
pub mod intake;
pub mod operator;
pub mod sample;
mod state;
mod status;
pub mod tasks;
pub mod testing;
#[cfg(test)]
mod tests;

pub use carrier::Carrier;
pub use event::*;
pub use state::{EmailState, OrderState, TransitionError, WriteState, CANCEL_REFUSED};
pub use status::Status;
