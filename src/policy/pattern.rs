//! Compiled patterns: the `*`/`?` glob matcher, policy-variable templates, and the action and
//! resource patterns built from them.
//!
//! Everything here is compiled once at parse time. At evaluation time a pattern without policy
//! variables matches with no allocation; a pattern with variables resolves them against the
//! request context first (`UG:reference_policies_variables.md`).
//!
//! Matching rules implemented (`UG:reference_policies_elements_action.md`,
//! `UG:reference_policies_elements_resource.md`, `UG:reference_policies_elements_condition_operators.md`):
//! - `*` matches any run of characters (including `/` and, for whole-string patterns, `:`),
//!   `?` exactly one character, everything else itself;
//! - action patterns are compared in lowercase (IAM action names are case-insensitive);
//! - resource patterns and `Arn*` operators match each of the six colon-separated ARN parts
//!   separately, case-sensitively; the sixth part is everything after the fifth colon;
//! - a substituted variable value is literal text: a `*` inside `aws:username` is not a wildcard.

use std::borrow::Cow;

use super::context::{Context, Tri};
use super::error::PolicyError;

/// One element of a glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GTok {
    Char(char),
    Star,
    Quest,
    /// A policy variable, resolved at evaluation time.
    Var(VarRef),
}

/// `${key}` or `${key, 'default'}`; `key_lc` is lowercased because key names are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    pub key_lc: String,
    pub default: Option<String>,
}

/// Matches `text` against a variable-free glob (see [`Matcher`] for the cost). A pattern that
/// still contains an unresolved variable matches nothing.
pub(crate) fn glob_match(pattern: &[GTok], text: &str) -> bool {
    Matcher::compile(pattern).is_match(text)
}

/// One element of a `*`-free segment: a character, or `?` (any one character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Char(char),
    Any,
}

/// A variable-free glob compiled for matching in time linear in the text.
///
/// The pattern is split at its `*`s into segments, each matching a fixed number of characters:
/// `first *s1* ... *sn* last`. A text matches when `first` is its prefix, `last` its suffix, and
/// `s1..sn` occur in order, without overlap, in between. Taking each middle segment at its
/// leftmost occurrence after the previous one is optimal (a segment has a fixed length, so the
/// leftmost occurrence also ends first and leaves the most text for the rest), so there is no
/// backtracking: every text character is looked at a bounded number of times.
///
/// Cost: O(|pattern| + |text|) when every segment containing `?` has at most 64 elements.
/// Segments without `?` are found with `str::find`, which is linear (Two-Way); a segment with
/// `?` is found bit-parallel (Shift-And: one mask lookup, a binary search over the segment's
/// distinct characters, per text character), in O(|text| × ⌈len / 64⌉) when it is longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher {
    first: Segment,
    /// `None` when the pattern has no `*` (then `first` must be the whole text).
    starred: Option<Starred>,
    /// The pattern contains an unresolved variable, which matches nothing.
    never: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Starred {
    /// Non-empty segments between the first and last `*`, in order.
    middle: Vec<Segment>,
    last: Segment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    units: Vec<Unit>,
    search: Search,
}

/// How a middle segment is found in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Search {
    /// No `?`: plain substring search.
    Literal(String),
    /// Contains `?`: bit-parallel search.
    ShiftAnd(ShiftAnd),
}

/// Shift-And tables for one segment: bit `i` of a character's mask is set when element `i`
/// accepts that character. Masks are `words` u64s long, stored one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShiftAnd {
    len: usize,
    words: usize,
    /// Characters named in the segment, sorted, with their masks at the same index.
    chars: Vec<char>,
    masks: Vec<u64>,
    /// The mask of any other character: the `?` positions only.
    other: Vec<u64>,
}

impl Matcher {
    pub(crate) fn compile(pattern: &[GTok]) -> Self {
        let never = pattern.iter().any(|t| matches!(t, GTok::Var(_)));
        let mut segments = pattern.split(|t| *t == GTok::Star).map(Segment::compile);
        let first = segments.next().unwrap_or_else(Segment::empty);
        let mut rest: Vec<Segment> = segments.collect();
        let starred = rest.pop().map(|last| Starred {
            middle: rest.into_iter().filter(|s| !s.units.is_empty()).collect(),
            last,
        });
        Matcher {
            first,
            starred,
            never,
        }
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        if self.never {
            return false;
        }
        let Some(mut pos) = self.first.match_prefix(text) else {
            return false;
        };
        let Some(starred) = &self.starred else {
            return pos == text.len();
        };
        for segment in &starred.middle {
            match text.get(pos..).and_then(|rest| segment.find(rest)) {
                Some(end) => pos += end,
                None => return false,
            }
        }
        text.get(pos..)
            .is_some_and(|rest| starred.last.matches_suffix(rest))
    }
}

impl Unit {
    fn accepts(self, c: char) -> bool {
        match self {
            Unit::Char(u) => u == c,
            Unit::Any => true,
        }
    }
}

impl Segment {
    fn empty() -> Self {
        Segment {
            units: Vec::new(),
            search: Search::Literal(String::new()),
        }
    }

    fn compile(toks: &[GTok]) -> Self {
        let units: Vec<Unit> = toks
            .iter()
            .map(|t| match t {
                GTok::Char(c) => Unit::Char(*c),
                // Variables are handled by `Matcher::never`; `*` never reaches a segment.
                GTok::Quest | GTok::Star | GTok::Var(_) => Unit::Any,
            })
            .collect();
        let literal: Option<String> = units
            .iter()
            .map(|u| match u {
                Unit::Char(c) => Some(*c),
                Unit::Any => None,
            })
            .collect();
        let search = match literal {
            Some(s) => Search::Literal(s),
            None => Search::ShiftAnd(ShiftAnd::compile(&units)),
        };
        Segment { units, search }
    }

    /// Byte length of the prefix of `text` this segment matches, if it matches there.
    fn match_prefix(&self, text: &str) -> Option<usize> {
        let mut chars = text.char_indices();
        for u in &self.units {
            let (_, c) = chars.next()?;
            if !u.accepts(c) {
                return None;
            }
        }
        Some(chars.offset())
    }

    /// Whether this segment matches the end of `text`.
    fn matches_suffix(&self, text: &str) -> bool {
        let mut chars = text.chars().rev();
        self.units
            .iter()
            .rev()
            .all(|u| chars.next().is_some_and(|c| u.accepts(c)))
    }

    /// Byte offset just past the leftmost occurrence of this segment in `text`.
    fn find(&self, text: &str) -> Option<usize> {
        match &self.search {
            Search::Literal(s) => text.find(s.as_str()).map(|i| i + s.len()),
            Search::ShiftAnd(sa) => sa.find(text),
        }
    }
}

impl ShiftAnd {
    fn compile(units: &[Unit]) -> Self {
        let len = units.len();
        let words = len.div_ceil(64).max(1);
        let mut chars: Vec<char> = units
            .iter()
            .filter_map(|u| match u {
                Unit::Char(c) => Some(*c),
                Unit::Any => None,
            })
            .collect();
        chars.sort_unstable();
        chars.dedup();
        let mut other = vec![0u64; words];
        let mut masks = vec![0u64; words * chars.len()];
        for (i, u) in units.iter().enumerate() {
            let (w, bit) = (i / 64, 1u64 << (i % 64));
            match u {
                Unit::Any => {
                    if let Some(x) = other.get_mut(w) {
                        *x |= bit;
                    }
                }
                Unit::Char(c) => {
                    if let Ok(k) = chars.binary_search(c)
                        && let Some(x) = masks.get_mut(k * words + w)
                    {
                        *x |= bit;
                    }
                }
            }
        }
        // `?` accepts every character, including the named ones.
        for (j, x) in masks.iter_mut().enumerate() {
            *x |= other.get(j % words).copied().unwrap_or(0);
        }
        ShiftAnd {
            len,
            words,
            chars,
            masks,
            other,
        }
    }

    fn mask(&self, c: char) -> &[u64] {
        self.chars
            .binary_search(&c)
            .ok()
            .and_then(|k| self.masks.get(k * self.words..(k + 1) * self.words))
            .unwrap_or(&self.other)
    }

    /// Byte offset just past the leftmost occurrence in `text`.
    fn find(&self, text: &str) -> Option<usize> {
        if self.len == 0 {
            return Some(0);
        }
        let (top_word, top_bit) = ((self.len - 1) / 64, 1u64 << ((self.len - 1) % 64));
        if self.words == 1 {
            let mut state = 0u64;
            for (i, c) in text.char_indices() {
                let m = self.mask(c).first().copied().unwrap_or(0);
                state = ((state << 1) | 1) & m;
                if state & top_bit != 0 {
                    return Some(i + c.len_utf8());
                }
            }
            return None;
        }
        // INVARIANT: after reading a character, bit `i` of `state` is set exactly when the
        // segment's first `i + 1` elements match the text ending at that character.
        let mut state = vec![0u64; self.words];
        for (i, c) in text.char_indices() {
            let mut carry = 1u64;
            for (s, m) in state.iter_mut().zip(self.mask(c)) {
                let next_carry = *s >> 63;
                *s = ((*s << 1) | carry) & m;
                carry = next_carry;
            }
            if state.get(top_word).is_some_and(|s| s & top_bit != 0) {
                return Some(i + c.len_utf8());
            }
        }
        None
    }
}

/// Whether `s` contains a glob metacharacter.
pub(crate) fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// A piece of a non-glob template (for `StringEquals` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(String),
    Var(VarRef),
}

/// Splits policy text into literal pieces and variables. With `vars == false` (Version
/// 2008-10-17, or an element where variables are not recognised) the whole text is literal.
/// `${*}`, `${?}`, `${$}` produce the literal character.
pub(crate) fn split_vars(text: &str, vars: bool) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if vars && rest.starts_with("${") {
            let body_and_more = rest.get(2..).unwrap_or_default();
            let (body, after) = split_variable_body(body_and_more)
                .ok_or_else(|| format!("unterminated policy variable in `{text}`"))?;
            let var = parse_variable(body).map_err(|e| format!("{e} in `{text}`"))?;
            match var {
                VarOrLit::Lit(c) => lit.push(c),
                VarOrLit::Var(v) => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(v));
                }
            }
            rest = after;
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                lit.push(c);
            }
            rest = chars.as_str();
        }
    }
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// Finds the `}` closing a variable body, skipping over a quoted default value (in which `''`
/// stands for one quote). Returns (body, text after the brace).
fn split_variable_body(s: &str) -> Option<(&str, &str)> {
    let mut in_quote = false;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        match c {
            '\'' if in_quote => {
                if iter.peek().map(|(_, n)| *n) == Some('\'') {
                    iter.next();
                } else {
                    in_quote = false;
                }
            }
            '\'' => in_quote = true,
            '}' if !in_quote => return Some((s.get(..i)?, s.get(i + 1..)?)),
            _ => {}
        }
    }
    None
}

enum VarOrLit {
    Var(VarRef),
    Lit(char),
}

fn parse_variable(body: &str) -> Result<VarOrLit, String> {
    let trimmed = body.trim();
    match trimmed {
        "*" => return Ok(VarOrLit::Lit('*')),
        "?" => return Ok(VarOrLit::Lit('?')),
        "$" => return Ok(VarOrLit::Lit('$')),
        _ => {}
    }
    let (key, default) = match trimmed.split_once(',') {
        None => (trimmed, None),
        Some((k, d)) => {
            let d = d.trim();
            let inner = d
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .ok_or_else(|| "policy variable default must be in single quotes".to_owned())?;
            (k.trim(), Some(inner.replace("''", "'")))
        }
    };
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains(['$', '{', '}']) {
        return Err(format!("invalid policy variable name `{key}`"));
    }
    Ok(VarOrLit::Var(VarRef {
        key_lc: key.to_lowercase(),
        default,
    }))
}

/// Resolves a variable to its text. Errors (key absent without default, or multi-valued) make
/// the enclosing comparison an evaluation error: AWS says an unresolvable variable "might cause
/// the entire statement to be invalid".
pub(crate) fn resolve<'c>(var: &'c VarRef, ctx: &'c Context) -> Option<Cow<'c, str>> {
    match ctx.get_lc(&var.key_lc) {
        Some([one]) => Some(one.as_text()),
        _ => var.default.as_deref().map(Cow::Borrowed),
    }
}

/// A compiled string template without wildcards (used by the `...Equals` string operators and Bool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn compile(text: &str, vars: bool) -> Result<Self, String> {
        Ok(Template {
            pieces: split_vars(text, vars)?,
        })
    }

    /// The literal text when the template has no variables.
    pub fn literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Resolves the template to text; `None` if a variable cannot be resolved.
    pub fn render<'c>(&'c self, ctx: &'c Context) -> Option<Cow<'c, str>> {
        if let Some(l) = self.literal() {
            return Some(Cow::Borrowed(l));
        }
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => out.push_str(&resolve(v, ctx)?),
            }
        }
        Some(Cow::Owned(out))
    }

    /// Exact, case-sensitive comparison without building the rendered string.
    pub fn equals(&self, value: &str, ctx: &Context) -> Tri {
        let mut rest = value;
        for p in &self.pieces {
            let part: Cow<'_, str> = match p {
                Piece::Lit(s) => Cow::Borrowed(s.as_str()),
                Piece::Var(v) => match resolve(v, ctx) {
                    Some(t) => t,
                    None => return Tri::Error,
                },
            };
            match rest.strip_prefix(part.as_ref()) {
                Some(r) => rest = r,
                None => {
                    // Keep going only to detect unresolvable variables later; a mismatch is final
                    // unless a later variable cannot be resolved (then the comparison is an error).
                    return if self.all_vars_resolve(ctx) {
                        Tri::False
                    } else {
                        Tri::Error
                    };
                }
            }
        }
        Tri::from(rest.is_empty())
    }

    fn all_vars_resolve(&self, ctx: &Context) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Lit(_) => true,
            Piece::Var(v) => resolve(v, ctx).is_some(),
        })
    }
}

/// A compiled glob with optional variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    toks: Vec<GTok>,
    has_vars: bool,
    fast: Fast,
    /// The compiled matcher for a variable-free pattern of shape [`Fast::General`].
    general: Option<Matcher>,
}

/// Shapes that need no general glob matching (most ARN parts are literal, `*`, or `prefix*`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fast {
    /// No wildcard, no variable: plain string equality.
    Exact(String),
    /// Only `*`s: matches anything.
    Any,
    /// Literal text followed by one or more `*`.
    Prefix(String),
    /// Anything else: a [`Matcher`] (after resolving variables).
    General,
}

impl Fast {
    fn of(toks: &[GTok]) -> Fast {
        let literal_len = toks
            .iter()
            .take_while(|t| matches!(t, GTok::Char(_)))
            .count();
        let (lit, rest) = toks.split_at(literal_len);
        let text: String = lit
            .iter()
            .filter_map(|t| match t {
                GTok::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        if rest.is_empty() {
            Fast::Exact(text)
        } else if rest.iter().all(|t| *t == GTok::Star) {
            if text.is_empty() {
                Fast::Any
            } else {
                Fast::Prefix(text)
            }
        } else {
            Fast::General
        }
    }
}

impl Glob {
    fn from_pieces(pieces: Vec<Piece>, lowercase: bool) -> Self {
        let mut toks = Vec::new();
        let mut has_vars = false;
        // Literal `*`/`?` written as `${*}`/`${?}` arrive here as the ESC_* markers (see
        // `split_vars_for_glob`), so a plain `*`/`?` in a literal is always a wildcard.
        for p in pieces {
            match p {
                Piece::Lit(s) => push_glob_chars(&mut toks, &s, lowercase),
                Piece::Var(v) => {
                    has_vars = true;
                    toks.push(GTok::Var(v));
                }
            }
        }
        let fast = Fast::of(&toks);
        let general = (!has_vars && fast == Fast::General).then(|| Matcher::compile(&toks));
        Glob {
            toks,
            has_vars,
            fast,
            general,
        }
    }

    /// Variable-free matching, using the precomputed shape when there is one.
    fn match_static(&self, text: &str) -> bool {
        match &self.fast {
            Fast::Exact(s) => s == text,
            Fast::Any => true,
            Fast::Prefix(p) => text.starts_with(p.as_str()),
            Fast::General => self.general.as_ref().is_some_and(|m| m.is_match(text)),
        }
    }

    pub fn is_match(&self, text: &str, ctx: &Context) -> Tri {
        if !self.has_vars {
            return Tri::from(self.match_static(text));
        }
        let mut resolved = Vec::with_capacity(self.toks.len() + 16);
        for t in &self.toks {
            match t {
                GTok::Var(v) => match resolve(v, ctx) {
                    Some(s) => resolved.extend(s.chars().map(GTok::Char)),
                    None => return Tri::Error,
                },
                other => resolved.push(other.clone()),
            }
        }
        Tri::from(glob_match(&resolved, text))
    }

    /// Matching without a context (action patterns never contain variables).
    pub fn is_match_plain(&self, text: &str) -> bool {
        !self.has_vars && self.match_static(text)
    }
}

/// Marker characters used to carry an escaped (literal) `*`/`?` from `split_vars` to the glob
/// compiler. They are private-use code points, which IAM refuses in documents, so they cannot
/// collide with policy text.
pub(crate) const ESC_STAR: char = '\u{E000}';
pub(crate) const ESC_QUEST: char = '\u{E001}';

fn push_glob_chars(toks: &mut Vec<GTok>, s: &str, lowercase: bool) {
    for c in s.chars() {
        match c {
            '*' => toks.push(GTok::Star),
            '?' => toks.push(GTok::Quest),
            ESC_STAR => toks.push(GTok::Char('*')),
            ESC_QUEST => toks.push(GTok::Char('?')),
            c if lowercase => toks.extend(c.to_lowercase().map(GTok::Char)),
            c => toks.push(GTok::Char(c)),
        }
    }
}

/// Like [`split_vars`] but `${*}`/`${?}` become escape markers so the glob compiler keeps them
/// literal.
pub(crate) fn split_vars_for_glob(text: &str, vars: bool) -> Result<Vec<Piece>, String> {
    if !vars || !text.contains("${") {
        return split_vars(text, vars);
    }
    // Replace the two escapes by markers first, then run the ordinary splitter.
    let mut marked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        marked.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 2..).unwrap_or_default();
        match split_variable_body(after) {
            Some((body, tail)) if body.trim() == "*" => {
                marked.push(ESC_STAR);
                rest = tail;
            }
            Some((body, tail)) if body.trim() == "?" => {
                marked.push(ESC_QUEST);
                rest = tail;
            }
            Some((body, tail)) => {
                // An ordinary variable: copy it unchanged (its quoted default may itself contain
                // `${*}`, which is default text, not an escape).
                marked.push_str("${");
                marked.push_str(body);
                marked.push('}');
                rest = tail;
            }
            None => {
                marked.push_str("${");
                rest = after;
            }
        }
    }
    marked.push_str(rest);
    split_vars(&marked, vars)
}

impl Glob {
    /// Compiles a glob honouring `${*}`/`${?}` escapes; `lowercase` folds literal characters
    /// (for action names).
    pub fn compile_escaped(text: &str, vars: bool, lowercase: bool) -> Result<Self, String> {
        let pieces = split_vars_for_glob(text, vars)?;
        Ok(Self::from_pieces(pieces, lowercase))
    }
}

/// An ARN pattern: six separately matched parts, or a lone `*` matching anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    Any,
    Parts(Box<[Glob; 6]>),
}

impl ArnPattern {
    /// `allow_star`: whether a lone `*` means "any resource" (true for `Resource`, false for `Arn*`
    /// operators, where `*` is one part and so never matches a six-part ARN).
    pub fn compile(text: &str, vars: bool, allow_star: bool) -> Result<Self, String> {
        if allow_star && text == "*" {
            return Ok(ArnPattern::Any);
        }
        let pieces = split_vars_for_glob(text, vars)?;
        // Split on literal colons only: `${aws:username}` contains a colon inside the variable.
        let mut parts: Vec<Vec<Piece>> = vec![Vec::new()];
        for p in pieces {
            match p {
                Piece::Var(v) => {
                    if let Some(last) = parts.last_mut() {
                        last.push(Piece::Var(v));
                    }
                }
                Piece::Lit(s) => {
                    let mut cur = String::new();
                    for c in s.chars() {
                        if c == ':' && parts.len() < 6 {
                            if let Some(last) = parts.last_mut() {
                                last.push(Piece::Lit(std::mem::take(&mut cur)));
                            }
                            parts.push(Vec::new());
                        } else {
                            cur.push(c);
                        }
                    }
                    if let Some(last) = parts.last_mut() {
                        last.push(Piece::Lit(cur));
                    }
                }
            }
        }
        if parts.len() != 6 {
            return Err(format!(
                "`{text}` is not an ARN (`arn:partition:service:region:account:resource`) or `*`"
            ));
        }
        let globs: Vec<Glob> = parts
            .into_iter()
            .map(|p| Glob::from_pieces(p, false))
            .collect();
        let arr: [Glob; 6] = globs
            .try_into()
            .map_err(|_| format!("`{text}` is not an ARN"))?;
        Ok(ArnPattern::Parts(Box::new(arr)))
    }

    pub fn is_match(&self, arn: &str, ctx: &Context) -> Tri {
        let ArnPattern::Parts(globs) = self else {
            return Tri::True;
        };
        let mut result = Tri::True;
        let mut parts = arn.splitn(6, ':');
        for g in globs.iter() {
            let Some(part) = parts.next() else {
                return Tri::False;
            };
            result = result.and(g.is_match(part, ctx));
            if result == Tri::False {
                return Tri::False;
            }
        }
        result
    }
}

/// A compiled `Action`/`NotAction` entry, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionPattern {
    /// Lowercased service prefix when it has no wildcard, for the action index.
    pub service: Option<String>,
    /// The full lowercased name when it has no wildcard at all.
    pub exact: Option<String>,
    pub glob: Glob,
}

impl ActionPattern {
    pub fn compile(text: &str) -> Result<Self, String> {
        validate_action_pattern(text)?;
        let lower = text.to_lowercase();
        let service = lower
            .split_once(':')
            .map(|(s, _)| s)
            .filter(|s| !has_wildcard(s))
            .map(str::to_owned);
        let exact = (!has_wildcard(&lower)).then(|| lower.clone());
        let glob = Glob::compile_escaped(&lower, false, true)?;
        Ok(ActionPattern {
            service,
            exact,
            glob,
        })
    }

    pub fn matches(&self, action_lc: &str) -> bool {
        match &self.exact {
            Some(e) => e == action_lc,
            None => self.glob.is_match_plain(action_lc),
        }
    }
}

fn is_service_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

fn is_action_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Checks an `Action` value: `*`, or `service:name` where either part may contain `*`/`?`.
pub(crate) fn validate_action_pattern(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    let Some((service, name)) = text.split_once(':') else {
        return Err(format!(
            "action `{text}` must be `*` or `service-prefix:ActionName`"
        ));
    };
    if service.is_empty()
        || !service
            .chars()
            .all(|c| is_service_char(c) || c == '*' || c == '?')
    {
        return Err(format!("action `{text}` has an invalid service prefix"));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| is_action_char(c) || c == '*' || c == '?')
    {
        return Err(format!("action `{text}` has an invalid action name"));
    }
    Ok(())
}

/// Checks a request's action name: `service:Action` with no wildcards.
pub fn validate_action_name(name: &str) -> Result<(), PolicyError> {
    let bad = |reason| {
        Err(PolicyError::InvalidActionName {
            name: name.to_owned(),
            reason,
        })
    };
    let Some((service, action)) = name.split_once(':') else {
        return bad("expected `service-prefix:ActionName`");
    };
    if service.is_empty() || !service.chars().all(is_service_char) {
        return bad("the service prefix may contain only letters, digits and `-`");
    }
    if action.is_empty() || !action.chars().all(is_action_char) {
        return bad("the action name may contain only letters, digits, `-` and `_`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::compile_escaped(p, true, false).unwrap()
    }

    #[test]
    fn glob_basics() {
        let ctx = Context::new();
        assert_eq!(g("*").is_match("", &ctx), Tri::True);
        assert_eq!(g("a*c").is_match("abbbc", &ctx), Tri::True);
        assert_eq!(g("a*c").is_match("abbbd", &ctx), Tri::False);
        assert_eq!(g("a?c").is_match("abc", &ctx), Tri::True);
        assert_eq!(g("a?c").is_match("ac", &ctx), Tri::False);
        assert_eq!(g("*a*b*").is_match("xxaxxbxx", &ctx), Tri::True);
        assert_eq!(g("*a*b").is_match("xxaxxbxxc", &ctx), Tri::False);
        assert_eq!(g("é?").is_match("éü", &ctx), Tri::True);
        assert_eq!(g("${*}").is_match("*", &ctx), Tri::True);
        assert_eq!(g("${*}").is_match("x", &ctx), Tri::False);
        assert_eq!(g("${?}${$}").is_match("?$", &ctx), Tri::True);
    }

    #[test]
    fn variables_resolve_and_default() {
        let ctx = Context::new().with_string("aws:username", "alice");
        assert_eq!(
            g("home/${aws:username}/*").is_match("home/alice/x", &ctx),
            Tri::True
        );
        assert_eq!(
            g("home/${AWS:UserName}/*").is_match("home/bob/x", &ctx),
            Tri::False
        );
        assert_eq!(g("${aws:userid}").is_match("x", &ctx), Tri::Error);
        assert_eq!(
            g("${aws:userid, 'it''s'}").is_match("it's", &ctx),
            Tri::True
        );
        let star = Context::new().with_string("aws:username", "*");
        assert_eq!(g("${aws:username}").is_match("bob", &star), Tri::False);
        assert!(Glob::compile_escaped("${aws:username", true, false).is_err());
        assert!(Glob::compile_escaped("${}", true, false).is_err());
        // 2008-10-17: literal text
        let lit = Glob::compile_escaped("${aws:username}", false, false).unwrap();
        assert_eq!(lit.is_match("${aws:username}", &ctx), Tri::True);
        assert_eq!(lit.is_match("alice", &ctx), Tri::False);
    }

    #[test]
    fn fast_shapes_agree_with_the_general_matcher() {
        let ctx = Context::new();
        for (pat, shape) in [
            ("abc", "exact"),
            ("", "exact"),
            ("*", "any"),
            ("**", "any"),
            ("ab*", "prefix"),
            ("ab**", "prefix"),
            ("a*c", "general"),
            ("?", "general"),
        ] {
            let gl = g(pat);
            let got = match gl.fast {
                Fast::Exact(_) => "exact",
                Fast::Any => "any",
                Fast::Prefix(_) => "prefix",
                Fast::General => "general",
            };
            assert_eq!(got, shape, "{pat}");
            for text in ["", "a", "ab", "abc", "abcd", "xabc", "ac"] {
                assert_eq!(
                    gl.is_match(text, &ctx) == Tri::True,
                    glob_match(&gl.toks, text),
                    "{pat} vs {text}"
                );
            }
        }
    }

    #[test]
    fn arn_parts_are_separate() {
        let ctx = Context::new();
        let p = ArnPattern::compile("arn:aws:s3:::bucket/*", true, true).unwrap();
        assert_eq!(p.is_match("arn:aws:s3:::bucket/a/b:c", &ctx), Tri::True);
        let p = ArnPattern::compile("arn:aws:iam::*:user/*", true, false).unwrap();
        assert_eq!(
            p.is_match("arn:aws:iam::123456789012:user/x", &ctx),
            Tri::True
        );
        // `*` in the account part must not swallow the colon into the next part
        let p = ArnPattern::compile("arn:aws:iam::1*:role/x", true, false).unwrap();
        assert_eq!(p.is_match("arn:aws:iam::1:2:role/x", &ctx), Tri::False);
        assert!(ArnPattern::compile("arn:aws:s3", true, true).is_err());
        assert!(ArnPattern::compile("*", true, false).is_err());
    }

    #[test]
    fn action_names() {
        assert!(validate_action_name("iam:ListAccessKeys").is_ok());
        for bad in ["iam:*", "iam", ":x"] {
            assert!(validate_action_name(bad).is_err(), "{bad}");
        }
        let p = ActionPattern::compile("IAM:*AccessKey*").unwrap();
        assert!(p.matches("iam:listaccesskeys"));
        assert!(!p.matches("iam:listusers"));
        assert_eq!(p.service.as_deref(), Some("iam"));
        assert!(ActionPattern::compile("iam").is_err());
    }

    /// The matcher this module used before [`Matcher`]: backtracking to the last `*`, quadratic
    /// in the worst case, simple enough to be the reference for the property test below.
    fn backtracking_reference(pattern: &[GTok], text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        while ti < text.len() {
            match pattern.get(pi) {
                Some(GTok::Star) => {
                    pi += 1;
                    backtrack = Some((pi, ti));
                    continue;
                }
                Some(GTok::Quest) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                Some(GTok::Char(pc)) if *pc == text[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((bp, bt)) => {
                    backtrack = Some((bp, bt + 1));
                    pi = bp;
                    ti = bt + 1;
                }
                None => return false,
            }
        }
        pattern[pi..].iter().all(|t| *t == GTok::Star)
    }

    fn toks_of(p: &str) -> Vec<GTok> {
        let mut toks = Vec::new();
        push_glob_chars(&mut toks, p, false);
        toks
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4000))]

        /// Random globs over a small alphabet (one-, two- and four-byte characters) against
        /// random texts: the linear matcher, the precompiled `Glob` path and the reference agree.
        #[test]
        fn linear_matcher_agrees_with_the_backtracking_reference(
            pattern in "[ab\u{e9}\u{1d11e}*?]{0,12}",
            text in "[ab\u{e9}\u{1d11e}]{0,14}",
        ) {
            let toks = toks_of(&pattern);
            let expected = backtracking_reference(&toks, &text);
            proptest::prop_assert_eq!(glob_match(&toks, &text), expected, "{} vs {}", pattern, text);
            let compiled = Glob::compile_escaped(&pattern, false, false).unwrap();
            proptest::prop_assert_eq!(compiled.is_match_plain(&text), expected);
        }

        /// Texts built to match (each `*` replaced by random text, each `?` by one character)
        /// always match, so the comparison is not dominated by easy mismatches.
        #[test]
        fn linear_matcher_accepts_every_instance_of_the_pattern(
            pattern in "[ab\u{e9}*?]{0,16}",
            fill in proptest::collection::vec("[ab\u{e9}\u{1d11e}]{0,4}", 16),
        ) {
            let mut text = String::new();
            for (c, f) in pattern.chars().zip(&fill) {
                match c {
                    '*' => text.push_str(f),
                    '?' => text.push(f.chars().next().unwrap_or('\u{1d11e}')),
                    c => text.push(c),
                }
            }
            let toks = toks_of(&pattern);
            proptest::prop_assert!(backtracking_reference(&toks, &text));
            proptest::prop_assert!(glob_match(&toks, &text), "{} vs {}", pattern, text);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(500))]

        /// Segments of 60 to 140 elements with `?`, so the Shift-And state spans one to three
        /// words, against texts of mostly `a`: the carry between words must be right.
        #[test]
        fn multi_word_segments_agree_with_the_reference(
            seg in "[a?]{60,140}",
            text in "a{40,150}b?a{0,20}",
        ) {
            // Between two stars: the segment is searched for, not anchored.
            let pattern = format!("*{seg}b*");
            let toks = toks_of(&pattern);
            proptest::prop_assert_eq!(
                glob_match(&toks, &text),
                backtracking_reference(&toks, &text),
                "{} vs {}", pattern, text
            );
        }
    }

    #[test]
    fn long_question_mark_segments_use_several_words() {
        // 150 elements with `?`: the Shift-And state spans three u64 words.
        let seg: String = (0..150)
            .map(|i| if i % 7 == 3 { '?' } else { 'a' })
            .collect();
        let pattern = format!("x*{seg}*y");
        let toks = toks_of(&pattern);
        let hit = format!("xbb{}zy", "a".repeat(150));
        let miss = format!("xbb{}zy", "a".repeat(149));
        assert!(glob_match(&toks, &hit));
        assert!(!glob_match(&toks, &miss));
        assert!(backtracking_reference(&toks, &hit));
        assert!(!backtracking_reference(&toks, &miss));
    }

    #[test]
    fn a_segment_cannot_reuse_text_taken_by_the_prefix_or_suffix() {
        for (pat, text, want) in [
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("a*a*a", "aa", false),
            ("a*a*a", "aaa", true),
            ("?*?", "\u{e9}", false),
            ("?*?", "\u{e9}\u{1d11e}", true),
            ("*?\u{e9}?*", "a\u{e9}", false),
            ("*?\u{e9}?*", "a\u{e9}\u{1d11e}", true),
        ] {
            assert_eq!(glob_match(&toks_of(pat), text), want, "{pat} vs {text}");
        }
    }

    /// The input that froze the broker when matching was quadratic: a 6,015-character pattern
    /// against a 200,000-character ARN. The answer must be right; time is not asserted.
    #[test]
    fn the_quadratic_attack_input_gets_the_right_answer() {
        let ctx = Context::new();
        let pattern = format!("arn:aws:s3:::*{}b", "a".repeat(6000));
        let p = ArnPattern::compile(&pattern, true, true).unwrap();
        let long = format!("arn:aws:s3:::{}", "a".repeat(200_000));
        assert_eq!(p.is_match(&long, &ctx), Tri::False);
        assert_eq!(p.is_match(&format!("{long}b"), &ctx), Tri::True);
        assert_eq!(p.is_match(&format!("{long}ba"), &ctx), Tri::False);
        let resource_part = &pattern["arn:aws:s3:::".len()..];
        let toks = toks_of(resource_part);
        assert!(!glob_match(&toks, &long["arn:aws:s3:::".len()..]));
        // A `?` in the long segment takes the bit-parallel search.
        let with_quest = format!("*{}?b", "a".repeat(5999));
        assert!(glob_match(
            &toks_of(&with_quest),
            &format!("{}xb", "a".repeat(200_000))
        ));
        assert!(!glob_match(&toks_of(&with_quest), &"a".repeat(200_000)));
    }
}
