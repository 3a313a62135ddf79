//! Rakuten RMS 楽天ペイ受注API (es/2.0/order): searchOrder, getOrder, confirmOrder,
//! updateOrderShippingAsync with its result, and the license-key expiry check. See `shared/specs/rakuten-rms.md`.

mod client;
pub mod mapping;
pub mod model;

pub use client::{
    AsyncShippingResult, RakutenClient, RakutenConfig, GET_ORDER_LIMIT, PRODUCTION_RATE, SHIPPING_ASYNC_LIMIT,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RakutenError {
    /// The gateway refused the ESA credentials (ES01-01 Un-Authorised, ES04-01 …).
    #[error("Rakuten RMS {operation} refused the credentials: {code} {message}")]
    Auth { operation: &'static str, code: String, message: String },
    /// RMS answered with its own error messages (code and Japanese text, verbatim); `orders`
    /// are the order numbers the messages name (a batch call's refused orders).
    #[error("Rakuten RMS {operation} answered HTTP {status}: {}", messages.iter().map(|(code, text)| format!("{code} {text}")).collect::<Vec<_>>().join("; "))]
    Api { operation: &'static str, status: u16, messages: Vec<(String, String)>, orders: Vec<String> },
    /// No usable answer after the retries (outage, 5xx, timeouts, unreadable bodies).
    #[error("Rakuten RMS {operation} failed after {attempts} attempts: {last}")]
    Unavailable {
        operation: &'static str,
        attempts: u32,
        last: String,
        /// The process's shutdown ended the attempts (the other side may be fine).
        stopped: bool,
    },
}

impl crate::transport::SourceError for RakutenError {
    fn interrupted(&self) -> bool {
        matches!(self, Self::Unavailable { stopped: true, .. })
    }

    fn failure_kind(&self) -> crate::transport::FailureKind {
        match self {
            Self::Auth { .. } => crate::transport::FailureKind::Credentials,
            _ => crate::transport::FailureKind::Outage,
        }
    }
}
