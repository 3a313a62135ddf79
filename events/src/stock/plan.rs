//! What each marketplace listing should offer, from FBA's last reading: a pure decision, so the
//! arithmetic and the brake are tested given / when / then, and `mcf-ledger stock plan` shows
//! exactly what a sync would publish.
//!
//! Per listing (a marketplace SKU of the SKU master, at one marketplace):
//! quantity = max(0, floor((FBA fulfillable − units allotted to orders Amazon has not reserved
//! yet) ÷ units per item) − buffer). The buffer counts listing items (what the buyer orders),
//! the listing's own `buffer` column when the master has one, else `STOCK_BUFFER`. A set of
//! different products offers as many sets as its scarcest component makes.

use crate::ids::Marketplace;
use std::collections::{BTreeMap, BTreeSet};

/// One FBA product a listing ships, and how many units of it one item takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub seller_sku: String,
    pub units_per_item: u32,
}

/// A marketplace SKU of the SKU master as a listing: the FBA products it ships (one, or several
/// for a set of different products) and its own buffer, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub marketplace_sku: String,
    pub components: Vec<Component>,
    pub buffer: Option<u32>,
    /// Where the listing's stock lives at each marketplace it is published to.
    pub keys: Vec<super::StockKey>,
}

/// What the plan is made from.
#[derive(Debug, Clone, Default)]
pub struct PlanInputs {
    pub listings: Vec<Listing>,
    pub marketplaces: Vec<Marketplace>,
    /// FBA's fulfillable units per seller SKU, for the SKUs it has been read for.
    pub fba: BTreeMap<String, u32>,
    /// Units per seller SKU held by orders Amazon has not reserved yet.
    pub allotted: BTreeMap<String, u32>,
    pub default_buffer: u32,
    /// What each marketplace was last told, per marketplace SKU.
    pub published: BTreeMap<(Marketplace, String), u32>,
}

/// One listing's line of the plan. Seller SKU, units, FBA and allotted are those of the
/// component that limits the listing (for a set of different products, its scarcest, or one
/// FBA has not been read for); `components` has every component's figures for such a set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanRow {
    pub marketplace: Marketplace,
    pub marketplace_sku: String,
    /// Where the quantity is written at the marketplace; None: the master names no key there,
    /// so this row is planned but never published.
    pub key: Option<super::StockKey>,
    pub seller_sku: String,
    pub units_per_item: u32,
    /// None: FBA has not been read for this seller SKU yet, so nothing can be planned.
    pub fba_fulfillable: Option<u32>,
    pub allotted: u32,
    pub buffer: u32,
    pub quantity: Option<u32>,
    /// What the marketplace was last told; None when it never was.
    pub published: Option<u32>,
    /// A set of different products: each component's figures, in the master's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentFigures>,
}

/// One component's share of a set's plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComponentFigures {
    pub seller_sku: String,
    pub units_per_item: u32,
    pub fba_fulfillable: Option<u32>,
    pub allotted: u32,
    /// Sets this component alone would make: floor((FBA − allotted) ÷ units); None unread.
    pub sets: Option<u32>,
}

impl ComponentFigures {
    fn of(component: &Component, inputs: &PlanInputs) -> Self {
        let fba = inputs.fba.get(&component.seller_sku).copied();
        let allotted = inputs.allotted.get(&component.seller_sku).copied().unwrap_or(0);
        let units = component.units_per_item.max(1);
        ComponentFigures {
            seller_sku: component.seller_sku.clone(),
            units_per_item: units,
            fba_fulfillable: fba,
            allotted,
            sets: fba.map(|fulfillable| fulfillable.saturating_sub(allotted) / units),
        }
    }
}

impl PlanRow {
    /// A sync would write this row: it has a key, its quantity is known and differs from what
    /// was published.
    pub fn changes(&self) -> bool {
        self.key.is_some() && self.quantity.is_some() && self.quantity != self.published
    }
}

/// The largest quantity a marketplace takes (RMS 99,999; Yahoo 999,999,999): more is shown as
/// the most it can hold.
pub fn most_listed(marketplace: Marketplace) -> u32 {
    match marketplace {
        Marketplace::Rakuten => 99_999,
        Marketplace::Yahoo => 999_999_999,
    }
}

pub fn plan(inputs: &PlanInputs) -> Vec<PlanRow> {
    let mut rows = Vec::new();
    for marketplace in &inputs.marketplaces {
        for listing in &inputs.listings {
            let figures: Vec<ComponentFigures> =
                listing.components.iter().map(|c| ComponentFigures::of(c, inputs)).collect();
            // Unread first (nothing can be planned), else the scarcest (the first of equals).
            let limiting = figures.iter().find(|f| f.sets.is_none()).or_else(|| figures.iter().min_by_key(|f| f.sets));
            let Some(limiting) = limiting.cloned() else { continue };
            let buffer = listing.buffer.unwrap_or(inputs.default_buffer);
            let quantity = limiting.sets.map(|sets| sets.saturating_sub(buffer).min(most_listed(*marketplace)));
            rows.push(PlanRow {
                marketplace: *marketplace,
                marketplace_sku: listing.marketplace_sku.clone(),
                key: listing.keys.iter().find(|k| k.marketplace() == *marketplace).cloned(),
                seller_sku: limiting.seller_sku,
                units_per_item: limiting.units_per_item,
                fba_fulfillable: limiting.fba_fulfillable,
                allotted: limiting.allotted,
                buffer,
                quantity,
                published: inputs.published.get(&(*marketplace, listing.marketplace_sku.clone())).copied(),
                components: if figures.len() > 1 { figures } else { Vec::new() },
            });
        }
    }
    rows.sort_by(|a, b| (a.marketplace, &a.marketplace_sku).cmp(&(b.marketplace, &b.marketplace_sku)));
    rows
}

/// Why a plan must not be published until an operator confirms it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Brake {
    /// More than one FBA SKU, and more than `limit_percent` of those on sale, would drop to 0
    /// at once: more likely a bad reading (an FBA outage, a wrong account) than a sell-out.
    ManyToZero { to_zero: usize, on_sale: usize, limit_percent: u32 },
    /// Seller SKUs an earlier reading had that this one lacks.
    MissingSkus { seller_skus: Vec<String> },
}

impl Brake {
    /// For the operator (Japanese), naming the numbers.
    pub fn describe(&self) -> String {
        match self {
            Self::ManyToZero { to_zero, on_sale, limit_percent } => format!(
                "販売中の {on_sale} SKU のうち {to_zero} SKU が一度に在庫0になります（上限 {limit_percent}%）。FBAの読み取りを確かめてから承認してください"
            ),
            Self::MissingSkus { seller_skus } => {
                format!("前回の読み取りにあったSKUがありません: {}。FBAの読み取りを確かめてから承認してください", seller_skus.join(", "))
            }
        }
    }
}

/// The brakes a plan trips. `seen_before`: seller SKUs of earlier whole readings; `read_now`:
/// those of the reading the plan comes from.
pub fn brakes(
    rows: &[PlanRow],
    seen_before: &BTreeSet<String>,
    read_now: &BTreeSet<String>,
    limit_percent: u32,
) -> Vec<Brake> {
    let mut found = Vec::new();
    // Counted in FBA SKUs (a product sells out once, however many listings and marketplaces
    // show it). On sale: a listing told a quantity above 0, or never told.
    let on_sale_rows: Vec<&PlanRow> =
        rows.iter().filter(|r| r.quantity.is_some() && r.published.is_none_or(|p| p > 0)).collect();
    let on_sale: BTreeSet<&str> = on_sale_rows.iter().map(|r| r.seller_sku.as_str()).collect();
    let to_zero: BTreeSet<&str> =
        on_sale_rows.iter().filter(|r| r.quantity == Some(0)).map(|r| r.seller_sku.as_str()).collect();
    // One product selling out is ordinary, whatever its share of a small catalogue.
    if to_zero.len() >= 2 && to_zero.len() * 100 > on_sale.len() * limit_percent as usize {
        found.push(Brake::ManyToZero { to_zero: to_zero.len(), on_sale: on_sale.len(), limit_percent });
    }
    let missing: Vec<String> = seen_before.difference(read_now).cloned().collect();
    if !missing.is_empty() {
        found.push(Brake::MissingSkus { seller_skus: missing });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(marketplace_sku: &str, seller_sku: &str, units: u32, buffer: Option<u32>) -> Listing {
        Listing {
            marketplace_sku: marketplace_sku.into(),
            components: vec![Component { seller_sku: seller_sku.into(), units_per_item: units }],
            buffer,
            keys: vec![
                super::super::StockKey::rakuten("item", marketplace_sku).unwrap(),
                super::super::StockKey::yahoo(marketplace_sku).unwrap(),
            ],
        }
    }

    fn given(listings: Vec<Listing>, fba: &[(&str, u32)], allotted: &[(&str, u32)], default_buffer: u32) -> PlanInputs {
        PlanInputs {
            listings,
            marketplaces: vec![Marketplace::Rakuten],
            fba: fba.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            allotted: allotted.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            default_buffer,
            published: BTreeMap::new(),
        }
    }

    fn quantities(rows: &[PlanRow]) -> Vec<(&str, Option<u32>)> {
        rows.iter().map(|r| (r.marketplace_sku.as_str(), r.quantity)).collect()
    }

    #[test]
    fn given_fba_stock_and_allotments_when_planned_then_what_fba_can_still_ship_per_item() {
        let inputs = given(
            vec![listing("tea-100", "JP-TEA-100", 1, None), listing("tea-3pack", "JP-TEA-100", 3, None)],
            &[("JP-TEA-100", 20)],
            &[("JP-TEA-100", 4)],
            0,
        );
        let rows = plan(&inputs);
        // 20 fulfillable, 4 allotted: 16 single packs, or 5 sets of three (floor).
        assert_eq!(quantities(&rows), vec![("tea-100", Some(16)), ("tea-3pack", Some(5))]);
        assert_eq!(rows[1].allotted, 4);
        assert_eq!(rows[1].units_per_item, 3);
    }

    #[test]
    fn given_a_set_of_different_products_when_planned_then_as_many_sets_as_its_scarcest_component_makes() {
        let mut gift = listing("gift", "JP-TEA-100", 1, Some(1));
        gift.components.push(Component { seller_sku: "JP-CUP".into(), units_per_item: 2 });
        let inputs = given(vec![gift.clone()], &[("JP-TEA-100", 20), ("JP-CUP", 9)], &[("JP-CUP", 2)], 0);
        let rows = plan(&inputs);
        // Tea makes 20 sets; cups (9 − 2 allotted) ÷ 2 make 3; less the set's buffer of 1.
        assert_eq!(quantities(&rows), vec![("gift", Some(2))]);
        assert_eq!((rows[0].seller_sku.as_str(), rows[0].units_per_item, rows[0].allotted), ("JP-CUP", 2, 2));
        let sets: Vec<(&str, Option<u32>)> =
            rows[0].components.iter().map(|c| (c.seller_sku.as_str(), c.sets)).collect();
        assert_eq!(sets, vec![("JP-TEA-100", Some(20)), ("JP-CUP", Some(3))]);

        // A component FBA has not been read for: nothing can be planned for the set.
        let rows = plan(&given(vec![gift.clone()], &[("JP-TEA-100", 20)], &[], 0));
        assert_eq!((rows[0].quantity, rows[0].seller_sku.as_str()), (None, "JP-CUP"));

        // The scarcest component selling out takes the set to 0, and the brake counts that SKU.
        let mut inputs = given(vec![gift], &[("JP-TEA-100", 20), ("JP-CUP", 1)], &[], 0);
        inputs.published.insert((Marketplace::Rakuten, "gift".into()), 4);
        let rows = plan(&inputs);
        assert_eq!(quantities(&rows), vec![("gift", Some(0))]);
        let read: BTreeSet<String> = ["JP-TEA-100", "JP-CUP"].into_iter().map(String::from).collect();
        assert!(brakes(&rows, &read, &read, 30).is_empty(), "one product selling out");
    }

    #[test]
    fn given_a_buffer_when_planned_then_the_listings_own_wins_over_the_default_and_never_below_zero() {
        let inputs = given(
            vec![listing("cup", "JP-CUP", 1, Some(5)), listing("matcha", "JP-MATCHA", 1, None)],
            &[("JP-CUP", 3), ("JP-MATCHA", 10)],
            &[],
            2,
        );
        let rows = plan(&inputs);
        assert_eq!(quantities(&rows), vec![("cup", Some(0)), ("matcha", Some(8))]);
        assert_eq!((rows[0].buffer, rows[1].buffer), (5, 2));
    }

    #[test]
    fn given_one_listing_of_a_small_catalogue_selling_out_then_no_brake() {
        let mut inputs = given(
            vec![listing("a", "A", 1, None), listing("b", "B", 1, None), listing("c", "C", 1, None)],
            &[("A", 0), ("B", 5), ("C", 5)],
            &[],
            0,
        );
        for sku in ["a", "b", "c"] {
            inputs.published.insert((Marketplace::Rakuten, sku.into()), 5);
        }
        let read: BTreeSet<String> = ["A", "B", "C"].into_iter().map(String::from).collect();
        assert!(brakes(&plan(&inputs), &read, &read, 30).is_empty(), "1 of 3 is a sell-out, not a bad reading");
    }

    #[test]
    fn given_more_than_a_marketplace_holds_then_the_most_it_takes() {
        let mut inputs = given(vec![listing("tea", "T", 1, None)], &[("T", 150_000)], &[], 0);
        inputs.marketplaces = vec![Marketplace::Rakuten, Marketplace::Yahoo];
        assert_eq!(quantities(&plan(&inputs)), vec![("tea", Some(99_999)), ("tea", Some(150_000))]);
    }

    #[test]
    fn given_more_allotted_than_fba_has_then_zero_not_an_underflow() {
        let rows = plan(&given(vec![listing("tea", "T", 1, None)], &[("T", 2)], &[("T", 5)], 0));
        assert_eq!(quantities(&rows), vec![("tea", Some(0))]);
    }

    #[test]
    fn given_a_sku_fba_was_never_read_for_then_no_quantity_and_no_change() {
        let rows = plan(&given(vec![listing("tea", "T", 1, None)], &[], &[], 0));
        assert_eq!(rows[0].quantity, None);
        assert!(!rows[0].changes());
    }

    #[test]
    fn given_each_marketplace_and_what_it_was_told_then_one_row_each_and_only_differences_change() {
        let mut inputs = given(vec![listing("tea", "T", 1, None)], &[("T", 7)], &[], 0);
        inputs.marketplaces = vec![Marketplace::Yahoo, Marketplace::Rakuten];
        inputs.published.insert((Marketplace::Rakuten, "tea".into()), 7);
        inputs.published.insert((Marketplace::Yahoo, "tea".into()), 9);
        let rows = plan(&inputs);
        assert_eq!(
            rows.iter().map(|r| (r.marketplace, r.changes())).collect::<Vec<_>>(),
            vec![(Marketplace::Rakuten, false), (Marketplace::Yahoo, true)]
        );
    }

    #[test]
    fn given_a_reading_taking_many_listings_to_zero_then_the_brake_says_how_many() {
        let listings = (0..10).map(|n| listing(&format!("item-{n}"), &format!("S{n}"), 1, None)).collect();
        let fba: Vec<(String, u32)> = (0..10).map(|n| (format!("S{n}"), if n < 4 { 0 } else { 5 })).collect();
        let fba: Vec<(&str, u32)> = fba.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let mut inputs = given(listings, &fba, &[], 0);
        for n in 0..10 {
            inputs.published.insert((Marketplace::Rakuten, format!("item-{n}")), 5);
        }
        let rows = plan(&inputs);
        let read: BTreeSet<String> = (0..10).map(|n| format!("S{n}")).collect();
        assert_eq!(
            brakes(&rows, &read, &read, 30),
            vec![Brake::ManyToZero { to_zero: 4, on_sale: 10, limit_percent: 30 }]
        );
        assert!(brakes(&rows, &read, &read, 40).is_empty(), "4 of 10 is within 40%");
        assert!(brakes(&rows, &read, &read, 30)[0].describe().contains("10 SKU のうち 4 SKU"));
    }

    #[test]
    fn given_listings_already_at_zero_then_they_do_not_count_as_dropping() {
        let mut inputs =
            given(vec![listing("a", "A", 1, None), listing("b", "B", 1, None)], &[("A", 0), ("B", 3)], &[], 0);
        inputs.published.insert((Marketplace::Rakuten, "a".into()), 0);
        inputs.published.insert((Marketplace::Rakuten, "b".into()), 3);
        let rows = plan(&inputs);
        let read: BTreeSet<String> = ["A", "B"].map(String::from).into();
        assert!(brakes(&rows, &read, &read, 30).is_empty());
    }

    #[test]
    fn given_a_reading_that_lacks_skus_seen_before_then_the_brake_names_them() {
        let rows = plan(&given(vec![listing("a", "A", 1, None)], &[("A", 3)], &[], 0));
        let before: BTreeSet<String> = ["A", "B", "C"].map(String::from).into();
        let now: BTreeSet<String> = ["A"].map(String::from).into();
        assert_eq!(
            brakes(&rows, &before, &now, 30),
            vec![Brake::MissingSkus { seller_skus: vec!["B".into(), "C".into()] }]
        );
    }
}
