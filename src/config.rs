//! Typed settings, checked at boot. Every option has a flag, an env var and a
//! default that works with no configuration.
use clap::{Args, Parser, Subcommand};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "loupe", version, about = "An active-learning labeling server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, the retraining scheduler and the browser UI.
    Serve(ServeArgs),
    /// Replay labeled JSONL through the learner and write learning curves.
    Simulate(crate::simulate::SimulateArgs),
    /// Copy a SQLite database to a new file, safely while the server runs.
    Backup(crate::backup::BackupArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "LOUPE_DATABASE_URL", default_value = "sqlite://loupe.db")]
    pub database_url: String,
    /// Address to listen on (host:port; port 0 picks a free port).
    #[arg(long, env = "LOUPE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// An admin token to create or keep (at least 16 characters).
    #[arg(long, env = "LOUPE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest accepted request body for imports, in bytes. The default takes
    /// 1M rows of up to ~500 bytes (e.g. 64 numeric features) in one batch;
    /// other request bodies are limited to 16 MiB.
    #[arg(long, env = "LOUPE_MAX_IMPORT_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_import_bytes: usize,
    /// Load a demo project (SpamAssassin e-mails) if it is not there yet.
    #[arg(long)]
    pub demo: bool,
    /// Where the demo data set is (JSONL, gzip allowed).
    #[arg(long, default_value = "data/spamassassin.pool.jsonl.gz")]
    pub demo_data: PathBuf,
    /// SQLite only: when a commit is flushed to disk. `full` flushes every
    /// commit, so an acknowledged label survives a power cut; `normal` (WAL)
    /// flushes at checkpoints, so it survives a crash of loupe or of any
    /// process but a power cut can lose the last commits (never corrupting
    /// the database).
    #[arg(long, env = "LOUPE_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,
    /// Pool items a retrain puts in the new model's queue order (the first
    /// 20,000 before the training returns, the rest in the background).
    /// Deeper items keep their earlier order behind these (a retrain comes
    /// long before annotators get that deep) and their stored prediction;
    /// item views score them with the new model when asked, and the
    /// dashboard's histogram counts the whole pool (BENCHMARKS.md).
    #[arg(long, env = "LOUPE_RANK_DEPTH", default_value_t = 50_000)]
    pub rank_depth: usize,
}

/// How much of a new ranking is written in order (see `--rank-depth`).
#[derive(Debug, Clone, Copy)]
pub struct RankDepth {
    /// Rows written before a rescore returns, best first.
    pub sync_rows: usize,
    /// Rows given the new order and prediction in all (the sync rows
    /// included); the rest of the pool is left as it is.
    pub ordered_rows: usize,
}

impl RankDepth {
    pub fn new(ordered_rows: usize) -> RankDepth {
        RankDepth {
            sync_rows: RANK_SYNC_ROWS.min(ordered_rows),
            ordered_rows,
        }
    }
}

/// Rows of a new ranking written before a rescore returns: the queue's head
/// for the next several thousand labels, and every row of a pool this size.
const RANK_SYNC_ROWS: usize = 20_000;

/// SQLite's `synchronous` setting (see `--sqlite-synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    Full,
    Normal,
}

/// Settings after checking: a bad value never gets past `Settings::parse`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: SocketAddr,
    pub admin_token: Option<String>,
    pub max_import_bytes: usize,
    pub max_json_bytes: usize,
    pub demo: Option<PathBuf>,
    pub sqlite_synchronous: SqliteSync,
    pub rank_depth: RankDepth,
}

impl Settings {
    pub fn parse(a: ServeArgs) -> Result<Settings, String> {
        let url = a.database_url.trim().to_string();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(format!(
                "--database-url / LOUPE_DATABASE_URL must start with sqlite:, postgres:// or postgresql:// (got {url:?})"
            ));
        }
        let bind = a
            .bind
            .to_socket_addrs()
            .map_err(|e| format!("--bind / LOUPE_BIND {:?} is not host:port: {e}", a.bind))?
            .next()
            .ok_or_else(|| format!("--bind / LOUPE_BIND {:?} resolves to no address", a.bind))?;
        if let Some(t) = &a.admin_token {
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(
                    "LOUPE_ADMIN_TOKEN must be at least 16 characters without spaces".into(),
                );
            }
        }
        if a.max_import_bytes < 1024 {
            return Err("--max-import-bytes must be at least 1024".into());
        }
        if a.rank_depth < 1000 {
            return Err("--rank-depth / LOUPE_RANK_DEPTH must be at least 1000".into());
        }
        Ok(Settings {
            database_url: url,
            bind,
            admin_token: a.admin_token,
            max_import_bytes: a.max_import_bytes,
            max_json_bytes: 16 * 1024 * 1024,
            demo: a.demo.then_some(a.demo_data),
            sqlite_synchronous: a.sqlite_synchronous,
            rank_depth: RankDepth::new(a.rank_depth),
        })
    }

    /// Settings for tests: a given database, a random port, and a ranking
    /// depth small enough that a 24k-item pool has all three parts (written
    /// at once, ordered in the background, left as it was).
    pub fn for_tests(database_url: &str, admin_token: &str) -> Settings {
        Settings {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".parse().expect("literal address"),
            admin_token: Some(admin_token.to_string()),
            max_import_bytes: 8 * 1024 * 1024,
            max_json_bytes: 4 * 1024 * 1024,
            demo: None,
            sqlite_synchronous: SqliteSync::Full,
            rank_depth: RankDepth {
                sync_rows: 5_000,
                ordered_rows: 12_000,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn args() -> ServeArgs {
        ServeArgs {
            database_url: "sqlite://loupe.db".into(),
            bind: "127.0.0.1:8080".into(),
            admin_token: None,
            max_import_bytes: 1 << 20,
            demo: false,
            demo_data: "x".into(),
            sqlite_synchronous: SqliteSync::Full,
            rank_depth: 50_000,
        }
    }
    #[test]
    fn defaults_parse() {
        assert!(Settings::parse(args()).is_ok());
    }
    #[test]
    fn bad_values_are_refused() {
        let mut a = args();
        a.database_url = "mysql://x".into();
        assert!(Settings::parse(a).is_err());
        let mut a = args();
        a.bind = "nonsense".into();
        assert!(Settings::parse(a).is_err());
        let mut a = args();
        a.admin_token = Some("short".into());
        assert!(Settings::parse(a).is_err());
        let mut a = args();
        a.rank_depth = 999;
        assert!(Settings::parse(a).is_err());
    }
}
