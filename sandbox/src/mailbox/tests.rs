//! The sandbox mail server spoken to in raw protocol lines written from RFC 3501 and RFC 5321.
//! (The service's tests speak to it through the system's own IMAP and SMTP clients.)

use super::*;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

fn shop() -> MailAccount {
    MailAccount { user: "shop".into(), password: "imap-secret".into(), address: "shop@example.jp".into() }
}

async fn sandbox(smtp_requires_auth: bool) -> MailSandbox {
    MailSandbox::start(MailSandboxConfig { accounts: vec![shop()], smtp_requires_auth, ..Default::default() })
        .await
        .unwrap()
}

/// A raw protocol conversation: send a line, read what the server answers.
struct Wire {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Wire {
    async fn connect(port: u16) -> (Self, String) {
        let socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, writer) = socket.into_split();
        let mut wire = Self { reader: tokio::io::BufReader::new(read), writer };
        let greeting = wire.line().await;
        (wire, greeting)
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).await.unwrap();
        line
    }

    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.unwrap();
    }

    /// Lines until the one starting with `tag ` (IMAP) or a final `NNN ` (SMTP).
    async fn until(&mut self, end: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            assert!(!line.is_empty(), "the server closed the connection; so far {lines:?}");
            let done = line.starts_with(end);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

#[tokio::test]
async fn imap_answers_as_rfc_3501_says() {
    let mail = sandbox(false).await;
    mail.deliver("shop@example.jp", b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nfirst\r\n".to_vec());
    mail.deliver("SHOP@example.jp", b"Subject: two\r\n\r\nsecond\r\n".to_vec());
    let (mut wire, greeting) = Wire::connect(mail.imap_port()).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");

    wire.send("a1 SELECT INBOX\r\n").await;
    assert!(wire.until("a1 ").await.last().unwrap().starts_with("a1 BAD"), "nothing before LOGIN");
    wire.send("a2 LOGIN shop wrong\r\n").await;
    assert!(wire.until("a2 ").await[0].starts_with("a2 NO [AUTHENTICATIONFAILED]"));
    // A password sent as a synchronizing literal waits for the continuation.
    wire.send("a3 LOGIN shop {11}\r\n").await;
    assert!(wire.line().await.starts_with("+ "));
    wire.send("imap-secret\r\n").await;
    assert!(wire.until("a3 ").await[0].starts_with("a3 OK"));

    wire.send("a4 SELECT Archive\r\n").await;
    assert!(wire.until("a4 ").await[0].starts_with("a4 NO [NONEXISTENT]"));
    wire.send("a5 SELECT inbox\r\n").await;
    let selected = wire.until("a5 ").await.join("");
    assert!(selected.contains("* 2 EXISTS"), "{selected}");
    assert!(selected.contains("[UIDVALIDITY "), "{selected}");
    assert!(selected.contains("[UIDNEXT 3]"), "{selected}");
    assert!(selected.contains("a5 OK [READ-WRITE]"), "{selected}");

    wire.send("a6 UID FETCH 2:* (UID FLAGS BODY.PEEK[])\r\n").await;
    let first = wire.line().await;
    assert_eq!(first, "* 2 FETCH (UID 2 FLAGS () BODY[] {24}\r\n");
    let mut body = vec![0; 24];
    wire.reader.read_exact(&mut body).await.unwrap();
    assert_eq!(body, b"Subject: two\r\n\r\nsecond\r\n");
    assert_eq!(wire.line().await, ")\r\n");
    assert!(wire.until("a6 ").await[0].starts_with("a6 OK"));
    assert_eq!(mail.seen("shop", 2), Some(false), "BODY.PEEK[] marks nothing read");
    // UID n:* with n above every UID still names the newest message (RFC 3501 §6.4.8).
    wire.send("a7 UID FETCH 9:* (UID)\r\n").await;
    assert_eq!(wire.until("a7 ").await, vec!["* 2 FETCH (UID 2)\r\n", "a7 OK Fetch completed.\r\n"]);
    wire.send("a8 FETCH 1 (BODY[HEADER] RFC822.SIZE)\r\n").await;
    let fetched = wire.until("a8 ").await.join("");
    assert!(fetched.contains("BODY[HEADER] {35}"), "{fetched}");
    assert!(fetched.contains("FLAGS (\\Seen)"), "BODY[] without PEEK sets \\Seen and says so: {fetched}");
    assert_eq!(mail.seen("shop", 1), Some(true));
    wire.send("a9 FETCH 3 (UID)\r\n").await;
    assert!(wire.until("a9 ").await[0].starts_with("a9 BAD"), "no message 3");
    wire.send("b1 FETCH 1 (BODYSTRUCTURE)\r\n").await;
    assert!(wire.until("b1 ").await[0].starts_with("b1 BAD"), "an attribute this server lacks");
    wire.send("b2 FROB\r\n").await;
    assert!(wire.until("b2 ").await[0].starts_with("b2 BAD"));
    wire.send("b3 FETCH 1 (UID\r\n").await;
    assert!(wire.until("b3 ").await[0].starts_with("b3 BAD"), "unbalanced parentheses");

    mail.deliver("shop@example.jp", b"Subject: three\r\n\r\nthird\r\n".to_vec());
    wire.send("b4 NOOP\r\n").await;
    assert_eq!(wire.until("b4 ").await, vec!["* 3 EXISTS\r\n", "b4 OK NOOP completed.\r\n"]);

    // IDLE (RFC 2177): a continuation, then each arrival as it happens, until DONE.
    wire.send("b5 CAPABILITY\r\n").await;
    assert!(wire.until("b5 ").await[0].contains(" IDLE"), "IDLE is offered");
    wire.send("b6 IDLE\r\n").await;
    assert_eq!(wire.line().await, "+ idling\r\n");
    mail.deliver("shop@example.jp", b"Subject: four\r\n\r\nfourth\r\n".to_vec());
    assert_eq!(wire.line().await, "* 4 EXISTS\r\n", "told while idling");
    wire.send("DONE\r\n").await;
    assert_eq!(wire.until("b6 ").await, vec!["b6 OK Idle completed.\r\n"]);
    wire.send("b7 IDLE now\r\n").await;
    assert!(wire.until("b7 ").await[0].starts_with("b7 BAD"), "IDLE takes no arguments");
    wire.send("b8 LOGOUT\r\n").await;
    assert!(wire.until("b8 ").await[0].starts_with("* BYE"));
}

#[tokio::test]
async fn imap_without_idle_refuses_it_as_unknown() {
    let mail = MailSandbox::start(MailSandboxConfig { accounts: vec![shop()], imap_idle: false, ..Default::default() })
        .await
        .unwrap();
    let (mut wire, greeting) = Wire::connect(mail.imap_port()).await;
    assert!(!greeting.contains("IDLE"), "{greeting}");
    wire.send("a1 LOGIN shop imap-secret\r\n").await;
    wire.until("a1 ").await;
    wire.send("a2 EXAMINE INBOX\r\n").await;
    wire.until("a2 ").await;
    wire.send("a3 IDLE\r\n").await;
    assert_eq!(wire.until("a3 ").await, vec!["a3 BAD Error in IMAP command IDLE: Unknown command.\r\n"]);
}

#[tokio::test]
async fn smtp_answers_as_rfc_5321_says_and_delivers_or_relays() {
    let mail = sandbox(true).await;
    let (mut wire, greeting) = Wire::connect(mail.smtp_port()).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    wire.send("MAIL FROM:<shop@example.jp>\r\n").await;
    assert!(wire.line().await.starts_with("503"), "MAIL before EHLO");
    wire.send("EHLO client.test\r\n").await;
    let ehlo = wire.until("250 ").await.join("");
    assert!(ehlo.contains("AUTH PLAIN") && ehlo.contains("SIZE "), "{ehlo}");
    wire.send("MAIL FROM:<shop@example.jp>\r\n").await;
    assert!(wire.line().await.starts_with("530"), "authentication is required");
    let wrong = base64::engine::general_purpose::STANDARD.encode(b"\0shop\0nope");
    wire.send(&format!("AUTH PLAIN {wrong}\r\n")).await;
    assert!(wire.line().await.starts_with("535"));
    wire.send("AUTH PLAIN\r\n").await;
    assert!(wire.line().await.starts_with("334"));
    wire.send(&format!("{}\r\n", base64::engine::general_purpose::STANDARD.encode(b"\0shop\0imap-secret"))).await;
    assert!(wire.line().await.starts_with("235"));
    wire.send("RCPT TO:<buyer@example.com>\r\n").await;
    assert!(wire.line().await.starts_with("503"), "RCPT before MAIL");
    wire.send("MAIL FROM:<shop@example.jp> SIZE=99999999999\r\n").await;
    assert!(wire.line().await.starts_with("552"), "SIZE above the limit");
    wire.send("MAIL FROM:shop@example.jp\r\n").await;
    assert!(wire.line().await.starts_with("501"), "a path needs angle brackets");
    wire.send("MAIL FROM:<shop@example.jp>\r\n").await;
    assert!(wire.line().await.starts_with("250"));
    wire.send("RCPT TO:<buyer@example.com>\r\n").await;
    assert!(wire.line().await.starts_with("250"));
    wire.send("RCPT TO:<Shop@Example.jp>\r\n").await;
    assert!(wire.line().await.starts_with("250"));
    wire.send("DATA\r\n").await;
    assert!(wire.line().await.starts_with("354"));
    wire.send("Subject: hello\r\n\r\n..a dot-stuffed line\r\nend\r\n.\r\n").await;
    assert!(wire.line().await.starts_with("250"));
    wire.send("BDAT 10\r\n").await;
    assert!(wire.line().await.starts_with("500"));
    wire.send("QUIT\r\n").await;
    assert!(wire.line().await.starts_with("221"));

    let relayed = mail.relayed();
    assert_eq!(relayed.len(), 1);
    assert_eq!((relayed[0].from.as_str(), relayed[0].to.as_str()), ("shop@example.jp", "buyer@example.com"));
    let text = String::from_utf8_lossy(&relayed[0].raw).into_owned();
    assert!(text.starts_with("Return-Path: <shop@example.jp>\r\nReceived: from client.test"), "{text}");
    assert!(text.ends_with("Subject: hello\r\n\r\n.a dot-stuffed line\r\nend\r\n"), "dot-stuffing undone: {text}");
    assert_eq!(mail.inbox("shop@example.jp").len(), 1, "the local recipient got it in INBOX");
}
