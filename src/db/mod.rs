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
pub mod turns;

pub use crate::config::SqliteSync;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use std::time::Duration;

/// Connects and tunes the connection for its backend.
///
/// SQLite runs in WAL mode with `synchronous` as set (`FULL` by default: a
/// label acknowledged is on disk; see [`SqliteSync`]) and a busy timeout. It gets a single pooled connection: SQLite takes
/// one writer at a time anyway, and one connection rules out the
/// `SQLITE_BUSY` failures of read-then-write transactions that no busy timeout
/// cures. Reads that need no write go to [`connect_reader`]'s pool instead,
/// so they never queue behind a write. PostgreSQL gets a real pool.
pub async fn connect(url: &str, sync: SqliteSync) -> Result<DatabaseConnection, DbErr> {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        // A file handle does not go stale: no ping before each use (one
        // round trip to the connection's thread less per statement batch).
        opt.max_connections(1)
            .min_connections(1)
            .test_before_acquire(false);
        opt.map_sqlx_sqlite_opts(move |o| {
            tune_sqlite(o)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                .synchronous(match sync {
                    SqliteSync::Full => SqliteSynchronous::Full,
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                })
        });
    } else {
        // Connections in steady use are not pinged before each use; one idle
        // for a while (which a server restart or a proxy may have closed) is.
        opt.max_connections(16)
            .min_connections(1)
            .test_before_acquire_if_idle_for(PG_PING_IF_IDLE_FOR);
    }
    let db = Database::connect(opt).await?;
    if url.starts_with("sqlite:") {
        log_sqlite_settings(&db).await?;
    }
    Ok(db)
}

/// Copies SQLite's write-ahead log back into the database file
/// ("checkpoints") from a connection of its own, every
/// [`CHECKPOINT_EVERY`], for as long as the runtime runs.
///
/// Left to SQLite, the commit that takes the log past 1,000 pages runs the
/// checkpoint itself, holding the single writer connection meanwhile: at a
/// 1M-item pool a ranking's commit then took 20–40 ms instead of 4, and
/// every lease and label behind it waited that long. Here the copy runs on
/// another core while the writer goes on (a `PASSIVE` checkpoint never
/// waits for readers or the writer). The writer still checkpoints itself
/// past [`WRITER_CHECKPOINT_PAGES`], should this task fall behind.
/// In-memory databases have no log: nothing is started.
pub async fn start_checkpointer(url: &str) -> Result<(), DbErr> {
    if !sqlite_file(url) {
        return Ok(());
    }
    let mut opt = ConnectOptions::new(url.to_string());
    opt.sqlx_logging(false)
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false);
    opt.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_secs(1)));
    let conn = Database::connect(opt).await?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = conn
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::warn!(error = %e, "checkpointing the SQLite log");
            }
        }
    });
    Ok(())
}

/// Whether `url` names an SQLite database in a file (not in memory), the
/// kind that has reader connections and a write-ahead log.
fn sqlite_file(url: &str) -> bool {
    url.starts_with("sqlite:") && !url.contains(":memory:") && !url.contains("mode=memory")
}

/// How often [`start_checkpointer`] copies the log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Log pages past which the writer checkpoints on its own (SQLite's
/// default is 1,000): only if [`start_checkpointer`]'s task falls behind.
const WRITER_CHECKPOINT_PAGES: &str = "20000";

/// Connections for reads that need no write, beside `writer` (from
/// [`connect`]). SQLite in WAL mode lets readers run while the one writer
/// writes, and a reader sees every transaction committed before its own read
/// began: so a token check, a project lookup or a pool page never waits for
/// a label's commit or a rescore's batch. PostgreSQL shares the writer's pool.
pub async fn connect_reader(
    url: &str,
    writer: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if !sqlite_file(url) {
        return Ok(writer.clone());
    }
    let mut opt = ConnectOptions::new(url.to_string());
    opt.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .max_connections(SQLITE_READERS)
        .min_connections(1)
        .test_before_acquire(false);
    // A reader's page cache is dropped whenever another connection has
    // written since its last read — under labelling, before nearly every
    // read — and dropping it walks the whole cache: so readers keep a small
    // one (their pages come through the memory map and the OS cache). With
    // 64 MB, the resets took ~6 % of the server's CPU in a 1M-pool queue run.
    opt.map_sqlx_sqlite_opts(|o| {
        tune_sqlite(o)
            .pragma("cache_size", READER_CACHE_KIB)
            .pragma("query_only", "ON")
    });
    Database::connect(opt).await
}

/// A PostgreSQL connection idle this long is pinged before it is used.
const PG_PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Reader connections of an SQLite database (a pool page, a token check and
/// a stats query can run at once on 2 cores).
const SQLITE_READERS: u32 = 4;

/// Page cache of a reader connection (negative: KiB).
const READER_CACHE_KIB: &str = "-4096";

/// Settings every SQLite connection gets: a busy timeout, foreign keys, a
/// page cache large enough for a million-item pool's indexes (64 MB; the
/// writer keeps it, as no other connection writes; SQLite's default of 2 MB
/// makes every insert into the queue index a read from disk past ~50k
/// items) and memory-mapped reads.
fn tune_sqlite(
    o: sea_orm::sqlx::sqlite::SqliteConnectOptions,
) -> sea_orm::sqlx::sqlite::SqliteConnectOptions {
    o.busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .pragma("cache_size", "-65536")
        .pragma("mmap_size", "268435456")
        .pragma("temp_store", "memory")
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

#[cfg(test)]
mod checkpoint_tests {
    use sea_orm::ConnectionTrait;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn the_log_reaches_the_database_file_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = super::connect(&url, super::SqliteSync::Full).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (b BLOB)")
            .await
            .unwrap();
        // ~4 MB of log: past SQLite's default threshold of 1,000 pages,
        // under the writer's own.
        for _ in 0..20 {
            db.execute_unprepared("INSERT INTO t SELECT randomblob(200000)")
                .await
                .unwrap();
        }
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(
            size() < 1 << 20,
            "the writer checkpointed: {} bytes",
            size()
        );
        super::start_checkpointer(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while size() < 4_000_000 {
            assert!(
                Instant::now() < deadline,
                "not checkpointed: {} bytes",
                size()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
