//! loupe: an active-learning labeling server.
//!
//! Data flows one way: `routes` → `domain` → `db` / `training` → `learner`.
pub mod auth;
pub mod backup;
pub mod cache;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod learner;
pub mod routes;
pub mod scheduler;
pub mod simulate;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod training;
