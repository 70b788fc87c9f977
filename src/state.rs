//! What every handler and job shares.
use crate::scheduler::Scheduler;
use crate::telemetry::Metrics;
use crate::training::{ModelStore, TrainingGuards};
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct AppState {
    /// Every write, and reads that must see this request's own writes.
    pub db: DatabaseConnection,
    /// Reads that need no write: on SQLite, a separate pool that never waits
    /// behind the single writer (see `db::connect_reader`).
    pub read: DatabaseConnection,
    /// Turns at SQLite's one writer: a lease of the next item goes ahead of
    /// waiting labels (see `db::turns`).
    pub write_turns: crate::db::turns::WriteTurns,
    pub tokens: crate::cache::TokenCache,
    pub projects: crate::cache::ProjectCache,
    pub models: ModelStore,
    pub training: TrainingGuards,
    pub metrics: Metrics,
    pub scheduler: Scheduler,
    pub route_counts: RouteCounts,
    /// How much of a new ranking is written in order.
    pub rank_depth: crate::config::RankDepth,
    /// The runtime trainings and rankings run on: the server's own
    /// multi-thread runtime (the scheduler's), never the HTTP worker whose
    /// request started them. An actix worker serves its requests on one
    /// thread, and a 1M-item ranking's steps between its background parts
    /// (collecting the scored pages, sorting, the `auto` head's plan) held
    /// the requests queued behind them up to ~100 ms.
    pub jobs: tokio::runtime::Handle,
}

/// Daily prediction counts per route, added up in memory and written at most
/// once a second (and before they are read): a durable write per predict
/// request would cap single-item prediction at the database's commit rate.
#[derive(Default)]
pub struct RouteCounts {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    counts: HashMap<(i64, String, &'static str), i64>,
    last_flush: Option<Instant>,
}

/// Longest a count waits in memory while predictions keep coming.
const ROUTE_FLUSH_EVERY: Duration = Duration::from_secs(1);

impl RouteCounts {
    /// Adds a request's counts; true when a flush is due.
    pub fn add(&self, project_id: i64, day: &str, counts: &[(&'static str, i64)]) -> bool {
        let mut p = self.pending.lock().expect("route counts lock");
        for &(route, n) in counts.iter().filter(|(_, n)| *n > 0) {
            *p.counts
                .entry((project_id, day.to_string(), route))
                .or_default() += n;
        }
        p.last_flush
            .is_none_or(|t| t.elapsed() >= ROUTE_FLUSH_EVERY)
    }

    /// Writes every pending count; on failure they are kept for the next flush.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let taken = {
            let mut p = self.pending.lock().expect("route counts lock");
            p.last_flush = Some(Instant::now());
            std::mem::take(&mut p.counts)
        };
        let mut by_key: HashMap<(i64, String), Vec<(&'static str, i64)>> = HashMap::new();
        for ((pid, day, route), n) in &taken {
            by_key
                .entry((*pid, day.clone()))
                .or_default()
                .push((route, *n));
        }
        for ((pid, day), counts) in by_key {
            if let Err(e) = crate::db::items::count_routes(db, pid, &day, &counts).await {
                let mut p = self.pending.lock().expect("route counts lock");
                for ((q, d, r), n) in taken {
                    if q == pid && d == day {
                        *p.counts.entry((q, d, r)).or_default() += n;
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }
}
