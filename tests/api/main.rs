//! Black-box tests of the running server. Each scenario runs on SQLite and,
//! when `LOUPE_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database.
#[path = "../support/binary.rs"]
mod binary;
mod common;

mod auth;
mod backup;
mod shutdown;

mod errors;
mod flow;
mod hammer;
mod honest;
mod integrity;
mod openapi;
mod predict;
mod queue;
mod replicas;
mod restart;
mod review;
mod scheduler;
mod stats;
