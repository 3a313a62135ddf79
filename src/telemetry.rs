//! Logging: one line per decision on stderr, filtered by RUST_LOG (default `info`).
//! Command output goes to stdout, so scripts can read it untouched by logs.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
