//! How replicas sharing one database take turns.
//!
//! On PostgreSQL several `loupe serve` processes may share the database:
//! - migrations run under an advisory lock, so replicas booting together do
//!   not race to create the same tables;
//! - a project's training holds a transaction-scoped advisory lock on a
//!   dedicated pooled connection for its whole duration. Postgres frees it
//!   when the transaction ends, and also when the connection dies, so a
//!   crashed replica never leaves a project locked;
//! - each cron tick is claimed by inserting its `(project, tick)` row: the
//!   primary key lets exactly one replica win.
//!
//! SQLite is one process: its locks are no-ops there (the in-process guard of
//! `training` is enough), and tick claims work the same on both.
use migration::MigratorTrait;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use std::time::Duration;

/// First key of loupe's advisory locks (two-key form), one per purpose, so
/// they cannot meet another application's locks on the same database.
const MIGRATIONS_KEY: i32 = i32::from_be_bytes(*b"lmig");
const TRAINING_KEY: i32 = i32::from_be_bytes(*b"ltrn");
/// How often a replica waiting for another one's training checks again.
const POLL: Duration = Duration::from_millis(200);

/// Runs the pending migrations; on PostgreSQL only one replica at a time.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return migration::Migrator::up(db, None).await;
    }
    // The lock lives in its own transaction (one pooled connection) while the
    // migrator uses others; a second replica blocks here, then finds nothing
    // left to do.
    let lock = db.begin().await?;
    lock.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, 0)",
        [MIGRATIONS_KEY.into()],
    ))
    .await?;
    let res = migration::Migrator::up(db, None).await;
    lock.rollback().await?;
    res
}

/// The second key for a project: its id, folded if it ever exceeds 32 bits
/// (a collision would only make two projects take turns).
fn project_key(project_id: i64) -> i32 {
    i32::try_from(project_id).unwrap_or((project_id ^ (project_id >> 32)) as i32)
}

/// A project's cross-replica training lock; released by [`Self::release`],
/// or by Postgres when the value is dropped or the process dies.
pub struct ProjectLock {
    txn: Option<DatabaseTransaction>,
}

impl ProjectLock {
    /// The lock if no other replica holds it now.
    pub async fn try_acquire(
        db: &DatabaseConnection,
        project_id: i64,
    ) -> Result<Option<ProjectLock>, DbErr> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(Some(ProjectLock { txn: None }));
        }
        let txn = db.begin().await?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1, $2) AS ok",
                [TRAINING_KEY.into(), project_key(project_id).into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("pg_try_advisory_xact_lock returned no row".into()))?;
        if row.try_get::<bool>("", "ok")? {
            Ok(Some(ProjectLock { txn: Some(txn) }))
        } else {
            txn.rollback().await?;
            Ok(None)
        }
    }

    /// Waits until no other replica holds the lock. It polls rather than
    /// blocks in Postgres so that a waiting replica holds no connection.
    pub async fn acquire(db: &DatabaseConnection, project_id: i64) -> Result<ProjectLock, DbErr> {
        loop {
            if let Some(l) = Self::try_acquire(db, project_id).await? {
                return Ok(l);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn release(self) {
        if let Some(txn) = self.txn {
            if let Err(e) = txn.rollback().await {
                // The connection is gone, and with it the lock.
                tracing::warn!(error = %e, "releasing a training lock");
            }
        }
    }
}

/// Claims one cron tick of a project for this replica: true for exactly one
/// of the replicas that try the same tick.
pub async fn claim_tick(
    db: &impl ConnectionTrait,
    project_id: i64,
    tick_at_ms: i64,
    replica: &str,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO schedule_ticks (project_id, tick_at, claimed_by, claimed_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, tick_at) DO NOTHING"
        }
        _ => {
            "INSERT INTO schedule_ticks (project_id, tick_at, claimed_by, claimed_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (project_id, tick_at) DO NOTHING"
        }
    };
    let res = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                project_id.into(),
                tick_at_ms.into(),
                replica.into(),
                chrono::Utc::now().into(),
            ],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Forgets claims of ticks older than `before_ms`; they can no longer be
/// contested.
pub async fn prune_ticks(db: &impl ConnectionTrait, before_ms: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "DELETE FROM schedule_ticks WHERE tick_at < $1",
        _ => "DELETE FROM schedule_ticks WHERE tick_at < ?",
    };
    let res = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [before_ms.into()],
        ))
        .await?;
    Ok(res.rows_affected())
}
