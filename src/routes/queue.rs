use super::{project_or_404, views};
use crate::auth::Caller;
use crate::db::{self, labels::LabelError, labels::UndoError, turns::Turn};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects/{pid}/queue/next", web::post().to(next))
        .route("/projects/{pid}/queue/review", web::post().to(review))
        .route(
            "/projects/{pid}/items/{item_id}/labels",
            web::post().to(create_label),
        )
        .route("/projects/{pid}/queue/release", web::post().to(release))
        .route(
            "/projects/{pid}/labels/{label_id}",
            web::delete().to(undo_label),
        );
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NextRequest {
    n: Option<u64>,
}

async fn next(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Annotator)?;
    lease(&state, &caller, path.into_inner(), body, "unlabeled").await
}

async fn review(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Reviewer)?;
    lease(&state, &caller, path.into_inner(), body, "review").await
}

async fn lease(
    state: &AppState,
    caller: &Caller,
    pid: i64,
    body: web::Bytes,
    status: &'static str,
) -> ApiResult<HttpResponse> {
    let req: NextRequest = super::optional_json(&body)?;
    let n = req.n.unwrap_or(1);
    if !(1..=50).contains(&n) {
        return Err(ApiError::invalid("n must be between 1 and 50"));
    }
    let (p, spec) = project_or_404(state, pid).await?;
    let queue = db::items::QueueFilter {
        project_id: p.id,
        status,
        owner: caller.token_id,
        include_escalated: caller.senior,
        skip_labeled_by_owner: status == "unlabeled" && p.labels_per_item > 1,
    };
    if status == "unlabeled" {
        crate::training::cold_start_if_unranked(state, p.id, n)
            .await
            .map_err(super::models::train_error)?;
    }
    let turn = state.write_turns.take(Turn::Urgent).await;
    let mut rows =
        db::items::lease_next(&state.db, queue, n, p.lease_seconds as i64 * 1000).await?;
    drop(turn);
    if status == "review" && !rows.is_empty() && spec.gold_share > 0.0 {
        mix_in_gold(state, caller, p.id, spec.gold_share, &mut rows).await?;
    }
    // Gold items pass for review items of the active model, leased alike.
    let gold_version = if rows.iter().any(|i| i.status == "gold") {
        db::models::active(&state.db, p.id)
            .await?
            .map(|v| v.version)
    } else {
        None
    };
    let gold_lease = db::now_ms() + p.lease_seconds as i64 * 1000;
    let ids: Vec<i64> = rows
        .iter()
        .filter(|i| i.status != "gold")
        .map(|i| i.id)
        .collect();
    let labels = db::labels::for_items(&state.read, &ids).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|i| {
            let gold = i.status == "gold";
            let suggestion = match (&i.pred_label, i.pred_confidence, i.blind) {
                (Some(l), Some(c), false) => json!({"label": l, "confidence": c}),
                _ => Value::Null,
            };
            let mut item = views::item(i, &labels);
            if i.blind {
                // Blind items look like ordinary ones: no model answer anywhere.
                item["prediction"] = Value::Null;
            }
            if gold {
                item["prediction"]["model_version"] = json!(gold_version);
            }
            let (score, expires) = if gold {
                (1.0 - i.pred_confidence.unwrap_or(0.0), Some(gold_lease))
            } else {
                (i.score, i.lease_expires_at)
            };
            json!({
                "item": item,
                "score": score,
                "suggestion": suggestion,
                "tier": i.tier,
                "lease_expires_at": expires.and_then(views::rfc3339_ms),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Puts gold items in some review slots (each with chance `share`), at
/// random places, giving back the leases of the real items they displace.
/// Only when real items are waiting, so gold never shows in an empty queue.
async fn mix_in_gold(
    state: &AppState,
    caller: &Caller,
    pid: i64,
    share: f64,
    rows: &mut Vec<db::items::Item>,
) -> ApiResult<()> {
    use rand::Rng;
    let want = {
        let mut rng = rand::thread_rng();
        (0..rows.len()).filter(|_| rng.gen::<f64>() < share).count()
    };
    let gold = db::gold::pick(&state.db, pid, caller.token_id, want).await?;
    if gold.is_empty() {
        return Ok(());
    }
    // As many real items give way as gold items come in (never more than
    // were asked for); they go back to the queue at once.
    let keep = rows.len().saturating_sub(gold.len());
    let displaced: Vec<i64> = rows.drain(keep..).map(|i| i.id).collect();
    db::items::release(&state.db, pid, caller.token_id, &displaced).await?;
    let mut rng = rand::thread_rng();
    for g in gold {
        let at = rng.gen_range(0..=rows.len());
        rows.insert(at, g);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseRequest {
    item_ids: Vec<i64>,
}

/// Gives back the caller's own leases (skipped or prefetched items).
async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: web::Json<ReleaseRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Annotator)?;
    if body.item_ids.len() > 1000 {
        return Err(ApiError::invalid("item_ids holds at most 1000 ids"));
    }
    let (p, _) = project_or_404(&state, path.into_inner()).await?;
    db::items::release(&state.db, p.id, caller.token_id, &body.item_ids).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelRequest {
    label: String,
    duration_ms: Option<i64>,
}

async fn create_label(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    body: web::Json<LabelRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Annotator)?;
    let (pid, item_id) = path.into_inner();
    let (p, spec) = project_or_404(&state, pid).await?;
    if spec.labels.index_of(&body.label).is_none() {
        return Err(ApiError::invalid(format!(
            "label {} is not one of this project's labels",
            crate::error::echo(&body.label)
        )));
    }
    if let Some(d) = body.duration_ms {
        if !(0..=86_400_000).contains(&d) {
            return Err(ApiError::invalid(
                "duration_ms must be between 0 and 86400000",
            ));
        }
    }
    let turn = state.write_turns.take(Turn::Normal).await;
    let created = db::labels::create(
        &state.db,
        db::labels::NewLabel {
            project_id: p.id,
            item_id,
            label: &body.label,
            annotator_id: caller.token_id,
            annotator: &caller.name,
            duration_ms: body.duration_ms,
            override_lease: caller.role == Role::Admin,
            labels_per_item: spec.labels_per_item,
            may_review: caller.role.allows(Role::Reviewer),
            may_escalate: caller.senior,
        },
    )
    .await;
    drop(turn);
    let (mut label, item) = created.map_err(|e| match e {
        LabelError::ItemNotFound => ApiError::not_found("item"),
        LabelError::ReviewerOnly => caller
            .require(Role::Reviewer)
            .err()
            .unwrap_or_else(|| ApiError::internal(anyhow::anyhow!("reviewer check disagrees"))),
        LabelError::SeniorOnly => ApiError::new(
            ErrorCode::Forbidden,
            "escalated cases are decided by senior reviewers",
        ),
        LabelError::LeasedToOther => ApiError::conflict("this item is leased to another annotator"),
        LabelError::GoldAnsweredByYou => ApiError::conflict("you have answered this item already"),
        LabelError::LabeledByOther => {
            ApiError::conflict("another person's label decides this item; a reviewer can change it")
        }
        LabelError::AlreadyLabeledByYou => {
            ApiError::conflict("you have labeled this item already; it needs other people's labels")
        }
        LabelError::Db(e) => e.into(),
    })?;
    state.metrics.labels.inc();
    if label.source == "gold" {
        // Answered like any review item; that it was gold stays unsaid.
        let agreed = item.pred_label.as_deref() == Some(label.label.as_str());
        label.source = if agreed { "review" } else { "override" }.into();
    }
    Ok(HttpResponse::Created().json(views::label(&label)))
}

async fn undo_label(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Annotator)?;
    let (pid, label_id) = path.into_inner();
    let (p, _) = project_or_404(&state, pid).await?;
    let label = db::labels::get(&state.db, p.id, label_id)
        .await?
        .ok_or_else(|| ApiError::not_found("label"))?;
    if label.annotator_id != caller.token_id && caller.role != Role::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the label's author or an admin may undo it",
        ));
    }
    db::labels::undo(&state.db, &label)
        .await
        .map_err(|e| match e {
            UndoError::AlreadyUndone => {
                ApiError::conflict("this label was already undone, or replaced by a later label")
            }
            UndoError::Db(e) => e.into(),
        })?;
    Ok(HttpResponse::NoContent().finish())
}
