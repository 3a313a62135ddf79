//! Sending mail with lettre: STARTTLS (587), implicit TLS (465), or plain (a local relay),
//! with credentials from the environment and a timeout on the whole exchange.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use crate::config::{SmtpConfig, SmtpSecurity};

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
