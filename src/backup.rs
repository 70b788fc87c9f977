//! `loupe backup PATH`: a consistent copy of a SQLite database, safe while the
//! server runs. `VACUUM INTO` reads one snapshot inside a read transaction, so
//! it includes what sits in the WAL (a plain `cp` of the .db file would miss
//! it) and never blocks the server's writer for long. PostgreSQL has its own
//! tool for this (`pg_dump`), which the command points to.
use clap::Args;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where to write the copy: a new file (an existing path is refused).
    pub path: PathBuf,
    /// The database to copy: sqlite://PATH (PostgreSQL: use pg_dump).
    #[arg(long, env = "LOUPE_DATABASE_URL", default_value = "sqlite://loupe.db")]
    pub database_url: String,
}

/// What the copy holds, checked by reading the copy back.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub projects: i64,
    pub items: i64,
    pub labels: i64,
    pub model_versions: i64,
}

pub async fn run(a: BackupArgs) -> ExitCode {
    let url = a.database_url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        eprintln!(
            "loupe backup: the database is PostgreSQL; back it up with its own tools:\n\
             \n    pg_dump --format=custom --file={} \"$LOUPE_DATABASE_URL\"\n\
             \nand restore with pg_restore --dbname=<empty database> FILE (see README.md, Backups).",
            a.path.display()
        );
        return ExitCode::from(2);
    }
    match backup(url, &a.path).await {
        Ok(s) => {
            println!(
                "loupe backup: wrote {} ({} projects, {} items, {} labels, {} model versions; integrity ok)",
                a.path.display(),
                s.projects,
                s.items,
                s.labels,
                s.model_versions
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loupe backup: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Copies the SQLite database at `url` to `dest`, which must not exist, then
/// checks the copy (`PRAGMA integrity_check`) and counts what it holds.
pub async fn backup(url: &str, dest: &Path) -> anyhow::Result<Summary> {
    use anyhow::{bail, Context};
    if !url.starts_with("sqlite:") {
        bail!("--database-url must be sqlite://PATH (got {url:?})");
    }
    if url.contains(":memory:") || url.contains("mode=memory") {
        bail!("an in-memory database has nothing to back up");
    }
    if dest.symlink_metadata().is_ok() {
        bail!("{} exists: choose a new file name", dest.display());
    }
    let dest_str = dest
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", dest.display()))?;
    let src = open(url, false)
        .await
        .with_context(|| format!("opening {url}"))?;
    // A file that is not loupe's (or no file at all) fails here, before any copy.
    src.execute_raw(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT count(*) FROM seaql_migrations",
    ))
    .await
    .with_context(|| format!("{url} is not a loupe database"))?;
    let copied = src
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "VACUUM INTO ?",
            [dest_str.into()],
        ))
        .await;
    src.close().await.ok();
    if let Err(e) = copied {
        // The file did not exist before: whatever VACUUM left is ours to remove.
        let _ = std::fs::remove_file(dest);
        return Err(e).with_context(|| format!("writing {}", dest.display()));
    }
    check(dest).await.with_context(|| {
        format!(
            "checking the copy {} (it is left in place for inspection)",
            dest.display()
        )
    })
}

async fn open(url: &str, read_only: bool) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    let mut opt = ConnectOptions::new(url.to_string());
    opt.sqlx_logging(false)
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10));
    opt.map_sqlx_sqlite_opts(move |o| {
        // Never create an empty database where the operator expected theirs.
        o.create_if_missing(false)
            .read_only(read_only)
            .busy_timeout(Duration::from_secs(30))
    });
    Database::connect(opt).await
}

async fn check(dest: &Path) -> anyhow::Result<Summary> {
    let url = format!("sqlite://{}", dest.display());
    let db = open(&url, true).await?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("integrity_check gave no answer"))?;
    let verdict: String = row.try_get_by_index(0)?;
    if verdict != "ok" {
        anyhow::bail!("integrity_check: {verdict}");
    }
    let count = |table: &'static str| {
        let db = &db;
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!("SELECT count(*) FROM {table}"),
                ))
                .await?
                .ok_or_else(|| anyhow::anyhow!("count of {table}: no answer"))?;
            anyhow::Ok(row.try_get_by_index::<i64>(0)?)
        }
    };
    let s = Summary {
        projects: count("projects").await?,
        items: count("items").await?,
        labels: count("labels").await?,
        model_versions: count("model_versions").await?,
    };
    db.close().await.ok();
    Ok(s)
}
