//! All wiring in one place: settings → database → migrations → admin
//! bootstrap → state → scheduler → HTTP server.
use crate::config::Settings;
use crate::routes::{self, items::ImportLimit};
use crate::scheduler::Scheduler;
use crate::state::AppState;
use crate::telemetry::{self, Metrics};
use crate::{db, demo};
use actix_web::{middleware::from_fn, web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;

/// How long shutdown waits for trainings in progress.
const SHUTDOWN_TRAINING_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: Arc<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let conn = db::connect(&settings.database_url, settings.sqlite_synchronous)
            .await
            .with_context(|| format!("connecting to {}", redact(&settings.database_url)))?;
        db::locks::migrate(&conn)
            .await
            .context("running database migrations")?;
        bootstrap_admin(&conn, settings.admin_token.as_deref()).await?;
        let read = db::connect_reader(&settings.database_url, &conn)
            .await
            .context("opening the database's reader connections")?;
        db::start_checkpointer(&settings.database_url)
            .await
            .context("opening the database's checkpoint connection")?;

        let write_turns =
            db::turns::WriteTurns::new(conn.get_database_backend() == sea_orm::DbBackend::Sqlite);
        let state = Arc::new(AppState {
            db: conn,
            write_turns,
            read,
            tokens: Default::default(),
            projects: Default::default(),
            models: Default::default(),
            training: Default::default(),
            metrics: Metrics::new(),
            scheduler: Scheduler::default(),
            route_counts: Default::default(),
            rank_depth: settings.rank_depth,
            jobs: tokio::runtime::Handle::current(),
        });
        state
            .scheduler
            .start(Arc::downgrade(&state))
            .await
            .context("starting the scheduler")?;

        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(state.clone());
        let json_limit = settings.max_json_bytes;
        let import_limit = ImportLimit(settings.max_import_bytes);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(routes::json_config(json_limit))
                .app_data(routes::path_config())
                .app_data(routes::query_config())
                .app_data(web::PayloadConfig::new(1 << 20))
                .app_data(import_limit)
                .wrap(from_fn(crate::error::normalize_errors))
                .wrap(from_fn(telemetry::track))
                .wrap(tracing_actix_web::TracingLogger::default())
                .configure(routes::configure)
        })
        .listen(listener)?
        .shutdown_timeout(30)
        .run();

        if let Some(path) = &settings.demo {
            demo::load(&state, path).await.context("loading the demo")?;
        }
        tracing::info!(port, "loupe is listening");
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests use it to simulate a restart).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT/SIGTERM; then stops accepting, lets in-flight
    /// requests finish (up to 30 s), stops the scheduler, and gives a training
    /// still running a bounded time to finish. One that does not is abandoned:
    /// a model version is written in a single transaction after its fit.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        self.state.scheduler.shutdown().await;
        if !self.state.training.wait_idle(SHUTDOWN_TRAINING_WAIT).await {
            tracing::warn!("a training was still running at shutdown: abandoned");
        }
        tracing::info!("loupe stopped");
        Ok(())
    }
}

/// `LOUPE_ADMIN_TOKEN` is made an admin token; with none set and no admin in
/// the database, one is generated and printed once.
async fn bootstrap_admin(
    db: &sea_orm::DatabaseConnection,
    token: Option<&str>,
) -> anyhow::Result<()> {
    match token {
        Some(t) => db::tokens::ensure_admin(db, t).await?,
        None if !db::tokens::any_live_admin(db).await? => {
            let secret = db::tokens::generate_secret();
            db::tokens::create(db, "admin", "admin", true, &secret).await?;
            eprintln!("\nloupe: created an admin token (shown once, keep it):\n\n    {secret}\n");
        }
        None => {}
    }
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***{}", &url[..s], &url[a..]),
        _ => url.to_string(),
    }
}
