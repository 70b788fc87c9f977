//! Gold items: known answers mixed into the review queue (admins add them).
use super::project_or_404;
use crate::auth::Caller;
use crate::db;
use crate::domain::{check_gold, GoldBody, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects/{pid}/gold", web::post().to(add));
}

async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: web::Json<GoldBody>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (p, spec) = project_or_404(&state, path.into_inner()).await?;
    let feature_len = p.feature_len.map(|n| n as usize);
    // Shown like real review items: a confidence in the review band.
    let band = (
        spec.thresholds.review.max(0.5),
        spec.thresholds.auto.min(0.999),
    );
    let (rows, len) = check_gold(
        body.into_inner().into_rows(),
        &spec.labels,
        feature_len,
        band,
    )
    .map_err(ApiError::invalid)?;
    let new_len = if feature_len.is_none() { len } else { None };
    let out = db::gold::insert(&state.db, p.id, new_len.map(|n| n as i32), rows).await;
    state.projects.invalidate(p.id);
    let out = out?;
    Ok(HttpResponse::Ok().json(out))
}
