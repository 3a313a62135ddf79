//! The manual emails of the operating guide ("Inbox to Outbox"): what an operator sends by hand
//! from a marketplace's admin, and when. Due tasks are derived from the order's state; marking
//! one done is a `ManualTaskDone` event.

use super::{OrderState, SettlementKind, Status};
use crate::ids::Marketplace;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualTask {
    /// 注文受付時: Yahooストアクリエイターから「注文受付メール」を送信.
    YahooOrderReceivedEmail,
    /// 出荷依頼時: 楽天RMSから「サンクスメール」を送信 (クレカ決済のみ).
    RakutenThanksEmail,
    /// 出荷通知時: Yahoo/楽天の管理画面から「出荷通知/発送のお知らせ」を送信.
    ShippingNoticeEmail,
    /// 優良配送の期限に間に合う配送方法がない: お客様にお届け予定日を連絡.
    LateDeliveryNotice,
}

impl ManualTask {
    pub const ALL: [ManualTask; 4] = [
        ManualTask::YahooOrderReceivedEmail,
        ManualTask::RakutenThanksEmail,
        ManualTask::ShippingNoticeEmail,
        ManualTask::LateDeliveryNotice,
    ];

    /// The name stored in `ManualTaskDone.task`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::YahooOrderReceivedEmail => "yahoo_order_received_email",
            Self::RakutenThanksEmail => "rakuten_thanks_email",
            Self::ShippingNoticeEmail => "shipping_notice_email",
            Self::LateDeliveryNotice => "late_delivery_notice",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|task| task.as_str() == name)
    }

    /// What the operator does, in the guide's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::YahooOrderReceivedEmail => "Yahooストアクリエイターから「注文受付メール」を送信",
            Self::RakutenThanksEmail => "楽天RMSから「サンクスメール」を送信 (クレカ決済)",
            Self::ShippingNoticeEmail => "管理画面から「出荷通知/発送のお知らせ」を送信",
            Self::LateDeliveryNotice => "優良配送の期限に間に合いません: お客様にお届け予定日を連絡",
        }
    }

    /// Whether the task applies to the order now (done or not).
    fn applies(self, state: &OrderState) -> bool {
        let (Some(key), Some(status)) = (&state.key, state.status) else {
            return false;
        };
        use Status as S;
        match self {
            Self::YahooOrderReceivedEmail => key.marketplace == Marketplace::Yahoo && status != S::Cancelled,
            Self::RakutenThanksEmail => {
                key.marketplace == Marketplace::Rakuten
                    && state.details.as_ref().is_some_and(|d| d.settlement.kind == SettlementKind::CreditCard)
                    && matches!(status, S::ShippingRequested | S::DateUnavailable | S::Shipping | S::Shipped)
            }
            Self::ShippingNoticeEmail => status == S::Shipped,
            Self::LateDeliveryNotice => state.promise_missed.is_some() && matches!(status, S::Shipping | S::Shipped),
        }
    }
}

/// The manual tasks the order needs now and nobody has marked done.
pub fn manual_tasks_due(state: &OrderState) -> Vec<ManualTask> {
    ManualTask::ALL
        .into_iter()
        .filter(|task| task.applies(state) && !state.tasks_done.iter().any(|done| done == task.as_str()))
        .collect()
}
