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
        Ok(Settings {
            database_url: url,
            bind,
            admin_token: a.admin_token,
            max_import_bytes: a.max_import_bytes,
            max_json_bytes: 16 * 1024 * 1024,
            demo: a.demo.then_some(a.demo_data),
        })
    }

    /// Settings for tests: a given database, a random port.
    pub fn for_tests(database_url: &str, admin_token: &str) -> Settings {
        Settings {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".parse().expect("literal address"),
            admin_token: Some(admin_token.to_string()),
            max_import_bytes: 8 * 1024 * 1024,
            max_json_bytes: 4 * 1024 * 1024,
            demo: None,
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
    }
}
