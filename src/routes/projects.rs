use super::{project_or_404, views};
use crate::auth::Caller;
use crate::db;
use crate::domain::{ProjectRequest, ProjectSpec, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects", web::post().to(create))
        .route("/projects", web::get().to(list))
        .route("/projects/{pid}", web::get().to(get))
        .route("/projects/{pid}", web::patch().to(patch));
}

fn duplicate_or(e: sea_orm::DbErr) -> ApiError {
    if db::is_unique_violation(&e) {
        ApiError::conflict("a project with this name exists")
    } else {
        e.into()
    }
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<ProjectRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let spec = ProjectSpec::create(body.into_inner()).map_err(ApiError::invalid)?;
    let p = db::projects::create(&state.db, spec.to_fields())
        .await
        .map_err(duplicate_or)?;
    state
        .scheduler
        .sync_project(p.id, p.retrain_cron.as_deref())
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Created().json(views::project(&p, Default::default())))
}

async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require_any(&[Role::Annotator, Role::Service])?;
    let mut out = Vec::new();
    for p in db::projects::list(&state.read).await? {
        let counts = db::projects::counts(&state.read, p.id).await?;
        out.push(views::project(&p, counts));
    }
    Ok(HttpResponse::Ok().json(out))
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    caller.require_any(&[Role::Annotator, Role::Service])?;
    let (p, _) = project_or_404(&state, path.into_inner()).await?;
    let counts = db::projects::counts(&state.read, p.id).await?;
    Ok(HttpResponse::Ok().json(views::project(&p, counts)))
}

async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: web::Json<ProjectRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let path_id = path.into_inner();
    let (p, spec) = project_or_404(&state, path_id).await?;
    let strategy_before = spec.strategy;
    let spec = spec.patch(body.into_inner()).map_err(ApiError::invalid)?;
    let saved = db::projects::save(&state.db, p, spec.to_fields()).await;
    state.projects.invalidate(path_id);
    let p = saved.map_err(duplicate_or)?;
    state
        .scheduler
        .sync_project(p.id, p.retrain_cron.as_deref())
        .await
        .map_err(ApiError::internal)?;
    if spec.strategy != strategy_before {
        super::items::spawn_rescore(&state, p.id, std::time::Duration::ZERO);
    }
    let counts = db::projects::counts(&state.read, p.id).await?;
    Ok(HttpResponse::Ok().json(views::project(&p, counts)))
}
