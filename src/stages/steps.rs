//! Where a stage may stop: between two steps (one order, one page of a marketplace). A graceful
//! shutdown stops the stage there, and the cycle's lease is renewed there, so a stage over
//! thousands of orders at one call a second neither outlasts systemd's stop timeout nor its
//! own lease. Every step is whole on its own (its outside call and the append that records it),
//! so stopping between two is what a crash there would do, minus the doubt.

use crate::stages::report::{StageError, StageReport};
use projections::Ledger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a running stage renews the cycle lease (its time to live is much longer).
const RENEW_EVERY: Duration = Duration::from_secs(60);

pub struct Steps<'a> {
    stop: Option<&'a AtomicBool>,
    lease: Option<LeaseRenewal>,
}

/// The lease a cycle holds while its stages run.
pub struct LeaseRenewal {
    pub name: &'static str,
    pub holder: String,
    pub ttl: chrono::Duration,
    last: Instant,
}

impl LeaseRenewal {
    /// Just taken or renewed.
    pub fn taken(name: &'static str, holder: String, ttl: chrono::Duration) -> Self {
        Self { name, holder, ttl, last: Instant::now() }
    }
}

impl Steps<'static> {
    /// Steps that never stop and hold no lease: a stage run on its own (tests, benchmarks).
    pub fn unbounded() -> Self {
        Self { stop: None, lease: None }
    }
}

impl<'a> Steps<'a> {
    /// Steps of a cycle: stop once `stop` is set, renew `lease` as they go.
    pub fn new(stop: &'a AtomicBool, lease: Option<LeaseRenewal>) -> Self {
        Self { stop: Some(stop), lease }
    }

    /// Whether the stage may take its next step. False once a shutdown was asked for: the
    /// stage stops there and says so in `report`. Renews the lease when it is due; a lease
    /// that another process took meanwhile stops the stage with an error.
    pub fn proceed(&mut self, ledger: &mut Ledger, report: &mut StageReport) -> Result<bool, StageError> {
        if self.stopping() {
            if !report.interrupted {
                tracing::warn!(stage = report.stage, examined = report.examined, "shutting down: the stage stops here");
            }
            report.interrupted = true;
            return Ok(false);
        }
        if let Some(lease) = self.lease.as_mut().filter(|l| l.last.elapsed() >= RENEW_EVERY) {
            let now = ledger.store().now();
            crate::lease::acquire(ledger.store_mut().connection_mut(), lease.name, &lease.holder, now, lease.ttl)
                .map_err(|e| StageError::Lease(e.to_string()))?;
            lease.last = Instant::now();
        }
        Ok(true)
    }

    /// A shutdown was asked for.
    pub fn stopping(&self) -> bool {
        self.stop.is_some_and(|stop| stop.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::store::OpenMode;

    #[test]
    fn a_stage_goes_on_until_the_shutdown_and_says_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("l.db"), OpenMode::CreateIfMissing).unwrap();
        let stop = AtomicBool::new(false);
        let mut steps = Steps::new(&stop, None);
        let mut report = StageReport::new("ship");
        assert!(steps.proceed(&mut ledger, &mut report).unwrap());
        stop.store(true, Ordering::SeqCst);
        assert!(!steps.proceed(&mut ledger, &mut report).unwrap());
        assert!(report.interrupted);
        let mut unbounded = Steps::unbounded();
        let mut other = StageReport::new("check");
        assert!(unbounded.proceed(&mut ledger, &mut other).unwrap() && !other.interrupted);
    }

    #[test]
    fn a_lease_taken_over_by_another_process_stops_the_stage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut ledger = Ledger::open(&path, OpenMode::CreateIfMissing).unwrap();
        let now = ledger.store().now();
        let ttl = chrono::Duration::minutes(15);
        crate::lease::acquire(ledger.store_mut().connection_mut(), "cycle", "elsewhere:1", now, ttl).unwrap();
        let stop = AtomicBool::new(false);
        let mut lease = LeaseRenewal::taken("cycle", "here:2".into(), ttl);
        lease.last = Instant::now() - RENEW_EVERY;
        let mut steps = Steps::new(&stop, Some(lease));
        let error = steps.proceed(&mut ledger, &mut StageReport::new("ship")).unwrap_err();
        assert!(error.to_string().contains("held by elsewhere:1"), "{error}");
    }
}
