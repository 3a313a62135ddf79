//! `mailbox-<name>` streams: every message read from the shop's mailbox, kept whole as a blob
//! with what it was taken for, and how far the mailbox has been read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CATEGORY: &str = "mailbox";

/// What a message was taken for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailClassification {
    /// 【楽天市場】注文内容ご確認: `[受注番号]`.
    RakutenOrder { order_number: String },
    /// 【Yahoo!ショッピング】注文確認: `注文ID：`.
    YahooOrder { order_id: String },
    /// Amazon's shipment notification for one of our MCF orders.
    McfShipment { fulfillment_order_id: String, tracking_number: Option<String>, carrier: Option<String> },
    /// Kept, ignored.
    Other,
    /// Looked like something we act on, but could not be used: the reason says why.
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailReceived {
    pub uid_validity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    /// The message's own Date header.
    pub date: Option<DateTime<Utc>>,
    pub from: Option<String>,
    pub subject: String,
    pub classification: MailClassification,
    pub size: usize,
}

/// How far the mailbox has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxCursor {
    pub uid_validity: u32,
    pub last_uid: u32,
}

crate::event_enum! {
    /// What happens in a `mailbox-*` stream.
    pub enum MailboxEvent {
        MailReceived(MailReceived) = 1,
        MailboxCursor(MailboxCursor) = 1,
    }
}
