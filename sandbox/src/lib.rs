#![recursion_limit = "256"]
//! Strict fakes of the outside systems, for the demo and the tests: same paths, bodies, auth
//! checks, errors and rate limits as the specs in `shared/specs/`, plus fault injection.
//!
//! Each fake is written from its spec, not from the service's clients. This crate does not
//! depend on the service (nor on the ledger's crates): the compiler guarantees that a fake
//! shares no code and no types with the client it tests, so a misreading of an API cannot be
//! mirrored on both sides. It keeps its own clock, rate meter and XML reader for that reason.

pub mod amazon;
pub mod faults;
pub mod mailbox;
mod pacing;
pub use pacing::Quota;
pub mod rakuten;
mod xml;
pub mod yahoo;

use chrono::{DateTime, FixedOffset, Utc};
use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// The sandboxes' time: the wall clock, or a test's clock that it moves by hand (a closure
/// returning the test's time is a clock).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<F: Fn() -> DateTime<Utc> + Send + Sync> Clock for F {
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// Japan Standard Time, in which every marketplace writes its times.
pub(crate) fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("+09:00 is a valid offset"))
}

/// Serves `router` on a free loopback port until the returned handle is dropped or aborted.
pub async fn serve(router: axum::Router) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "sandbox server stopped");
        }
    });
    Ok((address, task))
}

/// `application/x-www-form-urlencoded` pairs, decoded (the token endpoints' bodies).
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'+', _) => out.push(b' '),
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 2;
                }
                (other, _) => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}
