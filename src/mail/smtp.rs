//! Sending mail with lettre: STARTTLS (587), implicit TLS (465), or plain (a local relay),
//! with credentials from the environment and a timeout on the whole exchange.

use crate::config::Secret;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    ImplicitTls,
    Plain,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, Secret)>,
    pub from: String,
    pub security: SmtpSecurity,
    pub accept_invalid_certs: bool,
    pub timeout: Duration,
}

impl SmtpConfig {
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let env = &config.env;
        let port: u16 = env.get("SMTP_PORT").and_then(|p| p.parse().ok()).unwrap_or(587);
        let security = match env.get("SMTP_SECURITY").as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("none" | "plain") => SmtpSecurity::Plain,
            Some("tls") => SmtpSecurity::ImplicitTls,
            Some("starttls") => SmtpSecurity::StartTls,
            _ if port == 465 => SmtpSecurity::ImplicitTls,
            _ => SmtpSecurity::StartTls,
        };
        Some(Self {
            host: env.get("SMTP_HOST")?,
            port,
            credentials: env
                .get("SMTP_USERNAME")
                .map(|user| (user, Secret::new(env.get("SMTP_PASSWORD").unwrap_or_default()))),
            from: env.get("SMTP_FROM")?,
            security,
            accept_invalid_certs: false,
            timeout: Duration::from_secs(30),
        })
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("SMTP {host}:{port}: {reason}")]
pub struct SmtpError {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

pub struct Mailer {
    config: SmtpConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    pub fn new(config: SmtpConfig) -> Result<Self, SmtpError> {
        let error = |reason: String| SmtpError { host: config.host.clone(), port: config.port, reason };
        let tls = || {
            TlsParameters::builder(config.host.clone())
                .dangerous_accept_invalid_certs(config.accept_invalid_certs)
                .build()
                .map_err(|e| error(format!("TLS setup: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .port(config.port)
            .timeout(Some(config.timeout));
        builder = match config.security {
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::ImplicitTls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::Plain => builder,
        };
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self { transport: builder.build(), config })
    }

    /// Sends one plain-text UTF-8 message.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), SmtpError> {
        let error = |reason: String| SmtpError { host: self.config.host.clone(), port: self.config.port, reason };
        let from = self.config.from.parse().map_err(|e| error(format!("SMTP_FROM {:?}: {e}", self.config.from)))?;
        let to = to.parse().map_err(|e| error(format!("recipient {to:?}: {e}")))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| error(format!("building the message: {e}")))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| error(e.to_string()))
    }
}
