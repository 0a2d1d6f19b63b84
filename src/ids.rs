//! Identifiers parsed at the edge: account ids, IAM names and paths, access key ids, ARNs.
//!
//! The constructors are the only way to make these types, so a domain function that takes a
//! [`UserName`] never sees an unchecked string. Errors follow AWS's validation wording, name the
//! field in AWS's camelCase, and say what was expected.

use std::fmt;

/// A value that failed validation: which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "1 validation error detected: Value {shown} at '{field}' failed to satisfy constraint: {expected}"
)]
pub struct ValidationError {
    /// The field in AWS's camelCase, e.g. `userName`.
    pub field: &'static str,
    /// The offending value quoted (or a placeholder when it must not be echoed).
    pub shown: String,
    /// What the field must look like.
    pub expected: String,
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

    /// A validation error that must not echo the value (codes, secrets).
    pub fn redacted(field: &'static str, expected: impl Into<String>) -> Self {
        Self {
            field,
            shown: "(redacted)".to_owned(),
            expected: expected.into(),
        }
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

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! iam_name {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parse with AWS's rules: 1 to
            #[doc = stringify!($max)]
            /// characters of `[\w+=,.@-]`.
            pub fn parse(v: &str) -> Result<Self, ValidationError> {
                parse_iam_name($field, v, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
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

/// An IAM path: `/` or `/segments/` of printable ASCII, at most 512 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IamPath(String);

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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An access key id as given by a client: 16 to 128 word characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessKeyId(String);

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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
