//! Counters for `GET /metrics` in the Prometheus text exposition format: calls by action and
//! outcome code. Kept deliberately small; a lock-free map is not needed at this call rate because
//! the lock is held only for one increment.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Call counters.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
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
}
