//! Any event of the ledger, typed by its stream's category. A stored event that no type of
//! this build describes (an unknown type, a malformed payload, a newer schema, a stream of no
//! known category) cannot be folded, and the error says where it stands.

use crate::codec::{DecodeError, LocatedDecodeError};
use crate::envelope::{category_of, RecordedEvent};
use crate::mailbox::MailboxEvent;
use crate::order::OrderEvent;
use crate::security::SecurityEvent;
use crate::sku_master::SkuMasterEvent;
use crate::source::SourceEvent;
use crate::stock::StockEvent;
use crate::system::SystemEvent;
use crate::upcast::Upcasters;

// Order events are most of any ledger and are folded by the million in a rebuild: they stay
// unboxed, so the common case costs no allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerEvent {
    Order(OrderEvent),
    Source(SourceEvent),
    System(SystemEvent),
    Mailbox(MailboxEvent),
    SkuMaster(SkuMasterEvent),
    Security(SecurityEvent),
    Stock(StockEvent),
}

impl LedgerEvent {
    /// Decodes any stored event with the types of its stream's category.
    pub fn decode(event: &RecordedEvent, upcasters: &Upcasters) -> Result<Self, LocatedDecodeError> {
        let (event_type, schema, data) = (event.event_type.as_str(), event.schema, event.data.as_str());
        let decoded = match category_of(&event.stream) {
            "order" => OrderEvent::decode_parts(event_type, schema, data, upcasters).map(Self::Order),
            "poll" => SourceEvent::decode_parts(event_type, schema, data, upcasters).map(Self::Source),
            "system" => SystemEvent::decode_parts(event_type, schema, data, upcasters).map(Self::System),
            "mailbox" => MailboxEvent::decode_parts(event_type, schema, data, upcasters).map(Self::Mailbox),
            "sku" => SkuMasterEvent::decode_parts(event_type, schema, data, upcasters).map(Self::SkuMaster),
            "security" => SecurityEvent::decode_parts(event_type, schema, data, upcasters).map(Self::Security),
            "stock" => StockEvent::decode_parts(event_type, schema, data, upcasters).map(Self::Stock),
            other => Err(DecodeError::UnknownCategory(other.to_owned())),
        };
        decoded.map_err(|source| LocatedDecodeError::at(event, source))
    }
}

/// The upcasters of this build, for every category (type names are unique across them).
/// Every payload is still at schema 1; when one changes shape, its step is registered here.
pub fn upcasters() -> Upcasters {
    crate::order::order_upcasters()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Meta;
    use chrono::Utc;

    fn stored(stream: &str, event_type: &str, schema: u32, data: &str) -> RecordedEvent {
        RecordedEvent {
            position: 603,
            stream: stream.into(),
            version: 4,
            event_id: uuid::Uuid::now_v7(),
            event_type: event_type.into(),
            schema,
            data: data.into(),
            meta: Meta::by(crate::Actor::system()),
            idempotency_key: None,
            blob: None,
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn every_category_decodes_its_own_types_and_nothing_else() {
        let up = upcasters();
        let cursor = stored("mailbox-inbox", "MailboxCursor", 1, r#"{"uid_validity":1,"last_uid":9}"#);
        assert!(matches!(LedgerEvent::decode(&cursor, &up), Ok(LedgerEvent::Mailbox(_))));
        let verified = stored("order-rakuten-1-1", "OrderVerified", 1, r#"{"note":""}"#);
        assert!(matches!(LedgerEvent::decode(&verified, &up), Ok(LedgerEvent::Order(_))));
        let misplaced = stored("system", "OrderVerified", 1, r#"{"note":""}"#);
        assert!(LedgerEvent::decode(&misplaced, &up).is_err(), "an order event in the system stream");
    }

    #[test]
    fn what_cannot_be_folded_is_named_with_position_stream_type_and_why() {
        let up = upcasters();
        let cases = [
            (stored("order-rakuten-1-1", "OrderTeleported", 1, "{}"), "unknown event type \"OrderTeleported\""),
            (stored("order-rakuten-1-1", "OrderVerified", 1, r#"{"note":7}"#), "malformed OrderVerified payload"),
            (stored("order-rakuten-1-1", "OrderVerified", 9, r#"{"note":""}"#), "schema 9 is newer"),
            (stored("poll-rakuten", "PollFailed", 1, "{}"), "malformed PollFailed payload"),
            (stored("elsewhere-1", "Thing", 1, "{}"), "no event belongs to a stream of category \"elsewhere\""),
        ];
        for (event, why) in cases {
            let error = LedgerEvent::decode(&event, &up).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!(
                    "cannot fold the event at position 603 (stream {}, type {}): ",
                    event.stream, event.event_type
                )),
                "{error}"
            );
            assert!(error.contains(why), "{error} should say {why}");
        }
    }
}
