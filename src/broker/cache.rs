//! The identity lookups every authenticated call makes (the access key behind a signature, the
//! user or role behind a session token), kept in memory so that a call does not queue for the
//! single SQLite connection behind the writers (the audit writer, the MFA replay guard).
//!
//! Correctness rule: an entry never outlives a change to what it describes. Every broker method
//! that changes or removes a cached kind of record (`DeleteUser`, `UpdateAccessKey`,
//! `DeleteAccessKey`, `DeleteRole`, `UpdateAssumeRolePolicy`, dropping root's keys) makes its store
//! write through `Broker::blocking_identity_change`, which then calls
//! [`IdentityCache::invalidate`]: the cache is emptied and its generation moves on. A reader notes the generation before it reads the store and stores what it read
//! only if the generation has not moved since, so a read that raced a change cannot put the old
//! record back. Misses are not remembered (a key or user created later is found at once). Each
//! map is bounded; when one is full it is emptied rather than grown.

use crate::domain::{AccessKeyRecord, Role, User};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Entries per kind before the map is emptied.
const MAX_ENTRIES: usize = 65_536;

#[derive(Default)]
pub(super) struct Maps {
    generation: u64,
    keys: HashMap<String, Arc<AccessKeyRecord>>,
    users: HashMap<String, Arc<User>>,
    roles: HashMap<String, Arc<Role>>,
}

/// Access keys by id, users and roles by their unique id.
#[derive(Default)]
pub(super) struct IdentityCache {
    maps: RwLock<Maps>,
}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityCache")
    }
}

/// Which map of [`Maps`] a lookup uses.
pub(super) trait Cached: Sized {
    fn map(m: &Maps) -> &HashMap<String, Arc<Self>>;
    fn map_mut(m: &mut Maps) -> &mut HashMap<String, Arc<Self>>;
}

impl Cached for AccessKeyRecord {
    fn map(m: &Maps) -> &HashMap<String, Arc<Self>> {
        &m.keys
    }
    fn map_mut(m: &mut Maps) -> &mut HashMap<String, Arc<Self>> {
        &mut m.keys
    }
}

impl Cached for User {
    fn map(m: &Maps) -> &HashMap<String, Arc<Self>> {
        &m.users
    }
    fn map_mut(m: &mut Maps) -> &mut HashMap<String, Arc<Self>> {
        &mut m.users
    }
}

impl Cached for Role {
    fn map(m: &Maps) -> &HashMap<String, Arc<Self>> {
        &m.roles
    }
    fn map_mut(m: &mut Maps) -> &mut HashMap<String, Arc<Self>> {
        &mut m.roles
    }
}

impl IdentityCache {
    /// The current generation, to be passed to [`IdentityCache::put`] after a store read.
    pub fn generation(&self) -> u64 {
        self.maps.read().map_or(u64::MAX, |m| m.generation)
    }

    pub fn get<V: Cached>(&self, id: &str) -> Option<Arc<V>> {
        let m = self.maps.read().ok()?;
        V::map(&m).get(id).cloned()
    }

    /// Remembers `value` read from the store at `generation`, unless something changed since.
    pub fn put<V: Cached>(&self, generation: u64, id: &str, value: Arc<V>) {
        let Ok(mut m) = self.maps.write() else { return };
        if m.generation != generation {
            return;
        }
        let map = V::map_mut(&mut m);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(id.to_owned(), value);
    }

    /// Forgets everything (after any change to users, access keys or roles).
    pub fn invalidate(&self) {
        if let Ok(mut m) = self.maps.write() {
            m.generation = m.generation.wrapping_add(1);
            m.keys.clear();
            m.users.clear();
            m.roles.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::User;

    fn user(id: &str, name: &str) -> Arc<User> {
        Arc::new(User {
            id: id.into(),
            name: crate::ids::UserName::parse(name).unwrap(),
            path: crate::ids::IamPath::root(),
            created: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_remembered() {
        let c = IdentityCache::default();
        let g = c.generation();
        c.invalidate(); // a DeleteUser committed while the read was in flight
        c.put(g, "AIDA1", user("AIDA1", "alice"));
        assert!(c.get::<User>("AIDA1").is_none());
        let g = c.generation();
        c.put(g, "AIDA1", user("AIDA1", "alice"));
        assert_eq!(c.get::<User>("AIDA1").unwrap().name.as_str(), "alice");
    }

    #[test]
    fn invalidate_forgets_every_kind() {
        let c = IdentityCache::default();
        c.put(c.generation(), "AIDA1", user("AIDA1", "alice"));
        c.invalidate();
        assert!(c.get::<User>("AIDA1").is_none());
    }

    #[test]
    fn a_full_map_is_emptied_not_grown() {
        let c = IdentityCache::default();
        let g = c.generation();
        for i in 0..MAX_ENTRIES {
            c.put(g, &format!("u{i}"), user("x", "x"));
        }
        c.put(g, "last", user("AIDA2", "bob"));
        assert!(c.get::<User>("u0").is_none());
        assert_eq!(c.get::<User>("last").unwrap().name.as_str(), "bob");
    }
}
