//! Identifiers and request values parsed at the edge: account ids, IAM names and paths, access
//! key ids, ARNs ([`arn`]), MFA serials and codes ([`mfa`]), session durations ([`session`]).
//!
//! The constructors are the only way to make these types, so a domain function that takes a
//! [`UserName`] never sees an unchecked string. Errors follow AWS's validation wording, name the
//! field in AWS's camelCase, and say what was expected.

/// A checked string: the type, `as_str` and `Display`. Each type writes its own `parse`, the
/// only way to make one.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

mod arn;
mod mfa;
mod session;

pub use arn::{Arn, PolicyArn, RoleArn};
pub use mfa::{MfaSerial, SERIAL_LEN, TokenCode, VirtualMfaDeviceName, is_serial_char};
pub use session::{RoleSessionName, SessionDuration};

use std::fmt;

/// A value that failed validation: which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The field in AWS's camelCase, e.g. `userName`.
    pub field: &'static str,
    /// The offending value quoted (or a placeholder when it must not be echoed); empty for a
    /// constraint between members, which has no one value to show.
    pub shown: String,
    /// What the field must look like.
    pub expected: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shown.is_empty() {
            return write!(f, "1 validation error detected: {}", self.expected);
        }
        write!(
            f,
            "1 validation error detected: Value {} at '{}' failed to satisfy constraint: {}",
            self.shown, self.field, self.expected
        )
    }
}

impl ValidationError {
    /// A validation error that quotes the offending value.
    pub fn new(field: &'static str, value: &str, expected: impl Into<String>) -> Self {
        let mut shown: String = value.chars().take(80).collect();
        if value.chars().count() > 80 {
            shown.push_str("...");
        }
        Self {
            field,
            shown: format!("'{shown}'"),
            expected: expected.into(),
        }
    }

    /// A required member that is absent or empty, in AWS's words (`Value null at …`).
    pub fn missing(field: &'static str) -> Self {
        Self {
            field,
            shown: "null".to_owned(),
            expected: "Member must not be null".to_owned(),
        }
    }

    /// A constraint between members, e.g. "exactly one of 'userName' and 'roleName' must be
    /// given"; `field` is the first member it names.
    pub fn members(field: &'static str, constraint: impl Into<String>) -> Self {
        Self {
            field,
            shown: String::new(),
            expected: constraint.into(),
        }
    }

    /// A validation error that must not echo the value (codes, secrets).
    pub fn redacted(field: &'static str, expected: impl Into<String>) -> Self {
        Self {
            field,
            shown: "(redacted)".to_owned(),
            expected: expected.into(),
        }
    }
}

/// `v` if it is not empty; a required member that is empty counts as absent.
pub fn required<'a>(field: &'static str, v: &'a str) -> Result<&'a str, ValidationError> {
    if v.is_empty() {
        Err(ValidationError::missing(field))
    } else {
        Ok(v)
    }
}

/// An optional member: absent or empty is `None`, anything else must parse.
pub fn optional<T>(
    v: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ValidationError>,
) -> Result<Option<T>, ValidationError> {
    v.filter(|s| !s.is_empty()).map(parse).transpose()
}

/// A required member that must satisfy `ok`; otherwise the error says `expected`.
fn checked(
    field: &'static str,
    v: &str,
    ok: impl FnOnce(&str) -> bool,
    expected: &str,
) -> Result<String, ValidationError> {
    let v = required(field, v)?;
    if ok(v) {
        Ok(v.to_owned())
    } else {
        Err(ValidationError::new(field, v, expected))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn check_len(field: &'static str, v: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let n = v.chars().count();
    if n < min {
        return Err(ValidationError::new(
            field,
            v,
            format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(ValidationError::new(
            field,
            v,
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

text_id!(
    /// A 12-digit AWS account id.
    AccountId
);

impl AccountId {
    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(v.to_owned()))
        } else {
            Err(ValidationError::new(
                "accountId",
                v,
                "Member must be exactly 12 digits",
            ))
        }
    }
}

macro_rules! iam_name {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        text_id!($(#[$doc])* $name);

        impl $name {
            /// Parse with AWS's rules: 1 to
            #[doc = stringify!($max)]
            /// characters of `[\w+=,.@-]`.
            pub fn parse(v: &str) -> Result<Self, ValidationError> {
                parse_iam_name($field, v, $max).map(Self)
            }
        }
    };
}

fn parse_iam_name(field: &'static str, v: &str, max: usize) -> Result<String, ValidationError> {
    check_len(field, v, 1, max)?;
    if !v.chars().all(is_name_char) {
        return Err(ValidationError::new(
            field,
            v,
            r"Member must satisfy regular expression pattern: [\w+=,.@-]+",
        ));
    }
    Ok(v.to_owned())
}

iam_name!(
    /// An IAM user name (case-preserving; unique case-insensitively).
    UserName, "userName", 64
);
iam_name!(
    /// An IAM group name.
    GroupName, "groupName", 128
);
iam_name!(
    /// An IAM role name.
    RoleName, "roleName", 64
);
iam_name!(
    /// A managed or inline policy name.
    PolicyName, "policyName", 128
);

text_id!(
    /// An IAM path: `/` or `/segments/` of printable ASCII, at most 512 characters.
    IamPath
);

impl IamPath {
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    pub fn parse(field: &'static str, v: &str) -> Result<Self, ValidationError> {
        check_len(field, v, 1, 512)?;
        let ok = v == "/"
            || (v.len() >= 2
                && v.starts_with('/')
                && v.ends_with('/')
                && v.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        if !ok {
            return Err(ValidationError::new(
                field,
                v,
                r"Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
            ));
        }
        Ok(Self(v.to_owned()))
    }
}

text_id!(
    /// A `pathPrefix` of a listing: `/` followed by printable ASCII, at most 512 characters.
    PathPrefix
);

impl PathPrefix {
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        if v.starts_with('/') && v.len() <= 512 {
            Ok(Self(v.to_owned()))
        } else {
            Err(ValidationError::new(
                "pathPrefix",
                v,
                r"Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*",
            ))
        }
    }
}

/// `maxItems` of a listing: 1 to 1000, AWS's default 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxItems(usize);

impl MaxItems {
    pub fn parse(v: Option<i32>) -> Result<Self, ValidationError> {
        match v {
            None => Ok(Self(100)),
            Some(n) => match usize::try_from(n) {
                Ok(n) if (1..=1000).contains(&n) => Ok(Self(n)),
                _ => Err(ValidationError::new(
                    "maxItems",
                    &n.to_string(),
                    "Member must have value between 1 and 1000",
                )),
            },
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

text_id!(
    /// An access key id as given by a client: 16 to 128 word characters.
    AccessKeyId
);

impl AccessKeyId {
    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        check_len("accessKeyId", v, 16, 128)?;
        if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ValidationError::new(
                "accessKeyId",
                v,
                r"Member must satisfy regular expression pattern: [\w]+",
            ));
        }
        Ok(Self(v.to_owned()))
    }

    /// A fresh long-term key id: `AKIA` + 16 of `[A-Z2-7]`.
    pub fn generate_long_term() -> Self {
        Self(format!("AKIA{}", crate::crypto::random_base32(16)))
    }

    /// A fresh temporary key id: `ASIA` + 16 of `[A-Z2-7]`.
    pub fn generate_temporary() -> Self {
        Self(format!("ASIA{}", crate::crypto::random_base32(16)))
    }

    pub fn is_temporary(&self) -> bool {
        self.0.starts_with("ASIA")
    }
}

/// Status of a long-term access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        match v {
            "Active" => Ok(Self::Active),
            "Inactive" => Ok(Self::Inactive),
            _ => Err(ValidationError::new(
                "status",
                v,
                "Member must satisfy enum value set: [Active, Inactive]",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }
}

/// A fresh unique id for an IAM entity, e.g. `AIDA` + 17 of `[A-Z0-9]` for a user.
pub fn generate_unique_id(prefix: &str) -> String {
    format!("{prefix}{}", crate::crypto::random_upper_alnum(17))
}

/// ARN of the account root user.
pub fn root_arn(account: &AccountId) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// ARN of an IAM user.
pub fn user_arn(account: &AccountId, path: &IamPath, name: &UserName) -> String {
    format!("arn:aws:iam::{account}:user{}{name}", path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_aws_rules() {
        assert!(UserName::parse("alice.smith+ops@example.com").is_ok());
        assert!(UserName::parse(&"a".repeat(64)).is_ok());
        let e = UserName::parse(&"a".repeat(65)).unwrap_err();
        assert_eq!(e.field, "userName");
        assert!(e.to_string().contains("less than or equal to 64"));
        let e = UserName::parse("al ice").unwrap_err();
        assert!(e.to_string().contains("regular expression"), "{e}");
        assert!(UserName::parse("").is_err());
        assert!(UserName::parse("ålice").is_err());
    }

    #[test]
    fn paths_must_start_and_end_with_slash() {
        assert!(IamPath::parse("path", "/").is_ok());
        assert!(IamPath::parse("path", "/eng/ops/").is_ok());
        for bad in ["", "eng/", "/eng", "/e ng/", "//x"] {
            if bad == "//x" {
                assert!(IamPath::parse("path", bad).is_err());
                continue;
            }
            let e = IamPath::parse("path", bad).unwrap_err();
            assert_eq!(e.field, "path");
        }
    }

    #[test]
    fn listing_bounds_follow_aws_rules() {
        assert_eq!(PathPrefix::root().as_str(), "/");
        assert!(PathPrefix::parse("/eng/o").is_ok());
        assert!(PathPrefix::parse(&format!("/{}", "a".repeat(511))).is_ok());
        assert!(PathPrefix::parse(&format!("/{}", "a".repeat(512))).is_err());
        assert_eq!(PathPrefix::parse("eng/").unwrap_err().field, "pathPrefix");
        assert_eq!(MaxItems::parse(None).unwrap().get(), 100);
        assert_eq!(MaxItems::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(MaxItems::parse(Some(1000)).unwrap().get(), 1000);
        for bad in [0, 1001, -1] {
            assert_eq!(MaxItems::parse(Some(bad)).unwrap_err().field, "maxItems");
        }
    }

    #[test]
    fn missing_and_optional_members() {
        assert_eq!(
            ValidationError::missing("userName").to_string(),
            "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(required("userName", "x"), Ok("x"));
        assert_eq!(required("userName", "").unwrap_err().field, "userName");
        assert_eq!(optional(None, UserName::parse), Ok(None));
        assert_eq!(optional(Some(""), UserName::parse), Ok(None));
        assert!(optional(Some("a b"), UserName::parse).is_err());
        let e = ValidationError::members(
            "userName",
            "exactly one of 'userName' and 'roleName' must be given",
        );
        assert_eq!(
            e.to_string(),
            "1 validation error detected: exactly one of 'userName' and 'roleName' must be given"
        );
    }

    #[test]
    fn access_key_ids_have_aws_shapes() {
        let k = AccessKeyId::generate_long_term();
        assert!(k.as_str().starts_with("AKIA") && k.as_str().len() == 20);
        assert!(!k.is_temporary());
        assert!(AccessKeyId::generate_temporary().is_temporary());
        assert!(AccessKeyId::parse("short").is_err());
        assert!(AccessKeyId::parse("AKIA-0000000000000000").is_err());
    }

    #[test]
    fn arns() {
        let a = AccountId::parse("123456789012").unwrap();
        assert_eq!(root_arn(&a), "arn:aws:iam::123456789012:root");
        let p = IamPath::parse("path", "/eng/").unwrap();
        let n = UserName::parse("bob").unwrap();
        assert_eq!(
            user_arn(&a, &p, &n),
            "arn:aws:iam::123456789012:user/eng/bob"
        );
        assert!(AccountId::parse("12345678901").is_err());
    }
}
