//! IAM's rules about what may be created and deleted, and AWS's wording when they refuse.
//!
//! A backend reports facts (this row is missing, this name is taken, these dependents exist);
//! the functions and types here turn them into AWS's answer. The `Display` of each type is the
//! message the caller sees, word for word as IAM writes it.

use super::store::Dependents;
use super::{DeviceKind, PrincipalKind};
use crate::ids::{AccessKeyId, GroupName, PolicyName, RoleName, UserName};
use std::fmt;

/// A per-principal quota, with AWS's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Long-term access keys per user (and for root).
    AccessKeysPerUser,
    /// MFA devices enabled for one principal at once.
    MfaDevicesPerUser,
}

impl Quota {
    /// The most a principal may have.
    pub const fn limit(self) -> u32 {
        match self {
            Self::AccessKeysPerUser => 2,
            Self::MfaDevicesPerUser => 8,
        }
    }

    /// The quota's name in IAM's messages and `GetAccountSummary`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AccessKeysPerUser => "AccessKeysPerUser",
            Self::MfaDevicesPerUser => "MFADevicesPerUser",
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cannot exceed quota for {}: {}",
            self.name(),
            self.limit()
        )
    }
}

/// What was looked for and not found (`NoSuchEntity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    User(UserName),
    /// A user referred to by its unique id.
    UserId,
    AccessKey(AccessKeyId),
    /// An MFA device by serial, or one that is not the principal's.
    MfaDevice(String),
    /// A managed policy by ARN.
    Policy(String),
    /// A managed policy by ARN that is not attached to the principal.
    Attachment(String),
    Role(RoleName),
    GroupMember,
    InlinePolicy {
        kind: PrincipalKind,
        name: String,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => write!(f, "The user with name {name} cannot be found."),
            Self::UserId => f.write_str("The user cannot be found."),
            Self::AccessKey(id) => write!(f, "The Access Key with id {id} cannot be found."),
            Self::MfaDevice(serial) => {
                write!(f, "MFA device with serial number {serial} cannot be found.")
            }
            Self::Policy(arn) => write!(f, "Policy {arn} does not exist or is not attachable."),
            Self::Attachment(arn) => write!(f, "Policy {arn} was not found."),
            Self::Role(name) => write!(f, "The role with name {name} cannot be found."),
            Self::GroupMember => f.write_str("The user is not a member of the group."),
            Self::InlinePolicy { kind, name } => write!(
                f,
                "The {} policy with name {name} cannot be found.",
                kind.as_str()
            ),
        }
    }
}

/// A name or device already taken (`EntityAlreadyExists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    User(UserName),
    Group(GroupName),
    Policy(PolicyName),
    Role(RoleName),
    /// A device serial (case-insensitively) already stored.
    MfaDevice {
        kind: DeviceKind,
        serial: String,
    },
    /// A device already enabled for a principal.
    MfaDeviceInUse,
}

impl fmt::Display for Taken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => write!(f, "User with name {name} already exists."),
            Self::Group(name) => write!(f, "Group with name {name} already exists."),
            Self::Policy(name) => write!(
                f,
                "A policy called {name} already exists. Duplicate names are not allowed."
            ),
            Self::Role(name) => write!(f, "Role with name {name} already exists."),
            Self::MfaDevice {
                kind: DeviceKind::Virtual,
                ..
            } => f.write_str("MFADevice entity at the same path and name already exists."),
            Self::MfaDevice {
                kind: DeviceKind::Hardware,
                serial,
            } => write!(f, "MFA device with serial number {serial} already exists."),
            Self::MfaDeviceInUse => f.write_str("MFA Device is already in use."),
        }
    }
}

/// Why an entity cannot be deleted yet (`DeleteConflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    UserHasAccessKeys,
    UserHasMfaDevices,
    UserHasPolicies,
    UserInGroups,
    GroupNotEmpty,
    RoleHasPolicies,
    PolicyAttached,
    MfaDeviceInUse,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UserHasAccessKeys => "Cannot delete entity, must delete access keys first.",
            Self::UserHasMfaDevices => "Cannot delete entity, must remove MFA device first.",
            Self::UserHasPolicies => "Cannot delete entity, must delete policies first.",
            Self::UserInGroups => "Cannot delete entity, must remove users from group first.",
            Self::GroupNotEmpty => {
                "Cannot delete entity, must remove users and policies from group first."
            }
            Self::RoleHasPolicies => "Cannot delete entity, must detach all policies first.",
            Self::PolicyAttached => "Cannot delete a policy attached to entities.",
            Self::MfaDeviceInUse => "MFA Device is in use: deactivate it before deleting it.",
        })
    }
}

/// IAM's first objection to deleting a user, in the order IAM checks: keys, MFA devices,
/// policies (attached or inline), group memberships.
pub fn user_conflict(d: &Dependents) -> Option<Conflict> {
    [
        (d.access_keys, Conflict::UserHasAccessKeys),
        (d.mfa_devices, Conflict::UserHasMfaDevices),
        (d.policies, Conflict::UserHasPolicies),
        (d.groups, Conflict::UserInGroups),
    ]
    .into_iter()
    .find_map(|(n, c)| (n > 0).then_some(c))
}

/// A group must have no members and no policies.
pub fn group_conflict(d: &Dependents) -> Option<Conflict> {
    (d.members + d.policies > 0).then_some(Conflict::GroupNotEmpty)
}

/// A role must have no policies.
pub fn role_conflict(d: &Dependents) -> Option<Conflict> {
    (d.policies > 0).then_some(Conflict::RoleHasPolicies)
}

/// A managed policy must be attached to nobody.
pub fn policy_conflict(d: &Dependents) -> Option<Conflict> {
    (d.attachments > 0).then_some(Conflict::PolicyAttached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(f: impl FnOnce(&mut Dependents)) -> Dependents {
        let mut d = Dependents::default();
        f(&mut d);
        d
    }

    #[test]
    fn a_user_conflict_names_the_first_dependent_in_iams_order() {
        assert_eq!(user_conflict(&Dependents::default()), None);
        let all = deps(|d| {
            d.access_keys = 1;
            d.mfa_devices = 2;
            d.policies = 3;
            d.groups = 4;
        });
        assert_eq!(user_conflict(&all), Some(Conflict::UserHasAccessKeys));
        let no_keys = Dependents {
            access_keys: 0,
            ..all
        };
        assert_eq!(user_conflict(&no_keys), Some(Conflict::UserHasMfaDevices));
        let no_devices = Dependents {
            mfa_devices: 0,
            ..no_keys
        };
        assert_eq!(user_conflict(&no_devices), Some(Conflict::UserHasPolicies));
        let groups_only = deps(|d| d.groups = 1);
        assert_eq!(user_conflict(&groups_only), Some(Conflict::UserInGroups));
        assert_eq!(
            user_conflict(&groups_only)
                .map(|c| c.to_string())
                .as_deref(),
            Some("Cannot delete entity, must remove users from group first.")
        );
    }

    #[test]
    fn groups_roles_and_policies_block_on_their_own_dependents_only() {
        assert_eq!(
            group_conflict(&deps(|d| d.members = 1)),
            Some(Conflict::GroupNotEmpty)
        );
        assert_eq!(
            group_conflict(&deps(|d| d.policies = 1)),
            Some(Conflict::GroupNotEmpty)
        );
        assert_eq!(group_conflict(&deps(|d| d.attachments = 5)), None);
        assert_eq!(
            role_conflict(&deps(|d| d.policies = 2)),
            Some(Conflict::RoleHasPolicies)
        );
        assert_eq!(role_conflict(&deps(|d| d.members = 2)), None);
        assert_eq!(
            policy_conflict(&deps(|d| d.attachments = 1)),
            Some(Conflict::PolicyAttached)
        );
        assert_eq!(policy_conflict(&deps(|d| d.policies = 1)), None);
    }

    #[test]
    fn quotas_have_aws_limits_and_wording() {
        assert_eq!(Quota::AccessKeysPerUser.limit(), 2);
        assert_eq!(Quota::MfaDevicesPerUser.limit(), 8);
        assert_eq!(
            Quota::AccessKeysPerUser.to_string(),
            "Cannot exceed quota for AccessKeysPerUser: 2"
        );
        assert_eq!(
            Quota::MfaDevicesPerUser.to_string(),
            "Cannot exceed quota for MFADevicesPerUser: 8"
        );
    }

    #[test]
    fn messages_are_iams_words() {
        let user = UserName::parse("alice").unwrap();
        assert_eq!(
            Missing::User(user.clone()).to_string(),
            "The user with name alice cannot be found."
        );
        assert_eq!(
            Missing::InlinePolicy {
                kind: PrincipalKind::Group,
                name: "p".into()
            }
            .to_string(),
            "The group policy with name p cannot be found."
        );
        assert_eq!(
            Taken::User(user).to_string(),
            "User with name alice already exists."
        );
        assert_eq!(
            Taken::MfaDevice {
                kind: DeviceKind::Virtual,
                serial: "arn:aws:iam::123456789012:mfa/a".into()
            }
            .to_string(),
            "MFADevice entity at the same path and name already exists."
        );
        assert_eq!(
            Taken::MfaDevice {
                kind: DeviceKind::Hardware,
                serial: "GAKT0001".into()
            }
            .to_string(),
            "MFA device with serial number GAKT0001 already exists."
        );
        assert_eq!(
            Conflict::MfaDeviceInUse.to_string(),
            "MFA Device is in use: deactivate it before deleting it."
        );
    }
}
