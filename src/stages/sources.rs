//! What every polled source shares: its settings, its state folded from its `poll-<source>`
//! stream, and recording its events.

use crate::transport::{FailureKind, SourceError};
use chrono::Duration;
use chrono::NaiveDate;
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::source::{CredentialChecked, CredentialExpiring, CredentialRefused, SourceEvent, SourceState};
use events::system::SourceFailure;
use projections::{Ledger, LedgerError};

/// The health streams of the outside systems: each marketplace's poll, and Amazon's (not polled
/// by window, but its credentials are followed like the sources').
pub const RAKUTEN_POLL_STREAM: &str = "poll-rakuten";
pub const YAHOO_POLL_STREAM: &str = "poll-yahoo";
pub const AMAZON_HEALTH_STREAM: &str = "poll-amazon";

#[derive(Debug, Clone)]
pub struct PollSettings {
    pub overlap: Duration,
    /// How far back the very first poll looks.
    pub initial_lookback: Duration,
    /// Failing this long is an outage (alerted once, and once on recovery).
    pub outage_after: Duration,
    /// Warn when a credential expires within this many days.
    pub expiry_warning_days: i64,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            overlap: Duration::minutes(30),
            initial_lookback: Duration::days(14),
            outage_after: Duration::minutes(30),
            expiry_warning_days: 14,
        }
    }
}

/// Why a source could not be read this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub kind: FailureKind,
    pub error: String,
    /// The process's shutdown stopped the read: nothing is known against the source, so it is
    /// not recorded as failing.
    pub interrupted: bool,
}

impl Unread {
    pub fn of(error: &impl SourceError) -> Self {
        Self { kind: error.failure_kind(), error: error.to_string(), interrupted: error.interrupted() }
    }

    /// The same, as a cycle records it for `source`.
    pub fn at(&self, source: &str) -> SourceFailure {
        SourceFailure { source: source.to_owned(), kind: self.kind, error: self.error.clone() }
    }
}

/// What fetching a polling window came to.
pub enum Window {
    /// Fetched and recorded whole: the cursor may advance.
    Whole { seen: u32, new: u32 },
    /// The source failed: the cursor stays.
    Failed(Unread),
    /// A shutdown stopped it between two steps: nothing is recorded of the poll, and the next
    /// cycle fetches the window again.
    Interrupted,
}

/// The source's state, as the `source_status` projection holds it (the ledger catches up after
/// every append, so it includes what this process just recorded).
pub fn source_state(ledger: &Ledger, stream: &str) -> Result<SourceState, LedgerError> {
    Ok(projections::source_status::source_state(ledger.store().connection(), stream)?.unwrap_or_default())
}

/// Records when `credential` expires (once a day), and warns once a day from
/// `settings.expiry_warning_days` before that date.
pub fn record_credential_expiry(
    ledger: &mut Ledger,
    stream: &str,
    credential: &str,
    expires_on: NaiveDate,
    settings: &PollSettings,
) -> Result<(), LedgerError> {
    let today = ledger.store().now().with_timezone(&events::clock::jst()).date_naive();
    let checked = SourceEvent::CredentialChecked(CredentialChecked { credential: credential.into(), expires_on });
    record_source(ledger, stream, checked, Some(format!("credential-checked:{credential}:{today}")))?;
    let days_left = (expires_on - today).num_days();
    if days_left <= settings.expiry_warning_days {
        tracing::warn!(credential, days_left, %expires_on, "credential expires soon");
        let expiring = SourceEvent::CredentialExpiring(CredentialExpiring {
            credential: credential.into(),
            expires_on,
            days_left,
        });
        record_source(ledger, stream, expiring, Some(format!("credential-expiring:{credential}:{today}")))?;
    }
    Ok(())
}

pub fn record_source(
    ledger: &mut Ledger,
    stream: &str,
    event: SourceEvent,
    key: Option<String>,
) -> Result<(), LedgerError> {
    let mut new = event.to_new_event(Meta::by(Actor::reactor("receive")));
    new.idempotency_key = key;
    ledger.append(stream, ExpectedVersion::Any, &[new])?;
    Ok(())
}

/// Refused credentials, recorded once a day while they last (the alert goes out at once).
pub fn record_credential_refused(ledger: &mut Ledger, stream: &str, error: &str) -> Result<(), LedgerError> {
    let today = ledger.store().now().with_timezone(&events::clock::jst()).date_naive();
    tracing::error!(stream, error, "credentials refused: a person must renew them");
    let refused = SourceEvent::CredentialRefused(CredentialRefused { error: error.to_owned() });
    record_source(ledger, stream, refused, Some(format!("credential-refused:{stream}:{today}")))
}

/// Records how a poll of [start, end] went: success moves the cursor (and ends a declared
/// outage, counting the backfilled orders); failure keeps the cursor, alerts refused
/// credentials at once and declares an outage once it has lasted `settings.outage_after`.
/// Returns whether the poll succeeded.
pub fn record_poll_outcome(
    ledger: &mut Ledger,
    stream: &str,
    settings: &PollSettings,
    before: &SourceState,
    (start, end): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    outcome: Result<(u32, u32), Unread>,
) -> Result<bool, LedgerError> {
    use events::source::{OutageEnded, OutageStarted, PollFailed, PollSucceeded};
    let now = ledger.store().now();
    match outcome {
        Ok((seen, new)) => {
            tracing::info!(stream, %start, %end, seen, new, "window recorded; cursor advances");
            let ok = PollSucceeded { window_start: start, window_end: end, orders_seen: seen, orders_new: new };
            record_source(ledger, stream, SourceEvent::PollSucceeded(ok), None)?;
            if before.outage_declared {
                let since = before.failing_since.unwrap_or(now);
                tracing::warn!(stream, %since, backfilled = new, "outage over");
                let ended = OutageEnded { failing_since: since, recovered_at: now, backfilled: new };
                record_source(ledger, stream, SourceEvent::OutageEnded(ended), None)?;
            }
            Ok(true)
        }
        Err(Unread { interrupted: true, error, .. }) => {
            tracing::info!(stream, %error, "poll stopped by the shutdown; the cursor stays");
            Ok(false)
        }
        Err(Unread { kind, error, .. }) => {
            tracing::warn!(stream, %start, %end, %error, ?kind, "poll failed; the cursor stays");
            let failed = PollFailed { window_start: start, window_end: end, error: error.clone(), kind };
            record_source(ledger, stream, SourceEvent::PollFailed(failed), None)?;
            if kind == FailureKind::Credentials {
                record_credential_refused(ledger, stream, &error)?;
            }
            let after = source_state(ledger, stream)?;
            if after.outage_due(now, settings.outage_after) {
                tracing::error!(stream, since = ?after.failing_since, "outage");
                let started = OutageStarted { failing_since: after.failing_since.unwrap_or(now), error };
                record_source(ledger, stream, SourceEvent::OutageStarted(started), None)?;
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::store::OpenMode;

    #[test]
    fn a_poll_stopped_by_the_shutdown_is_no_failure_of_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("l.db"), OpenMode::CreateIfMissing).unwrap();
        let settings = PollSettings::default();
        let now = ledger.store().now();
        let window = (now - Duration::minutes(10), now);
        let unread = |interrupted| Unread {
            kind: FailureKind::Outage,
            error: "getOrder failed after 1 attempts: stopped by a signal while waiting for the rate limit".into(),
            interrupted,
        };
        let before = source_state(&ledger, RAKUTEN_POLL_STREAM).unwrap();
        let advanced =
            record_poll_outcome(&mut ledger, RAKUTEN_POLL_STREAM, &settings, &before, window, Err(unread(true)))
                .unwrap();
        assert!(!advanced, "the cursor stays");
        assert!(ledger.store().read_stream(RAKUTEN_POLL_STREAM).unwrap().is_empty(), "nothing recorded against RMS");
        let mut report = crate::stages::report::StageReport::new("receive:rakuten");
        report.source_failed(RAKUTEN_POLL_STREAM, &unread(true));
        assert!(report.failed_sources.is_empty(), "the cycle is interrupted, the source did not fail");

        record_poll_outcome(&mut ledger, RAKUTEN_POLL_STREAM, &settings, &before, window, Err(unread(false))).unwrap();
        let recorded = ledger.store().read_stream(RAKUTEN_POLL_STREAM).unwrap();
        assert_eq!(recorded.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["PollFailed"]);
        report.source_failed(RAKUTEN_POLL_STREAM, &unread(false));
        assert_eq!(report.failed_sources.len(), 1);
    }
}
