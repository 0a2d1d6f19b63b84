//! Write health: whether the store can commit right now, as `/healthz` reports it.
//!
//! A probe task asks the store for a tiny durable write ([`Store::probe_write`]) every
//! `Limits::store_probe_interval`. The store is unhealthy while the latest probe failed (its
//! error is the reason), and also when no probe has succeeded for [`STALLED_AFTER`] intervals,
//! which is how a write that hangs (a stalled disk, a held lock) shows. It is healthy again as
//! soon as a probe commits.

use crate::clock::SharedClock;
use crate::domain::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Probe intervals without a successful write after which the store counts as stalled.
pub const STALLED_AFTER: u32 = 3;

#[derive(Debug)]
struct State {
    failure: Option<String>,
    last_ok: Instant,
}

/// The store's write health, shared by the probe task and `/healthz`.
#[derive(Debug)]
pub struct WriteHealth {
    interval: Duration,
    state: Mutex<State>,
}

impl WriteHealth {
    /// Healthy until a probe says otherwise.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                failure: None,
                last_ok: Instant::now(),
            }),
        }
    }

    /// Records a probe's outcome; a change is logged once.
    pub fn record(&self, outcome: Result<(), String>) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        match outcome {
            Ok(()) => {
                if s.failure.take().is_some() {
                    tracing::info!("the store can write again");
                }
                s.last_ok = Instant::now();
            }
            Err(reason) => {
                if s.failure.is_none() {
                    tracing::error!(reason = %reason, "the store cannot write");
                }
                s.failure = Some(reason);
            }
        }
    }

    /// `Ok` when the store can write, else why not.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Result<(), String> {
        let Ok(s) = self.state.lock() else {
            return Err("the write-health state is unavailable".into());
        };
        if let Some(reason) = &s.failure {
            return Err(format!("the store cannot write: {reason}"));
        }
        let since = now.saturating_duration_since(s.last_ok);
        if since > self.interval * STALLED_AFTER {
            return Err(format!(
                "no store write has succeeded for {} s",
                since.as_secs()
            ));
        }
        Ok(())
    }
}

/// The probe task; it stops when this is dropped.
#[derive(Debug)]
pub struct ProbeTask(tokio::task::JoinHandle<()>);

impl Drop for ProbeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts probing `store` every interval of `health`, the first probe at once.
pub fn start_probe(
    store: Arc<dyn Store>,
    clock: SharedClock,
    health: Arc<WriteHealth>,
) -> ProbeTask {
    ProbeTask(tokio::spawn(async move {
        let mut tick = tokio::time::interval(health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (store, at) = (Arc::clone(&store), clock.now());
            let outcome = tokio::task::spawn_blocking(move || store.probe_write(at))
                .await
                .map_err(|e| format!("the probe task failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()));
            health.record(outcome);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_until_a_probe_succeeds_and_a_stall_is_noticed() {
        let h = WriteHealth::new(Duration::from_secs(5));
        assert_eq!(h.check(), Ok(()));
        h.record(Err("disk I/O error".into()));
        assert_eq!(
            h.check(),
            Err("the store cannot write: disk I/O error".into())
        );
        h.record(Ok(()));
        assert_eq!(h.check(), Ok(()));
        let ok_at = h.state.lock().unwrap().last_ok;
        assert_eq!(h.check_at(ok_at + Duration::from_secs(15)), Ok(()));
        assert_eq!(
            h.check_at(ok_at + Duration::from_secs(16)),
            Err("no store write has succeeded for 16 s".into())
        );
        h.record(Err("database is locked".into()));
        h.record(Ok(()));
        assert_eq!(h.check(), Ok(()));
    }
}
