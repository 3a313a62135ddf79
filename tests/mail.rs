//! Mail against real servers: Debian's dovecot (IMAP) started per test on loopback.

mod support;

use mcf_ledger::config::Secret;
use mcf_ledger::mail::imap::{append, fetch_new, ImapConfig, ImapError, ImapSecurity};
use mcf_ledger::mail::parse::{parse, Classification};
use std::time::Duration;
use support::mail_servers::{Dovecot, PASSWORD, USER};

fn imap(port: u16, security: ImapSecurity) -> ImapConfig {
    ImapConfig {
        host: "127.0.0.1".into(),
        port,
        username: USER.into(),
        password: Secret::new(PASSWORD),
        mailbox: "INBOX".into(),
        security,
        accept_invalid_certs: true,
        timeout: Duration::from_secs(5),
    }
}

fn rakuten_order_mail(number: &str) -> Vec<u8> {
    use base64::Engine;
    let subject = base64::engine::general_purpose::STANDARD
        .encode(encoding_rs::ISO_2022_JP.encode("【楽天市場】注文内容ご確認（自動配信メール）").0);
    let mut raw = format!(
        "From: order@rakuten.co.jp\r\nTo: shop@example.jp\r\nSubject: =?ISO-2022-JP?B?{subject}?=\r\nMessage-ID: <{number}@rakuten.co.jp>\r\nDate: Sun, 22 Nov 2026 10:15:00 +0900\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    )
    .into_bytes();
    raw.extend(
        encoding_rs::ISO_2022_JP.encode(&format!("ご注文ありがとうございます。\r\n[受注番号] {number}\r\n")).0.iter(),
    );
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_messages_are_fetched_once_over_plain_and_tls_and_nothing_is_marked_read() {
    let dovecot = Dovecot::start();
    let plain = imap(dovecot.plain_port, ImapSecurity::Plain);
    append(&plain, &rakuten_order_mail("123456-20261122-0000000001")).await.unwrap();
    append(
        &plain,
        b"From: someone@example.com\r\nSubject: hello\r\nMessage-ID: <x@example.com>\r\n\r\nnot an order\r\n",
    )
    .await
    .unwrap();

    let first = fetch_new(&imap(dovecot.tls_port, ImapSecurity::ImplicitTls), None, 0).await.unwrap();
    assert_eq!(first.messages.len(), 2);
    let parsed = parse(&first.messages[0].raw);
    assert_eq!(
        parsed.classification,
        Classification::RakutenOrder { order_number: "123456-20261122-0000000001".into() }
    );
    assert_eq!(parse(&first.messages[1].raw).classification, Classification::Other);

    let last = first.messages.last().unwrap().uid;
    let again = fetch_new(&plain, Some(first.uid_validity), last).await.unwrap();
    assert!(
        again.messages.is_empty(),
        "nothing above the last UID: {:?}",
        again.messages.iter().map(|m| m.uid).collect::<Vec<_>>()
    );
    append(&plain, &rakuten_order_mail("123456-20261122-0000000002")).await.unwrap();
    let third = fetch_new(&plain, Some(first.uid_validity), last).await.unwrap();
    assert_eq!(third.messages.len(), 1);
    assert!(third.messages[0].uid > last);

    let cur = std::fs::read_dir(dovecot.maildir().join("cur")).map(|d| d.count()).unwrap_or(0);
    let new = std::fs::read_dir(dovecot.maildir().join("new")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cur + new, 3, "every message is still in the mailbox");
    let seen = std::fs::read_dir(dovecot.maildir().join("cur"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(":2,S"))
        .count();
    assert_eq!(seen, 0, "BODY.PEEK marks nothing read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_mailbox_is_read_from_the_start() {
    let dovecot = Dovecot::start();
    let plain = imap(dovecot.plain_port, ImapSecurity::Plain);
    append(&plain, &rakuten_order_mail("123456-20261122-0000000001")).await.unwrap();
    let before = fetch_new(&plain, None, 0).await.unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::remove_dir_all(dovecot.maildir()).unwrap();
    append(&plain, &rakuten_order_mail("123456-20261122-0000000009")).await.unwrap();
    let after = fetch_new(&plain, Some(before.uid_validity), 99).await.unwrap();
    assert_ne!(after.uid_validity, before.uid_validity);
    assert_eq!(after.messages.len(), 1, "a new UIDVALIDITY restarts from UID 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_a_dead_server_and_a_silent_server_are_clear_errors_not_hangs() {
    let dovecot = Dovecot::start();
    let mut wrong = imap(dovecot.plain_port, ImapSecurity::Plain);
    wrong.password = Secret::new("wrong");
    assert!(matches!(fetch_new(&wrong, None, 0).await, Err(ImapError::Login { .. })));

    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut quiet = imap(silent.local_addr().unwrap().port(), ImapSecurity::Plain);
    quiet.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = fetch_new(&quiet, None, 0).await.unwrap_err();
    assert!(matches!(err, ImapError::Timeout { step: "greeting", .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let port = dovecot.plain_port;
    drop(dovecot);
    let err = fetch_new(&imap(port, ImapSecurity::Plain), None, 0).await.unwrap_err();
    assert!(matches!(err, ImapError::Connect { .. }), "{err}");
}

mod intake {
    //! Mail as a detector in the receive stage, beside the RMS sandbox.
    use super::*;
    use chrono::{Duration as ChronoDuration, Utc};
    use events::order::{DetectionSource, Status};
    use events::{FixedClock, Marketplace, OrderKey};
    use mcf_ledger::cycle::Stage;
    use mcf_ledger::sandbox::rakuten::NewRakutenOrder;
    use support::Shop;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_order_mail_makes_the_order_visible_and_the_api_confirms_it_while_a_forged_one_never_ships() {
        let dovecot = Dovecot::start();
        let mut shop = Shop::with_rakuten(FixedClock::at(Utc::now())).await;
        let plain = imap(dovecot.plain_port, ImapSecurity::Plain);
        shop.services.imap = Some(plain.clone());
        let number = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
        append(&plain, &rakuten_order_mail(&number)).await.unwrap();
        let forged = "999999-20261122-0000000042";
        append(&plain, &rakuten_order_mail(forged)).await.unwrap();
        append(&plain, b"From: x@example.com\r\nSubject: =?UTF-8?B?44CQ5qW95aSp5biC5aC044CR5rOo5paH5YaF5a6544GU56K66KqN?=\r\n\r\nno number here\r\n").await.unwrap();

        shop.run(Stage::Receive).await;
        let real = shop.state(&OrderKey::new(Marketplace::Rakuten, &number).unwrap());
        assert!(
            real.detected_via.contains(&DetectionSource::Mail) && real.detected_via.contains(&DetectionSource::Api),
            "{:?}",
            real.detected_via
        );
        assert_eq!(real.status, Some(Status::AwaitingConfirmation));
        let fake = OrderKey::new(Marketplace::Rakuten, forged).unwrap();
        assert_eq!(shop.state(&fake).status, Some(Status::Received), "visible from the mail alone");
        let mails = shop.ledger.store().read_stream("mailbox-inbox").unwrap();
        let received: Vec<_> = mails.iter().filter(|e| e.event_type == "MailReceived").collect();
        assert_eq!(received.len(), 3);
        assert!(received[2].data.contains("carries no [受注番号]"), "{}", received[2].data);
        assert!(received.iter().all(|e| e.blob.is_some()), "raw bytes kept");

        for _ in 0..2 {
            shop.advance(ChronoDuration::minutes(10));
            shop.run(Stage::Receive).await;
            shop.run(Stage::Monitor).await;
            shop.run(Stage::Check).await;
        }
        assert_eq!(shop.state(&fake).status, Some(Status::Received), "the API never confirmed it: it never moves");
        assert!(shop.state(&fake).details.is_none());
        assert_eq!(
            shop.ledger
                .store()
                .read_stream("mailbox-inbox")
                .unwrap()
                .iter()
                .filter(|e| e.event_type == "MailReceived")
                .count(),
            3,
            "nothing read twice"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn amazons_shipment_mail_records_tracking_for_its_mcf_order() {
        let dovecot = Dovecot::start();
        let mut shop = Shop::with_rakuten(FixedClock::at(Utc::now())).await;
        shop.sandbox.set_stock("JP-TEA-100", 5);
        let number = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
        let order = OrderKey::new(Marketplace::Rakuten, &number).unwrap();
        shop.run(Stage::Receive).await;
        shop.advance(ChronoDuration::minutes(6));
        shop.run(Stage::Monitor).await;
        shop.run(Stage::Check).await;
        shop.run(Stage::Ship).await;
        assert_eq!(shop.status(&order), Status::Shipping);
        let plain = imap(dovecot.plain_port, ImapSecurity::Plain);
        shop.services.imap = Some(plain.clone());
        let mail = format!(
            "From: ship-confirm@amazon.co.jp\r\nSubject: Your Amazon order has shipped\r\nMessage-ID: <ship-1@amazon.co.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nOrder #: RK-{number}\r\n配送業者: ヤマト運輸\r\n追跡番号: 445566778899\r\n"
        );
        append(&plain, mail.as_bytes()).await.unwrap();
        shop.run(Stage::Receive).await;
        let tracking = shop.state(&order).tracking.expect("tracking from the mail");
        assert_eq!((tracking.carrier.as_str(), tracking.tracking_number.as_str()), ("ヤマト運輸", "445566778899"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_mailbox_is_recorded_and_the_marketplace_poll_still_runs() {
        let mut shop = Shop::with_rakuten(FixedClock::at(Utc::now())).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = imap(closed, ImapSecurity::Plain);
        config.timeout = std::time::Duration::from_millis(500);
        shop.services.imap = Some(config);
        let number = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
        let reports = shop.run(Stage::Receive).await;
        assert_eq!(reports[0].deferred, 1);
        let failures = shop.ledger.store().read_stream("poll-mailbox-inbox").unwrap();
        assert!(failures.iter().any(|e| e.event_type == "PollFailed" && e.data.contains("cannot connect")));
        assert_eq!(shop.status(&OrderKey::new(Marketplace::Rakuten, &number).unwrap()), Status::AwaitingConfirmation);
    }
}
