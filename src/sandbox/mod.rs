//! Faithful fakes of the outside systems, for the demo and the tests: same paths, bodies, auth
//! checks, errors and rate limits as the specs in `shared/specs/`, plus fault injection. Each
//! fake is written from its spec, not from our client, and shares no types with it.

pub mod amazon;
pub mod faults;
pub mod mailbox;
pub mod rakuten;
pub mod yahoo;

use std::net::SocketAddr;
use tokio::task::JoinHandle;

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
