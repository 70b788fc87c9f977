//! Database access: entities plus query/mutation functions that take a
//! connection. Handlers never build queries; they call these.
pub mod entities;
pub mod gold;
pub mod items;
pub mod labels;
pub mod locks;
pub mod models;
pub mod projects;
pub mod stats;
pub mod tokens;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use std::time::Duration;

/// Connects and tunes the connection for its backend.
///
/// SQLite runs in WAL mode with `synchronous=FULL` (a label acknowledged is on
/// disk) and a busy timeout. It gets a single pooled connection: SQLite takes
/// one writer at a time anyway, and one connection rules out the
/// `SQLITE_BUSY` failures of read-then-write transactions that no busy timeout
/// cures. PostgreSQL gets a real pool.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        opt.max_connections(1).min_connections(1);
        opt.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        opt.max_connections(16).min_connections(1);
    }
    let db = Database::connect(opt).await?;
    if url.starts_with("sqlite:") {
        log_sqlite_settings(&db).await?;
    }
    Ok(db)
}

/// Logs the SQLite settings in effect, read back from the connection.
async fn log_sqlite_settings(db: &DatabaseConnection) -> Result<(), DbErr> {
    async fn pragma(db: &DatabaseConnection, name: &str) -> Result<String, DbErr> {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await?
            .ok_or_else(|| DbErr::Custom(format!("PRAGMA {name} answered nothing")))?;
        row.try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
    }
    tracing::info!(
        journal_mode = %pragma(db, "journal_mode").await?,
        synchronous = %pragma(db, "synchronous").await?,
        busy_timeout_ms = %pragma(db, "busy_timeout").await?,
        "sqlite settings"
    );
    Ok(())
}

pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

pub fn backend(db: &impl ConnectionTrait) -> DbBackend {
    db.get_database_backend()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
