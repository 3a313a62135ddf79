//! Yahoo! Shopping store order APIs: Yahoo! ID connect v2 token refresh, public-key auth
//! (`X-sws-signature`), orderList, orderInfo, orderStatusChange, orderShipStatusChange, and the
//! stock APIs setStock and getStock.
//! See `shared/specs/yahoo-shopping.md`.

mod client;
pub mod mapping;
pub mod signature;

pub use client::{ListedOrder, StockLevel, StockResult, YahooClient, YahooConfig, PRODUCTION_RATE};

#[derive(Debug, Clone, thiserror::Error)]
pub enum YahooError {
    /// The refresh token was refused (`invalid_grant`): the store must consent again in Yahoo.
    #[error("Yahoo! ID refused the refresh token ({error}: {description}): the store must re-consent")]
    Consent { error: String, description: String },
    #[error("Yahoo! ID refused the client credentials: {error}: {description}")]
    Credentials { error: String, description: String },
    /// Yahoo answered with its own error (code and message, verbatim).
    #[error("Yahoo {operation} answered HTTP {status}: {code}: {message}")]
    Api { operation: &'static str, status: u16, code: String, message: String },
    #[error("Yahoo {operation} failed after {attempts} attempts: {last}")]
    Unavailable {
        operation: &'static str,
        attempts: u32,
        last: String,
        /// The process's shutdown ended the attempts (the other side may be fine).
        stopped: bool,
    },
    #[error("Yahoo public key: {0}")]
    Key(String),
}

impl crate::transport::SourceError for YahooError {
    fn interrupted(&self) -> bool {
        matches!(self, Self::Unavailable { stopped: true, .. })
    }

    fn failure_kind(&self) -> crate::transport::FailureKind {
        match self {
            Self::Consent { .. } | Self::Credentials { .. } | Self::Key(_) => {
                crate::transport::FailureKind::Credentials
            }
            _ => crate::transport::FailureKind::Outage,
        }
    }
}
