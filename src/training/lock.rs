//! A project's turn to train or rescore: the in-process async mutex, then
//! (on PostgreSQL) the advisory lock that other replicas honour too.
use crate::db::{self, locks::ProjectLock, models::VersionMeta};
use crate::state::AppState;
use sea_orm::DbErr;
use tokio::sync::OwnedMutexGuard;

/// Held while a project trains or rescores. Fields drop in order: the
/// cross-replica lock first, then the local one.
pub struct Turn {
    db: ProjectLock,
    _local: OwnedMutexGuard<()>,
}

impl Turn {
    /// Waits for this process's and every other replica's job on the project.
    pub async fn wait(state: &AppState, project_id: i64) -> Result<Turn, DbErr> {
        let local = state.training.for_project(project_id).lock_owned().await;
        let db = ProjectLock::acquire(&state.db, project_id).await?;
        Ok(Turn { db, _local: local })
    }

    /// The turn only if nobody, here or on another replica, has it now.
    pub async fn try_now(state: &AppState, project_id: i64) -> Result<Option<Turn>, DbErr> {
        let Ok(local) = state.training.for_project(project_id).try_lock_owned() else {
            return Ok(None);
        };
        Ok(ProjectLock::try_acquire(&state.db, project_id)
            .await?
            .map(|db| Turn { db, _local: local }))
    }

    pub async fn release(self) {
        let Turn { db, _local } = self;
        db.release().await;
    }
}

/// What a training request saw when it arrived.
pub struct Arrival {
    active: Option<i64>,
    labels_seen: i64,
}

impl Arrival {
    pub async fn note(state: &AppState, project_id: i64) -> Result<Arrival, DbErr> {
        Ok(Arrival {
            active: db::models::active(&state.db, project_id)
                .await?
                .map(|v| v.id),
            labels_seen: db::labels::max_id(&state.db, project_id).await?,
        })
    }

    /// The version a training that ran while this request waited produced,
    /// if it learned from every label the request saw: the request joins
    /// that training instead of repeating it.
    pub async fn joined(
        &self,
        state: &AppState,
        project_id: i64,
    ) -> Result<Option<VersionMeta>, DbErr> {
        Ok(db::models::active(&state.db, project_id)
            .await?
            .filter(|v| Some(v.id) != self.active && v.label_watermark >= self.labels_seen))
    }
}
