//! The mails a shop's mailbox receives from outside, as those senders write them: Rakuten's
//! order confirmation copy (ISO-2022-JP, `[受注番号]`), Yahoo! Shopping's order confirmation
//! (Shift_JIS, `注文ID：`) and Amazon's shipment notice for a Multi-Channel order (UTF-8,
//! quoted-printable). Each is a whole RFC 5322 message with MIME headers.

use base64::Engine;
use chrono::{DateTime, FixedOffset};

/// One line of an order: (title, units, unit price in yen).
pub type Line = (String, u32, i64);

/// `【楽天市場】注文内容ご確認（自動配信メール）`, the copy of the buyer's confirmation that Rakuten
/// sends to the shop's 注文確認メール送り先 (bracket-labelled text, RMS spec §11).
pub fn rakuten_order(
    shop: &str,
    order_number: &str,
    ordered_at: DateTime<FixedOffset>,
    buyer: &str,
    settlement: &str,
    lines: &[Line],
) -> Vec<u8> {
    let mut body = format!(
        "{buyer} 様\r\n\r\nこのたびは楽天市場をご利用いただき、ありがとうございます。\r\n以下の内容でご注文を承りました。\r\n\r\n[受注番号] {order_number}\r\n[日時] {}\r\n[注文者] {buyer} 様\r\n[支払方法] {settlement}\r\n[配送方法] 宅配便\r\n[ショップ名] {shop}\r\n",
        ordered_at.format("%Y-%m-%d %H:%M:%S")
    );
    let mut total = 0;
    for (title, units, price) in lines {
        let amount = price * i64::from(*units);
        total += amount;
        body.push_str(&format!(
            "[商品]\r\n{title}\r\n価格 {}(円) x {units}(個) = {}(円)\r\n----------\r\n",
            yen(*price),
            yen(amount)
        ));
    }
    body.push_str(&format!("送料 0(円)\r\n合計 {}(円)\r\n\r\n楽天市場 https://www.rakuten.co.jp/\r\n", yen(total)));
    message(Parts {
        from: format!("{} <order@rakuten.co.jp>", encoded_word("ISO-2022-JP", &iso_2022_jp("楽天市場"))),
        subject: encoded_word("ISO-2022-JP", &iso_2022_jp("【楽天市場】注文内容ご確認（自動配信メール）")),
        message_id: format!("<{order_number}.order@rakuten.co.jp>"),
        date: ordered_at,
        content_type: "text/plain; charset=ISO-2022-JP",
        transfer_encoding: "7bit",
        body: iso_2022_jp(&body),
    })
}

/// `【Yahoo!ショッピング】注文確認：…`, the store's copy of an order (Yahoo spec §10).
pub fn yahoo_order(
    store: &str,
    order_id: &str,
    ordered_at: DateTime<FixedOffset>,
    buyer: &str,
    lines: &[Line],
) -> Vec<u8> {
    let mut body = format!(
        "{store} 様\r\n\r\n{buyer} 様からご注文がありました。\r\n\r\n注文ID\u{3000}：{order_id}\r\n注文日時：{}\r\n\r\n",
        ordered_at.format("%Y年%m月%d日 %H時%M分%S秒")
    );
    let mut total = 0;
    for (n, (title, units, price)) in lines.iter().enumerate() {
        total += price * i64::from(*units);
        body.push_str(&format!("（{}）{title}\r\n  数量：{units}\r\n  単価：{}円\r\n", n + 1, yen(*price)));
    }
    body.push_str(&format!(
        "\r\n商品の合計金額 ：{}円\r\n送料：0円\r\n手数料：0円\r\nポイント利用分：0円\r\n合計金額 ：{}円\r\n",
        yen(total),
        yen(total)
    ));
    message(Parts {
        from: format!(
            "{} <shopping-order-master@mail.yahoo.co.jp>",
            encoded_word("SHIFT_JIS", &shift_jis("Yahoo!ショッピング"))
        ),
        subject: encoded_word("SHIFT_JIS", &shift_jis(&format!("【Yahoo!ショッピング】注文確認：{store}"))),
        message_id: format!("<{order_id}.order@mail.yahoo.co.jp>"),
        date: ordered_at,
        content_type: "text/plain; charset=Shift_JIS",
        transfer_encoding: "8bit",
        body: shift_jis(&body),
    })
}

/// Amazon's notice that a Multi-Channel Fulfillment order has shipped, sent to the order's
/// notification addresses.
pub fn amazon_shipment(
    fulfillment_order_id: &str,
    carrier: &str,
    tracking_number: &str,
    shipped_at: DateTime<FixedOffset>,
) -> Vec<u8> {
    let body = format!(
        "ご注文の商品を発送しました。\r\n\r\n注文番号：{fulfillment_order_id}\r\n発送日：{}\r\n配送業者：{carrier}\r\n追跡番号：{tracking_number}\r\n\r\nAmazon.co.jp マルチチャネルサービス\r\n",
        shipped_at.format("%Y/%m/%d")
    );
    message(Parts {
        from: "Amazon.co.jp <shipment-tracking@amazon.co.jp>".into(),
        subject: encoded_word("UTF-8", "Amazon.co.jp 発送のお知らせ".as_bytes()),
        message_id: format!("<{fulfillment_order_id}.shipped@amazon.co.jp>"),
        date: shipped_at,
        content_type: "text/plain; charset=UTF-8",
        transfer_encoding: "quoted-printable",
        body: quoted_printable(body.as_bytes()),
    })
}

/// Amazon's carrier codes as its Japanese notices name them.
pub fn carrier_name(code: &str) -> &'static str {
    match code.to_ascii_uppercase().as_str() {
        "YAMATO" => "ヤマト運輸",
        "SAGAWA" => "佐川急便",
        "JAPAN POST" | "JP POST" => "日本郵便",
        _ => "その他",
    }
}

struct Parts {
    from: String,
    subject: String,
    message_id: String,
    date: DateTime<FixedOffset>,
    content_type: &'static str,
    transfer_encoding: &'static str,
    body: Vec<u8>,
}

fn message(parts: Parts) -> Vec<u8> {
    let mut raw = format!(
        "From: {}\r\nTo: undisclosed-recipients:;\r\nSubject: {}\r\nMessage-ID: {}\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: {}\r\nContent-Transfer-Encoding: {}\r\n\r\n",
        parts.from,
        parts.subject,
        parts.message_id,
        parts.date.to_rfc2822(),
        parts.content_type,
        parts.transfer_encoding
    )
    .into_bytes();
    raw.extend(parts.body);
    raw
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An RFC 2047 encoded word.
fn encoded_word(charset: &str, bytes: &[u8]) -> String {
    format!("=?{charset}?B?{}?=", b64(bytes))
}

fn iso_2022_jp(text: &str) -> Vec<u8> {
    encoding_rs::ISO_2022_JP.encode(text).0.into_owned()
}

fn shift_jis(text: &str) -> Vec<u8> {
    encoding_rs::SHIFT_JIS.encode(text).0.into_owned()
}

fn yen(amount: i64) -> String {
    let digits = amount.to_string();
    let mut out = String::new();
    for (n, c) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// RFC 2045 quoted-printable, soft line breaks before 76 characters, CRLF kept as line ends.
fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut width = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            width = 0;
            i += 2;
            continue;
        }
        let byte = bytes[i];
        let encoded = if (33..=126).contains(&byte) && byte != b'=' {
            vec![byte]
        } else if byte == b' ' && !matches!(bytes.get(i + 1), Some(b'\r') | None) {
            vec![b' ']
        } else {
            format!("={byte:02X}").into_bytes()
        };
        if width + encoded.len() > 75 {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        width += encoded.len();
        out.extend(encoded);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_with_thousands_separators() {
        assert_eq!(yen(1_234_567), "1,234,567");
        assert_eq!(yen(980), "980");
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_decodes_back() {
        let text =
            "追跡番号：123456789012 とても長い行がここに続きます。とても長い行がここに続きます。\r\nnext = line \r\n";
        let encoded = quoted_printable(text.as_bytes());
        assert!(encoded.split(|b| *b == b'\n').all(|line| line.len() <= 77), "{}", String::from_utf8_lossy(&encoded));
        let raw = [
            b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                .as_slice(),
            &encoded,
        ]
        .concat();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.body_text(0).unwrap().replace("\r\n", "\n"), text.replace("\r\n", "\n"));
    }
}
