//! Allotting FBA stock to orders, oldest order first, so that two orders never both pass on
//! stock that covers only one. An order that cannot be covered takes nothing, and a later
//! order that fits in what remains still passes.

use crate::sku_master::MappedLine;
use events::order::Shortage;
use events::{OrderKey, SellerSku};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub order: OrderKey,
    pub lines: Vec<MappedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allotment {
    Allotted,
    Short(Vec<Shortage>),
}

/// `demands` must already be in order-time order. `available` is what may still be promised
/// (Amazon's fulfillable stock less what earlier allotments hold that Amazon has not reserved).
pub fn allot(demands: &[Demand], available: &HashMap<SellerSku, u32>) -> Vec<(OrderKey, Allotment)> {
    let mut left = available.clone();
    demands
        .iter()
        .map(|demand| {
            let mut needed: BTreeMap<&SellerSku, u32> = BTreeMap::new();
            for line in &demand.lines {
                *needed.entry(&line.seller_sku).or_default() += line.quantity;
            }
            let short: Vec<Shortage> = needed
                .iter()
                .filter_map(|(sku, needed)| {
                    let have = left.get(*sku).copied().unwrap_or(0);
                    (have < *needed).then(|| Shortage { seller_sku: (*sku).clone(), needed: *needed, available: have })
                })
                .collect();
            if !short.is_empty() {
                return (demand.order.clone(), Allotment::Short(short));
            }
            for (sku, needed) in needed {
                if let Some(have) = left.get_mut(sku) {
                    *have -= needed;
                }
            }
            (demand.order.clone(), Allotment::Allotted)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::Marketplace;

    fn order(n: u32) -> OrderKey {
        OrderKey::new(Marketplace::Rakuten, &format!("1-{n}")).unwrap()
    }

    fn demand(n: u32, lines: &[(&str, u32)]) -> Demand {
        Demand {
            order: order(n),
            lines: lines
                .iter()
                .map(|(sku, q)| MappedLine {
                    marketplace_sku: sku.to_lowercase(),
                    seller_sku: SellerSku((*sku).into()),
                    quantity: *q,
                })
                .collect(),
        }
    }

    fn stock(levels: &[(&str, u32)]) -> HashMap<SellerSku, u32> {
        levels.iter().map(|(s, q)| (SellerSku((*s).into()), *q)).collect()
    }

    #[test]
    fn given_stock_for_one_when_two_orders_need_it_then_only_the_older_passes() {
        let result = allot(&[demand(1, &[("TEA", 2)]), demand(2, &[("TEA", 2)])], &stock(&[("TEA", 3)]));
        assert_eq!(result[0], (order(1), Allotment::Allotted));
        assert_eq!(
            result[1],
            (
                order(2),
                Allotment::Short(vec![Shortage { seller_sku: SellerSku("TEA".into()), needed: 2, available: 1 }])
            )
        );
    }

    #[test]
    fn given_a_short_order_when_a_later_one_fits_then_the_later_passes_and_the_short_one_took_nothing() {
        let result = allot(&[demand(1, &[("TEA", 5)]), demand(2, &[("TEA", 3)])], &stock(&[("TEA", 3)]));
        assert!(matches!(result[0].1, Allotment::Short(_)));
        assert_eq!(result[1].1, Allotment::Allotted);
    }

    #[test]
    fn given_two_lines_of_one_sku_then_they_count_together_and_unknown_skus_have_none() {
        let result = allot(&[demand(1, &[("TEA", 2), ("TEA", 2), ("CUP", 1)])], &stock(&[("TEA", 3)]));
        let Allotment::Short(short) = &result[0].1 else { panic!("{result:?}") };
        assert_eq!(short.len(), 2);
        assert!(short.contains(&Shortage { seller_sku: SellerSku("TEA".into()), needed: 4, available: 3 }));
        assert!(short.contains(&Shortage { seller_sku: SellerSku("CUP".into()), needed: 1, available: 0 }));
    }

    #[test]
    fn given_an_order_that_fails_on_one_sku_then_its_other_skus_stay_available() {
        let result =
            allot(&[demand(1, &[("TEA", 1), ("CUP", 9)]), demand(2, &[("TEA", 1)])], &stock(&[("TEA", 1), ("CUP", 1)]));
        assert!(matches!(result[0].1, Allotment::Short(_)));
        assert_eq!(result[1].1, Allotment::Allotted);
    }
}
