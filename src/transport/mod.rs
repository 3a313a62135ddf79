//! What every outside-system client shares: pacing at each API's published rate, one retry
//! policy, and the process's stop signal. The clients themselves live one module per outside
//! system.

mod pace;
mod retry;
mod stop;
pub mod xml;

pub use pace::{Pace, Stopped};
pub use retry::{with_retries, Attempt, GaveUp, RetryPolicy};
pub use stop::Shutdown;

pub use events::system::FailureKind;

/// An outside system's error, as the stages sort it: an outage recovers by itself, refused
/// credentials need a person (and are alerted at once).
pub trait SourceError: std::fmt::Display {
    fn failure_kind(&self) -> FailureKind;

    /// The process's shutdown stopped the call: the source was not found failing.
    fn interrupted(&self) -> bool {
        false
    }
}

/// The User-Agent every client sends (SP-API requires one).
pub const USER_AGENT: &str = concat!("mcf-ledger/", env!("CARGO_PKG_VERSION"), " (Language=Rust; Platform=Linux)");
