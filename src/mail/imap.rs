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
        Answer::Mark(_) => Err(ImapError::Protocol { step: "fetch", reason: "no messages were fetched".into() }),
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
        Answer::Messages(_) => Err(ImapError::Protocol { step: "examine", reason: "messages were fetched".into() }),
    }
}

/// What one IMAP session is for.
enum Want {
    Messages { known_validity: Option<u32>, after_uid: u32 },
    Mark,
}

enum Answer {
    Messages(Fetched),
    Mark(MailboxMark),
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
    let Want::Messages { known_validity, after_uid } = want else {
        let mailbox = step(config, "examine", tokio::time::timeout(timeout, session.examine(&config.mailbox)))
            .await?
            .map_err(protocol("examine"))?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::Protocol { step: "examine", reason: "the server sent no UIDVALIDITY".into() })?;
        let _ = tokio::time::timeout(timeout, session.logout()).await;
        return Ok(Answer::Mark(MailboxMark { uid_validity, uid_next: mailbox.uid_next, exists: mailbox.exists }));
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
