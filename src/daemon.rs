//! The long-running process: the web admin and the cycle timer side by side, stopped
//! gracefully by SIGTERM or Ctrl-C (the stage under way finishes and is recorded).

use crate::cycle::{run_cycle_until, CycleError, Services, Stage};
use projections::Ledger;
use std::time::Duration;

pub use crate::transport::Shutdown;

/// SIGTERM (systemd, docker) or Ctrl-C.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the process");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a whole cycle every `every` until the shutdown. A cycle already held by another
/// process (cron) is skipped, not waited for.
pub async fn cycle_timer(mut ledger: Ledger, services: Services, every: Duration, shutdown: Shutdown) {
    loop {
        match run_cycle_until(&mut ledger, &services, &Stage::ALL, shutdown.flag()).await {
            Ok(report) if report.failures.is_empty() => {
                tracing::info!(duration_ms = report.duration_ms as u64, "timer cycle done")
            }
            Ok(report) => tracing::warn!(failures = report.failures.len(), "timer cycle done with failed stages"),
            Err(CycleError::Setup(reason)) if reason.contains("held by") => {
                tracing::info!(%reason, "another process is running a cycle; skipped")
            }
            Err(error) => tracing::error!(%error, "timer cycle could not run"),
        }
        if shutdown.is_triggered() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => break,
        }
    }
    tracing::info!("cycle timer stopped");
}
