//! Mail against real servers: Debian's dovecot (IMAP) started per test on loopback.

mod support;

use mcf_ledger::config::Secret;
use mcf_ledger::mail::imap::{append, fetch_new, ImapConfig, ImapError, ImapSecurity};
use mcf_ledger::mail::parse::{parse, Classification};
use mcf_ledger::mail::smtp::{Mailer, SmtpConfig, SmtpSecurity};
use sandbox::mailbox::{notices, MailAccount, MailSandbox, MailSandboxConfig};
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

/// An IMAP server that greets, logs in and selects, then drops the connection during FETCH.
async fn server_that_dies_mid_fetch() -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"* OK IMAP4rev1 ready\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let tag = line.split_whitespace().next().unwrap_or("*").to_owned();
            let command = line.split_whitespace().nth(1).unwrap_or("").to_ascii_uppercase();
            match command.as_str() {
                "LOGIN" => write.write_all(format!("{tag} OK logged in\r\n").as_bytes()).await.unwrap(),
                "SELECT" => write
                    .write_all(
                        format!("* 3 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n{tag} OK [READ-WRITE] done\r\n").as_bytes(),
                    )
                    .await
                    .unwrap(),
                _ => {
                    // Half a literal, then gone.
                    let _ = write.write_all(b"* 1 FETCH (UID 1 BODY[] {500}\r\nFrom: a@b\r\n").await;
                    return;
                }
            }
        }
    });
    port
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

    let mut dying = imap(server_that_dies_mid_fetch().await, ImapSecurity::Plain);
    dying.timeout = Duration::from_secs(2);
    let err = fetch_new(&dying, None, 0).await.unwrap_err();
    assert!(
        matches!(err, ImapError::Protocol { step: "fetch", .. } | ImapError::Timeout { step: "fetch", .. }),
        "{err}"
    );
}

mod intake {
    //! Mail as a detector in the receive stage, beside the RMS sandbox.
    use super::*;
    use chrono::{Duration as ChronoDuration, Utc};
    use events::order::{DetectionSource, Status};
    use events::{FixedClock, Marketplace, OrderKey};
    use mcf_ledger::cycle::Stage;
    use sandbox::rakuten::NewRakutenOrder;
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
        let first: serde_json::Value = serde_json::from_str(&received[0].data).unwrap();
        assert_eq!(first["date"], "2026-11-22T01:15:00Z");
        assert_eq!(first["from"], "order@rakuten.co.jp");
        assert_eq!(first["classification"]["kind"], "rakuten_order");
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

mod sending {
    //! Alerts and customer emails through a real SMTP server (aiosmtpd), read back from what it captured.
    use super::*;
    use chrono::{Duration as ChronoDuration, Utc};
    use events::envelope::{Actor, ExpectedVersion, Meta};
    use events::order::{CustomerEmailSending, EmailState, OrderEvent, Status};
    use events::{FixedClock, Marketplace, OrderKey};
    use mcf_ledger::cycle::Stage;
    use mcf_ledger::mail::smtp::{Mailer, SmtpConfig, SmtpSecurity};
    use projections::ledger::OrderAppend;
    use sandbox::faults::Fault;
    use sandbox::rakuten::NewRakutenOrder;
    use support::mail_servers::SmtpSink;
    use support::Shop;

    fn smtp(port: u16) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            credentials: None,
            from: "shop@example.jp".into(),
            security: SmtpSecurity::Plain,
            accept_invalid_certs: false,
            timeout: Duration::from_secs(5),
        }
    }

    /// (recipient, decoded subject, decoded body) of every captured message.
    fn captured(sink: &SmtpSink) -> Vec<(String, String, String)> {
        sink.messages()
            .iter()
            .map(|raw| {
                let text = String::from_utf8_lossy(raw);
                let to = text.lines().find_map(|l| l.strip_prefix("X-RcptTo: ")).unwrap_or("").trim().to_owned();
                let message = mail_parser::MessageParser::default().parse(raw).unwrap();
                (
                    to,
                    message.subject().unwrap_or("").to_owned(),
                    message.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn payment_guidance_stale_warnings_daily_summary_and_outage_alerts_go_out_once_each() {
        let sink = SmtpSink::start();
        let mut shop = Shop::with_rakuten(FixedClock::at(Utc::now())).await;
        shop.sandbox.set_stock("JP-TEA-100", 5);
        shop.services.mailer = Some(Mailer::new(smtp(sink.port)).unwrap());
        let prepaid = shop.rms().place(NewRakutenOrder::prepaid("tea-100", 1));
        let card = shop.rms().place(NewRakutenOrder::card("tea-100", 1));
        let unmapped = shop.rms().place(NewRakutenOrder::card("matcha-50", 1));
        shop.run(Stage::Receive).await;
        shop.advance(ChronoDuration::minutes(6));
        shop.run(Stage::Monitor).await;
        shop.run(Stage::Check).await;
        shop.run(Stage::Ship).await;
        assert_eq!(shop.status(&OrderKey::new(Marketplace::Rakuten, &card).unwrap()), Status::Shipping);
        assert_eq!(shop.status(&OrderKey::new(Marketplace::Rakuten, &unmapped).unwrap()), Status::Error);

        shop.run(Stage::Stale).await;
        shop.run(Stage::Stale).await;
        let mails = captured(&sink);
        let guidance: Vec<_> = mails.iter().filter(|(_, s, _)| s.contains("ご入金のお願い")).collect();
        assert_eq!(guidance.len(), 1, "the payment guidance goes out once: {mails:?}");
        assert!(guidance[0].0.ends_with("@pc.fw.rakuten.ne.jp"), "to the buyer: {}", guidance[0].0);
        assert!(guidance[0].2.contains(&prepaid) && guidance[0].2.contains("楽天 太郎 様"), "{}", guidance[0].2);
        let summary: Vec<_> = mails.iter().filter(|(_, s, _)| s.contains("orders need you")).collect();
        assert_eq!(summary.len(), 1, "one daily summary");
        assert!(summary[0].0 == "admin@example.jp" && summary[0].2.contains(&unmapped));
        let prepaid_state = shop.state(&OrderKey::new(Marketplace::Rakuten, &prepaid).unwrap());
        assert_eq!(prepaid_state.emails[0].state, EmailState::Sent);

        shop.advance(ChronoDuration::hours(49));
        shop.run(Stage::Stale).await;
        shop.run(Stage::Stale).await;
        let stale: Vec<_> = captured(&sink).into_iter().filter(|(_, s, _)| s.contains("滞留警告")).collect();
        assert_eq!(stale.len(), 1, "each stale order is warned once");
        assert!(stale[0].2.contains(&card), "{}", stale[0].2);

        shop.rms().faults().start_outage(Fault::Status(503));
        for _ in 0..4 {
            shop.advance(ChronoDuration::minutes(10));
            shop.run(Stage::Receive).await;
        }
        shop.run(Stage::Stale).await;
        shop.rms().faults().lift();
        shop.rms().place(NewRakutenOrder::card("tea-100", 1));
        shop.run(Stage::Receive).await;
        shop.run(Stage::Stale).await;
        let mails = captured(&sink);
        assert_eq!(mails.iter().filter(|(_, s, _)| s.contains("障害発生")).count(), 1, "one email when it starts");
        let recovered: Vec<_> = mails.iter().filter(|(_, s, _)| s.contains("復旧")).collect();
        assert_eq!(recovered.len(), 1, "one when it recovers");
        assert!(recovered[0].1.contains("1 orders backfilled"), "{}", recovered[0].1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starttls_is_spoken_and_a_plain_client_is_refused_by_a_server_that_requires_it() {
        let sink = SmtpSink::start_tls();
        let tls = SmtpConfig { security: SmtpSecurity::StartTls, accept_invalid_certs: true, ..smtp(sink.port) };
        Mailer::new(tls).unwrap().send("admin@example.jp", "【テスト】STARTTLS", "本文").await.unwrap();
        let mails = captured(&sink);
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].1, "【テスト】STARTTLS");
        let plain = Mailer::new(smtp(sink.port)).unwrap().send("admin@example.jp", "x", "y").await;
        assert!(plain.is_err(), "the server requires STARTTLS");
        let checked = SmtpConfig { security: SmtpSecurity::StartTls, ..smtp(sink.port) };
        let err = Mailer::new(checked).unwrap().send("admin@example.jp", "x", "y").await.unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "a self-signed certificate is refused unless allowed: {err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_email_whose_outcome_is_unknown_is_never_resent_and_alerts_wait_for_smtp() {
        let sink = SmtpSink::start();
        let mut shop = Shop::with_rakuten(FixedClock::at(Utc::now())).await;
        shop.leaves_open("the payment guidance's outcome is unknown: the operator decides, the system never resends");
        let prepaid = shop.rms().place(NewRakutenOrder::prepaid("tea-100", 1));
        let unmapped = shop.rms().place(NewRakutenOrder::card("matcha-50", 1));
        shop.run(Stage::Receive).await;
        shop.advance(ChronoDuration::minutes(6));
        shop.run(Stage::Monitor).await;
        shop.run(Stage::Check).await;
        assert_eq!(shop.status(&OrderKey::new(Marketplace::Rakuten, &unmapped).unwrap()), Status::Error);

        // No SMTP configured: the alert is recorded, nothing is lost, nothing fails.
        shop.run(Stage::Stale).await;
        let system = shop.ledger.store().read_stream("system").unwrap();
        assert!(system.iter().any(|e| e.event_type == "AlertIntended"));
        assert!(!system.iter().any(|e| e.event_type == "AlertSent"));

        // A crash after the attempt was recorded: the outcome is unknown.
        let order = OrderKey::new(Marketplace::Rakuten, &prepaid).unwrap();
        let email_id = shop.state(&order).emails[0].email_id.clone();
        let sending = OrderEvent::CustomerEmailSending(CustomerEmailSending { email_id });
        shop.ledger
            .append_order(
                &order,
                ExpectedVersion::Any,
                vec![OrderAppend::from(sending)],
                Meta::by(Actor::reactor("stale")),
            )
            .unwrap();

        // SMTP down: the alert fails and waits; then SMTP comes back.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        shop.services.mailer = Some(Mailer::new(smtp(closed)).unwrap());
        let report = shop.run(Stage::Stale).await;
        assert_eq!(report[0].deferred, 1);
        assert!(shop.ledger.store().read_stream("system").unwrap().iter().any(|e| e.event_type == "AlertFailed"));
        shop.services.mailer = Some(Mailer::new(smtp(sink.port)).unwrap());
        shop.run(Stage::Stale).await;
        let mails = captured(&sink);
        assert_eq!(mails.len(), 1, "the daily summary, and no customer email: {mails:?}");
        assert!(mails[0].1.contains("orders need you"));
        let state = shop.state(&order);
        assert_eq!(state.emails[0].state, EmailState::Sending, "left for the operator");
        assert!(state.has_unresolved_email_intent());
    }
}

// The sandbox mail server, spoken to through the system's own IMAP client and mailer (its raw
// protocol is tested in the sandbox crate).

fn sandbox_shop() -> MailAccount {
    MailAccount { user: "shop".into(), password: "imap-secret".into(), address: "shop@example.jp".into() }
}

async fn sandbox(smtp_requires_auth: bool) -> MailSandbox {
    MailSandbox::start(MailSandboxConfig { accounts: vec![sandbox_shop()], smtp_requires_auth, ..Default::default() })
        .await
        .unwrap()
}

fn imap_config(mail: &MailSandbox, password: &str) -> ImapConfig {
    ImapConfig {
        host: mail.host(),
        port: mail.imap_port(),
        username: "shop".into(),
        password: Secret::new(password),
        mailbox: "INBOX".into(),
        security: ImapSecurity::Plain,
        accept_invalid_certs: false,
        timeout: Duration::from_secs(5),
    }
}

/// IDLE through the system's client: quiet when nothing comes, told at once when mail comes
/// (or came since last looked at), and "unsupported" from a server without IDLE.
#[tokio::test]
async fn the_systems_imap_client_waits_for_mail_with_idle() {
    use mcf_ledger::mail::imap::{mark, wait_for_change, MailboxWait};
    let mail = sandbox(false).await;
    let config = imap_config(&mail, "imap-secret");
    let seen = mark(&config).await.unwrap();
    let quiet = wait_for_change(&config, Some(seen), Duration::from_millis(300)).await.unwrap();
    assert_eq!(quiet, MailboxWait::Quiet);

    let waiting = tokio::spawn({
        let config = config.clone();
        async move { wait_for_change(&config, Some(seen), Duration::from_secs(60)).await }
    });
    // Deliver only once the client is idling: the sandbox counts its IDLE sessions.
    while mail.idling() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    mail.deliver("shop@example.jp", b"Subject: new\r\n\r\nnew order\r\n".to_vec());
    let told = tokio::time::timeout(Duration::from_secs(30), waiting).await.expect("told, not timed out");
    assert_eq!(told.unwrap().unwrap(), MailboxWait::Changed);

    let came_before = wait_for_change(&config, Some(seen), Duration::from_secs(60)).await.unwrap();
    assert_eq!(came_before, MailboxWait::Changed, "mail since the last look is reported without waiting");

    let old = MailSandbox::start(MailSandboxConfig {
        accounts: vec![sandbox_shop()],
        imap_idle: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let unsupported = wait_for_change(&imap_config(&old, "imap-secret"), None, Duration::from_secs(60)).await.unwrap();
    assert_eq!(unsupported, MailboxWait::Unsupported);
}

fn notice_time() -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::TimeZone;
    events::clock::jst().with_ymd_and_hms(2026, 12, 2, 6, 17, 41).unwrap()
}

#[tokio::test]
async fn the_systems_imap_client_reads_new_mail_once_and_sees_a_recreated_mailbox() {
    let mail = sandbox(false).await;
    let config = imap_config(&mail, "imap-secret");
    append(&config, b"Subject: appended\r\nMessage-ID: <a@x>\r\n\r\nby APPEND\r\n").await.unwrap();
    mail.deliver("shop@example.jp", b"Subject: delivered\r\n\r\nby SMTP\r\n".to_vec());
    let first = fetch_new(&config, None, 0).await.unwrap();
    assert_eq!(first.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 2]);
    assert!(first.messages[0].raw.ends_with(b"by APPEND\r\n"));
    let again = fetch_new(&config, Some(first.uid_validity), 2).await.unwrap();
    assert!(again.messages.is_empty());
    assert!(mail.recreate_mailbox("shop"));
    mail.deliver("shop@example.jp", b"Subject: after\r\n\r\nnew\r\n".to_vec());
    let after = fetch_new(&config, Some(first.uid_validity), 2).await.unwrap();
    assert_ne!(after.uid_validity, first.uid_validity);
    assert_eq!(after.messages.len(), 1, "a new UIDVALIDITY is read from the start");
    let refused = fetch_new(&imap_config(&mail, "wrong"), None, 0).await.unwrap_err();
    assert!(matches!(refused, ImapError::Login { .. }), "{refused}");
}

#[tokio::test]
async fn the_systems_mailer_sends_through_it_with_and_without_auth() {
    for requires_auth in [false, true] {
        let mail = sandbox(requires_auth).await;
        let config = |credentials: Option<(&str, &str)>| SmtpConfig {
            host: mail.host(),
            port: mail.smtp_port(),
            credentials: credentials.map(|(u, p)| (u.to_owned(), Secret::new(p))),
            from: "shop@example.jp".into(),
            security: SmtpSecurity::Plain,
            accept_invalid_certs: false,
            timeout: std::time::Duration::from_secs(5),
        };
        let credentials = requires_auth.then_some(("shop", "imap-secret"));
        let mailer = Mailer::new(config(credentials)).unwrap();
        mailer.send("buyer@example.com", "お支払いのご案内", "本文です").await.unwrap();
        let relayed = mail.relayed();
        assert_eq!(relayed.len(), 1);
        let parsed = parse(&relayed[0].raw);
        assert_eq!(parsed.subject, "お支払いのご案内");
        if requires_auth {
            let anonymous = Mailer::new(config(None)).unwrap();
            let error = anonymous.send("buyer@example.com", "x", "y").await.unwrap_err();
            assert!(error.reason.contains("530") || error.reason.contains("Authentication"), "{error}");
        }
    }
}

#[test]
fn each_notice_is_read_as_what_it_is() {
    let lines = vec![("有機緑茶 100g".to_owned(), 2, 1280)];
    let rakuten = notices::rakuten_order(
        "緑茶本舗",
        "123456-20261202-0000000001",
        notice_time(),
        "佐藤 一郎",
        "クレジットカード",
        &lines,
    );
    let parsed = parse(&rakuten);
    assert_eq!(parsed.subject, "【楽天市場】注文内容ご確認（自動配信メール）");
    assert_eq!(
        parsed.classification,
        Classification::RakutenOrder { order_number: "123456-20261202-0000000001".into() }
    );
    assert_eq!(parsed.date.map(|d| d.timestamp()), Some(notice_time().timestamp()));

    let yahoo = notices::yahoo_order("緑茶本舗", "demo-green-tea-10000001", notice_time(), "鈴木 花子", &lines);
    assert_eq!(parse(&yahoo).classification, Classification::YahooOrder { order_id: "demo-green-tea-10000001".into() });

    let amazon = notices::amazon_shipment(
        "RK-123456-20261202-0000000001",
        notices::carrier_name("YAMATO"),
        "123456789012",
        notice_time(),
    );
    assert_eq!(
        parse(&amazon).classification,
        Classification::McfShipment {
            fulfillment_order_id: "RK-123456-20261202-0000000001".into(),
            tracking_number: Some("123456789012".into()),
            carrier: Some("ヤマト運輸".into()),
        }
    );
}

/// An SMTP server that takes one message and holds its final answer until told to give it.
async fn smtp_that_waits_before_accepting(
) -> (u16, tokio::sync::oneshot::Receiver<()>, tokio::sync::oneshot::Sender<()>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_data, data_seen) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 slow.example ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        let mut got_data = Some(got_data);
        let mut released = Some(released);
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    if let Some(tx) = got_data.take() {
                        let _ = tx.send(());
                    }
                    if let Some(rx) = released.take() {
                        let _ = rx.await;
                    }
                    write.write_all(b"250 queued\r\n").await.unwrap();
                }
                continue;
            }
            let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "EHLO" => b"250 slow.example\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 ok\r\n",
            };
            write.write_all(answer).await.unwrap();
        }
    });
    (port, data_seen, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_emails_outcome_is_recorded_even_when_an_operator_acted_during_the_smtp_call() {
    use events::envelope::{Actor, ExpectedVersion, Meta};
    use events::order::{sample, CustomerEmailIntended, EmailState, ManualTaskDone, OrderEvent, Status};
    use events::store::OpenMode;
    use projections::ledger::OrderAppend;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let key: events::OrderKey = "rakuten-123456-20261202-00000007".parse().unwrap();
    {
        let mut ledger = projections::Ledger::open(&path, OpenMode::CreateIfMissing).unwrap();
        let mut events = sample::lifecycle_to(&key, Status::AwaitingConfirmation);
        events.push(OrderEvent::CustomerEmailIntended(CustomerEmailIntended {
            email_id: "payment-guidance-rakuten-123456-20261202-00000007".into(),
            kind: "payment_guidance".into(),
        }));
        let appends = events.into_iter().map(OrderAppend::from).collect();
        ledger.append_order(&key, ExpectedVersion::Any, appends, Meta::by(Actor::reactor("receive"))).unwrap();
    }
    let (port, data_seen, release) = smtp_that_waits_before_accepting().await;
    let mailer = Mailer::new(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        credentials: None,
        from: "shop@example.jp".into(),
        security: SmtpSecurity::Plain,
        accept_invalid_certs: false,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let settings = mcf_ledger::stages::receive::customer_mail::CustomerMailSettings::default();
    let stage_path = path.clone();
    let stage = tokio::spawn(async move {
        let mut ledger = projections::Ledger::open(&stage_path, OpenMode::MustExist).unwrap();
        mcf_ledger::stages::receive::customer_mail::send(&mut ledger, Some(&mailer), &settings).await.unwrap();
        ledger
    });
    // The mail is with the SMTP server; an operator acts on the order before it answers.
    data_seen.await.unwrap();
    {
        let mut operator = projections::Ledger::open(&path, OpenMode::MustExist).unwrap();
        let done = OrderEvent::ManualTaskDone(ManualTaskDone { task: "note".into(), note: "電話あり".into() });
        operator
            .append_order(
                &key,
                ExpectedVersion::Any,
                vec![OrderAppend::from(done)],
                Meta::by(Actor::operator("tanaka")),
            )
            .unwrap();
    }
    release.send(()).unwrap();
    let ledger = stage.await.unwrap();
    let state = ledger.order_state(&key).unwrap();
    assert_eq!(
        state.emails[0].state,
        EmailState::Sent,
        "the outcome is an observation: recorded after the operator's event"
    );
    let types: Vec<String> =
        ledger.store().read_stream(&key.stream()).unwrap().into_iter().map(|e| e.event_type).collect();
    assert_eq!(types[types.len() - 3..], ["CustomerEmailSending", "ManualTaskDone", "CustomerEmailSent"]);
}

/// `mcf-ledger run` with a timer far away and the fallback poll too (MAIL_CHECK_SECONDS): only
/// dovecot's IDLE can start the second cycle in time, and it does, reading the order the mail
/// announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_run_new_mail_starts_a_cycle_at_once_instead_of_at_the_next_timer() {
    use events::store::OpenMode;
    use events::EventStore;
    use tokio::io::AsyncBufReadExt;
    let dovecot = Dovecot::start();
    let plain = imap(dovecot.plain_port, ImapSecurity::Plain);
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shop.db");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
        .env_remove("DATABASE")
        .arg("--database")
        .arg(&database)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let amazon = sandbox::amazon::AmazonSandbox::start(Default::default()).await.unwrap();
    let rms = sandbox::rakuten::RakutenSandbox::start(Default::default(), std::sync::Arc::new(sandbox::WallClock))
        .await
        .unwrap();
    let amazon_config = amazon.config();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcf-ledger"))
        .env_remove("DATABASE")
        .env("RUST_LOG", "warn")
        .env("WEB_USERNAME", "admin")
        .env("WEB_PASSWORD", "s3cret-daemon")
        .env("AMAZON_CLIENT_ID", &amazon_config.client_id)
        .env("AMAZON_CLIENT_SECRET", &amazon_config.client_secret)
        .env("AMAZON_REFRESH_TOKEN", &amazon_config.refresh_token)
        .env("AMAZON_SP_API_BASE_URL", amazon.base_url())
        .env("AMAZON_LWA_TOKEN_URL", amazon.token_url())
        .env("RAKUTEN_SERVICE_SECRET", &rms.config().service_secret)
        .env("RAKUTEN_LICENSE_KEY", &rms.config().license_key)
        .env("RAKUTEN_API_BASE_URL", rms.base_url())
        .env("IMAP_HOST", "127.0.0.1")
        .env("IMAP_PORT", dovecot.plain_port.to_string())
        .env("IMAP_SECURITY", "none")
        .env("IMAP_USERNAME", USER)
        .env("IMAP_PASSWORD", PASSWORD)
        .env("SKU_MASTER_PATH", dir.path().join("missing-master.xlsx"))
        .env("CYCLE_MINUTES", "60")
        .env("MAIL_CHECK_SECONDS", "3600")
        .arg("--database")
        .arg(&database)
        .args(["run", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("web admin on") {
            break;
        }
    }
    let count = |event_type: &str| {
        let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
        store.read_stream("system").unwrap().iter().filter(|e| e.event_type == event_type).count()
    };
    let detected = |number: &str| {
        let store = EventStore::open(&database, OpenMode::ReadOnly).unwrap();
        let stream = format!("order-rakuten-{number}");
        store.read_stream(&stream).unwrap().iter().any(|e| e.event_type == "OrderDetected")
    };
    // Generous deadlines: a busy machine is slow, and only new mail can start cycle 2 here.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count("CycleFinished") < 1 {
        assert!(std::time::Instant::now() < deadline, "the first cycle did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = mcf_ledger::mail::imap::mark(&plain).await.unwrap();
    assert_eq!(before.exists, 0, "{before:?}");
    let number = "123456-20261122-0000000077";
    append(&plain, &rakuten_order_mail(number)).await.unwrap();
    let after = mcf_ledger::mail::imap::mark(&plain).await.unwrap();
    assert_eq!((after.exists, after.uid_validity), (1, before.uid_validity), "{after:?}");
    assert!(after.uid_next > before.uid_next, "{before:?} then {after:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !detected(number) {
        assert!(std::time::Instant::now() < deadline, "the mail did not start a cycle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("CycleStarted"), 2, "one cycle at start, one for the mail; the timer is an hour away");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "a graceful stop exits 0");
}
