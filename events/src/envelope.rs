//! The envelope every event travels in: what callers hand to `append`, and what reads return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Who caused an event: a stage reactor, an operator, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    pub fn reactor(stage: &str) -> Self {
        Self(format!("reactor:{stage}"))
    }
    pub fn operator(user: &str) -> Self {
        Self(format!("operator:{user}"))
    }
    pub fn system() -> Self {
        Self("system".to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Parses the stored form; anything stored is accepted, it is the record of who acted.
    pub fn from_stored(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
}

impl Meta {
    pub fn by(actor: Actor) -> Self {
        Self { actor, causation_id: None, correlation_id: None }
    }
    pub fn caused_by(mut self, event_id: Uuid) -> Self {
        self.causation_id = Some(event_id);
        self
    }
    pub fn correlated_with(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }
}

/// An event on its way into the store. `data` is the payload already encoded as JSON,
/// so the store stays ignorant of payload types.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema: u32,
    pub data: String,
    pub meta: Meta,
    pub idempotency_key: Option<String>,
    /// SHA-256 of a raw input stored in `blobs` (an email, an API response body).
    pub blob: Option<String>,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, schema: u32, data: String, meta: Meta) -> Self {
        Self { event_type: event_type.into(), schema, data, meta, idempotency_key: None, blob: None }
    }
    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
    pub fn with_blob(mut self, sha256: impl Into<String>) -> Self {
        self.blob = Some(sha256.into());
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream: String,
    pub version: i64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema: u32,
    /// The payload as stored (JSON text); see [`crate::upcast`] for older shapes.
    #[serde(serialize_with = "serialize_raw_json")]
    pub data: String,
    pub meta: Meta,
    pub idempotency_key: Option<String>,
    pub blob: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

fn serialize_raw_json<S: serde::Serializer>(data: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let raw: &serde_json::value::RawValue = serde_json::from_str(data).map_err(serde::ser::Error::custom)?;
    raw.serialize(serializer)
}

impl RecordedEvent {
    /// `order-rakuten-123` -> `order`.
    pub fn category(&self) -> &str {
        category_of(&self.stream)
    }
    /// Where this event stands, for error messages.
    pub fn locator(&self) -> String {
        format!("position {} in stream {}", self.position, self.stream)
    }
}

pub fn category_of(stream: &str) -> &str {
    stream.split_once('-').map_or(stream, |(category, _)| category)
}

/// What the caller believes the stream's version is (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds (observations that cannot conflict).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last version must be exactly this.
    Exact(i64),
}

impl ExpectedVersion {
    pub fn matches(self, actual: i64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(expected) => expected == actual,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream (version 0)"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub position: i64,
    pub version: i64,
    pub event_id: Uuid,
}

/// What an append did: which events went in, which were already there (same idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    pub appended: Vec<Appended>,
    pub skipped_keys: Vec<String>,
    /// The stream's version after the append.
    pub stream_version: i64,
}

impl AppendOutcome {
    pub fn nothing_new(&self) -> bool {
        self.appended.is_empty()
    }
    pub fn last_position(&self) -> Option<i64> {
        self.appended.last().map(|a| a.position)
    }
}
