//! The identity lookups every authenticated call makes (the access key behind a signature, the
//! user or role behind a session token), kept in memory so that a call does not queue for the
//! single SQLite connection behind the writers (the audit writer, the MFA replay guard).
//!
//! Each kind is a [`GenerationCache`] (the crate's one cache rule, `src/cache.rs`): an entry never
//! outlives a change to what it describes. Every broker method that changes or removes a cached
//! kind of record (`DeleteUser`, `UpdateAccessKey`, `DeleteAccessKey`, `DeleteRole`,
//! `UpdateAssumeRolePolicy`, dropping root's keys) makes its store write through
//! `Broker::blocking_identity_change`, which then calls [`IdentityCache::invalidate`]; a read that
//! raced such a write is not remembered. Misses are not remembered either (a key or user created
//! later is found at once).

use crate::cache::GenerationCache;
use crate::domain::{AccessKeyRecord, Role, User};
use std::sync::Arc;

/// Entries per kind.
const MAX_ENTRIES: usize = 65_536;

/// Access keys by id, users and roles by their unique id.
pub(super) struct IdentityCache {
    keys: GenerationCache<String, Arc<AccessKeyRecord>>,
    users: GenerationCache<String, Arc<User>>,
    roles: GenerationCache<String, Arc<Role>>,
}

impl Default for IdentityCache {
    fn default() -> Self {
        Self {
            keys: GenerationCache::new(MAX_ENTRIES),
            users: GenerationCache::new(MAX_ENTRIES),
            roles: GenerationCache::new(MAX_ENTRIES),
        }
    }
}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityCache")
    }
}

/// Which cache of [`IdentityCache`] a record type lives in.
pub(super) trait Cached: Sized {
    fn cache(c: &IdentityCache) -> &GenerationCache<String, Arc<Self>>;
}

impl Cached for AccessKeyRecord {
    fn cache(c: &IdentityCache) -> &GenerationCache<String, Arc<Self>> {
        &c.keys
    }
}

impl Cached for User {
    fn cache(c: &IdentityCache) -> &GenerationCache<String, Arc<Self>> {
        &c.users
    }
}

impl Cached for Role {
    fn cache(c: &IdentityCache) -> &GenerationCache<String, Arc<Self>> {
        &c.roles
    }
}

impl IdentityCache {
    /// The cache holding `V`.
    pub fn of<V: Cached>(&self) -> &GenerationCache<String, Arc<V>> {
        V::cache(self)
    }

    /// Forgets every kind (after any change to users, access keys or roles).
    pub fn invalidate(&self) {
        self.keys.invalidate();
        self.users.invalidate();
        self.roles.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, name: &str) -> Arc<User> {
        Arc::new(User {
            id: id.into(),
            name: crate::ids::UserName::parse(name).unwrap(),
            path: crate::ids::IamPath::root(),
            created: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn invalidate_refuses_a_racing_read_of_every_kind() {
        let c = IdentityCache::default();
        let read_at = c.of::<User>().generation();
        let role_read_at = c.of::<Role>().generation();
        c.invalidate(); // a DeleteUser committed while the read was in flight
        assert!(
            !c.of::<User>()
                .put(read_at, "AIDA1".into(), user("AIDA1", "alice"))
        );
        assert!(c.of::<User>().get("AIDA1").is_none());
        assert_ne!(c.of::<Role>().generation(), role_read_at);
        let read_at = c.of::<User>().generation();
        assert!(
            c.of::<User>()
                .put(read_at, "AIDA1".into(), user("AIDA1", "alice"))
        );
        c.invalidate();
        assert!(c.of::<User>().get("AIDA1").is_none());
    }
}
