//! The inputs of the use cases: one value per RPC, made of parsed newtypes (`crate::ids`).
//!
//! A door (gRPC in `crate::grpc`, and any other that speaks AWS's members) builds these before it
//! calls the broker, so every field has been checked, and a bad one refused with a
//! `ValidationError` naming it, before any store access. They name no transport type.
//! Documents (policies, trust policies, seed files) stay text here: the broker parses them, as
//! their errors are not validation errors (`MalformedPolicyDocument`, `InvalidInput`).

use crate::domain::{Assignment, PrincipalKind};
use crate::ids::{
    AccessKeyId, Arn, GroupName, IamPath, KeyStatus, MaxItems, MfaSerial, PathPrefix, PolicyArn,
    PolicyName, RoleArn, RoleName, RoleSessionName, SessionDuration, TokenCode, UserName,
    VirtualMfaDeviceName,
};
use crate::policy::ContextEntry;
use time::OffsetDateTime;
use zeroize::Zeroizing;

// ---------------------------------------------------------------- STS

/// The MFA members of an STS call, each optional. They are given together or not at all; the
/// broker answers AWS's `AccessDenied` otherwise.
#[derive(Debug, Clone, Default)]
pub struct MfaMembers {
    pub serial: Option<MfaSerial>,
    pub code: Option<TokenCode>,
}

/// `GetSessionToken`.
#[derive(Debug, Clone)]
pub struct GetSessionToken {
    pub duration: Option<SessionDuration>,
    pub mfa: MfaMembers,
}

/// `AssumeRole`.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    pub role_arn: RoleArn,
    pub session_name: RoleSessionName,
    pub duration: Option<SessionDuration>,
    pub mfa: MfaMembers,
    /// A session policy (JSON), if any.
    pub policy: Option<String>,
}

/// `Authorize`: a resource server asks about a client's session.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub subject: super::possession::Subject,
    /// Any IAM action name (the service is the resource server's).
    pub action: String,
    pub resource: String,
    pub context: Vec<ContextEntry>,
}

// ---------------------------------------------------------------- users and keys

/// A call about a user, or about the caller when no user is named: `GetUser`,
/// `CreateAccessKey`, `ListAccessKeys`, `ListMfaDevices`, `ResetMfaLockout`.
#[derive(Debug, Clone, Default)]
pub struct ForUser {
    pub user_name: Option<UserName>,
}

/// `CreateUser`.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub user_name: UserName,
    pub path: IamPath,
}

/// `ListUsers`.
#[derive(Debug, Clone)]
pub struct ListUsers {
    pub path_prefix: PathPrefix,
    pub marker: Option<String>,
    pub max_items: MaxItems,
}

/// `DeleteUser`.
#[derive(Debug, Clone)]
pub struct DeleteUser {
    pub user_name: UserName,
}

/// `UpdateAccessKey`.
#[derive(Debug, Clone)]
pub struct UpdateAccessKey {
    pub user_name: Option<UserName>,
    pub access_key_id: AccessKeyId,
    pub status: KeyStatus,
}

/// `DeleteAccessKey`.
#[derive(Debug, Clone)]
pub struct DeleteAccessKey {
    pub user_name: Option<UserName>,
    pub access_key_id: AccessKeyId,
}

// ---------------------------------------------------------------- MFA devices

/// `CreateVirtualMfaDevice`.
#[derive(Debug, Clone)]
pub struct CreateVirtualMfaDevice {
    pub name: VirtualMfaDeviceName,
    pub path: IamPath,
}

/// `EnableMfaDevice` and `ResyncMfaDevice`: two consecutive codes of a device. No user name
/// means the caller (how root enables its own device).
#[derive(Debug, Clone)]
pub struct BindMfaDevice {
    pub user_name: Option<UserName>,
    pub serial: MfaSerial,
    pub code1: TokenCode,
    pub code2: TokenCode,
}

/// `DeactivateMfaDevice` and `GetMfaDevice`: a device of a user (or of the caller).
#[derive(Debug, Clone)]
pub struct UserDevice {
    pub user_name: Option<UserName>,
    pub serial: MfaSerial,
}

/// `DeleteVirtualMfaDevice`.
#[derive(Debug, Clone)]
pub struct DeleteVirtualMfaDevice {
    pub serial: MfaSerial,
}

/// `ListVirtualMfaDevices`.
#[derive(Debug, Clone)]
pub struct ListVirtualMfaDevices {
    pub assignment: Assignment,
}

/// `ImportHardwareMfaDevices`: a vendor seed file (see `crate::mfa::import`).
#[derive(Clone)]
pub struct ImportHardwareMfaDevices {
    pub seed_file: Zeroizing<String>,
}

impl std::fmt::Debug for ImportHardwareMfaDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportHardwareMfaDevices(<redacted>)")
    }
}

// ---------------------------------------------------------------- groups and roles

/// `CreateGroup`.
#[derive(Debug, Clone)]
pub struct CreateGroup {
    pub group_name: GroupName,
    pub path: IamPath,
}

/// `GetGroup` and `DeleteGroup`.
#[derive(Debug, Clone)]
pub struct ForGroup {
    pub group_name: GroupName,
}

/// `AddUserToGroup` and `RemoveUserFromGroup`.
#[derive(Debug, Clone)]
pub struct GroupMembership {
    pub group_name: GroupName,
    pub user_name: UserName,
}

/// `CreateRole`.
#[derive(Debug, Clone)]
pub struct CreateRole {
    pub role_name: RoleName,
    pub trust_policy: String,
    pub max_session_duration: SessionDuration,
    pub path: IamPath,
    pub description: String,
}

/// `GetRole` and `DeleteRole`.
#[derive(Debug, Clone)]
pub struct ForRole {
    pub role_name: RoleName,
}

/// `UpdateAssumeRolePolicy`.
#[derive(Debug, Clone)]
pub struct UpdateAssumeRolePolicy {
    pub role_name: RoleName,
    pub document: String,
}

/// Whose sessions `RevokeSessions` ends: exactly one user or role.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    User(UserName),
    Role(RoleName),
}

/// `RevokeSessions`.
#[derive(Debug, Clone)]
pub struct RevokeSessions {
    pub target: RevokeTarget,
    pub issued_before: Option<OffsetDateTime>,
}

// ---------------------------------------------------------------- policies

/// A user, group or role named in a policy call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalName {
    User(UserName),
    Group(GroupName),
    Role(RoleName),
}

impl PrincipalName {
    pub fn kind(&self) -> PrincipalKind {
        match self {
            Self::User(_) => PrincipalKind::User,
            Self::Group(_) => PrincipalKind::Group,
            Self::Role(_) => PrincipalKind::Role,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::User(n) => n.as_str(),
            Self::Group(n) => n.as_str(),
            Self::Role(n) => n.as_str(),
        }
    }
}

/// `CreatePolicy`.
#[derive(Debug, Clone)]
pub struct CreatePolicy {
    pub policy_name: PolicyName,
    pub document: String,
    pub path: IamPath,
    pub description: String,
}

/// `GetPolicy` and `DeletePolicy`.
#[derive(Debug, Clone)]
pub struct ForPolicy {
    pub policy_arn: PolicyArn,
}

/// Which managed policies `ListPolicies` lists (AWS's `scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyScope {
    All,
    Aws,
    Local,
}

/// `ListPolicies`.
#[derive(Debug, Clone)]
pub struct ListPolicies {
    pub scope: PolicyScope,
    pub only_attached: bool,
    pub path_prefix: PathPrefix,
}

/// `Attach{User,Group,Role}Policy` and `Detach…Policy`.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub principal: PrincipalName,
    pub policy_arn: PolicyArn,
}

/// `Put{User,Group,Role}Policy`.
#[derive(Debug, Clone)]
pub struct PutInlinePolicy {
    pub principal: PrincipalName,
    pub policy_name: PolicyName,
    pub document: String,
}

/// `Get{User,Group,Role}Policy` and `Delete…Policy`.
#[derive(Debug, Clone)]
pub struct InlinePolicy {
    pub principal: PrincipalName,
    pub policy_name: PolicyName,
}

/// `ListAttachedUserPolicies`.
#[derive(Debug, Clone)]
pub struct ListAttachedPolicies {
    pub principal: PrincipalName,
}

/// `SimulateCustomPolicy` (no `policy_source`) and `SimulatePrincipalPolicy`.
#[derive(Debug, Clone)]
pub struct Simulate {
    /// The user, group or role whose policies are simulated.
    pub policy_source: Option<Arn>,
    pub policy_inputs: Vec<String>,
    /// At least one action name.
    pub action_names: Vec<String>,
    /// Empty means `*`.
    pub resource_arns: Vec<String>,
    pub context: Vec<ContextEntry>,
}

/// How a door parses AWS's members into the newtypes above, so every door refuses the same
/// values with the same words. An empty required member is AWS's "Member must not be null";
/// an empty optional one is absent.
pub mod members {
    use super::{BindMfaDevice, MfaMembers, PolicyScope, PrincipalName};
    use crate::domain::{Assignment, PrincipalKind};
    use crate::ids::{
        GroupName, IamPath, MfaSerial, PathPrefix, PolicyArn, PolicyName, RoleName, TokenCode,
        UserName, ValidationError, optional, required,
    };

    /// A parsed member, or what is wrong with it.
    pub type Parsed<T> = Result<T, ValidationError>;

    pub fn user(v: &str) -> Parsed<UserName> {
        UserName::parse(required("userName", v)?)
    }

    pub fn some_user(v: Option<&str>) -> Parsed<Option<UserName>> {
        optional(v, UserName::parse)
    }

    pub fn group(v: &str) -> Parsed<GroupName> {
        GroupName::parse(required("groupName", v)?)
    }

    pub fn role(v: &str) -> Parsed<RoleName> {
        RoleName::parse(required("roleName", v)?)
    }

    pub fn policy_name(v: &str) -> Parsed<PolicyName> {
        PolicyName::parse(required("policyName", v)?)
    }

    pub fn policy_arn(v: &str) -> Parsed<PolicyArn> {
        PolicyArn::parse("policyArn", required("policyArn", v)?)
    }

    pub fn serial(v: &str) -> Parsed<MfaSerial> {
        MfaSerial::parse(v)
    }

    /// An absent path is `/`; a given one must be valid (an empty one is not).
    pub fn path(v: Option<&str>) -> Parsed<IamPath> {
        v.map_or_else(|| Ok(IamPath::root()), |p| IamPath::parse("path", p))
    }

    pub fn path_prefix(v: Option<&str>) -> Parsed<PathPrefix> {
        v.map_or_else(|| Ok(PathPrefix::root()), PathPrefix::parse)
    }

    pub fn document(field: &'static str, v: &str) -> Parsed<String> {
        required(field, v).map(str::to_owned)
    }

    pub fn principal(kind: PrincipalKind, v: &str) -> Parsed<PrincipalName> {
        Ok(match kind {
            PrincipalKind::User => PrincipalName::User(user(v)?),
            PrincipalKind::Group => PrincipalName::Group(group(v)?),
            PrincipalKind::Role => PrincipalName::Role(role(v)?),
        })
    }

    /// The serial and code of an STS call: each optional, each checked when given.
    pub fn mfa(serial: Option<&str>, code: Option<&str>) -> Parsed<MfaMembers> {
        Ok(MfaMembers {
            serial: optional(serial, MfaSerial::parse)?,
            code: optional(code, |c| TokenCode::parse("tokenCode", c))?,
        })
    }

    /// Enable and resync: `[userName, serialNumber, authenticationCode1, authenticationCode2]`.
    pub fn bind([user_name, serial_number, code1, code2]: [&str; 4]) -> Parsed<BindMfaDevice> {
        Ok(BindMfaDevice {
            user_name: some_user(Some(user_name))?,
            serial: serial(serial_number)?,
            code1: TokenCode::parse("authenticationCode1", code1)?,
            code2: TokenCode::parse("authenticationCode2", code2)?,
        })
    }

    pub fn required_list(field: &'static str, v: &[String]) -> Parsed<Vec<String>> {
        if v.is_empty() {
            Err(ValidationError::missing(field))
        } else {
            Ok(v.to_vec())
        }
    }

    /// `assignmentStatus` of `ListVirtualMfaDevices` (absent or empty: `Any`).
    pub fn assignment(v: Option<&str>) -> Parsed<Assignment> {
        match v.unwrap_or("Any") {
            "Assigned" => Ok(Assignment::Assigned),
            "Unassigned" => Ok(Assignment::Unassigned),
            "Any" | "" => Ok(Assignment::Any),
            other => Err(ValidationError::new(
                "assignmentStatus",
                other,
                "Member must satisfy enum value set: [Assigned, Unassigned, Any]",
            )),
        }
    }

    /// `scope` of `ListPolicies` (absent: `All`).
    pub fn scope(v: Option<&str>) -> Parsed<PolicyScope> {
        match v.unwrap_or("All") {
            "All" => Ok(PolicyScope::All),
            "AWS" => Ok(PolicyScope::Aws),
            "Local" => Ok(PolicyScope::Local),
            other => Err(ValidationError::new(
                "scope",
                other,
                "Member must satisfy enum value set: [All, AWS, Local]",
            )),
        }
    }
}
