//! The Japanese delivery address in Amazon's layout: prefecture in `stateOrRegion`, no `city`,
//! municipality + town + block in `addressLine1`, building and room in `addressLine2`, with
//! overflow moved to the next line instead of cut. A line that still does not fit is sent as is,
//! so Amazon's own validation message reaches the operator.

use super::model::DestinationAddress;
use events::order::Address;

/// Amazon's per-line limit (characters).
pub const LINE_LIMIT: usize = 60;
pub const NAME_LIMIT: usize = 50;

pub fn destination(address: &Address) -> DestinationAddress {
    let street = format!("{}{}", address.city.trim(), address.line1.trim());
    let building = address.line2.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let (line1, line2, line3) = fit_lines(&street, building);
    DestinationAddress {
        name: address.name.trim().to_owned(),
        address_line1: line1,
        address_line2: line2,
        address_line3: line3,
        state_or_region: address.prefecture.trim().to_owned(),
        postal_code: address.postal_code.trim().to_owned(),
        country_code: "JP".to_owned(),
        phone: address.phone.as_deref().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
    }
}

/// Spreads street and building over three lines of at most `LINE_LIMIT` characters, cutting
/// only where a line is full. When it cannot fit, the lines are returned unsplit.
fn fit_lines(street: &str, building: Option<String>) -> (String, Option<String>, Option<String>) {
    let fits = |s: &str| s.chars().count() <= LINE_LIMIT;
    match &building {
        Some(b) if fits(street) && fits(b) => return (street.to_owned(), building, None),
        None if fits(street) => return (street.to_owned(), None, None),
        _ => {}
    }
    let mut lines: Vec<String> = chunks(street);
    if let Some(b) = &building {
        lines.extend(chunks(b));
    }
    if lines.len() <= 3 {
        let mut it = lines.into_iter();
        let first = it.next().unwrap_or_default();
        return (first, it.next(), it.next());
    }
    (street.to_owned(), building, None)
}

fn chunks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(LINE_LIMIT).map(|c| c.iter().collect()).collect()
}

/// `displayableOrderId`: at most 40 characters of ISO 8859-1, no double spaces.
pub fn displayable_order_id(order_number: &str) -> String {
    let latin1: String =
        order_number.chars().map(|c| if (c as u32) < 0x100 && !c.is_control() { c } else { '-' }).collect();
    let mut collapsed = String::with_capacity(latin1.len());
    for c in latin1.trim().chars() {
        if !(c == ' ' && collapsed.ends_with(' ')) {
            collapsed.push(c);
        }
    }
    collapsed.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(city: &str, line1: &str, line2: Option<&str>) -> Address {
        Address {
            name: "山田 花子".into(),
            postal_code: "150-0041".into(),
            prefecture: "東京都".into(),
            city: city.into(),
            line1: line1.into(),
            line2: line2.map(str::to_owned),
            phone: Some(" 0300000000 ".into()),
        }
    }

    #[test]
    fn a_japanese_address_uses_amazons_japan_layout() {
        let d = destination(&address("渋谷区", "神南1-2-3", Some("サンプルビル 402")));
        assert_eq!(d.state_or_region, "東京都");
        assert_eq!(d.address_line1, "渋谷区神南1-2-3");
        assert_eq!(d.address_line2.as_deref(), Some("サンプルビル 402"));
        assert_eq!(d.address_line3, None);
        assert_eq!(d.country_code, "JP");
        assert_eq!(d.phone.as_deref(), Some("0300000000"));
        let json = serde_json::to_value(&d).unwrap();
        assert!(json.get("city").is_none(), "city must not be used in Japan");
    }

    #[test]
    fn long_lines_overflow_to_the_next_line_without_losing_characters() {
        let building = "ア".repeat(70);
        let d = destination(&address("渋谷区", "神南1-2-3", Some(&building)));
        assert_eq!(d.address_line1, "渋谷区神南1-2-3");
        assert_eq!(d.address_line2.as_deref().unwrap().chars().count(), 60);
        assert_eq!(d.address_line3.as_deref().unwrap().chars().count(), 10);
        let joined = format!("{}{}", d.address_line2.unwrap(), d.address_line3.unwrap());
        assert_eq!(joined, building);
    }

    #[test]
    fn an_address_that_cannot_fit_is_sent_as_is_for_amazon_to_judge() {
        let building = "イ".repeat(150);
        let d = destination(&address("渋谷区", "神南1-2-3", Some(&building)));
        assert_eq!(d.address_line2.as_deref(), Some(building.as_str()));
    }

    #[test]
    fn displayable_ids_are_latin1_and_at_most_40_characters() {
        assert_eq!(displayable_order_id("123456-20261122-00000001"), "123456-20261122-00000001");
        assert_eq!(displayable_order_id("店舗  1"), "-- 1");
        assert_eq!(displayable_order_id(&"x".repeat(50)).len(), 40);
    }
}
