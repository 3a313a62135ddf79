//! `mcf-ledger check-config`: per feature, ready or what it lacks; every invalid value; the
//! values of non-secret variables, and only "set" for secrets.

use super::{Config, ConfigErrors, Env, Feature, VARIABLES};

/// What `check-config` prints, and whether everything is ready.
pub struct Inspection {
    pub report: String,
    pub errors: Option<ConfigErrors>,
    pub ready: bool,
}

impl Config {
    /// Inspects a configuration without refusing it: the report lists what is missing and
    /// every invalid value, one line each.
    pub fn inspect(env: &Env) -> Inspection {
        let errors = Config::from_env(env.clone()).err();
        let mut report = String::new();
        let mut ready = errors.is_none();
        for (feature, missing) in Config::missing_by_feature(env) {
            if missing.is_empty() {
                report.push_str(&format!("[ready]   {}\n", feature.title()));
            } else {
                ready = false;
                report.push_str(&format!("[missing] {}: {}\n", feature.title(), missing.join(", ")));
            }
            for variable in VARIABLES.iter().filter(|v| v.feature == feature) {
                report.push_str(&format!("    {:<24} {}\n", variable.name, shown(env, variable.name, variable.secret)));
            }
        }
        Inspection { report, errors, ready }
    }
}

fn shown(env: &Env, name: &str, secret: bool) -> String {
    match (env.is_set(name), secret, env.get(name)) {
        (true, true, _) => "(set, hidden)".to_owned(),
        (true, false, Some(value)) => value,
        (false, _, Some(default)) => format!("{default} (default)"),
        _ => "(not set)".to_owned(),
    }
}

impl Feature {
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
