use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The order statuses of the operating guide, spelled as the guide spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Received,
    AwaitingConfirmation,
    Verified,
    OutOfStock,
    ShippingRequested,
    DateUnavailable,
    Shipping,
    Shipped,
    Cancelled,
    Error,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Received,
        Status::AwaitingConfirmation,
        Status::Verified,
        Status::OutOfStock,
        Status::ShippingRequested,
        Status::DateUnavailable,
        Status::Shipping,
        Status::Shipped,
        Status::Cancelled,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::AwaitingConfirmation => "AWAITING_CONFIRMATION",
            Self::Verified => "VERIFIED",
            Self::OutOfStock => "OUT_OF_STOCK",
            Self::ShippingRequested => "SHIPPING_REQUESTED",
            Self::DateUnavailable => "DATE_UNAVAILABLE",
            Self::Shipping => "SHIPPING",
            Self::Shipped => "SHIPPED",
            Self::Cancelled => "CANCELLED",
            Self::Error => "ERROR",
        }
    }

    /// The Japanese label operators read beside the code.
    pub fn label(self) -> &'static str {
        match self {
            Self::Received => "受付",
            Self::AwaitingConfirmation => "確認待ち",
            Self::Verified => "確認済み",
            Self::OutOfStock => "在庫不足",
            Self::ShippingRequested => "出荷依頼",
            Self::DateUnavailable => "日時指定不可",
            Self::Shipping => "出荷中",
            Self::Shipped => "出荷済み",
            Self::Cancelled => "キャンセル",
            Self::Error => "エラー",
        }
    }

    /// Every status that is not final: the orders a marketplace can still change.
    pub const OPEN: [Status; 8] = [
        Status::Received,
        Status::AwaitingConfirmation,
        Status::Verified,
        Status::OutOfStock,
        Status::ShippingRequested,
        Status::DateUnavailable,
        Status::Shipping,
        Status::Error,
    ];

    /// SHIPPED and CANCELLED end an order's life.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Shipped | Self::Cancelled)
    }

    /// Statuses that wait for a human (the to-do list).
    pub fn needs_operator(self) -> bool {
        matches!(self, Self::OutOfStock | Self::DateUnavailable | Self::Error)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}; the statuses are RECEIVED, AWAITING_CONFIRMATION, VERIFIED, OUT_OF_STOCK, SHIPPING_REQUESTED, DATE_UNAVAILABLE, SHIPPING, SHIPPED, CANCELLED, ERROR")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|status| status.as_str() == wanted).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}
