//! Amazon Resource Names, parsed once: `arn:partition:service:region:account:resource`, as
//! AWS's IAM User Guide ("IAM identifiers", "Amazon Resource Names (ARNs)") writes them.
//!
//! [`Arn`] is the one parser; [`RoleArn`] and [`PolicyArn`] are the ARNs that request members
//! name, checked for their resource type on top of it. Wildcards are not ARNs: policy patterns
//! (`crate::policy`) have their own matcher.

use super::{IamPath, RoleName, ValidationError};
use std::fmt;

/// A parsed ARN. The text is kept as given; the parts are slices of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    text: String,
    /// Byte offsets of the five `:` that end `arn`, partition, service, region and account.
    colons: [usize; 5],
}

impl fmt::Debug for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Arn({})", self.text)
    }
}

impl Arn {
    /// Splits `v` at its first five colons. The partition, service and resource must be
    /// non-empty; the region and account may be empty (IAM ARNs have no region). Whitespace and
    /// control characters are refused anywhere.
    pub fn parse(field: &'static str, v: &str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                field,
                v,
                "Member must be an ARN: arn:partition:service:region:account:resource",
            )
        };
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let mut colons = [0usize; 5];
        let mut found = v.match_indices(':').map(|(i, _)| i);
        for slot in &mut colons {
            *slot = found.next().ok_or_else(bad)?;
        }
        let arn = Self {
            text: v.to_owned(),
            colons,
        };
        let well_formed = arn.part(0) == "arn"
            && !arn.partition().is_empty()
            && !arn.service().is_empty()
            && !arn.resource().is_empty();
        if well_formed { Ok(arn) } else { Err(bad()) }
    }

    /// The `i`-th of the five colon-terminated parts (0 = `arn`).
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.colons[i - 1] + 1 };
        &self.text[start..self.colons[i]]
    }

    pub fn partition(&self) -> &str {
        self.part(1)
    }

    pub fn service(&self) -> &str {
        self.part(2)
    }

    pub fn region(&self) -> &str {
        self.part(3)
    }

    pub fn account(&self) -> &str {
        self.part(4)
    }

    /// Everything after the account: `user/eng/bob`, `root`, `assumed-role/r/s`.
    pub fn resource(&self) -> &str {
        &self.text[self.colons[4] + 1..]
    }

    /// For an IAM resource `TYPE/PATH/NAME` (or `TYPE/NAME`): the path (`/…/`) and the name.
    pub fn typed_resource(&self, resource_type: &str) -> Option<(&str, &str)> {
        let rest = self.resource().strip_prefix(resource_type)?;
        if !rest.starts_with('/') {
            return None;
        }
        let slash = rest.rfind('/')?;
        Some((&rest[..=slash], &rest[slash + 1..]))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The ARN of an IAM role (`arn:aws:iam::ACCOUNT:role/PATH/NAME`), as `AssumeRole` names it:
/// AWS's `arnType` (20 to 2048 characters) with a role resource whose path and name are valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    arn: Arn,
    path: IamPath,
    name: RoleName,
}

impl RoleArn {
    pub fn parse(field: &'static str, v: &str) -> Result<Self, ValidationError> {
        if !(20..=2048).contains(&v.len()) {
            return Err(ValidationError::new(
                field,
                v,
                "Member must have length between 20 and 2048",
            ));
        }
        let arn = Arn::parse(field, v)?;
        let not_role = || {
            ValidationError::new(
                field,
                v,
                "Member must be the ARN of an IAM role: arn:aws:iam::ACCOUNT:role/PATH/NAME",
            )
        };
        if arn.service() != "iam" {
            return Err(not_role());
        }
        let (path, name) = arn.typed_resource("role").ok_or_else(not_role)?;
        let path = IamPath::parse(field, path).map_err(|_| not_role())?;
        let name = RoleName::parse(name).map_err(|_| not_role())?;
        Ok(Self { arn, path, name })
    }

    pub fn arn(&self) -> &Arn {
        &self.arn
    }

    pub fn account(&self) -> &str {
        self.arn.account()
    }

    pub fn path(&self) -> &IamPath {
        &self.path
    }

    pub fn name(&self) -> &RoleName {
        &self.name
    }

    pub fn as_str(&self) -> &str {
        self.arn.as_str()
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ARN of a managed policy (`arn:aws:iam::ACCOUNT:policy/PATH/NAME`; AWS's own policies
/// have `aws` as the account): AWS's `arnType`, 20 to 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyArn(Arn);

impl PolicyArn {
    pub fn parse(field: &'static str, v: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new(field, v, "Member must be an ARN of length 20 to 2048");
        if !(20..=2048).contains(&v.len()) {
            return Err(bad());
        }
        let arn = Arn::parse(field, v).map_err(|_| bad())?;
        if arn.service() != "iam" || arn.typed_resource("policy").is_none() {
            return Err(ValidationError::new(
                field,
                v,
                "Member must be the ARN of an IAM policy: arn:aws:iam::ACCOUNT:policy/PATH/NAME",
            ));
        }
        Ok(Self(arn))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for PolicyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split_into_their_five_parts() {
        let a = Arn::parse("arn", "arn:aws:iam::123456789012:user/eng/bob").unwrap();
        assert_eq!(
            (a.partition(), a.service(), a.region(), a.account()),
            ("aws", "iam", "", "123456789012")
        );
        assert_eq!(a.resource(), "user/eng/bob");
        assert_eq!(a.typed_resource("user"), Some(("/eng/", "bob")));
        assert_eq!(a.typed_resource("role"), None);
        // The resource may itself hold colons; S3 ARNs have no region or account.
        let a = Arn::parse("arn", "arn:aws:logs:us-east-1:1:log-group:x:*").unwrap();
        assert_eq!(a.resource(), "log-group:x:*");
        let a = Arn::parse("arn", "arn:aws:s3:::bucket").unwrap();
        assert_eq!((a.region(), a.account(), a.resource()), ("", "", "bucket"));
        assert_eq!(a.to_string(), "arn:aws:s3:::bucket");
    }

    #[test]
    fn malformed_arns_are_refused_naming_the_field() {
        for bad in [
            "",
            "arn",
            "arn:aws:iam::123456789012",
            "arn:aws:iam::123456789012:",
            "urn:aws:iam::123456789012:root",
            "arn::iam::123456789012:root",
            "arn:aws:::123456789012:root",
            "arn:aws:iam::123456789012:user/b ob",
            "arn:aws:iam::123456789012:user/bob\n",
        ] {
            let e = Arn::parse("policySourceArn", bad).unwrap_err();
            assert_eq!(e.field, "policySourceArn", "{bad:?}");
            assert!(e.expected.contains("arn:partition"), "{e}");
        }
    }

    #[test]
    fn role_arns_carry_path_and_name() {
        let r = RoleArn::parse("roleArn", "arn:aws:iam::111122223333:role/admin").unwrap();
        assert_eq!((r.account(), r.path().as_str()), ("111122223333", "/"));
        assert_eq!(r.name().as_str(), "admin");
        let r =
            RoleArn::parse("roleArn", "arn:aws:iam::111122223333:role/eng/ops/deployer").unwrap();
        assert_eq!(
            (r.path().as_str(), r.name().as_str()),
            ("/eng/ops/", "deployer")
        );
        // Boundaries of AWS's arnType: 20 characters is the shortest accepted.
        let e = RoleArn::parse("roleArn", "arn:aws:iam::1:role").unwrap_err();
        assert!(e.expected.contains("between 20 and 2048"), "{e}");
        let long = format!("arn:aws:iam::1:role/{}", "a".repeat(2030));
        assert!(RoleArn::parse("roleArn", &long).is_err());
        let refused: Vec<&str> = [
            "arn:aws:iam::111122223333:user/bob",
            "arn:aws:iam::111122223333:roleX/bob",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:sts::111122223333:role/admin",
            "arn:aws:iam::111122223333:role/a b",
            "not an arn at all, but long enough",
        ]
        .into_iter()
        .map(|bad| RoleArn::parse("roleArn", bad).unwrap_err().field)
        .collect();
        assert_eq!(refused, ["roleArn"; 6]);
    }

    #[test]
    fn policy_arns_are_iam_policies_of_aws_length() {
        assert!(PolicyArn::parse("policyArn", "arn:aws:iam::123456789012:policy/ops").is_ok());
        assert!(PolicyArn::parse("policyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess").is_ok());
        let e = PolicyArn::parse("policyArn", "arn:aws:iam::1:pol/").unwrap_err();
        assert_eq!(e.expected, "Member must be an ARN of length 20 to 2048");
        let e = PolicyArn::parse("policyArn", "not-an-arn-but-twenty-chars").unwrap_err();
        assert_eq!(e.expected, "Member must be an ARN of length 20 to 2048");
        let e = PolicyArn::parse("policyArn", "arn:aws:iam::123456789012:user/ops").unwrap_err();
        assert!(e.expected.contains("IAM policy"), "{e}");
    }
}
