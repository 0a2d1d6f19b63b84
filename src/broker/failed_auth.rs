//! Failed authentications, aggregated before they reach the audit trail.
//!
//! Why: anyone can send requests signed with a made-up `AKIA…` key, and recording each refusal
//! as its own audit row let an unauthenticated flood grow the table without limit (issue 12,
//! defect 5: 81,252 rows in 20 s) until the disk filled and every MFA login failed with it.
//!
//! How: refusals are grouped per [`INTERVAL_SECS`] interval of the broker's clock by (source IP,
//! AWS error code, reason, access key id as given, action). Each group becomes ONE audit row
//! when its interval ends: the first refusal's time in `at`, the last one's in `last_at`, and
//! how many there were in `count`. Memory is bounded whatever the callers send: at most
//! [`MAX_GROUPS`] groups per interval; past that, a refusal is counted in one group per (code,
//! reason) whose source is [`OVERFLOW_SOURCE`] (and whose key id is not kept), and the strings
//! taken from the request (key id, action) are cut to [`MAX_FIELD_CHARS`] characters. So an
//! interval writes at most `MAX_GROUPS` rows plus one per reason, whatever the flood.
//!
//! The rows are written when the first refusal of a later interval arrives, by the broker's
//! once-a-second ticker when an interval has ended (`Broker::start`), and at shutdown or an
//! explicit audit flush (both end the current interval early). Every refusal is also counted,
//! by reason, in `/metrics` (`sts_broker_failed_authentications_total`).

use crate::domain::{AuditEvent, Outcome};
use crate::metrics::FailureCounts;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// The length of an aggregation interval.
pub const INTERVAL_SECS: i64 = 60;
/// The most groups one interval keeps apart.
pub const MAX_GROUPS: usize = 1000;
/// The longest key id or action kept, in characters.
pub const MAX_FIELD_CHARS: usize = 128;
/// The source of the groups that take the refusals past [`MAX_GROUPS`].
pub const OVERFLOW_SOURCE: &str = "overflow";

/// One refused authentication, as the audit trail is to know it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub source: Option<IpAddr>,
    /// The AWS error code the caller got.
    pub code: &'static str,
    /// Why, for the audit trail (e.g. `unknown access key`).
    pub reason: &'static str,
    /// The access key id as the request gave it.
    pub access_key_id: Option<&'a str>,
    /// The principal, when the key was found.
    pub principal: Option<&'a str>,
    /// The IAM action (or the RPC path).
    pub action: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    source: Option<IpAddr>,
    code: &'static str,
    reason: &'static str,
    access_key_id: Option<String>,
    action: String,
}

#[derive(Debug, Clone)]
struct Group {
    principal: Option<String>,
    count: u64,
    first: OffsetDateTime,
    last: OffsetDateTime,
}

impl Group {
    fn new(principal: Option<&str>, at: OffsetDateTime) -> Self {
        Self {
            principal: principal.map(|p| cut(p).to_owned()),
            count: 0,
            first: at,
            last: at,
        }
    }

    fn add(&mut self, at: OffsetDateTime) {
        self.count = self.count.saturating_add(1);
        self.first = self.first.min(at);
        self.last = self.last.max(at);
    }
}

/// `s` cut to at most [`MAX_FIELD_CHARS`] characters (on a character boundary).
fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX_FIELD_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn interval_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(INTERVAL_SECS)
}

/// The groups of the current interval. Pure bookkeeping: times come from the caller.
#[derive(Debug, Default)]
pub struct Aggregator {
    interval: Option<i64>,
    groups: HashMap<GroupKey, Group>,
    overflow: BTreeMap<(&'static str, &'static str), Group>,
}

impl Aggregator {
    /// Counts `f` at `at`. Returns the rows of the interval that `at` ended (empty if it is in
    /// the current one) and whether `f` opened a new group.
    pub fn record(&mut self, f: &Failure<'_>, at: OffsetDateTime) -> (Vec<AuditEvent>, bool) {
        let due = self.take_due(at);
        self.interval = Some(
            self.interval
                .map_or(interval_of(at), |i| i.max(interval_of(at))),
        );
        let key = GroupKey {
            source: f.source,
            code: f.code,
            reason: f.reason,
            access_key_id: f.access_key_id.map(|k| cut(k).to_owned()),
            action: cut(f.action).to_owned(),
        };
        let mut opened = false;
        let group = if let Some(g) = self.groups.get_mut(&key) {
            g
        } else if self.groups.len() < MAX_GROUPS {
            opened = true;
            self.groups
                .entry(key)
                .or_insert_with(|| Group::new(f.principal, at))
        } else {
            self.overflow.entry((f.code, f.reason)).or_insert_with(|| {
                opened = true;
                Group::new(None, at)
            })
        };
        group.add(at);
        (due, opened)
    }

    /// The rows of the current interval if `now` is past it (and a fresh interval), else none.
    pub fn take_due(&mut self, now: OffsetDateTime) -> Vec<AuditEvent> {
        match self.interval {
            Some(i) if interval_of(now) > i => self.drain(),
            _ => Vec::new(),
        }
    }

    /// The rows of every group so far, ending the current interval.
    pub fn drain(&mut self) -> Vec<AuditEvent> {
        self.interval = None;
        let mut rows: Vec<AuditEvent> = self
            .groups
            .drain()
            .map(|(k, g)| {
                row(
                    k.source.map(|ip| ip.to_string()),
                    k.code,
                    k.reason,
                    k.access_key_id,
                    k.action,
                    g,
                )
            })
            .collect();
        rows.extend(
            std::mem::take(&mut self.overflow)
                .into_iter()
                .map(|((code, reason), g)| {
                    row(
                        Some(OVERFLOW_SOURCE.to_owned()),
                        code,
                        reason,
                        None,
                        "*".to_owned(),
                        g,
                    )
                }),
        );
        rows.sort_by_key(|r| r.at);
        rows
    }
}

fn row(
    source: Option<String>,
    code: &str,
    reason: &str,
    access_key_id: Option<String>,
    action: String,
    g: Group,
) -> AuditEvent {
    AuditEvent {
        principal: g.principal,
        access_key_id,
        source,
        error_code: Some(code.to_owned()),
        detail: Some(reason.to_owned()),
        count: g.count,
        last_at: Some(g.last),
        ..AuditEvent::single(g.first, action, Outcome::Failure)
    }
}

/// The broker's failed-authentication log: the aggregator and the counters of `/metrics`.
#[derive(Debug, Default)]
pub struct FailedAuth {
    groups: Mutex<Aggregator>,
    counts: Arc<FailureCounts>,
}

impl FailedAuth {
    /// The counters by reason, for `/metrics`.
    pub fn counts(&self) -> Arc<FailureCounts> {
        Arc::clone(&self.counts)
    }

    /// Counts `f` at `at`; returns the rows now due and whether `f` opened a new group.
    pub fn record(&self, f: &Failure<'_>, at: OffsetDateTime) -> (Vec<AuditEvent>, bool) {
        self.counts.count(f.reason);
        match self.groups.lock() {
            Ok(mut g) => g.record(f, at),
            Err(_) => (Vec::new(), false),
        }
    }

    /// The rows due at `now` (see [`Aggregator::take_due`]).
    pub fn take_due(&self, now: OffsetDateTime) -> Vec<AuditEvent> {
        self.groups
            .lock()
            .map(|mut g| g.take_due(now))
            .unwrap_or_default()
    }

    /// Every row so far, ending the current interval.
    pub fn drain(&self) -> Vec<AuditEvent> {
        self.groups
            .lock()
            .map(|mut g| g.drain())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The start of an interval.
    const T: i64 = 1_772_323_200;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(T + s).unwrap()
    }

    fn unknown_key<'a>(ip: u8, akid: &'a str) -> Failure<'a> {
        Failure {
            source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, ip))),
            code: "InvalidClientTokenId",
            reason: "unknown access key",
            access_key_id: Some(akid),
            principal: None,
            action: "sts:GetCallerIdentity",
        }
    }

    #[test]
    fn alike_refusals_of_one_interval_become_one_row_with_count_and_times() {
        let mut a = Aggregator::default();
        let f = unknown_key(7, "AKIAUNKNOWNUNKNOWN01");
        for s in 0..50 {
            let (due, opened) = a.record(&f, at(s));
            assert!(due.is_empty());
            assert_eq!(opened, s == 0, "only the first opens a group");
        }
        a.record(&unknown_key(8, "AKIAUNKNOWNUNKNOWN01"), at(3));
        let rows = a.drain();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let r = rows
            .iter()
            .find(|r| r.source.as_deref() == Some("192.0.2.7"))
            .unwrap();
        assert_eq!(r.count, 50);
        assert_eq!((r.at, r.last_at), (at(0), Some(at(49))));
        assert_eq!(r.outcome, Outcome::Failure);
        assert_eq!(r.error_code.as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(r.detail.as_deref(), Some("unknown access key"));
        assert_eq!(r.access_key_id.as_deref(), Some("AKIAUNKNOWNUNKNOWN01"));
        assert_eq!(r.action, "sts:GetCallerIdentity");
        assert!(a.drain().is_empty(), "drained once");
    }

    #[test]
    fn a_refusal_in_a_later_interval_hands_back_the_ended_one() {
        let mut a = Aggregator::default();
        let f = unknown_key(1, "AKIAUNKNOWNUNKNOWN01");
        a.record(&f, at(0));
        a.record(&f, at(59));
        assert!(a.take_due(at(59)).is_empty(), "the interval has not ended");
        let (due, opened) = a.record(&f, at(60));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 2);
        assert!(opened, "a new interval starts its own group");
        assert!(a.take_due(at(119)).is_empty());
        let due = a.take_due(at(120));
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].count, due[0].at), (1, at(60)));
        assert!(a.take_due(at(500)).is_empty(), "nothing left");
    }

    #[test]
    fn groups_past_the_cap_go_to_one_overflow_group_per_reason() {
        let mut a = Aggregator::default();
        let keys: Vec<String> = (0..MAX_GROUPS + 500)
            .map(|i| format!("AKIA{i:016}"))
            .collect();
        for k in &keys {
            a.record(&unknown_key(1, k), at(1));
        }
        let mut bad_sig = unknown_key(2, "AKIAIOSFODNN7EXAMPLE");
        bad_sig.code = "SignatureDoesNotMatch";
        bad_sig.reason = "signature does not match";
        for _ in 0..3 {
            a.record(&bad_sig, at(2));
        }
        let rows = a.drain();
        assert_eq!(rows.len(), MAX_GROUPS + 2, "the cap, then one per reason");
        let overflow: Vec<_> = rows
            .iter()
            .filter(|r| r.source.as_deref() == Some(OVERFLOW_SOURCE))
            .collect();
        assert_eq!(overflow.len(), 2);
        let by_reason = |reason: &str| {
            overflow
                .iter()
                .find(|r| r.detail.as_deref() == Some(reason))
                .unwrap()
        };
        assert_eq!(by_reason("unknown access key").count, 500);
        assert_eq!(by_reason("signature does not match").count, 3);
        assert!(overflow.iter().all(|r| r.access_key_id.is_none()));
        let total: u64 = rows.iter().map(|r| r.count).sum();
        assert_eq!(total, u64::try_from(keys.len()).unwrap() + 3, "none lost");
    }

    #[test]
    fn strings_from_the_request_are_cut_to_the_bound() {
        let mut a = Aggregator::default();
        let long_key = "A".repeat(1000);
        let long_action = "é".repeat(300);
        let mut f = unknown_key(1, &long_key);
        f.action = &long_action;
        a.record(&f, at(0));
        // Another key with the same first 128 characters falls in the same group.
        let other = format!("{}B", "A".repeat(500));
        let mut g = unknown_key(1, &other);
        g.action = &long_action;
        a.record(&g, at(1));
        let rows = a.drain();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].count, 2);
        assert_eq!(
            rows[0].access_key_id.as_deref(),
            Some("A".repeat(128).as_str())
        );
        assert_eq!(rows[0].action.chars().count(), MAX_FIELD_CHARS);
        assert!(rows[0].action.chars().all(|c| c == 'é'));
    }

    #[test]
    fn every_refusal_is_counted_by_reason() {
        let log = FailedAuth::default();
        for s in 0..70 {
            log.record(&unknown_key(1, "AKIAUNKNOWNUNKNOWN01"), at(s));
        }
        let text = log.counts().render();
        assert!(
            text.contains(
                "sts_broker_failed_authentications_total{reason=\"unknown_access_key\"} 70"
            ),
            "{text}"
        );
        // 0..59 ended when 60 arrived; 60..69 are still in the current interval.
        assert_eq!(log.drain().iter().map(|r| r.count).sum::<u64>(), 10);
    }
}
