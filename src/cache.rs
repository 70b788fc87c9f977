//! Short-lived caches of what nearly every request reads: the caller's token
//! and the project. A prediction or a lease would otherwise spend most of its
//! time on these two lookups.
//!
//! Both keep an entry for at most [`TTL`], and a change made through this
//! process drops the entry at once (a revoked token is refused on the next
//! request; a PATCHed project is seen by the next one). A change made through
//! another replica is seen within [`TTL`] — the same delay as a new model
//! version (`training::ModelStore`).
use crate::db::{self, projects::Project};
use crate::domain::ProjectSpec;
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_secs(2);
/// Entries kept before the oldest are dropped (a guard against growth, not
/// a working-set size: live tokens and projects are few).
const MAX_ENTRIES: usize = 10_000;

struct Timed<T> {
    value: T,
    at: Instant,
}

struct TtlMap<K, V> {
    map: RwLock<HashMap<K, Timed<V>>>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> TtlMap<K, V> {
    fn new() -> Self {
        TtlMap {
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, k: &K) -> Option<V> {
        let map = self.map.read().expect("cache lock");
        map.get(k)
            .filter(|t| t.at.elapsed() < TTL)
            .map(|t| t.value.clone())
    }

    fn put(&self, k: K, value: V) {
        let mut map = self.map.write().expect("cache lock");
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, t| t.at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            k,
            Timed {
                value,
                at: Instant::now(),
            },
        );
    }

    fn remove(&self, k: &K) {
        self.map.write().expect("cache lock").remove(k);
    }

    fn clear(&self) {
        self.map.write().expect("cache lock").clear();
    }
}

/// A live token as a request sees it.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub senior: bool,
}

/// Live tokens by the SHA-256 digest of their secret (the secret itself is
/// never kept). Unknown and revoked tokens are not cached: each such request
/// asks the database.
pub struct TokenCache(TtlMap<String, TokenEntry>);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache(TtlMap::new())
    }
}

impl TokenCache {
    pub async fn find_live(
        &self,
        db: &DatabaseConnection,
        secret: &str,
    ) -> Result<Option<TokenEntry>, DbErr> {
        let digest = db::tokens::hash_token(secret);
        if let Some(t) = self.0.get(&digest) {
            return Ok(Some(t));
        }
        let Some(t) = db::tokens::find_live_by_digest(db, &digest).await? else {
            return Ok(None);
        };
        let entry = TokenEntry {
            id: t.id,
            name: t.name,
            role: t.role,
            senior: t.senior,
        };
        self.0.put(digest, entry.clone());
        Ok(Some(entry))
    }

    /// Forgets every token (after a revocation: the cache is keyed by digest,
    /// not id, and revocations are rare).
    pub fn clear(&self) {
        self.0.clear();
    }
}

/// Projects with their parsed spec, by id.
pub struct ProjectCache(TtlMap<i64, Arc<(Project, ProjectSpec)>>);

impl Default for ProjectCache {
    fn default() -> Self {
        ProjectCache(TtlMap::new())
    }
}

/// A stored project whose spec does not parse (a bug or a hand-edited row).
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("stored project {0}: {1}")]
    Spec(i64, String),
}

impl ProjectCache {
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        id: i64,
    ) -> Result<Option<Arc<(Project, ProjectSpec)>>, ProjectError> {
        if let Some(p) = self.0.get(&id) {
            return Ok(Some(p));
        }
        let Some(p) = db::projects::get(db, id).await? else {
            return Ok(None);
        };
        let spec = ProjectSpec::from_row(&p).map_err(|e| ProjectError::Spec(id, e.to_string()))?;
        let entry = Arc::new((p, spec));
        self.0.put(id, entry.clone());
        Ok(Some(entry))
    }

    /// Drops a project after this process changed it.
    pub fn invalidate(&self, id: i64) {
        self.0.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_dropped() {
        let m: TtlMap<i64, &str> = TtlMap::new();
        m.put(1, "a");
        assert_eq!(m.get(&1), Some("a"));
        m.remove(&1);
        assert_eq!(m.get(&1), None);
        m.put(2, "b");
        m.map.write().unwrap().get_mut(&2).unwrap().at = Instant::now() - TTL;
        assert_eq!(m.get(&2), None, "an entry older than the TTL is not served");
    }

    #[test]
    fn growth_is_bounded() {
        let m: TtlMap<usize, usize> = TtlMap::new();
        for i in 0..MAX_ENTRIES + 10 {
            m.put(i, i);
        }
        assert!(m.map.read().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(m.get(&(MAX_ENTRIES + 9)), Some(MAX_ENTRIES + 9));
    }
}
