//! The `Condition` element: operator names, compiled policy values, and evaluation of one
//! `operator: { key: values }` clause against the request context.
//!
//! Rules implemented (`UG:reference_policies_elements_condition_operators.md`,
//! `UG:reference_policies_multi-value-conditions.md`, `UG:reference_policies_elements_condition.md`):
//! - values listed for one key are OR'd; keys of one operator and separate operators are AND'd
//!   (the parser flattens both into one list of clauses, all of which must hold);
//! - negated operators (`StringNotEquals`, `NotIpAddress`, ...) hold when the value matches none
//!   of the listed values;
//! - a key absent from the context makes a clause false, except: negated operators → true,
//!   `...IfExists` → true, `Null` → compares presence, `ForAllValues:` → true;
//!   `ForAnyValue:` → false (true with `IfExists`). A key present with an empty list of values
//!   counts as absent ("a null data set");
//! - `ForAllValues:` holds when every context value satisfies the operator against some policy
//!   value; `ForAnyValue:` when at least one does; with no qualifier a multi-valued key behaves as
//!   `ForAnyValue:` for positive operators and as "no context value matches any policy value" for
//!   negated ones;
//! - string operators are case-sensitive except `...IgnoreCase`; `Arn*` operators match each of
//!   the six ARN parts separately and are case-sensitive; `ArnEquals` behaves as `ArnLike`;
//! - a context value that cannot be read as the operator's type (e.g. `abc` for `NumericLessThan`)
//!   or an unresolvable policy variable makes the comparison an evaluation error ([`Tri::Error`]).

use std::net::IpAddr;
use std::str::FromStr;

use base64::Engine as _;
use ipnet::IpNet;

use super::context::{Context, ContextValue, Number, Tri, parse_bool, parse_date};
use super::error::PolicyError;
use super::json::{Json, Node};
use super::pattern::{ArnPattern, Glob, Template};

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

/// Ordering comparisons of the numeric and date families (`NotEquals` is negated `Eq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Cmp::Eq => ord == Equal,
            Cmp::Lt => ord == Less,
            Cmp::Le => ord != Greater,
            Cmp::Gt => ord == Greater,
            Cmp::Ge => ord != Less,
        }
    }
}

/// Operator families, without negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// A parsed operator name such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operator {
    pub family: Family,
    pub negated: bool,
    pub if_exists: bool,
    pub qualifier: Option<SetQualifier>,
}

/// The base operator names, case-sensitive as in the grammar; the `Numeric…` and `Date…` names
/// are a family's prefix and a [`comparison`].
const OPERATORS: &[(&str, Family, bool)] = &[
    ("StringEquals", Family::StringEquals, false),
    ("StringNotEquals", Family::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Family::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Family::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Family::StringLike, false),
    ("StringNotLike", Family::StringLike, true),
    ("Bool", Family::Bool, false),
    ("BinaryEquals", Family::Binary, false),
    ("IpAddress", Family::Ip, false),
    ("NotIpAddress", Family::Ip, true),
    ("ArnEquals", Family::Arn, false),
    ("ArnLike", Family::Arn, false),
    ("ArnNotEquals", Family::Arn, true),
    ("ArnNotLike", Family::Arn, true),
    ("Null", Family::Null, false),
];

/// The comparison a `Numeric…` or `Date…` operator name ends in, and whether it is negated.
fn comparison(suffix: &str) -> Option<(Cmp, bool)> {
    Some(match suffix {
        "Equals" => (Cmp::Eq, false),
        "NotEquals" => (Cmp::Eq, true),
        "LessThan" => (Cmp::Lt, false),
        "LessThanEquals" => (Cmp::Le, false),
        "GreaterThan" => (Cmp::Gt, false),
        "GreaterThanEquals" => (Cmp::Ge, false),
        _ => return None,
    })
}

/// The family of a base operator name (no set qualifier, no `IfExists`), and whether it is
/// negated.
fn base_operator(base: &str) -> Option<(Family, bool)> {
    if let Some(&(_, family, negated)) = OPERATORS.iter().find(|(n, _, _)| *n == base) {
        return Some((family, negated));
    }
    if let Some((cmp, negated)) = base.strip_prefix("Numeric").and_then(comparison) {
        return Some((Family::Numeric(cmp), negated));
    }
    let (cmp, negated) = base.strip_prefix("Date").and_then(comparison)?;
    Some((Family::Date(cmp), negated))
}

impl Operator {
    /// Parses an operator name; the error text is the reason only.
    pub fn parse(name: &str) -> Result<Operator, String> {
        let (qualifier, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let Some((family, negated)) = base_operator(base) else {
            return Err(format!("unknown condition operator `{name}`"));
        };
        if family == Family::Null && (if_exists || qualifier.is_some()) {
            return Err(format!(
                "unknown condition operator `{name}`: `Null` takes neither `IfExists` nor a set qualifier"
            ));
        }
        Ok(Operator {
            family,
            negated,
            if_exists,
            qualifier,
        })
    }
}

/// `Bool` policy values: a literal, or a template under 2012-10-17 (`"${aws:SecureTransport}"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BoolValue {
    Lit(bool),
    Var(Template),
}

/// The compiled values of one clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PolicyValues {
    Str(Vec<Template>),
    Like(Vec<Glob>),
    Num(Vec<Number>),
    Date(Vec<i128>),
    Bool(Vec<BoolValue>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpNet>),
    Arn(Vec<ArnPattern>),
    Null(Vec<bool>),
}

/// One `operator: { key: values }` pair.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConditionClause {
    pub op: Operator,
    /// Lowercased key name.
    pub key_lc: String,
    pub values: PolicyValues,
}

/// Compiles the `Condition` object. `loc` is the statement's location for messages; `vars`
/// whether policy variables are substituted (Version 2012-10-17).
pub(crate) fn compile(
    node: &Node,
    vars: bool,
    loc: &str,
) -> Result<Vec<ConditionClause>, PolicyError> {
    let Json::Object(ops) = &node.value else {
        return Err(PolicyError::malformed(
            loc,
            format!(
                "`Condition` must be an object, got {}",
                node.value.type_name()
            ),
        ));
    };
    let mut clauses = Vec::new();
    for (op_name, body) in ops {
        let here = format!("{loc}: condition `{op_name}`");
        let op = Operator::parse(op_name).map_err(|r| PolicyError::malformed(loc, r))?;
        let Json::Object(keys) = &body.value else {
            return Err(PolicyError::malformed(
                &here,
                format!(
                    "must map condition keys to values, got {}",
                    body.value.type_name()
                ),
            ));
        };
        if keys.is_empty() {
            return Err(PolicyError::malformed(&here, "has no condition keys"));
        }
        let mut seen: Vec<String> = Vec::new();
        for (key, values) in keys {
            let key_lc = key.trim().to_lowercase();
            if key_lc.is_empty() {
                return Err(PolicyError::malformed(&here, "condition key name is empty"));
            }
            if seen.contains(&key_lc) {
                return Err(PolicyError::malformed(
                    &here,
                    format!("duplicate condition key `{key}` (key names are case-insensitive)"),
                ));
            }
            seen.push(key_lc.clone());
            let texts = value_texts(values)
                .map_err(|r| PolicyError::malformed(&here, format!("key `{key}`: {r}")))?;
            let compiled = compile_values(op.family, &texts, vars)
                .map_err(|r| PolicyError::malformed(&here, format!("key `{key}`: {r}")))?;
            clauses.push(ConditionClause {
                op: op.clone(),
                key_lc,
                values: compiled,
            });
        }
    }
    Ok(clauses)
}

/// A condition value as text: strings as-is, numbers in their source form, booleans as
/// `true`/`false`; a non-empty array of those.
fn value_texts(node: &Node) -> Result<Vec<String>, String> {
    fn scalar(n: &Node) -> Result<String, String> {
        match &n.value {
            Json::Str(s) => Ok(s.clone()),
            Json::Number(s) => Ok(s.clone()),
            Json::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "values must be strings, numbers or booleans, got {}",
                other.type_name()
            )),
        }
    }
    match &node.value {
        Json::Array(items) if items.is_empty() => Err("value list is empty".to_owned()),
        Json::Array(items) => items.iter().map(scalar).collect(),
        _ => scalar(node).map(|s| vec![s]),
    }
}

/// `f` of every text, or the first error.
fn each_of<T, E>(texts: &[String], f: impl Fn(&str) -> Result<T, E>) -> Result<Vec<T>, E> {
    texts.iter().map(|t| f(t)).collect()
}

fn compile_values(family: Family, texts: &[String], vars: bool) -> Result<PolicyValues, String> {
    Ok(match family {
        Family::StringEquals | Family::StringEqualsIgnoreCase => {
            PolicyValues::Str(each_of(texts, |t| Template::compile(t, vars))?)
        }
        Family::StringLike => {
            PolicyValues::Like(each_of(texts, |t| Glob::compile_escaped(t, vars, false))?)
        }
        Family::Numeric(_) => PolicyValues::Num(each_of(texts, |t| {
            Number::parse(t).ok_or_else(|| format!("`{t}` is not a number"))
        })?),
        Family::Date(_) => PolicyValues::Date(each_of(texts, |t| {
            parse_date(t).ok_or_else(|| format!("`{t}` is not an ISO 8601 date or epoch time"))
        })?),
        Family::Bool => PolicyValues::Bool(each_of(texts, |t| {
            if let Some(b) = parse_bool(t) {
                return Ok(BoolValue::Lit(b));
            }
            let tpl = Template::compile(t, vars)?;
            if tpl.literal().is_some() {
                Err(format!("`{t}` is not `true` or `false`"))
            } else {
                Ok(BoolValue::Var(tpl))
            }
        })?),
        Family::Binary => PolicyValues::Binary(each_of(texts, |t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .map_err(|_| format!("`{t}` is not base-64"))
        })?),
        Family::Ip => PolicyValues::Ip(each_of(texts, |t| {
            parse_cidr(t).ok_or_else(|| format!("`{t}` is not an IP address or CIDR block"))
        })?),
        Family::Arn => PolicyValues::Arn(each_of(texts, |t| ArnPattern::compile(t, vars, false))?),
        Family::Null => PolicyValues::Null(each_of(texts, |t| {
            parse_bool(t).ok_or_else(|| format!("`{t}` is not `true` or `false`"))
        })?),
    })
}

/// A CIDR block, or a bare address meaning `/32` (`/128` for IPv6).
fn parse_cidr(t: &str) -> Option<IpNet> {
    let t = t.trim();
    IpNet::from_str(t)
        .ok()
        .or_else(|| IpAddr::from_str(t).ok().map(IpNet::from))
}

/// `start` combined with the answer for each context value in turn, stopping at the first
/// answer `combine` cannot move away from (`False` for `and`, `True` for `or`).
fn fold_until(
    values: &[ContextValue],
    start: Tri,
    combine: fn(Tri, Tri) -> Tri,
    each: impl Fn(&ContextValue) -> Tri,
) -> Tri {
    let stop = combine(start, start.not());
    let mut acc = start;
    for v in values {
        acc = combine(acc, each(v));
        if acc == stop {
            break;
        }
    }
    acc
}

impl ConditionClause {
    /// Evaluates the clause.
    pub fn eval(&self, ctx: &Context) -> Tri {
        let present = ctx.get_lc(&self.key_lc).filter(|v| !v.is_empty());
        if let PolicyValues::Null(expect_absent) = &self.values {
            // `Null: true` holds when the key is absent (or an empty string, which AWS calls null).
            let is_null = present.is_none_or(|v| {
                v.iter()
                    .all(|x| matches!(x, ContextValue::String(s) if s.is_empty()))
            });
            return Tri::from(expect_absent.contains(&is_null));
        }
        let Some(values) = present else {
            return Tri::from(match self.op.qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => self.op.if_exists,
                None => self.op.if_exists || self.op.negated,
            });
        };
        let each = |v: &ContextValue| self.negate(self.any_policy_value(v, ctx));
        match self.op.qualifier {
            Some(SetQualifier::ForAllValues) => fold_until(values, Tri::True, Tri::and, each),
            Some(SetQualifier::ForAnyValue) => fold_until(values, Tri::False, Tri::or, each),
            None => self.negate(fold_until(values, Tri::False, Tri::or, |v| {
                self.any_policy_value(v, ctx)
            })),
        }
    }

    fn negate(&self, t: Tri) -> Tri {
        if self.op.negated { t.not() } else { t }
    }

    /// Whether context value `v` matches at least one policy value (positive form of the operator).
    fn any_policy_value(&self, v: &ContextValue, ctx: &Context) -> Tri {
        let mut acc = Tri::False;
        let mut fold = |t: Tri| {
            acc = acc.or(t);
            acc == Tri::True
        };
        match &self.values {
            PolicyValues::Str(tpls) => {
                let text = v.as_text();
                let ignore_case = self.op.family == Family::StringEqualsIgnoreCase;
                for t in tpls {
                    let r = if ignore_case {
                        match t.render(ctx) {
                            Some(p) => Tri::from(eq_ignore_case(&p, &text)),
                            None => Tri::Error,
                        }
                    } else {
                        t.equals(&text, ctx)
                    };
                    if fold(r) {
                        break;
                    }
                }
            }
            PolicyValues::Like(globs) => {
                let text = v.as_text();
                for g in globs {
                    if fold(g.is_match(&text, ctx)) {
                        break;
                    }
                }
            }
            PolicyValues::Num(nums) => {
                let (Family::Numeric(cmp), Some(n)) = (self.op.family, v.as_number()) else {
                    return Tri::Error;
                };
                acc = Tri::from(nums.iter().any(|p| cmp.holds(n.compare(p))));
            }
            PolicyValues::Date(dates) => {
                let (Family::Date(cmp), Some(d)) = (self.op.family, v.as_date()) else {
                    return Tri::Error;
                };
                acc = Tri::from(dates.iter().any(|p| cmp.holds(d.cmp(p))));
            }
            PolicyValues::Bool(bools) => {
                let Some(b) = v.as_bool() else {
                    return Tri::Error;
                };
                for p in bools {
                    let r = match p {
                        BoolValue::Lit(x) => Tri::from(*x == b),
                        BoolValue::Var(t) => match t.render(ctx).and_then(|s| parse_bool(&s)) {
                            Some(x) => Tri::from(x == b),
                            None => Tri::Error,
                        },
                    };
                    if fold(r) {
                        break;
                    }
                }
            }
            PolicyValues::Binary(blobs) => {
                let Some(bytes) = v.as_binary() else {
                    return Tri::Error;
                };
                acc = Tri::from(blobs.iter().any(|p| p.as_slice() == bytes.as_ref()));
            }
            PolicyValues::Ip(nets) => {
                let Some(ip) = v.as_ip() else {
                    return Tri::Error;
                };
                acc = Tri::from(nets.iter().any(|n| n.contains(&ip)));
            }
            PolicyValues::Arn(pats) => {
                let text = v.as_text();
                for p in pats {
                    if fold(p.is_match(&text, ctx)) {
                        break;
                    }
                }
            }
            PolicyValues::Null(_) => return Tri::Error,
        }
        acc
    }
}

/// Unicode-aware case-insensitive equality without allocating.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = Operator::parse("ForAnyValue:StringNotLikeIfExists").unwrap();
        assert_eq!(op.family, Family::StringLike);
        assert!(op.negated && op.if_exists);
        assert_eq!(op.qualifier, Some(SetQualifier::ForAnyValue));
        assert!(Operator::parse("StringEqual").is_err());
        assert!(Operator::parse("stringequals").is_err());
        assert!(Operator::parse("NullIfExists").is_err());
        assert!(Operator::parse("ForAllValues:Null").is_err());
        assert!(Operator::parse("ForSomeValues:StringEquals").is_err());
        assert_eq!(
            Operator::parse("DateLessThanEquals").unwrap().family,
            Family::Date(Cmp::Le)
        );
    }

    #[test]
    fn cidr_parsing() {
        assert!(
            parse_cidr("203.0.113.0/24")
                .unwrap()
                .contains(&"203.0.113.9".parse::<IpAddr>().unwrap())
        );
        assert!(
            parse_cidr("203.0.113.7")
                .unwrap()
                .contains(&"203.0.113.7".parse::<IpAddr>().unwrap())
        );
        assert!(
            !parse_cidr("203.0.113.7")
                .unwrap()
                .contains(&"203.0.113.8".parse::<IpAddr>().unwrap())
        );
        assert!(parse_cidr("2001:db8::/32").is_some());
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }
}
