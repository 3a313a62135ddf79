//! What Amazon accepts of a Japanese address, as rules on the order's address: the limits
//! Amazon applies in Japan (lines 1–3 together at most 40 characters, a name at most 15, full-
//! and half-width alike: Crossma's FBA error table and the operating guide's "MCF 400" row),
//! how street and building are laid out on those lines, and what a corrected address must be.
//! Checked before any call, so an order stops with a reason the operator can act on instead of
//! Amazon's English refusal.

use super::event::Address;
use std::fmt;

/// Amazon's limits in Japan (configurable: AMAZON_NAME_MAX_CHARS, AMAZON_ADDRESS_MAX_CHARS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLimits {
    /// Characters of the recipient's name.
    pub name: usize,
    /// Characters of address lines 1–3 together.
    pub lines: usize,
}

impl Default for AddressLimits {
    fn default() -> Self {
        Self { name: 15, lines: 40 }
    }
}

/// The 47 prefectures, as addresses write them.
pub const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// Words that mark a company in a recipient's name.
const COMPANY_MARKS: [&str; 8] = ["株式会社", "有限会社", "合同会社", "合資会社", "(株)", "（株）", "(有)", "（有）"];

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Joins two parts of an address: romaji parts keep a space between them (`Chiyoda-ku
/// Marunouchi`), Japanese ones run on (`千代田区丸の内`).
fn join(left: &str, right: &str) -> String {
    let ascii_end = left.chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
    let ascii_start = right.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ascii_end && ascii_start {
        format!("{left} {right}")
    } else {
        format!("{left}{right}")
    }
}

/// The street (municipality, town, block) and the building, as Amazon's address lines carry
/// them. The prefecture goes in its own field, so a city that repeats it (`東京都千代田区` from
/// Yahoo's ShipCity) loses it here.
pub fn street_and_building(address: &Address) -> (String, Option<String>) {
    let prefecture = address.prefecture.trim();
    let city = address.city.trim();
    let city = match city.strip_prefix(prefecture) {
        Some(rest) if !prefecture.is_empty() => rest.trim_start(),
        _ => city,
    };
    let mut line1 = address.line1.trim();
    if city.is_empty() {
        if let Some(rest) = line1.strip_prefix(prefecture).filter(|_| !prefecture.is_empty()) {
            line1 = rest.trim_start();
        }
    }
    let street = join(city, line1);
    let building = address.line2.as_deref().map(str::trim).filter(|b| !b.is_empty()).map(str::to_owned);
    (street, building)
}

/// Something in an address Amazon refuses, or a correction may not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressProblem {
    NameTooLong { length: usize, limit: usize, suggestion: Option<String> },
    LinesTooLong { length: usize, limit: usize },
    Empty { field: &'static str },
    PostalCode { given: String },
    Prefecture { given: String },
}

impl fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTooLong { length, limit, suggestion } => {
                write!(f, "お届け先の氏名が{length}文字です（Amazonの上限は{limit}文字）")?;
                if let Some(suggestion) = suggestion {
                    write!(f, "。{suggestion}")?;
                }
                Ok(())
            }
            Self::LinesTooLong { length, limit } => write!(
                f,
                "住所（市区町村・番地・建物名）が合計{length}文字です（Amazonの上限は住所1〜3の合計{limit}文字）"
            ),
            Self::Empty { field } => write!(f, "{field}が空です"),
            Self::PostalCode { given } => write!(f, "郵便番号「{given}」は 123-4567 の形で入力してください"),
            Self::Prefecture { given } => write!(f, "「{given}」は都道府県名ではありません（例: 東京都、大阪府）"),
        }
    }
}

/// The name split into a company and a person, when it has a company mark (`株式会社サンプル
/// 山田 太郎` -> `株式会社サンプル`, `山田 太郎`).
fn company_and_person(name: &str) -> Option<(String, String)> {
    let words: Vec<&str> = name.split([' ', '\u{3000}']).filter(|w| !w.is_empty()).collect();
    let company: Vec<&str> = words.iter().copied().filter(|w| COMPANY_MARKS.iter().any(|m| w.contains(m))).collect();
    if company.is_empty() || company.len() == words.len() {
        return None;
    }
    let person: Vec<&str> = words.iter().copied().filter(|w| !company.contains(w)).collect();
    Some((company.join(" "), person.join(" ")))
}

/// The lengths Amazon's limits are about: the name's characters, and address lines 1–3's
/// together (street and building as sent, the prefecture not counted).
pub fn lengths_for_amazon(address: &Address) -> (usize, usize) {
    let (street, building) = street_and_building(address);
    (chars(address.name.trim()), chars(&street) + building.as_deref().map_or(0, chars))
}

/// What Amazon would refuse of `address`, with the lengths and the limits.
pub fn problems_for_amazon(address: &Address, limits: AddressLimits) -> Vec<AddressProblem> {
    let mut problems = Vec::new();
    let (_, lines) = lengths_for_amazon(address);
    let name = address.name.trim();
    if chars(name) > limits.name {
        let suggestion = company_and_person(name).and_then(|(company, person)| {
            let fits = chars(&person) <= limits.name && lines + chars(&company) <= limits.lines;
            fits.then(|| format!("会社名「{company}」を住所2（建物名）に移し、氏名を「{person}」にすると収まります"))
        });
        problems.push(AddressProblem::NameTooLong { length: chars(name), limit: limits.name, suggestion });
    }
    if lines > limits.lines {
        problems.push(AddressProblem::LinesTooLong { length: lines, limit: limits.lines });
    }
    problems
}

/// What an operator's corrected address must be: every part there, a 〒 in `ddd-dddd` form,
/// one of the 47 prefectures, and within Amazon's limits.
pub fn problems_of_correction(address: &Address, limits: AddressLimits) -> Vec<AddressProblem> {
    let mut problems = Vec::new();
    for (field, value) in [("氏名", &address.name), ("市区町村", &address.city), ("番地", &address.line1)] {
        if value.trim().is_empty() {
            problems.push(AddressProblem::Empty { field });
        }
    }
    let postal = address.postal_code.trim();
    let postal_ok =
        postal.len() == 8 && postal.char_indices().all(|(i, c)| if i == 3 { c == '-' } else { c.is_ascii_digit() });
    if !postal_ok {
        problems.push(AddressProblem::PostalCode { given: postal.to_owned() });
    }
    if !PREFECTURES.contains(&address.prefecture.trim()) {
        problems.push(AddressProblem::Prefecture { given: address.prefecture.trim().to_owned() });
    }
    problems.extend(problems_for_amazon(address, limits));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(name: &str, prefecture: &str, city: &str, line1: &str, line2: Option<&str>) -> Address {
        Address {
            name: name.into(),
            postal_code: "100-0005".into(),
            prefecture: prefecture.into(),
            city: city.into(),
            line1: line1.into(),
            line2: line2.map(str::to_owned),
            phone: None,
        }
    }

    #[test]
    fn a_prefecture_repeated_in_the_city_is_dropped_and_romaji_parts_keep_a_space() {
        let yahoo = address("山田 花子", "東京都", "東京都千代田区", "丸の内1-1", Some("サンプルビル 3F"));
        assert_eq!(street_and_building(&yahoo), ("千代田区丸の内1-1".into(), Some("サンプルビル 3F".into())));
        let romaji = address("Hanako Yamada", "Tokyo", "Chiyoda-ku", "Marunouchi 1-1", None);
        assert_eq!(street_and_building(&romaji).0, "Chiyoda-ku Marunouchi 1-1");
    }

    #[test]
    fn amazons_japan_limits_are_named_with_the_length_and_the_limit() {
        let long = address(
            "株式会社サンプル商事 山田 太郎",
            "東京都",
            "千代田区",
            "丸の内一丁目一番一号",
            Some("サンプルタワー二十階"),
        );
        let problems = problems_for_amazon(&long, AddressLimits::default());
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["お届け先の氏名が16文字です（Amazonの上限は15文字）。会社名「株式会社サンプル商事」を住所2（建物名）に移し、氏名を「山田 太郎」にすると収まります"]
        );
        let too_long = address("山田 太郎", "東京都", "千代田区", &"一".repeat(30), Some(&"二".repeat(12)));
        assert_eq!(
            problems_for_amazon(&too_long, AddressLimits::default()),
            [AddressProblem::LinesTooLong { length: 46, limit: 40 }]
        );
        let fine = address("山田 太郎", "東京都", "東京都千代田区", "丸の内1-1", None);
        assert!(problems_for_amazon(&fine, AddressLimits::default()).is_empty());
        assert!(problems_for_amazon(&too_long, AddressLimits { name: 15, lines: 60 }).is_empty(), "configurable");
    }

    #[test]
    fn a_correction_needs_a_postal_code_a_prefecture_and_every_part() {
        let mut bad = address("", "東京", "千代田区", "丸の内1-1", None);
        bad.postal_code = "1000005".into();
        let shown: Vec<String> =
            problems_of_correction(&bad, AddressLimits::default()).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "氏名が空です",
                "郵便番号「1000005」は 123-4567 の形で入力してください",
                "「東京」は都道府県名ではありません（例: 東京都、大阪府）",
            ]
        );
        assert!(problems_of_correction(
            &address("山田", "東京都", "千代田区", "丸の内1-1", None),
            AddressLimits::default()
        )
        .is_empty());
    }
}
