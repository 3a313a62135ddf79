//! The health of an outside source (a marketplace API, Amazon, a mailbox), as events in its
//! `poll-<source>` stream, and the pure fold that turns them into a cursor and an outage state.
//!
//! The cursor advances only with a `PollSucceeded`, which a poller records after the whole
//! window was fetched and recorded; so after an outage the next window starts where the last
//! complete one ended, and the missed orders are backfilled with no human action.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use crate::system::FailureKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollSucceeded {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub orders_seen: u32,
    pub orders_new: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollFailed {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub error: String,
    /// An outage recovers by itself; refused credentials need a person.
    #[serde(default = "outage")]
    pub kind: FailureKind,
}

fn outage() -> FailureKind {
    FailureKind::Outage
}

/// The source refused our key, token or consent: recorded once a day while it lasts, and
/// alerted at once (it never recovers by itself, unlike an outage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRefused {
    pub error: String,
}

/// Recorded once, when a source has failed for longer than the alert threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageStarted {
    pub failing_since: DateTime<Utc>,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageEnded {
    pub failing_since: DateTime<Utc>,
    pub recovered_at: DateTime<Utc>,
    /// Orders imported by the poll that recovered (the window the outage left open).
    pub backfilled: u32,
}

/// A credential (license key, consent, token) that expires soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialExpiring {
    pub credential: String,
    pub expires_on: NaiveDate,
    pub days_left: i64,
}

/// When a credential expires, as its issuer (Rakuten's expiry API) or the configuration says;
/// recorded once a day, so the health page shows every known expiry date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialChecked {
    pub credential: String,
    pub expires_on: NaiveDate,
}

/// The marketplace did not accept our request signature (Yahoo's X-SWS-Authorize-Status):
/// calls still work, but the session ends 12 hours after consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRejected {
    pub status: String,
}

crate::event_enum! {
    /// What happens to a polled source (`poll-<source>` streams).
    pub enum SourceEvent {
        SignatureRejected(SignatureRejected) = 1,
        PollSucceeded(PollSucceeded) = 1,
        PollFailed(PollFailed) = 1,
        OutageStarted(OutageStarted) = 1,
        OutageEnded(OutageEnded) = 1,
        CredentialExpiring(CredentialExpiring) = 1,
        CredentialChecked(CredentialChecked) = 1,
        CredentialRefused(CredentialRefused) = 1,
    }
}

/// The category of every source's stream: `poll-rakuten`, `poll-yahoo`, `poll-mailbox-inbox`, …
pub const CATEGORY: &str = "poll";

/// A source as it stands (also the `source_status` projection's row, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceState {
    /// End of the last window fetched whole: the next poll starts here (less the overlap).
    pub cursor: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<(DateTime<Utc>, String)>,
    /// When the current run of failures began (None while healthy).
    pub failing_since: Option<DateTime<Utc>>,
    /// Whether the outage was declared (alerted).
    pub outage_declared: bool,
    pub expiring: Option<CredentialExpiring>,
    /// The last signature status that was not `authorized`.
    pub signature_problem: Option<String>,
    /// Every credential's known expiry date.
    pub credentials: std::collections::BTreeMap<String, NaiveDate>,
    /// What kind of failure the current run of failures is (None while healthy).
    pub failing_kind: Option<FailureKind>,
    /// Credentials refused, with when and why, until the next success.
    pub credential_refused: Option<(DateTime<Utc>, String)>,
}

impl SourceState {
    /// Folds one event recorded at `at`.
    pub fn apply(&mut self, event: &SourceEvent, at: DateTime<Utc>) {
        match event {
            SourceEvent::PollSucceeded(ok) => {
                self.cursor = Some(self.cursor.map_or(ok.window_end, |c| c.max(ok.window_end)));
                self.last_success = Some(at);
                self.failing_since = None;
                self.failing_kind = None;
                self.credential_refused = None;
            }
            SourceEvent::PollFailed(failed) => {
                self.last_failure = Some((at, failed.error.clone()));
                self.failing_since.get_or_insert(at);
                self.failing_kind = Some(failed.kind);
            }
            SourceEvent::CredentialRefused(refused) => self.credential_refused = Some((at, refused.error.clone())),
            SourceEvent::OutageStarted(_) => self.outage_declared = true,
            SourceEvent::OutageEnded(_) => self.outage_declared = false,
            SourceEvent::CredentialExpiring(expiring) => {
                self.credentials.insert(expiring.credential.clone(), expiring.expires_on);
                self.expiring = Some(expiring.clone());
            }
            SourceEvent::CredentialChecked(checked) => {
                self.credentials.insert(checked.credential.clone(), checked.expires_on);
                // A renewed credential is no longer the one about to expire.
                if self
                    .expiring
                    .as_ref()
                    .is_some_and(|e| e.credential == checked.credential && e.expires_on != checked.expires_on)
                {
                    self.expiring = None;
                }
            }
            SourceEvent::SignatureRejected(rejected) => self.signature_problem = Some(rejected.status.clone()),
        }
    }

    /// After a failure at `now`: should the outage be declared (once) now? Refused
    /// credentials are alerted at once, on their own, not as an outage.
    pub fn outage_due(&self, now: DateTime<Utc>, threshold: Duration) -> bool {
        !self.outage_declared
            && self.failing_kind == Some(FailureKind::Outage)
            && self.failing_since.is_some_and(|since| now - since >= threshold)
    }

    /// The window to poll at `now`: from the cursor less `overlap` (or `initial` back), to now.
    pub fn next_window(
        &self,
        now: DateTime<Utc>,
        overlap: Duration,
        initial: Duration,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = self.cursor.map_or(now - initial, |cursor| cursor - overlap);
        (start.min(now), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 2, 10, hour, minute, 0).unwrap()
    }

    fn ok(end: DateTime<Utc>) -> SourceEvent {
        SourceEvent::PollSucceeded(PollSucceeded { window_start: end, window_end: end, orders_seen: 0, orders_new: 0 })
    }

    fn failed() -> SourceEvent {
        SourceEvent::PollFailed(PollFailed {
            window_start: at(0, 0),
            window_end: at(0, 0),
            error: "503".into(),
            kind: FailureKind::Outage,
        })
    }

    #[test]
    fn refused_credentials_are_no_outage_and_a_success_clears_them() {
        let mut state = SourceState::default();
        let refused = SourceEvent::PollFailed(PollFailed {
            window_start: at(0, 0),
            window_end: at(0, 0),
            error: "invalid_grant".into(),
            kind: FailureKind::Credentials,
        });
        state.apply(&refused, at(7, 0));
        state.apply(&SourceEvent::CredentialRefused(CredentialRefused { error: "invalid_grant".into() }), at(7, 0));
        assert!(!state.outage_due(at(9, 0), Duration::minutes(30)), "alerted as credentials, not as an outage");
        assert!(state.credential_refused.is_some());
        state.apply(&ok(at(9, 10)), at(9, 10));
        assert_eq!((state.failing_kind, state.credential_refused), (None, None));
    }

    #[test]
    fn given_an_outage_the_cursor_stays_and_the_next_window_covers_it() {
        let mut state = SourceState::default();
        state.apply(&ok(at(6, 45)), at(6, 45));
        for minute in [0, 10, 20] {
            state.apply(&failed(), at(7, minute));
        }
        assert_eq!(state.cursor, Some(at(6, 45)));
        assert_eq!(state.failing_since, Some(at(7, 0)));
        let (start, end) = state.next_window(at(13, 35), Duration::minutes(30), Duration::days(14));
        assert_eq!((start, end), (at(6, 15), at(13, 35)));
    }

    #[test]
    fn given_failures_the_outage_is_due_once_after_the_threshold() {
        let mut state = SourceState::default();
        state.apply(&failed(), at(7, 0));
        assert!(!state.outage_due(at(7, 20), Duration::minutes(30)));
        assert!(state.outage_due(at(7, 30), Duration::minutes(30)));
        state.apply(
            &SourceEvent::OutageStarted(OutageStarted { failing_since: at(7, 0), error: "503".into() }),
            at(7, 30),
        );
        assert!(!state.outage_due(at(9, 0), Duration::minutes(30)), "declared once");
        state.apply(&ok(at(9, 10)), at(9, 10));
        assert_eq!(state.failing_since, None);
    }

    #[test]
    fn a_first_poll_looks_back_the_initial_span() {
        let state = SourceState::default();
        assert_eq!(state.next_window(at(12, 0), Duration::minutes(30), Duration::hours(3)).0, at(9, 0));
    }
}
