//! Scheduled retraining. Jobs only trigger: each project's cron calls
//! [`training::train_if_due`], the same path `POST …/train` takes.
//!
//! With several replicas on one database every replica runs every job, but
//! each tick is claimed in the database first ([`db::locks::claim_tick`]) and
//! only the replica that wins the claim goes on. A refresh task re-reads the
//! projects' crons every [`REFRESH`], so a cron changed through another
//! replica is followed here too.
use crate::db;
use crate::state::AppState;
use crate::training;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

/// How often the jobs are checked against the crons in the database.
const REFRESH: Duration = Duration::from_secs(2);
/// Claimed ticks older than this are forgotten.
const KEEP_TICKS: chrono::Duration = chrono::Duration::hours(24);
/// Old tick claims are pruned every this many refreshes (about a minute).
const PRUNE_EVERY: u32 = 30;

#[derive(Default)]
pub struct Scheduler {
    sched: OnceLock<JobScheduler>,
    state: OnceLock<Weak<AppState>>,
    /// project id → (job id, cron it runs on); an async mutex because
    /// replacing a job awaits the scheduler, and a PATCH and the refresh task
    /// must not both replace the same job.
    jobs: tokio::sync::Mutex<HashMap<i64, (Uuid, String)>>,
    refresher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Names this process in the tick claims it makes.
fn replica_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        format!(
            "{}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        )
    })
}

/// The scheduled time of the tick a job fires for: the latest time the cron
/// matches, at or before now. Every replica names a tick alike, since each
/// fires it only once its own clock has reached it.
fn tick_at(cron: &croner::Cron, now: chrono::DateTime<Utc>) -> i64 {
    use chrono::SubsecRound;
    // Whole seconds: croner keeps the sub-second part of the time it starts from.
    let now = now.trunc_subsecs(0);
    cron.find_previous_occurrence(&now, true)
        .unwrap_or(now)
        .timestamp_millis()
}

/// The cron as tokio-cron-scheduler reads it (seconds first, day-of-month
/// AND day-of-week).
fn parse_cron(cron: &str) -> anyhow::Result<croner::Cron> {
    Ok(croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(cron)?)
}

impl Scheduler {
    /// Starts the scheduler, registers a job per project with a cron and
    /// starts the refresh task.
    pub async fn start(&self, state: Weak<AppState>) -> anyhow::Result<()> {
        let sched = JobScheduler::new().await?;
        sched.start().await?;
        let _ = self.sched.set(sched);
        let _ = self.state.set(state.clone());
        if let Some(st) = state.upgrade() {
            self.refresh(&st).await?;
        }
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut n: u32 = 0;
            loop {
                every.tick().await;
                let Some(st) = state.upgrade() else { break };
                if let Err(e) = st.scheduler.refresh(&st).await {
                    tracing::warn!(error = %e, "refreshing the scheduled jobs");
                }
                n = n.wrapping_add(1);
                if n.is_multiple_of(PRUNE_EVERY) {
                    let before = (Utc::now() - KEEP_TICKS).timestamp_millis();
                    if let Err(e) = db::locks::prune_ticks(&st.db, before).await {
                        tracing::warn!(error = %e, "pruning old schedule ticks");
                    }
                }
            }
        });
        *self.refresher.lock().expect("refresher lock") = Some(task);
        Ok(())
    }

    /// Makes every job follow its project's cron in the database.
    async fn refresh(&self, state: &AppState) -> anyhow::Result<()> {
        let crons = db::projects::crons(&state.db).await?;
        let gone: Vec<i64> = {
            let jobs = self.jobs.lock().await;
            jobs.keys()
                .filter(|id| !crons.iter().any(|(p, _)| p == *id))
                .copied()
                .collect()
        };
        for project_id in gone {
            self.sync_project(project_id, None).await?;
        }
        for (project_id, cron) in crons {
            self.sync_project(project_id, cron.as_deref()).await?;
        }
        Ok(())
    }

    /// Makes the project's job follow its cron: added, replaced or removed.
    pub async fn sync_project(&self, project_id: i64, cron: Option<&str>) -> anyhow::Result<()> {
        let (Some(sched), Some(state)) = (self.sched.get(), self.state.get()) else {
            return Ok(());
        };
        let mut jobs = self.jobs.lock().await;
        if let Some((id, c)) = jobs.get(&project_id) {
            if Some(c.as_str()) == cron {
                return Ok(());
            }
            sched.remove(id).await?;
            jobs.remove(&project_id);
        }
        let Some(cron) = cron else { return Ok(()) };
        let schedule = parse_cron(cron)?;
        let weak = state.clone();
        let job = Job::new_async(cron, move |_id, _sched| {
            let weak = weak.clone();
            let tick = tick_at(&schedule, Utc::now());
            Box::pin(async move {
                let Some(st) = weak.upgrade() else { return };
                run_tick(&st, project_id, tick).await;
            })
        })?;
        let id = sched.add(job).await?;
        jobs.insert(project_id, (id, cron.to_string()));
        Ok(())
    }

    pub async fn shutdown(&self) {
        if let Some(t) = self.refresher.lock().expect("refresher lock").take() {
            t.abort();
        }
        if let Some(s) = self.sched.get() {
            let mut s = s.clone();
            if let Err(e) = s.shutdown().await {
                tracing::warn!(error = %e, "scheduler shutdown");
            }
        }
    }
}

/// One tick of a project's job: claim it, then train if due.
async fn run_tick(st: &AppState, project_id: i64, tick: i64) {
    match db::locks::claim_tick(&st.db, project_id, tick, replica_id()).await {
        Ok(true) => {
            st.metrics
                .schedule_ticks
                .with_label_values(&["claimed"])
                .inc();
            if let Err(e) = training::train_if_due(st, project_id).await {
                tracing::error!(project_id, error = %e, "scheduled training failed");
            }
        }
        Ok(false) => st
            .metrics
            .schedule_ticks
            .with_label_values(&["other_replica"])
            .inc(),
        Err(e) => tracing::error!(project_id, error = %e, "claiming a schedule tick"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_tick_is_named_by_its_scheduled_second() {
        let every_5s = parse_cron("*/5 * * * * *").unwrap();
        let late = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 7).unwrap()
            + chrono::Duration::milliseconds(420);
        let at = |t| tick_at(&every_5s, t);
        let tick = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 5).unwrap();
        assert_eq!(at(late), tick.timestamp_millis());
        assert_eq!(at(tick), tick.timestamp_millis());
        assert!(parse_cron("* * * * *").is_err());
    }
}
