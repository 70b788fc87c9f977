use super::project_or_404;
use crate::auth::Caller;
use crate::db::{self, items::StoredPrediction};
use crate::domain::{any_matches, check_row, ItemInput, ItemRules, Role, Route};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::learner::Input;
use crate::state::AppState;
use crate::training::argmax;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects/{pid}/predict", web::post().to(predict));
}

const MAX_BATCH: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    items: Vec<ItemInput>,
    #[serde(default)]
    enqueue: bool,
}

async fn predict(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    body: web::Json<PredictRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Service)?;
    let (p, spec) = project_or_404(&state, path.into_inner()).await?;
    let PredictRequest { items, enqueue } = body.into_inner();
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "items must hold 1–{MAX_BATCH} items"
        )));
    }
    let rules = ItemRules {
        labels: &spec.labels,
        feature_len: super::feature_len(&state, &p).await?,
        allow_label: false,
    };
    let mut len = rules.feature_len;
    let rows = items
        .into_iter()
        .enumerate()
        .map(|(i, r)| check_row(r, &rules, &mut len).map_err(|e| format!("items[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::invalid)?;
    let model = state
        .models
        .current(&state.read, p.id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoModel,
                "no model has been trained for this project yet",
            )
        })?;
    let m = model.clone();
    let (rows, proba) = web::block(move || {
        let inputs: Vec<Input> = rows
            .iter()
            .map(|r| Input {
                text: r.text.as_deref(),
                features: r.features.as_deref(),
            })
            .collect();
        let proba = m.model.predict_proba(&inputs);
        (rows, proba)
    })
    .await
    .map_err(ApiError::internal)?;
    let proba = proba.map_err(|e| ApiError::invalid(e.to_string()))?;
    let thresholds = model.thresholds();
    let mut predictions = Vec::with_capacity(rows.len());
    let mut stored = Vec::new();
    let mut per_route = [("auto", 0i64), ("review", 0), ("escalate", 0)];
    for (row, pr) in rows.into_iter().zip(proba.rows()) {
        let pr = pr.to_vec();
        let (best, conf) = argmax(&pr);
        // High-stakes cases see a senior person, however confident the model.
        let route = if any_matches(&spec.rules, row.meta.as_ref()) {
            Route::Escalate
        } else {
            thresholds.route(conf)
        };
        let route_name = match route {
            Route::Auto => "auto",
            Route::Review => "review",
            Route::Escalate => "escalate",
        };
        state
            .metrics
            .predictions
            .with_label_values(&[route_name])
            .inc();
        per_route
            .iter_mut()
            .find(|(r, _)| *r == route_name)
            .expect("route")
            .1 += 1;
        let probabilities: Map<String, Value> = model
            .labels
            .iter()
            .zip(&pr)
            .map(|(l, v)| (l.clone(), json!(v)))
            .collect();
        if enqueue {
            // A random share of auto cases is audited: reviewed blind.
            let audit = route == Route::Auto && rand::random::<f64>() < spec.audit_share;
            let review_tier = match route {
                Route::Auto if audit => Some("review"),
                Route::Auto => None,
                Route::Review => Some("review"),
                Route::Escalate => Some("escalate"),
            };
            let blind =
                audit || (review_tier.is_some() && rand::random::<f64>() < spec.blind_share);
            stored.push((
                predictions.len(),
                StoredPrediction {
                    item: row,
                    pred_label: model.labels[best].clone(),
                    confidence: conf,
                    version: model.meta.version,
                    review_tier,
                    blind,
                    audit,
                },
            ));
        }
        predictions.push(json!({
            "label": model.labels[best],
            "confidence": conf,
            "probabilities": probabilities,
            "route": route,
            "item_id": Value::Null,
        }));
    }
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    if state.route_counts.add(p.id, &day, &per_route) {
        state.route_counts.flush(&state.db).await?;
    }
    if !stored.is_empty() {
        let (idx, rows): (Vec<usize>, Vec<StoredPrediction>) = stored.into_iter().unzip();
        let ids = db::items::store_predictions(&state.db, p.id, &caller.name, rows).await?;
        for (i, id) in idx.into_iter().zip(ids) {
            predictions[i]["item_id"] = json!(id);
        }
    }
    Ok(HttpResponse::Ok().json(json!({
        "model_version": model.meta.version,
        "predictions": predictions,
    })))
}
