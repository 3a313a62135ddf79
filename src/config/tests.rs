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
    assert!(config.imap.is_none() && config.smtp.is_none() && config.amazon.is_none());
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
fn every_invalid_value_is_one_line_and_none_falls_back_to_a_default() {
    let env = Env::from_pairs([
        ("IMAP_HOST", "mail.example.jp"),
        ("IMAP_USERNAME", "shop"),
        ("IMAP_PASSWORD", "x"),
        ("IMAP_PORT", "abc"),
        ("IMAP_SECURITY", "bogus"),
        ("SMTP_SECURITY", "bogus"),
        ("ADMIN_EMAIL", "not-an-address"),
        ("YAHOO_PUBLIC_KEY_EXPIRES", "next year"),
    ]);
    let lines: Vec<String> = Config::from_env(env).unwrap_err().0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "ADMIN_EMAIL=\"not-an-address\" is not valid: an email address such as admin@example.jp",
            "YAHOO_PUBLIC_KEY_EXPIRES=\"next year\" is not valid: a date such as 2027-03-31",
            "IMAP_PORT=\"abc\" is not valid: a port number 1-65535",
            "IMAP_SECURITY=\"bogus\" is not valid: tls or none",
            "SMTP_SECURITY=\"bogus\" is not valid: starttls, tls or none",
        ]
    );
}

#[test]
fn a_feature_half_configured_names_what_it_lacks() {
    let env = Env::from_pairs([("IMAP_HOST", "mail.example.jp"), ("AMAZON_CLIENT_ID", "amzn1")]);
    let errors = Config::from_env(env).unwrap_err().to_string();
    assert!(errors.contains("IMAP_USERNAME is not set, but mail intake (IMAP) needs it"), "{errors}");
    assert!(errors.contains("IMAP_PASSWORD is not set"), "{errors}");
    assert!(errors.contains("AMAZON_CLIENT_SECRET is not set, but Amazon SP-API (FBA MCF) needs it"), "{errors}");
    let good = Env::from_pairs([
        ("IMAP_HOST", "127.0.0.1"),
        ("IMAP_USERNAME", "shop"),
        ("IMAP_PASSWORD", "x"),
        ("IMAP_PORT", "143"),
    ]);
    let imap = Config::from_env(good).unwrap().imap.unwrap();
    assert_eq!((imap.port, imap.security, imap.mailbox.as_str()), (143, ImapSecurity::Plain, "INBOX"));
}

#[test]
fn the_report_lists_missing_variables_and_invalid_values_and_never_prints_secrets() {
    let env = Env::from_pairs([
        ("WEB_USERNAME", "admin"),
        ("WEB_PASSWORD", "hunter2-very-secret"),
        ("RAKUTEN_SERVICE_SECRET", "sss-secret"),
        ("IMAP_PORT", "abc"),
    ]);
    let inspection = Config::inspect(&env);
    assert!(!inspection.ready);
    let report = inspection.report;
    assert!(report.contains("[ready]   web admin"), "{report}");
    assert!(report.contains("[missing] Rakuten RMS: RAKUTEN_LICENSE_KEY"), "{report}");
    assert!(report.contains("WEB_USERNAME             admin"), "{report}");
    assert!(!report.contains("hunter2") && !report.contains("sss-secret"), "{report}");
    assert!(report.contains("(set, hidden)"));
    let errors = inspection.errors.unwrap().to_string();
    assert!(
        errors.contains("IMAP_PORT=\"abc\" is not valid") && errors.contains("RAKUTEN_LICENSE_KEY is not set"),
        "{errors}"
    );
    let config = Config::from_env(Env::from_pairs([("WEB_PASSWORD", "hunter2-very-secret")])).unwrap();
    assert_eq!(format!("{:?}", config.web.password), "Some(Secret(***))");
}

#[test]
fn env_example_documents_every_variable() {
    let example = include_str!("../../.env.example");
    for variable in VARIABLES {
        assert!(
            example.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{}=", variable.name))),
            "{} is not in .env.example",
            variable.name
        );
    }
}
