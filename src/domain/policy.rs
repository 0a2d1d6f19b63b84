//! Managed and inline policies as the store keeps them.

use crate::ids::{IamPath, PolicyName};
use time::OffsetDateTime;

/// A customer-managed policy (the broker keeps one version, `v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub id: String,
    pub arn: String,
    pub name: PolicyName,
    pub path: IamPath,
    pub document: String,
    pub description: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// How many principals it is attached to (filled by listings).
    pub attachment_count: i64,
}

/// One policy document that applies to a principal, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// The managed policy ARN, or the inline policy's name.
    pub source_id: String,
    /// `user`, `group`, `role` for inline policies; `user-managed` for managed ones.
    pub source_type: &'static str,
    pub document: String,
}
