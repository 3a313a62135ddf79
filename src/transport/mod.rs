//! What every outside-system client shares: per-operation rate limits and bounded retries
//! with backoff and jitter. The clients themselves live one module per outside system.

mod rate_limit;
mod retry;
pub mod xml;

pub use rate_limit::TokenBucket;
pub use retry::{Backoff, RetryPolicy};

/// The User-Agent every client sends (SP-API requires one).
pub const USER_AGENT: &str = concat!("mcf-ledger/", env!("CARGO_PKG_VERSION"), " (Language=Rust; Platform=Linux)");
