//! Principals and what they own: users, the root user, roles, groups, access keys, signing keys.

use crate::ids::{AccessKeyId, GroupName, IamPath, KeyStatus, RoleName, UserName};
use time::OffsetDateTime;

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The unique id (`AIDA...`).
    pub id: String,
    pub name: UserName,
    pub path: IamPath,
    pub created: OffsetDateTime,
}

/// Who a long-term access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Root,
    User(User),
}

impl Owner {
    /// The identity string that secrets of this owner are bound to.
    pub fn binding_id(&self) -> &str {
        match self {
            Self::Root => "root",
            Self::User(u) => &u.id,
        }
    }

    /// Whether this is the principal `r` refers to.
    pub fn is(&self, r: &OwnerRef) -> bool {
        match (self, r) {
            (Self::Root, OwnerRef::Root) => true,
            (Self::User(u), OwnerRef::User(id)) => &u.id == id,
            _ => false,
        }
    }
}

/// A reference to a principal that can own keys, without its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    Root,
    /// The user's unique id.
    User(String),
}

/// A long-term access key as stored: the secret is an AEAD blob.
#[derive(Debug, Clone)]
pub struct AccessKeyRecord {
    pub id: AccessKeyId,
    pub owner: Owner,
    pub secret_blob: Vec<u8>,
    pub status: KeyStatus,
    pub created: OffsetDateTime,
}

/// One page of a listing; `next_marker` is set when more items follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// A session-token signing key as stored.
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_blob: Vec<u8>,
    pub created: OffsetDateTime,
    pub retired: Option<OffsetDateTime>,
    pub publish_until: Option<OffsetDateTime>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The unique id (`AROA...`).
    pub id: String,
    pub name: RoleName,
    pub path: IamPath,
    pub trust_policy: String,
    pub max_session_duration: i64,
    pub description: String,
    pub created: OffsetDateTime,
}

/// What a policy can be attached to or embedded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Group,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Role => "role",
        }
    }
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: GroupName,
    pub path: IamPath,
    pub created: OffsetDateTime,
}
