use super::{project_or_404, views};
use crate::auth::Caller;
use crate::db;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use crate::training::{self, TrainError, Trigger};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects/{pid}/train", web::post().to(train))
        .route("/projects/{pid}/models", web::get().to(list))
        .route("/projects/{pid}/models/active", web::get().to(active));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainQuery {
    wait: Option<bool>,
}

pub fn train_error(e: TrainError) -> ApiError {
    match e {
        TrainError::ProjectNotFound => ApiError::not_found("project"),
        TrainError::NotEnoughLabels => ApiError::new(
            ErrorCode::NotEnoughLabels,
            "training needs labels of at least 2 classes",
        ),
        TrainError::Db(e) => ApiError::internal(e),
        TrainError::Learner(crate::learner::LearnerError::NotFinite) => ApiError::conflict(
            "the model trained on these labels answers no finite probabilities (features of \
             extreme magnitude?); it was not stored, the active model stays",
        ),
        TrainError::Learner(e) => ApiError::internal(e),
        TrainError::Other(e) => ApiError::internal(e),
    }
}

async fn train(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    q: web::Query<TrainQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (p, spec) = project_or_404(&state, path.into_inner()).await?;
    let st = state.clone().into_inner();
    if q.wait.unwrap_or(false) {
        // On the jobs runtime (see `AppState::jobs`); a client that hangs up
        // leaves the training to finish.
        let v = state
            .jobs
            .spawn(async move { training::train_project(&st, p.id, Trigger::Api).await })
            .await
            .map_err(ApiError::internal)?
            .map_err(train_error)?;
        return Ok(HttpResponse::Created().json(views::model_version(&v)));
    }
    // Answer 409 now rather than start a training that cannot succeed.
    let dist = db::stats::label_distribution(&state.read, p.id).await?;
    let classes = dist
        .keys()
        .filter(|l| spec.labels.index_of(l).is_some())
        .count();
    if classes < 2 {
        return Err(train_error(TrainError::NotEnoughLabels));
    }
    state.jobs.spawn(async move {
        let _ = training::train_project(&st, p.id, Trigger::Api).await;
    });
    Ok(HttpResponse::Accepted().json(json!({"status": "started"})))
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    caller.require_any(&[Role::Annotator, Role::Service])?;
    let (p, _) = project_or_404(&state, path.into_inner()).await?;
    let rows = db::models::list(&state.read, p.id).await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(views::model_version).collect::<Vec<_>>()))
}

async fn active(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    caller.require_any(&[Role::Annotator, Role::Service])?;
    let (p, _) = project_or_404(&state, path.into_inner()).await?;
    let v = db::models::active(&state.db, p.id)
        .await?
        .ok_or_else(|| ApiError::not_found("active model"))?;
    Ok(HttpResponse::Ok().json(views::model_version(&v)))
}
