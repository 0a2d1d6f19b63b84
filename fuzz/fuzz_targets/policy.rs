//! The policy engine: parser, context builder and the three evaluators.
//!
//! Input: a policy document, a NUL byte, then the request, one item a line: the action, the
//! resource, the caller's ARN (empty for a default user), then any number of context entries
//! `key|type|value|value...` (the `ContextEntry` of `SimulateCustomPolicy`).
//!
//! Invariants: parsing never panics, with any policy kind; a document that parses evaluates
//! without panicking; evaluation is deterministic; a decision names exactly the statements
//! behind it (allowing statements for `Allowed`, denying ones for `ExplicitDeny`, none for
//! `ImplicitDeny`), each by its real index and `Sid`; an added deny-everything policy always
//! wins; a session policy only narrows what the identity policies allow.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sts_broker::policy::{
    Context, ContextEntry, Decision, Effect, EvalDecision, MatchedStatement, PolicyDocument,
    PolicyKind, PolicySource, PrincipalInfo, Request, SourceType, TRUST_POLICY_ID, evaluate,
    evaluate_resource_policy, evaluate_trust,
};

const DENY_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
const DEFAULT_CALLER: &str = "arn:aws:iam::111122223333:user/alice";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (document, request) = text.split_once('\0').unwrap_or((text, ""));
    let mut lines = request.lines();
    let action = lines.next().unwrap_or("s3:GetObject").to_owned();
    let resource = lines.next().unwrap_or("*").to_owned();
    let caller = match lines.next() {
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => DEFAULT_CALLER.to_owned(),
    };
    let entries: Vec<ContextEntry> = lines
        .map(|l| {
            let mut f = l.split('|');
            ContextEntry {
                context_key_name: f.next().unwrap_or_default().to_owned(),
                context_key_type: f.next().unwrap_or_default().to_owned(),
                context_key_values: f.map(str::to_owned).collect(),
            }
        })
        .collect();
    let context = Context::from_entries(&entries).unwrap_or_default();
    let request = Request {
        action,
        resource,
        principal_arn: caller.clone(),
        context,
    };
    let account = caller.split(':').nth(4).unwrap_or_default().to_owned();
    let principal = PrincipalInfo {
        arn: caller,
        account,
    };

    for kind in [
        PolicyKind::Managed,
        PolicyKind::UserInline,
        PolicyKind::Session,
        PolicyKind::Trust,
        PolicyKind::Resource,
    ] {
        let Ok(doc) = PolicyDocument::parse(document, kind) else {
            continue;
        };
        let doc = Arc::new(doc);
        match kind {
            PolicyKind::Trust => {
                let d = evaluate_trust(&doc, &principal, &request.action, &request.context);
                check_decision(&d, &[(TRUST_POLICY_ID, &doc)]);
                let again = evaluate_trust(&doc, &principal, &request.action, &request.context);
                assert_eq!(d, again, "evaluation is deterministic");
            }
            PolicyKind::Resource => {
                let source = source("resource", SourceType::Resource, &doc);
                let d = evaluate_resource_policy(&source, &principal, &request);
                check_decision(&d, &[("resource", &doc)]);
            }
            _ => check_identity(&doc, &request),
        }
    }
});

fn source(id: &str, kind: SourceType, doc: &Arc<PolicyDocument>) -> PolicySource {
    PolicySource {
        id: id.to_owned(),
        kind,
        document: Arc::clone(doc),
    }
}

fn check_identity(doc: &Arc<PolicyDocument>, request: &Request) {
    let alone = [source("p", SourceType::User, doc)];
    let d = evaluate(&alone, request);
    check_decision(&d, &[("p", doc)]);
    assert_eq!(d, evaluate(&alone, request), "evaluation is deterministic");

    let Ok(deny_all) = PolicyDocument::parse(DENY_ALL, PolicyKind::Managed) else {
        panic!("the deny-everything policy parses");
    };
    let deny_all = Arc::new(deny_all);
    let with_deny = [
        source("p", SourceType::User, doc),
        source("deny", SourceType::UserManaged, &deny_all),
    ];
    let d2 = evaluate(&with_deny, request);
    assert_eq!(
        d2.effect,
        EvalDecision::ExplicitDeny,
        "an explicit deny wins"
    );
    check_decision(&d2, &[("p", doc), ("deny", &deny_all)]);

    let with_session = [
        source("p", SourceType::User, doc),
        source("s", SourceType::Session, doc),
    ];
    let d3 = evaluate(&with_session, request);
    check_decision(&d3, &[("p", doc), ("s", doc)]);
    if d3.is_allowed() {
        assert!(d.is_allowed(), "a session policy only narrows");
    }
    if d.effect == EvalDecision::ExplicitDeny {
        assert_eq!(d3.effect, EvalDecision::ExplicitDeny, "a deny stays a deny");
    }
}

/// Every statement a decision names exists in the source it names, with that `Sid` and span,
/// and (for the matched ones) with the decision's effect.
fn check_decision(d: &Decision, sources: &[(&str, &Arc<PolicyDocument>)]) {
    let want = match d.effect {
        EvalDecision::Allowed => Some(Effect::Allow),
        EvalDecision::ExplicitDeny => Some(Effect::Deny),
        EvalDecision::ImplicitDeny => None,
    };
    assert_eq!(
        d.matched.is_empty(),
        want.is_none(),
        "statements are named iff the decision is not an implicit deny: {d:?}"
    );
    let statement = |m: &MatchedStatement| {
        let (_, doc) = sources
            .iter()
            .find(|(id, _)| *id == m.source_policy_id)
            .unwrap_or_else(|| panic!("a named source exists: {m:?}"));
        let s = doc
            .statements()
            .get(m.statement_index)
            .unwrap_or_else(|| panic!("a named statement exists: {m:?}"));
        assert_eq!(s.sid(), m.sid.as_deref(), "the Sid is the statement's own");
        assert_eq!(
            s.span(),
            (m.start, m.end),
            "the span is the statement's own"
        );
        s.effect()
    };
    for m in &d.undecidable {
        statement(m);
    }
    for m in &d.matched {
        assert_eq!(Some(statement(m)), want, "{m:?} has the decision's effect");
    }
}
