//! Yahoo! Shopping end to end: store-API sandbox (public-key auth, XML) + SP-API sandbox + the
//! real clients and stages on a real ledger file.

mod support;

use chrono::{Duration, TimeZone, Utc};
use events::clock::jst;
use events::order::{ShippingSpeed, Status};
use events::source::SourceEvent;
use events::{Clock, FixedClock, Marketplace, OrderKey};
use mcf_ledger::cycle::Stage;
use sandbox::faults::Fault;
use sandbox::yahoo::NewYahooOrder;
use support::Shop;

/// A seller id with dashes, as many stores have.
const SELLER: &str = "green-tea-jp";

fn key(order_id: &str) -> OrderKey {
    OrderKey::new(Marketplace::Yahoo, order_id).unwrap()
}

fn events_of(shop: &Shop, kind: &str) -> Vec<SourceEvent> {
    shop.ledger
        .store()
        .read_stream("poll-yahoo")
        .unwrap()
        .iter()
        .filter(|e| e.event_type == kind)
        .map(|e| SourceEvent::decode(e, &events::ledger_event::upcasters()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_delivery_slots_and_tracking_go_through_both_sandboxes() {
    let mut shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
    shop.sandbox.set_stock("JP-TEA-100", 20);
    let today = Utc::now().with_timezone(&jst()).date_naive();
    let premium = shop.store().place(NewYahooOrder { excellent_delivery: 1, ..NewYahooOrder::card("tea-100", 1) });
    let slot_date = today + Duration::days(3);
    let slotted = shop.store().place(NewYahooOrder {
        ship_request_date: Some(slot_date),
        ship_request_time: Some("14:00～16:00".into()),
        ..NewYahooOrder::card("tea-100", 1)
    });
    let no_slot = shop.store().place(NewYahooOrder {
        ship_request_date: Some(slot_date),
        ship_request_time: Some("12:00～14:00".into()),
        ..NewYahooOrder::card("tea-100", 1)
    });
    assert!(premium.starts_with("green-tea-jp-"), "{premium}");

    shop.run(Stage::Receive).await;
    assert!(shop.state(&key(&premium)).status.is_none(), "hidden during the buyer's 10-minute cancel window");
    shop.advance(Duration::minutes(11));
    shop.run(Stage::Receive).await;
    for order in [&premium, &slotted, &no_slot] {
        assert_eq!(shop.status(&key(order)), Status::Verified, "{order}");
    }
    let details = shop.state(&key(&premium)).details.unwrap();
    assert_eq!(details.premium_deadline, Some(today + Duration::days(2)));
    assert!(
        shop.ledger.store().read_stream(&key(&premium).stream()).unwrap().iter().any(|e| e.blob.is_some()),
        "the raw XML is kept"
    );

    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    let premium_state = shop.state(&key(&premium));
    assert_eq!(premium_state.shipping_speed, Some(ShippingSpeed::Expedited));
    let reason = premium_state.speed_reason.unwrap();
    assert!(reason.contains("間に合う中で最も安い Expedited"), "{reason}");
    assert_eq!(shop.sandbox.order(&format!("YH-{premium}")).unwrap().speed, "Expedited");
    assert_eq!(shop.state(&key(&slotted)).shipping_speed, Some(ShippingSpeed::ScheduledDelivery));
    assert_eq!(shop.status(&key(&no_slot)), Status::DateUnavailable);
    shop.operator_sets(&key(&no_slot), Status::ShippingRequested, "お客様と調整、通常配送");
    shop.run(Stage::Ship).await;
    assert_eq!(shop.state(&key(&no_slot)).shipping_speed, Some(ShippingSpeed::Standard));

    shop.sandbox.advance(Duration::hours(7));
    shop.run(Stage::Monitor).await;
    let tracking = shop.state(&key(&premium)).tracking.unwrap();
    shop.store().faults().inject(
        Some("orderShipStatusChange"),
        Fault::ApplyThenHang(std::time::Duration::from_secs(3)),
        1,
    );
    let report = shop.run(Stage::Notify).await;
    assert_eq!(report[0].deferred, 1, "the first answer was lost");
    shop.run(Stage::Notify).await;
    for order in [&premium, &slotted, &no_slot] {
        assert_eq!(shop.status(&key(order)), Status::Shipped, "{order}");
    }
    let at_yahoo = shop.store().order_state(&premium).unwrap();
    assert_eq!((at_yahoo.order_status, at_yahoo.ship_status), (5, 3));
    assert_eq!(at_yahoo.company.as_deref(), Some(mcf_ledger::yahoo::mapping::ship_company_code(&tracking.carrier)));
    assert_eq!(at_yahoo.invoice.as_deref(), Some(tracking.tracking_number.as_str()));
    assert_eq!(at_yahoo.ship_date.unwrap().len(), 8, "YYYYMMDD");
    assert!(events_of(&shop, "SignatureRejected").is_empty(), "every call was signed and authorized");
    let reparsed = mcf_ledger::reparse::reparse(shop.ledger.store()).unwrap();
    assert_eq!(reparsed.orders, 3, "the kept XML of each order is read again");
    assert!(reparsed.differences.is_empty(), "{:?}", reparsed.differences);
}

/// Each cron cycle is a new process with new clients (and a new token); Yahoo counts calls per
/// API, not processes. A cycle started right after another never calls faster than the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_processes_never_call_yahoo_faster_than_its_quota() {
    let clock = FixedClock::at(Utc::now());
    let config = sandbox::yahoo::YahooSandboxConfig {
        quota: Some(sandbox::Quota::new(mcf_ledger::yahoo::PRODUCTION_RATE.0, 1)),
        ..sandbox::yahoo::YahooSandboxConfig::generate(SELLER)
    };
    let mut shop = Shop::with_yahoo_config(clock.clone(), config).await;
    shop.store().place(NewYahooOrder::card("tea-100", 1));
    shop.advance(Duration::minutes(11));
    for _ in 0..3 {
        let config = mcf_ledger::yahoo::YahooConfig {
            rate: mcf_ledger::yahoo::PRODUCTION_RATE,
            ..support::yahoo_config(
                shop.store(),
                &shop.store().config().public_key_pem(),
                std::sync::Arc::new(clock.clone()),
            )
        };
        shop.services.yahoo = Some(mcf_ledger::yahoo::YahooClient::new(config).unwrap());
        shop.run(Stage::Receive).await;
    }
    assert!(shop.store().calls("orderList") >= 3, "each process listed the orders");
    assert_eq!(shop.store().throttled(), 0, "no call came faster than the quota");
    assert_eq!(shop.status(&key(&shop.store().order_ids()[0])), Status::Verified);
}

/// A card order of one tea taken through Yahoo and MCF until Amazon's tracking is in the ledger.
async fn shipped_card_order(shop: &mut Shop) -> String {
    let id = shop.store().place(NewYahooOrder::card("tea-100", 1));
    shop.advance(Duration::minutes(11));
    shop.run(Stage::Receive).await;
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    shop.sandbox.advance(Duration::hours(7));
    shop.run(Stage::Monitor).await;
    assert!(shop.state(&key(&id)).tracking.is_some(), "tracking from Amazon");
    id
}

/// Yahoo does not complete an order by itself for every store: the completion is a write of its
/// own, retried until Yahoo shows 5, and a lost answer is read back instead of sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_completion_is_tried_again_and_a_lost_one_is_read_back() {
    use events::order::{OutsideWrite, WriteState};
    let mut shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let refused = shipped_card_order(&mut shop).await;

    shop.store().faults().inject(Some("orderStatusChange"), Fault::Status(500), 1);
    let report = shop.run(Stage::Notify).await;
    assert_eq!(report[0].deferred, 1, "the completion failed and waits for the next cycle");
    let state = shop.state(&key(&refused));
    assert_eq!(state.write(OutsideWrite::YahooShipStatus), Some(&WriteState::Done));
    assert_eq!(state.write(OutsideWrite::YahooCompletion), Some(&WriteState::Intended), "{:?}", state.writes);
    assert_ne!(shop.store().order_state(&refused).unwrap().order_status, 5, "shipped, not completed");
    let ship_calls = shop.store().calls("orderShipStatusChange");
    shop.run(Stage::Notify).await;
    assert_eq!(shop.store().order_state(&refused).unwrap().order_status, 5);
    assert_eq!(shop.state(&key(&refused)).write(OutsideWrite::YahooCompletion), Some(&WriteState::Done));
    assert_eq!(shop.store().calls("orderShipStatusChange"), ship_calls, "the shipping is not sent twice");
    assert_eq!(shop.status(&key(&refused)), Status::Shipped);

    let lost = shipped_card_order(&mut shop).await;
    shop.store().faults().inject(Some("orderStatusChange"), Fault::ApplyThenHang(std::time::Duration::from_secs(3)), 1);
    assert_eq!(shop.run(Stage::Notify).await[0].deferred, 1, "the answer was lost");
    assert_eq!(shop.state(&key(&lost)).write(OutsideWrite::YahooCompletion), Some(&WriteState::Intended));
    let completions = shop.store().calls("orderStatusChange");
    shop.run(Stage::Notify).await;
    assert_eq!(shop.store().calls("orderStatusChange"), completions, "read back, not sent again");
    assert_eq!(shop.state(&key(&lost)).write(OutsideWrite::YahooCompletion), Some(&WriteState::Done));
    assert_eq!(shop.store().order_state(&lost).unwrap().order_status, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yahoo_cancellation_cancels_the_mcf_order_and_prepaid_orders_wait_for_payment() {
    let mut shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
    shop.sandbox.set_stock("JP-TEA-100", 5);
    let cancelled = shop.store().place(NewYahooOrder::card("tea-100", 1));
    let prepaid = shop.store().place(NewYahooOrder {
        pay_method: "payment_b1".into(),
        pay_method_name: "銀行振込".into(),
        ..NewYahooOrder::card("tea-100", 1)
    });
    shop.advance(Duration::minutes(11));
    shop.run(Stage::Receive).await;
    assert_eq!(shop.status(&key(&prepaid)), Status::Received, "unpaid: not shippable yet");
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&key(&cancelled)), Status::Shipping);
    shop.store().set_status(&cancelled, 4);
    shop.store().pay(&prepaid);
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&key(&cancelled)), Status::Cancelled);
    assert_eq!(shop.sandbox.order(&format!("YH-{cancelled}")).unwrap().status, "Cancelled");
    let paid = shop.state(&key(&prepaid));
    assert_eq!(paid.status, Some(Status::Verified));
    assert!(paid.payment_confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_lists_open_orders_once_and_reads_only_those_that_changed() {
    let mut shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
    shop.sandbox.set_stock("JP-TEA-100", 100);
    let orders: Vec<String> = (0..12).map(|_| shop.store().place(NewYahooOrder::card("tea-100", 1))).collect();
    shop.advance(Duration::minutes(11));
    shop.run(Stage::Receive).await;
    shop.run(Stage::Check).await;
    assert!(orders.iter().all(|o| shop.status(&key(o)) == Status::ShippingRequested));
    let (lists, infos) = (shop.store().calls("orderList"), shop.store().calls("orderInfo"));
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.store().calls("orderList") - lists, 1, "one listing shows every open order");
    assert_eq!(shop.store().calls("orderInfo") - infos, 0, "nothing changed: nothing is read one by one");
    shop.store().set_status(&orders[3], 4);
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.store().calls("orderInfo") - infos, 1, "only the cancelled one is read");
    assert_eq!(shop.status(&key(&orders[3])), Status::Cancelled);
    assert!(orders.iter().enumerate().all(|(n, o)| n == 3 || shop.status(&key(o)) == Status::ShippingRequested));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yahoo_outage_is_backfilled_exactly_once() {
    let start = jst().with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap().with_timezone(&Utc);
    let mut shop = Shop::with_yahoo(FixedClock::at(start), SELLER).await;
    shop.run(Stage::Receive).await;
    shop.store().faults().start_outage(Fault::Status(503));
    let mut placed = Vec::new();
    for _ in 0..8 {
        placed.push(shop.store().place(NewYahooOrder::card("tea-100", 1)));
        shop.advance(Duration::minutes(30));
        assert_eq!(shop.run(Stage::Receive).await[0].deferred, 1);
    }
    assert_eq!(events_of(&shop, "OutageStarted").len(), 1);
    shop.store().faults().lift();
    shop.run(Stage::Receive).await;
    shop.run(Stage::Receive).await;
    for order in &placed {
        let detections = shop
            .ledger
            .store()
            .read_stream(&key(order).stream())
            .unwrap()
            .iter()
            .filter(|e| e.event_type == "OrderDetected")
            .count();
        assert_eq!(detections, 1, "{order}");
        assert_eq!(shop.status(&key(order)), Status::Verified);
    }
    let ended = events_of(&shop, "OutageEnded");
    assert!(
        matches!(ended.as_slice(), [SourceEvent::OutageEnded(e)] if e.backfilled as usize == placed.len()),
        "{ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_xml_refused_signatures_and_revoked_consent_are_clear_and_lose_nothing() {
    let clock = FixedClock::at(Utc::now());
    let mut shop = Shop::with_yahoo(clock.clone(), SELLER).await;
    let order = shop.store().place(NewYahooOrder::card("tea-100", 1));
    shop.advance(Duration::minutes(11));
    shop.store().faults().inject(Some("orderInfo"), Fault::Malformed, 4);
    assert_eq!(shop.run(Stage::Receive).await[0].deferred, 1);
    let failed = events_of(&shop, "PollFailed");
    assert!(matches!(&failed[0], SourceEvent::PollFailed(f) if f.error.contains("unreadable orderInfo")), "{failed:?}");
    shop.run(Stage::Receive).await;
    assert_eq!(shop.status(&key(&order)), Status::Verified, "fetched again whole");

    // A key Yahoo does not know: calls still answer, the status header says why.
    let other_key = sandbox::yahoo::YahooSandboxConfig::generate(SELLER).public_key_pem();
    shop.services.yahoo = Some(
        mcf_ledger::yahoo::YahooClient::new(support::yahoo_config(
            shop.store(),
            &other_key,
            std::sync::Arc::new(clock.clone()),
        ))
        .unwrap(),
    );
    shop.run(Stage::Receive).await;
    let rejected = events_of(&shop, "SignatureRejected");
    assert!(
        matches!(rejected.as_slice(), [SourceEvent::SignatureRejected(r)] if r.status == "invalid-authorize-value"),
        "{rejected:?}"
    );
    // Without a good signature the order APIs end 12 hours after consent.
    shop.advance(Duration::hours(13));
    shop.run(Stage::Receive).await;
    let failed = events_of(&shop, "PollFailed");
    assert!(matches!(failed.last().unwrap(), SourceEvent::PollFailed(f) if f.error.contains("px-04102")), "{failed:?}");

    shop.store().revoke_consent();
    shop.services.yahoo = Some(
        mcf_ledger::yahoo::YahooClient::new(support::yahoo_config(
            shop.store(),
            &shop.store().config().public_key_pem(),
            std::sync::Arc::new(clock.clone()),
        ))
        .unwrap(),
    );
    shop.run(Stage::Receive).await;
    let failed = events_of(&shop, "PollFailed");
    assert!(
        matches!(failed.last().unwrap(), SourceEvent::PollFailed(f) if f.error.contains("re-consent")),
        "{failed:?}"
    );
    assert_eq!(shop.status(&key(&order)), Status::Verified, "nothing recorded was lost");
    assert!(clock.now() > Utc::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_like_yahoo() {
    let shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
    let http = reqwest::Client::new();
    let url = format!("{}/orderList", shop.store().api_base_url());
    let body = "<Req><Search><Condition><PublicationTimeFrom>2026-11-22</PublicationTimeFrom></Condition><Field>OrderId</Field></Search><SellerId>green-tea-jp</SellerId></Req>";
    let no_token = http.post(&url).body(body).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(no_token.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let token: serde_json::Value = http
        .post(format!("{}/token", shop.store().auth_base_url()))
        .basic_auth("dj00sandbox-client", Some("sandbox-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "sandbox-refresh-token")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let bad_time = http.post(&url).bearer_auth(&token).body(body).send().await.unwrap();
    assert_eq!(bad_time.status(), 400);
    assert_eq!(bad_time.headers()["x-sws-authorize-status"], "none");
    let text = bad_time.text().await.unwrap();
    assert!(text.contains("<Code>od90101</Code>"), "{text}");
    let other_seller = body.replace("green-tea-jp", "someone-else").replace("2026-11-22", "20261122000000");
    let forbidden = http.post(&url).bearer_auth(&token).body(other_seller).send().await.unwrap();
    assert_eq!(forbidden.status(), 403);
    assert!(forbidden.text().await.unwrap().contains("px-04307"));

    // setStock / getStock: form bodies, comma lists, per-code results (stock-apis.md §2).
    shop.store().list_item("item-a", 1);
    let stock = |operation: &str, form: &str| {
        http.post(format!("{}/{operation}", shop.store().api_base_url()))
            .bearer_auth(&token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("seller_id=green-tea-jp&{form}"))
            .send()
    };
    let mismatch = stock("setStock", "item_code=item-a%2Citem-b&quantity=1").await.unwrap();
    assert_eq!(mismatch.status(), 400);
    assert!(mismatch.text().await.unwrap().contains("st-02105"));
    let twice = stock("setStock", "item_code=item-a%2Citem-a&quantity=1%2C2").await.unwrap();
    assert!(twice.text().await.unwrap().contains("st-02103"));
    let overdraft = stock("setStock", "item_code=item-a&quantity=1&allow_overdraft=2").await.unwrap();
    assert!(overdraft.text().await.unwrap().contains("st-02106"));
    let partial = stock("setStock", "item_code=item-a%2Citem-b&quantity=5%2C33.0&allow_overdraft=0%2C0").await.unwrap();
    assert_eq!(partial.status(), 207, "one code refused, the other applied");
    let text = partial.text().await.unwrap();
    assert!(text.contains("<ItemCode>item-a</ItemCode><SubCode></SubCode><Quantity>5</Quantity>"), "{text}");
    assert!(text.contains("<ErrorCode>st-02104</ErrorCode>"), "{text}");
    let added = stock("setStock", "item_code=item-a&quantity=%2B3").await.unwrap();
    assert_eq!(added.status(), 200, "+n adds");
    assert_eq!(shop.store().stock("item-a"), Some((Some(8), false)));
    let read = stock("getStock", "item_code=item-a%2Cno-such-item").await.unwrap().text().await.unwrap();
    assert!(read.contains("ok=\"1\" ng=\"1\""), "{read}");
    assert!(read.contains("<ItemCode>no-such-item</ItemCode><SubCode></SubCode><Status>0</Status>"), "{read}");
}

/// STOCK_SYNC=on against Yahoo's setStock/getStock: absolute quantities with
/// `allow_overdraft=0` sent explicitly (the store's default here lets buyers order past stock),
/// read back; a code Yahoo has no item for is an error on its row, shown and alerted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_sync_publishes_to_yahoo_with_overdraft_off_and_flags_an_unknown_code() {
    use events::stock::{published_stream, StockEvent};
    let mut shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
    let master = shop.services.sku_master.path().to_path_buf();
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("SKUMapping").unwrap();
    let rows: [[&str; 4]; 3] = [
        ["marketplace_sku", "seller_sku", "quantity", "yahoo_item_code"],
        ["tea-100", "JP-TEA-100", "1", "green-tea:100g"],
        ["cup", "JP-CUP", "1", "arita-cupp"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *value).unwrap();
        }
    }
    workbook.save(&master).unwrap();
    shop.store().allow_overdraft(None, true);
    shop.store().list_item("green-tea:100g", 99);
    shop.store().list_item("arita-cup", 99);
    shop.sandbox.set_stock("JP-TEA-100", 12);
    shop.sandbox.set_stock("JP-CUP", 3);
    shop.services.stock =
        mcf_ledger::config::StockSettings { sync: mcf_ledger::config::StockSync::On, buffer: 2, brake_percent: 30 };
    shop.run(Stage::Stock).await;
    assert_eq!(shop.store().stock("green-tea:100g"), Some((Some(10), false)), "12 less 2, overdraft off");
    assert_eq!(shop.store().stock("arita-cup"), Some((Some(99), true)), "the real item is untouched by a typo");
    let done =
        shop.ledger.store().read_stream_of_types(&published_stream(Marketplace::Yahoo), &["StockWriteDone"]).unwrap();
    let StockEvent::StockWriteDone(done) = StockEvent::decode(&done[0], &events::ledger_event::upcasters()).unwrap()
    else {
        panic!("a done write")
    };
    assert_eq!(done.verified, ["tea-100"]);
    assert_eq!(done.problems[0].marketplace_sku, "cup");
    assert!(done.problems[0].problem.contains("キーの誤り"), "{}", done.problems[0].problem);

    // The typo is not written every run, and the admin is told once.
    let writes = shop.store().stock_writes();
    shop.run(Stage::Stock).await;
    assert_eq!(shop.store().stock_writes(), writes);
    for _ in 0..2 {
        shop.run(Stage::Stale).await;
    }
    let alerts = shop.ledger.store().read_stream_of_types("system", &["AlertIntended"]).unwrap();
    let stock_alerts: Vec<_> = alerts.iter().filter(|a| a.data.contains("stock_problems")).collect();
    assert_eq!(stock_alerts.len(), 1, "alerted once");
    assert!(stock_alerts[0].data.contains("arita-cupp"));
}

/// A ship status whose answer was lost, on an order the buyer then cancelled (Amazon had
/// shipped: the operator decides): Yahoo's copy gives the write's outcome, done when Yahoo
/// shows it, failed when it does not; it is never sent again for an order with the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ship_status_whose_order_was_cancelled_meanwhile_gets_its_outcome_from_yahoo() {
    use events::order::{OutsideWrite, WriteState};
    for applied in [true, false] {
        let mut shop = Shop::with_yahoo(FixedClock::at(Utc::now()), SELLER).await;
        shop.sandbox.set_stock("JP-TEA-100", 10);
        let id = shipped_card_order(&mut shop).await;
        let fault = if applied { Fault::ApplyThenHang(std::time::Duration::from_secs(3)) } else { Fault::Status(500) };
        shop.store().faults().inject(Some("orderShipStatusChange"), fault, 1);
        shop.run(Stage::Notify).await;
        assert_eq!(shop.state(&key(&id)).write(OutsideWrite::YahooShipStatus), Some(&WriteState::Intended));
        shop.store().set_status(&id, 4);
        shop.run(Stage::Monitor).await;
        assert_eq!(shop.status(&key(&id)), Status::Error, "cancelled after Amazon shipped: the operator decides");

        let sent = shop.store().calls("orderShipStatusChange");
        shop.run(Stage::Notify).await;
        let state = shop.state(&key(&id));
        match state.write(OutsideWrite::YahooShipStatus) {
            Some(WriteState::Done) => assert!(applied, "done only when Yahoo shows it"),
            Some(WriteState::Failed(message)) => {
                assert!(!applied, "failed only when Yahoo does not show it");
                assert!(message.contains("再送しません"), "{message}");
            }
            other => panic!("applied: {applied}: no outcome recorded: {other:?}"),
        }
        assert_eq!(state.status, Some(Status::Error), "still with the operator");
        assert_eq!(shop.store().calls("orderShipStatusChange"), sent, "nothing sent again");
        assert_eq!(shop.store().order_state(&id).unwrap().invoice.is_some(), applied);
    }
}
