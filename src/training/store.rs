//! The fitted model each project serves, swapped in atomically.
//!
//! Readers take an `Arc` of the current model and keep using it even while a
//! newer one is swapped in, so a prediction never sees a half-built model.
//! Other replicas' trainings are picked up by a cheap check of the active
//! version at most every `RECHECK`.
use crate::db;
use crate::domain::Thresholds;
use crate::learner::FittedModel;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const RECHECK: Duration = Duration::from_secs(2);

/// What a model version stores: the label names its class indices mean, and
/// the fitted model with its featurizer state.
#[derive(Serialize, Deserialize)]
pub struct ModelBlob {
    pub labels: Vec<String>,
    pub model: Vec<u8>,
}

impl ModelBlob {
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(bincode::serde::encode_to_vec(
            self,
            bincode::config::standard(),
        )?)
    }
    pub fn decode(b: &[u8]) -> anyhow::Result<ModelBlob> {
        Ok(bincode::serde::decode_from_slice(b, bincode::config::standard())?.0)
    }
}

pub struct LoadedModel {
    pub meta: db::models::VersionMeta,
    pub labels: Vec<String>,
    pub model: FittedModel,
}

impl LoadedModel {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            auto: self.meta.auto_threshold,
            review: self.meta.review_threshold,
        }
    }
}

struct Entry {
    model: Option<Arc<LoadedModel>>,
    checked: Instant,
}

#[derive(Default)]
pub struct ModelStore {
    inner: RwLock<HashMap<i64, Entry>>,
}

impl ModelStore {
    pub fn put(&self, project_id: i64, m: Arc<LoadedModel>) {
        self.inner.write().expect("model store lock").insert(
            project_id,
            Entry {
                model: Some(m),
                checked: Instant::now(),
            },
        );
    }

    /// The active model of a project, loading it from the database when it
    /// is not cached or another process activated a newer version.
    pub async fn current(
        &self,
        db: &DatabaseConnection,
        project_id: i64,
    ) -> anyhow::Result<Option<Arc<LoadedModel>>> {
        let cached = {
            let map = self.inner.read().expect("model store lock");
            map.get(&project_id)
                .map(|e| (e.model.clone(), e.checked.elapsed() < RECHECK))
        };
        if let Some((m, true)) = cached.clone() {
            return Ok(m);
        }
        let active = db::models::active(db, project_id).await?;
        let cached_model = cached.and_then(|(m, _)| m);
        let fresh = match (active, cached_model) {
            (None, _) => None,
            (Some(meta), Some(m)) if m.meta.id == meta.id => Some(m),
            (Some(meta), _) => {
                let blob = db::models::blob(db, meta.id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("model version {} vanished", meta.id))?;
                let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                    let b = ModelBlob::decode(&blob)?;
                    let model = FittedModel::from_bytes(&b.model)?;
                    Ok(LoadedModel {
                        meta,
                        labels: b.labels,
                        model,
                    })
                })
                .await??;
                Some(Arc::new(loaded))
            }
        };
        self.inner.write().expect("model store lock").insert(
            project_id,
            Entry {
                model: fresh.clone(),
                checked: Instant::now(),
            },
        );
        Ok(fresh)
    }
}
