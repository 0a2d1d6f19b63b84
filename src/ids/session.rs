//! What session requests carry: durations and role session names.

use super::{ValidationError, checked, is_name_char};

/// A session's lifetime in seconds, within the bounds of the call that asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionDuration(i64);

impl SessionDuration {
    /// The longest `GetSessionToken` session (36 hours).
    pub const SESSION_TOKEN_MAX: i32 = 129_600;
    /// The longest `AssumeRole` session (12 hours; a role's own maximum may be lower).
    pub const ROLE_SESSION_MAX: i32 = 43_200;

    /// A requested `durationSeconds`: at least 900 (15 minutes), at most `max`.
    pub fn requested(v: i32, max: i32) -> Result<Self, ValidationError> {
        let bound = |constraint: String| {
            ValidationError::new(
                "durationSeconds",
                &v.to_string(),
                format!("Member must have value {constraint}"),
            )
        };
        if v < 900 {
            return Err(bound("greater than or equal to 900".to_owned()));
        }
        if v > max {
            return Err(bound(format!("less than or equal to {max}")));
        }
        Ok(Self(i64::from(v)))
    }

    /// A role's `maxSessionDuration`: one to twelve hours.
    pub fn role_maximum(v: i32) -> Result<Self, ValidationError> {
        if (3600..=Self::ROLE_SESSION_MAX).contains(&v) {
            Ok(Self(i64::from(v)))
        } else {
            Err(ValidationError::new(
                "maxSessionDuration",
                &v.to_string(),
                "Member must have value between 3600 and 43200",
            ))
        }
    }

    /// One hour, the default of roles and of the account owner's sessions.
    pub fn one_hour() -> Self {
        Self(3600)
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

text_id!(
    /// `roleSessionName`: 2 to 64 characters of `[\w+=,.@-]`.
    RoleSessionName
);

impl RoleSessionName {
    pub fn parse(v: &str) -> Result<Self, ValidationError> {
        checked(
            "roleSessionName",
            v,
            |v| (2..=64).contains(&v.len()) && v.chars().all(is_name_char),
            r"Member must satisfy regular expression pattern: [\w+=,.@-]* with length 2 to 64",
        )
        .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_aws_bounds() {
        let max = SessionDuration::SESSION_TOKEN_MAX;
        assert_eq!(SessionDuration::requested(900, max).unwrap().seconds(), 900);
        assert_eq!(
            SessionDuration::requested(max, max).unwrap().seconds(),
            129_600
        );
        let e = SessionDuration::requested(899, max).unwrap_err();
        assert_eq!(e.field, "durationSeconds");
        assert_eq!(
            e.to_string(),
            "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        );
        let e = SessionDuration::requested(43_201, SessionDuration::ROLE_SESSION_MAX).unwrap_err();
        assert!(e.expected.ends_with("less than or equal to 43200"), "{e}");
        assert!(SessionDuration::requested(-5, max).is_err());
        assert!(SessionDuration::role_maximum(3599).is_err());
        assert!(SessionDuration::role_maximum(3600).is_ok());
        assert!(SessionDuration::role_maximum(43_200).is_ok());
        let e = SessionDuration::role_maximum(43_201).unwrap_err();
        assert_eq!(e.field, "maxSessionDuration");
    }

    #[test]
    fn role_session_names_follow_aws_rules() {
        assert!(RoleSessionName::parse("ab").is_ok());
        assert!(RoleSessionName::parse(&"s".repeat(64)).is_ok());
        assert!(RoleSessionName::parse("ci+job=1,x.y@z-w_v").is_ok());
        for bad in [
            "a".to_owned(),
            "s".repeat(65),
            "a b".to_owned(),
            "a/b".to_owned(),
        ] {
            let e = RoleSessionName::parse(&bad).unwrap_err();
            assert_eq!(e.field, "roleSessionName");
        }
        assert_eq!(
            RoleSessionName::parse("").unwrap_err().expected,
            "Member must not be null"
        );
    }
}
