//! A mail server for the demo and `replay dry-run`, in-process on loopback: IMAP4rev1
//! (RFC 3501) for the shop's mailbox and SMTP (RFC 5321) for what the system sends. Both are
//! written from their RFCs, not from our clients, and share no types with them.
//!
//! Every account has one mailbox, INBOX, with a UIDVALIDITY and UIDs that only grow. SMTP
//! delivers to the local accounts (with the Return-Path and Received lines an MTA adds) and
//! keeps what is addressed elsewhere (the buyers) as "relayed", so a test or the demo can see
//! what left the shop. `notices` writes the mails the marketplaces and Amazon send a shop.
//! The IMAP side takes faults like the other sandboxes (see [`MailSandbox::faults`]).

mod imap;
pub mod notices;
mod smtp;

use super::faults::Faults;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One mailbox owner: logs in over IMAP (and SMTP AUTH) as `user`, receives mail for `address`.
#[derive(Debug, Clone)]
pub struct MailAccount {
    pub user: String,
    pub password: String,
    pub address: String,
}

#[derive(Debug, Clone)]
pub struct MailSandboxConfig {
    pub accounts: Vec<MailAccount>,
    /// The name the server gives itself in greetings and Received lines.
    pub hostname: String,
    /// SMTP requires AUTH PLAIN (as one of `accounts`) before MAIL FROM.
    pub smtp_requires_auth: bool,
    /// DATA larger than this is refused (552), as the SIZE extension announces.
    pub max_message_bytes: usize,
    /// IMAP offers IDLE (RFC 2177); off, a client must poll as with servers that lack it.
    pub imap_idle: bool,
}

impl Default for MailSandboxConfig {
    fn default() -> Self {
        Self {
            accounts: vec![],
            hostname: "mail.sandbox.test".into(),
            smtp_requires_auth: false,
            max_message_bytes: 10 * 1024 * 1024,
            imap_idle: true,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub uid: u32,
    pub flags: BTreeSet<String>,
    pub internal_date: DateTime<Utc>,
    pub raw: Arc<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct Mailbox {
    pub account: MailAccount,
    pub uid_validity: u32,
    pub next_uid: u32,
    pub messages: Vec<StoredMessage>,
}

impl Mailbox {
    pub fn append(&mut self, raw: Vec<u8>, flags: BTreeSet<String>, internal_date: DateTime<Utc>) -> u32 {
        let uid = self.next_uid;
        self.next_uid += 1;
        self.messages.push(StoredMessage { uid, flags, internal_date, raw: Arc::new(raw) });
        uid
    }
}

/// A message SMTP accepted for an address that has no mailbox here.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub from: String,
    pub to: String,
    pub raw: Vec<u8>,
}

pub(crate) struct State {
    pub mailboxes: Vec<Mailbox>,
    pub relayed: Vec<Relayed>,
    /// The UIDVALIDITY the next created (or recreated) mailbox gets.
    next_validity: u32,
}

impl State {
    pub fn by_user(&mut self, user: &str) -> Option<&mut Mailbox> {
        self.mailboxes.iter_mut().find(|m| m.account.user == user)
    }

    pub fn by_address(&mut self, address: &str) -> Option<&mut Mailbox> {
        self.mailboxes.iter_mut().find(|m| m.account.address.eq_ignore_ascii_case(address))
    }
}

pub(crate) struct Shared {
    pub config: MailSandboxConfig,
    pub state: Mutex<State>,
    pub faults: Faults,
    /// IMAP sessions in IDLE now.
    pub idling: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account whose user and password these are.
    pub fn authenticate(&self, user: &str, password: &str) -> Option<MailAccount> {
        use subtle::ConstantTimeEq;
        self.config
            .accounts
            .iter()
            .find(|a| a.user == user && bool::from(a.password.as_bytes().ct_eq(password.as_bytes())))
            .cloned()
    }
}

pub struct MailSandbox {
    shared: Arc<Shared>,
    imap: SocketAddr,
    smtp: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl MailSandbox {
    pub async fn start(config: MailSandboxConfig) -> std::io::Result<Self> {
        // Like dovecot, the first UIDVALIDITY is the creation time.
        let first_validity = u32::try_from(Utc::now().timestamp()).unwrap_or(1);
        let mailboxes = config
            .accounts
            .iter()
            .enumerate()
            .map(|(n, account)| Mailbox {
                account: account.clone(),
                uid_validity: first_validity + n as u32,
                next_uid: 1,
                messages: vec![],
            })
            .collect();
        let next_validity = first_validity + config.accounts.len() as u32;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State { mailboxes, relayed: vec![], next_validity }),
            faults: Faults::default(),
            idling: Default::default(),
        });
        let imap_listener = TcpListener::bind("127.0.0.1:0").await?;
        let smtp_listener = TcpListener::bind("127.0.0.1:0").await?;
        let (imap, smtp) = (imap_listener.local_addr()?, smtp_listener.local_addr()?);
        let tasks = vec![
            tokio::spawn(accept_loop(imap_listener, shared.clone(), "IMAP", imap::serve)),
            tokio::spawn(accept_loop(smtp_listener, shared.clone(), "SMTP", smtp::serve)),
        ];
        Ok(Self { shared, imap, smtp, tasks })
    }

    pub fn host(&self) -> String {
        self.imap.ip().to_string()
    }

    pub fn imap_port(&self) -> u16 {
        self.imap.port()
    }

    pub fn smtp_port(&self) -> u16 {
        self.smtp.port()
    }

    pub fn config(&self) -> &MailSandboxConfig {
        &self.shared.config
    }

    /// Faults of the IMAP server, by operation: `imap.greeting` (every new connection) and
    /// `imap.fetch`. A status is a server that is unavailable (BYE at the greeting, NO to the
    /// FETCH); malformed is a connection cut mid-answer; apply-then-hang sends the messages
    /// but never completes the FETCH; slow answers late.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// IMAP sessions idling now (a test delivers once its client listens).
    pub fn idling(&self) -> usize {
        self.shared.idling.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Mail arriving from elsewhere (a marketplace's or Amazon's servers) for `address`; false
    /// when no mailbox here has that address.
    pub fn deliver(&self, address: &str, raw: Vec<u8>) -> bool {
        let mut state = self.shared.lock();
        match state.by_address(address) {
            Some(mailbox) => {
                mailbox.append(raw, BTreeSet::new(), Utc::now());
                true
            }
            None => false,
        }
    }

    /// What the mailbox for `address` holds, oldest first.
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let mut state = self.shared.lock();
        state
            .by_address(address)
            .map(|m| m.messages.iter().map(|msg| msg.raw.as_ref().clone()).collect())
            .unwrap_or_default()
    }

    /// Whether the message with `uid` in `user`'s mailbox is flagged `\Seen`.
    pub fn seen(&self, user: &str, uid: u32) -> Option<bool> {
        let mut state = self.shared.lock();
        let mailbox = state.by_user(user)?;
        mailbox.messages.iter().find(|m| m.uid == uid).map(|m| m.flags.contains("\\Seen"))
    }

    /// Messages SMTP accepted for addresses outside this server (customers), oldest first.
    pub fn relayed(&self) -> Vec<Relayed> {
        self.shared.lock().relayed.clone()
    }

    /// Deletes and recreates `user`'s mailbox: every message is gone and UIDs start again
    /// under a new UIDVALIDITY (what a restored or migrated mail server does).
    pub fn recreate_mailbox(&self, user: &str) -> bool {
        let mut state = self.shared.lock();
        let validity = state.next_validity;
        let Some(mailbox) = state.by_user(user) else { return false };
        mailbox.uid_validity = validity;
        mailbox.next_uid = 1;
        mailbox.messages.clear();
        state.next_validity += 1;
        true
    }
}

impl Drop for MailSandbox {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, shared: Arc<Shared>, protocol: &'static str, serve: F)
where
    F: Fn(tokio::net::TcpStream, Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let session = serve(socket, shared.clone());
                tokio::spawn(async move {
                    if let Err(error) = session.await {
                        tracing::debug!(protocol, %peer, %error, "sandbox mail session ended");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(protocol, %error, "sandbox mail server cannot accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one line ending in CRLF (or a bare LF), without the line end. None at end of stream;
/// an error if the line is longer than `limit`.
pub(crate) async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() { None } else { Some(line) });
        }
        let (taken, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if line.len() > limit + 2 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
        }
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests;
