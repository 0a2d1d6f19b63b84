//! Evaluations too large for an async worker: a simulation's grid of (action, resource) pairs
//! runs on tokio's blocking pool, a few grids at a time, and stops when its caller gives up.
//!
//! One evaluation is cheap (microseconds for real policies), so `Authorize` and the broker's own
//! authorization evaluate inline. A simulation may ask for up to
//! [`super::limits::MAX_SIMULATION_RESULTS`] evaluations against up to 20 caller-written
//! documents, which can keep a core busy for a long time; run on an async worker, that would
//! stall every other call, `/healthz` included. Here:
//! - the grid runs on the blocking pool, so the async workers keep serving;
//! - at most [`concurrency`] grids run at once (about half the cores), the rest wait without
//!   holding a thread, so simulations cannot take every core either;
//! - dropping the returned future (the server's request timeout, a client that disconnects)
//!   stops the grid before its next pair, and the slot is free again once it has stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use super::context::Context;
use super::evaluator::{Decision, PolicySource, Request, evaluate};

/// Why a grid produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GridError {
    /// The blocking task ended without an answer (it panicked, or the runtime is shutting down).
    #[error("policy evaluation did not complete")]
    Incomplete,
}

/// One cell of the grid: the action, the resource, and the decision.
pub type GridCell = (String, String, Decision);

/// How many grids may evaluate at once: half the available cores, at least one.
pub fn concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
}

fn slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    Arc::clone(SLOTS.get_or_init(|| Arc::new(Semaphore::new(concurrency()))))
}

/// Sets the flag when the caller's future is dropped, finished or not.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Evaluates every action against every resource (actions outer, resources inner, in the
/// given order) with the same `sources`, `principal_arn` and `context`, off the async workers.
pub async fn evaluate_grid(
    sources: Vec<PolicySource>,
    actions: Vec<String>,
    resources: Vec<String>,
    principal_arn: String,
    context: Context,
) -> Result<Vec<GridCell>, GridError> {
    let slot = slots()
        .acquire_owned()
        .await
        .map_err(|_| GridError::Incomplete)?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(Arc::clone(&cancelled));
    let task = tokio::task::spawn_blocking(move || {
        // INVARIANT: the slot is held until the grid has stopped, not merely until the caller
        // stopped waiting, so the number of running grids never exceeds `concurrency()`.
        let _slot = slot;
        fill_grid(
            &sources,
            &actions,
            &resources,
            &principal_arn,
            &context,
            &cancelled,
        )
    });
    task.await.ok().flatten().ok_or(GridError::Incomplete)
}

/// The grid, or `None` as soon as `cancelled` is seen set (checked before each pair).
fn fill_grid(
    sources: &[PolicySource],
    actions: &[String],
    resources: &[String],
    principal_arn: &str,
    context: &Context,
    cancelled: &AtomicBool,
) -> Option<Vec<GridCell>> {
    let mut out = Vec::with_capacity(actions.len().saturating_mul(resources.len()));
    for action in actions {
        for resource in resources {
            if cancelled.load(Ordering::Relaxed) {
                return None;
            }
            let request = Request {
                action: action.clone(),
                resource: resource.clone(),
                principal_arn: principal_arn.to_owned(),
                context: context.clone(),
            };
            let decision = evaluate(sources, &request);
            out.push((action.clone(), resource.clone(), decision));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{EvalDecision, PolicyDocument, PolicyKind, SourceType};

    fn source(doc: &str) -> PolicySource {
        PolicySource {
            id: "p".to_owned(),
            kind: SourceType::UserManaged,
            document: Arc::new(PolicyDocument::parse(doc, PolicyKind::Managed).unwrap()),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn the_grid_is_actions_outer_resources_inner() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let cells = evaluate_grid(
            vec![source(doc)],
            strings(&["s3:GetObject", "s3:PutObject"]),
            strings(&["arn:aws:s3:::b/k", "arn:aws:s3:::c/k"]),
            String::new(),
            Context::new(),
        )
        .await
        .unwrap();
        let got: Vec<(&str, &str, EvalDecision)> = cells
            .iter()
            .map(|(a, r, d)| (a.as_str(), r.as_str(), d.effect))
            .collect();
        assert_eq!(
            got,
            vec![
                ("s3:GetObject", "arn:aws:s3:::b/k", EvalDecision::Allowed),
                (
                    "s3:GetObject",
                    "arn:aws:s3:::c/k",
                    EvalDecision::ImplicitDeny
                ),
                (
                    "s3:PutObject",
                    "arn:aws:s3:::b/k",
                    EvalDecision::ImplicitDeny
                ),
                (
                    "s3:PutObject",
                    "arn:aws:s3:::c/k",
                    EvalDecision::ImplicitDeny
                ),
            ]
        );
    }

    #[test]
    fn a_cancelled_grid_stops_and_a_dropped_caller_cancels() {
        let all = source(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        );
        let (actions, resources) = (strings(&["s3:GetObject"]), strings(&["*"]));
        let flag = Arc::new(AtomicBool::new(false));
        let run = |flag: &AtomicBool| {
            fill_grid(
                std::slice::from_ref(&all),
                &actions,
                &resources,
                "",
                &Context::new(),
                flag,
            )
        };
        assert_eq!(run(&flag).map(|cells| cells.len()), Some(1));
        drop(CancelOnDrop(Arc::clone(&flag)));
        assert_eq!(run(&flag), None);
        assert!(concurrency() >= 1);
    }
}
