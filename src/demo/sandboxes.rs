//! The outside world of the demo and `replay dry-run`: the mail server's mailboxes, the sample
//! SKU master, and every client pointed at the in-process sandboxes.

use crate::amazon::{AmazonClient, AmazonConfig, LwaCredentials, RateLimits};
use crate::config::Secret;
use crate::cycle::Services;
use crate::mail::imap::{ImapConfig, ImapSecurity};
use crate::mail::smtp::{Mailer, SmtpConfig, SmtpSecurity};
use crate::rakuten::{RakutenClient, RakutenConfig};
use crate::stages::check::SkuMaster;
use crate::stages::receive::customer_mail::CustomerMailSettings;
use crate::stages::stale::{AlertSettings, ConfiguredExpiry};
use crate::stages::ShippingSettings;
use crate::transport::RetryPolicy;
use crate::yahoo::signature::PublicKey;
use crate::yahoo::{YahooClient, YahooConfig};
use chrono::{Duration as ChronoDuration, Utc};
use events::Clock;
use sandbox::amazon::AmazonSandbox;
use sandbox::mailbox::{MailAccount, MailSandbox, MailSandboxConfig};
use sandbox::rakuten::RakutenSandbox;
use sandbox::yahoo::YahooSandbox;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The demo's marketplace sandboxes enforce this quota, and its clients keep to it: one call a
/// second with a burst of five, so the demo's quick cycles are paced as production's are.
pub const MARKETPLACE_RATE: (f64, u32) = (1.0, 5);

/// The ledger's clock as the sandboxes take it (they share no types with the service).
pub fn sandbox_clock(clock: Arc<dyn Clock>) -> Arc<dyn sandbox::Clock> {
    Arc::new(move || clock.now())
}

/// The shop's mailbox: marketplaces and Amazon write to it, the receive stage reads it.
pub const SHOP_MAIL: &str = "shop@demo.example.jp";
/// Where alerts go (ADMIN_EMAIL).
pub const ADMIN_MAIL: &str = "admin@demo.example.jp";

/// The demo's mail server: the shop's and the admin's mailboxes, both with `password`.
pub async fn start_mail_sandbox(password: &str) -> Result<MailSandbox, String> {
    let account = |user: &str, address: &str| MailAccount {
        user: user.into(),
        password: password.into(),
        address: address.into(),
    };
    MailSandbox::start(MailSandboxConfig {
        accounts: vec![account("shop", SHOP_MAIL), account("admin", ADMIN_MAIL)],
        hostname: "mail.demo.example.jp".into(),
        ..MailSandboxConfig::default()
    })
    .await
    .map_err(|e| format!("starting the sandbox mail server: {e}"))
}

/// One listing of the sample master.xlsx (sheet SKUMapping: marketplace SKU -> Amazon seller
/// SKU × units), with where its stock lives at each marketplace.
pub struct SampleListing {
    pub marketplace_sku: &'static str,
    /// (seller SKU, units per item): one, or several for a set of different products.
    pub components: &'static [(&'static str, u32)],
    /// (商品管理番号, SKU管理番号)
    pub rakuten: (&'static str, &'static str),
    /// 商品コード:個別商品コード
    pub yahoo: &'static str,
}

pub const SAMPLE_LISTINGS: [SampleListing; 5] = [
    SampleListing {
        marketplace_sku: "tea-100",
        components: &[("JP-TEA-100", 1)],
        rakuten: ("green-tea", "100g"),
        yahoo: "green-tea:100g",
    },
    SampleListing {
        marketplace_sku: "tea-3pack",
        components: &[("JP-TEA-100", 3)],
        rakuten: ("green-tea", "3pack"),
        yahoo: "green-tea:3pack",
    },
    SampleListing {
        marketplace_sku: "cup",
        components: &[("JP-CUP-ARITA", 1)],
        rakuten: ("arita-cup", "std"),
        yahoo: "arita-cup",
    },
    SampleListing {
        marketplace_sku: "matcha-30",
        components: &[("JP-MATCHA-30", 1)],
        rakuten: ("matcha", "30g"),
        yahoo: "matcha:30g",
    },
    // A gift set of different products: as many sets as the scarcer of its parts makes.
    SampleListing {
        marketplace_sku: "tea-cup-gift",
        components: &[("JP-TEA-100", 1), ("JP-CUP-ARITA", 2)],
        rakuten: ("gift-set", "tea-cup"),
        yahoo: "gift-set",
    },
];

/// The shop lists the sample master's items at both marketplaces (their stock rows exist).
pub fn list_sample_items(rakuten: &RakutenSandbox, yahoo: &YahooSandbox) {
    for listing in &SAMPLE_LISTINGS {
        rakuten.list_sku(listing.rakuten.0, listing.rakuten.1, 0);
        yahoo.list_item(listing.yahoo, 0);
    }
}

pub fn write_sample_master(path: &Path) -> Result<(), String> {
    let rows = &SAMPLE_LISTINGS;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let failed = |e: rust_xlsxwriter::XlsxError| format!("writing {}: {e}", path.display());
    sheet.set_name("SKUMapping").map_err(failed)?;
    let titles =
        ["marketplace_sku", "seller_sku", "quantity", "rakuten_manage_number", "rakuten_variant_id", "yahoo_item_code"];
    for (column, title) in titles.iter().enumerate() {
        sheet.write_string(0, column as u16, *title).map_err(failed)?;
    }
    let mut row = 0;
    for listing in rows {
        // A set has a row per component; its stock keys are given once, on its first row.
        for (index, (seller_sku, units)) in listing.components.iter().enumerate() {
            row += 1;
            sheet.write_string(row, 0, listing.marketplace_sku).map_err(failed)?;
            sheet.write_string(row, 1, *seller_sku).map_err(failed)?;
            sheet.write_number(row, 2, f64::from(*units)).map_err(failed)?;
            if index == 0 {
                sheet.write_string(row, 3, listing.rakuten.0).map_err(failed)?;
                sheet.write_string(row, 4, listing.rakuten.1).map_err(failed)?;
                sheet.write_string(row, 5, listing.yahoo).map_err(failed)?;
            }
        }
    }
    workbook.save(path).map_err(failed)
}

/// Every client pointed at the in-process sandboxes (the demo, `replay dry-run` and the
/// benchmarks); mail is read from the shop's mailbox of `mail` and sent through its SMTP. The
/// marketplace clients keep to `marketplace_rate` (calls a second, burst).
pub fn sandbox_services(
    (amazon, rakuten, yahoo, mail): (&AmazonSandbox, &RakutenSandbox, &YahooSandbox, &MailSandbox),
    master: &Path,
    marketplace_rate: (f64, u32),
    clock: Arc<dyn Clock>,
) -> Result<Services, String> {
    let (imap, mailer) = shop_mail(mail)?;
    let shutdown = crate::transport::Shutdown::new();
    let retry = RetryPolicy::fast().stopped_by(&shutdown);
    let amazon_config = amazon.config();
    let amazon_client = AmazonClient::new(AmazonConfig {
        credentials: LwaCredentials {
            client_id: amazon_config.client_id.clone(),
            client_secret: Secret::new(amazon_config.client_secret.clone()),
            refresh_token: Secret::new(amazon_config.refresh_token.clone()),
        },
        marketplace_id: "A1VC38T7YXB528".into(),
        sp_api_base_url: amazon.base_url(),
        lwa_token_url: amazon.token_url(),
        retry: retry.clone(),
        rate_limits: RateLimits::default(),
    })
    .map_err(|e| e.to_string())?;
    let rakuten_client = RakutenClient::new(RakutenConfig {
        service_secret: Secret::new(rakuten.config().service_secret.clone()),
        license_key: Secret::new(rakuten.config().license_key.clone()),
        base_url: rakuten.base_url(),
        retry: retry.clone(),
        rate: marketplace_rate,
        // The sandbox processes async requests within seconds.
        async_settle: std::time::Duration::from_secs(30),
    })
    .map_err(|e| e.to_string())?;
    let yahoo_config = yahoo.config();
    let yahoo_client = YahooClient::new(YahooConfig {
        client_id: yahoo_config.client_id.clone(),
        client_secret: Secret::new(yahoo_config.client_secret.clone()),
        seller_id: yahoo_config.seller_id.clone(),
        refresh_token: Secret::new(yahoo_config.refresh_token.clone()),
        public_key: PublicKey::load(&yahoo_config.public_key_pem(), &yahoo_config.key_version)
            .map_err(|e| e.to_string())?,
        api_base_url: yahoo.api_base_url(),
        auth_base_url: yahoo.auth_base_url(),
        retry: retry.clone(),
        rate: marketplace_rate,
        clock,
    })
    .map_err(|e| e.to_string())?;
    Ok(Services {
        shutdown,
        amazon: amazon_client,
        rakuten: Some(rakuten_client),
        yahoo: Some(yahoo_client),
        imap: Some(imap),
        mailer: Some(mailer),
        alerts: AlertSettings {
            admin_email: Some(ADMIN_MAIL.into()),
            stale_after: ChronoDuration::hours(48),
            // The demo's Yahoo key is as fresh as Store Creator Pro issues it: a year.
            credential_expiries: vec![ConfiguredExpiry {
                stream: crate::stages::sources::YAHOO_POLL_STREAM.into(),
                credential: "YAHOO_PUBLIC_KEY".into(),
                expires_on: Utc::now().date_naive() + ChronoDuration::days(365),
            }],
        },
        customer_mail: CustomerMailSettings::default(),
        // Off here; the demo turns it on (its sandboxes list the sample master's items).
        stock: Default::default(),
        sku_master: SkuMaster::new(master.to_path_buf()),
        shipping: ShippingSettings { notification_email: Some(SHOP_MAIL.into()), ..ShippingSettings::default() },
        poll: Default::default(),
    })
}

/// The shop's mailbox over IMAP and its outgoing mail over SMTP, both at `mail`.
fn shop_mail(mail: &MailSandbox) -> Result<(ImapConfig, Mailer), String> {
    let shop = mail
        .config()
        .accounts
        .iter()
        .find(|a| a.address == SHOP_MAIL)
        .ok_or_else(|| format!("the sandbox mail server has no mailbox for {SHOP_MAIL}"))?;
    let imap = ImapConfig {
        host: mail.host(),
        port: mail.imap_port(),
        username: shop.user.clone(),
        password: Secret::new(shop.password.clone()),
        mailbox: "INBOX".into(),
        security: ImapSecurity::Plain,
        accept_invalid_certs: false,
        timeout: Duration::from_secs(10),
    };
    let mailer = Mailer::new(SmtpConfig {
        host: mail.host(),
        port: mail.smtp_port(),
        credentials: None,
        from: SHOP_MAIL.into(),
        security: SmtpSecurity::Plain,
        accept_invalid_certs: false,
        timeout: Duration::from_secs(10),
    })
    .map_err(|e| e.to_string())?;
    Ok((imap, mailer))
}
