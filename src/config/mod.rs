//! Configuration in one place: environment variables with the operating guide's names, read
//! from the process environment over an optional `.env` file, parsed once into typed values
//! that are handed to the adapters. Every invalid value (a port that is no number, an unknown
//! security mode, a feature half configured) is one line naming the variable; none is
//! replaced by a default in silence.

mod report;
pub(crate) mod variables;

pub use variables::{Feature, Variable, VARIABLES};

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value never shown in logs or output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid { name: &'static str, value: String, expected: String },
    #[error("{name} is not set, but {feature} needs it (set {others}, or none of them)")]
    Incomplete { name: &'static str, feature: &'static str, others: String },
    #[error("reading {path}: {reason}")]
    EnvFile { path: String, reason: String },
}

/// Every problem of a configuration, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

/// The raw variables: the process environment over `.env`.
#[derive(Debug, Clone, Default)]
pub struct Env {
    values: HashMap<String, String>,
}

impl Env {
    /// `.env` in the current directory (if any), overridden by the process environment.
    pub fn from_process() -> Result<Self, ConfigError> {
        let mut values = HashMap::new();
        let path = Path::new(".env");
        if path.exists() {
            let iter = dotenvy::from_path_iter(path)
                .map_err(|e| ConfigError::EnvFile { path: ".env".into(), reason: e.to_string() })?;
            for item in iter {
                let (key, value) =
                    item.map_err(|e| ConfigError::EnvFile { path: ".env".into(), reason: e.to_string() })?;
                values.insert(key, value);
            }
        }
        for variable in VARIABLES {
            if let Ok(value) = std::env::var(variable.name) {
                values.insert(variable.name.to_owned(), value);
            }
        }
        Ok(Self { values })
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { values: pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect() }
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_owned(), value.into());
    }

    /// The value, or the table's default; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .or_else(|| VARIABLES.iter().find(|v| v.name == name).and_then(|v| v.default.map(str::to_owned)))
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| !v.trim().is_empty())
    }
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub users_file: Option<PathBuf>,
    pub rakuten_order_page: String,
    pub yahoo_order_page: String,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone)]
pub struct ApiBaseUrls {
    pub rakuten: String,
    pub yahoo_api: String,
    pub yahoo_auth: String,
    pub amazon_sp_api: String,
    pub amazon_lwa_token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    ImplicitTls,
    /// No TLS (a server on the same machine, or tests).
    Plain,
}

/// The shop's mailbox (IMAP_*).
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    pub mailbox: String,
    pub security: ImapSecurity,
    /// Accept a self-signed certificate (a test server); never for a real mailbox.
    pub accept_invalid_certs: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    ImplicitTls,
    Plain,
}

/// Where alerts and customer emails are sent from (SMTP_*).
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

/// RMS credentials (ESA auth).
#[derive(Debug, Clone)]
pub struct RakutenSettings {
    pub service_secret: Secret,
    pub license_key: Secret,
    /// How long RMS may take to process an updateOrderShippingAsync request: a shipping report
    /// whose answer was lost is sent again only after this (RAKUTEN_ASYNC_SETTLE_SECONDS).
    pub async_settle: Duration,
}

/// Yahoo! ID connect credentials and the store's public key.
#[derive(Debug, Clone)]
pub struct YahooSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub seller_id: String,
    pub refresh_token: Secret,
    /// PEM text, read from the file when YAHOO_PUBLIC_KEY names one; checked to be an RSA key.
    pub public_key_pem: String,
    pub public_key_version: String,
}

/// Login with Amazon and the marketplace.
#[derive(Debug, Clone)]
pub struct AmazonSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    pub marketplace_id: String,
    /// Amazon mails shipment confirmations here.
    pub notification_email: Option<String>,
}

/// STOCK_SYNC: whether the stock stage runs, and whether it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockSync {
    Off,
    /// Read FBA and plan every cycle; publish nothing.
    Plan,
    On,
}

/// STOCK_SYNC, STOCK_BUFFER and STOCK_BRAKE_PERCENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockSettings {
    pub sync: StockSync,
    /// Items kept off every listing that has no `buffer` of its own in the master.
    pub buffer: u32,
    /// A plan taking more than this share of the listings on sale to 0 at once waits for an
    /// operator.
    pub brake_percent: u32,
}

impl Default for StockSettings {
    fn default() -> Self {
        Self { sync: StockSync::Off, buffer: 0, brake_percent: 30 }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: PathBuf,
    pub sku_master: PathBuf,
    pub cycle_minutes: u32,
    /// Between cycles of `run`, the mailbox is looked at this often; 0: never.
    pub mail_check_seconds: u32,
    pub stock: StockSettings,
    pub shipping_stale_hours: u32,
    pub poll_overlap_minutes: u32,
    pub outage_alert_minutes: u32,
    pub web: WebConfig,
    pub admin_email: Option<String>,
    pub base_urls: ApiBaseUrls,
    pub credential_dates: CredentialDates,
    /// None when the feature is not configured at all.
    pub imap: Option<ImapConfig>,
    pub smtp: Option<SmtpConfig>,
    pub rakuten: Option<RakutenSettings>,
    pub yahoo: Option<YahooSettings>,
    pub amazon: Option<AmazonSettings>,
    /// The shop's own payment-guidance email (the file's text), if it has one.
    pub payment_guidance_template: Option<String>,
    /// What Amazon accepts of an address in Japan.
    pub address_limits: events::order::address::AddressLimits,
    pub env: Env,
}

/// Expiry dates of credentials that no API tells, from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialDates {
    pub yahoo_public_key_expires: Option<chrono::NaiveDate>,
    /// The refresh token lasts 28 days from the store's consent.
    pub yahoo_consent: Option<chrono::NaiveDate>,
    pub amazon_client_secret_expires: Option<chrono::NaiveDate>,
}

/// Reads values, collecting every problem instead of stopping at the first.
struct Reader<'a> {
    env: &'a Env,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    fn text(&self, name: &str) -> String {
        self.env.get(name).unwrap_or_default()
    }

    /// A value that must parse; on failure the problem is kept and `fallback` stands in, so the
    /// rest can still be checked (the configuration as a whole is refused).
    fn parse<T>(
        &mut self,
        name: &'static str,
        expected: &str,
        fallback: T,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> T {
        let value = self.text(name);
        match parse(value.trim()) {
            Some(parsed) => parsed,
            None => {
                self.errors.push(ConfigError::Invalid { name, value, expected: expected.to_owned() });
                fallback
            }
        }
    }

    fn number(&mut self, name: &'static str, min: u32) -> u32 {
        let expected = if min == 0 { "a whole number" } else { "a whole number of at least 1" };
        self.parse(name, expected, min.max(1), |v| v.parse::<u32>().ok().filter(|n| *n >= min))
    }

    fn port(&mut self, name: &'static str) -> u16 {
        self.parse(name, "a port number 1-65535", 1, |v| v.parse::<u16>().ok().filter(|p| *p > 0))
    }

    fn boolean(&mut self, name: &'static str) -> bool {
        self.parse(name, "true or false", false, |v| match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" | "" => Some(false),
            _ => None,
        })
    }

    fn date(&mut self, name: &'static str) -> Option<chrono::NaiveDate> {
        self.env.get(name)?;
        self.parse(name, "a date such as 2027-03-31", None, |v| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().map(Some)
        })
    }

    fn url(&mut self, name: &'static str) -> String {
        self.parse(name, "an http:// or https:// URL", String::new(), |v| {
            let trimmed = v.trim_end_matches('/');
            let scheme_ok = trimmed.starts_with("http://") || trimmed.starts_with("https://");
            let host_ok =
                trimmed.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
            (scheme_ok && host_ok).then(|| trimmed.to_owned())
        })
    }

    fn email(&mut self, name: &'static str) -> Option<String> {
        self.env.get(name)?;
        self.parse(name, "an email address such as admin@example.jp", None, |v| {
            let valid = v.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                && !v.contains(char::is_whitespace);
            valid.then(|| Some(v.to_owned()))
        })
    }

    /// The feature's required variables: all set (Some), none set (None), or some set, which is
    /// a problem for each one missing. (ADMIN_EMAIL is where alerts go, not how they are sent:
    /// without SMTP they stay recorded for it.)
    fn feature(&mut self, feature: Feature) -> Option<HashMap<&'static str, String>> {
        let required: Vec<&'static str> = VARIABLES
            .iter()
            .filter(|v| v.feature == feature && v.required && v.name != "ADMIN_EMAIL")
            .map(|v| v.name)
            .collect();
        let set: HashMap<&'static str, String> =
            required.iter().filter_map(|name| Some((*name, self.env.get(name)?))).collect();
        if set.is_empty() {
            return None;
        }
        if set.len() < required.len() {
            for name in required.iter().filter(|name| !set.contains_key(*name)) {
                self.errors.push(ConfigError::Incomplete {
                    name,
                    feature: feature.title(),
                    others: required.join(", "),
                });
            }
            return None;
        }
        Some(set)
    }

    fn imap(&mut self) -> Option<ImapConfig> {
        let port = self.port("IMAP_PORT");
        let security = match self.env.get("IMAP_SECURITY") {
            None if port == 143 => ImapSecurity::Plain,
            None => ImapSecurity::ImplicitTls,
            Some(_) => self.parse("IMAP_SECURITY", "tls or none", ImapSecurity::ImplicitTls, |v| {
                match v.to_ascii_lowercase().as_str() {
                    "tls" => Some(ImapSecurity::ImplicitTls),
                    "none" | "plain" => Some(ImapSecurity::Plain),
                    _ => None,
                }
            }),
        };
        let mut set = self.feature(Feature::MailIn)?;
        Some(ImapConfig {
            host: set.remove("IMAP_HOST").unwrap_or_default(),
            port,
            username: set.remove("IMAP_USERNAME").unwrap_or_default(),
            password: Secret::new(set.remove("IMAP_PASSWORD").unwrap_or_default()),
            mailbox: self.text("IMAP_MAILBOX"),
            security,
            accept_invalid_certs: false,
            timeout: Duration::from_secs(30),
        })
    }

    fn smtp(&mut self) -> Option<SmtpConfig> {
        let port = self.port("SMTP_PORT");
        let security = match self.env.get("SMTP_SECURITY") {
            None if port == 465 => SmtpSecurity::ImplicitTls,
            None => SmtpSecurity::StartTls,
            Some(_) => self.parse("SMTP_SECURITY", "starttls, tls or none", SmtpSecurity::StartTls, |v| {
                match v.to_ascii_lowercase().as_str() {
                    "starttls" => Some(SmtpSecurity::StartTls),
                    "tls" => Some(SmtpSecurity::ImplicitTls),
                    "none" | "plain" => Some(SmtpSecurity::Plain),
                    _ => None,
                }
            }),
        };
        let credentials = match (self.env.get("SMTP_USERNAME"), self.env.get("SMTP_PASSWORD")) {
            (Some(user), Some(password)) => Some((user, Secret::new(password))),
            (None, None) => None,
            (user, _) => {
                let (name, other) = if user.is_some() {
                    ("SMTP_PASSWORD", "SMTP_USERNAME")
                } else {
                    ("SMTP_USERNAME", "SMTP_PASSWORD")
                };
                self.errors.push(ConfigError::Incomplete {
                    name,
                    feature: "SMTP login",
                    others: format!("{other} and {name}"),
                });
                None
            }
        };
        let from = self.email("SMTP_FROM");
        let mut set = self.feature(Feature::MailOut)?;
        Some(SmtpConfig {
            host: set.remove("SMTP_HOST").unwrap_or_default(),
            port,
            credentials,
            from: from.unwrap_or_default(),
            security,
            accept_invalid_certs: false,
            timeout: Duration::from_secs(30),
        })
    }

    fn rakuten(&mut self) -> Option<RakutenSettings> {
        let mut set = self.feature(Feature::Rakuten)?;
        let async_settle = Duration::from_secs(u64::from(self.number("RAKUTEN_ASYNC_SETTLE_SECONDS", 1)));
        Some(RakutenSettings {
            service_secret: Secret::new(set.remove("RAKUTEN_SERVICE_SECRET").unwrap_or_default()),
            license_key: Secret::new(set.remove("RAKUTEN_LICENSE_KEY").unwrap_or_default()),
            async_settle,
        })
    }

    fn yahoo(&mut self) -> Option<YahooSettings> {
        let mut set = self.feature(Feature::Yahoo)?;
        let public_key_pem = self.parse(
            "YAHOO_PUBLIC_KEY",
            "an RSA public key in PEM form, or the path of a file holding one",
            String::new(),
            |v| {
                let pem = if v.starts_with("-----BEGIN") { v.to_owned() } else { std::fs::read_to_string(v).ok()? };
                use rsa::pkcs8::DecodePublicKey;
                rsa::RsaPublicKey::from_public_key_pem(pem.trim()).ok().map(|_| pem.trim().to_owned())
            },
        );
        Some(YahooSettings {
            client_id: set.remove("YAHOO_CLIENT_ID").unwrap_or_default(),
            client_secret: Secret::new(set.remove("YAHOO_CLIENT_SECRET").unwrap_or_default()),
            seller_id: set.remove("YAHOO_SELLER_ID").unwrap_or_default(),
            refresh_token: Secret::new(set.remove("YAHOO_REFRESH_TOKEN").unwrap_or_default()),
            public_key_pem,
            public_key_version: self.text("YAHOO_PUBLIC_KEY_VERSION"),
        })
    }

    fn amazon(&mut self) -> Option<AmazonSettings> {
        let notification_email = self.email("MCF_NOTIFICATION_EMAIL");
        let mut set = self.feature(Feature::Amazon)?;
        Some(AmazonSettings {
            client_id: set.remove("AMAZON_CLIENT_ID").unwrap_or_default(),
            client_secret: Secret::new(set.remove("AMAZON_CLIENT_SECRET").unwrap_or_default()),
            refresh_token: Secret::new(set.remove("AMAZON_REFRESH_TOKEN").unwrap_or_default()),
            marketplace_id: self.text("AMAZON_MARKETPLACE_ID"),
            notification_email,
        })
    }

    fn template(&mut self, name: &'static str) -> Option<String> {
        self.env.get(name)?;
        self.parse(name, "the path of a readable text file", None, |path| std::fs::read_to_string(path).ok().map(Some))
    }
}

impl Config {
    /// The configuration, or every problem with it (one line each).
    pub fn from_env(env: Env) -> Result<Self, ConfigErrors> {
        let mut read = Reader { env: &env, errors: Vec::new() };
        let web = WebConfig {
            bind: read.parse("BIND_ADDRESS", "an IP address such as 127.0.0.1", IpAddr::from([127, 0, 0, 1]), |v| {
                v.parse().ok()
            }),
            port: read.port("PORT"),
            username: env.get("WEB_USERNAME"),
            password: env.get("WEB_PASSWORD").map(Secret),
            users_file: env.get("WEB_USERS_FILE").filter(|v| !v.trim().is_empty()).map(PathBuf::from),
            rakuten_order_page: read.text("RAKUTEN_ORDER_PAGE_URL"),
            yahoo_order_page: read.text("YAHOO_ORDER_PAGE_URL"),
            trust_forwarded_for: read.boolean("TRUST_X_FORWARDED_FOR"),
        };
        let config = Self {
            database: PathBuf::from(read.text("DATABASE")),
            sku_master: PathBuf::from(read.text("SKU_MASTER_PATH")),
            cycle_minutes: read.number("CYCLE_MINUTES", 1),
            mail_check_seconds: read.number("MAIL_CHECK_SECONDS", 0),
            stock: StockSettings {
                sync: read.parse("STOCK_SYNC", "off, plan or on", StockSync::Off, |v| match v {
                    "off" => Some(StockSync::Off),
                    "plan" => Some(StockSync::Plan),
                    "on" => Some(StockSync::On),
                    _ => None,
                }),
                buffer: read.number("STOCK_BUFFER", 0),
                brake_percent: read.parse("STOCK_BRAKE_PERCENT", "a whole number from 0 to 100", 30, |v| {
                    v.parse::<u32>().ok().filter(|n| *n <= 100)
                }),
            },
            shipping_stale_hours: read.number("SHIPPING_STALE_HOURS", 1),
            poll_overlap_minutes: read.number("POLL_OVERLAP_MINUTES", 0),
            outage_alert_minutes: read.number("OUTAGE_ALERT_MINUTES", 1),
            web,
            admin_email: read.email("ADMIN_EMAIL"),
            base_urls: ApiBaseUrls {
                rakuten: read.url("RAKUTEN_API_BASE_URL"),
                yahoo_api: read.url("YAHOO_API_BASE_URL"),
                yahoo_auth: read.url("YAHOO_AUTH_BASE_URL"),
                amazon_sp_api: read.url("AMAZON_SP_API_BASE_URL"),
                amazon_lwa_token: read.url("AMAZON_LWA_TOKEN_URL"),
            },
            credential_dates: CredentialDates {
                yahoo_public_key_expires: read.date("YAHOO_PUBLIC_KEY_EXPIRES"),
                yahoo_consent: read.date("YAHOO_CONSENT_DATE"),
                amazon_client_secret_expires: read.date("AMAZON_CLIENT_SECRET_EXPIRES"),
            },
            imap: read.imap(),
            smtp: read.smtp(),
            rakuten: read.rakuten(),
            yahoo: read.yahoo(),
            amazon: read.amazon(),
            payment_guidance_template: read.template("PAYMENT_GUIDANCE_TEMPLATE"),
            address_limits: events::order::address::AddressLimits {
                name: read.number("AMAZON_NAME_MAX_CHARS", 1) as usize,
                lines: read.number("AMAZON_ADDRESS_MAX_CHARS", 1) as usize,
            },
            env: env.clone(),
        };
        match read.errors {
            errors if errors.is_empty() => Ok(config),
            errors => Err(ConfigErrors(errors)),
        }
    }

    /// Per feature, the required variables that are not set.
    pub fn missing_by_feature(env: &Env) -> Vec<(Feature, Vec<&'static str>)> {
        Feature::ALL
            .into_iter()
            .map(|feature| {
                let missing = VARIABLES
                    .iter()
                    .filter(|v| v.feature == feature && v.required && env.get(v.name).is_none())
                    .map(|v| v.name)
                    .collect();
                (feature, missing)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
