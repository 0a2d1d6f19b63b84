//! The policy AST: what a parsed document holds, already compiled for evaluation, plus the
//! per-document action index.
//!
//! Documents are immutable once parsed and are shared behind `Arc` by the caller.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::condition::ConditionClause;
use super::pattern::{ActionPattern, ArnPattern};

/// The policy language version (`UG:reference_policies_elements_version.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2008-10-17`, also what a document without `Version` gets: policy variables are literal text.
    V2008_10_17,
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
}

impl Version {
    /// Whether `${...}` policy variables are substituted under this version.
    pub fn substitutes_variables(self) -> bool {
        self == Version::V2012_10_17
    }

    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2008_10_17 => "2008-10-17",
            Version::V2012_10_17 => "2012-10-17",
        }
    }
}

/// `Allow` or `Deny` (case-sensitive in documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `Allow`.
    Allow,
    /// `Deny`.
    Deny,
}

/// What a document is used as; decides the size limit and whether `Principal` is required or
/// forbidden (`UG:reference_iam-quotas.md`, `UG:reference_policies_grammar.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A customer managed policy: at most 6,144 non-whitespace characters.
    Managed,
    /// An inline policy on a user: at most 2,048.
    UserInline,
    /// An inline policy on a group: at most 5,120.
    GroupInline,
    /// An inline policy on a role: at most 10,240.
    RoleInline,
    /// A session policy passed to `AssumeRole`: at most 2,048 (the plaintext limit).
    Session,
    /// A role trust policy (`AssumeRolePolicyDocument`): at most 2,048; must name a `Principal`
    /// and must not name a `Resource`.
    Trust,
    /// A resource-based policy such as an S3 bucket policy: at most 20,480; must name both a
    /// `Principal` and a `Resource`.
    Resource,
}

impl PolicyKind {
    /// The maximum number of non-whitespace characters.
    pub fn max_chars(self) -> usize {
        match self {
            PolicyKind::Managed => 6144,
            PolicyKind::UserInline | PolicyKind::Session | PolicyKind::Trust => 2048,
            PolicyKind::GroupInline => 5120,
            PolicyKind::RoleInline => 10240,
            PolicyKind::Resource => 20480,
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Managed => "a managed policy",
            PolicyKind::UserInline => "a user inline policy",
            PolicyKind::GroupInline => "a group inline policy",
            PolicyKind::RoleInline => "a role inline policy",
            PolicyKind::Session => "a session policy",
            PolicyKind::Trust => "a trust policy",
            PolicyKind::Resource => "a resource-based policy",
        }
    }

    /// Whether statements must carry `Principal`/`NotPrincipal` (else they must not).
    pub fn needs_principal(self) -> bool {
        matches!(self, PolicyKind::Trust | PolicyKind::Resource)
    }

    /// Whether statements must carry `Resource`/`NotResource` (else they must not).
    pub fn needs_resource(self) -> bool {
        self != PolicyKind::Trust
    }
}

/// A 1-based line and column (in characters) in the original JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionSet {
    pub negated: bool,
    pub patterns: Vec<ActionPattern>,
}

impl ActionSet {
    pub fn matches(&self, action_lc: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(action_lc)) != self.negated
    }
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceSet {
    pub negated: bool,
    pub patterns: Vec<ArnPattern>,
}

/// One entry of `Principal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`.
    Anyone,
    /// `123456789012` or `arn:aws:iam::123456789012:root`: any principal of that account.
    Account(String),
    /// An exact AWS principal ARN.
    Arn(String),
    /// `Service`, `Federated` or `CanonicalUser` value, compared with the caller's ARN.
    Other(String),
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalSet {
    pub negated: bool,
    pub entries: Vec<PrincipalEntry>,
}

/// One statement, compiled.
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalSet>,
    pub(crate) action: ActionSet,
    pub(crate) resource: Option<ResourceSet>,
    pub(crate) conditions: Vec<ConditionClause>,
    pub(crate) start: Option<Position>,
    pub(crate) end: Option<Position>,
}

impl Statement {
    /// The `Sid`, if any.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The `Effect`.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Where the statement object starts and ends in the source text.
    pub fn span(&self) -> (Option<Position>, Option<Position>) {
        (self.start, self.end)
    }
}

/// A parsed, validated and compiled policy document.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    pub(crate) version: Version,
    pub(crate) id: Option<String>,
    pub(crate) kind: PolicyKind,
    pub(crate) statements: Vec<Statement>,
    pub(crate) index: ActionIndex,
}

impl PolicyDocument {
    /// The effective version (`2008-10-17` when the document has none).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The kind it was parsed as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The statements in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

/// FNV-1a: the maps below have short, trusted keys (service prefixes and action names from our
/// own documents), where SipHash's DoS resistance buys nothing and costs most of a lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` hashed with [`Fnv`].
pub(crate) type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Statement indexes bucketed by the actions they can match, so evaluation skips statements
/// that cannot apply to the requested action.
///
// INVARIANT: for any lowercased action `a` with service prefix `s`, the statements whose action
// set can match `a` are a subset of `global ∪ services[s].wildcard ∪ services[s].exact[a]`, and
// these three lists are pairwise disjoint for that lookup, so no statement is visited twice.
// Placement rule (see `build`): a statement with `NotAction` or any pattern whose service prefix
// has a wildcard goes to `global` only; otherwise, per service it names, it goes to that
// service's `wildcard` list if any of its patterns for that service has a wildcard, else to
// `exact` under each distinct literal name.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActionIndex {
    pub global: Vec<u32>,
    pub services: FnvMap<String, ServiceBucket>,
}

/// Statements of one service prefix.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceBucket {
    pub wildcard: Vec<u32>,
    pub exact: FnvMap<String, Vec<u32>>,
}

impl ActionIndex {
    pub fn build(statements: &[Statement]) -> Self {
        let mut index = ActionIndex::default();
        for (i, st) in statements.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { continue };
            let set = &st.action;
            if set.negated || set.patterns.iter().any(|p| p.service.is_none()) {
                index.global.push(i);
                continue;
            }
            // Group this statement's patterns by service.
            let mut per_service: Vec<(&str, bool, Vec<&str>)> = Vec::new();
            for p in &set.patterns {
                let Some(service) = p.service.as_deref() else {
                    continue;
                };
                let pos = per_service.iter().position(|(s, _, _)| *s == service);
                let entry = match pos {
                    Some(k) => per_service.get_mut(k),
                    None => {
                        per_service.push((service, false, Vec::new()));
                        per_service.last_mut()
                    }
                };
                let Some(entry) = entry else { continue };
                match p.exact.as_deref() {
                    Some(e) => {
                        if !entry.2.contains(&e) {
                            entry.2.push(e);
                        }
                    }
                    None => entry.1 = true,
                }
            }
            for (service, wild, exacts) in per_service {
                let bucket = index.services.entry(service.to_owned()).or_default();
                if wild {
                    bucket.wildcard.push(i);
                } else {
                    for e in exacts {
                        bucket.exact.entry(e.to_owned()).or_default().push(i);
                    }
                }
            }
        }
        index
    }

    /// Calls `f` once for every statement that may match `action_lc` (whose service prefix is
    /// `service_lc`); never for a statement that cannot.
    pub fn for_each_candidate(&self, action_lc: &str, service_lc: &str, mut f: impl FnMut(u32)) {
        self.global.iter().copied().for_each(&mut f);
        if let Some(bucket) = self.services.get(service_lc) {
            bucket.wildcard.iter().copied().for_each(&mut f);
            if let Some(list) = bucket.exact.get(action_lc) {
                list.iter().copied().for_each(&mut f);
            }
        }
    }
}
