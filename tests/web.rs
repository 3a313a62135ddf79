//! The web admin over real HTTP against a real ledger file: auth, CSRF, every page, every
//! action, stale versions, the IP block and its expiry; and a real headless Chromium.

mod support;

use chrono::{Duration, TimeZone, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::order::{self, OrderEvent, Status};
use events::store::OpenMode;
use events::{FixedClock, Marketplace, OrderKey};
use mcf_ledger::web::{AppState, WebSettings};
use projections::ledger::OrderAppend;
use projections::Ledger;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const USER: &str = "operator1";
const PASSWORD: &str = "correct horse battery staple";

struct Admin {
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: FixedClock,
    base: String,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

fn key(marketplace: Marketplace, number: &str) -> OrderKey {
    OrderKey::new(marketplace, number).unwrap()
}

fn rakuten(n: u32) -> OrderKey {
    key(Marketplace::Rakuten, &format!("123456-20261122-{n:08}"))
}

fn place(ledger: &mut Ledger, key: &OrderKey, events: Vec<OrderEvent>) {
    let appends: Vec<OrderAppend> = events.into_iter().map(OrderAppend::from).collect();
    ledger.append_order(key, ExpectedVersion::Any, appends, Meta::by(Actor::reactor("test"))).unwrap();
}

/// One order per status (numbers 1..=10 in `Status::ALL` order), a Yahoo order, and a buyer
/// whose name is an attack.
fn seed(ledger: &mut Ledger) {
    for (n, status) in Status::ALL.into_iter().enumerate() {
        let key = rakuten(n as u32 + 1);
        place(ledger, &key, order::sample::lifecycle_to(&key, status));
    }
    let yahoo = key(Marketplace::Yahoo, "store-10000001");
    place(ledger, &yahoo, order::sample::lifecycle_to(&yahoo, Status::Received));
    let hostile = rakuten(99);
    place(
        ledger,
        &hostile,
        vec![
            order::sample::detected(&hostile, order::DetectionSource::Api),
            OrderEvent::OrderDetailsRecorded(order::sample::details("<script>alert(1)</script>", "tea-100", 1)),
        ],
    );
}

async fn start_server(path: &Path, clock: &FixedClock) -> (String, tokio::task::JoinHandle<()>) {
    start_server_with(path, clock, WebSettings::new(USER, PASSWORD, false).unwrap()).await
}

async fn start_server_with(
    path: &Path,
    clock: &FixedClock,
    settings: WebSettings,
) -> (String, tokio::task::JoinHandle<()>) {
    let ledger = Ledger::open_with_clock(path, OpenMode::MustExist, Arc::new(clock.clone())).unwrap();
    let state = AppState::new(ledger, settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        mcf_ledger::web::serve(listener, state, std::future::pending()).await.unwrap();
    });
    (base, server)
}

impl Admin {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.db");
        let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
        let mut ledger = Ledger::open_with_clock(&path, OpenMode::CreateIfMissing, Arc::new(clock.clone())).unwrap();
        seed(&mut ledger);
        drop(ledger);
        let (base, server) = start_server(&path, &clock).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { _dir: dir, path, clock, base, http, server }
    }

    async fn restart(&mut self) {
        self.server.abort();
        let (base, server) = start_server(&self.path, &self.clock).await;
        self.base = base;
        self.server = server;
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).basic_auth(USER, Some(PASSWORD)).send().await.unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).basic_auth(USER, Some(PASSWORD)).form(form).send().await.unwrap()
    }

    async fn csrf(&self) -> String {
        csrf_in(&self.page("/").await)
    }

    fn ledger(&self) -> Ledger {
        Ledger::open(&self.path, OpenMode::MustExist).unwrap()
    }

    fn state_of(&self, key: &OrderKey) -> events::order::OrderState {
        self.ledger().order_state(key).unwrap()
    }
}

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..start + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_needs_a_login_except_the_probe_and_sends_the_protective_headers() {
    let admin = Admin::start().await;
    for path in ["/", "/orders/rakuten-123456-20261122-00000001", "/todo", "/health", "/events"] {
        let anonymous = admin.http.get(format!("{}{path}", admin.base)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let wrong =
            admin.http.get(format!("{}{path}", admin.base)).basic_auth(USER, Some("wrong")).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let response = admin.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
    }
    let probe = admin.http.get(format!("{}/healthz", admin.base)).send().await.unwrap();
    assert_eq!(probe.status(), StatusCode::OK);
    assert_eq!(probe.text().await.unwrap(), "ok\n");
    assert!(WebSettings::new("admin", "", false).is_err(), "no password, no server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_counts_searches_sorts_pages_and_escapes() {
    let admin = Admin::start().await;
    let all = admin.page("/").await;
    for status in Status::ALL {
        assert!(all.contains(&format!("s-{}", status.as_str().to_lowercase())), "badge for {status}");
        assert!(all.contains(status.label()), "label for {status}");
    }
    assert!(all.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "the hostile name is shown as text");
    assert!(!all.contains("<script>alert(1)"), "and never as markup");
    // One ERROR order (number 10), and its tab says so.
    let errors = admin.page("/?status=ERROR").await;
    assert!(errors.contains("123456-20261122-00000010"));
    assert!(!errors.contains("123456-20261122-00000001\""), "only ERROR rows");
    assert!(errors.contains("エラー ERROR <b>1</b>"), "{errors}");
    let yahoo = admin.page("/?mp=yahoo").await;
    assert!(yahoo.contains("store-10000001") && !yahoo.contains("123456-20261122-00000003"));
    let search = admin.page("/?q=00000007").await;
    assert!(search.contains("123456-20261122-00000007") && !search.contains("123456-20261122-00000008"));
    let by_mcf = admin.page("/?q=RK-").await;
    assert!(by_mcf.contains("123456-20261122-00000007"), "an MCF id finds its order");
    let sorted = admin.page("/?sort=number").await;
    let first = sorted.find("123456-20261122-00000001").unwrap();
    let second = sorted.find("123456-20261122-00000002").unwrap();
    assert!(first < second, "numbers ascend");
    assert!(!admin.page("/").await.contains("id=\"next-page\""), "12 orders fit one page");
    for bad in ["/?status=SHIPED", "/?mp=amazon", "/?sort=evil", "/?page=0", "/?page=abc"] {
        assert_eq!(admin.get(bad).await.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let escaped = admin.page("/?q=%3Cimg%20src%3Dx%3E").await;
    assert!(escaped.contains("&#60;img src=x&#62;") && !escaped.contains("<img src=x>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_shows_the_order_its_advice_its_actions_and_its_timeline() {
    let admin = Admin::start().await;
    let shipped = admin.page("/orders/rakuten-123456-20261122-00000008").await;
    for expected in [
        "注文者情報",
        "配送情報",
        "山田 太郎",
        "150-0001",
        "JP-TEA-100",
        "123456789012",
        "ヤマト運輸",
        "RK-",
        "クレジットカード",
    ] {
        assert!(shipped.contains(expected), "detail shows {expected}");
    }
    assert!(shipped.contains("reactor:test"), "the timeline names the actor");
    assert!(shipped.contains("ShipmentReported"), "with the raw event a click away");
    let error = admin.page("/orders/rakuten-123456-20261122-00000010").await;
    assert!(error.contains("SKUMapping シートに追加後、VERIFIED に変更"), "the guide's advice for ERROR");
    assert!(error.contains("RMSで開く") && error.contains("orderNumber=123456-20261122-00000010"), "a link to RMS");
    let out_of_stock = admin.page("/orders/rakuten-123456-20261122-00000004").await;
    assert!(out_of_stock.contains("Amazonセラーセントラルで在庫補充"));
    assert!(out_of_stock.contains("value=\"VERIFIED\""), "OUT_OF_STOCK may go to VERIFIED");
    assert!(!out_of_stock.contains("value=\"RECEIVED\""), "but not to RECEIVED");
    assert!(
        !shipped.contains("id=\"status-form\"") && !shipped.contains("id=\"cancel-form\""),
        "a final order offers nothing"
    );
    assert_eq!(admin.get("/orders/rakuten-999").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(admin.get("/orders/nonsense").await.status(), StatusCode::NOT_FOUND);
    let hostile = admin.page("/orders/rakuten-123456-20261122-00000099").await;
    assert!(!hostile.contains("<script>alert"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_csrf_token_follow_the_guide_and_refuse_stale_versions() {
    let admin = Admin::start().await;
    let error = rakuten(10);
    let path = format!("/orders/{error}/status");
    let version = admin.state_of(&error).version.to_string();
    // No token, a wrong token: refused, nothing recorded.
    let no_token = admin.post(&path, &[("to", "VERIFIED"), ("reason", "fixed"), ("version", &version)]).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let forged = admin
        .post(&path, &[("csrf", &"0".repeat(64)), ("to", "VERIFIED"), ("reason", "fixed"), ("version", &version)])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(admin.state_of(&error).status, Some(Status::Error));
    let csrf = admin.csrf().await;
    // Not allowed from ERROR: refused with the allowed ones named.
    let refused =
        admin.post(&path, &[("csrf", &csrf), ("to", "SHIPPED"), ("reason", "x"), ("version", &version)]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("VERIFIED, RECEIVED, CANCELLED"));
    // A stale version: "changed, reload", nothing applied.
    let stale = (admin.state_of(&error).version - 1).to_string();
    let conflict =
        admin.post(&path, &[("csrf", &csrf), ("to", "VERIFIED"), ("reason", "x"), ("version", &stale)]).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert!(conflict.text().await.unwrap().contains("再読み込み"));
    assert_eq!(admin.state_of(&error).status, Some(Status::Error));
    // A 100,000-character reason is refused, with the limit named.
    let long = "あ".repeat(100_000);
    let too_long =
        admin.post(&path, &[("csrf", &csrf), ("to", "VERIFIED"), ("reason", &long), ("version", &version)]).await;
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert!(too_long.text().await.unwrap().contains("理由が長すぎます（100000文字、上限500文字）"));
    // Another site's page posting with the operator's login and even a valid token: refused.
    for (name, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")] {
        let forged_site = admin
            .http
            .post(format!("{}{path}", admin.base))
            .basic_auth(USER, Some(PASSWORD))
            .header(name, value)
            .form(&[("csrf", csrf.as_str()), ("to", "VERIFIED"), ("reason", "x"), ("version", version.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(forged_site.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(forged_site.text().await.unwrap().contains("別のサイトから送信されたフォームは受け付けません"));
    }
    assert_eq!(admin.state_of(&error).status, Some(Status::Error));
    // The real thing.
    let before = admin.page(&format!("/orders/{error}")).await.matches("<tr>").count();
    let applied = admin
        .post(&path, &[("csrf", &csrf), ("to", "VERIFIED"), ("reason", "SKU added to master"), ("version", &version)])
        .await;
    assert_eq!(applied.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.state_of(&error).status, Some(Status::Verified));
    let after = admin.page(&format!("/orders/{error}?done=status")).await;
    assert!(after.contains("operator:operator1") && after.contains("SKU added to master"));
    assert!(after.matches("<tr>").count() > before, "the timeline grew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_shipping_order_asks_first_and_says_the_mcf_order_goes_too() {
    let admin = Admin::start().await;
    let shipping = rakuten(7);
    let csrf = admin.csrf().await;
    let version = admin.state_of(&shipping).version.to_string();
    let path = format!("/orders/{shipping}/cancel");
    let ask = admin.post(&path, &[("csrf", &csrf), ("reason", "buyer asked"), ("version", &version)]).await;
    assert_eq!(ask.status(), StatusCode::OK);
    let text = ask.text().await.unwrap();
    assert!(text.contains("MCF注文も取り消されます") && text.contains("confirm_mcf"));
    assert_eq!(admin.state_of(&shipping).cancel_requested, None, "nothing before the confirmation");
    let confirmed = admin
        .post(&path, &[("csrf", &csrf), ("reason", "buyer asked"), ("version", &version), ("confirm_mcf", "yes")])
        .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert!(admin.state_of(&shipping).cancel_requested.is_some(), "the monitor stage cancels the MCF order next");
    // A VERIFIED order cancels at once; no reason, no cancel.
    let verified = rakuten(3);
    let version = admin.state_of(&verified).version.to_string();
    let path = format!("/orders/{verified}/cancel");
    assert_eq!(
        admin.post(&path, &[("csrf", &csrf), ("reason", " "), ("version", &version)]).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin.post(&path, &[("csrf", &csrf), ("reason", "dup"), ("version", &version)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let cancelled = admin.state_of(&verified);
    assert!(cancelled.status == Some(Status::Cancelled) || cancelled.cancel_requested.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_correction_keeps_the_old_address_beside_the_new() {
    let admin = Admin::start().await;
    let error = rakuten(10);
    let csrf = admin.csrf().await;
    let version = admin.state_of(&error).version.to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("version", version.as_str()),
        ("name", "山田 太郎"),
        ("postal_code", "150-0001"),
        ("prefecture", "東京都"),
        ("city", "渋谷区"),
        ("line1", "神宮前1-2-3"),
        ("line2", "101"),
        ("phone", ""),
        ("reason", "building name too long for Amazon"),
    ];
    let response = admin.post(&format!("/orders/{error}/address"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let state = admin.state_of(&error);
    assert_eq!(state.corrected_address.as_ref().and_then(|a| a.line2.as_deref()), Some("101"));
    assert_eq!(state.details.as_ref().and_then(|d| d.ship_to.line2.as_deref()), Some("サンプルマンション101"));
    let page = admin.page(&format!("/orders/{error}")).await;
    assert!(page.contains("修正前の住所") && page.contains("サンプルマンション101"));
    // The form counts what Amazon counts: 渋谷区 + 神宮前1-2-3 + 101 = 3 + 8 + 3.
    assert!(page.contains(">5 / 15文字<") && page.contains(">14 / 40文字<"), "{page}");
    let shipping = rakuten(7);
    let version = admin.state_of(&shipping).version.to_string();
    let mut refused = form;
    refused[1].1 = version.as_str();
    let response = admin.post(&format!("/orders/{shipping}/address"), &refused).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "the parcel is already with Amazon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_actions_apply_per_row_and_refuse_the_rest_with_reasons() {
    let admin = Admin::start().await;
    let csrf = admin.csrf().await;
    let row = |n: u32| format!("{}:{}", rakuten(n), admin.state_of(&rakuten(n)).version);
    let (out_of_stock, error, shipped, stale) = (row(4), row(10), row(8), format!("{}:1", rakuten(5)));
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "status"),
        ("to", "VERIFIED"),
        ("reason", "restocked"),
        ("order", out_of_stock.as_str()),
        ("order", error.as_str()),
        ("order", shipped.as_str()),
        ("order", stale.as_str()),
    ];
    let response = admin.post("/orders/bulk", &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("適用 2 件 / 拒否 2 件"), "{text}");
    assert!(
        text.contains("注文 rakuten-123456-20261122-00000008 を SHIPPED から VERIFIED には変更できません"),
        "{text}"
    );
    assert!(!text.contains("cannot"), "refusals are Japanese: {text}");
    assert!(text.contains("再読み込み"), "the stale row says reload");
    assert_eq!(admin.state_of(&rakuten(4)).status, Some(Status::Verified));
    assert_eq!(admin.state_of(&rakuten(10)).status, Some(Status::Verified));
    assert_eq!(admin.state_of(&rakuten(5)).status, Some(Status::ShippingRequested));
    // Bulk cancel: the SHIPPING row needs the MCF confirmation box.
    let shipping = row(7);
    let received = row(1);
    let cancel = [
        ("csrf", csrf.as_str()),
        ("action", "cancel"),
        ("reason", "shop closed"),
        ("order", shipping.as_str()),
        ("order", received.as_str()),
    ];
    let text = admin.post("/orders/bulk", &cancel).await.text().await.unwrap();
    assert!(text.contains("適用 1 件 / 拒否 1 件") && text.contains("MCF"), "{text}");
    let without_token = [("action", "cancel"), ("reason", "x"), ("order", received.as_str())];
    assert_eq!(admin.post("/orders/bulk", &without_token).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_todo_list_shows_the_guides_manual_emails_and_marks_them_done_once() {
    let admin = Admin::start().await;
    let todo = admin.page("/todo").await;
    assert!(todo.contains("store-10000001") && todo.contains("注文受付メール"), "Yahoo order received email");
    assert!(todo.contains("サンクスメール"), "Rakuten thanks email at SHIPPING_REQUESTED (card)");
    assert!(todo.contains("出荷通知"), "shipping notice at SHIPPED");
    assert!(todo.contains("123456-20261122-00000004"), "OUT_OF_STOCK waits on a human");
    let csrf = csrf_in(&todo);
    let yahoo = key(Marketplace::Yahoo, "store-10000001");
    let path = format!("/orders/{yahoo}/tasks");
    let done = admin.post(&path, &[("csrf", &csrf), ("task", "yahoo_order_received_email")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(!admin.page("/todo").await.contains("store-10000001"));
    let again = admin.post(&path, &[("csrf", &csrf), ("task", "yahoo_order_received_email")]).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let bogus = admin.post(&path, &[("csrf", &csrf), ("task", "<b>x</b>")]).await;
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    let done_events = admin.state_of(&yahoo).tasks_done;
    assert_eq!(done_events, vec!["yahoo_order_received_email".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_event_log_pages_read_the_streams() {
    let admin = Admin::start().await;
    {
        let mut ledger = admin.ledger();
        let failed = events::source::SourceEvent::PollFailed(events::source::PollFailed {
            window_start: Utc::now(),
            window_end: Utc::now(),
            error: "RMS 503 Service Unavailable".into(),
            kind: events::system::FailureKind::Outage,
        });
        ledger
            .append("poll-rakuten", ExpectedVersion::Any, &[failed.to_new_event(Meta::by(Actor::reactor("receive")))])
            .unwrap();
        // A cycle whose process was killed: it started, and never finished.
        use events::system::{CycleStarted, SystemEvent};
        let started = SystemEvent::CycleStarted(CycleStarted {
            holder: "cron-host:999999".into(),
            stages: vec!["receive".into(), "check".into()],
        });
        ledger.append("system", ExpectedVersion::Any, &[started.to_new_event(Meta::by(Actor::system()))]).unwrap();
        // A shipping registration whose answer was lost: pending until RMS is read back.
        let pending = events::order::OrderEvent::WriteIntended(events::order::WriteIntended {
            write: events::order::OutsideWrite::RakutenShipping,
        });
        ledger
            .append(
                "order-rakuten-123456-20261122-00000001",
                ExpectedVersion::Any,
                &[pending.to_new_event(Meta::by(Actor::reactor("notify")))],
            )
            .unwrap();
    }
    // The stale stage checks the expiry dates only the configuration knows.
    let today = events::Clock::now(&admin.clock).with_timezone(&events::clock::jst()).date_naive();
    let dates = mcf_ledger::config::CredentialDates {
        yahoo_public_key_expires: Some(today + chrono::Duration::days(200)),
        yahoo_consent: Some(today - chrono::Duration::days(20)),
        amazon_client_secret_expires: Some(today + chrono::Duration::days(5)),
    };
    let settings = mcf_ledger::stages::stale::AlertSettings {
        admin_email: Some("admin@example.jp".into()),
        stale_after: chrono::Duration::hours(48),
        credential_expiries: mcf_ledger::stages::stale::AlertSettings::expiries_from(&dates),
    };
    {
        let mut ledger =
            Ledger::open_with_clock(&admin.path, OpenMode::MustExist, Arc::new(admin.clock.clone())).unwrap();
        let poll = mcf_ledger::stages::sources::PollSettings::default();
        for _ in 0..2 {
            mcf_ledger::stages::stale::alert(&mut ledger, None, &settings, &poll).await.unwrap();
        }
        let warned = ledger.store().read_stream_of_types("poll-amazon", &["CredentialExpiring"]).unwrap();
        assert_eq!(warned.len(), 1, "warned once a day");
        let yahoo = ledger.store().read_stream_of_types("poll-yahoo", &["CredentialExpiring"]).unwrap();
        assert_eq!(yahoo.len(), 1, "the refresh token (consent + 28 days) is 8 days from expiry; the key is not");
        let alerts = ledger.store().read_stream_of_types("system", &["AlertIntended"]).unwrap();
        assert!(alerts.iter().any(|a| a.data.contains("AMAZON_CLIENT_SECRET expires in 5 days")));
    }
    let health = admin.page("/health").await;
    assert!(health.contains("楽天 RMS") && health.contains("RMS 503 Service Unavailable"));
    assert!(health.contains("Amazon SP-API"));
    let secret = format!("AMAZON_CLIENT_SECRET の期限 {} (残り5日)", today + chrono::Duration::days(5));
    assert!(health.contains(&secret), "{health}");
    let key = format!("YAHOO_PUBLIC_KEY の期限 {} (残り200日)", today + chrono::Duration::days(200));
    assert!(health.contains(&key) && health.contains("YAHOO_REFRESH_TOKEN の期限"), "{health}");
    assert!(!health.contains(">poll-amazon<"), "Amazon's credentials are shown in its own row");
    assert!(health.contains("中断 (プロセス終了: process ended)"), "a dead cycle is not shown as running: {health}");
    assert!(health.contains("実行者 cron-host:999999") && health.contains("実行中のサイクルはありません"), "{health}");
    let writes = &health[health.find("id=\"open-writes\"").expect("the open writes table")..];
    assert!(
        writes.contains("楽天への発送登録 (updateOrderShippingAsync)")
            && writes.contains("href=\"/orders/rakuten-123456-20261122-00000001\""),
        "{writes}"
    );
    let order = admin.page("/orders/rakuten-123456-20261122-00000001").await;
    assert!(order.contains("送信済み・結果未確認"), "the order shows its pending write");
    let events = admin.page("/events").await;
    assert!(events.contains("PollFailed") && events.contains("OrderDetected"));
    let filtered = admin.page("/events?stream=poll-rakuten").await;
    assert!(filtered.contains("PollFailed") && !filtered.contains("OrderDetected"));
    let by_type = admin.page("/events?type=ShipmentReported").await;
    assert!(by_type.contains("order-rakuten-123456-20261122-00000008") && !by_type.contains("PollFailed"));
    let by_actor = admin.page("/events?actor=reactor:receive").await;
    assert!(by_actor.contains("PollFailed") && !by_actor.contains("OrderDetected"));
    assert_eq!(admin.get("/events?before=x").await.status(), StatusCode::BAD_REQUEST);
    let incidents = admin.page("/incidents?from=2026-11-01%2000:00&to=2030-01-01%2000:00").await;
    assert!(incidents.contains("インシデント報告") && incidents.contains("RMS 503 Service Unavailable"), "{incidents}");
    assert!(incidents.contains("id=\"incident-arrived\""));
    assert_eq!(admin.get("/incidents?from=soon").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(admin.get("/blobs/zz").await.status(), StatusCode::NOT_FOUND);
}

/// The CSV of the filtered list: Japanese headers, JST times, UTF-8 with a BOM for Excel, or
/// Shift_JIS; the same filters as the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_follows_the_lists_filters_in_utf8_with_a_bom_or_shift_jis() {
    let admin = Admin::start().await;
    let response = admin.get("/orders.csv?status=SHIPPED").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"orders-"));
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "a BOM for Excel");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&headers[..3], ["注文番号", "マーケット", "注文日 (JST)"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "only the SHIPPED order");
    assert_eq!(&rows[0][0], "123456-20261122-00000008");
    assert_eq!(&rows[0][5], "SHIPPED");
    assert_eq!(&rows[0][10], "123456789012", "the tracking number");
    assert!(rows[0][2].ends_with(" JST"), "{}", &rows[0][2]);

    let sjis = admin.get("/orders.csv?encoding=sjis").await;
    assert_eq!(sjis.headers()["content-type"], "text/csv; charset=Shift_JIS");
    let sjis_bytes = sjis.bytes().await.unwrap();
    let (text, _, malformed) = encoding_rs::SHIFT_JIS.decode(&sjis_bytes);
    assert!(!malformed && text.starts_with("注文番号,マーケット"), "{text}");
    assert!(text.contains("山田 太郎") && text.lines().count() >= 12, "every order: {text}");
    assert!(text.contains("'=HYPERLINK") || !text.contains(",=HYPERLINK"), "no formula starts a cell");

    let bad = admin.get("/orders.csv?encoding=latin1").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("文字コード"));
}

/// Search by anything on the label, and the order-date range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_finds_an_order_by_tracking_number_phone_address_or_sku_and_by_date() {
    let admin = Admin::start().await;
    let rows = |html: &str| html.matches("name=\"order\" value=").count();
    let by_tracking = admin.page("/?q=123456789012").await;
    assert_eq!(rows(&by_tracking), 1, "the shipped order's tracking number");
    assert!(by_tracking.contains("123456-20261122-00000008"));
    let by_phone = admin.page("/?q=0312345678").await;
    assert!(rows(&by_phone) >= 10, "every sample buyer's phone, typed without hyphens");
    assert!(rows(&admin.page("/?q=%E7%A5%9E%E5%AE%AE%E5%89%8D").await) >= 10, "an address (神宮前)");
    assert_eq!(rows(&admin.page("/?q=no-such-thing-anywhere").await), 0);
    // The sample orders were placed on 2026-11-22 (JST).
    assert!(rows(&admin.page("/?from=2026-11-22&to=2026-11-22").await) >= 10);
    assert_eq!(rows(&admin.page("/?from=2026-11-23").await), 0);
    let bad = admin.get("/?from=22/11/2026").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("2026-12-01 の形"));
    let page = admin.page("/?q=123456789012").await;
    assert!(page.contains("/orders.csv?q=123456789012"), "the export link carries the filters");
}

/// A cancellation Amazon refused has one way on: the parcel's return, recorded by the operator;
/// DATE_UNAVAILABLE may take a slot Amazon offered; a memo goes into the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_have_a_way_on_the_return_a_slot_amazon_offered_and_a_memo() {
    let admin = Admin::start().await;
    let shipping = rakuten(7);
    {
        let mut ledger = admin.ledger();
        place(
            &mut ledger,
            &shipping,
            vec![
                OrderEvent::CancellationRequested(order::CancellationRequested {
                    source: order::CancelSource::Operator,
                    reason: "購入者の依頼".into(),
                }),
                OrderEvent::McfCancelRefused(order::Reason { reason: "OrderNotCancellable".into() }),
            ],
        );
    }
    let page = admin.page(&format!("/orders/{shipping}")).await;
    assert!(page.contains("id=\"return-form\"") && page.contains("返品を手配"), "the way on is offered");
    assert!(!page.contains("id=\"status-form\""), "no status change puts it back on the shipping path");
    let csrf = admin.csrf().await;
    let version = admin.state_of(&shipping).version.to_string();
    let to_verified = admin
        .post(
            &format!("/orders/{shipping}/status"),
            &[("csrf", &csrf), ("version", &version), ("to", "VERIFIED"), ("reason", "x")],
        )
        .await;
    assert_eq!(to_verified.status(), StatusCode::BAD_REQUEST);
    assert!(to_verified.text().await.unwrap().contains("返品対応済み"));
    let no_note = admin
        .post(&format!("/orders/{shipping}/return"), &[("csrf", &csrf), ("version", &version), ("note", " ")])
        .await;
    assert_eq!(no_note.status(), StatusCode::BAD_REQUEST);
    let handled = admin
        .post(
            &format!("/orders/{shipping}/return"),
            &[("csrf", &csrf), ("version", &version), ("note", "返品受領、楽天でキャンセル済み")],
        )
        .await;
    assert_eq!(handled.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.state_of(&shipping).status, Some(Status::Cancelled));

    let unavailable = rakuten(6);
    let version = admin.state_of(&unavailable).version.to_string();
    let page = admin.page(&format!("/orders/{unavailable}")).await;
    assert!(page.contains("id=\"slot-form\"") && page.contains("2026-11-25 18-20"), "Amazon's slots offered");
    let invented = admin
        .post(
            &format!("/orders/{unavailable}/slot"),
            &[("csrf", &csrf), ("version", &version), ("slot", "2026-11-25 08-12"), ("reason", "x")],
        )
        .await;
    assert_eq!(invented.status(), StatusCode::BAD_REQUEST);
    assert!(invented.text().await.unwrap().contains("Amazonが提示した枠ではありません"));
    let chosen = admin
        .post(
            &format!("/orders/{unavailable}/slot"),
            &[("csrf", &csrf), ("version", &version), ("slot", "2026-11-25 18-20"), ("reason", "お客様と電話で調整")],
        )
        .await;
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    let state = admin.state_of(&unavailable);
    assert_eq!(
        (state.status, state.delivery_slot_chosen.as_deref()),
        (Some(Status::ShippingRequested), Some("2026-11-25 18-20"))
    );

    let shipped = rakuten(8);
    let memo =
        admin.post(&format!("/orders/{shipped}/memo"), &[("csrf", &csrf), ("memo", "お客様から電話: 受取済み")]).await;
    assert_eq!(memo.status(), StatusCode::SEE_OTHER);
    let page = admin.page(&format!("/orders/{shipped}")).await;
    assert!(page.contains("メモ: お客様から電話: 受取済み") && page.contains("operator:operator1"), "in the timeline");
}

/// Named operators from a users file: each action is recorded as who did it; the single login
/// still works, and a wrong password is refused like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_operators_log_in_from_the_users_file_and_their_actions_carry_their_names() {
    let mut admin = Admin::start().await;
    let users = admin.path.with_file_name("users");
    mcf_ledger::web::users::add_user(&users, "sato", "sakura-2026").unwrap();
    admin.server.abort();
    let settings = WebSettings::new(USER, PASSWORD, false).unwrap().with_users_file(&users).unwrap();
    let (base, server) = start_server_with(&admin.path, &admin.clock, settings).await;
    admin.base = base;
    admin.server = server;
    let as_sato = |path: &str| admin.http.get(format!("{}{path}", admin.base)).basic_auth("sato", Some("sakura-2026"));
    let page = as_sato("/").send().await.unwrap().text().await.unwrap();
    let csrf = csrf_in(&page);
    let shipped = rakuten(8);
    let memo = admin
        .http
        .post(format!("{}/orders/{shipped}/memo", admin.base))
        .basic_auth("sato", Some("sakura-2026"))
        .form(&[("csrf", csrf.as_str()), ("memo", "佐藤が確認")])
        .send()
        .await
        .unwrap();
    assert_eq!(memo.status(), StatusCode::SEE_OTHER);
    let events = admin.ledger().store().read_stream(&shipped.stream()).unwrap();
    assert_eq!(events.last().unwrap().meta.actor.as_str(), "operator:sato");
    let wrong = admin.http.get(format!("{}/", admin.base)).basic_auth("sato", Some("wrong")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(admin.get("/").await.status(), StatusCode::OK, "the single login still works");
}

/// What operators looked up elsewhere: the SKU master in use with the last FBA stock, and the
/// held Rakuten orders with the days RMS leaves before it cancels them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_page_and_the_held_orders_on_the_todo_list() {
    let admin = Admin::start().await;
    let master = admin.path.with_file_name("master.xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet().set_name("SKUMapping").unwrap();
    for (c, title) in ["marketplace_sku", "seller_sku", "quantity"].iter().enumerate() {
        sheet.write_string(0, c as u16, *title).unwrap();
    }
    // tea-100, and a gift set of different products: one tea and two cups.
    for (r, (key, seller, units)) in
        [("tea-100", "JP-TEA-100", 1), ("gift", "JP-TEA-100", 1), ("gift", "JP-CUP", 2)].into_iter().enumerate()
    {
        sheet.write_string(r as u32 + 1, 0, key).unwrap();
        sheet.write_string(r as u32 + 1, 1, seller).unwrap();
        sheet.write_number(r as u32 + 1, 2, f64::from(units)).unwrap();
    }
    workbook.save(&master).unwrap();
    {
        let mut ledger = admin.ledger();
        mcf_ledger::stages::check::SkuMaster::new(&master).mapping(&mut ledger).unwrap();
        let read = events::stock::StockEvent::FbaStockRead(events::stock::FbaStockRead {
            by: "check".into(),
            whole: false,
            levels: vec![
                events::stock::FbaLevel { seller_sku: "JP-TEA-100".into(), fulfillable: 37 },
                events::stock::FbaLevel { seller_sku: "JP-CUP".into(), fulfillable: 5 },
            ],
        });
        ledger
            .append(
                events::stock::FBA_STOCK_STREAM,
                ExpectedVersion::Any,
                &[read.to_new_event(Meta::by(Actor::reactor("check")))],
            )
            .unwrap();
        let held = rakuten(2);
        place(&mut ledger, &held, vec![OrderEvent::OrderHeld(order::Reason { reason: "楽天確認中".into() })]);
    }
    let page = admin.page("/master").await;
    assert!(page.contains("master.xlsx") && page.contains("tea-100") && page.contains("JP-TEA-100"), "{page}");
    assert!(page.contains(">37<"), "the last FBA stock: {page}");
    assert!(page.contains("gift") && page.contains("JP-CUP"), "each part of the set: {page}");
    let stock = admin.page("/stock").await;
    assert!(
        stock.contains("セット: JP-TEA-100×1（33セット分）、JP-CUP×2（2セット分）"),
        "the set's parts and what each makes (4 teas allotted to open orders): {stock}"
    );
    let todo = admin.page("/todo").await;
    let held = &todo[todo.find("id=\"held\"").unwrap()..];
    // Ordered 2026-11-22, the test's clock says 2026-11-22 10:00 JST: 14 days left.
    assert!(held.contains("楽天確認中") && held.contains("あと14日"), "{held}");
}

/// An internal error tells the operator that nothing recorded was lost and gives a reference
/// to the server's log, never the system's own detail (tables, paths, SQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_shows_a_reference_not_the_systems_detail() {
    let admin = Admin::start().await;
    {
        let mut ledger = admin.ledger();
        let failed = events::source::SourceEvent::PollFailed(events::source::PollFailed {
            window_start: Utc::now(),
            window_end: Utc::now(),
            error: "RMS 503".into(),
            kind: events::system::FailureKind::Outage,
        });
        ledger
            .append("poll-rakuten", ExpectedVersion::Any, &[failed.to_new_event(Meta::by(Actor::reactor("receive")))])
            .unwrap();
        // A damaged projection row: the page cannot be built from it.
        ledger.store().connection().execute("UPDATE source_status SET state = '{not json'", []).unwrap();
    }
    let response = admin.get("/health").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let page = response.text().await.unwrap();
    assert!(page.contains("記録済みの内容は失われていません") && page.contains("参照番号"), "{page}");
    assert!(!page.contains("source_status") && !page.contains("poll-rakuten") && !page.contains("json"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_failed_logins_block_the_ip_for_fifteen_minutes_even_across_a_restart() {
    let mut admin = Admin::start().await;
    for _ in 0..10 {
        let wrong = admin.http.get(format!("{}/", admin.base)).basic_auth(USER, Some("guess")).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = admin.get("/").await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password is refused now");
    assert!(blocked.headers().contains_key("retry-after"));
    let recorded = admin.ledger().store().read_stream("security").unwrap();
    assert_eq!(recorded.iter().filter(|e| e.event_type == "LoginFailed").count(), 10);
    assert_eq!(recorded.iter().filter(|e| e.event_type == "IpBlocked").count(), 1);
    admin.restart().await;
    assert_eq!(admin.get("/").await.status(), StatusCode::TOO_MANY_REQUESTS, "a restart does not lift it");
    admin.clock.advance(Duration::minutes(14));
    assert_eq!(admin.get("/").await.status(), StatusCode::TOO_MANY_REQUESTS);
    admin.clock.advance(Duration::minutes(1));
    assert_eq!(admin.get("/").await.status(), StatusCode::OK, "the block expires after 15 minutes");
}

/// Debian's Chromium, driven by chromedriver through thirtyfour. chromedriver chooses its own
/// port (`--port=0`) and says which, so no other process can take it in between; every step
/// waits, with a deadline, for what the operator would wait for (a page, an element, a text).
struct Browser {
    driver: thirtyfour::WebDriver,
    chromedriver: tokio::process::Child,
    _profile: tempfile::TempDir,
    /// Where the browser saves downloads.
    downloads: tempfile::TempDir,
}

/// How long a step may wait for the page to show what it should.
const STEP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

impl Browser {
    async fn start() -> Self {
        use thirtyfour::{ChromiumLikeCapabilities, DesiredCapabilities};
        use tokio::io::AsyncBufReadExt;
        let mut chromedriver = tokio::process::Command::new("chromedriver")
            .arg("--port=0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test installs it)");
        let mut lines = tokio::io::BufReader::new(chromedriver.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(STEP_DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').parse::<u16>().unwrap();
                }
            }
            panic!("chromedriver ended without saying its port")
        })
        .await
        .expect("chromedriver did not start");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = DesiredCapabilities::chrome();
        capabilities.set_binary("/usr/bin/chromium").unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            capabilities.add_arg(arg).unwrap();
        }
        let downloads = tempfile::tempdir().unwrap();
        capabilities
            .add_experimental_option(
                "prefs",
                serde_json::json!({
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                }),
            )
            .unwrap();
        let driver = thirtyfour::WebDriver::new(format!("http://127.0.0.1:{port}"), capabilities).await.unwrap();
        Self { driver, chromedriver, _profile: profile, downloads }
    }

    async fn goto(&self, url: &str) {
        self.driver.goto(url).await.unwrap();
    }

    /// The element, once the page has it.
    async fn find(&self, css: &str) -> thirtyfour::WebElement {
        use thirtyfour::prelude::ElementQueryable;
        self.driver
            .query(thirtyfour::By::Css(css))
            .wait(STEP_DEADLINE, std::time::Duration::from_millis(50))
            .first()
            .await
            .unwrap_or_else(|e| panic!("no {css} within {STEP_DEADLINE:?}: {e}"))
    }

    /// How many elements match, once it is `expected` (the page may still be loading).
    async fn count_becomes(&self, css: &str, expected: usize) {
        let deadline = std::time::Instant::now() + STEP_DEADLINE;
        loop {
            let count = self.driver.find_all(thirtyfour::By::Css(css)).await.map_or(0, |found| found.len());
            if count == expected {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{css}: {count} elements, never {expected}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.driver.find_all(thirtyfour::By::Css(css)).await.unwrap().len()
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    /// The element's text, once it contains `expected`.
    async fn text_becomes(&self, css: &str, expected: &str) -> String {
        let deadline = std::time::Instant::now() + STEP_DEADLINE;
        loop {
            let text = match self.driver.find(thirtyfour::By::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(expected) {
                return text;
            }
            if std::time::Instant::now() >= deadline {
                let page = self.source().await;
                panic!("{css} never showed {expected:?}; last {text:?}; the page:\n{page}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The bytes of the first file that finished downloading (Chromium writes `.crdownload` first).
    async fn downloaded(&self) -> (String, Vec<u8>) {
        let deadline = std::time::Instant::now() + STEP_DEADLINE;
        loop {
            let done = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "csv"));
            if let Some(path) = done {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                return (name, std::fs::read(path).unwrap());
            }
            assert!(std::time::Instant::now() < deadline, "no download finished");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn source(&self) -> String {
        self.driver.source().await.unwrap()
    }

    /// Saves a PNG screenshot under target/tmp/web-screenshots/ (the test's artifacts).
    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.driver.screenshot_as_png().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn quit(mut self) {
        let _ = self.driver.quit().await;
        let _ = self.chromedriver.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_in_a_real_browser_logs_in_filters_opens_an_order_and_changes_its_status() {
    let mut admin = Admin::start().await;
    // Named operators beside the single login.
    let users = admin.path.with_file_name("users");
    mcf_ledger::web::users::add_user(&users, "sato", "sakura-2026").unwrap();
    admin.server.abort();
    let settings = WebSettings::new(USER, PASSWORD, false).unwrap().with_users_file(&users).unwrap();
    (admin.base, admin.server) = start_server_with(&admin.path, &admin.clock, settings).await;
    {
        // An order whose cancellation Amazon refused: the parcel is on its way.
        let mut ledger = admin.ledger();
        place(
            &mut ledger,
            &rakuten(7),
            vec![
                OrderEvent::CancellationRequested(order::CancellationRequested {
                    source: order::CancelSource::Operator,
                    reason: "購入者の依頼".into(),
                }),
                OrderEvent::McfCancelRefused(order::Reason { reason: "OrderNotCancellable".into() }),
            ],
        );
    }
    let browser = Browser::start().await;
    let host = admin.base.trim_start_matches("http://");
    browser.goto(&format!("http://{USER}:{}@{host}/", PASSWORD.replace(' ', "%20"))).await;
    browser.text_becomes("h1", "注文一覧").await;
    browser.count_becomes("#orders tbody tr", 12).await;
    let list = browser.screenshot("order-list").await;
    // Filter: the ERROR tab.
    browser.click("#status-tabs a[href='/?status=ERROR']").await;
    browser.count_becomes("#orders tbody tr", 2).await;
    // Open it.
    browser.click("#orders a[href='/orders/rakuten-123456-20261122-00000010']").await;
    browser.text_becomes("#status-badge", "ERROR").await;
    browser.text_becomes("#problem", "SKUMapping シートに追加後、VERIFIED に変更").await;
    let before = browser.count("#timeline tbody tr").await;
    browser.screenshot("order-detail-error").await;
    // Change the status with a reason; the page comes back with a notice and a longer timeline.
    browser.type_into("#status-form input[name=reason]", "master.xlsx に追加しました").await;
    browser.click("#change-status").await;
    browser.text_becomes("#notice", "ステータスを変更しました").await;
    browser.text_becomes("#status-badge", "VERIFIED").await;
    browser.count_becomes("#timeline tbody tr", before + 1).await;
    assert!(browser.source().await.contains("operator:operator1"));
    let detail = browser.screenshot("order-detail-verified").await;
    // The address form counts as Amazon does while the operator types (admin.js).
    browser.click("#address-correction summary").await;
    let name = browser.find("#address-correction input[name=name]").await;
    name.clear().await.unwrap();
    name.send_keys("株式会社サンプル商事 山田 太郎").await.unwrap();
    browser.text_becomes("#name-counter", "16 / 15文字").await;
    let class = browser.find("#name-counter").await.attr("class").await.unwrap();
    assert_eq!(class.as_deref(), Some("refused"), "over the limit is marked");
    let line2 = browser.find("#address-correction input[name=line2]").await;
    let building = line2.value().await.unwrap().unwrap_or_default().chars().count();
    let lines_text = browser.find("#lines-counter").await.text().await.unwrap();
    let lines: usize = lines_text.split(' ').next().unwrap().parse().unwrap();
    assert!(building > 0, "the sample order has a building");
    line2.clear().await.unwrap();
    browser.text_becomes("#lines-counter", &format!("{} / 40文字", lines - building)).await;

    // Search by a tracking number, then export what the list shows.
    browser.goto(&format!("http://{USER}:{}@{host}/", PASSWORD.replace(' ', "%20"))).await;
    browser.type_into("#filters input[name=q]", "123456789012").await;
    browser.click("#apply-filters").await;
    browser.count_becomes("#orders tbody tr", 1).await;
    browser.text_becomes("#orders tbody", "123456-20261122-00000008").await;
    browser.click("#export-csv").await;
    let (name, csv) = browser.downloaded().await;
    assert!(name.starts_with("orders-") && name.ends_with(".csv"), "{name}");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    assert!(csv.starts_with("\u{feff}".as_bytes()) && text.starts_with("注文番号,"), "{text}");
    assert_eq!(text.lines().count(), 2, "the header and the one order found: {text}");

    // A cancellation Amazon refused, walked to "return handled".
    browser.goto(&format!("http://{USER}:{}@{host}/orders/{}", PASSWORD.replace(' ', "%20"), rakuten(7))).await;
    browser.text_becomes("#problem", "返品を手配").await;
    assert_eq!(browser.count("#status-form").await, 0, "nothing puts it back on the shipping path");
    let exception = browser.screenshot("order-detail-exception").await;
    browser.type_into("#return-form input[name=note]", "返品受領、楽天でキャンセル済み").await;
    browser.click("#return-handled").await;
    browser.text_becomes("#notice", "返品対応済み").await;
    browser.text_becomes("#status-badge", "CANCELLED").await;

    // A named operator's memo carries her name in the timeline.
    browser.goto(&format!("http://sato:sakura-2026@{host}/orders/{}", rakuten(8))).await;
    browser.type_into("#memo-form input[name=memo]", "佐藤: お客様に発送済みと連絡").await;
    browser.click("#add-memo").await;
    browser.text_becomes("#notice", "メモを記録しました").await;
    browser.text_becomes("#timeline", "operator:sato").await;

    // The to-do page, for the README.
    browser.goto(&format!("http://{USER}:{}@{host}/todo", PASSWORD.replace(' ', "%20"))).await;
    browser.text_becomes("h1", "To-Do").await;
    let todo = browser.screenshot("todo").await;
    browser.quit().await;
    println!("screenshots: {} {}", exception.display(), todo.display());
    assert_eq!(admin.state_of(&rakuten(10)).status, Some(Status::Verified));
    println!("screenshots: {} {}", list.display(), detail.display());
}

/// The stock page shows a held plan with its reasons and the confirm button; confirming records
/// who let it go (once: a second confirm is refused); health shows the sync's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_stock_plan_is_shown_and_confirmed_from_the_stock_page() {
    use events::stock::{StockEvent, StockSyncHeld, STOCK_SYNC_STREAM};
    let admin = Admin::start().await;
    {
        let mut ledger = admin.ledger();
        let held = StockEvent::StockSyncHeld(StockSyncHeld {
            reasons: vec!["販売中の 10 SKU のうち 8 SKU が一度に在庫0になります（上限 30%）".into()],
        });
        ledger
            .append(STOCK_SYNC_STREAM, ExpectedVersion::Any, &[held.to_new_event(Meta::by(Actor::reactor("stock")))])
            .unwrap();
    }
    let page = admin.page("/stock").await;
    assert!(page.contains("在庫の反映を止めています") && page.contains("8 SKU が一度に在庫0"), "{page}");
    assert!(page.contains("承認して反映"), "the confirm button");
    let health = admin.page("/health").await;
    assert!(health.contains("止めています（承認待ち）"), "{health}");

    let refused = admin.post("/stock/confirm", &[("csrf", "forged")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "no confirmation without the form's token");
    let csrf = csrf_in(&page);
    let confirmed = admin.post("/stock/confirm", &[("csrf", csrf.as_str())]).await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    let events = admin.ledger().store().read_stream_of_types(STOCK_SYNC_STREAM, &["StockSyncConfirmed"]).unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].data.contains(USER), "who confirmed is recorded: {}", events[0].data);
    let page = admin.page("/stock?done=confirmed").await;
    assert!(page.contains("承認しました") && page.contains("承認済みです"), "{page}");
    let again = admin.post("/stock/confirm", &[("csrf", csrf.as_str())]).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "nothing left to confirm");
}
