//! Parsing and classifying one email (MIME, ISO-2022-JP / Shift_JIS / UTF-8, encoded headers)
//! with mail-parser. Never fails: what cannot be read is classified with the reason.

use chrono::{DateTime, Utc};
use mail_parser::MessageParser;
use serde::Serialize;

/// What a message was taken for (the ledger's own type: it is recorded with the message).
pub use events::mailbox::MailClassification as Classification;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedMail {
    pub message_id: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub from: Option<String>,
    pub subject: String,
    pub classification: Classification,
    /// Bytes of the raw message.
    pub size: usize,
}

pub fn parse(raw: &[u8]) -> ParsedMail {
    let Some(message) = MessageParser::default().parse(raw) else {
        return ParsedMail {
            message_id: None,
            date: None,
            from: None,
            subject: String::new(),
            classification: Classification::Rejected {
                reason: "not an email message (no headers could be read)".into(),
            },
            size: raw.len(),
        };
    };
    let subject = message.subject().unwrap_or("").trim().to_owned();
    let from = message.from().and_then(|f| f.first()).and_then(|a| a.address()).map(str::to_owned);
    let date = message.date().and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0));
    let body: String = (0..message.text_body.len()).filter_map(|i| message.body_text(i)).collect::<Vec<_>>().join("\n");
    let body = if body.trim().is_empty() {
        (0..message.html_body.len())
            .filter_map(|i| message.body_html(i))
            .map(|h| strip_tags(&h))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        body
    };
    ParsedMail {
        message_id: message.message_id().map(str::to_owned),
        date,
        classification: classify(&subject, from.as_deref().unwrap_or(""), &body),
        from,
        subject,
        size: raw.len(),
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The token after `label` on its line (after `:`/`：`/spaces).
fn value_after<'a>(body: &'a str, label: &str) -> Option<&'a str> {
    body.lines().find_map(|line| {
        let at = line.find(label)?;
        let rest = line[at + label.len()..].trim_start_matches(SEPARATORS);
        rest.split_whitespace().next().filter(|v| !v.is_empty())
    })
}

/// How Amazon's shipment mails label the tracking number, longest first so that a shorter label
/// inside a longer one (伝票番号 in お問い合わせ伝票番号) finds the same value.
const TRACKING_LABELS: [&str; 7] = [
    "お問い合わせ伝票番号",
    "お問い合わせ番号",
    "伝票番号",
    "追跡番号",
    "トラッキングID",
    "Tracking number",
    "Tracking ID",
];

const CARRIER_LABELS: [&str; 4] = ["配送業者", "配送会社", "運送会社", "Carrier"];

/// The tracking number after any of [`TRACKING_LABELS`], on the label's line or, when the label
/// ends its line, on the next one. Only a token that looks like a number is taken (letters,
/// digits and hyphens with at least one digit), so a sentence that mentions 追跡番号 is skipped;
/// full-width digits are read as digits.
fn tracking_number(body: &str) -> Option<String> {
    let lines: Vec<&str> = body.lines().collect();
    let looks_like_number = |token: &str| {
        (4..=40).contains(&token.chars().count())
            && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && token.chars().any(|c| c.is_ascii_digit())
    };
    for label in TRACKING_LABELS {
        for (n, line) in lines.iter().enumerate() {
            let Some(at) = line.find(label) else { continue };
            let rest = line[at + label.len()..].trim_start_matches(|c: char| SEPARATORS.contains(&c));
            let candidate = if rest.trim().is_empty() {
                lines[n + 1..].iter().find(|l| !l.trim().is_empty()).and_then(|l| l.split_whitespace().next())
            } else {
                rest.split_whitespace().next()
            };
            if let Some(number) = candidate.map(half_width).filter(|t| looks_like_number(t)) {
                return Some(number);
            }
        }
    }
    None
}

const SEPARATORS: [char; 6] = [' ', '\u{3000}', ':', '：', '\t', '#'];

/// Full-width ASCII (０-９, Ａ-Ｚ, －) as half-width, as mail bodies sometimes write numbers.
fn half_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            'ー' | '‐' | '−' => '-',
            _ => c,
        })
        .collect()
}

/// `^\d{6}-\d{8}-\d{8,10}$` (spec §11).
pub fn is_rakuten_order_number(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts.as_slice(), [shop, date, serial]
        if shop.len() == 6 && date.len() == 8 && (8..=10).contains(&serial.len())
            && [shop, date, serial].iter().all(|p| p.chars().all(|c| c.is_ascii_digit())))
}

/// `<sellerId>-<digits>`, letters, digits and '-', at most 50 bytes.
pub fn is_yahoo_order_id(text: &str) -> bool {
    text.len() <= 50
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && text.rsplit_once('-').is_some_and(|(seller, number)| {
            !seller.is_empty() && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
        })
}

fn is_mcf_id(token: &str) -> bool {
    (token.starts_with("RK-") || token.starts_with("YH-"))
        && token.len() <= 40
        && token[3..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn classify(subject: &str, from: &str, body: &str) -> Classification {
    if subject.contains("楽天市場") && subject.contains("注文内容ご確認") {
        return match value_after(body, "[受注番号]") {
            Some(number) if is_rakuten_order_number(number) => {
                Classification::RakutenOrder { order_number: number.to_owned() }
            }
            Some(other) => Classification::Rejected {
                reason: format!("a Rakuten order mail whose [受注番号] {other:?} is not an order number"),
            },
            None => Classification::Rejected {
                reason: "looks like a Rakuten order mail but carries no [受注番号]".into(),
            },
        };
    }
    if subject.contains("Yahoo!ショッピング") && subject.contains("注文確認") {
        return match value_after(body, "注文ID") {
            Some(id) if is_yahoo_order_id(id) => Classification::YahooOrder { order_id: id.to_owned() },
            Some(other) => Classification::Rejected {
                reason: format!("a Yahoo order mail whose 注文ID {other:?} is not an order id"),
            },
            None => Classification::Rejected { reason: "looks like a Yahoo order mail but carries no 注文ID".into() },
        };
    }
    let from_amazon = from.to_ascii_lowercase().contains("amazon");
    let shipment_words = ["発送", "出荷", "shipped", "Shipped", "shipment"].iter().any(|w| subject.contains(w));
    if from_amazon && shipment_words {
        let id = body.split(|c: char| c.is_whitespace() || c == '：' || c == ':' || c == '#').find(|t| is_mcf_id(t));
        return match id {
            Some(id) => Classification::McfShipment {
                fulfillment_order_id: id.to_owned(),
                tracking_number: tracking_number(body),
                carrier: CARRIER_LABELS.iter().find_map(|label| value_after(body, label)).map(str::to_owned),
            },
            None => Classification::Other,
        };
    }
    Classification::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso_2022_jp(text: &str) -> Vec<u8> {
        encoding_rs::ISO_2022_JP.encode(text).0.into_owned()
    }

    fn mail(subject_header: &str, charset: &str, body: Vec<u8>) -> Vec<u8> {
        let mut raw = format!(
            "From: order@rakuten.co.jp\r\nTo: shop@example.jp\r\nSubject: {subject_header}\r\nMessage-ID: <abc@rakuten.co.jp>\r\nDate: Sun, 22 Nov 2026 10:15:00 +0900\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        )
        .into_bytes();
        raw.extend(body);
        raw
    }

    fn encoded_subject(text: &str) -> String {
        use base64::Engine;
        format!("=?ISO-2022-JP?B?{}?=", base64::engine::general_purpose::STANDARD.encode(iso_2022_jp(text)))
    }

    #[test]
    fn a_rakuten_order_mail_in_iso_2022_jp_gives_its_order_number() {
        let body = iso_2022_jp("楽天市場でのご注文ありがとうございます。\r\n[受注番号] 123456-20261122-0000000123\r\n[日時] 2026-11-22 10:15:00\r\n");
        let parsed =
            parse(&mail(&encoded_subject("【楽天市場】注文内容ご確認（自動配信メール）"), "ISO-2022-JP", body));
        assert_eq!(parsed.subject, "【楽天市場】注文内容ご確認（自動配信メール）");
        assert_eq!(
            parsed.classification,
            Classification::RakutenOrder { order_number: "123456-20261122-0000000123".into() }
        );
        assert_eq!(parsed.message_id.as_deref(), Some("abc@rakuten.co.jp"));
        assert_eq!(parsed.date.unwrap().to_rfc3339(), "2026-11-22T01:15:00+00:00");
    }

    #[test]
    fn a_yahoo_order_mail_in_shift_jis_gives_its_order_id() {
        let body = encoding_rs::SHIFT_JIS
            .encode("注文ID　：green-tea-jp-10000123\r\n注文日時：2026年11月22日 09時15分02秒\r\n")
            .0
            .into_owned();
        let parsed =
            parse(&mail(&encoded_subject("【Yahoo!ショッピング】注文確認：green-tea-jp-10000123"), "Shift_JIS", body));
        assert_eq!(parsed.classification, Classification::YahooOrder { order_id: "green-tea-jp-10000123".into() });
    }

    #[test]
    fn an_order_subject_without_a_number_is_rejected_with_the_reason() {
        let parsed = parse(&mail(
            &encoded_subject("【楽天市場】注文内容ご確認"),
            "ISO-2022-JP",
            iso_2022_jp("本文に番号がありません"),
        ));
        assert!(
            matches!(parsed.classification, Classification::Rejected { ref reason } if reason.contains("[受注番号]")),
            "{parsed:?}"
        );
        let forged = classify("【楽天市場】注文内容ご確認", "x@example.com", "[受注番号] 1234-<script>");
        assert!(matches!(forged, Classification::Rejected { .. }));
    }

    #[test]
    fn an_amazon_shipment_mail_names_the_mcf_order_and_tracking() {
        let body = "Your order has shipped.\nOrder #: YH-green-tea-jp-10000123\n配送業者: ヤマト運輸\n追跡番号: 123456789012\n";
        let classification = classify("Your Amazon order has shipped", "ship-confirm@amazon.co.jp", body);
        assert_eq!(
            classification,
            Classification::McfShipment {
                fulfillment_order_id: "YH-green-tea-jp-10000123".into(),
                tracking_number: Some("123456789012".into()),
                carrier: Some("ヤマト運輸".into())
            }
        );
    }

    fn amazon_mail(charset: &str, subject: &str, body: &str) -> Vec<u8> {
        let encoding = encoding_rs::Encoding::for_label(charset.as_bytes()).unwrap();
        let mut raw = format!(
            "From: Amazon.co.jp <ship-confirm@amazon.co.jp>\r\nSubject: {}\r\nMessage-ID: <s1@amazon.co.jp>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            encoded_subject(subject)
        )
        .into_bytes();
        raw.extend(encoding.encode(body).0.iter());
        raw
    }

    /// Every label Amazon's Japanese and English shipment mails use, in each charset they come in.
    #[test]
    fn every_tracking_label_is_read_in_iso_2022_jp_shift_jis_and_utf_8() {
        let labels =
            ["お問い合わせ伝票番号", "お問い合わせ番号", "伝票番号", "追跡番号", "トラッキングID", "Tracking number"];
        for charset in ["ISO-2022-JP", "Shift_JIS", "UTF-8"] {
            for label in labels {
                let body = format!(
                    "Amazon.co.jpをご利用いただき、ありがとうございます。\r\n注文番号：RK-123456-20261122-0000000123\r\n配送会社：ヤマト運輸\r\n{label}：4567-8901-2345\r\n"
                );
                let parsed = parse(&amazon_mail(charset, "Amazon.co.jp ご注文の商品を発送しました", &body));
                assert_eq!(
                    parsed.classification,
                    Classification::McfShipment {
                        fulfillment_order_id: "RK-123456-20261122-0000000123".into(),
                        tracking_number: Some("4567-8901-2345".into()),
                        carrier: Some("ヤマト運輸".into()),
                    },
                    "{charset} {label}"
                );
            }
        }
    }

    #[test]
    fn a_tracking_number_on_the_next_line_or_in_full_width_is_read_and_a_sentence_is_not() {
        let body = "ご注文 YH-green-tea-jp-10000123 を発送しました。追跡番号は下記のとおりです。\n\nお問い合わせ伝票番号:\n  ３６９０－１２３４－５６７８\n";
        let parsed = parse(&amazon_mail("UTF-8", "ご注文の商品を出荷しました", body));
        assert!(
            matches!(&parsed.classification, Classification::McfShipment { tracking_number: Some(t), .. } if t == "3690-1234-5678"),
            "{:?}",
            parsed.classification
        );
        let without = classify(
            "ご注文の商品を発送しました",
            "ship-confirm@amazon.co.jp",
            "RK-1 追跡番号はお届け後にお知らせします",
        );
        assert!(matches!(without, Classification::McfShipment { tracking_number: None, .. }), "{without:?}");
    }

    #[test]
    fn broken_mime_unknown_charsets_and_huge_attachments_do_not_crash() {
        assert!(matches!(parse(b"").classification, Classification::Rejected { .. }));
        let unknown = mail("hello", "x-unknown-charset", b"plain words".to_vec());
        assert_eq!(parse(&unknown).classification, Classification::Other);
        let broken = b"Subject: broken\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nno closing boundary".to_vec();
        assert_eq!(parse(&broken).subject, "broken");
        let mut big = b"Subject: big\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'A', 20 * 1024 * 1024));
        big.extend(b"\r\n--b--\r\n");
        let parsed = parse(&big);
        assert_eq!((parsed.subject.as_str(), parsed.size > 20_000_000), ("big", true));
    }
}
