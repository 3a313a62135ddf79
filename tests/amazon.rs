//! The Amazon stages (check, ship, monitor) against the SP-API sandbox over HTTP, with a real
//! ledger file: happy path, allotment, speeds, Amazon's 400s, every injectable fault, cancel,
//! and a process killed between createFulfillmentOrder and its record.

mod support;

use chrono::{Duration, TimeZone, Utc};
use events::clock::jst;
use events::order::{DeliveryRequest, OrderItem, ShippingSpeed, Status};
use events::{Marketplace, OrderKey};
use mcf_ledger::cycle::Stage;
use mcf_ledger::stages::Steps;
use mcf_ledger::transport::RetryPolicy;
use sandbox::amazon::AmazonSandboxConfig;
use sandbox::faults::Fault;
use serde_json::json;
use support::{write_master, Shop};

fn mcf_id(n: u32) -> String {
    format!("YH-shop-{n:08}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_orders_ship_through_mcf_and_come_back_with_tracking() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    shop.sandbox.set_stock("JP-CUP", 5);
    let a = shop.place("tea-100", 2, |_| {});
    let b = shop.place("tea-3pack", 1, |d| {
        d.items.push(OrderItem {
            marketplace_sku: "cup".into(),
            title: "湯呑み".into(),
            quantity: 1,
            unit_price_yen: 900,
        })
    });
    let check = shop.run(Stage::Check).await;
    assert_eq!((check[0].examined, check[0].advanced), (2, 2));
    assert_eq!(shop.status(&a), Status::ShippingRequested);
    let allotted: Vec<(String, u32)> =
        shop.state(&b).allotted.iter().map(|l| (l.seller_sku.0.clone(), l.quantity)).collect();
    assert_eq!(allotted, vec![("JP-TEA-100".into(), 3), ("JP-CUP".into(), 1)], "a 3-pack is 3 units");

    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&a), Status::Shipping);
    assert_eq!(shop.state(&a).shipping_speed, Some(ShippingSpeed::Standard));
    let mcf = shop.sandbox.order(&mcf_id(1)).expect("the MCF order exists at Amazon");
    let address = &mcf.request["destinationAddress"];
    assert_eq!(address["stateOrRegion"], "東京都");
    assert_eq!(address["addressLine1"], "渋谷区神宮前1-2-3");
    assert_eq!(address["addressLine2"], "サンプルマンション101");
    assert!(address.get("city").is_none(), "Amazon says city must not be used in Japan");
    assert_eq!(mcf.request["notificationEmails"], json!(["shop@example.jp"]));
    assert_eq!(mcf.request["displayableOrderId"], "shop-00000001");
    assert_eq!(shop.sandbox.fulfillable("JP-TEA-100"), Some(5), "10 - 2 - 3 reserved by the two MCF orders");

    shop.run(Stage::Monitor).await;
    assert!(shop.state(&a).tracking.is_none(), "nothing ships before Amazon picks");
    assert_eq!(shop.sandbox.tokens_issued(), 1, "the access token is cached across calls and stages");
    shop.sandbox.advance(Duration::hours(7));
    shop.run(Stage::Monitor).await;
    let tracking = shop.state(&a).tracking.expect("tracking after Amazon completed");
    let (carrier, number) = sandbox::amazon::package_tracking(&mcf_id(1));
    assert_eq!((tracking.carrier.as_str(), tracking.tracking_number.as_str()), (carrier, number.as_str()));
    assert!(shop.state(&b).tracking.is_some());

    let head = shop.ledger.store().head_position().unwrap();
    shop.run_all().await;
    assert_eq!(shop.ledger.store().head_position().unwrap(), head, "a second cycle finds nothing to do");
    assert_eq!(shop.sandbox.create_requests(), 2);
    assert_eq!(shop.sandbox.tokens_issued(), 2, "7 hours later the token had expired: refreshed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_goes_to_the_oldest_order_and_an_unmapped_sku_waits_for_the_master() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 3);
    let older = shop.place("tea-100", 2, |_| {});
    let newer = shop.place("tea-100", 2, |_| {});
    let unmapped = shop.place("matcha-50", 1, |_| {});
    let report = shop.run(Stage::Check).await;
    assert_eq!((report[0].advanced, report[0].needs_operator), (1, 2));
    assert_eq!(shop.status(&older), Status::ShippingRequested);
    assert_eq!(shop.status(&newer), Status::OutOfStock);
    let short = &shop.state(&newer).shortage[0];
    assert_eq!((short.seller_sku.0.as_str(), short.needed, short.available), ("JP-TEA-100", 2, 1));
    let error = shop.state(&unmapped).error.unwrap();
    assert_eq!(error.code.as_deref(), Some("SKU_NOT_IN_MASTER"));
    assert!(error.message.contains("matcha-50") && error.message.contains("SKUMapping"), "{}", error.message);

    // Verified again without restocking: what the older order holds is not counted twice.
    shop.operator_sets(&newer, Status::Verified, "再確認");
    shop.run(Stage::Check).await;
    assert_eq!(shop.status(&newer), Status::OutOfStock);
    assert_eq!(shop.state(&newer).shortage[0].available, 1);

    // The golden rule: fix the cause, change the status, the next cycle resumes.
    shop.sandbox.set_stock("JP-TEA-100", 5);
    write_master(&shop.master, &[("tea-100", "JP-TEA-100", 1), ("matcha-50", "JP-MATCHA", 1)]);
    shop.sandbox.set_stock("JP-MATCHA", 1);
    shop.operator_sets(&newer, Status::Verified, "在庫補充済み");
    shop.operator_sets(&unmapped, Status::Verified, "SKUをmaster.xlsxに追加");
    shop.run(Stage::Check).await;
    assert_eq!(shop.status(&newer), Status::ShippingRequested);
    assert_eq!(shop.status(&unmapped), Status::ShippingRequested);
    let loads = shop.ledger.store().read_stream("sku-master").unwrap();
    assert_eq!(loads.iter().filter(|e| e.event_type == "SkuMasterLoaded").count(), 2, "each workbook load is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_master_is_rejected_and_the_last_good_mapping_stays_in_use() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 9);
    let first = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    assert_eq!(shop.status(&first), Status::ShippingRequested);
    std::fs::write(&shop.master, b"this is no workbook").unwrap();
    // A fresh process: the mapping comes back from the ledger's copy of the last good workbook.
    shop.services.sku_master = mcf_ledger::stages::check::SkuMaster::new(shop.master.clone());
    let second = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    assert_eq!(shop.status(&second), Status::ShippingRequested);
    assert!(shop.services.sku_master.problem().unwrap().contains("を読めません"));
    let rejected = shop.ledger.store().read_stream("sku-master").unwrap();
    assert!(rejected.iter().any(|e| e.event_type == "SkuMasterRejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_master_or_one_dropping_skus_of_open_orders_is_refused_and_errors_name_the_workbook_in_use() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 9);
    let first = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    assert_eq!(shop.status(&first), Status::ShippingRequested);

    // Header row, no data: rejected like a broken workbook; orders keep shipping.
    write_master(&shop.master, &[]);
    let second = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    assert_eq!(shop.status(&second), Status::ShippingRequested, "the last good workbook stays in use");
    let problem = shop.services.sku_master.problem().unwrap();
    assert!(
        problem.ends_with("見出しの下にマッピングの行がありません（行のないマスターではすべての注文が止まります）"),
        "{problem}"
    );

    // A workbook that drops tea-100 while an order not yet checked needs it: refused too.
    let waiting = OrderKey::new(Marketplace::Yahoo, "shop-waiting-1").unwrap();
    let mut details = events::order::sample::details("佐藤 花子", "tea-100", 1);
    details.ordered_at = chrono::Utc::now().with_timezone(&events::clock::jst());
    shop.append(
        &waiting,
        vec![
            events::order::sample::detected(&waiting, events::order::DetectionSource::Api),
            events::order::OrderEvent::OrderDetailsRecorded(details),
        ],
        events::envelope::Actor::reactor("receive"),
    );
    write_master(&shop.master, &[("cup", "JP-CUP", 1)]);
    let unmapped = shop.place("matcha-50", 1, |_| {});
    shop.run(Stage::Check).await;
    let problem = shop.services.sku_master.problem().unwrap();
    assert!(problem.contains("未完了の注文が使うSKUがありません: tea-100（注文 yahoo-shop-waiting-1）"), "{problem}");
    // The order's error names the workbook actually in use, and why the file on disk is not.
    let error = shop.state(&unmapped).error.unwrap().message;
    assert!(error.contains("SKU matcha-50 が使用中のSKUマスター"), "{error}");
    assert!(error.contains(" JST 読込、sha256 "), "{error}");
    assert!(
        error.contains("ディスク上のファイルは受け付けられませんでした:") && error.contains("未完了の注文が使うSKU"),
        "{error}"
    );

    // Dropping a SKU no open order needs is an ordinary change.
    write_master(&shop.master, &[("tea-100", "JP-TEA-100", 1), ("matcha-50", "JP-MATCHA", 1)]);
    let third = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    assert_eq!(shop.services.sku_master.problem(), None);
    assert_eq!(shop.status(&third), Status::ShippingRequested);
    let kinds: Vec<String> =
        shop.ledger.store().read_stream("sku-master").unwrap().into_iter().map(|e| e.event_type).collect();
    assert_eq!(kinds, ["SkuMasterLoaded", "SkuMasterRejected", "SkuMasterRejected", "SkuMasterLoaded"]);
}

/// Yahoo's 翌日優良配送 (ExcellentDelivery 2): only Priority arrives by the next day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_day_premium_delivery_considers_priority_and_a_promise_no_speed_keeps_goes_on_the_to_do_list() {
    let mut shop =
        Shop::open(AmazonSandboxConfig { expedited_days: 2, priority_days: Some(1), ..Default::default() }).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let today = shop.today();
    let next_day = shop.place("tea-100", 1, |d| d.premium_deadline = Some(today + Duration::days(1)));
    let same_day = shop.place("tea-100", 1, |d| d.premium_deadline = Some(today));
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    let state = shop.state(&next_day);
    assert_eq!(state.shipping_speed, Some(ShippingSpeed::Priority));
    assert_eq!(shop.sandbox.order(&mcf_id(1)).unwrap().speed, "Priority");
    let reason = state.speed_reason.unwrap();
    assert!(
        reason.contains("Standard ")
            && reason.contains("Expedited ")
            && reason.contains("Priority ")
            && reason.contains(" 着"),
        "every estimate: {reason}"
    );
    // Nothing arrives today: the fastest, and the operator tells the customer.
    let late = shop.state(&same_day);
    assert_eq!(late.shipping_speed, Some(ShippingSpeed::Priority));
    assert!(late.promise_missed.as_deref().unwrap().starts_with("優良配送のお届け期限"));
    let due = events::order::tasks::manual_tasks_due(&late);
    assert!(due.contains(&events::order::tasks::ManualTask::LateDeliveryNotice), "{due:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_delivery_and_delivery_slots_choose_the_speed() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let today = shop.today();
    let premium = shop.place("tea-100", 1, |d| d.premium_deadline = Some(today + Duration::days(2)));
    let slot_date = today + Duration::days(3);
    let slotted = shop.place("tea-100", 1, |d| {
        d.delivery_request = Some(DeliveryRequest { date: slot_date, slot: Some("14-16".into()) })
    });
    let unavailable = shop.place("tea-100", 1, |d| {
        d.delivery_request = Some(DeliveryRequest { date: slot_date, slot: Some("12-14".into()) })
    });
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;

    let state = shop.state(&premium);
    assert_eq!(state.shipping_speed, Some(ShippingSpeed::Expedited));
    let reason = state.speed_reason.unwrap();
    assert!(
        reason.contains("間に合う中で最も安い Expedited") && reason.contains("(450円)") && reason.contains("Priority "),
        "{reason}"
    );
    assert_eq!(shop.sandbox.order(&mcf_id(1)).unwrap().speed, "Expedited");
    assert_eq!(state.promise_missed, None);

    assert_eq!(shop.state(&slotted).shipping_speed, Some(ShippingSpeed::ScheduledDelivery));
    let window = &shop.sandbox.order(&mcf_id(2)).unwrap().request["deliveryWindow"];
    let start = jst().from_local_datetime(&slot_date.and_hms_opt(14, 0, 0).unwrap()).unwrap().with_timezone(&Utc);
    assert_eq!(window["startDate"], start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));

    assert_eq!(shop.status(&unavailable), Status::DateUnavailable);
    let offered = shop.state(&unavailable).delivery_slot_unavailable.unwrap().offered;
    assert!(offered.contains(&format!("{slot_date} 14-16")), "{offered:?}");
    assert!(shop.sandbox.order(&mcf_id(3)).is_none());

    shop.operator_sets(&unavailable, Status::ShippingRequested, "顧客と調整済み、通常配送");
    shop.run(Stage::Ship).await;
    assert_eq!(shop.state(&unavailable).shipping_speed, Some(ShippingSpeed::Standard));
    let request = shop.sandbox.order(&mcf_id(3)).unwrap().request;
    assert_eq!(request["shippingSpeedCategory"], "Standard");
    assert!(request.get("deliveryWindow").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_amazon_would_refuse_stops_before_any_call_and_a_corrected_address_ships() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let long = shop.place("tea-100", 1, |d| d.ship_to.line2 = Some("ア".repeat(130)));
    shop.run(Stage::Check).await;
    let previews = shop.sandbox.calls().get("getFulfillmentPreview").copied().unwrap_or(0);
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&long), Status::Error);
    assert_eq!(
        shop.sandbox.calls().get("getFulfillmentPreview").copied().unwrap_or(0),
        previews,
        "nothing was sent to Amazon"
    );
    let error = shop.state(&long).error.unwrap();
    assert_eq!(error.code.as_deref(), Some("ADDRESS_LIMIT"));
    assert!(
        error
            .message
            .starts_with("住所（市区町村・番地・建物名）が合計141文字です（Amazonの上限は住所1〜3の合計40文字）"),
        "{}",
        error.message
    );
    // A correction that is still too long is refused, with the same counts.
    let mut still_long = shop.state(&long).delivery_address().unwrap().clone();
    still_long.line2 = Some("ア".repeat(35));
    let refused = shop.ledger.operator_correct_address(
        &long,
        still_long,
        "短縮",
        events::envelope::Meta::by(events::envelope::Actor::operator("tanaka")),
        None,
        Default::default(),
    );
    assert!(refused.unwrap_err().to_string().contains("（Amazonの上限は住所1〜3の合計40文字）"));

    let mut corrected = shop.state(&long).delivery_address().unwrap().clone();
    corrected.line2 = Some("サンプル101".into());
    shop.ledger
        .operator_correct_address(
            &long,
            corrected,
            "40文字超過のため短縮",
            events::envelope::Meta::by(events::envelope::Actor::operator("tanaka")),
            None,
            Default::default(),
        )
        .unwrap();
    shop.operator_sets(&long, Status::Verified, "住所修正済み");
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&long), Status::Shipping);
    assert_eq!(shop.sandbox.order(&mcf_id(1)).unwrap().request["destinationAddress"]["addressLine2"], "サンプル101");

    // A 400 at create: the intent is closed, the operator's VERIFIED builds the request anew.
    let refused = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    shop.sandbox.faults().inject(Some("createFulfillmentOrder"), Fault::Status(400), 1);
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&refused), Status::Error);
    assert!(shop.state(&refused).mcf_intent.is_none());
    shop.operator_sets(&refused, Status::Verified, "再送");
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&refused), Status::Shipping);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_is_survived_without_a_second_shipment() {
    let retry =
        RetryPolicy { max_attempts: 5, request_timeout: std::time::Duration::from_millis(700), ..RetryPolicy::fast() };
    let mut shop = Shop::open_with(AmazonSandboxConfig::default(), retry).await;
    shop.sandbox.set_stock("JP-TEA-100", 20);
    let orders: Vec<_> = (0..4).map(|_| shop.place("tea-100", 1, |_| {})).collect();
    let faults = shop.sandbox.faults();
    faults.inject(Some("getInventorySummaries"), Fault::Status(429), 2);
    faults.inject(Some("getInventorySummaries"), Fault::Slow(std::time::Duration::from_millis(200)), 1);
    shop.run(Stage::Check).await;
    assert!(orders.iter().all(|o| shop.status(o) == Status::ShippingRequested));

    let faults = shop.sandbox.faults();
    faults.inject(Some("getFulfillmentPreview"), Fault::Status(500), 3);
    faults.inject(Some("createFulfillmentOrder"), Fault::Malformed, 1);
    faults.inject(Some("createFulfillmentOrder"), Fault::ApplyThenHang(std::time::Duration::from_millis(1500)), 1);
    faults.inject(Some("createFulfillmentOrder"), Fault::Status(503), 1);
    shop.sandbox.expire_tokens();
    shop.run(Stage::Ship).await;
    assert!(
        orders.iter().all(|o| shop.status(o) == Status::Shipping),
        "{:?}",
        orders.iter().map(|o| shop.status(o)).collect::<Vec<_>>()
    );
    assert_eq!(shop.sandbox.orders().len(), 4, "exactly one MCF order per order");
    assert_eq!(shop.sandbox.tokens_issued(), 2, "one refresh after the token expired");
    let adopted = orders.iter().filter(|o| {
        shop.ledger
            .store()
            .read_stream(&o.stream())
            .unwrap()
            .iter()
            .any(|e| e.event_type == "McfOrderCreated" && e.data.contains("\"adopted\":true"))
    });
    // The create that answered garbage had taken effect: its retries met "already exists" and adopted it.
    assert!(adopted.count() >= 1, "a create whose answer was lost is adopted, not repeated");

    shop.sandbox.advance(Duration::hours(7));
    let faults = shop.sandbox.faults();
    faults.inject(Some("listAllFulfillmentOrders"), Fault::Status(429), 1);
    faults.inject(Some("getFulfillmentOrder"), Fault::Malformed, 1);
    faults.inject(Some("getFulfillmentOrder"), Fault::Status(500), 2);
    shop.run(Stage::Monitor).await;
    assert!(orders.iter().all(|o| shop.state(o).tracking.is_some()));
    assert!(shop.sandbox.faults().injected() >= 13, "{}", shop.sandbox.faults().injected());
    let audit = replay::audit::audit(shop.ledger.store()).unwrap();
    assert!(audit.anomalies.is_empty(), "{:?}", audit.anomalies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amazon_outage_defers_everything_and_the_next_cycle_resumes() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 5);
    let order = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    shop.sandbox.faults().start_outage(Fault::Status(503));
    let head = shop.ledger.store().head_position().unwrap();
    let report = shop.run(Stage::Ship).await;
    assert_eq!(report[0].deferred, 1);
    assert_eq!(shop.ledger.store().head_position().unwrap(), head, "nothing recorded while Amazon is down");
    let stage = mcf_ledger::cycle::run_stage(&mut shop.ledger, &shop.services, Stage::Check, Steps::unbounded()).await;
    assert!(stage.is_ok(), "no VERIFIED orders: check has nothing to ask Amazon");
    shop.sandbox.faults().lift();
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&order), Status::Shipping);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_shipping_order_cancels_at_amazon_until_picking_starts() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let early = shop.place("tea-100", 2, |_| {});
    let late = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert_eq!(shop.sandbox.fulfillable("JP-TEA-100"), Some(7));

    shop.operator_sets(&early, Status::Cancelled, "購入者からのキャンセル依頼");
    assert_eq!(shop.status(&early), Status::Shipping, "waits for Amazon");
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&early), Status::Cancelled);
    assert_eq!(shop.sandbox.order(&mcf_id(1)).unwrap().status, "Cancelled");
    assert_eq!(shop.sandbox.fulfillable("JP-TEA-100"), Some(9), "the reserved units are back");

    shop.sandbox.advance(Duration::hours(3));
    shop.operator_sets(&late, Status::Cancelled, "購入者からのキャンセル依頼");
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&late), Status::Error);
    let message = shop.state(&late).error.unwrap().message;
    assert!(message.contains("荷物は届きます") && message.contains("Amazonのメッセージ:"), "{message}");
    assert_eq!(shop.sandbox.order(&mcf_id(2)).unwrap().status, "Processing");
    // The way on: the parcel's return, then the order is CANCELLED; nothing else is allowed.
    let state = shop.state(&late);
    assert!(events::order::operator::allowed_targets_for(&state).is_empty());
    let handled = events::order::operator::decide_return_handled(&state, "返品受領、Yahooでキャンセル済み").unwrap();
    shop.append(&late, vec![handled], events::envelope::Actor::operator("sato"));
    assert_eq!(shop.status(&late), Status::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfulfillable_or_invalid_at_amazon_puts_the_order_in_error() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 10);
    let a = shop.place("tea-100", 1, |_| {});
    let b = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    shop.run(Stage::Ship).await;
    assert!(shop.sandbox.force_status(&mcf_id(1), "Unfulfillable"));
    assert!(shop.sandbox.force_status(&mcf_id(2), "INVALID"));
    shop.run(Stage::Monitor).await;
    assert_eq!(shop.status(&a), Status::Error);
    assert!(shop.state(&a).error.unwrap().message.contains("Unfulfillable"));
    assert!(shop.state(&b).error.unwrap().message.contains("Invalid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_create_and_its_record_never_creates_a_second_mcf_order() {
    let mut shop = Shop::open(AmazonSandboxConfig::default()).await;
    shop.sandbox.set_stock("JP-TEA-100", 5);
    let order = shop.place("tea-100", 1, |_| {});
    shop.run(Stage::Check).await;
    let config = shop.sandbox.config().clone();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
        .current_dir(shop.dir.path())
        .args(["--database", shop.database().to_str().unwrap(), "cycle", "--stage", "ship"])
        .env("MCF_FAILPOINT", "ship.after_create")
        .env("RUST_LOG", "warn")
        .env("SKU_MASTER_PATH", &shop.master)
        .env("AMAZON_CLIENT_ID", &config.client_id)
        .env("AMAZON_CLIENT_SECRET", &config.client_secret)
        .env("AMAZON_REFRESH_TOKEN", &config.refresh_token)
        .env("AMAZON_SP_API_BASE_URL", shop.sandbox.base_url())
        .env("AMAZON_LWA_TOKEN_URL", shop.sandbox.token_url())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success(), "the child must die at the failpoint");
    assert!(String::from_utf8_lossy(&output.stderr).contains("failpoint ship.after_create"));
    assert_eq!(shop.sandbox.create_requests(), 1);
    let state = shop.state(&order);
    assert_eq!(state.status, Some(Status::ShippingRequested), "the create was never recorded");
    assert!(state.mcf_intent.is_some(), "but its intent was");

    shop.ledger.catch_up().unwrap();
    shop.run(Stage::Ship).await;
    assert_eq!(shop.status(&order), Status::Shipping);
    assert_eq!(shop.sandbox.create_requests(), 1, "no second create");
    assert_eq!(shop.sandbox.orders().len(), 1);
    let events = shop.ledger.store().read_stream(&order.stream()).unwrap();
    assert!(events.last().unwrap().data.contains("\"adopted\":true"));
}

mod contract {
    //! The client and the sandbox against each other at the HTTP level, and the sandbox against
    //! requests our client would never send (wrong key case, no token, duplicates).
    use super::support::client_config;
    use events::SellerSku;
    use mcf_ledger::amazon::model::{CreateRequest, DestinationAddress, OrderItemRequest};
    use mcf_ledger::amazon::{AmazonClient, AmazonError};
    use mcf_ledger::config::Secret;
    use mcf_ledger::transport::RetryPolicy;
    use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
    use serde_json::{json, Value};

    async fn sandbox(config: AmazonSandboxConfig) -> (AmazonSandbox, AmazonClient) {
        let sandbox = AmazonSandbox::start(config).await.unwrap();
        let client = AmazonClient::new(client_config(&sandbox, RetryPolicy::fast())).unwrap();
        (sandbox, client)
    }

    fn create_request(id: &str, sku: &str) -> CreateRequest {
        CreateRequest {
            marketplace_id: "A1VC38T7YXB528".into(),
            seller_fulfillment_order_id: id.into(),
            displayable_order_id: id.into(),
            displayable_order_date: "2026-11-22T01:00:00Z".into(),
            displayable_order_comment: "Thank you".into(),
            shipping_speed_category: "Standard".into(),
            delivery_window: None,
            destination_address: DestinationAddress {
                name: "山田 花子".into(),
                address_line1: "渋谷区神南1-2-3".into(),
                address_line2: None,
                address_line3: None,
                state_or_region: "東京都".into(),
                postal_code: "150-0041".into(),
                country_code: "JP".into(),
                phone: None,
            },
            fulfillment_action: "Ship".into(),
            fulfillment_policy: "FillOrKill".into(),
            notification_emails: vec![],
            items: vec![OrderItemRequest {
                seller_sku: sku.into(),
                seller_fulfillment_order_item_id: format!("{id}-1"),
                quantity: 1,
            }],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_credentials_are_an_error_for_the_operator_not_a_retry_loop() {
        let sandbox = AmazonSandbox::start(AmazonSandboxConfig::default()).await.unwrap();
        let mut config = client_config(&sandbox, RetryPolicy::fast());
        config.credentials.refresh_token = Secret::new("Atzr|revoked");
        let err = AmazonClient::new(config).unwrap().inventory(&[SellerSku("A".into())]).await.unwrap_err();
        assert!(matches!(&err, AmazonError::Credentials { error, .. } if error == "invalid_grant"), "{err}");
        let mut config = client_config(&sandbox, RetryPolicy::fast());
        config.credentials.client_secret = Secret::new("wrong");
        let err = AmazonClient::new(config).unwrap().inventory(&[SellerSku("A".into())]).await.unwrap_err();
        assert!(err.to_string().contains("invalid_client: Client authentication failed"), "{err}");
        assert_eq!(sandbox.tokens_issued(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inventory_is_read_in_batches_of_50_following_every_page() {
        let (sandbox, client) =
            sandbox(AmazonSandboxConfig { inventory_page_size: 7, ..AmazonSandboxConfig::default() }).await;
        let skus: Vec<SellerSku> = (0..60).map(|n| SellerSku(format!("SKU-{n:03}"))).collect();
        for (n, sku) in skus.iter().enumerate().take(55) {
            sandbox.set_stock(&sku.0, n as u32);
        }
        let levels = client.inventory(&skus).await.unwrap();
        assert_eq!(levels.len(), 60);
        assert_eq!(levels[&SellerSku("SKU-054".into())].fulfillable, 54);
        assert_eq!(levels[&SellerSku("SKU-059".into())].fulfillable, 0, "unknown to FBA: absent, reported as none");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sandbox_is_strict_like_amazon() {
        let (sandbox, client) = sandbox(AmazonSandboxConfig::default()).await;
        sandbox.set_stock("JP-TEA", 3);
        client.create(&create_request("RK-1", "JP-TEA")).await.unwrap();
        let duplicate = client.create(&create_request("RK-1", "JP-TEA")).await.unwrap_err();
        assert_eq!(
            duplicate.amazon_message().unwrap().1,
            "A create request already exists for MerchantFulfillmentOrderId : RK-1"
        );
        let unknown = client.create(&create_request("RK-2", "NO-SUCH")).await.unwrap_err();
        assert_eq!(
            unknown.amazon_message().unwrap(),
            ("InvalidInput", "the SellerSKU for Item Id: RK-2-1 is invalid.")
        );
        let missing = client.get("RK-404").await.unwrap_err();
        assert!(matches!(missing, AmazonError::NotFound { .. }), "{missing}");
        // Japan's limits: a name over 15 characters, lines 1-3 over 40 together.
        let mut long_name = create_request("RK-3", "JP-TEA");
        long_name.destination_address.name = "株式会社サンプル商事 山田 太郎".into();
        let refused = client.create(&long_name).await.unwrap_err();
        assert!(
            refused.amazon_message().unwrap().1.contains("for parameter DestinationAddress.Name is invalid"),
            "{refused}"
        );
        let mut long_lines = create_request("RK-4", "JP-TEA");
        long_lines.destination_address.address_line1 = "一".repeat(30);
        long_lines.destination_address.address_line2 = Some("二".repeat(11));
        let refused = client.create(&long_lines).await.unwrap_err();
        assert!(
            refused.amazon_message().unwrap().1.contains("DestinationAddress.AddressLine1 is invalid"),
            "{refused}"
        );
        client.cancel("RK-1").await.unwrap();
        client.cancel("RK-1").await.expect("a repeated cancel counts as accepted");
        assert_eq!(client.get("RK-1").await.unwrap().status, mcf_ledger::amazon::model::OrderStatus::Cancelled);

        let http = reqwest::Client::new();
        let url = format!("{}/fba/outbound/2020-07-01/fulfillmentOrders", sandbox.base_url());
        let no_token = http.post(&url).header("user-agent", "test").json(&json!({})).send().await.unwrap();
        assert_eq!(no_token.status(), 403);
        let body: Value = no_token.json().await.unwrap();
        assert_eq!(body["errors"][0]["details"], "Access token is missing in the request header.");
        let bad_token = http
            .get(format!("{url}/RK-1"))
            .header("user-agent", "test")
            .header("x-amz-access-token", "Atza|forged")
            .send()
            .await
            .unwrap();
        assert_eq!(bad_token.status(), 403);

        // Wrong key case is a missing parameter, as at Amazon.
        let token_response: Value = http
            .post(sandbox.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "Atzr|sandbox-refresh-token"),
                ("client_id", "amzn1.application-oa2-client.sandbox"),
                ("client_secret", "sandbox-client-secret"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token_response["access_token"].as_str().unwrap().to_owned();
        let mut body = serde_json::to_value(create_request("RK-3", "JP-TEA")).unwrap();
        let id = body.as_object_mut().unwrap().remove("sellerFulfillmentOrderId").unwrap();
        body["SellerFulfillmentOrderId"] = id;
        let wrong_case = http
            .post(&url)
            .header("user-agent", "test")
            .header("x-amz-access-token", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_case.status(), 400);
        let errors: Value = wrong_case.json().await.unwrap();
        assert_eq!(errors["errors"][0]["message"], "The request must contain the parameter SellerFulfillmentOrderId.");
        let garbage = http
            .post(&url)
            .header("user-agent", "test")
            .header("x-amz-access-token", &token)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);
    }
}
