//! Property tests of the combining rules over randomly generated policies and requests.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::policy::{
    Context, Decision, EvalDecision, PolicyDocument, PolicyKind, PolicySource, Request, SourceType,
    evaluate, keys,
};

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:Get*",
    "s3:*",
    "S3:getobject",
    "ec2:StopInstances",
    "ec2:*",
    "*",
    "iam:ListUsers",
    "iam:*User*",
    "s3:PutObject",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/k",
    "arn:aws:s3:::other/*",
    "arn:aws:s3:::*",
];
const REQ_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "ec2:StopInstances",
    "iam:ListUsers",
    "s3:PutObject",
];
const REQ_RESOURCES: &[&str] = &["arn:aws:s3:::b/k", "arn:aws:s3:::other/x", "*"];

fn conditions() -> Vec<Option<Value>> {
    vec![
        None,
        Some(json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
        Some(json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": false}})),
        Some(json!({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}})),
        Some(json!({"NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "1800"}})),
        Some(json!({"StringEquals": {"aws:PrincipalTag/team": ["blue", "red"]}})),
        Some(json!({"StringNotLike": {"aws:PrincipalTag/team": "b*"}})),
        Some(json!({"Null": {"aws:TokenIssueTime": "true"}})),
        Some(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})),
    ]
}

#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    not_action: bool,
    actions: Vec<usize>,
    not_resource: bool,
    resources: Vec<usize>,
    condition: usize,
}

fn stmt() -> impl Strategy<Value = Stmt> {
    (
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::collection::vec(0..ACTIONS.len(), 1..3),
        prop::bool::weighted(0.15),
        prop::collection::vec(0..RESOURCES.len(), 1..3),
        0..conditions().len(),
    )
        .prop_map(
            |(allow, not_action, actions, not_resource, resources, condition)| Stmt {
                allow,
                not_action,
                actions,
                not_resource,
                resources,
                condition,
            },
        )
}

fn stmt_json(s: &Stmt, sid: usize) -> Value {
    let mut v = json!({
        "Sid": format!("S{sid}"),
        "Effect": if s.allow { "Allow" } else { "Deny" },
    });
    let actions: Vec<&str> = s.actions.iter().map(|i| ACTIONS[*i]).collect();
    let resources: Vec<&str> = s.resources.iter().map(|i| RESOURCES[*i]).collect();
    v[if s.not_action { "NotAction" } else { "Action" }] = json!(actions);
    v[if s.not_resource {
        "NotResource"
    } else {
        "Resource"
    }] = json!(resources);
    if let Some(c) = &conditions()[s.condition] {
        v["Condition"] = c.clone();
    }
    v
}

fn doc(stmts: &[Value]) -> Arc<PolicyDocument> {
    let text = json!({"Version": "2012-10-17", "Statement": stmts}).to_string();
    Arc::new(PolicyDocument::parse(&text, PolicyKind::RoleInline).expect("generated policy parses"))
}

fn sources(policies: &[Vec<Value>]) -> Vec<PolicySource> {
    policies
        .iter()
        .enumerate()
        .map(|(i, stmts)| PolicySource {
            id: format!("p{i}"),
            kind: SourceType::UserManaged,
            document: doc(stmts),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Req {
    action: usize,
    resource: usize,
    mfa: Option<(bool, i64)>,
    team: Option<&'static str>,
    issued: bool,
    tags: Option<Vec<&'static str>>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        0..REQ_ACTIONS.len(),
        0..REQ_RESOURCES.len(),
        prop::option::of((any::<bool>(), 0i64..7200)),
        prop::option::of(prop::sample::select(vec!["blue", "red", "green"])),
        any::<bool>(),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["a", "b"]),
            0..3,
        )),
    )
        .prop_map(|(action, resource, mfa, team, issued, tags)| Req {
            action,
            resource,
            mfa,
            team,
            issued,
            tags,
        })
}

fn request(r: &Req) -> Request {
    let mut ctx = Context::new();
    if let Some((present, age)) = r.mfa {
        ctx = ctx.with_bool(keys::MULTI_FACTOR_AUTH_PRESENT, present);
        if present {
            ctx = ctx.with_number(keys::MULTI_FACTOR_AUTH_AGE, age);
        }
    }
    if let Some(t) = r.team {
        ctx = ctx.with_string("aws:PrincipalTag/team", t);
    }
    if r.issued {
        ctx = ctx.with_string(keys::TOKEN_ISSUE_TIME, "2026-01-01T00:00:00Z");
    }
    if let Some(tags) = &r.tags {
        ctx.insert_list(
            "aws:TagKeys",
            tags.iter()
                .map(|t| crate::policy::ContextValue::String((*t).to_owned()))
                .collect(),
        );
    }
    Request {
        action: REQ_ACTIONS[r.action].to_owned(),
        resource: REQ_RESOURCES[r.resource].to_owned(),
        principal_arn: "arn:aws:iam::111122223333:user/alice".to_owned(),
        context: ctx,
    }
}

/// The matched statements as an order-independent set of (policy id, Sid).
fn matched_set(d: &Decision) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = d
        .matched
        .iter()
        .map(|m| {
            (
                m.source_policy_id.clone(),
                m.sid.clone().unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn policies() -> impl Strategy<Value = Vec<Vec<Stmt>>> {
    prop::collection::vec(prop::collection::vec(stmt(), 0..6), 0..4)
}

fn to_json(p: &[Vec<Stmt>]) -> Vec<Vec<Value>> {
    let mut sid = 0;
    p.iter()
        .map(|stmts| {
            stmts
                .iter()
                .map(|s| {
                    sid += 1;
                    stmt_json(s, sid)
                })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn matching_explicit_deny_always_wins(p in policies(), r in req(), at in 0usize..4) {
        let rq = request(&r);
        let mut pj = to_json(&p);
        // A Deny that certainly applies: the request's own action and resource, no condition.
        let deny = json!({"Sid": "TheDeny", "Effect": "Deny",
            "Action": rq.action.to_uppercase(), "Resource": "*"});
        if pj.is_empty() { pj.push(Vec::new()); }
        let idx = at % pj.len();
        let pos = at % (pj[idx].len() + 1);
        pj[idx].insert(pos, deny);
        let d = evaluate(&sources(&pj), &rq);
        prop_assert_eq!(d.effect, EvalDecision::ExplicitDeny);
        prop_assert!(d.matched.iter().any(|m| m.sid.as_deref() == Some("TheDeny")));
        let srcs = sources(&pj);
        let all_denies = d.matched.iter().all(|m| {
            let src = &srcs[m.source_policy_id[1..].parse::<usize>().unwrap()];
            src.document.statements()[m.statement_index].effect() == crate::policy::Effect::Deny
        });
        prop_assert!(all_denies, "a non-Deny statement was reported for an explicit deny");
    }

    #[test]
    fn statement_and_policy_order_do_not_matter(p in policies(), r in req(), seed in any::<u64>()) {
        let rq = request(&r);
        let pj = to_json(&p);
        let before = evaluate(&sources(&pj), &rq);
        // Deterministic shuffle driven by `seed`: reverse or rotate each list.
        let mut shuffled: Vec<Vec<Value>> = pj.clone();
        for (i, stmts) in shuffled.iter_mut().enumerate() {
            if (seed >> i) & 1 == 1 { stmts.reverse(); } else if !stmts.is_empty() {
                let k = (seed as usize) % stmts.len();
                stmts.rotate_left(k);
            }
        }
        shuffled.reverse();
        // Keep policy ids stable across the reordering so matched sets are comparable.
        let ids: Vec<usize> = (0..pj.len()).rev().collect();
        let srcs: Vec<PolicySource> = shuffled.iter().zip(&ids).map(|(stmts, id)| PolicySource {
            id: format!("p{id}"), kind: SourceType::UserManaged, document: doc(stmts),
        }).collect();
        let after = evaluate(&srcs, &rq);
        prop_assert_eq!(before.effect, after.effect);
        prop_assert_eq!(matched_set(&before), matched_set(&after));
    }

    #[test]
    fn no_statements_is_implicit_deny(n in 0usize..3, r in req()) {
        let pj: Vec<Vec<Value>> = vec![Vec::new(); n];
        let d = evaluate(&sources(&pj), &request(&r));
        prop_assert_eq!(d.effect, EvalDecision::ImplicitDeny);
        prop_assert!(d.matched.is_empty());
    }

    #[test]
    fn unrelated_statement_changes_nothing(p in policies(), extra in stmt(), r in req(), at in 0usize..4) {
        let rq = request(&r);
        let pj = to_json(&p);
        let before = evaluate(&sources(&pj), &rq);
        // Same statement shape, but only for actions of a service the request never uses.
        let mut unrelated = stmt_json(&extra, 999);
        unrelated.as_object_mut().unwrap().remove("NotAction");
        unrelated["Action"] = json!(["zzz:*", "other-svc:GetObject"]);
        let mut with = pj.clone();
        if with.is_empty() { with.push(Vec::new()); }
        let idx = at % with.len();
        with[idx].push(unrelated);
        let after = evaluate(&sources(&with), &rq);
        prop_assert_eq!(before.effect, after.effect);
        prop_assert_eq!(matched_set(&before), matched_set(&after));
    }

    #[test]
    fn evaluation_error_never_allows(p in policies(), r in req()) {
        // Every Allow carries an extra clause that cannot be evaluated (a non-numeric value for a
        // numeric operator): nothing can be allowed, whatever else holds.
        let mut rq = request(&r);
        rq.context.insert("test:n", crate::policy::ContextValue::String("not-a-number".into()));
        let mut pj = to_json(&p);
        for stmts in &mut pj {
            for s in stmts.iter_mut() {
                if s["Effect"] == "Allow" {
                    let cond = s.as_object_mut().unwrap().entry("Condition").or_insert(json!({}));
                    cond["NumericLessThan"] = json!({"test:n": "5"});
                }
            }
        }
        let d = evaluate(&sources(&pj), &rq);
        prop_assert_ne!(d.effect, EvalDecision::Allowed);
    }
}

/// Fragments that steer random text towards the interesting corners of the grammar.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\"Version\"",
    "\"2012-10-17\"",
    "\"Statement\"",
    "\"Effect\"",
    "\"Allow\"",
    "\"Deny\"",
    "\"Action\"",
    "\"NotAction\"",
    "\"s3:*\"",
    "\"Resource\"",
    "\"*\"",
    "\"arn:aws:s3:::b/${aws:username}/*\"",
    "\"Condition\"",
    "\"StringLike\"",
    "\"ForAllValues:NumericLessThanIfExists\"",
    "\"Null\"",
    "\"DateLessThan\"",
    "\"2017-07-01T00:0\u{e9}Z\"",
    "\"${\"",
    "\"${a, 'b''c'}\"",
    "\"\\u00e9\"",
    "1e5",
    "-0.5",
    "true",
    "null",
    "\"Principal\"",
    "\"AWS\"",
    "\"111122223333\"",
    " ",
    "\n",
    "\u{e9}",
    "é*?",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in ".{0,200}") {
        for kind in [PolicyKind::Managed, PolicyKind::Trust] {
            let _ = PolicyDocument::parse(&s, kind);
        }
    }

    #[test]
    fn parser_never_panics_on_policy_like_text(parts in prop::collection::vec(prop::sample::select(PIECES), 0..60)) {
        let text: String = parts.concat();
        for kind in [PolicyKind::RoleInline, PolicyKind::Trust, PolicyKind::Resource] {
            if let Ok(doc) = PolicyDocument::parse(&text, kind) {
                // Whatever parses must also evaluate without panicking.
                let src = PolicySource { id: "p".into(), kind: SourceType::Role, document: Arc::new(doc) };
                let rq = request(&Req { action: 0, resource: 0, mfa: None, team: None, issued: false, tags: None });
                let _ = evaluate(&[src], &rq);
            }
        }
    }

    #[test]
    fn context_entries_never_panic(name in ".{0,20}", ty in prop::sample::select(vec![
        "string", "stringList", "numeric", "numericList", "boolean", "booleanList", "ip",
        "ipList", "date", "dateList", "binary", "binaryList", "other",
    ]), values in prop::collection::vec(".{0,30}", 0..3)) {
        let entry = crate::policy::ContextEntry {
            context_key_name: name,
            context_key_values: values,
            context_key_type: ty.to_owned(),
        };
        let _ = Context::from_entries(&[entry]);
    }
}
