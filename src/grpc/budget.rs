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
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The global budget and the principals' shares of it.
#[derive(Debug)]
pub struct Budget {
    global: Arc<Semaphore>,
    share: usize,
    /// Bytes held per claimed principal, by a keyed hash of its ARN (so a call allocates
    /// nothing here; two principals whose hashes met would only share one share). An entry
    /// lives only while some call holds bytes, so the map is bounded by the calls in flight.
    held: Mutex<HashMap<u64, usize>>,
    keys: std::collections::hash_map::RandomState,
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
            keys: std::collections::hash_map::RandomState::new(),
        })
    }

    /// An empty hold for one call made as `principal`.
    pub fn hold(self: &Arc<Self>, principal: &str) -> Hold {
        Hold {
            principal: self.keys.hash_one(principal),
            budget: Arc::clone(self),
            bytes: 0,
            permit: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, usize>> {
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
    principal: u64,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Hold {
    /// Counts `n` more bytes against the principal's share and the global budget, or refuses.
    pub fn take(&mut self, n: usize) -> Result<(), BrokerError> {
        let permits = u32::try_from(n).map_err(|_| over_budget())?;
        {
            let mut held = self.budget.lock();
            let mine = held.entry(self.principal).or_insert(0);
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

    /// A budget of `global` bytes with shares of `share`, and one empty hold per principal named.
    fn holds(global: usize, share: usize, principals: &[&str]) -> (Arc<Budget>, Vec<Hold>) {
        let budget = Budget::new(global, share);
        let holds = principals.iter().map(|p| budget.hold(p)).collect();
        (budget, holds)
    }

    #[test]
    fn one_principal_cannot_take_more_than_its_share_and_others_still_can() {
        let (budget, mut h) = holds(100, 40, &["arn:a", "arn:a", "arn:b"]);
        h[0].take(30).unwrap();
        assert!(
            throttled(h[1].take(11)),
            "a's second call would exceed a's share"
        );
        h[1].take(10).unwrap();
        h[2].take(40).unwrap();
        drop(h.remove(0)); // a's first call ends: its 30 bytes come back
        h[0].take(30).unwrap();
        assert_eq!(budget.lock().get(&budget.keys.hash_one("arn:a")), Some(&40));
    }

    #[test]
    fn the_global_budget_bounds_all_principals_together() {
        let (budget, mut h) = holds(50, 40, &["arn:a", "arn:b"]);
        h[0].take(40).unwrap();
        assert!(throttled(h[1].take(20)), "only 10 bytes are left globally");
        h[1].take(10).unwrap();
        drop(h);
        assert!(budget.lock().is_empty(), "every share is given back");
        assert_eq!(budget.global.available_permits(), 50);
    }

    #[test]
    fn a_refused_take_keeps_nothing() {
        let (budget, mut h) = holds(10, 40, &["arn:a"]);
        assert!(throttled(h[0].take(11)), "over the global budget");
        assert!(
            budget.lock().is_empty(),
            "the share taken first is given back at once"
        );
        drop(h);
        assert_eq!(budget.global.available_permits(), 10);
    }
}
