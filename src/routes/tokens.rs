use crate::auth::Caller;
use crate::db;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::routes::views::rfc3339;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::post().to(create))
        .route("/tokens", web::get().to(list))
        .route("/tokens/{id}", web::delete().to(revoke))
        .route("/me", web::get().to(me));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
    /// A senior reviewer decides escalated cases.
    #[serde(default)]
    senior: bool,
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewToken>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name must be 1–100 characters"));
    }
    let role = Role::parse(&body.role).map_err(ApiError::invalid)?;
    if body.senior && !matches!(role, Role::Reviewer | Role::Admin) {
        return Err(ApiError::invalid("senior applies to reviewer tokens only"));
    }
    let secret = db::tokens::generate_secret();
    let t = db::tokens::create(&state.db, name, role.as_str(), body.senior, &secret).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": t.id, "name": t.name, "role": t.role, "token": secret, "senior": t.senior,
        "created_at": rfc3339(t.created_at),
    })))
}

async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let rows = db::tokens::list(&state.db).await?;
    Ok(HttpResponse::Ok().json(
        rows.iter()
            .map(|t| {
                json!({
                    "id": t.id, "name": t.name, "role": t.role,
                    "created_at": rfc3339(t.created_at),
                    "revoked": t.revoked_at.is_some(),
                    "senior": t.senior,
                })
            })
            .collect::<Vec<_>>(),
    ))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let revoked = db::tokens::revoke(&state.db, path.into_inner()).await?;
    state.tokens.clear();
    match revoked {
        db::tokens::Revoked::Done => Ok(HttpResponse::NoContent().finish()),
        db::tokens::Revoked::NotFound => Err(ApiError::not_found("token")),
        db::tokens::Revoked::LastAdmin => Err(ApiError::conflict(
            "this is the last live admin token: create another admin first",
        )),
    }
}

/// Who the caller is: the UI uses it after sign-in.
async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": caller.token_id, "name": caller.name, "role": caller.role.as_str(),
        "senior": caller.senior,
    }))
}
