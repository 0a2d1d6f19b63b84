//! The IAM action each RPC stands for, as policies name it (`iam:CreateUser`,
//! `iam:EnableMFADevice`, `sts:GetSessionToken`). Derived from the gRPC path so that a new RPC
//! gets its action without a table to forget to update.

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

/// The IAM action for a gRPC path, e.g. `/iam.v1.IamService/EnableMfaDevice` → `iam:EnableMFADevice`.
pub fn action_for_path(path: &str) -> Option<String> {
    let scope = ServiceScope::of_path(path)?;
    let method = path.rsplit('/').next()?;
    if method.is_empty() {
        return None;
    }
    Some(format!(
        "{}:{}",
        scope.signing_name(),
        method.replace("Mfa", "MFA")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_aws_action_names() {
        assert_eq!(
            action_for_path("/iam.v1.IamService/CreateUser").as_deref(),
            Some("iam:CreateUser")
        );
        assert_eq!(
            action_for_path("/iam.v1.IamService/CreateVirtualMfaDevice").as_deref(),
            Some("iam:CreateVirtualMFADevice")
        );
        assert_eq!(
            action_for_path("/sts.v1.SecurityTokenService/GetSessionToken").as_deref(),
            Some("sts:GetSessionToken")
        );
        assert_eq!(
            action_for_path("/authz.v1.AuthorizationService/Authorize").as_deref(),
            Some("sts:Authorize")
        );
        assert_eq!(action_for_path("/grpc.health.v1.Health/Check"), None);
    }
}
