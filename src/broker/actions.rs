//! The one table from RPC to IAM action and resource.
//!
//! Each row says which service an RPC belongs to, the IAM action policies name it by
//! (`iam:CreateUser`, `iam:EnableMFADevice`, `sts:GetSessionToken`), and what kind of resource
//! it is authorized on. Authorization ([`super::Broker`]'s `authorize` takes an [`Rpc`]) and the
//! audit trail (which names the action of the path it served, [`action_for_path`]) both read the
//! action from here, so the two cannot drift; `authorize` also refuses, closed, a resource of
//! another kind than the row says. [`Resource`] is the one place IAM resource ARNs are spelled.

use crate::ids::{AccountId, IamPath};

/// Which signing scope (and IAM service prefix) a gRPC service belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceScope {
    Sts,
    Iam,
}

impl ServiceScope {
    /// The SigV4 service name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Iam => "iam",
        }
    }

    /// The scope of a gRPC path such as `/iam.v1.IamService/CreateUser`.
    pub fn of_path(path: &str) -> Option<Self> {
        let service = path.strip_prefix('/')?.split('/').next()?;
        if service.starts_with("iam.") {
            Some(Self::Iam)
        } else if service.starts_with("sts.") || service.starts_with("authz.") {
            Some(Self::Sts)
        } else {
            None
        }
    }
}

/// The broker's services, by their full gRPC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sts,
    Iam,
    Authz,
}

impl Service {
    pub fn grpc_name(self) -> &'static str {
        match self {
            Self::Sts => "sts.v1.SecurityTokenService",
            Self::Iam => "iam.v1.IamService",
            Self::Authz => "authz.v1.AuthorizationService",
        }
    }
}

/// What kind of resource an RPC is authorized on, and so how its ARN is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// No resource: `*`.
    Any,
    /// The user the call is about (the caller itself when none is named):
    /// `arn:aws:iam::ACCOUNT:user{path}{name}`.
    User,
    /// Every user under a path prefix: `arn:aws:iam::ACCOUNT:user{prefix}*`.
    UsersUnder,
    /// `arn:aws:iam::ACCOUNT:group{path}{name}`.
    Group,
    /// `arn:aws:iam::ACCOUNT:role{path}{name}`.
    Role,
    /// A user or a role (`RevokeSessions`).
    UserOrRole,
    /// `arn:aws:iam::ACCOUNT:policy{path}{name}`.
    Policy,
    /// `arn:aws:iam::ACCOUNT:mfa{path}{name}`, a virtual device's serial.
    MfaDevice,
    /// Every MFA device of the account: `arn:aws:iam::ACCOUNT:mfa/*`.
    MfaDevices,
    /// The user, group or role named by `policySourceArn`, as given.
    PolicySource,
}

impl ResourceKind {
    /// The IAM resource type in the ARN, for the kinds that are one named entity.
    fn resource_type(self) -> &'static str {
        match self {
            Self::User | Self::UsersUnder => "user",
            Self::Group => "group",
            Self::Role => "role",
            Self::Policy => "policy",
            Self::MfaDevice | Self::MfaDevices => "mfa",
            Self::Any | Self::UserOrRole | Self::PolicySource => "",
        }
    }

    /// Whether a row of this kind accepts a resource of kind `given`.
    fn admits(self, given: Self) -> bool {
        self == given || (self == Self::UserOrRole && matches!(given, Self::User | Self::Role))
    }
}

/// A resource an action is authorized on: its kind and ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    kind: ResourceKind,
    arn: String,
}

impl Resource {
    /// `*`.
    pub fn any() -> Self {
        Self {
            kind: ResourceKind::Any,
            arn: "*".to_owned(),
        }
    }

    /// A named user, group, role, policy or MFA device: `arn:aws:iam::ACCOUNT:{type}{path}{name}`.
    pub fn named(kind: ResourceKind, account: &AccountId, path: &IamPath, name: &str) -> Self {
        Self {
            kind,
            arn: format!(
                "arn:aws:iam::{account}:{}{}{name}",
                kind.resource_type(),
                path.as_str()
            ),
        }
    }

    /// Everything of a type under a path prefix: `arn:aws:iam::ACCOUNT:{type}{prefix}*`.
    pub fn all_under(kind: ResourceKind, account: &AccountId, prefix: &str) -> Self {
        Self {
            kind,
            arn: format!("arn:aws:iam::{account}:{}{prefix}*", kind.resource_type()),
        }
    }

    /// A resource whose ARN is already known (given by the caller, or the caller's own).
    pub fn known(kind: ResourceKind, arn: impl Into<String>) -> Self {
        Self {
            kind,
            arn: arn.into(),
        }
    }

    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    pub fn into_arn(self) -> String {
        self.arn
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcSpec {
    pub service: Service,
    /// The gRPC method name.
    pub method: &'static str,
    /// The IAM action, as policies name it.
    pub action: &'static str,
    pub resource: ResourceKind,
}

macro_rules! rpc_table {
    ($($service:ident $method:ident $action:literal $resource:ident;)*) => {
        /// Every RPC the broker serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rpc {
            $($method,)*
        }

        impl Rpc {
            /// Every row, in the table's order.
            pub const ALL: &'static [Rpc] = &[$(Rpc::$method,)*];

            /// This RPC's row.
            pub const fn spec(self) -> RpcSpec {
                match self {
                    $(Rpc::$method => RpcSpec {
                        service: Service::$service,
                        method: stringify!($method),
                        action: $action,
                        resource: ResourceKind::$resource,
                    },)*
                }
            }
        }
    };
}

rpc_table! {
    Sts   GetSessionToken           "sts:GetSessionToken"            Any;
    Sts   AssumeRole                "sts:AssumeRole"                 Role;
    Sts   GetCallerIdentity         "sts:GetCallerIdentity"          Any;
    Authz Authorize                 "sts:Authorize"                  Any;
    Iam   CreateUser                "iam:CreateUser"                 User;
    Iam   GetUser                   "iam:GetUser"                    User;
    Iam   ListUsers                 "iam:ListUsers"                  UsersUnder;
    Iam   DeleteUser                "iam:DeleteUser"                 User;
    Iam   CreateAccessKey           "iam:CreateAccessKey"            User;
    Iam   ListAccessKeys            "iam:ListAccessKeys"             User;
    Iam   UpdateAccessKey           "iam:UpdateAccessKey"            User;
    Iam   DeleteAccessKey           "iam:DeleteAccessKey"            User;
    Iam   CreateVirtualMfaDevice    "iam:CreateVirtualMFADevice"     MfaDevice;
    Iam   EnableMfaDevice           "iam:EnableMFADevice"            User;
    Iam   ResyncMfaDevice           "iam:ResyncMFADevice"            User;
    Iam   DeactivateMfaDevice       "iam:DeactivateMFADevice"        User;
    Iam   DeleteVirtualMfaDevice    "iam:DeleteVirtualMFADevice"     MfaDevice;
    Iam   ListMfaDevices            "iam:ListMFADevices"             User;
    Iam   ListVirtualMfaDevices     "iam:ListVirtualMFADevices"      MfaDevices;
    Iam   GetMfaDevice              "iam:GetMFADevice"               User;
    Iam   ImportHardwareMfaDevices  "iam:ImportHardwareMFADevices"   MfaDevices;
    Iam   ResetMfaLockout           "iam:ResetMFALockout"            User;
    Iam   CreateGroup               "iam:CreateGroup"                Group;
    Iam   GetGroup                  "iam:GetGroup"                   Group;
    Iam   DeleteGroup               "iam:DeleteGroup"                Group;
    Iam   AddUserToGroup            "iam:AddUserToGroup"             Group;
    Iam   RemoveUserFromGroup       "iam:RemoveUserFromGroup"        Group;
    Iam   CreateRole                "iam:CreateRole"                 Role;
    Iam   GetRole                   "iam:GetRole"                    Role;
    Iam   DeleteRole                "iam:DeleteRole"                 Role;
    Iam   UpdateAssumeRolePolicy    "iam:UpdateAssumeRolePolicy"     Role;
    Iam   CreatePolicy              "iam:CreatePolicy"               Policy;
    Iam   GetPolicy                 "iam:GetPolicy"                  Policy;
    Iam   DeletePolicy              "iam:DeletePolicy"               Policy;
    Iam   ListPolicies              "iam:ListPolicies"               Any;
    Iam   AttachUserPolicy          "iam:AttachUserPolicy"           User;
    Iam   AttachGroupPolicy         "iam:AttachGroupPolicy"          Group;
    Iam   AttachRolePolicy          "iam:AttachRolePolicy"           Role;
    Iam   DetachUserPolicy          "iam:DetachUserPolicy"           User;
    Iam   DetachGroupPolicy         "iam:DetachGroupPolicy"          Group;
    Iam   DetachRolePolicy          "iam:DetachRolePolicy"           Role;
    Iam   ListAttachedUserPolicies  "iam:ListAttachedUserPolicies"   User;
    Iam   PutUserPolicy             "iam:PutUserPolicy"              User;
    Iam   PutGroupPolicy            "iam:PutGroupPolicy"             Group;
    Iam   PutRolePolicy             "iam:PutRolePolicy"              Role;
    Iam   GetUserPolicy             "iam:GetUserPolicy"              User;
    Iam   GetGroupPolicy            "iam:GetGroupPolicy"             Group;
    Iam   GetRolePolicy             "iam:GetRolePolicy"              Role;
    Iam   DeleteUserPolicy          "iam:DeleteUserPolicy"           User;
    Iam   DeleteGroupPolicy         "iam:DeleteGroupPolicy"          Group;
    Iam   DeleteRolePolicy          "iam:DeleteRolePolicy"           Role;
    Iam   RevokeSessions            "iam:RevokeSessions"             UserOrRole;
    Iam   RotateSigningKey          "iam:RotateSigningKey"           Any;
    Iam   GetAccountSummary         "iam:GetAccountSummary"          Any;
    Iam   GenerateCredentialReport  "iam:GenerateCredentialReport"   Any;
    Iam   GetCredentialReport       "iam:GetCredentialReport"        Any;
    Iam   SimulateCustomPolicy      "iam:SimulateCustomPolicy"       Any;
    Iam   SimulatePrincipalPolicy   "iam:SimulatePrincipalPolicy"    PolicySource;
}

/// What a per-principal policy RPC does: the verb of `{Verb}{User,Group,Role}Policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVerb {
    Attach,
    Detach,
    Put,
    Get,
    Delete,
}

impl Rpc {
    /// The IAM action, e.g. `iam:CreateUser`.
    pub const fn action(self) -> &'static str {
        self.spec().action
    }

    /// The RPC a gRPC path names, e.g. `/iam.v1.IamService/CreateUser`.
    pub fn from_path(path: &str) -> Option<Self> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        Self::ALL.iter().copied().find(|r| {
            let s = r.spec();
            s.method == method && s.service.grpc_name() == service
        })
    }

    /// `AddUserToGroup` when `add`, else `RemoveUserFromGroup`.
    pub fn group_membership(add: bool) -> Self {
        if add {
            Self::AddUserToGroup
        } else {
            Self::RemoveUserFromGroup
        }
    }

    /// `{verb}{User,Group,Role}Policy` for a principal of `kind`.
    pub fn principal_policy(verb: PolicyVerb, kind: crate::domain::PrincipalKind) -> Self {
        use crate::domain::PrincipalKind::{Group, Role, User};
        let [user, group, role] = match verb {
            PolicyVerb::Attach => [
                Self::AttachUserPolicy,
                Self::AttachGroupPolicy,
                Self::AttachRolePolicy,
            ],
            PolicyVerb::Detach => [
                Self::DetachUserPolicy,
                Self::DetachGroupPolicy,
                Self::DetachRolePolicy,
            ],
            PolicyVerb::Put => [
                Self::PutUserPolicy,
                Self::PutGroupPolicy,
                Self::PutRolePolicy,
            ],
            PolicyVerb::Get => [
                Self::GetUserPolicy,
                Self::GetGroupPolicy,
                Self::GetRolePolicy,
            ],
            PolicyVerb::Delete => [
                Self::DeleteUserPolicy,
                Self::DeleteGroupPolicy,
                Self::DeleteRolePolicy,
            ],
        };
        match kind {
            User => user,
            Group => group,
            Role => role,
        }
    }

    /// Whether `resource` is of the kind this RPC is authorized on.
    pub fn admits(self, resource: &Resource) -> bool {
        self.spec().resource.admits(resource.kind)
    }
}

/// The IAM action for a gRPC path, e.g. `/iam.v1.IamService/EnableMfaDevice` → `iam:EnableMFADevice`.
pub fn action_for_path(path: &str) -> Option<String> {
    Rpc::from_path(path).map(|r| r.action().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every method of the broker's proto services, as `(service, method)`.
    fn proto_methods() -> Vec<(String, String)> {
        let set =
            prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut out = Vec::new();
        for file in set.file {
            let package = file.package().to_owned();
            for service in &file.service {
                for method in &service.method {
                    out.push((
                        format!("{package}.{}", service.name()),
                        method.name().to_owned(),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_proto_rpc_has_exactly_one_row_and_every_row_an_rpc() {
        let methods = proto_methods();
        assert!(methods.len() > 50, "the descriptor set lists the services");
        for (service, method) in &methods {
            let rpc = Rpc::from_path(&format!("/{service}/{method}"));
            let rpc = rpc.unwrap_or_else(|| panic!("no table row for {service}/{method}"));
            assert_eq!(rpc.spec().method, method);
        }
        assert_eq!(methods.len(), Rpc::ALL.len(), "a row names no proto RPC");
    }

    #[test]
    fn actions_are_aws_names_in_the_signing_scope_of_their_service() {
        for rpc in Rpc::ALL {
            let s = rpc.spec();
            let path = format!("/{}/{}", s.service.grpc_name(), s.method);
            let scope = ServiceScope::of_path(&path).unwrap();
            // AWS spells MFA in capitals where the proto method says `Mfa`.
            let expected = format!(
                "{}:{}",
                scope.signing_name(),
                s.method.replace("Mfa", "MFA")
            );
            assert_eq!(s.action, expected);
            assert_eq!(action_for_path(&path).as_deref(), Some(s.action));
        }
        assert_eq!(action_for_path("/grpc.health.v1.Health/Check"), None);
        assert_eq!(action_for_path("/iam.v1.IamService/NoSuchCall"), None);
        assert_eq!(action_for_path("/iam.v1.IamService"), None);
    }

    #[test]
    fn per_principal_rpcs_are_found_by_verb_and_kind() {
        use crate::domain::PrincipalKind;
        assert_eq!(
            Rpc::principal_policy(PolicyVerb::Detach, PrincipalKind::Group),
            Rpc::DetachGroupPolicy
        );
        assert_eq!(
            Rpc::principal_policy(PolicyVerb::Put, PrincipalKind::Role),
            Rpc::PutRolePolicy
        );
        for verb in [
            PolicyVerb::Attach,
            PolicyVerb::Detach,
            PolicyVerb::Put,
            PolicyVerb::Get,
            PolicyVerb::Delete,
        ] {
            for (kind, resource) in [
                (PrincipalKind::User, ResourceKind::User),
                (PrincipalKind::Group, ResourceKind::Group),
                (PrincipalKind::Role, ResourceKind::Role),
            ] {
                let rpc = Rpc::principal_policy(verb, kind);
                assert_eq!(rpc.spec().resource, resource, "{rpc:?}");
                assert!(
                    rpc.action().starts_with(&format!("iam:{verb:?}")),
                    "{rpc:?}"
                );
            }
        }
    }

    #[test]
    fn resources_are_spelled_once_and_checked_against_the_row() {
        let a = AccountId::parse("123456789012").unwrap();
        let p = IamPath::parse("path", "/eng/").unwrap();
        let user = Resource::named(ResourceKind::User, &a, &p, "bob");
        assert_eq!(user.arn(), "arn:aws:iam::123456789012:user/eng/bob");
        let role = Resource::named(ResourceKind::Role, &a, &IamPath::root(), "ops");
        assert_eq!(role.arn(), "arn:aws:iam::123456789012:role/ops");
        assert_eq!(
            Resource::all_under(ResourceKind::MfaDevices, &a, "/").arn(),
            "arn:aws:iam::123456789012:mfa/*"
        );
        assert_eq!(
            Resource::all_under(ResourceKind::UsersUnder, &a, "/eng/").arn(),
            "arn:aws:iam::123456789012:user/eng/*"
        );
        assert!(Rpc::CreateUser.admits(&user));
        assert!(!Rpc::CreateUser.admits(&role));
        assert!(!Rpc::CreateUser.admits(&Resource::any()));
        assert!(Rpc::RevokeSessions.admits(&user) && Rpc::RevokeSessions.admits(&role));
        assert!(Rpc::ListPolicies.admits(&Resource::any()));
    }
}
