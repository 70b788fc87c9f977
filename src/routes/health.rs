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

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Item counts are read at scrape time, so the gauge is never stale.
    if let Ok(rows) = crate::db::stats::status_counts_all(&state.db).await {
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
