//! How a typed event enum is stored: each variant's name is its `type`, each payload its JSON
//! `data` at a schema this build knows. One macro generates the enum and its codec for every
//! category of stream (orders, sources, the system, mailboxes, the SKU master, security), so
//! every event the ledger holds is a type of `events/`, and one that is not cannot be folded.

use crate::envelope::RecordedEvent;
use crate::upcast::UpcastError;

/// Why a stored payload cannot be read as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?} (written by a newer build, or not by mcf-ledger)")]
    UnknownType(String),
    #[error("malformed {event_type} payload: {reason}")]
    Malformed { event_type: String, reason: String },
    #[error(transparent)]
    Upcast(#[from] UpcastError),
    #[error("no event belongs to a stream of category {0:?}")]
    UnknownCategory(String),
}

/// An event that cannot be folded, with where it stands in the ledger: the one line an admin
/// reads (`replay verify`, `audit`, a rebuild).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot fold the event at position {position} (stream {stream}, type {event_type}): {source}")]
pub struct LocatedDecodeError {
    pub position: i64,
    pub stream: String,
    pub event_type: String,
    pub source: DecodeError,
}

impl LocatedDecodeError {
    pub fn at(event: &RecordedEvent, source: DecodeError) -> Self {
        Self { position: event.position, stream: event.stream.clone(), event_type: event.event_type.clone(), source }
    }

    /// `position P in stream S`, as other errors name an event.
    pub fn locator(&self) -> String {
        format!("position {} in stream {}", self.position, self.stream)
    }
}

/// Generates a typed event enum: its stored type names, the schema this build writes, and the
/// payload codec without an intermediate JSON tree (rebuilds decode millions of these).
#[macro_export]
macro_rules! event_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($payload:ty) = $schema:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $name { $($variant($payload)),* }

        impl $name {
            /// Every stored type name of this category.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),*];

            pub fn event_type(&self) -> &'static str {
                match self { $(Self::$variant(_) => stringify!($variant)),* }
            }

            /// The payload schema this build writes.
            pub fn current_schema(event_type: &str) -> Option<u32> {
                match event_type { $(stringify!($variant) => Some($schema),)* _ => None }
            }

            pub fn payload_json(&self) -> String {
                let encoded = match self { $(Self::$variant(payload) => serde_json::to_string(payload)),* };
                // Payloads are plain structs of strings, numbers, dates and lists: encoding
                // cannot fail, and a payload is never stored as anything but itself.
                encoded.unwrap_or_else(|e| unreachable!("{} payloads always encode: {e}", stringify!($name)))
            }

            fn decode_current(event_type: &str, data: &str) -> Result<Self, $crate::codec::DecodeError> {
                match event_type {
                    $(stringify!($variant) => serde_json::from_str::<$payload>(data)
                        .map(Self::$variant)
                        .map_err(|e| $crate::codec::DecodeError::Malformed {
                            event_type: event_type.to_owned(),
                            reason: e.to_string(),
                        }),)*
                    other => Err($crate::codec::DecodeError::UnknownType(other.to_owned())),
                }
            }

            /// Decodes a payload stored at `schema`, upcasting older shapes.
            pub fn decode_parts(
                event_type: &str,
                schema: u32,
                data: &str,
                upcasters: &$crate::upcast::Upcasters,
            ) -> Result<Self, $crate::codec::DecodeError> {
                let current = Self::current_schema(event_type)
                    .ok_or_else(|| $crate::codec::DecodeError::UnknownType(event_type.to_owned()))?;
                let data = upcasters.upcast(event_type, schema, current, data)?;
                Self::decode_current(event_type, &data)
            }

            /// Decodes a stored event; the error names its position, stream and type.
            pub fn decode(
                event: &$crate::envelope::RecordedEvent,
                upcasters: &$crate::upcast::Upcasters,
            ) -> Result<Self, $crate::codec::LocatedDecodeError> {
                Self::decode_parts(&event.event_type, event.schema, &event.data, upcasters)
                    .map_err(|source| $crate::codec::LocatedDecodeError::at(event, source))
            }

            /// The envelope for appending this event.
            pub fn to_new_event(&self, meta: $crate::envelope::Meta) -> $crate::envelope::NewEvent {
                let schema = Self::current_schema(self.event_type()).unwrap_or(1);
                $crate::envelope::NewEvent::new(self.event_type(), schema, self.payload_json(), meta)
            }
        }
    };
}
