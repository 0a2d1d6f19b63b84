//! Counters for `GET /metrics` in the Prometheus text exposition format: calls by action and
//! outcome code, and failed authentications by reason. Kept deliberately small; a lock-free map
//! is not needed at this call rate because the lock is held only for one increment.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// Call counters.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(String, &'static str), u64>>,
    failed_authentications: Arc<FailureCounts>,
}

/// Failed authentications by reason (the broker's `failed_auth.rs` counts them). Reasons are
/// the broker's own fixed words, never text from a request, so the label set is bounded.
#[derive(Debug, Default)]
pub struct FailureCounts {
    by_reason: Mutex<BTreeMap<&'static str, u64>>,
}

/// A reason as a label value: `unknown access key` → `unknown_access_key`.
fn reason_label(reason: &str) -> String {
    reason
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl FailureCounts {
    /// Counts one failed authentication for `reason`.
    pub fn count(&self, reason: &'static str) {
        if let Ok(mut m) = self.by_reason.lock() {
            *m.entry(reason).or_insert(0) += 1;
        }
    }

    /// The exposition text of `sts_broker_failed_authentications_total`.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP sts_broker_failed_authentications_total Failed authentications by reason.\n\
             # TYPE sts_broker_failed_authentications_total counter\n",
        );
        if let Ok(m) = self.by_reason.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "sts_broker_failed_authentications_total{{reason=\"{}\"}} {n}",
                    reason_label(reason)
                );
            }
        }
        out
    }
}

impl Metrics {
    /// Counters that show the broker's failed authentications too.
    pub fn with_failed_authentications(counts: Arc<FailureCounts>) -> Self {
        Self {
            calls: Mutex::default(),
            failed_authentications: counts,
        }
    }

    /// Counts one call of `action` that ended with `code` (`OK` or an AWS error code).
    pub fn count(&self, action: &str, code: &'static str) {
        if let Ok(mut m) = self.calls.lock() {
            *m.entry((action.to_owned(), code)).or_insert(0) += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP sts_broker_calls_total Calls by IAM action and outcome code.\n\
             # TYPE sts_broker_calls_total counter\n",
        );
        if let Ok(m) = self.calls.lock() {
            for ((action, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "sts_broker_calls_total{{action=\"{action}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str(&self.failed_authentications.render());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.count("iam:CreateUser", "OK");
        m.count("iam:CreateUser", "OK");
        m.count("sts:GetCallerIdentity", "AccessDenied");
        let t = m.render();
        assert!(t.contains("sts_broker_calls_total{action=\"iam:CreateUser\",code=\"OK\"} 2"));
        assert!(t.contains("code=\"AccessDenied\"} 1"));
    }

    #[test]
    fn renders_failed_authentications_by_reason() {
        let counts = Arc::new(FailureCounts::default());
        let m = Metrics::with_failed_authentications(Arc::clone(&counts));
        counts.count("unknown access key");
        counts.count("unknown access key");
        counts.count("signature does not match");
        let t = m.render();
        assert!(t.contains("# TYPE sts_broker_failed_authentications_total counter"));
        assert!(
            t.contains("sts_broker_failed_authentications_total{reason=\"unknown_access_key\"} 2"),
            "{t}"
        );
        assert!(t.contains("{reason=\"signature_does_not_match\"} 1"), "{t}");
    }
}
