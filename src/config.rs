//! Configuration in one place: environment variables with the operating guide's names, read
//! from the process environment over an optional `.env` file. One table of variables drives
//! loading, `check-config` and `.env.example`, so they cannot drift apart.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What a variable is for; `check-config` reports readiness per feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    Core,
    Web,
    MailIn,
    MailOut,
    Rakuten,
    Yahoo,
    Amazon,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Core,
        Feature::Web,
        Feature::MailIn,
        Feature::MailOut,
        Feature::Rakuten,
        Feature::Yahoo,
        Feature::Amazon,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Core => "core (ledger, cycle)",
            Self::Web => "web admin",
            Self::MailIn => "mail intake (IMAP)",
            Self::MailOut => "mail sending (SMTP)",
            Self::Rakuten => "Rakuten RMS",
            Self::Yahoo => "Yahoo! Shopping",
            Self::Amazon => "Amazon SP-API (FBA MCF)",
        }
    }
}

pub struct Variable {
    pub name: &'static str,
    pub feature: Feature,
    /// The feature cannot work without it.
    pub required: bool,
    /// Never printed.
    pub secret: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
}

const fn var(
    name: &'static str,
    feature: Feature,
    required: bool,
    secret: bool,
    default: Option<&'static str>,
    description: &'static str,
) -> Variable {
    Variable { name, feature, required, secret, default, description }
}

use Feature::*;

/// Every variable mcf-ledger reads.
pub const VARIABLES: &[Variable] = &[
    var("DATABASE", Core, false, false, Some("mcf-ledger.db"), "Path of the SQLite ledger file (also --database)."),
    var("SKU_MASTER_PATH", Core, false, false, Some("master.xlsx"), "The SKU master workbook (sheet SKUMapping)."),
    var("CYCLE_MINUTES", Core, false, false, Some("10"), "Minutes between cycles in `mcf-ledger run`."),
    var("SHIPPING_STALE_HOURS", Core, false, false, Some("48"), "Hours in SHIPPING after which ADMIN_EMAIL is warned."),
    var(
        "POLL_OVERLAP_MINUTES",
        Core,
        false,
        false,
        Some("30"),
        "How far before its cursor each marketplace poll starts again.",
    ),
    var(
        "OUTAGE_ALERT_MINUTES",
        Core,
        false,
        false,
        Some("30"),
        "How long a source may fail before an outage alert is sent.",
    ),
    var("PORT", Web, false, false, Some("5003"), "Port of the web admin."),
    var("BIND_ADDRESS", Web, false, false, Some("127.0.0.1"), "Address the web admin listens on."),
    var("WEB_USERNAME", Web, true, false, None, "Basic-auth user of the web admin."),
    var(
        "WEB_PASSWORD",
        Web,
        true,
        true,
        None,
        "Basic-auth password of the web admin (the server refuses to start without it).",
    ),
    var(
        "TRUST_X_FORWARDED_FOR",
        Web,
        false,
        false,
        Some("false"),
        "Take the client IP from X-Forwarded-For (only behind your own proxy).",
    ),
    var("IMAP_HOST", MailIn, true, false, None, "IMAP server receiving the order and shipment emails."),
    var("IMAP_PORT", MailIn, false, false, Some("993"), "IMAP port (implicit TLS)."),
    var(
        "IMAP_SECURITY",
        MailIn,
        false,
        false,
        None,
        "tls (default) or none (a server on this machine; the default on port 143).",
    ),
    var("IMAP_USERNAME", MailIn, true, false, None, "IMAP login."),
    var("IMAP_PASSWORD", MailIn, true, true, None, "IMAP password."),
    var("IMAP_MAILBOX", MailIn, false, false, Some("INBOX"), "Mailbox to read."),
    var("SMTP_HOST", MailOut, true, false, None, "SMTP server for alerts and customer emails."),
    var("SMTP_PORT", MailOut, false, false, Some("587"), "SMTP port: 587 STARTTLS, 465 implicit TLS."),
    var("SMTP_SECURITY", MailOut, false, false, None, "starttls (default), tls (default on port 465) or none (a local relay)."),
    var("SMTP_USERNAME", MailOut, false, false, None, "SMTP login, if the server needs one."),
    var("SMTP_PASSWORD", MailOut, false, true, None, "SMTP password."),
    var("SMTP_FROM", MailOut, true, false, None, "Sender address of outgoing mail."),
    var("ADMIN_EMAIL", MailOut, true, false, None, "Where alerts (stale orders, outages, daily errors) go."),
    var("PAYMENT_GUIDANCE_TEMPLATE", MailOut, false, false, None, "Your own payment-guidance email (first line 'Subject: …', then the body; {buyer_name}, {order_number}, {total_yen})."),
    var("RAKUTEN_SERVICE_SECRET", Rakuten, true, true, None, "RMS serviceSecret (ESA auth)."),
    var("RAKUTEN_LICENSE_KEY", Rakuten, true, true, None, "RMS licenseKey (ESA auth; expires every 3 months)."),
    var("RAKUTEN_API_BASE_URL", Rakuten, false, false, Some("https://api.rms.rakuten.co.jp"), "RMS API base URL."),
    var("YAHOO_CLIENT_ID", Yahoo, true, false, None, "Yahoo! ID connect application id."),
    var("YAHOO_CLIENT_SECRET", Yahoo, true, true, None, "Yahoo! ID connect secret."),
    var("YAHOO_SELLER_ID", Yahoo, true, false, None, "Store account (sellerId)."),
    var("YAHOO_REFRESH_TOKEN", Yahoo, true, true, None, "Refresh token from the store's consent (valid 28 days)."),
    var("YAHOO_PUBLIC_KEY", Yahoo, true, true, None, "PEM public key (or a path to it) issued for public-key auth."),
    var(
        "YAHOO_PUBLIC_KEY_EXPIRES",
        Yahoo,
        false,
        false,
        None,
        "Expiry date (YYYY-MM-DD) of that key, shown in Store Creator Pro (keys last a year): warned 14 days ahead.",
    ),
    var(
        "YAHOO_CONSENT_DATE",
        Yahoo,
        false,
        false,
        None,
        "Date (YYYY-MM-DD) the store last consented: the refresh token expires 28 days later, warned 14 days ahead.",
    ),
    var(
        "YAHOO_PUBLIC_KEY_VERSION",
        Yahoo,
        false,
        false,
        Some("1"),
        "Version number of that key (X-sws-signature-version).",
    ),
    var(
        "YAHOO_API_BASE_URL",
        Yahoo,
        false,
        false,
        Some("https://circus.shopping.yahooapis.jp/ShoppingWebService/V1"),
        "Store API base URL.",
    ),
    var(
        "YAHOO_AUTH_BASE_URL",
        Yahoo,
        false,
        false,
        Some("https://auth.login.yahoo.co.jp/yconnect/v2"),
        "Yahoo! ID connect base URL.",
    ),
    var("AMAZON_CLIENT_ID", Amazon, true, false, None, "Login with Amazon client id."),
    var("AMAZON_CLIENT_SECRET", Amazon, true, true, None, "Login with Amazon client secret."),
    var(
        "AMAZON_CLIENT_SECRET_EXPIRES",
        Amazon,
        false,
        false,
        None,
        "Expiry date (YYYY-MM-DD) of that secret (rotated every 180 days): warned 14 days ahead.",
    ),
    var("AMAZON_REFRESH_TOKEN", Amazon, true, true, None, "SP-API refresh token of the seller."),
    var("AMAZON_MARKETPLACE_ID", Amazon, false, false, Some("A1VC38T7YXB528"), "Marketplace (Japan)."),
    var(
        "AMAZON_SP_API_BASE_URL",
        Amazon,
        false,
        false,
        Some("https://sellingpartnerapi-fe.amazon.com"),
        "SP-API endpoint (Far East).",
    ),
    var(
        "AMAZON_LWA_TOKEN_URL",
        Amazon,
        false,
        false,
        Some("https://api.amazon.com/auth/o2/token"),
        "Login with Amazon token endpoint.",
    ),
    var("MCF_NOTIFICATION_EMAIL", Amazon, false, false, None, "Address Amazon sends MCF shipment notifications to."),
];

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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid { name: &'static str, value: String, expected: &'static str },
    #[error("reading {path}: {reason}")]
    EnvFile { path: String, reason: String },
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

#[derive(Debug, Clone)]
pub struct Config {
    pub database: PathBuf,
    pub sku_master: PathBuf,
    pub cycle_minutes: u32,
    pub shipping_stale_hours: u32,
    pub poll_overlap_minutes: u32,
    pub outage_alert_minutes: u32,
    pub web: WebConfig,
    pub admin_email: Option<String>,
    pub base_urls: ApiBaseUrls,
    pub credential_dates: CredentialDates,
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

impl Config {
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        let text = |name: &str| env.get(name).unwrap_or_default();
        Ok(Self {
            database: PathBuf::from(text("DATABASE")),
            sku_master: PathBuf::from(text("SKU_MASTER_PATH")),
            cycle_minutes: number(&env, "CYCLE_MINUTES", 1)?,
            shipping_stale_hours: number(&env, "SHIPPING_STALE_HOURS", 1)?,
            poll_overlap_minutes: number(&env, "POLL_OVERLAP_MINUTES", 0)?,
            outage_alert_minutes: number(&env, "OUTAGE_ALERT_MINUTES", 1)?,
            web: WebConfig {
                bind: text("BIND_ADDRESS")
                    .parse()
                    .map_err(|_| invalid("BIND_ADDRESS", &text("BIND_ADDRESS"), "an IP address such as 127.0.0.1"))?,
                port: text("PORT")
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid("PORT", &text("PORT"), "a port number 1-65535"))?,
                username: env.get("WEB_USERNAME"),
                password: env.get("WEB_PASSWORD").map(Secret),
                trust_forwarded_for: boolean(&env, "TRUST_X_FORWARDED_FOR")?,
            },
            admin_email: env.get("ADMIN_EMAIL"),
            base_urls: ApiBaseUrls {
                rakuten: url(&env, "RAKUTEN_API_BASE_URL")?,
                yahoo_api: url(&env, "YAHOO_API_BASE_URL")?,
                yahoo_auth: url(&env, "YAHOO_AUTH_BASE_URL")?,
                amazon_sp_api: url(&env, "AMAZON_SP_API_BASE_URL")?,
                amazon_lwa_token: url(&env, "AMAZON_LWA_TOKEN_URL")?,
            },
            credential_dates: CredentialDates {
                yahoo_public_key_expires: date(&env, "YAHOO_PUBLIC_KEY_EXPIRES")?,
                yahoo_consent: date(&env, "YAHOO_CONSENT_DATE")?,
                amazon_client_secret_expires: date(&env, "AMAZON_CLIENT_SECRET_EXPIRES")?,
            },
            env,
        })
    }

    /// Per feature, the required variables that are not set.
    pub fn missing_by_feature(&self) -> Vec<(Feature, Vec<&'static str>)> {
        Feature::ALL
            .into_iter()
            .map(|feature| {
                let missing = VARIABLES
                    .iter()
                    .filter(|v| v.feature == feature && v.required && self.env.get(v.name).is_none())
                    .map(|v| v.name)
                    .collect();
                (feature, missing)
            })
            .collect()
    }

    /// The `check-config` report: per feature ready or what is missing; values of non-secret
    /// variables, and only "set" for secrets.
    pub fn report(&self) -> (String, bool) {
        let mut out = String::new();
        let mut all_ready = true;
        for (feature, missing) in self.missing_by_feature() {
            if missing.is_empty() {
                out.push_str(&format!("[ready]   {}\n", feature.title()));
            } else {
                all_ready = false;
                out.push_str(&format!("[missing] {}: {}\n", feature.title(), missing.join(", ")));
            }
            for variable in VARIABLES.iter().filter(|v| v.feature == feature) {
                let shown = match (self.env.is_set(variable.name), variable.secret, self.env.get(variable.name)) {
                    (true, true, _) => "(set, hidden)".to_owned(),
                    (true, false, Some(value)) => value,
                    (false, _, Some(default)) => format!("{default} (default)"),
                    _ => "(not set)".to_owned(),
                };
                out.push_str(&format!("    {:<24} {shown}\n", variable.name));
            }
        }
        (out, all_ready)
    }
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), expected }
}

fn static_name(name: &str) -> &'static str {
    VARIABLES.iter().find(|v| v.name == name).map_or("?", |v| v.name)
}

fn number(env: &Env, name: &str, min: u32) -> Result<u32, ConfigError> {
    let value = env.get(name).unwrap_or_default();
    value.trim().parse::<u32>().ok().filter(|n| *n >= min).ok_or_else(|| {
        invalid(static_name(name), &value, if min == 0 { "a whole number" } else { "a whole number of at least 1" })
    })
}

fn boolean(env: &Env, name: &str) -> Result<bool, ConfigError> {
    let value = env.get(name).unwrap_or_default();
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(invalid(static_name(name), &value, "true or false")),
    }
}

fn date(env: &Env, name: &str) -> Result<Option<chrono::NaiveDate>, ConfigError> {
    let Some(value) = env.get(name) else { return Ok(None) };
    chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| invalid(static_name(name), &value, "a date such as 2027-03-31"))
}

fn url(env: &Env, name: &str) -> Result<String, ConfigError> {
    let value = env.get(name).unwrap_or_default();
    let trimmed = value.trim().trim_end_matches('/');
    let scheme_ok = trimmed.starts_with("http://") || trimmed.starts_with("https://");
    let host_ok =
        trimmed.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    if scheme_ok && host_ok {
        Ok(trimmed.to_owned())
    } else {
        Err(invalid(static_name(name), &value, "an http:// or https:// URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_unset_and_base_urls_can_be_overridden() {
        let config = Config::from_env(Env::from_pairs([("RAKUTEN_API_BASE_URL", "http://127.0.0.1:9001/")])).unwrap();
        assert_eq!(config.web.port, 5003);
        assert_eq!(config.shipping_stale_hours, 48);
        assert_eq!(config.cycle_minutes, 10);
        assert_eq!(config.database, PathBuf::from("mcf-ledger.db"));
        assert_eq!(config.base_urls.rakuten, "http://127.0.0.1:9001");
        assert_eq!(config.base_urls.amazon_sp_api, "https://sellingpartnerapi-fe.amazon.com");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_env(Env::from_pairs([("PORT", "http")])).unwrap_err();
        assert_eq!(err.to_string(), "PORT=\"http\" is not valid: a port number 1-65535");
        let err = Config::from_env(Env::from_pairs([("SHIPPING_STALE_HOURS", "0")])).unwrap_err();
        assert!(err.to_string().starts_with("SHIPPING_STALE_HOURS=\"0\""), "{err}");
        let err = Config::from_env(Env::from_pairs([("YAHOO_API_BASE_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().contains("http:// or https://"), "{err}");
    }

    #[test]
    fn the_report_lists_missing_variables_per_feature_and_never_prints_secrets() {
        let env = Env::from_pairs([
            ("WEB_USERNAME", "admin"),
            ("WEB_PASSWORD", "hunter2-very-secret"),
            ("RAKUTEN_SERVICE_SECRET", "sss-secret"),
        ]);
        let config = Config::from_env(env).unwrap();
        let (report, ready) = config.report();
        assert!(!ready);
        assert!(report.contains("[ready]   web admin"), "{report}");
        assert!(report.contains("[missing] Rakuten RMS: RAKUTEN_LICENSE_KEY"), "{report}");
        assert!(report.contains("WEB_USERNAME             admin"), "{report}");
        assert!(!report.contains("hunter2") && !report.contains("sss-secret"), "{report}");
        assert!(report.contains("(set, hidden)"));
        assert_eq!(format!("{:?}", config.web.password), "Some(Secret(***))");
    }

    #[test]
    fn env_example_documents_every_variable() {
        let example = include_str!("../.env.example");
        for variable in VARIABLES {
            assert!(
                example.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{}=", variable.name))),
                "{} is not in .env.example",
                variable.name
            );
        }
    }
}
