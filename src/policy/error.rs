//! Errors of the policy module: [`PolicyError`] for documents refused at parse time and
//! [`ContextError`] for request-context entries that cannot be typed.
//!
//! Messages follow the project's style: lowercase, no final period, user input in backticks, and
//! the place of the problem first (`statement 2: ...`) so an operator can find it in the document.

use thiserror::Error;

/// A policy document was refused. Every variant maps to AWS's `MalformedPolicyDocument`
/// (or `LimitExceeded` for [`PolicyError::TooLarge`] if the caller prefers).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid JSON.
    #[error("policy is not valid JSON: {message} at line {line}, column {column}")]
    Json {
        /// What the JSON reader found wrong.
        message: String,
        /// 1-based line of the problem.
        line: u32,
        /// 1-based column (in characters) of the problem.
        column: u32,
    },
    /// The document is longer than the limit for its kind.
    #[error(
        "policy has {actual} non-whitespace characters, more than the {limit} allowed for {kind}"
    )]
    TooLarge {
        /// Human-readable name of the policy kind.
        kind: &'static str,
        /// The limit that applies.
        limit: usize,
        /// The counted size.
        actual: usize,
    },
    /// The document contains a character IAM does not accept.
    #[error(
        "policy contains the character U+{code:04X} at line {line}, column {column}; only tab, line feed, carriage return and U+0020..U+00FF are allowed"
    )]
    InvalidCharacter {
        /// The code point.
        code: u32,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
    },
    /// Valid JSON, but not a valid policy: `location` says where, `reason` what.
    #[error("{location}: {reason}")]
    Malformed {
        /// Where: `policy`, `statement 2`, `statement 2: condition `Bool``...
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An action name given to [`crate::policy::validate_action_name`] is not `service:Action`.
    #[error("invalid action name `{name}`: {reason}")]
    InvalidActionName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

impl PolicyError {
    pub(crate) fn malformed(location: impl Into<String>, reason: impl Into<String>) -> Self {
        PolicyError::Malformed {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// A context entry (as sent to `SimulateCustomPolicy` or `Authorize`) could not be turned into a
/// typed value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The `context_key_type` is not one of AWS's type names.
    #[error(
        "context key `{key}`: unknown type `{ty}`; expected one of string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, date, dateList, binary, binaryList"
    )]
    UnknownType {
        /// The key.
        key: String,
        /// The rejected type name.
        ty: String,
    },
    /// A single-valued type was given zero or several values.
    #[error("context key `{key}`: type `{ty}` takes exactly one value, got {count}")]
    NotSingleValued {
        /// The key.
        key: String,
        /// The type name.
        ty: String,
        /// How many values were given.
        count: usize,
    },
    /// A value does not parse as its declared type.
    #[error("context key `{key}`: `{value}` is not a valid {ty}")]
    BadValue {
        /// The key.
        key: String,
        /// The type name.
        ty: String,
        /// The rejected value.
        value: String,
    },
    /// The key name is empty.
    #[error("context key name must not be empty")]
    EmptyKey,
}
