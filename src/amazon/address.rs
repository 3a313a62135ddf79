//! The Japanese delivery address in Amazon's layout: prefecture in `stateOrRegion`, no `city`,
//! municipality + town + block in `addressLine1`, building and room in `addressLine2`, a line
//! that does not fit moved on to the next at a space (never cut inside a word when it can be
//! helped). Whether Amazon accepts the lengths is the order's rule
//! (`events::order::address`), checked before any call; this only lays the address out.

use super::model::DestinationAddress;
use events::order::address::street_and_building;
use events::order::Address;

/// Amazon's per-line limit of the older model (characters); Japan's lines-together limit is
/// stricter and checked beforehand.
pub const LINE_LIMIT: usize = 60;
/// Amazon's limit on `phone`.
pub const PHONE_LIMIT: usize = 20;

pub fn destination(address: &Address) -> DestinationAddress {
    let (street, building) = street_and_building(address);
    let (line1, line2, line3) = fit_lines(&street, building);
    DestinationAddress {
        name: address.name.trim().to_owned(),
        address_line1: line1,
        address_line2: line2,
        address_line3: line3,
        state_or_region: address.prefecture.trim().to_owned(),
        postal_code: address.postal_code.trim().to_owned(),
        country_code: "JP".to_owned(),
        phone: address.phone.as_deref().and_then(phone_for_amazon),
    }
}

/// A phone number as Amazon takes it: half-width digits and hyphens, at most 20, from the
/// number's head (`090-1234-5678 (内線 1234-5678)` -> `090-1234-5678`). The order keeps the
/// original. None when nothing usable is left (the phone is optional).
pub fn phone_for_amazon(raw: &str) -> Option<String> {
    let half: String = raw
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '－' | 'ー' | '‐' | '−' => '-',
            '（' => '(',
            _ => c,
        })
        .collect();
    let trimmed = half.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '+');
    let number: String = trimmed.chars().take_while(|c| c.is_ascii_digit() || *c == '-' || *c == '+').collect();
    let number = number.trim_matches('-').to_owned();
    let digits = number.chars().filter(char::is_ascii_digit).count();
    (digits >= 7 && number.chars().count() <= PHONE_LIMIT).then_some(number)
}

/// Spreads street and building over at most three lines of `LINE_LIMIT`, breaking at a space
/// where one is near the end of a full line, and trimming every line. When it cannot fit, the
/// lines are returned unsplit (the lengths were checked before; this is only a last resort).
fn fit_lines(street: &str, building: Option<String>) -> (String, Option<String>, Option<String>) {
    let fits = |s: &str| s.chars().count() <= LINE_LIMIT;
    match &building {
        Some(b) if fits(street) && fits(b) => return (street.to_owned(), building, None),
        None if fits(street) => return (street.to_owned(), None, None),
        _ => {}
    }
    let mut lines: Vec<String> = wrap(street);
    if let Some(b) = &building {
        lines.extend(wrap(b));
    }
    if lines.len() <= 3 {
        let mut it = lines.into_iter();
        let first = it.next().unwrap_or_default();
        return (first, it.next(), it.next());
    }
    (street.to_owned(), building, None)
}

/// Lines of at most `LINE_LIMIT` characters, broken after the last space of a full line when
/// there is one, each trimmed.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.trim().chars().collect();
    while rest.len() > LINE_LIMIT {
        let head = &rest[..LINE_LIMIT];
        let cut = head.iter().rposition(|c| c.is_whitespace()).filter(|at| *at > 0).map_or(LINE_LIMIT, |at| at + 1);
        lines.push(rest[..cut].iter().collect::<String>().trim().to_owned());
        rest = rest[cut..].iter().copied().skip_while(|c| c.is_whitespace()).collect();
    }
    lines.push(rest.iter().collect::<String>().trim().to_owned());
    lines.retain(|l| !l.is_empty());
    lines
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
    fn phones_become_digits_and_hyphens_within_twenty() {
        assert_eq!(phone_for_amazon("090-1234-5678 (内線 1234-5678)").as_deref(), Some("090-1234-5678"));
        assert_eq!(phone_for_amazon("０３－１２３４－５６７８").as_deref(), Some("03-1234-5678"));
        assert_eq!(phone_for_amazon("TEL: 03 1234 5678").as_deref(), None, "spaces split it: too few digits");
        assert_eq!(phone_for_amazon("+81-90-1234-5678").as_deref(), Some("+81-90-1234-5678"));
        assert_eq!(phone_for_amazon("なし"), None);
        assert_eq!(phone_for_amazon(&"1".repeat(25)), None);
    }

    #[test]
    fn wrapped_lines_break_at_a_space_and_keep_none_at_their_ends() {
        let words = "Marunouchi Trust Tower North Building Eighteenth Floor Reception Desk Number Two";
        let lines = wrap(words);
        assert!(lines.iter().all(|l| l.chars().count() <= LINE_LIMIT && l.trim() == l), "{lines:?}");
        assert_eq!(lines.join(" "), words);
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
        let yahoo = destination(&address("東京都千代田区", "丸の内1-1", None));
        assert_eq!(yahoo.address_line1, "千代田区丸の内1-1", "the prefecture is not repeated");
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
