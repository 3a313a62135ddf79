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
