//! The clients, files and settings the stages use, built once per process from the
//! configuration (each adapter is handed its own typed section).

use crate::amazon::{AmazonClient, AmazonConfig};
use crate::config::Config;
use crate::mail::imap::ImapConfig;
use crate::mail::smtp::Mailer;
use crate::rakuten::{RakutenClient, RakutenConfig};
use crate::stages::settings::{AlertSettings, CustomerMailSettings, ShippingSettings};
use crate::stages::sku_master::SkuMaster;
use crate::stages::sources::PollSettings;
use crate::yahoo::{YahooClient, YahooConfig};

/// Why the services cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("Amazon is not configured: set {0} (see `mcf-ledger check-config`)")]
    AmazonNotConfigured(String),
    #[error("{0}")]
    Setup(String),
}

/// The clients and files the stages use, built once per process.
pub struct Services {
    pub amazon: AmazonClient,
    pub rakuten: Option<RakutenClient>,
    pub yahoo: Option<YahooClient>,
    pub imap: Option<ImapConfig>,
    /// None when SMTP is not configured: alerts and customer emails stay recorded, unsent.
    pub mailer: Option<Mailer>,
    pub alerts: AlertSettings,
    pub customer_mail: CustomerMailSettings,
    pub sku_master: SkuMaster,
    pub shipping: ShippingSettings,
    pub poll: PollSettings,
    /// STOCK_SYNC and how much to keep off the listings.
    pub stock: crate::config::StockSettings,
    /// The process's stop signal: it ends the clients' waits and stops a stage at its next step.
    pub shutdown: crate::transport::Shutdown,
}

impl Services {
    pub fn from_config(config: &Config) -> Result<Self, ServicesError> {
        let shutdown = crate::transport::Shutdown::new();
        let setup = |e: &dyn std::fmt::Display| ServicesError::Setup(e.to_string());
        let amazon_settings = config.amazon.as_ref().ok_or_else(|| {
            ServicesError::AmazonNotConfigured("AMAZON_CLIENT_ID, AMAZON_CLIENT_SECRET, AMAZON_REFRESH_TOKEN".into())
        })?;
        let amazon = AmazonClient::new(AmazonConfig::from_settings(amazon_settings, &config.base_urls, &shutdown))
            .map_err(|e| setup(&e))?;
        let rakuten = match &config.rakuten {
            Some(settings) => Some(
                RakutenClient::new(RakutenConfig::from_settings(settings, &config.base_urls.rakuten, &shutdown))
                    .map_err(|e| setup(&e))?,
            ),
            None => None,
        };
        let yahoo = match &config.yahoo {
            Some(settings) => Some(
                YahooClient::new(
                    YahooConfig::from_settings(settings, &config.base_urls, &shutdown).map_err(|e| setup(&e))?,
                )
                .map_err(|e| setup(&e))?,
            ),
            None => None,
        };
        Ok(Self {
            amazon,
            rakuten,
            yahoo,
            imap: config.imap.clone(),
            mailer: match &config.smtp {
                Some(smtp) => Some(Mailer::new(smtp.clone()).map_err(|e| setup(&e))?),
                None => None,
            },
            alerts: AlertSettings {
                admin_email: config.admin_email.clone(),
                stale_after: chrono::Duration::hours(i64::from(config.shipping_stale_hours)),
                credential_expiries: AlertSettings::expiries_from(&config.credential_dates),
            },
            customer_mail: match &config.payment_guidance_template {
                Some(template) => CustomerMailSettings { payment_guidance_template: template.clone() },
                None => CustomerMailSettings::default(),
            },
            sku_master: SkuMaster::new(config.sku_master.clone()),
            shipping: ShippingSettings {
                notification_email: amazon_settings.notification_email.clone(),
                address_limits: config.address_limits,
                ..ShippingSettings::default()
            },
            poll: PollSettings {
                overlap: chrono::Duration::minutes(i64::from(config.poll_overlap_minutes)),
                outage_after: chrono::Duration::minutes(i64::from(config.outage_alert_minutes)),
                ..PollSettings::default()
            },
            stock: config.stock,
            shutdown,
        })
    }
}
