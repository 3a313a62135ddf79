//! The long-running process: the web admin and the cycle timer side by side, stopped
//! gracefully by SIGTERM or Ctrl-C (the stage under way finishes and is recorded).

use crate::cycle::{run_cycle_until, CycleError, Services, Stage};
use crate::mail::imap::{MailboxMark, MailboxWait};
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
/// mailbox holds mail the ledger has not read (watched with IMAP IDLE, or looked at every
/// `mail_check` where the server has no IDLE), so a card order's MCF order follows its mail
/// within seconds instead of up to CYCLE_MINUTES.
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

/// An IDLE is renewed this often, well inside RFC 2177's 29 minutes.
const IDLE_RENEW: Duration = Duration::from_secs(5 * 60);

/// Waits until the next cycle is due or new mail has come: the mailbox is watched with IMAP
/// IDLE, and looked at every `mail_check` instead when the server has no IDLE or it fails.
/// Mail that already started a cycle without being read (the mailbox answers EXAMINE but not
/// FETCH) waits for the timer instead of starting cycle after cycle.
async fn wait_for_next_cycle(
    ledger: &mut Ledger,
    services: &Services,
    timer: Timer,
    shutdown: &Shutdown,
    woken_by: Option<MailboxMark>,
) -> Wake {
    let due = tokio::time::Instant::now() + timer.every;
    let mut idle = true;
    let mut seen = None;
    loop {
        let until_due = due.saturating_duration_since(tokio::time::Instant::now());
        let watch = match (timer.mail_check, &services.imap) {
            (Some(check), Some(imap)) => Some((check, imap)),
            _ => None,
        };
        let waited = async {
            match watch {
                Some((check, imap)) if idle => {
                    match crate::mail::imap::wait_for_change(imap, seen, until_due.min(IDLE_RENEW)).await {
                        Ok(MailboxWait::Unsupported) => {
                            tracing::info!("the mailbox has no IMAP IDLE: looking every MAIL_CHECK_SECONDS");
                            idle = false;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::debug!(%error, "cannot watch the mailbox with IDLE; looking again shortly");
                            tokio::time::sleep(check.min(until_due)).await;
                        }
                    }
                }
                Some((check, _)) => tokio::time::sleep(check.min(until_due)).await,
                None => tokio::time::sleep(until_due).await,
            }
        };
        tokio::select! {
            _ = waited => {}
            _ = shutdown.wait() => return Wake::Shutdown,
        }
        if tokio::time::Instant::now() >= due {
            return Wake::Due;
        }
        let Some(imap) = &services.imap else { continue };
        match crate::stages::receive::mail::new_mail_waiting(ledger, imap).await {
            Ok((mark, true)) if Some(mark) != woken_by => {
                tracing::info!(uid_next = ?mark.uid_next, "new mail in the shop's mailbox: a cycle starts now");
                return Wake::Mail(mark);
            }
            Ok((mark, _)) => seen = Some(mark),
            // The cycle due next reads the mailbox and records the outage; nothing to add here.
            Err(error) => tracing::debug!(%error, "cannot look at the mailbox between cycles"),
        }
    }
}
