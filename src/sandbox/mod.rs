//! Faithful fakes of the outside systems, for the demo and the tests: same paths, bodies, auth
//! checks, errors and rate limits as the specs in `shared/specs/`, plus fault injection. Each
//! fake is written from its spec, not from our client, and shares no types with it.

pub mod amazon;
pub mod faults;
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
