//! The domain: the values the broker works with, the rules IAM puts on them, and the contract a
//! persistence backend implements.
//!
//! - Values: users, keys, roles, groups, policies ([`identity`], [`policy`]), MFA devices
//!   ([`mfa`]), audit records ([`audit`]), report rows ([`report`]).
//! - The store contract ([`store`]): the [`Store`] traits are what a backend implements, and
//!   nothing else; each operation says what it must do atomically. [`StoreRules`] is what the
//!   broker calls: IAM's rules (quotas, delete conflicts, the MFA lockout gate and replay guard)
//!   written once over those operations, so every backend enforces them the same way.
//! - The rules and AWS's wording for their refusals ([`rules`], [`mfa`]), testable without a store.
//!
//! Nothing here names a database: `store::sqlite` is one backend of this contract.

pub mod audit;
pub mod identity;
pub mod mfa;
pub mod policy;
pub mod report;
pub mod rules;
pub mod store;

pub use audit::{AuditEvent, Outcome};
pub use identity::{
    AccessKeyRecord, Group, Owner, OwnerRef, Page, PrincipalKind, Role, SigningKeyRecord, User,
};
pub use mfa::{
    Assignment, BindOutcome, CodeVerdict, DeviceKind, LockoutState, MfaAttempt, MfaAudit, MfaCheck,
    MfaDevice, MfaRefusal,
};
pub use policy::{EffectivePolicy, ManagedPolicy};
pub use report::{AccountCounts, CredentialRow};
pub use rules::{Conflict, Missing, Quota, Taken};
pub use store::{
    Capped, Deletion, Dependents, MfaStore, MfaTx, PolicyStore, SessionStore, Store, StoreError,
    StoreRules,
};
