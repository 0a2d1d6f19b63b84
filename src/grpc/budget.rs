//! The budget of request bytes the transport may hold while it waits for whole messages.
//!
//! A SigV4 signature covers the body, so a call whose headers pass every check (a known access
//! key id, a date inside the window) must be read before it can be refused. Access key ids are
//! not secret: anyone who has seen one can open calls that the broker has to buffer. Two bounds
//! apply to every byte before it is kept:
//! - the global budget ([`BodyLimits::budget_bytes`]) bounds the memory all such calls cost;
//! - the share of one principal ([`BodyLimits::principal_share_bytes`], by the ARN the headers
//!   claim) bounds what one known key, or all sessions of one user, can hold, so that such a
//!   client crowds out only calls made as that same principal, not everyone else's.
//!
//! Over either bound the call is refused at once (`Throttling`), never queued, so a flood cannot
//! queue memory either. Everything a call holds is given back when its [`Hold`] is dropped.
//!
//! [`BodyLimits::budget_bytes`]: super::auth_layer::BodyLimits::budget_bytes
//! [`BodyLimits::principal_share_bytes`]: super::auth_layer::BodyLimits::principal_share_bytes

use crate::error::{AwsCode, BrokerError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The global budget and the principals' shares of it.
#[derive(Debug)]
pub struct Budget {
    global: Arc<Semaphore>,
    share: usize,
    /// Bytes held per claimed principal; an entry lives only while some call holds bytes, so the
    /// map is bounded by the calls in flight.
    held: Mutex<HashMap<String, usize>>,
}

fn over_budget() -> BrokerError {
    BrokerError::new(
        AwsCode::Throttling,
        "Rate exceeded: too many request bytes in flight; retry shortly",
    )
}

impl Budget {
    pub fn new(global_bytes: usize, principal_share_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            global: Arc::new(Semaphore::new(global_bytes.min(Semaphore::MAX_PERMITS))),
            share: principal_share_bytes,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// An empty hold for one call made as `principal`.
    pub fn hold(self: &Arc<Self>, principal: &str) -> Hold {
        Hold {
            budget: Arc::clone(self),
            principal: principal.to_owned(),
            bytes: 0,
            permit: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding this lock leaves plain counters behind; they stay usable.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What one call holds of the budget; given back on drop.
#[derive(Debug)]
pub struct Hold {
    budget: Arc<Budget>,
    principal: String,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Hold {
    /// Counts `n` more bytes against the principal's share and the global budget, or refuses.
    pub fn take(&mut self, n: usize) -> Result<(), BrokerError> {
        let permits = u32::try_from(n).map_err(|_| over_budget())?;
        {
            let mut held = self.budget.lock();
            let mine = held.entry(self.principal.clone()).or_insert(0);
            if mine.saturating_add(n) > self.budget.share {
                if *mine == 0 {
                    held.remove(&self.principal);
                }
                return Err(over_budget());
            }
            *mine += n;
        }
        self.bytes += n;
        let Ok(permit) = Arc::clone(&self.budget.global).try_acquire_many_owned(permits) else {
            self.give_back(n);
            return Err(over_budget());
        };
        match self.permit.as_mut() {
            Some(p) => p.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }
}

impl Hold {
    fn give_back(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.bytes -= n;
        let mut held = self.budget.lock();
        if let Some(mine) = held.get_mut(&self.principal) {
            *mine = mine.saturating_sub(n);
            if *mine == 0 {
                held.remove(&self.principal);
            }
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsCode;

    fn throttled(r: Result<(), BrokerError>) -> bool {
        matches!(r, Err(e) if e.code == AwsCode::Throttling)
    }

    #[test]
    fn one_principal_cannot_take_more_than_its_share_and_others_still_can() {
        let budget = Budget::new(100, 40);
        let mut a1 = budget.hold("arn:a");
        let mut a2 = budget.hold("arn:a");
        a1.take(30).unwrap();
        assert!(
            throttled(a2.take(11)),
            "a's second call would exceed a's share"
        );
        a2.take(10).unwrap();
        let mut b = budget.hold("arn:b");
        b.take(40).unwrap();
        drop(a1);
        a2.take(30).unwrap();
        assert_eq!(budget.lock().get("arn:a"), Some(&40));
    }

    #[test]
    fn the_global_budget_bounds_all_principals_together() {
        let budget = Budget::new(50, 40);
        let mut a = budget.hold("arn:a");
        let mut b = budget.hold("arn:b");
        a.take(40).unwrap();
        assert!(throttled(b.take(20)), "only 10 bytes are left globally");
        b.take(10).unwrap();
        drop((a, b));
        assert!(budget.lock().is_empty(), "every share is given back");
        assert_eq!(budget.global.available_permits(), 50);
    }

    #[test]
    fn a_refused_take_keeps_nothing() {
        let budget = Budget::new(10, 40);
        let mut a = budget.hold("arn:a");
        assert!(throttled(a.take(11)));
        drop(a);
        assert!(budget.lock().is_empty());
        assert_eq!(budget.global.available_permits(), 10);
    }
}
