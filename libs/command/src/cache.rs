//! Folded states of recently used streams, so that a command on a stream the
//! runner has seen reads only the events appended since (usually none or its
//! own last ones) instead of decoding and folding the whole stream again.
//!
//! It needs no invalidation: a stream only grows, so a state folded up to
//! version `v` stays the fold of that prefix forever, and every load reads on
//! from `v + 1` before deciding. A writer landing between that read and the
//! append is caught by the append's expected version, as without the cache.

use lru::LruCache;
use std::any::{Any, TypeId};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

/// Streams whose folded state a runner keeps unless told otherwise.
pub const DEFAULT_STATE_CACHE_STREAMS: usize = 4096;

type Key = (String, TypeId);

struct Entry {
    version: u64,
    state: Box<dyn Any + Send + Sync>,
}

/// An LRU map from (stream, state type) to the state folded up to a version;
/// shared by the clones of a runner. Capacity 0 keeps nothing.
#[derive(Clone)]
pub(crate) struct StateCache {
    inner: Option<Arc<Mutex<LruCache<Key, Entry>>>>,
}

impl StateCache {
    pub(crate) fn new(streams: usize) -> Self {
        Self {
            inner: NonZeroUsize::new(streams).map(|n| Arc::new(Mutex::new(LruCache::new(n)))),
        }
    }

    fn key<S: 'static>(stream: &str) -> Key {
        (stream.to_owned(), TypeId::of::<S>())
    }

    /// A copy of `stream`'s state as folded by a decider with state type
    /// `S`, and the version it is folded up to.
    pub(crate) fn get<S: Clone + Send + Sync + 'static>(&self, stream: &str) -> Option<(S, u64)> {
        let inner = self.inner.as_ref()?;
        let mut cache = inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.get(&Self::key::<S>(stream))?;
        let state = entry.state.downcast_ref::<S>()?.clone();
        Some((state, entry.version))
    }

    /// Remembers `state` as `stream` folded up to `version`, unless a state
    /// folded further is already kept.
    pub(crate) fn put<S: Clone + Send + Sync + 'static>(
        &self,
        stream: &str,
        state: &S,
        version: u64,
    ) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        let key = Self::key::<S>(stream);
        let mut cache = inner.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.peek(&key).is_some_and(|e| e.version >= version) {
            return;
        }
        cache.put(
            key,
            Entry {
                version,
                state: Box::new(state.clone()),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::StateCache;

    #[test]
    fn keeps_the_furthest_fold_per_stream_and_type() {
        let cache = StateCache::new(2);
        cache.put("a-1", &10_u32, 3);
        cache.put("a-1", &7_u32, 2);
        assert_eq!(
            cache.get::<u32>("a-1"),
            Some((10, 3)),
            "an older fold never replaces a newer one"
        );
        assert_eq!(
            cache.get::<u64>("a-1"),
            None,
            "another decider's state is another entry"
        );
        cache.put("a-1", &11_u32, 4);
        assert_eq!(cache.get::<u32>("a-1"), Some((11, 4)));
    }

    #[test]
    fn evicts_the_least_recently_used_and_capacity_zero_keeps_nothing() {
        let cache = StateCache::new(2);
        cache.put("a-1", &1_u32, 0);
        cache.put("a-2", &2_u32, 0);
        assert!(cache.get::<u32>("a-1").is_some());
        cache.put("a-3", &3_u32, 0);
        assert_eq!(cache.get::<u32>("a-2"), None);
        assert!(cache.get::<u32>("a-1").is_some() && cache.get::<u32>("a-3").is_some());
        let off = StateCache::new(0);
        off.put("a-1", &1_u32, 0);
        assert_eq!(off.get::<u32>("a-1"), None);
    }
}
