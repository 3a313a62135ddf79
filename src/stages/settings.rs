//! The stages' settings, from the configuration: how ship builds an MCF order, when stale
//! alerts and to whom, and the texts of customers' emails.

use crate::stages::sources::{AMAZON_HEALTH_STREAM, YAHOO_POLL_STREAM};

#[derive(Debug, Clone)]
pub struct ShippingSettings {
    /// Amazon mails shipment confirmations here (MCF_NOTIFICATION_EMAIL).
    pub notification_email: Option<String>,
    /// `displayableOrderComment` on the packing slip.
    pub packing_slip_comment: String,
    /// What Amazon accepts of an address in Japan, checked before any call.
    pub address_limits: events::order::address::AddressLimits,
}

impl Default for ShippingSettings {
    fn default() -> Self {
        Self {
            notification_email: None,
            packing_slip_comment: "Thank you for your order.".into(),
            address_limits: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub admin_email: Option<String>,
    pub stale_after: chrono::Duration,
    /// Expiry dates only the configuration knows (Yahoo's public key and consent, Amazon's
    /// client secret), checked every cycle like Rakuten's license key.
    pub credential_expiries: Vec<ConfiguredExpiry>,
}

impl AlertSettings {
    /// The configured expiry dates, each in its source's health stream.
    pub fn expiries_from(dates: &crate::config::CredentialDates) -> Vec<ConfiguredExpiry> {
        let expiry = |stream: &str, credential: &str, expires_on: chrono::NaiveDate| ConfiguredExpiry {
            stream: stream.into(),
            credential: credential.into(),
            expires_on,
        };
        let mut out = Vec::new();
        if let Some(on) = dates.yahoo_public_key_expires {
            out.push(expiry(YAHOO_POLL_STREAM, "YAHOO_PUBLIC_KEY", on));
        }
        if let Some(consent) = dates.yahoo_consent {
            out.push(expiry(YAHOO_POLL_STREAM, "YAHOO_REFRESH_TOKEN", consent + chrono::Duration::days(28)));
        }
        if let Some(on) = dates.amazon_client_secret_expires {
            out.push(expiry(AMAZON_HEALTH_STREAM, "AMAZON_CLIENT_SECRET", on));
        }
        out
    }
}

/// A credential whose expiry date comes from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredExpiry {
    /// The source's health stream (`poll-yahoo`, `poll-amazon`).
    pub stream: String,
    /// The variable it concerns, as alerts and the health page name it.
    pub credential: String,
    pub expires_on: chrono::NaiveDate,
}

/// The shop's texts for customer emails.
#[derive(Debug, Clone)]
pub struct CustomerMailSettings {
    /// Text of the payment-guidance template: `Subject: …`, a blank line, the body.
    pub payment_guidance_template: String,
}

impl Default for CustomerMailSettings {
    fn default() -> Self {
        Self { payment_guidance_template: DEFAULT_PAYMENT_GUIDANCE.to_owned() }
    }
}

pub const DEFAULT_PAYMENT_GUIDANCE: &str = include_str!("../../templates/mail/payment_guidance.txt");
