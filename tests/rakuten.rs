//! Rakuten end to end: RMS sandbox + Amazon sandbox + the real clients and stages on a real
//! ledger file, including the 2020-02-10 outage replayed in sandbox time.

mod support;

use chrono::{Duration, TimeZone, Utc};
use events::clock::jst;
use events::order::{EmailState, OutsideWrite, Status, WriteState};
use events::source::SourceEvent;
use events::{Clock, FixedClock, Marketplace, OrderKey};
use mcf_ledger::cycle::Stage;
use mcf_ledger::rakuten::RakutenClient;
use sandbox::faults::Fault;
use sandbox::rakuten::{NewRakutenOrder, RakutenSandboxConfig};
use support::Shop;

fn key(number: &str) -> OrderKey {
    OrderKey::new(Marketplace::Rakuten, number).unwrap()
}

fn now_clock() -> FixedClock {
    FixedClock::at(Utc::now())
}

fn source_events(shop: &Shop, kind: &str) -> Vec<SourceEvent> {
    shop.ledger
        .store()
        .read_stream("poll-rakuten")
        .unwrap()
        .iter()
        .filter(|e| e.event_type == kind)
        .map(|e| SourceEvent::decode(e, &events::ledger_event::upcasters()).unwrap())
        .collect()
}

/// Five orders shipped at once: read with one getOrder, reported with one
/// updateOrderShippingAsync, its result asked for once RMS has processed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_reports_a_page_of_orders_in_one_async_call_and_records_its_result() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let numbers = shipped_card_orders(&mut shop, 5).await;
    let reads = shop.rms().calls("getOrder");
    shop.run(Stage::Notify).await;
    assert_eq!(shop.rms().calls("getOrder") - reads, 1, "five orders, one getOrder page");
    assert_eq!(shop.rms().calls("updateOrderShippingAsync"), 1, "five orders, one async call");
    for number in &numbers {
        let state = shop.state(&key(number));
        assert_eq!(state.status, Some(Status::Shipping), "accepted, not yet processed");
        assert!(matches!(state.write(OutsideWrite::RakutenShipping), Some(WriteState::Submitted(_))));
    }

    shop.advance(Duration::seconds(3));
    shop.run(Stage::Notify).await;
    assert_eq!(shop.rms().calls("getResultUpdateOrderShippingAsync"), 1, "one result call for the request");
    assert_eq!(shop.rms().calls("updateOrderShippingAsync"), 1, "nothing sent twice");
    for number in &numbers {
        assert_eq!(shop.status(&key(number)), Status::Shipped);
        assert_eq!(shop.state(&key(number)).write(OutsideWrite::RakutenShipping), Some(&WriteState::Done));
        assert_eq!(shop.rms().shippings(number).len(), 1);
        assert_eq!(shop.rms().progress(number), Some(500));
    }
}

/// `count` card orders taken through RMS and MCF until Amazon's tracking is in the ledger.
async fn shipped_card_orders(shop: &mut Shop, count: usize) -> Vec<String> {
    shop.sandbox.set_stock("JP-TEA-100", 100);
    let numbers: Vec<String> = (0..count).map(|_| shop.rms().place(NewRakutenOrder::card("tea-100", 1))).collect();
    shop.run(Stage::Receive).await;
    shop.advance(Duration::minutes(6));
    shop.run(Stage::Monitor).await;
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    shop.sandbox.advance(Duration::hours(7));
    shop.run(Stage::Monitor).await;
    assert!(numbers.iter().all(|n| shop.state(&key(n)).tracking.is_some()));
    numbers
}

/// A report that never reached RMS (the call failed before RMS took it) is not sent again while
/// RMS could still be processing it, then once, after the settle time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_an_answer_is_sent_again_only_after_rms_had_time_to_process_it() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let number = shipped_card_orders(&mut shop, 1).await.remove(0);
    shop.rms().faults().inject(Some("updateOrderShippingAsync"), Fault::Status(500), 1);
    shop.run(Stage::Notify).await;
    let state = shop.state(&key(&number));
    assert_eq!(state.write(OutsideWrite::RakutenShipping), Some(&WriteState::Intended));

    shop.advance(Duration::minutes(5));
    let report = shop.run(Stage::Notify).await;
    assert_eq!(report[0].deferred, 1, "{report:?}");
    assert_eq!(shop.rms().calls("updateOrderShippingAsync"), 1, "not sent again within the settle time");

    shop.advance(Duration::minutes(6));
    shop.run(Stage::Notify).await;
    assert_eq!(shop.rms().calls("updateOrderShippingAsync"), 2, "sent again after it");
    shop.advance(Duration::seconds(3));
    shop.run(Stage::Notify).await;
    assert_eq!(shop.status(&key(&number)), Status::Shipped);
    assert_eq!(shop.rms().shippings(&number).len(), 1);
}

/// RMS accepts the request, then refuses one order when processing it (cancelled meanwhile):
/// that order goes to the operator with RMS's message; the other is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_rms_refuses_while_processing_goes_to_the_operator_with_its_message() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let numbers = shipped_card_orders(&mut shop, 2).await;
    shop.run(Stage::Notify).await;
    shop.rms().cancel(&numbers[0]);
    shop.advance(Duration::seconds(3));
    shop.run(Stage::Notify).await;
    let refused = shop.state(&key(&numbers[0]));
    assert_eq!(refused.status, Some(Status::Error));
    let error = refused.error.clone().expect("the operator is told");
    assert!(error.message.contains("発送完了報告が出来る状態ではありませんでした"), "{}", error.message);
    assert!(matches!(refused.write(OutsideWrite::RakutenShipping), Some(WriteState::Failed(_))));
    assert_eq!(shop.status(&key(&numbers[1])), Status::Shipped);
}

/// The buyer cancels after RMS processed the report but before the ledger learnt its outcome
/// (its result not yet asked for, or the answer to the call itself lost): Amazon has shipped, so
/// the order goes to the operator, and the ledger still records the report RMS applied, from
/// the async result or by reading the order back. Nothing is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_whose_order_was_cancelled_meanwhile_gets_its_outcome_from_rms() {
    for answer_lost in [false, true] {
        let mut shop = Shop::with_rakuten(now_clock()).await;
        let number = shipped_card_orders(&mut shop, 1).await.remove(0);
        if answer_lost {
            let hang = Fault::ApplyThenHang(std::time::Duration::from_secs(3));
            shop.rms().faults().inject(Some("updateOrderShippingAsync"), hang, 1);
        }
        shop.run(Stage::Notify).await;
        shop.advance(Duration::seconds(3));
        assert_eq!(shop.rms().shippings(&number).len(), 1, "RMS processed the report");
        shop.rms().cancel(&number);
        shop.run(Stage::Monitor).await;
        let state = shop.state(&key(&number));
        assert_eq!(state.status, Some(Status::Error), "cancelled after Amazon shipped: the operator decides");
        assert!(state.write(OutsideWrite::RakutenShipping).is_some_and(WriteState::awaits_outcome));

        shop.run(Stage::Notify).await;
        let state = shop.state(&key(&number));
        assert_eq!(
            state.write(OutsideWrite::RakutenShipping),
            Some(&WriteState::Done),
            "answer lost: {answer_lost}; RMS applied it"
        );
        assert_eq!(state.status, Some(Status::Error), "still with the operator");
        assert_eq!(shop.rms().shippings(&number).len(), 1);
        assert_eq!(shop.rms().calls("updateOrderShippingAsync"), 1, "nothing sent again");
        let read_back = if answer_lost { "getOrder" } else { "getResultUpdateOrderShippingAsync" };
        assert!(shop.rms().calls(read_back) > 0, "{read_back}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_order_goes_from_rms_to_mcf_and_its_tracking_back_to_rms_once() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let number = shop.rms().place(NewRakutenOrder::card("tea-100", 2));
    let order = key(&number);

    shop.run(Stage::Receive).await;
    let state = shop.state(&order);
    assert_eq!(state.status, Some(Status::AwaitingConfirmation));
    assert!(state.marketplace_confirmed, "the first step: confirmOrder");
    assert!(state.emails.is_empty(), "a card order gets no email from us");
    assert_eq!(shop.rms().progress(&number), Some(200));
    assert_eq!(state.details.as_ref().unwrap().ship_to.line1, "玉川1-14-1");

    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&order), Status::AwaitingConfirmation, "Rakuten is still processing (200)");
    shop.advance(Duration::minutes(6));
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&order), Status::Verified, "300 発送待ち");

    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&order), Status::Shipping);
    let mcf = format!("RK-{number}");
    assert!(shop.sandbox.order(&mcf).is_some());
    shop.sandbox.advance(Duration::hours(7));
    shop.run(Stage::Monitor).await;
    let tracking = shop.state(&order).tracking.expect("tracking from Amazon");

    // The answer to updateOrderShippingAsync is lost: RMS took it, we could not know.
    let hang = Fault::ApplyThenHang(std::time::Duration::from_secs(3));
    shop.rms().faults().inject(Some("updateOrderShippingAsync"), hang, 1);
    let report = shop.run(Stage::Notify).await;
    assert_eq!(report[0].deferred, 1);
    assert_eq!(shop.status(&order), Status::Shipping);
    shop.run(Stage::Notify).await;
    assert_eq!(shop.status(&order), Status::Shipping, "RMS has not processed it yet: nothing sent");
    shop.advance(Duration::seconds(3));
    shop.run(Stage::Notify).await;
    assert_eq!(shop.status(&order), Status::Shipped);
    let records = shop.rms().shippings(&number);
    assert_eq!(records.len(), 1, "never a second shipping record: {records:?}");
    let expected_company = mcf_ledger::rakuten::mapping::delivery_company(&tracking.carrier);
    assert_eq!((records[0].0.as_str(), records[0].1.as_str()), (expected_company, tracking.tracking_number.as_str()));
    assert_eq!(records[0].2.len(), 10, "YYYY-MM-DD");
    assert_eq!(shop.rms().progress(&number), Some(500));
    assert_eq!(shop.rms().calls("updateOrderShippingAsync"), 1, "the retry read RMS and found its record");
}

/// Each cron cycle is a new process with new clients; RMS counts calls, not processes. A cycle
/// started right after another never calls faster than the quota (the pace starts empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_processes_never_call_rms_faster_than_its_quota() {
    let quota = sandbox::Quota::new(mcf_ledger::rakuten::PRODUCTION_RATE.0, 1);
    let mut shop =
        Shop::with_rakuten_config(now_clock(), RakutenSandboxConfig { quota: Some(quota), ..Default::default() }).await;
    shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    for _ in 0..3 {
        let config = mcf_ledger::rakuten::RakutenConfig {
            rate: mcf_ledger::rakuten::PRODUCTION_RATE,
            ..support::rakuten_config(shop.rms())
        };
        shop.services.rakuten = Some(RakutenClient::new(config).unwrap());
        shop.run(Stage::Receive).await;
    }
    let calls: u64 = ["searchOrder", "getOrder", "confirmOrder"].iter().map(|op| shop.rms().calls(op)).sum();
    assert!(calls >= 5, "three processes called RMS: {calls}");
    assert_eq!(shop.rms().throttled(), 0, "no call came faster than one a second");
}

/// confirmOrder is a write: when its answer is lost, the next cycle reads the order (getOrder)
/// and records it confirmed from RMS's own progress, without calling confirmOrder again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_confirm_answer_is_read_back_and_never_sent_twice() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let number = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    let order = key(&number);
    shop.rms().faults().inject(Some("confirmOrder"), Fault::ApplyThenHang(std::time::Duration::from_secs(3)), 1);
    shop.run(Stage::Receive).await;
    let state = shop.state(&order);
    assert_eq!(state.write(OutsideWrite::RakutenConfirm), Some(&WriteState::Intended), "{:?}", state.writes);
    assert!(!state.marketplace_confirmed, "not known yet");
    assert_eq!(shop.rms().progress(&number), Some(200), "RMS took it");
    shop.run(Stage::Receive).await;
    shop.run(Stage::Monitor).await;
    let state = shop.state(&order);
    assert_eq!(state.write(OutsideWrite::RakutenConfirm), Some(&WriteState::Done));
    assert!(state.marketplace_confirmed);
    assert_eq!(shop.rms().calls("confirmOrder"), 1, "read back, never sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_order_gets_the_payment_guidance_once_and_ships_only_when_paid() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let number = shop.rms().place(NewRakutenOrder::prepaid("tea-100", 1));
    let order = key(&number);
    shop.run(Stage::Receive).await;
    let state = shop.state(&order);
    assert_eq!(state.status, Some(Status::AwaitingConfirmation));
    assert_eq!(state.emails.len(), 1);
    assert_eq!((state.emails[0].kind.as_str(), &state.emails[0].state), ("payment_guidance", &EmailState::Intended));

    for _ in 0..3 {
        shop.advance(Duration::minutes(30));
        shop.run(Stage::Receive).await;
        shop.run(Stage::Monitor).await;
    }
    let state = shop.state(&order);
    assert_eq!(state.status, Some(Status::AwaitingConfirmation), "unpaid: stays");
    assert_eq!(state.emails.len(), 1, "the guidance email is intended once");

    shop.rms().pay(&number);
    shop.run(Stage::Monitor).await;
    let state = shop.state(&order);
    assert_eq!(state.status, Some(Status::Verified));
    assert!(state.payment_confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_orders_are_held_and_cancellations_cancel_at_amazon_too() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let flagged =
        shop.rms().place(NewRakutenOrder { rakuten_confirm_flag: true, ..NewRakutenOrder::card("tea-100", 1) });
    let cancelled_early = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    let cancelled_shipping = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    shop.run(Stage::Receive).await;
    let held = shop.state(&key(&flagged));
    assert!(held.hold.as_deref().unwrap().contains("楽天確認中"), "{:?}", held.hold);
    assert!(!held.marketplace_confirmed, "a held order is not confirmed");

    shop.advance(Duration::minutes(6));
    shop.run(Stage::Monitor).await;
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&key(&cancelled_shipping)), Status::Shipping);
    assert_eq!(shop.status(&key(&flagged)), Status::AwaitingConfirmation);

    shop.rms().cancel(&cancelled_early);
    shop.rms().cancel(&cancelled_shipping);
    shop.rms().set_confirm_flag(&flagged, false);
    shop.run(Stage::Monitor).await;
    assert_eq!(
        shop.status(&key(&cancelled_shipping)),
        Status::Cancelled,
        "watch, then the MCF cancel, in one monitor run"
    );
    assert_eq!(shop.sandbox.order(&format!("RK-{cancelled_shipping}")).unwrap().status, "Cancelled");
    assert_eq!(shop.status(&key(&cancelled_early)), Status::Cancelled);
    assert!(shop.state(&key(&flagged)).hold.is_none(), "released");
    shop.run(Stage::Receive).await;
    shop.advance(Duration::minutes(6));
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&key(&flagged)), Status::Verified);
}

/// The seed's incident: RMS down 2020-02-10 15:45-22:35 JST while the shop kept selling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_during_a_multi_hour_rms_outage_are_backfilled_exactly_once_without_an_operator() {
    let start = jst().with_ymd_and_hms(2020, 2, 10, 15, 0, 0).unwrap().with_timezone(&Utc);
    let mut shop = Shop::with_rakuten(FixedClock::at(start)).await;
    let before = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    shop.run(Stage::Receive).await;
    assert_eq!(shop.status(&key(&before)), Status::AwaitingConfirmation);

    shop.advance(Duration::minutes(45)); // 15:45
    shop.rms().faults().start_outage(Fault::Status(503));
    let mut placed = Vec::new();
    let mut failed_cycles = 0;
    while shop.clock.as_ref().unwrap().now()
        < jst().with_ymd_and_hms(2020, 2, 10, 22, 35, 0).unwrap().with_timezone(&Utc)
    {
        placed.push(shop.rms().place(NewRakutenOrder::card("tea-100", 1)));
        let report = shop.run(Stage::Receive).await;
        assert_eq!(report[0].deferred, 1, "the poll fails");
        shop.run(Stage::Stale).await;
        failed_cycles += 1;
        shop.advance(Duration::minutes(30));
    }
    assert!(placed.iter().all(|n| shop.state(&key(n)).status.is_none()), "nothing from the outage window is in yet");
    assert_eq!(source_events(&shop, "OutageStarted").len(), 1, "one alert when it starts");
    assert_eq!(source_events(&shop, "PollFailed").len(), failed_cycles);

    shop.rms().faults().lift();
    shop.run(Stage::Receive).await;
    for number in &placed {
        let events = shop.ledger.store().read_stream(&key(number).stream()).unwrap();
        let detected = events.iter().filter(|e| e.event_type == "OrderDetected").count();
        assert_eq!(detected, 1, "{number} imported exactly once");
        assert_eq!(shop.status(&key(number)), Status::AwaitingConfirmation);
    }
    let ended = source_events(&shop, "OutageEnded");
    let [SourceEvent::OutageEnded(ended)] = ended.as_slice() else { panic!("one recovery: {ended:?}") };
    assert_eq!(ended.backfilled as usize, placed.len());

    let head = shop.ledger.store().head_position().unwrap();
    shop.run(Stage::Receive).await;
    let new_orders: Vec<_> = shop
        .ledger
        .store()
        .read_all(head, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "OrderDetected")
        .collect();
    assert!(new_orders.is_empty(), "the overlap re-reads orders but adds none");
    let in_ledger = shop.ledger.store().streams_in_category("order").unwrap().len();
    assert_eq!(in_ledger, placed.len() + 1);
    assert!(
        shop.rms().order_numbers().iter().all(|n| shop.state(&key(n)).marketplace_confirmed),
        "and confirmed, with no operator"
    );

    // The incident report tells the story from the events alone.
    let now = shop.clock.as_ref().unwrap().now();
    let report =
        replay::incident::incident(shop.ledger.store().connection(), start, now, Duration::minutes(10)).unwrap();
    let [outage] = report.failing.as_slice() else { panic!("one failing period: {:?}", report.failing) };
    assert_eq!(outage.source, "poll-rakuten");
    assert_eq!(replay::incident::jst(outage.first_failure), "2020-02-10 15:45 JST");
    assert_eq!(outage.failures as usize, failed_cycles);
    assert_eq!(outage.backfilled, Some(placed.len() as u32));
    assert!(outage.outage_declared_at.is_some());
    assert_eq!(report.backfilled(), placed.len(), "every order placed during the outage came in at recovery");
    assert_eq!(report.arrived.len(), placed.len() + 1);
    assert!(report.alerts.iter().any(|a| a.kind == "outage_started"), "{:?}", report.alerts);
    let text = report.text();
    assert!(
        text.contains("poll-rakuten: 2020-02-10 15:45 JST 〜 2020-02-10 22:15 JST に 14 回失敗 [障害 (自動で再試行)]"),
        "{text}"
    );
    assert!(text.contains("復旧: 2020-02-10 22:45 JST (この時の取得で新しい注文 14 件を取り込み)"), "{text}");
    assert!(text.contains("■ この間に入った注文: 15 件 (うちバックフィル 14 件)"), "{text}");
    assert!(text.contains("rakuten: 障害発生"), "the outage alert is in the story: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rms_answers_and_bad_orders_never_lose_anything() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let good = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    let strange = shop.rms().place(NewRakutenOrder {
        settlement_code: 99,
        settlement_name: "未来の決済".into(),
        ..NewRakutenOrder::card("tea-100", 1)
    });
    let cod = shop.rms().place(NewRakutenOrder {
        settlement_code: 2,
        settlement_name: "代金引換".into(),
        ..NewRakutenOrder::card("tea-100", 1)
    });

    shop.rms().faults().inject(Some("getOrder"), Fault::Malformed, 4);
    let report = shop.run(Stage::Receive).await;
    assert_eq!(report[0].deferred, 1, "an unreadable answer fails the window");
    assert!(shop.state(&key(&good)).status.is_none());
    assert!(
        matches!(&source_events(&shop, "PollFailed")[0], SourceEvent::PollFailed(f) if f.error.contains("unreadable getOrder"))
    );

    shop.run(Stage::Receive).await;
    assert_eq!(shop.status(&key(&good)), Status::AwaitingConfirmation, "the same window, fetched again");
    let error = shop.state(&key(&strange)).error.unwrap();
    assert!(error.message.contains("不明な決済方法 99（未来の決済）"), "{}", error.message);
    assert!(shop.state(&key(&cod)).error.unwrap().message.contains("代金引換"));
    let raw = shop.ledger.store().read_stream(&key(&good).stream()).unwrap();
    let blob = raw.iter().find_map(|e| e.blob.clone()).expect("the RMS answer is kept");
    let (content_type, bytes) = shop.ledger.store().get_blob(&blob).unwrap().unwrap();
    assert_eq!(content_type, "application/json");
    assert!(String::from_utf8(bytes).unwrap().contains(&good));
}

mod contract {
    use super::support::rakuten_config;
    use chrono::{Duration, Utc};
    use events::store::OpenMode;
    use events::FixedClock;
    use mcf_ledger::config::Secret;
    use mcf_ledger::rakuten::{RakutenClient, RakutenError};
    use mcf_ledger::stages::receive::rakuten::receive;
    use mcf_ledger::stages::sources::PollSettings;
    use mcf_ledger::stages::Steps;
    use projections::Ledger;
    use sandbox::rakuten::{RakutenSandbox, RakutenSandboxConfig};
    use serde_json::{json, Value};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_credentials_are_refused_with_rakutens_code_and_an_expiring_key_is_raised() {
        let clock = FixedClock::at(Utc::now());
        let today = Utc::now().with_timezone(&events::clock::jst()).date_naive();
        let config =
            RakutenSandboxConfig { license_expires: today + Duration::days(10), ..RakutenSandboxConfig::default() };
        let sandbox =
            RakutenSandbox::start(config, mcf_ledger::demo::sandbox_clock(Arc::new(clock.clone()))).await.unwrap();
        let mut wrong = rakuten_config(&sandbox);
        wrong.license_key = Secret::new("SL-wrong");
        let err = RakutenClient::new(wrong)
            .unwrap()
            .search_orders(Utc::now() - Duration::hours(1), Utc::now())
            .await
            .unwrap_err();
        assert!(matches!(&err, RakutenError::Auth { code, .. } if code == "ES01-01"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let mut ledger =
            Ledger::open_with_clock(&dir.path().join("l.db"), OpenMode::CreateIfMissing, Arc::new(clock.clone()))
                .unwrap();
        let client = RakutenClient::new(rakuten_config(&sandbox)).unwrap();
        for _ in 0..2 {
            receive(&mut ledger, &client, &PollSettings::default(), &mut Steps::unbounded()).await.unwrap();
        }
        let expiring: Vec<_> = ledger
            .store()
            .read_stream("poll-rakuten")
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type == "CredentialExpiring")
            .collect();
        assert_eq!(expiring.len(), 1, "raised once a day");
        assert!(expiring[0].data.contains("\"days_left\":10"), "{}", expiring[0].data);
        let checked = ledger.store().read_stream_of_types("poll-rakuten", &["CredentialChecked"]).unwrap();
        assert_eq!(checked.len(), 1, "the expiry date is recorded once a day");
        let state =
            projections::source_status::source_state(ledger.store().connection(), "poll-rakuten").unwrap().unwrap();
        assert_eq!(state.credentials.get("RAKUTEN_LICENSE_KEY"), Some(&(today + Duration::days(10))));
        assert!(state.cursor.is_some() && state.expiring.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sandbox_is_strict_like_rms() {
        let sandbox = RakutenSandbox::start(
            RakutenSandboxConfig::default(),
            mcf_ledger::demo::sandbox_clock(Arc::new(FixedClock::at(Utc::now()))),
        )
        .await
        .unwrap();
        use base64::Engine;
        let auth =
            format!("ESA {}", base64::engine::general_purpose::STANDARD.encode("SP000001_sandbox:SL000001_sandbox"));
        let http = reqwest::Client::new();
        let post = |path: &str, body: Value, auth: Option<&str>, content_type: &str| {
            let mut request = http
                .post(format!("{}/es/2.0/order/{path}/", sandbox.base_url()))
                .header("content-type", content_type)
                .body(body.to_string());
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            request.send()
        };
        let ok_type = "application/json; charset=utf-8";
        let search =
            |start: &str| json!({"dateType": 1, "startDatetime": start, "endDatetime": "2026-11-22T10:00:00+0900"});
        let unauthorised = post("searchOrder", search("2026-11-21T10:00:00+0900"), None, ok_type).await.unwrap();
        assert_eq!(unauthorised.status(), 401);
        assert_eq!(unauthorised.json::<Value>().await.unwrap()["Results"]["errorCode"], "ES01-01");
        let colon = post("searchOrder", search("2026-11-21T10:00:00+09:00"), Some(&auth), ok_type).await.unwrap();
        assert_eq!(colon.status(), 400);
        let body: Value = colon.json().await.unwrap();
        assert_eq!(body["MessageModelList"][0]["messageCode"], "ORDER_EXT_API_SEARCH_ORDER_ERROR_011");
        assert_eq!(body["MessageModelList"][0]["message"], "startDatetimeの書式が不正です");
        let too_long = post("searchOrder", json!({"dateType": 1, "startDatetime": "2026-08-01T00:00:00+0900", "endDatetime": "2026-11-22T00:00:00+0900"}), Some(&auth), ok_type).await.unwrap();
        assert_eq!(too_long.status(), 400, "more than 63 days");
        let empty = post("searchOrder", search("2026-11-21T10:00:00+0900"), Some(&auth), ok_type).await.unwrap();
        let body: Value = empty.json().await.unwrap();
        assert_eq!(body["MessageModelList"][0]["messageCode"], "ORDER_EXT_API_SEARCH_ORDER_INFO_102");
        assert!(body["PaginationResponseModel"]["totalPages"].is_null());
        let no_version =
            post("getOrder", json!({"orderNumberList": ["123456-20261122-0000000001"]}), Some(&auth), ok_type)
                .await
                .unwrap();
        assert_eq!(
            no_version.json::<Value>().await.unwrap()["MessageModelList"][0]["message"],
            "versionの項目を指定して下さい"
        );
        let no_charset =
            post("getOrder", json!({"orderNumberList": ["x"], "version": 10}), Some(&auth), "application/json")
                .await
                .unwrap();
        assert_eq!(no_charset.status(), 415);

        // updateOrderShippingAsync: the whole request is refused when an order's record is
        // malformed (the message names the order), an order repeats, or there are over 100.
        let shipping = |number: &str, date: &str| {
            json!({"orderNumber": number, "BasketidModelList": [{"basketId": 1, "ShippingModelList": [
                {"deliveryCompany": "1001", "shippingNumber": "123", "shippingDate": date}]}]})
        };
        let async_call = |orders: Vec<Value>| {
            post("updateOrderShippingAsync", json!({"OrderShippingModelList": orders}), Some(&auth), ok_type)
        };
        let slashed = async_call(vec![shipping("a", "2026-12-02"), shipping("b", "2026/12/02")]).await.unwrap();
        assert_eq!(slashed.status(), 400);
        let body: Value = slashed.json().await.unwrap();
        assert_eq!(body["MessageModelList"][0]["messageCode"], "ORDER_EXT_API_UPDATE_ORDERSHIPPING_ASYNC_ERROR_011");
        assert_eq!(body["MessageModelList"][0]["orderNumber"], "b");
        let twice = async_call(vec![shipping("a", "2026-12-02"), shipping("a", "2026-12-02")]).await.unwrap();
        assert_eq!(twice.status(), 400, "an order number twice");
        let many = async_call((0..101).map(|n| shipping(&n.to_string(), "2026-12-02")).collect()).await.unwrap();
        assert_eq!(many.status(), 400, "more than 100 orders");
        let accepted = async_call(vec![shipping("no-such-order", "2026-12-02")]).await.unwrap();
        assert_eq!(accepted.status(), 200);
        let request_id = accepted.json::<Value>().await.unwrap()["requestId"].as_str().unwrap().to_owned();
        let no_id = post("getResultUpdateOrderShippingAsync", json!({}), Some(&auth), ok_type).await.unwrap();
        assert_eq!(no_id.status(), 400);
        let pending = post("getResultUpdateOrderShippingAsync", json!({"requestId": request_id}), Some(&auth), ok_type)
            .await
            .unwrap();
        let body: Value = pending.json().await.unwrap();
        assert_eq!(
            body["MessageModelList"][0]["messageCode"],
            "ORDER_EXT_API_GET_RESULT_UPDATEORDERSHIPPING_ASYNC_INFO_101"
        );
        assert!(body["ResultShippingModelList"].is_null(), "not processed yet (the sandbox's clock stands still)");

        // 在庫API 2.0: 204 on upsert, the inventory API's own error shape, limits, duplicates,
        // RELATIVE only on a SKU that exists, and a SKU the shop has no item for invisible to reads.
        sandbox.list_sku("Green-Tea", "100g", 3);
        let inventory = |path: &str, body: Value, content_type: &str| {
            http.post(format!("{}/es/2.0/inventories/{path}", sandbox.base_url()))
                .header("authorization", &auth)
                .header("content-type", content_type)
                .body(body.to_string())
                .send()
        };
        let row = |manage: &str, variant: &str, mode: &str, quantity: i64| json!({"manageNumber": manage, "variantId": variant, "mode": mode, "quantity": quantity});
        let upsert = |rows: Vec<Value>| inventory("bulk-upsert", json!({ "inventories": rows }), "application/json");
        let ok = upsert(vec![row("GREEN-TEA", "100g", "ABSOLUTE", 7), row("green-tea", "typo", "ABSOLUTE", 1)])
            .await
            .unwrap();
        assert_eq!(ok.status(), 204, "upper case manageNumber is lowercased; an unknown SKU is no error");
        assert_eq!(sandbox.inventory("green-tea", "100g"), Some(7));
        let no_mode =
            upsert(vec![json!({"manageNumber": "green-tea", "variantId": "100g", "quantity": 1})]).await.unwrap();
        let body: Value = no_mode.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "IE0001");
        assert_eq!(body["errors"][0]["metadata"]["propertyPath"], "inventories[0].mode");
        let relative = upsert(vec![row("green-tea", "nothing", "RELATIVE", 1)]).await.unwrap();
        assert_eq!(relative.json::<Value>().await.unwrap()["errors"][0]["code"], "IE0500");
        let range = upsert(vec![row("green-tea", "100g", "ABSOLUTE", 100_000)]).await.unwrap();
        assert_eq!(range.json::<Value>().await.unwrap()["errors"][0]["code"], "IE0003");
        let twice = upsert(vec![row("green-tea", "100g", "ABSOLUTE", 1), row("green-tea", "100g", "ABSOLUTE", 2)])
            .await
            .unwrap();
        assert_eq!(twice.json::<Value>().await.unwrap()["errors"][0]["code"], "IE1102");
        let many = upsert((0..401).map(|n| row("green-tea", &format!("v{n}"), "ABSOLUTE", 1)).collect()).await.unwrap();
        assert_eq!(many.json::<Value>().await.unwrap()["errors"][0]["code"], "IE1101");
        assert_eq!(sandbox.inventory("green-tea", "100g"), Some(7), "a refused request changes nothing");
        let form =
            inventory("bulk-upsert", json!({"inventories": []}), "application/x-www-form-urlencoded").await.unwrap();
        assert_eq!(form.status(), 415);
        let read = inventory(
            "bulk-get",
            json!({"inventories": [{"manageNumber": "green-tea", "variantId": "100g"}, {"manageNumber": "green-tea", "variantId": "typo"}]}),
            "application/json",
        )
        .await
        .unwrap();
        let body: Value = read.json().await.unwrap();
        let rows = body["inventories"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "the typo's row is not shown: {body}");
        assert_eq!(
            (rows[0]["quantity"].as_i64(), rows[0]["updated"].as_str().map(|t| t.ends_with("+09:00"))),
            (Some(7), Some(true))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cycles_alone_take_an_order_from_rms_to_shipped_and_release_the_lease() {
    use mcf_ledger::cycle::{run_cycle, Stage as S};
    let mut shop = Shop::with_rakuten(now_clock()).await;
    shop.sandbox.set_stock("JP-TEA-100", 3);
    let number = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    let order = key(&number);
    let mut statuses = Vec::new();
    // Receive; verify and ship; tracking and the async report; its result.
    for _ in 0..5 {
        let report = run_cycle(&mut shop.ledger, &shop.services, &S::ALL).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        statuses.push(shop.status(&order));
        shop.advance(Duration::minutes(10));
        shop.sandbox.advance(Duration::hours(3));
    }
    assert_eq!(statuses.last(), Some(&Status::Shipped), "{statuses:?}");
    assert_eq!(shop.rms().progress(&number), Some(500));
    let system = shop.ledger.store().read_stream("system").unwrap();
    assert_eq!(system.iter().filter(|e| e.event_type == "CycleFinished").count(), 5);
    let held: i64 =
        shop.ledger.store().connection().query_row("SELECT count(*) FROM leases", [], |r| r.get(0)).unwrap();
    assert_eq!(held, 0, "the lease is released after each cycle");
    let audit = replay::audit::audit(shop.ledger.store()).unwrap();
    assert!(audit.anomalies.is_empty(), "{:?}", audit.anomalies);
    // Every event a cycle appended names the cycle (correlation), and every reactor's order
    // event names the event its decision was made on (causation).
    let all = shop.ledger.store().read_all(0, 10_000).unwrap();
    let mut cycle = None;
    for event in &all {
        if event.event_type == "CycleStarted" {
            assert_eq!(event.meta.correlation_id, None, "a cycle starts outside any other");
            cycle = Some(event.event_id);
            continue;
        }
        assert_eq!(event.meta.correlation_id, cycle, "{} at {} names its cycle", event.event_type, event.position);
        if event.event_type == "CycleFinished" {
            cycle = None;
        }
    }
    let order_events = shop.ledger.store().read_stream(&order.stream()).unwrap();
    let first_batch = order_events.iter().take_while(|e| e.meta.causation_id.is_none()).count();
    assert!(first_batch >= 1, "the order's first events were decided on nothing before them");
    for event in &order_events[first_batch..] {
        assert!(
            order_events.iter().any(|e| Some(e.event_id) == event.meta.causation_id && e.version < event.version),
            "{} (v{}) names an earlier event of the order as its cause",
            event.event_type,
            event.version
        );
    }
    assert_eq!(order_events[0].meta.causation_id, None, "the first event has no cause in the order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reparse_reads_the_kept_answers_again_and_names_what_would_differ() {
    use events::envelope::{Actor, ExpectedVersion, Meta, NewEvent};
    let mut shop = Shop::with_rakuten(now_clock()).await;
    for _ in 0..3 {
        shop.rms().place(NewRakutenOrder::card("tea-100", 1));
    }
    shop.run(Stage::Receive).await;
    let clean = mcf_ledger::reparse::reparse(shop.ledger.store()).unwrap();
    assert_eq!(clean.orders, 3);
    assert!(clean.differences.is_empty(), "{:?}", clean.differences);

    // A mail an older build classified as "other": today's parser reads an order in it.
    let raw = "From: order@rakuten.co.jp\r\nSubject: =?UTF-8?B?44CQ5qW95aSp5biC5aC044CR5rOo5paH5YaF5a6544GU56K66KqN?=\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n[受注番号] 123456-20261122-00000077\r\n";
    let blob = shop.ledger.store().put_blob(raw.as_bytes(), "message/rfc822").unwrap();
    let data = r#"{"uid_validity":1,"uid":1,"message_id":null,"date":null,"from":null,"subject":"old","classification":{"kind":"other"},"size":10}"#;
    let event =
        NewEvent::new("MailReceived", 1, data.into(), Meta::by(Actor::reactor("receive"))).with_blob(blob.sha256);
    shop.ledger.store_mut().append("mailbox-inbox", ExpectedVersion::Any, &[event]).unwrap();
    let head = shop.ledger.store().head_position().unwrap();
    let report = mcf_ledger::reparse::reparse(shop.ledger.store()).unwrap();
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    assert_eq!(report.differences[0].what, "mail classification");
    assert_eq!(report.differences[0].today["order_number"], "123456-20261122-00000077");
    assert_eq!(shop.ledger.store().head_position().unwrap(), head, "reparse appends nothing");
}

/// A master whose listings name where their stock lives at RMS (商品管理番号, SKU管理番号).
fn write_stock_master(path: &std::path::Path, rows: &[(&str, &str, u32, &str, &str)]) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("SKUMapping").unwrap();
    let titles = ["marketplace_sku", "seller_sku", "quantity", "rakuten_manage_number", "rakuten_variant_id"];
    for (c, title) in titles.iter().enumerate() {
        sheet.write_string(0, c as u16, *title).unwrap();
    }
    for (r, (key, seller, units, manage, variant)) in rows.iter().enumerate() {
        let row = r as u32 + 1;
        sheet.write_string(row, 0, *key).unwrap();
        sheet.write_string(row, 1, *seller).unwrap();
        sheet.write_number(row, 2, f64::from(*units)).unwrap();
        sheet.write_string(row, 3, *manage).unwrap();
        sheet.write_string(row, 4, *variant).unwrap();
    }
    workbook.save(path).unwrap();
}

fn stock_events(shop: &Shop, stream: &str, kind: &str) -> Vec<events::stock::StockEvent> {
    shop.ledger
        .store()
        .read_stream_of_types(stream, &[kind])
        .unwrap()
        .iter()
        .map(|e| events::stock::StockEvent::decode(e, &events::ledger_event::upcasters()).unwrap())
        .collect()
}

/// STOCK_SYNC=on against RMS's 在庫API: what FBA can ship (less the buffer, sets by their
/// units) is written in one bulk-upsert and read back; a key RMS lacks is an error on its row;
/// nothing is written again while nothing changed; a sell-out reaches RMS; a reading that takes
/// most listings to 0 is held until confirmed; a write whose answer was lost is read back, not
/// repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_sync_publishes_to_rms_reads_back_and_holds_a_mass_zero_until_confirmed() {
    use events::stock::{published_stream, StockEvent, STOCK_SYNC_STREAM};
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let master = shop.services.sku_master.path().to_path_buf();
    write_stock_master(
        &master,
        &[
            ("tea-100", "JP-TEA-100", 1, "Green-Tea", "100g"),
            ("tea-3pack", "JP-TEA-100", 3, "green-tea", "3pack"),
            ("cup", "JP-CUP", 1, "arita-cup", "std"),
            ("cup-typo", "JP-CUP", 1, "arita-cup", "STD"),
        ],
    );
    for (manage, variant) in [("green-tea", "100g"), ("green-tea", "3pack"), ("arita-cup", "std")] {
        shop.rms().list_sku(manage, variant, 50);
    }
    shop.sandbox.set_stock("JP-TEA-100", 20);
    shop.sandbox.set_stock("JP-CUP", 5);
    shop.services.stock =
        mcf_ledger::config::StockSettings { sync: mcf_ledger::config::StockSync::On, buffer: 1, brake_percent: 60 };
    shop.run(Stage::Check).await; // loads the master into the ledger
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(19), "20 less the buffer of 1");
    assert_eq!(shop.rms().inventory("green-tea", "3pack"), Some(5), "floor(20 / 3) less 1");
    assert_eq!(shop.rms().inventory("arita-cup", "std"), Some(4));
    assert_eq!(shop.rms().inventory("arita-cup", "STD"), None, "variantId is case-sensitive: RMS has no such SKU");
    assert_eq!(shop.rms().inventory_writes(), 1, "four listings, one bulk-upsert");
    let stream = published_stream(Marketplace::Rakuten);
    let done = stock_events(&shop, &stream, "StockWriteDone");
    let StockEvent::StockWriteDone(done) = &done[0] else { panic!("{done:?}") };
    assert_eq!(done.verified.len(), 3);
    assert_eq!(done.problems[0].marketplace_sku, "cup-typo", "the unknown key is an error on its row");

    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory_writes(), 1, "nothing changed: nothing written");

    // FBA runs out of cups: RMS shows 0 before an order can find none. But the shop set the cup
    // to take orders when out of stock (在庫切れ時の注文受付): that is flagged on its row.
    shop.rms().set_back_order("arita-cup", "std", true);
    shop.sandbox.set_stock("JP-CUP", 0);
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("arita-cup", "std"), Some(0));
    assert_eq!(shop.rms().calls("items.inventory-related-settings.get"), 1, "asked for the item at 0 only");
    let published = mcf_ledger::stages::stock::sync::published(&shop.ledger, Marketplace::Rakuten).unwrap();
    let (problem, _) = published.problems.get("cup").expect("flagged");
    assert!(problem.contains("在庫0でも注文を受け付ける"), "{problem}");

    // Cups come back; then tea and cups read 0 at once: most FBA SKUs on sale would go to 0.
    shop.sandbox.set_stock("JP-CUP", 5);
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("arita-cup", "std"), Some(4));
    shop.services.stock.brake_percent = 30;
    shop.sandbox.set_stock("JP-TEA-100", 0);
    shop.sandbox.set_stock("JP-CUP", 0);
    let writes = shop.rms().inventory_writes();
    let report = shop.run(Stage::Stock).await;
    assert_eq!(report[0].needs_operator, 1);
    assert_eq!(shop.rms().inventory_writes(), writes, "held: nothing written");
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(19));
    shop.run(Stage::Stock).await;
    assert_eq!(stock_events(&shop, STOCK_SYNC_STREAM, "StockSyncHeld").len(), 1, "held once, not every run");
    assert!(mcf_ledger::stages::stock::sync::confirm(&mut shop.ledger, "admin").unwrap());
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(0), "confirmed: published");

    // The answer to a write is lost (RMS applied it): read back next run, not written again.
    shop.sandbox.set_stock("JP-TEA-100", 9);
    let hang = Fault::ApplyThenHang(std::time::Duration::from_secs(3));
    shop.rms().faults().inject(Some("inventories.bulk.upsert"), hang, 1);
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(8), "applied, though unanswered");
    // Next run: the lost write is read back first (found written), then, as after any outage,
    // everything is written once more (absolute values: harmless); then nothing.
    shop.run(Stage::Stock).await;
    let done = stock_events(&shop, &stream, "StockWriteDone");
    let read_back = done
        .iter()
        .find_map(|e| match e {
            StockEvent::StockWriteDone(d) if d.note.contains("応答のなかった") => Some(d),
            _ => None,
        })
        .expect("the lost write read back");
    assert!(read_back.verified.contains(&"tea-100".to_owned()), "{read_back:?}");
    let published = mcf_ledger::stages::stock::sync::published(&shop.ledger, Marketplace::Rakuten).unwrap();
    assert!(published.pending.is_none());
    assert_eq!(published.quantities.get("tea-100"), Some(&8));
    let writes = shop.rms().inventory_writes();
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory_writes(), writes, "then nothing changed: nothing written");
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(8));
}

/// A set of different products (one tea and two cups under one marketplace SKU): an order for
/// it sends every component to MCF, and stock sync publishes as many sets as the scarcest
/// component makes, before and after the order holds its units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_of_different_products_ships_every_component_and_publishes_what_its_scarcest_makes() {
    let mut shop = Shop::with_rakuten(now_clock()).await;
    let master = shop.services.sku_master.path().to_path_buf();
    write_stock_master(
        &master,
        &[
            ("tea-100", "JP-TEA-100", 1, "green-tea", "100g"),
            ("gift", "JP-TEA-100", 1, "gift-set", "std"),
            ("gift", "JP-CUP", 2, "", ""),
        ],
    );
    shop.rms().list_sku("green-tea", "100g", 50);
    shop.rms().list_sku("gift-set", "std", 50);
    shop.sandbox.set_stock("JP-TEA-100", 20);
    shop.sandbox.set_stock("JP-CUP", 7);
    shop.services.stock =
        mcf_ledger::config::StockSettings { sync: mcf_ledger::config::StockSync::On, buffer: 0, brake_percent: 30 };
    shop.run(Stage::Check).await; // loads the master into the ledger
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(20));
    assert_eq!(shop.rms().inventory("gift-set", "std"), Some(3), "7 cups make 3 sets of two; tea makes 20");

    let number = shop.rms().place(NewRakutenOrder::card("gift", 2));
    shop.run(Stage::Receive).await;
    shop.advance(Duration::minutes(6));
    shop.run(Stage::Monitor).await;
    shop.run(Stage::Check).await;
    let state = shop.state(&key(&number));
    let allotted: Vec<(&str, u32)> = state.allotted.iter().map(|l| (l.seller_sku.0.as_str(), l.quantity)).collect();
    assert_eq!(allotted, vec![("JP-TEA-100", 2), ("JP-CUP", 4)], "each component, per set ordered");
    // Allotted but not yet at Amazon: the plan already counts the four cups as taken.
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("gift-set", "std"), Some(1), "(7 − 4) cups make one set");
    assert_eq!(shop.rms().inventory("green-tea", "100g"), Some(18));

    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&key(&number)), Status::Shipping);
    let mcf = shop.sandbox.order(&format!("RK-{number}")).expect("one MCF order");
    let mut items: Vec<(String, u64)> = mcf.request["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sellerSku"].as_str().unwrap().to_owned(), i["quantity"].as_u64().unwrap()))
        .collect();
    items.sort();
    assert_eq!(items, vec![("JP-CUP".to_owned(), 4), ("JP-TEA-100".to_owned(), 2)]);
    // Amazon holds the units now, not the allotment: still one set, counted once.
    shop.run(Stage::Stock).await;
    assert_eq!(shop.rms().inventory("gift-set", "std"), Some(1));
}
