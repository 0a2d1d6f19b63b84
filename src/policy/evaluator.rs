//! Evaluation: combines the statements of a set of policies into one decision, following
//! `UG:reference_policies_evaluation-logic.md`:
//!
//! 1. by default a request is implicitly denied;
//! 2. any applicable `Deny` statement in any policy (identity or session) gives an explicit deny;
//! 3. otherwise an applicable `Allow` in an identity policy allows, unless session policies are
//!    present and none of them allows too (a session policy only narrows: the result is the
//!    intersection, `UG:access_policies.md#policies_session`);
//! 4. trust policies ([`evaluate_trust`]) must explicitly allow the calling principal.
//!
//! A statement applies when its action set, resource set (identity policies) or principal set
//! (trust policies), and every condition clause hold.
//!
//! **Evaluation errors.** A comparison that cannot be evaluated (a context value that is not of
//! the operator's type, a policy variable that cannot be resolved) makes the statement
//! *undecidable*. AWS treats a condition it cannot evaluate as not matching. We take the less
//! permissive of the two possible outcomes instead: an undecidable `Allow` does not allow, and an
//! undecidable `Deny` denies. So an error can never widen access, and the statement is reported in
//! [`Decision::undecidable`] so the caller can log it. (Context values built by the broker are
//! typed, so this only happens with caller-supplied `ContextEntry` values or unresolvable
//! variables.) A definite `false` elsewhere in the statement still wins: `X AND error` with `X`
//! false is false.

use crate::ids::Arn;
use std::borrow::Cow;
use std::sync::Arc;

use super::context::{Context, Tri};
use super::document::{
    Effect, PolicyDocument, Position, PrincipalEntry, PrincipalSet, ResourceSet, Statement,
};

/// Where a policy came from (AWS's `PolicySourceType`, plus `Trust`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceType {
    /// Inline policy of the user.
    User,
    /// Inline policy of one of the user's groups.
    Group,
    /// Inline policy of the role.
    Role,
    /// Customer managed policy attached to the principal or its groups.
    UserManaged,
    /// AWS managed policy.
    AwsManaged,
    /// Session policy passed to `AssumeRole`; intersects with the identity policies.
    Session,
    /// Role trust policy (only produced by [`evaluate_trust`]).
    Trust,
    /// Resource-based policy (see [`evaluate_resource_policy`]).
    Resource,
}

/// One policy taking part in an evaluation.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// Policy ARN for managed policies, inline policy name for inline ones.
    pub id: String,
    /// Where it is attached.
    pub kind: SourceType,
    /// The parsed document.
    pub document: Arc<PolicyDocument>,
}

/// What is being asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// `service:Action`, any case.
    pub action: String,
    /// The resource ARN, or `*` for actions without resource-level permissions.
    pub resource: String,
    /// The caller's ARN (informational; policies see the caller through context keys such as
    /// `aws:PrincipalArn`, which the broker sets).
    pub principal_arn: String,
    /// Condition keys.
    pub context: Context,
}

/// The calling principal as a trust policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// User, role, assumed-role or root ARN (or a service/federated principal name).
    pub arn: String,
    /// The 12-digit account id of the principal.
    pub account: String,
}

/// The outcome, as in `EvalDecision` of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvalDecision {
    /// An applicable `Allow` (in every required policy set) and no applicable `Deny`.
    Allowed,
    /// An applicable `Deny`.
    ExplicitDeny,
    /// Nothing allowed it.
    ImplicitDeny,
}

/// A statement that decided the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatement {
    /// [`PolicySource::id`] (or [`TRUST_POLICY_ID`]).
    pub source_policy_id: String,
    /// [`PolicySource::kind`].
    pub source_type: SourceType,
    /// The statement's `Sid`.
    pub sid: Option<String>,
    /// 0-based index in the document's `Statement` list.
    pub statement_index: usize,
    /// Where the statement object starts in the source text.
    pub start: Option<Position>,
    /// Where it ends (the closing brace).
    pub end: Option<Position>,
}

/// The decision and the statements behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The outcome.
    pub effect: EvalDecision,
    /// For `Allowed`: every allowing statement; for `ExplicitDeny`: every denying one; empty for
    /// `ImplicitDeny`. Ordered by source, then statement index.
    pub matched: Vec<MatchedStatement>,
    /// Statements that could not be evaluated (see the module documentation).
    pub undecidable: Vec<MatchedStatement>,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.effect == EvalDecision::Allowed
    }

    /// The `Sid`s of the matched statements (`""` for statements without one).
    pub fn matched_sids(&self) -> Vec<&str> {
        self.matched
            .iter()
            .map(|m| m.sid.as_deref().unwrap_or(""))
            .collect()
    }
}

/// The `source_policy_id` reported for trust-policy statements.
pub const TRUST_POLICY_ID: &str = "AssumeRolePolicyDocument";

/// (source index, statement index)
type Hit = (u32, u32);

#[derive(Default)]
struct Scan {
    denies: Vec<Hit>,
    identity_allows: Vec<Hit>,
    session_allows: Vec<Hit>,
    undecidable: Vec<Hit>,
}

/// What the statements are matched against.
enum Target<'a> {
    /// Identity and session policies: statements must have a resource and no principal.
    Resource(&'a str),
    /// Trust policies: statements must have a principal and no resource.
    Principal(&'a PrincipalInfo),
    /// Resource-based policies: statements must have both.
    Both(&'a PrincipalInfo, &'a str),
}

/// Evaluates a request against identity policies and, if any source has
/// [`SourceType::Session`], session policies (intersection).
pub fn evaluate(sources: &[PolicySource], request: &Request) -> Decision {
    let action_lc = lowercase(&request.action);
    let service_lc = service_of(&action_lc);
    let mut scan = Scan::default();
    let mut has_session = false;
    for (si, source) in sources.iter().enumerate() {
        let Ok(si) = u32::try_from(si) else { break };
        let session = source.kind == SourceType::Session;
        has_session |= session;
        scan_document(
            &source.document,
            si,
            session,
            &action_lc,
            service_lc,
            &Target::Resource(&request.resource),
            &request.context,
            &mut scan,
        );
    }
    let describe = |hits: Vec<Hit>| {
        describe(hits, |si| {
            sources
                .get(si as usize)
                .map(|s| (s.id.as_str(), s.kind, s.document.as_ref()))
        })
    };
    // INVARIANT: the three outcomes are tested in this order; an explicit deny from any policy
    // overrides every allow, and with session policies present both sets must allow.
    let effect = if !scan.denies.is_empty() {
        EvalDecision::ExplicitDeny
    } else if !scan.identity_allows.is_empty() && (!has_session || !scan.session_allows.is_empty())
    {
        EvalDecision::Allowed
    } else {
        EvalDecision::ImplicitDeny
    };
    let matched = match effect {
        EvalDecision::ExplicitDeny => describe(std::mem::take(&mut scan.denies)),
        EvalDecision::Allowed => {
            let mut all = std::mem::take(&mut scan.identity_allows);
            all.append(&mut scan.session_allows);
            describe(all)
        }
        EvalDecision::ImplicitDeny => Vec::new(),
    };
    Decision {
        effect,
        matched,
        undecidable: describe(scan.undecidable),
    }
}

/// Evaluates a role trust policy for `principal` calling `action` (normally `sts:AssumeRole`).
/// The trust policy must explicitly allow; an explicit deny wins.
pub fn evaluate_trust(
    doc: &PolicyDocument,
    principal: &PrincipalInfo,
    action: &str,
    context: &Context,
) -> Decision {
    single_document(
        doc,
        TRUST_POLICY_ID,
        SourceType::Trust,
        action,
        &Target::Principal(principal),
        context,
    )
}

/// Evaluates one resource-based policy (e.g. a bucket policy) on its own: whether it allows,
/// explicitly denies, or says nothing about `principal` performing `request`. Combining it with
/// identity policies (same-account union, cross-account intersection) is the caller's job.
pub fn evaluate_resource_policy(
    source: &PolicySource,
    principal: &PrincipalInfo,
    request: &Request,
) -> Decision {
    single_document(
        &source.document,
        &source.id,
        source.kind,
        &request.action,
        &Target::Both(principal, &request.resource),
        &request.context,
    )
}

fn single_document(
    doc: &PolicyDocument,
    id: &str,
    kind: SourceType,
    action: &str,
    target: &Target<'_>,
    context: &Context,
) -> Decision {
    let action_lc = lowercase(action);
    let mut scan = Scan::default();
    let service_lc = service_of(&action_lc);
    scan_document(
        doc, 0, false, &action_lc, service_lc, target, context, &mut scan,
    );
    let describe = |hits: Vec<Hit>| describe(hits, |_| Some((id, kind, doc)));
    let effect = if !scan.denies.is_empty() {
        EvalDecision::ExplicitDeny
    } else if !scan.identity_allows.is_empty() {
        EvalDecision::Allowed
    } else {
        EvalDecision::ImplicitDeny
    };
    let matched = match effect {
        EvalDecision::ExplicitDeny => describe(std::mem::take(&mut scan.denies)),
        EvalDecision::Allowed => describe(std::mem::take(&mut scan.identity_allows)),
        EvalDecision::ImplicitDeny => Vec::new(),
    };
    Decision {
        effect,
        matched,
        undecidable: describe(scan.undecidable),
    }
}

/// The service prefix of a lowercased action name (`""` when there is no colon).
fn service_of(action_lc: &str) -> &str {
    action_lc.split_once(':').map_or("", |(s, _)| s)
}

fn lowercase(s: &str) -> Cow<'_, str> {
    let needs = if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(char::is_uppercase)
    };
    if needs {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "internal hot-path helper; bundling the borrowed inputs into a struct adds nothing"
)]
fn scan_document(
    doc: &PolicyDocument,
    source: u32,
    session: bool,
    action_lc: &str,
    service_lc: &str,
    target: &Target<'_>,
    ctx: &Context,
    scan: &mut Scan,
) {
    doc.index.for_each_candidate(action_lc, service_lc, |i| {
        let Some(st) = doc.statements.get(i as usize) else {
            return;
        };
        let outcome = statement_applies(st, action_lc, target, ctx);
        let hit = (source, i);
        match (outcome, st.effect) {
            (Tri::False, _) => {}
            (Tri::True, Effect::Allow) if session => scan.session_allows.push(hit),
            (Tri::True, Effect::Allow) => scan.identity_allows.push(hit),
            (Tri::True, Effect::Deny) => scan.denies.push(hit),
            // SECURITY: an undecidable Allow does not allow; an undecidable Deny denies.
            (Tri::Error, Effect::Allow) => scan.undecidable.push(hit),
            (Tri::Error, Effect::Deny) => {
                scan.undecidable.push(hit);
                scan.denies.push(hit);
            }
        }
    });
}

fn statement_applies(st: &Statement, action_lc: &str, target: &Target<'_>, ctx: &Context) -> Tri {
    if !st.action.matches(action_lc) {
        return Tri::False;
    }
    let mut result = match (target, &st.principal, &st.resource) {
        (Target::Resource(r), None, Some(rs)) => resource_matches(rs, r, ctx),
        (Target::Principal(p), Some(ps), None) => Tri::from(principal_matches(ps, p)),
        (Target::Both(p, r), Some(ps), Some(rs)) => {
            if principal_matches(ps, p) {
                resource_matches(rs, r, ctx)
            } else {
                Tri::False
            }
        }
        // A statement of the other policy kind never applies (a trust document passed as an
        // identity policy must not grant everything for lack of a `Resource`).
        _ => return Tri::False,
    };
    for clause in &st.conditions {
        if result == Tri::False {
            break;
        }
        result = result.and(clause.eval(ctx));
    }
    result
}

fn resource_matches(set: &ResourceSet, resource: &str, ctx: &Context) -> Tri {
    let mut any = Tri::False;
    for p in &set.patterns {
        any = any.or(p.is_match(resource, ctx));
        if any == Tri::True {
            break;
        }
    }
    if set.negated { any.not() } else { any }
}

fn principal_matches(set: &PrincipalSet, p: &PrincipalInfo) -> bool {
    let any = set.entries.iter().any(|e| match e {
        PrincipalEntry::Anyone => true,
        PrincipalEntry::Account(a) => *a == p.account,
        PrincipalEntry::Arn(arn) => *arn == p.arn || is_session_of_role(&p.arn, arn),
        PrincipalEntry::Other(name) => *name == p.arn,
    });
    any != set.negated
}

/// Whether `session` (`arn:P:sts::A:assumed-role/NAME/SESSION`) is a session of `role`
/// (`arn:P:iam::A:role/PATH/NAME`): naming a role as a principal covers its sessions
/// (`UG:reference_policies_elements_principal.md`, "IAM role principals"). Role paths do not
/// appear in session ARNs, so the role is identified by partition, account and name.
fn is_session_of_role(session: &str, role: &str) -> bool {
    let (Ok(r), Ok(s)) = (Arn::parse("role", role), Arn::parse("session", session)) else {
        return false;
    };
    if r.service() != "iam" || s.service() != "sts" {
        return false;
    }
    let Some((_path, role_name)) = r.typed_resource("role") else {
        return false;
    };
    let Some((session_role, _session_name)) = s
        .resource()
        .strip_prefix("assumed-role/")
        .and_then(|x| x.split_once('/'))
    else {
        return false;
    };
    r.partition() == s.partition()
        && r.account() == s.account()
        && !role_name.is_empty()
        && role_name == session_role
}

fn describe<'a>(
    mut hits: Vec<Hit>,
    source: impl Fn(u32) -> Option<(&'a str, SourceType, &'a PolicyDocument)>,
) -> Vec<MatchedStatement> {
    hits.sort_unstable();
    hits.dedup();
    hits.into_iter()
        .filter_map(|(si, i)| {
            let (id, kind, doc) = source(si)?;
            let st = doc.statements.get(i as usize)?;
            Some(MatchedStatement {
                source_policy_id: id.to_owned(),
                source_type: kind,
                sid: st.sid.clone(),
                statement_index: i as usize,
                start: st.start,
                end: st.end,
            })
        })
        .collect()
}
