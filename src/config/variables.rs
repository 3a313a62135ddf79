//! Every environment variable mcf-ledger reads, in one table: loading, `check-config` and
//! `.env.example` follow it, so they cannot drift apart.

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
    var(
        "MAIL_CHECK_SECONDS",
        Core,
        false,
        false,
        Some("15"),
        "In `mcf-ledger run`, how often the shop's mailbox is looked at between cycles; new mail starts a cycle at once (0: only the timer).",
    ),
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
        "WEB_USERS_FILE",
        Web,
        false,
        false,
        None,
        "Named operators: a file of NAME:<argon2id hash> lines (`mcf-ledger user add NAME`); beside WEB_USERNAME.",
    ),
    var(
        "RAKUTEN_ORDER_PAGE_URL",
        Web,
        false,
        false,
        Some("https://order-rp.rms.rakuten.co.jp/order-rb/individual-order-detail-sc/init?orderNumber={order_number}"),
        "An order's page in RMS, linked from the admin ({order_number} is replaced).",
    ),
    var(
        "YAHOO_ORDER_PAGE_URL",
        Web,
        false,
        false,
        Some("https://pro.store.yahoo.co.jp/pro.{seller_id}/order/manage/detail/{order_id}"),
        "An order's page in ストアクリエイターPro, linked from the admin ({seller_id}, {order_id} are replaced).",
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
    var(
        "AMAZON_NAME_MAX_CHARS",
        Amazon,
        false,
        false,
        Some("15"),
        "Longest recipient name Amazon accepts in Japan (full- and half-width alike); checked before any call.",
    ),
    var(
        "AMAZON_ADDRESS_MAX_CHARS",
        Amazon,
        false,
        false,
        Some("40"),
        "Longest address Amazon accepts in Japan: lines 1-3 together (municipality, block, building).",
    ),
];
