//! Throttling of MFA attempts (NIST SP 800-63B §5.2.2): consecutive failures are counted per
//! principal across all of its devices. The first few cost nothing (typos happen); after that each
//! further attempt must wait a delay that doubles with every failure up to a cap; at the limit the
//! principal's MFA is locked until an administrator resets it. A success clears the count.
//!
//! With the defaults (5 free failures, delay doubling from 1 s to a 5-minute cap, lock at 100) an
//! online guesser gets about 95 guesses in roughly seven hours before the lock, against a 10^6 code
//! space with a 3-step window: a success probability below 3·10^-4.

/// The throttling rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures allowed without any delay.
    pub free_failures: u32,
    /// The longest delay between attempts, in seconds.
    pub max_delay_secs: i64,
    /// Consecutive failures at which MFA is locked (NIST: no more than 100).
    pub lock_at: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            max_delay_secs: 300,
            lock_at: 100,
        }
    }
}

/// Whether an attempt may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too soon after the last failure; not checked, not counted.
    Delayed {
        until: i64,
    },
    /// Locked until an administrator resets it.
    Locked,
}

impl LockoutPolicy {
    /// The delay owed after `failures` consecutive failures.
    pub fn delay_after(&self, failures: u32) -> i64 {
        if failures < self.free_failures {
            return 0;
        }
        let doublings = failures - self.free_failures;
        if doublings >= 62 {
            return self.max_delay_secs;
        }
        (1i64 << doublings).min(self.max_delay_secs)
    }

    /// May an attempt be checked at `now`, given the count and the time of the last failure?
    pub fn gate(&self, failures: u32, last_failure_at: Option<i64>, now: i64) -> Gate {
        if failures >= self.lock_at {
            return Gate::Locked;
        }
        let until = last_failure_at
            .unwrap_or(i64::MIN)
            .saturating_add(self.delay_after(failures));
        if failures >= self.free_failures && now < until {
            Gate::Delayed { until }
        } else {
            Gate::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failures_are_free_then_delays_double_to_a_cap() {
        let p = LockoutPolicy::default();
        assert_eq!(p.delay_after(0), 0);
        assert_eq!(p.delay_after(4), 0);
        assert_eq!(p.delay_after(5), 1);
        assert_eq!(p.delay_after(6), 2);
        assert_eq!(p.delay_after(9), 16);
        assert_eq!(p.delay_after(20), 300);
        assert_eq!(p.delay_after(99), 300);
    }

    #[test]
    fn gate_opens_after_the_delay_and_locks_at_the_limit() {
        let p = LockoutPolicy::default();
        assert_eq!(p.gate(4, Some(1000), 1000), Gate::Open);
        assert_eq!(p.gate(6, Some(1000), 1001), Gate::Delayed { until: 1002 });
        assert_eq!(p.gate(6, Some(1000), 1002), Gate::Open);
        assert_eq!(p.gate(99, Some(1000), 1300), Gate::Open);
        assert_eq!(p.gate(100, Some(1000), 999_999), Gate::Locked);
        assert_eq!(p.gate(0, None, 0), Gate::Open);
    }
}
