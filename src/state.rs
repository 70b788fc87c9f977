//! What every handler and job shares.
use crate::scheduler::Scheduler;
use crate::telemetry::Metrics;
use crate::training::{ModelStore, TrainingGuards};
use sea_orm::DatabaseConnection;

pub struct AppState {
    pub db: DatabaseConnection,
    pub models: ModelStore,
    pub training: TrainingGuards,
    pub metrics: Metrics,
    pub scheduler: Scheduler,
}
