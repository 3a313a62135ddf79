//! Identifiers parsed at the edge, then trusted.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Marketplace {
    Rakuten,
    Yahoo,
}

impl Marketplace {
    pub const ALL: [Marketplace; 2] = [Marketplace::Rakuten, Marketplace::Yahoo];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rakuten => "rakuten",
            Self::Yahoo => "yahoo",
        }
    }

    /// The label operators know.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rakuten => "楽天市場",
            Self::Yahoo => "Yahoo!ショッピング",
        }
    }

    /// Short prefix used in MCF order ids.
    fn mcf_prefix(self) -> &'static str {
        match self {
            Self::Rakuten => "RK",
            Self::Yahoo => "YH",
        }
    }
}

impl fmt::Display for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("unknown marketplace {0:?} (expected rakuten or yahoo)")]
    UnknownMarketplace(String),
    #[error("order {0:?} is not of the form <marketplace>-<order number>, e.g. rakuten-123456-20261122-00000001")]
    BadOrderKey(String),
    #[error("order number {0:?} may only hold letters, digits, '-' and '_' (1 to 64 characters)")]
    BadOrderNumber(String),
}

impl FromStr for Marketplace {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rakuten" => Ok(Self::Rakuten),
            "yahoo" => Ok(Self::Yahoo),
            _ => Err(IdError::UnknownMarketplace(s.to_owned())),
        }
    }
}

/// One order at one marketplace: `rakuten-123456-20261122-00000001`, `yahoo-store-10000001`.
/// The marketplace's own order number may itself contain dashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderKey {
    pub marketplace: Marketplace,
    pub order_number: String,
}

impl OrderKey {
    pub fn new(marketplace: Marketplace, order_number: &str) -> Result<Self, IdError> {
        let valid = !order_number.is_empty()
            && order_number.len() <= 64
            && order_number.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(IdError::BadOrderNumber(order_number.to_owned()));
        }
        Ok(Self { marketplace, order_number: order_number.to_owned() })
    }

    pub const STREAM_CATEGORY: &'static str = "order";

    /// The ledger stream of this order.
    pub fn stream(&self) -> String {
        format!("order-{self}")
    }

    /// The order from its stream name, `order-rakuten-…`.
    pub fn from_stream(stream: &str) -> Result<Self, IdError> {
        stream.strip_prefix("order-").ok_or_else(|| IdError::BadOrderKey(stream.to_owned()))?.parse()
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.marketplace, self.order_number)
    }
}

impl FromStr for OrderKey {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (marketplace, number) = s.split_once('-').ok_or_else(|| IdError::BadOrderKey(s.to_owned()))?;
        Self::new(marketplace.parse()?, number)
    }
}

/// Amazon's seller SKU (what FBA stocks).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SellerSku(pub String);

impl fmt::Display for SellerSku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The MCF order id (`sellerFulfillmentOrderId`), derived from the order so that a retry can
/// never create a second shipment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FulfillmentOrderId(pub String);

impl FulfillmentOrderId {
    /// Amazon's limit on `sellerFulfillmentOrderId`.
    pub const MAX_LEN: usize = 40;

    pub fn for_order(order: &OrderKey) -> Self {
        let id = format!("{}-{}", order.marketplace.mcf_prefix(), order.order_number);
        if id.len() <= Self::MAX_LEN {
            return Self(id);
        }
        // Too long: keep a readable head and make the tail unique with a digest of the whole.
        let digest = crate::store::sha256_hex(order.to_string().as_bytes());
        let head: String = id.chars().take(Self::MAX_LEN - 17).collect();
        Self(format!("{head}-{}", &digest[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FulfillmentOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_round_trip_with_dashes_in_the_number() {
        let key: OrderKey = "yahoo-my-store-10000001".parse().unwrap();
        assert_eq!(key.marketplace, Marketplace::Yahoo);
        assert_eq!(key.order_number, "my-store-10000001");
        assert_eq!(key.stream(), "order-yahoo-my-store-10000001");
        assert_eq!(OrderKey::from_stream(&key.stream()).unwrap(), key);
    }

    #[test]
    fn bad_order_keys_are_refused_with_the_reason() {
        assert_eq!("amazon-1".parse::<OrderKey>().unwrap_err(), IdError::UnknownMarketplace("amazon".into()));
        assert!(matches!("rakuten".parse::<OrderKey>(), Err(IdError::BadOrderKey(_))));
        assert!(matches!("rakuten-1 2".parse::<OrderKey>(), Err(IdError::BadOrderNumber(_))));
        assert!(matches!("rakuten-<script>".parse::<OrderKey>(), Err(IdError::BadOrderNumber(_))));
    }

    #[test]
    fn fulfillment_ids_are_deterministic_and_fit_amazons_limit() {
        let short = OrderKey::new(Marketplace::Rakuten, "123456-20261122-00000001").unwrap();
        assert_eq!(FulfillmentOrderId::for_order(&short).as_str(), "RK-123456-20261122-00000001");
        let long = OrderKey::new(Marketplace::Yahoo, &"x".repeat(60)).unwrap();
        let other = OrderKey::new(Marketplace::Yahoo, &format!("{}y", "x".repeat(59))).unwrap();
        let id = FulfillmentOrderId::for_order(&long);
        assert!(id.as_str().len() <= FulfillmentOrderId::MAX_LEN);
        assert_eq!(id, FulfillmentOrderId::for_order(&long));
        assert_ne!(id, FulfillmentOrderId::for_order(&other));
    }
}
