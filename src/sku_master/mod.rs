//! The SKU master: `master.xlsx`, sheet `SKUMapping`, maps each marketplace SKU to the Amazon
//! seller SKU FBA stocks, with a quantity multiplier for sets (a "3-pack" ships 3 units). A set
//! of different products has one row per component under the same marketplace SKU (a gift set:
//! one tea, two cups).
//!
//! This module reads and maps only; keeping the mapping current (loading a changed file,
//! refusing a bad one, recording both in the ledger) is the check stage's
//! (`stages::check::master`).

mod workbook;

pub use workbook::{parse_workbook, SkuMasterError};

use events::SellerSku;
use std::collections::HashMap;

pub const SHEET: &str = "SKUMapping";

/// One FBA product a listing ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub seller_sku: SellerSku,
    /// Units of the seller SKU per unit ordered.
    pub multiplier: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedSku {
    /// What one item ordered ships: one component, or several for a set of different products,
    /// in the master's row order.
    pub components: Vec<Component>,
    /// Items kept off the marketplaces when stock is published (the `buffer` column); None:
    /// STOCK_BUFFER applies.
    pub buffer: Option<u32>,
    /// Where the listing's stock lives at each marketplace (the `rakuten_manage_number` +
    /// `rakuten_variant_id` and `yahoo_item_code` columns); a listing without a key there is
    /// not published there.
    pub stock_keys: Vec<events::stock::StockKey>,
}

/// A loaded mapping, and which workbook it came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkuMapping {
    pub entries: HashMap<String, MappedSku>,
    pub sha256: String,
    /// The file it was read from.
    pub path: String,
    /// When the ledger recorded it (None until recorded).
    pub loaded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl SkuMapping {
    pub fn get(&self, marketplace_sku: &str) -> Option<&MappedSku> {
        self.entries.get(marketplace_sku.trim())
    }

    /// The workbook, as an operator finds it again: `master.xlsx（2026-12-02 10:15 JST 読込、
    /// sha256 1a2b3c4d…）`.
    pub fn describe(&self) -> String {
        let loaded = self
            .loaded_at
            .map(|at| format!("{} 読込、", at.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M JST")))
            .unwrap_or_default();
        format!("{}（{loaded}sha256 {}…）", self.path, &self.sha256[..self.sha256.len().min(8)])
    }

    /// The marketplace SKUs this mapping has and `other` lacks.
    pub fn dropped_in(&self, other: &SkuMapping) -> Vec<String> {
        let mut dropped: Vec<String> =
            self.entries.keys().filter(|k| !other.entries.contains_key(*k)).cloned().collect();
        dropped.sort();
        dropped
    }
}

/// A marketplace order line mapped to what FBA ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedLine {
    pub marketplace_sku: String,
    pub seller_sku: SellerSku,
    pub quantity: u32,
}

/// Maps every line of an order; the SKUs the master lacks are all named.
pub fn map_lines(mapping: &SkuMapping, items: &[events::order::OrderItem]) -> Result<Vec<MappedLine>, Vec<String>> {
    let mut missing = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        match mapping.get(&item.marketplace_sku) {
            Some(mapped) => lines.extend(mapped.components.iter().map(|component| MappedLine {
                marketplace_sku: item.marketplace_sku.clone(),
                seller_sku: component.seller_sku.clone(),
                quantity: item.quantity.saturating_mul(component.multiplier),
            })),
            None => missing.push(item.marketplace_sku.clone()),
        }
    }
    if missing.is_empty() {
        Ok(lines)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(components: &[(&str, u32)]) -> MappedSku {
        MappedSku {
            components: components
                .iter()
                .map(|(sku, n)| Component { seller_sku: SellerSku((*sku).into()), multiplier: *n })
                .collect(),
            buffer: None,
            stock_keys: vec![],
        }
    }

    #[test]
    fn given_a_set_of_different_products_when_ordered_then_every_component_ships_per_set() {
        let mapping = SkuMapping {
            entries: HashMap::from([
                ("gift".to_owned(), mapped(&[("JP-TEA-100", 1), ("JP-CUP", 2)])),
                ("tea-3pack".to_owned(), mapped(&[("JP-TEA-100", 3)])),
            ]),
            ..SkuMapping::default()
        };
        let item = |sku: &str, quantity| events::order::OrderItem {
            marketplace_sku: sku.into(),
            title: String::new(),
            quantity,
            unit_price_yen: 1_000,
        };
        let lines = map_lines(&mapping, &[item("gift", 2), item("tea-3pack", 1)]).unwrap();
        let shipped: Vec<(&str, &str, u32)> =
            lines.iter().map(|l| (l.marketplace_sku.as_str(), l.seller_sku.0.as_str(), l.quantity)).collect();
        assert_eq!(shipped, vec![("gift", "JP-TEA-100", 2), ("gift", "JP-CUP", 4), ("tea-3pack", "JP-TEA-100", 3)]);
        assert_eq!(
            map_lines(&mapping, &[item("mug", 1), item("gift", 1), item("pot", 1)]),
            Err(vec!["mug".into(), "pot".into()])
        );
    }
}
