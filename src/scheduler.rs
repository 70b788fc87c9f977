//! Scheduled retraining. Jobs only trigger: each project's cron calls
//! [`training::train_if_due`], the same path `POST …/train` takes.
use crate::state::AppState;
use crate::training;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, Weak};
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

#[derive(Default)]
pub struct Scheduler {
    sched: OnceLock<JobScheduler>,
    state: OnceLock<Weak<AppState>>,
    /// project id → (job id, cron it runs on)
    jobs: Mutex<HashMap<i64, (Uuid, String)>>,
}

impl Scheduler {
    /// Starts the scheduler and registers a job per project with a cron.
    pub async fn start(&self, state: Weak<AppState>) -> anyhow::Result<()> {
        let sched = JobScheduler::new().await?;
        sched.start().await?;
        let _ = self.sched.set(sched);
        let _ = self.state.set(state.clone());
        if let Some(st) = state.upgrade() {
            for p in crate::db::projects::list(&st.db).await? {
                self.sync_project(p.id, p.retrain_cron.as_deref()).await?;
            }
        }
        Ok(())
    }

    /// Makes the project's job follow its cron: added, replaced or removed.
    pub async fn sync_project(&self, project_id: i64, cron: Option<&str>) -> anyhow::Result<()> {
        let (Some(sched), Some(state)) = (self.sched.get(), self.state.get()) else {
            return Ok(());
        };
        let old = {
            let jobs = self.jobs.lock().expect("jobs lock");
            jobs.get(&project_id).cloned()
        };
        if let Some((_, c)) = &old {
            if Some(c.as_str()) == cron {
                return Ok(());
            }
        }
        if let Some((id, _)) = old {
            sched.remove(&id).await?;
            self.jobs.lock().expect("jobs lock").remove(&project_id);
        }
        let Some(cron) = cron else { return Ok(()) };
        let weak = state.clone();
        let job = Job::new_async(cron, move |_id, _sched| {
            let weak = weak.clone();
            Box::pin(async move {
                let Some(st) = weak.upgrade() else { return };
                if let Err(e) = training::train_if_due(&st, project_id).await {
                    tracing::error!(project_id, error = %e, "scheduled training failed");
                }
            })
        })?;
        let id = sched.add(job).await?;
        self.jobs
            .lock()
            .expect("jobs lock")
            .insert(project_id, (id, cron.to_string()));
        Ok(())
    }

    pub async fn shutdown(&self) {
        if let Some(s) = self.sched.get() {
            let mut s = s.clone();
            if let Err(e) = s.shutdown().await {
                tracing::warn!(error = %e, "scheduler shutdown");
            }
        }
    }
}
