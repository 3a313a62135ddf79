//! The long-running process: the web admin and the cycle timer side by side, stopped
//! gracefully by SIGTERM or Ctrl-C (the stage under way finishes and is recorded).

use crate::cycle::{run_cycle_until, CycleError, Services, Stage};
use crate::mail::imap::MailboxMark;
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

/// When the timer starts a cycle: every `every`, and, with `mail_check`, as soon as the shop's
/// mailbox holds mail the ledger has not read (looked at every `mail_check`), so a card
/// order's MCF order follows its mail within a minute instead of up to CYCLE_MINUTES.
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    pub every: Duration,
    pub mail_check: Option<Duration>,
}

/// Runs a whole cycle on the timer until the shutdown. A cycle already held by another
/// process (cron) is skipped, not waited for.
pub async fn cycle_timer(mut ledger: Ledger, services: Services, timer: Timer, shutdown: Shutdown) {
    let mut woken_by = None;
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
        match wait_for_next_cycle(&mut ledger, &services, timer, &shutdown, woken_by).await {
            Wake::Due => woken_by = None,
            Wake::Mail(mark) => woken_by = Some(mark),
            Wake::Shutdown => break,
        }
    }
    tracing::info!("cycle timer stopped");
}

enum Wake {
    Due,
    Mail(MailboxMark),
    Shutdown,
}

/// Waits until the next cycle is due or new mail has come. Mail that already started a cycle
/// without being read (the mailbox answers EXAMINE but not FETCH) waits for the timer instead
/// of starting cycle after cycle.
async fn wait_for_next_cycle(
    ledger: &mut Ledger,
    services: &Services,
    timer: Timer,
    shutdown: &Shutdown,
    woken_by: Option<MailboxMark>,
) -> Wake {
    let due = tokio::time::Instant::now() + timer.every;
    loop {
        let until_due = due.saturating_duration_since(tokio::time::Instant::now());
        let pause = match (timer.mail_check, &services.imap) {
            (Some(check), Some(_)) => check.min(until_due),
            _ => until_due,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait() => return Wake::Shutdown,
        }
        if tokio::time::Instant::now() >= due {
            return Wake::Due;
        }
        let Some(imap) = &services.imap else { continue };
        match crate::stages::receive::mail::new_mail_waiting(ledger, imap).await {
            Ok(Some(mark)) if Some(mark) != woken_by => {
                tracing::info!(uid_next = ?mark.uid_next, "new mail in the shop's mailbox: a cycle starts now");
                return Wake::Mail(mark);
            }
            Ok(_) => {}
            // The cycle due next reads the mailbox and records the outage; nothing to add here.
            Err(error) => tracing::debug!(%error, "cannot look at the mailbox between cycles"),
        }
    }
}
