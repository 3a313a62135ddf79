//! The demo's buyers: the guide's cases first, then a seeded stream of ordinary orders with
//! the odd exception; they pay and cancel when their time comes. Each order's notice reaches
//! the shop's mailbox as the marketplace sends it, and Amazon mails the shop when an MCF order
//! has shipped.

use super::SHOP_MAIL;
use chrono::{Duration as ChronoDuration, Utc};
use events::OrderKey;
use sandbox::amazon::{package_tracking, AmazonSandbox};
use sandbox::mailbox::{notices, MailSandbox};
use sandbox::rakuten::{NewRakutenOrder, RakutenSandbox};
use sandbox::yahoo::{NewYahooOrder, YahooSandbox};
use std::collections::BTreeSet;
use std::time::Duration;

const SHOP_NAME: &str = "緑茶本舗 (demo)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    RakutenCard,
    RakutenPrepaid,
    YahooCard,
    YahooPremium,
    YahooSlot,
    YahooSlotNotOffered,
    OutOfStockSku,
    UnmappedSku,
    AddressTooLong,
    BuyerCancels,
}

const FIRST_CASES: [Case; 10] = [
    Case::RakutenCard,
    Case::RakutenPrepaid,
    Case::YahooCard,
    Case::YahooPremium,
    Case::YahooSlot,
    Case::YahooSlotNotOffered,
    Case::OutOfStockSku,
    Case::UnmappedSku,
    Case::AddressTooLong,
    Case::BuyerCancels,
];

/// After the first round, mostly ordinary orders with the odd exception.
fn random_case(rng: &mut fastrand::Rng) -> Case {
    match rng.u32(0..100) {
        0..=29 => Case::RakutenCard,
        30..=54 => Case::YahooCard,
        55..=64 => Case::YahooPremium,
        65..=74 => Case::YahooSlot,
        75..=82 => Case::RakutenPrepaid,
        83..=86 => Case::YahooSlotNotOffered,
        87..=90 => Case::OutOfStockSku,
        91..=93 => Case::UnmappedSku,
        94..=96 => Case::AddressTooLong,
        _ => Case::BuyerCancels,
    }
}

const FAMILY: [&str; 8] = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村"];
const GIVEN: [&str; 8] = ["一郎", "花子", "健太", "美咲", "翔", "陽菜", "大輔", "さくら"];
const PLACES: [(&str, &str, &str); 4] = [
    ("東京都", "渋谷区", "神宮前1-2-3"),
    ("大阪府", "大阪市北区", "梅田3-1-1"),
    ("北海道", "札幌市中央区", "北1条西2-1"),
    ("福岡県", "福岡市博多区", "博多駅前2-2-1"),
];
/// (marketplace SKU, title); mapped in the sample master.xlsx except where noted.
const ITEMS: [(&str, &str, i64); 4] = [
    ("tea-100", "有機緑茶 100g", 1280),
    ("tea-3pack", "有機緑茶 100g 3個セット", 3480),
    ("cup", "湯呑み 有田焼", 2200),
    ("tea-cup-gift", "有機緑茶と有田焼湯呑み2客のギフトセット", 5980),
];

/// The servers the buyers order from and the mail goes through.
pub(super) struct World<'a> {
    pub rakuten: &'a RakutenSandbox,
    pub yahoo: &'a YahooSandbox,
    pub amazon: &'a AmazonSandbox,
    pub mail: &'a MailSandbox,
}

pub(super) struct Buyers<'a> {
    rng: fastrand::Rng,
    rakuten: &'a RakutenSandbox,
    yahoo: &'a YahooSandbox,
    amazon: &'a AmazonSandbox,
    mail: &'a MailSandbox,
    /// How many orders to place in all.
    orders: u32,
    placed: u32,
    next_order: std::time::Instant,
    /// MCF orders whose shipment notice Amazon has mailed.
    shipment_mailed: BTreeSet<String>,
    /// Prepaid orders to pay, and orders the buyer cancels, when their time comes.
    to_pay: Vec<(std::time::Instant, String)>,
    to_cancel: Vec<String>,
}

impl<'a> Buyers<'a> {
    pub fn new(seed: u64, orders: u32, world: World<'a>) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            rakuten: world.rakuten,
            yahoo: world.yahoo,
            amazon: world.amazon,
            mail: world.mail,
            orders,
            placed: 0,
            next_order: std::time::Instant::now(),
            shipment_mailed: BTreeSet::new(),
            to_pay: vec![],
            to_cancel: vec![],
        }
    }

    pub fn placed(&self) -> u32 {
        self.placed
    }

    /// Places the next order when its time has come: the guide's cases arrive together, then
    /// an order every few seconds until all are placed.
    pub fn order_when_due(&mut self) {
        if self.placed >= self.orders || std::time::Instant::now() < self.next_order {
            return;
        }
        let case = match FIRST_CASES.get(self.placed as usize) {
            Some(case) => *case,
            None => random_case(&mut self.rng),
        };
        self.place(case);
        let gap = if self.placed < FIRST_CASES.len() as u32 { 0 } else { self.rng.u64(1_000..5_000) };
        self.next_order += Duration::from_millis(gap);
    }
}

impl Buyers<'_> {
    fn buyer(&mut self) -> (&'static str, &'static str, (&'static str, &'static str, &'static str)) {
        (
            FAMILY[self.rng.usize(..FAMILY.len())],
            GIVEN[self.rng.usize(..GIVEN.len())],
            PLACES[self.rng.usize(..PLACES.len())],
        )
    }

    fn item(&mut self) -> (String, String, u32, i64) {
        let (sku, title, price) = ITEMS[self.rng.usize(..ITEMS.len())];
        (sku.to_owned(), title.to_owned(), self.rng.u32(1..=3), price)
    }

    fn place(&mut self, case: Case) {
        let (family, given, (prefecture, city, street)) = self.buyer();
        let now = std::time::Instant::now();
        let today = Utc::now().with_timezone(&events::clock::jst()).date_naive();
        let rakuten = |item: (String, String, u32, i64)| NewRakutenOrder {
            buyer_family: family.into(),
            buyer_first: given.into(),
            prefecture: prefecture.into(),
            city: city.into(),
            sub_address: street.into(),
            items: vec![item],
            ..NewRakutenOrder::card("tea-100", 1)
        };
        let yahoo = |item: (String, String, u32, i64)| NewYahooOrder {
            ship_last: family.into(),
            ship_first: given.into(),
            prefecture: prefecture.into(),
            city: city.into(),
            address1: street.into(),
            items: vec![item],
            ..NewYahooOrder::card("tea-100", 1)
        };
        // Yahoo shows an order only after the buyer's 10-minute cancel window: the demo's
        // Yahoo buyers ordered just before that window closed.
        let published = Utc::now() - ChronoDuration::minutes(10) - ChronoDuration::seconds(5);
        let item = self.item();
        let id = match case {
            Case::RakutenCard => self.rakuten.place(rakuten(item)),
            Case::RakutenPrepaid => {
                let number = self.rakuten.place(NewRakutenOrder {
                    settlement_code: 9,
                    settlement_name: "銀行振込".into(),
                    ..rakuten(item)
                });
                self.to_pay.push((now + Duration::from_secs(20), number.clone()));
                number
            }
            Case::YahooCard => self.yahoo.place_at(yahoo(item), published),
            Case::YahooPremium => {
                self.yahoo.place_at(NewYahooOrder { excellent_delivery: 1, ..yahoo(item) }, published)
            }
            Case::YahooSlot => self.yahoo.place_at(
                NewYahooOrder {
                    ship_request_date: Some(today + ChronoDuration::days(3)),
                    ship_request_time: Some("14:00～16:00".into()),
                    ..yahoo(item)
                },
                published,
            ),
            Case::YahooSlotNotOffered => self.yahoo.place_at(
                NewYahooOrder {
                    ship_request_date: Some(today + ChronoDuration::days(3)),
                    ship_request_time: Some("12:00～14:00".into()),
                    ..yahoo(item)
                },
                published,
            ),
            Case::OutOfStockSku => {
                self.rakuten.place(rakuten(("matcha-30".into(), "抹茶 30g (在庫切れ)".into(), 1, 1980)))
            }
            Case::UnmappedSku => {
                self.yahoo.place_at(yahoo(("new-item-2027".into(), "新商品 (マスタ未登録)".into(), 1, 1500)), published)
            }
            Case::AddressTooLong => self.yahoo.place_at(
                NewYahooOrder {
                    // Longer than Amazon's three 60-character lines: createFulfillmentOrder
                    // answers 400 and the operator corrects the address.
                    address1: "大手町一丁目二番三号 大手町グランドセントラルタワー北館アネックス棟 二十三階 受付気付 総務部 御中 ".repeat(3),
                    ..yahoo(item)
                },
                published,
            ),
            Case::BuyerCancels => {
                // The buyer cancels once the shop has seen the order (RMS then says 900).
                let number = self.rakuten.place(rakuten(item));
                self.to_cancel.push(number.clone());
                number
            }
        };
        self.placed += 1;
        tracing::info!(order = %id, ?case, "demo: a buyer placed an order");
        self.mail_order_notice(&id);
    }

    /// The marketplace's order notice to the shop, as its mail servers send it.
    fn mail_order_notice(&self, id: &str) {
        let lines = |items: &[(String, String, u32, i64)]| -> Vec<notices::Line> {
            items.iter().map(|(_, title, units, price)| (title.clone(), *units, *price)).collect()
        };
        let jst = |at: chrono::DateTime<Utc>| at.with_timezone(&events::clock::jst()).fixed_offset();
        let notice = if let Some((order, at)) = self.rakuten.placed(id) {
            let buyer = format!("{} {}", order.buyer_family, order.buyer_first);
            notices::rakuten_order(SHOP_NAME, id, jst(at), &buyer, &order.settlement_name, &lines(&order.items))
        } else if let Some((order, at)) = self.yahoo.placed(id) {
            let buyer = format!("{} {}", order.ship_last, order.ship_first);
            notices::yahoo_order(SHOP_NAME, id, jst(at), &buyer, &lines(&order.items))
        } else {
            return;
        };
        self.mail.deliver(SHOP_MAIL, notice);
    }

    /// Amazon mails the notification address once an MCF order has shipped.
    fn mail_shipment_notices(&mut self) {
        for order in self.amazon.orders() {
            let notify_shop = order.request["notificationEmails"]
                .as_array()
                .is_some_and(|emails| emails.iter().any(|e| e.as_str() == Some(SHOP_MAIL)));
            if order.status != "Complete" || !notify_shop || self.shipment_mailed.contains(&order.id) {
                continue;
            }
            let (carrier, tracking) = package_tracking(&order.id);
            let now = Utc::now().with_timezone(&events::clock::jst()).fixed_offset();
            self.mail.deliver(
                SHOP_MAIL,
                notices::amazon_shipment(&order.id, notices::carrier_name(carrier), &tracking, now),
            );
            tracing::info!(mcf = %order.id, "demo: Amazon mailed the shipment notice");
            self.shipment_mailed.insert(order.id);
        }
    }

    /// Buyers pay and cancel when their time comes.
    pub fn follow_up(&mut self, ledger: &events::EventStore) {
        self.mail_shipment_notices();
        let now = std::time::Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.to_pay).into_iter().partition(|(at, _)| *at <= now);
        self.to_pay = later;
        for (_, number) in due {
            self.rakuten.pay(&number);
            tracing::info!(order = %number, "demo: the buyer paid by bank transfer");
        }
        let seen = |number: &String| {
            OrderKey::new(events::Marketplace::Rakuten, number)
                .ok()
                .and_then(|key| ledger.stream_version(&key.stream()).ok())
                .is_some_and(|version| version > 0)
        };
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.to_cancel).into_iter().partition(seen);
        self.to_cancel = later;
        for number in due {
            self.rakuten.cancel(&number);
            tracing::info!(order = %number, "demo: the buyer cancelled");
        }
    }
}
