use crate::state::AppState;
use actix_web::{web, HttpResponse};
use sea_orm::ConnectionTrait;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.db.get_database_backend();
    match state
        .db
        .execute_raw(sea_orm::Statement::from_string(backend, "SELECT 1"))
        .await
    {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "health check: database does not answer");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "status": "unavailable",
                "error": {"code": "internal", "message": "database does not answer"}
            }))
        }
    }
}

/// How stale `loupe_items` may be: a scrape within this time of the last
/// count reuses it.
const ITEM_COUNTS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Item counts are read at scrape time, at most every
    // `ITEM_COUNTS_EVERY`, from a reader: the count walks an index of every
    // item (~130 ms at a 1M pool), which on SQLite's single writer would
    // hold up every lease and label behind it.
    let counted = if state.metrics.item_counts_due(ITEM_COUNTS_EVERY) {
        crate::db::stats::status_counts_all(&state.read).await.ok()
    } else {
        None
    };
    if let Some(rows) = counted {
        state.metrics.queue_size.reset();
        for (pid, status, n) in rows {
            state
                .metrics
                .queue_size
                .with_label_values(&[pid.to_string().as_str(), status.as_str()])
                .set(n);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
