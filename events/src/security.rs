//! The `security` stream: failed logins and IP blocks, so a restart does not lift a block.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const SECURITY_STREAM: &str = "security";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    pub ip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpBlocked {
    pub ip: String,
    pub until: DateTime<Utc>,
    pub failures: usize,
}

crate::event_enum! {
    /// What happens in the `security` stream.
    pub enum SecurityEvent {
        LoginFailed(LoginFailed) = 1,
        IpBlocked(IpBlocked) = 1,
    }
}
