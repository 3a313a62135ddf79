//! Reading new mail over IMAP: the messages with UID above the last one recorded, from one
//! mailbox, with `BODY.PEEK[]` so nothing is marked read, and nothing is ever deleted or moved.
//! Every step has a timeout: a dead server fails the step, never hangs the cycle.

use futures_util::TryStreamExt;
use std::fmt::Debug;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use crate::config::{ImapConfig, ImapSecurity};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ImapError {
    #[error("IMAP {host}:{port}: {step} timed out after {seconds}s")]
    Timeout { host: String, port: u16, step: &'static str, seconds: u64 },
    #[error("IMAP {host}:{port}: cannot connect: {reason}")]
    Connect { host: String, port: u16, reason: String },
    #[error("IMAP login as {user} refused: {reason}")]
    Login { user: String, reason: String },
    #[error("IMAP {step}: {reason}")]
    Protocol { step: &'static str, reason: String },
}

impl crate::transport::SourceError for ImapError {
    fn failure_kind(&self) -> crate::transport::FailureKind {
        match self {
            Self::Login { .. } => crate::transport::FailureKind::Credentials,
            _ => crate::transport::FailureKind::Outage,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid_validity: u32,
    /// In UID order.
    pub messages: Vec<FetchedMessage>,
}

/// Messages with UID greater than `after_uid` — or all of them when the mailbox's UIDVALIDITY
/// is not `known_validity` (the mailbox was recreated: UIDs mean something else now).
pub async fn fetch_new(config: &ImapConfig, known_validity: Option<u32>, after_uid: u32) -> Result<Fetched, ImapError> {
    match over_session(config, Want::Messages { known_validity, after_uid }).await? {
        Answer::Messages(fetched) => Ok(fetched),
        _ => Err(ImapError::Protocol { step: "fetch", reason: "no messages were fetched".into() }),
    }
}

/// Where the mailbox stands, read without fetching anything (EXAMINE: read-only): whether new
/// mail has come since the last UID recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxMark {
    pub uid_validity: u32,
    /// The UID the next message will get; None when the server does not say.
    pub uid_next: Option<u32>,
    pub exists: u32,
}

pub async fn mark(config: &ImapConfig) -> Result<MailboxMark, ImapError> {
    match over_session(config, Want::Mark).await? {
        Answer::Mark(mark) => Ok(mark),
        _ => Err(ImapError::Protocol { step: "examine", reason: "the mailbox was not examined".into() }),
    }
}

/// What waiting on the mailbox with IDLE came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxWait {
    /// The server said the mailbox changed (or it had already changed since `seen`).
    Changed,
    /// Nothing was said within the limit.
    Quiet,
    /// The server does not offer IDLE: look with `mark` now and then instead.
    Unsupported,
}

/// Waits up to `limit` for the server to say the mailbox changed (IMAP IDLE, RFC 2177), on a
/// read-only EXAMINE. `seen` is where the mailbox stood when last looked at: mail that came
/// before the IDLE began is reported at once.
pub async fn wait_for_change(
    config: &ImapConfig,
    seen: Option<MailboxMark>,
    limit: std::time::Duration,
) -> Result<MailboxWait, ImapError> {
    match over_session(config, Want::Change { seen, limit }).await? {
        Answer::Wait(wait) => Ok(wait),
        _ => Err(ImapError::Protocol { step: "idle", reason: "no wait was made".into() }),
    }
}

/// What one IMAP session is for.
enum Want {
    Messages { known_validity: Option<u32>, after_uid: u32 },
    Mark,
    Change { seen: Option<MailboxMark>, limit: std::time::Duration },
}

enum Answer {
    Messages(Fetched),
    Mark(MailboxMark),
    Wait(MailboxWait),
}

async fn over_session(config: &ImapConfig, want: Want) -> Result<Answer, ImapError> {
    let timeout = config.timeout;
    let tcp =
        step(config, "connect", tokio::time::timeout(timeout, TcpStream::connect((config.host.as_str(), config.port))))
            .await?
            .map_err(|e| ImapError::Connect { host: config.host.clone(), port: config.port, reason: e.to_string() })?;
    match config.security {
        ImapSecurity::Plain => session_over(config, tcp, want).await,
        ImapSecurity::ImplicitTls => {
            let connector =
                async_native_tls::TlsConnector::new().danger_accept_invalid_certs(config.accept_invalid_certs);
            let tls = step(
                config,
                "TLS handshake",
                tokio::time::timeout(timeout, connector.connect(config.host.as_str(), tcp)),
            )
            .await?
            .map_err(|e| ImapError::Connect {
                host: config.host.clone(),
                port: config.port,
                reason: format!("TLS: {e}"),
            })?;
            session_over(config, tls, want).await
        }
    }
}

async fn step<T>(
    config: &ImapConfig,
    name: &'static str,
    future: impl std::future::Future<Output = Result<T, tokio::time::error::Elapsed>>,
) -> Result<T, ImapError> {
    future.await.map_err(|_| ImapError::Timeout {
        host: config.host.clone(),
        port: config.port,
        step: name,
        seconds: config.timeout.as_secs(),
    })
}

async fn session_over<S>(config: &ImapConfig, stream: S, want: Want) -> Result<Answer, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let timeout = config.timeout;
    let protocol =
        |step: &'static str| move |e: async_imap::error::Error| ImapError::Protocol { step, reason: e.to_string() };
    let mut client = async_imap::Client::new(stream);
    step(config, "greeting", tokio::time::timeout(timeout, client.read_response()))
        .await?
        .map_err(|e| ImapError::Protocol { step: "greeting", reason: e.to_string() })?
        .ok_or_else(|| ImapError::Protocol { step: "greeting", reason: "the server closed the connection".into() })?;
    let mut session =
        step(config, "login", tokio::time::timeout(timeout, client.login(&config.username, config.password.expose())))
            .await?
            .map_err(|(e, _)| ImapError::Login { user: config.username.clone(), reason: e.to_string() })?;
    let (known_validity, after_uid) = match want {
        Want::Messages { known_validity, after_uid } => (known_validity, after_uid),
        Want::Mark => {
            let mark = examine(config, &mut session).await?;
            let _ = tokio::time::timeout(timeout, session.logout()).await;
            return Ok(Answer::Mark(mark));
        }
        Want::Change { seen, limit } => return idle(config, session, seen, limit).await.map(Answer::Wait),
    };
    let mailbox = step(config, "select", tokio::time::timeout(timeout, session.select(&config.mailbox)))
        .await?
        .map_err(protocol("select"))?;
    let uid_validity = mailbox
        .uid_validity
        .ok_or_else(|| ImapError::Protocol { step: "select", reason: "the server sent no UIDVALIDITY".into() })?;
    let from = if known_validity == Some(uid_validity) { after_uid.saturating_add(1) } else { 1 };
    let mut messages = Vec::new();
    if mailbox.exists > 0 {
        let fetch = async {
            let stream = session.uid_fetch(format!("{from}:*"), "(UID BODY.PEEK[])").await?;
            stream.try_collect::<Vec<_>>().await
        };
        let fetched = step(config, "fetch", tokio::time::timeout(timeout, fetch)).await?.map_err(protocol("fetch"))?;
        for message in fetched {
            // `N:*` also returns the newest message when N is above every UID: filter.
            let (Some(uid), Some(body)) = (message.uid, message.body()) else { continue };
            if uid >= from {
                messages.push(FetchedMessage { uid, raw: body.to_vec() });
            }
        }
    }
    messages.sort_by_key(|m| m.uid);
    let _ = tokio::time::timeout(timeout, session.logout()).await;
    Ok(Answer::Messages(Fetched { uid_validity, messages }))
}

async fn examine<S>(config: &ImapConfig, session: &mut async_imap::Session<S>) -> Result<MailboxMark, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let mailbox = step(config, "examine", tokio::time::timeout(config.timeout, session.examine(&config.mailbox)))
        .await?
        .map_err(|e| ImapError::Protocol { step: "examine", reason: e.to_string() })?;
    let uid_validity = mailbox
        .uid_validity
        .ok_or_else(|| ImapError::Protocol { step: "examine", reason: "the server sent no UIDVALIDITY".into() })?;
    Ok(MailboxMark { uid_validity, uid_next: mailbox.uid_next, exists: mailbox.exists })
}

/// IDLE on the examined mailbox until the server reports something, or `limit`.
async fn idle<S>(
    config: &ImapConfig,
    mut session: async_imap::Session<S>,
    seen: Option<MailboxMark>,
    limit: std::time::Duration,
) -> Result<MailboxWait, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let timeout = config.timeout;
    let protocol =
        |step: &'static str| move |e: async_imap::error::Error| ImapError::Protocol { step, reason: e.to_string() };
    let capabilities = step(config, "capability", tokio::time::timeout(timeout, session.capabilities()))
        .await?
        .map_err(protocol("capability"))?;
    if !capabilities.has_str("IDLE") {
        let _ = tokio::time::timeout(timeout, session.logout()).await;
        return Ok(MailboxWait::Unsupported);
    }
    let mark = examine(config, &mut session).await?;
    if seen.is_some_and(|seen| seen != mark) {
        let _ = tokio::time::timeout(timeout, session.logout()).await;
        return Ok(MailboxWait::Changed);
    }
    let mut handle = session.idle();
    step(config, "idle", tokio::time::timeout(timeout, handle.init())).await?.map_err(protocol("idle"))?;
    let (wait, _stop) = handle.wait_with_timeout(limit);
    let outcome = match wait.await.map_err(protocol("idle"))? {
        async_imap::extensions::idle::IdleResponse::NewData(_) => MailboxWait::Changed,
        _ => MailboxWait::Quiet,
    };
    if let Ok(Ok(mut session)) = tokio::time::timeout(timeout, handle.done()).await {
        let _ = tokio::time::timeout(timeout, session.logout()).await;
    }
    Ok(outcome)
}

/// Puts a message into a mailbox (tests and the demo's sandbox mailbox deliver mail this way).
pub async fn append(config: &ImapConfig, raw: &[u8]) -> Result<(), ImapError> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port)).await.map_err(|e| ImapError::Connect {
        host: config.host.clone(),
        port: config.port,
        reason: e.to_string(),
    })?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.map_err(|e| ImapError::Protocol { step: "greeting", reason: e.to_string() })?;
    let mut session = client
        .login(&config.username, config.password.expose())
        .await
        .map_err(|(e, _)| ImapError::Login { user: config.username.clone(), reason: e.to_string() })?;
    session
        .append(&config.mailbox, None, None, raw)
        .await
        .map_err(|e| ImapError::Protocol { step: "append", reason: e.to_string() })?;
    let _ = session.logout().await;
    Ok(())
}
