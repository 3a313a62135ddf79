//! Amazon Selling Partner API (Japan): Login with Amazon, FBA Inventory v1 and Fulfillment
//! Outbound 2020-07-01 (Multi-Channel Fulfillment). See `shared/specs/amazon-sp-api.md`.

pub mod address;
mod auth;
mod client;
pub mod model;

pub use client::{AmazonClient, AmazonConfig, InventoryLevel, RateLimits};

use crate::config::Secret;

/// The Japan marketplace.
pub const JAPAN_MARKETPLACE_ID: &str = "A1VC38T7YXB528";

#[derive(Debug, Clone, thiserror::Error)]
pub enum AmazonError {
    /// Amazon answered with an error of its own (its code and message, verbatim).
    #[error("Amazon {operation} answered HTTP {status}: {code}: {message}")]
    Api { operation: &'static str, status: u16, code: String, message: String, details: String },
    #[error("Amazon {operation}: fulfillment order {id} does not exist")]
    NotFound { operation: &'static str, id: String },
    /// Login with Amazon refused the client or refresh token: an operator must fix credentials.
    #[error("Login with Amazon refused the credentials: {error}: {description}")]
    Credentials { error: String, description: String },
    /// Timeouts, resets, 429 and 5xx that outlasted the retries: the outcome is unknown.
    #[error("Amazon {operation} failed after {attempts} attempts: {last}")]
    Unavailable {
        operation: &'static str,
        attempts: u32,
        last: String,
        /// The process's shutdown ended the attempts (the other side may be fine).
        stopped: bool,
    },
}

impl crate::transport::SourceError for AmazonError {
    fn interrupted(&self) -> bool {
        matches!(self, Self::Unavailable { stopped: true, .. })
    }

    fn failure_kind(&self) -> crate::transport::FailureKind {
        match self {
            Self::Credentials { .. } => crate::transport::FailureKind::Credentials,
            _ => crate::transport::FailureKind::Outage,
        }
    }
}

impl AmazonError {
    /// True when the call may or may not have taken effect (the answer never arrived).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub fn amazon_message(&self) -> Option<(&str, &str)> {
        match self {
            Self::Api { code, message, .. } => Some((code, message)),
            _ => None,
        }
    }
}

/// Credentials for Login with Amazon.
#[derive(Debug, Clone)]
pub struct LwaCredentials {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
}
