//! Faults on command: the next N calls (of one operation, or of any) fail in a chosen way, or
//! every call fails until the fault is lifted (an outage).

use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and the API's own error body for it.
    Status(u16),
    /// Answer correctly, but only after this delay.
    Slow(Duration),
    /// Answer 200 with a body cut off mid-JSON (or mid-XML).
    Malformed,
    /// Do what was asked, then hold the answer this long (past the client's timeout): the
    /// client cannot know whether the call took effect.
    ApplyThenHang(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    operation: Option<String>,
    fault: Fault,
    /// None: until lifted.
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    injected: Mutex<u64>,
}

impl Faults {
    /// The next `count` calls of `operation` (None: any operation) fail with `fault`.
    pub fn inject(&self, operation: Option<&str>, fault: Fault, count: u32) {
        self.lock().push(Rule { operation: operation.map(str::to_owned), fault, remaining: Some(count) });
    }

    /// Every call fails with `fault` until [`Faults::lift`].
    pub fn start_outage(&self, fault: Fault) {
        self.lock().push(Rule { operation: None, fault, remaining: None });
    }

    pub fn lift(&self) {
        self.lock().clear();
    }

    /// The fault for this call, if any, counting it down.
    pub fn take(&self, operation: &str) -> Option<Fault> {
        let mut rules = self.lock();
        let index = rules.iter().position(|r| r.operation.as_deref().is_none_or(|op| op == operation))?;
        let fault = rules[index].fault.clone();
        if let Some(remaining) = rules[index].remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                rules.remove(index);
            }
        }
        drop(rules);
        *self.injected.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Some(fault)
    }

    /// How many calls a fault has hit so far.
    pub fn injected(&self) -> u64 {
        *self.injected.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_and_outages_last_until_lifted() {
        let faults = Faults::default();
        faults.inject(Some("create"), Fault::Status(500), 2);
        assert_eq!(faults.take("get"), None);
        assert_eq!(faults.take("create"), Some(Fault::Status(500)));
        assert_eq!(faults.take("create"), Some(Fault::Status(500)));
        assert_eq!(faults.take("create"), None);
        faults.start_outage(Fault::Status(503));
        for _ in 0..10 {
            assert_eq!(faults.take("anything"), Some(Fault::Status(503)));
        }
        faults.lift();
        assert_eq!(faults.take("anything"), None);
        assert_eq!(faults.injected(), 12);
    }
}
