//! The one rule every in-memory cache of the broker follows (access keys, users and roles;
//! compiled policy sets; verified session tokens): a generation-checked, bounded map.
//!
//! A reader that misses notes the cache's [`Generation`] *before* it reads the source (the store,
//! the key ring), and stores what it read only if the generation has not moved since. Whoever
//! changes the source calls [`GenerationCache::invalidate`] *after* the change is in place, which
//! moves the generation on and empties the map. So a read that raced a change can never put the
//! old value back: either it noted the generation after the invalidation (and so read after the
//! change), or its insert is refused. Misses are not remembered.
//!
//! The map is a `quick_cache` (sharded, S3-FIFO eviction), so the size is bounded and a hit is
//! one shard read-lock and a hash lookup; the generation lock is taken only by the miss path and by
//! invalidation.

use std::hash::Hash;
use std::sync::{PoisonError, RwLock};

/// The generation a reader noted before reading the source; see the module comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a generation is noted to be passed to `put` after the read"]
pub struct Generation(u64);

/// A bounded map whose inserts are refused once an invalidation has happened since the read.
pub struct GenerationCache<K, V> {
    // INVARIANT: `put` inserts while holding this lock for reading and `invalidate` moves it on
    // and empties `entries` while holding it for writing, so no insert of an older generation
    // lands after an invalidation has emptied the map.
    generation: RwLock<u64>,
    entries: quick_cache::sync::Cache<K, V>,
}

impl<K, V> std::fmt::Debug for GenerationCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GenerationCache")
    }
}

impl<K: Eq + Hash, V: Clone> GenerationCache<K, V> {
    /// A cache of about `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            generation: RwLock::new(0),
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// The cached value for `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + quick_cache::Equivalent<K> + ?Sized,
    {
        self.entries.get(key)
    }

    /// The current generation: note it before reading the source, pass it to [`Self::put`].
    pub fn generation(&self) -> Generation {
        Generation(
            *self
                .generation
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Remembers `value`, read from the source after `read_at` was noted, unless the cache was
    /// invalidated since. Returns whether it was stored.
    pub fn put(&self, read_at: Generation, key: K, value: V) -> bool {
        let current = self
            .generation
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if *current != read_at.0 {
            return false;
        }
        self.entries.insert(key, value);
        true
    }

    /// Forgets everything and refuses every insert of a read that started before this call. Call
    /// it after the change to the source is in place.
    pub fn invalidate(&self) {
        let mut g = self
            .generation
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *g = g.wrapping_add(1);
        self.entries.clear();
    }

    /// The cached value for `key`, or `load`'s, remembered under the rule above. `load` errors
    /// and `None` are not remembered.
    pub async fn get_or_load<Q, E, F>(&self, key: &Q, load: F) -> Result<Option<V>, E>
    where
        Q: Hash + quick_cache::Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(Some(v));
        }
        let read_at = self.generation();
        let loaded = load.await?;
        if let Some(v) = &loaded {
            self.put(read_at, key.to_owned(), v.clone());
        }
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_remembered() {
        let c = GenerationCache::<String, u32>::new(16);
        let read_at = c.generation();
        c.invalidate(); // a change committed while the read was in flight
        assert!(!c.put(read_at, "k".into(), 1));
        assert_eq!(c.get("k"), None);
        let read_at = c.generation();
        assert!(c.put(read_at, "k".into(), 2));
        assert_eq!(c.get("k"), Some(2));
    }

    #[test]
    fn invalidate_forgets_everything() {
        let c = GenerationCache::<String, u32>::new(16);
        assert!(c.put(c.generation(), "a".into(), 1));
        assert!(c.put(c.generation(), "b".into(), 2));
        c.invalidate();
        assert_eq!((c.get("a"), c.get("b")), (None, None));
    }

    #[test]
    fn the_size_stays_bounded() {
        let c = GenerationCache::<u32, u32>::new(64);
        let read_at = c.generation();
        for i in 0..10_000 {
            c.put(read_at, i, i);
        }
        assert!(c.entries.len() <= 64 * 2, "{} entries", c.entries.len());
        c.put(read_at, 10_000, 7);
        assert_eq!(c.get(&10_000), Some(7));
    }

    #[tokio::test]
    async fn get_or_load_refuses_a_load_that_raced_an_invalidation() {
        let c = GenerationCache::<String, u32>::new(16);
        let got = c
            .get_or_load("k", async {
                c.invalidate();
                Ok::<_, ()>(Some(1))
            })
            .await;
        assert_eq!(got, Ok(Some(1)), "the reader still gets what it read");
        assert_eq!(c.get("k"), None, "but it is not remembered");
        let got = c.get_or_load("k", async { Ok::<_, ()>(Some(2)) }).await;
        assert_eq!(got, Ok(Some(2)));
        let got = c.get_or_load("k", async { Ok::<_, ()>(Some(3)) }).await;
        assert_eq!(got, Ok(Some(2)), "a hit does not load");
        let missing = c.get_or_load("none", async { Ok::<_, ()>(None) }).await;
        assert_eq!(missing, Ok(None));
        assert!(c.get("none").is_none(), "misses are not remembered");
    }
}
