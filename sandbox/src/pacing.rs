//! The fakes' quota meter: a bucket of `burst` calls refilled continuously at `rate` a second,
//! as Amazon documents its usage plans. A call that finds less than one whole call in the
//! bucket is throttled, even by a millisecond: that is what a real API does to a client that
//! paces itself at exactly the limit.

use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Calls a second.
    pub rate: f64,
    /// Calls that may come at once after a quiet spell.
    pub burst: u32,
}

impl Quota {
    pub const fn new(rate: f64, burst: u32) -> Self {
        Self { rate, burst }
    }
}

#[derive(Debug)]
pub struct Meter {
    quota: Quota,
    level: Mutex<(f64, Instant)>,
}

impl Meter {
    /// A bucket that starts full (the API's state after a quiet spell).
    pub fn new(quota: Quota) -> Self {
        Self { quota, level: Mutex::new((f64::from(quota.burst), Instant::now())) }
    }

    /// Counts a call: true when the quota allows it, false when it is throttled.
    pub fn admit(&self) -> bool {
        let mut level = self.level.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refilled = level.0 + now.duration_since(level.1).as_secs_f64() * self.quota.rate;
        level.0 = refilled.min(f64::from(self.quota.burst));
        level.1 = now;
        if level.0 >= 1.0 {
            level.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_burst_passes_then_a_call_before_the_refill_is_throttled() {
        let meter = Meter::new(Quota::new(20.0, 2));
        assert!(meter.admit() && meter.admit());
        assert!(!meter.admit(), "the bucket is empty");
        std::thread::sleep(Duration::from_millis(60));
        assert!(meter.admit(), "one call refilled after 50 ms");
        assert!(!meter.admit());
    }
}
