use super::npy;
use super::project_or_404;
use crate::auth::Caller;
use crate::db::{self, items::StoredPrediction};
use crate::domain::{any_matches, check_row, ItemInput, ItemRules, Role, Route};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::learner::Input;
use crate::state::AppState;
use crate::training::argmax;
use crate::training::LoadedModel;
use actix_web::http::header::{ACCEPT, CONTENT_TYPE};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use ndarray::Array2;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `.npy` bodies first: `cfg.route` makes a route's guards its resource's,
    // so any other body falls through to the JSON route.
    cfg.route(
        "/projects/{pid}/predict",
        web::post()
            .guard(guard::fn_guard(|ctx| {
                header_names_npy(ctx.head(), CONTENT_TYPE)
            }))
            .to(predict_npy),
    );
    cfg.route("/projects/{pid}/predict", web::post().to(predict));
}

const MAX_BATCH: usize = 10_000;
/// Items an `.npy` batch may hold (the body limit, as for imports, applies too).
const MAX_NPY_ROWS: usize = 100_000;

fn header_names_npy(
    head: &actix_web::dev::RequestHead,
    name: actix_web::http::header::HeaderName,
) -> bool {
    head.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(npy::names_npy)
}

/// The project's active model, or 409 `no_model`.
async fn active_model(state: &AppState, project_id: i64) -> ApiResult<Arc<LoadedModel>> {
    state
        .models
        .current(&state.read, project_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoModel,
                "no model has been trained for this project yet",
            )
        })
}

/// One prediction as the JSON answer shows it.
fn prediction_json(labels: &[String], pr: &[f64], best: usize, route: Route) -> Value {
    let probabilities: Map<String, Value> = labels
        .iter()
        .zip(pr)
        .map(|(l, v)| (l.clone(), json!(v)))
        .collect();
    json!({
        "label": labels[best],
        "confidence": pr[best],
        "probabilities": probabilities,
        "route": route,
        "item_id": Value::Null,
    })
}

/// Adds a request's routes (counts indexed by `route as usize`) to the
/// metrics and the daily counts.
async fn count_routes(state: &AppState, project_id: i64, per_route: [i64; 3]) -> ApiResult<()> {
    let named = Route::ALL.map(|r| (r.as_str(), per_route[r as usize]));
    for &(name, n) in &named {
        if n > 0 {
            state
                .metrics
                .predictions
                .with_label_values(&[name])
                .inc_by(n as u64);
        }
    }
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    if state.route_counts.add(project_id, &day, &named) {
        state.route_counts.flush(&state.db).await?;
    }
    Ok(())
}

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
    let model = active_model(&state, p.id).await?;
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
    let mut per_route = [0i64; 3];
    for (row, pr) in rows.into_iter().zip(proba.rows()) {
        let pr = pr.to_vec();
        let (best, conf) = argmax(&pr);
        // High-stakes cases see a senior person, however confident the model.
        let route = if any_matches(&spec.rules, row.meta.as_ref()) {
            Route::Escalate
        } else {
            thresholds.route(conf)
        };
        per_route[route as usize] += 1;
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
        predictions.push(prediction_json(&model.labels, &pr, best, route));
    }
    count_routes(&state, p.id, per_route).await?;
    if !stored.is_empty() {
        let (idx, rows): (Vec<usize>, Vec<StoredPrediction>) = stored.into_iter().unzip();
        let ids = db::items::store_predictions(&state.db, p.id, &caller.name, rows)
            .await
            .map_err(|e| match e {
                db::items::StoreError::OtherContent(ext) => ApiError::conflict(format!(
                    "external_id {:?} already names an item with other content; \
                     send each case under an id of its own",
                    ext.chars().take(200).collect::<String>()
                )),
                db::items::StoreError::Db(e) => e.into(),
            })?;
        for (i, id) in idx.into_iter().zip(ids) {
            predictions[i]["item_id"] = json!(id);
        }
    }
    Ok(HttpResponse::Ok().json(json!({
        "model_version": model.meta.version,
        "predictions": predictions,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpyQuery {
    output: Option<npy::NpyOutput>,
}

/// Batch prediction from a NumPy array (`Content-Type: application/x-npy`):
/// a features-only project's items as one 2-D float array, items ×
/// features. Routed by the thresholds alone (no `meta`), nothing enqueued.
/// The answer is the JSON one, or with `Accept: application/x-npy` one
/// structured array, or with `?output=probabilities` the probabilities
/// alone as a 2-D array (see [`npy::NpyOutput`]), with the model version in
/// `Loupe-Model-Version`.
///
/// The rows are predicted as the body arrives, a block of at most 128 KiB
/// at a time while those bytes are still in cache (see [`NpyBatch`]), so a
/// large batch is never held whole. A block is tens of microseconds of
/// arithmetic, less than parsing as much JSON, so it runs where the body is
/// read; a Fortran-order array, which can only be read whole, is predicted
/// on the blocking pool, and a JSON answer serialized there.
async fn predict_npy(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    q: web::Query<NpyQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Service)?;
    let answer_npy = header_names_npy(req.head(), ACCEPT);
    if q.output.is_some() && !answer_npy {
        return Err(ApiError::invalid(
            "output= chooses the form of an .npy answer: send Accept: application/x-npy",
        ));
    }
    let output = q.output.unwrap_or(npy::NpyOutput::Predictions);
    let (p, _) = project_or_404(&state, path.into_inner()).await?;
    let model = active_model(&state, p.id).await?;
    let Some(width) = model.model.feature_len() else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "this project's model reads text: send the items as JSON",
        ));
    };
    // The largest array there may be (float64), and a header; within the
    // import limit.
    let limit = req
        .app_data::<super::items::ImportLimit>()
        .map_or(64 << 20, |l| l.0)
        .min((1 << 16) + MAX_NPY_ROWS * width.max(1) * 8);
    let mut stream = npy::MatrixStream::new(MAX_NPY_ROWS, Some(width));
    let mut batch = NpyBatch::new(model.clone(), answer_npy.then_some(output));
    super::each_chunk(&req, payload, limit, |chunk| {
        stream
            .push(chunk, &mut |b| batch.take(b))
            .map_err(ApiError::invalid)
    })
    .await?;
    // What is left is the last rows and the answer's bytes, unless the
    // array is all still to read or the answer is JSON to serialize.
    let heavy = stream.whole_at_end() || !answer_npy;
    let finish = move || -> Result<_, String> {
        stream.finish(&mut |b| batch.take(b))?;
        batch.finish()
    };
    let (body, per_route) = if heavy {
        web::block(finish).await.map_err(ApiError::internal)?
    } else {
        finish()
    }
    .map_err(ApiError::invalid)?;
    count_routes(&state, p.id, per_route).await?;
    let mut res = HttpResponse::Ok();
    res.insert_header(("Loupe-Model-Version", model.meta.version.to_string()));
    if answer_npy {
        res.content_type(npy::MEDIA_TYPE);
    } else {
        res.content_type("application/json");
    }
    Ok(res.body(super::Pieces::from(body)))
}

/// An `.npy` batch's answer, made block by block: each block of rows is
/// scored, turned into probabilities, routed and written out while it is
/// in cache; only the answer grows.
struct NpyBatch {
    model: Arc<LoadedModel>,
    thresholds: crate::domain::Thresholds,
    answer: NpyAnswer,
    per_route: [i64; 3],
    /// Per block: room for the scores, and each row's label and route.
    scores: Vec<f64>,
    best: Vec<usize>,
    routes: Vec<Route>,
}

enum NpyAnswer {
    /// Made at the first block, when the number of items is known.
    Npy(npy::NpyOutput, Option<npy::PredictionWriter>),
    Json(Vec<Value>),
}

impl NpyBatch {
    /// `npy`: the form of an `.npy` answer, `None` for JSON.
    fn new(model: Arc<LoadedModel>, npy: Option<npy::NpyOutput>) -> NpyBatch {
        NpyBatch {
            thresholds: model.thresholds(),
            model,
            answer: match npy {
                Some(output) => NpyAnswer::Npy(output, None),
                None => NpyAnswer::Json(Vec::new()),
            },
            per_route: [0; 3],
            scores: Vec::new(),
            best: Vec::new(),
            routes: Vec::new(),
        }
    }

    fn take(&mut self, b: npy::Block) -> Result<(), String> {
        let m = &self.model.model;
        let shape = (b.rows, m.score_len());
        let mut scores = std::mem::take(&mut self.scores);
        scores.resize(shape.0 * shape.1, 0.0);
        m.score_le_rows(b.data, &mut scores)
            .map_err(|e| e.to_string())?;
        // A value that is not finite spoils its row's scores.
        if !scores.iter().fold(true, |ok, v| ok & v.is_finite()) {
            let k = shape.1.max(1);
            for (r, row) in scores.chunks_exact(k).enumerate() {
                if let Some(e) = row
                    .iter()
                    .any(|v| !v.is_finite())
                    .then(|| b.non_finite(r))
                    .flatten()
                {
                    return Err(e);
                }
            }
        }
        let proba =
            m.proba_of_scores(Array2::from_shape_vec(shape, scores).map_err(|e| e.to_string())?);
        self.best.clear();
        self.routes.clear();
        let k = proba.ncols().max(1);
        for pr in proba.as_slice().expect("standard layout").chunks_exact(k) {
            let (best, conf) = argmax(pr);
            let route = self.thresholds.route(conf);
            self.per_route[route as usize] += 1;
            self.best.push(best);
            self.routes.push(route);
        }
        let labels = &self.model.labels;
        match &mut self.answer {
            NpyAnswer::Npy(output, w) => w
                .get_or_insert_with(|| npy::PredictionWriter::new(labels, b.of, *output))
                .push(proba.view(), &self.best, &self.routes),
            NpyAnswer::Json(out) => out.extend(
                proba
                    .rows()
                    .into_iter()
                    .zip(self.best.iter().zip(&self.routes))
                    .map(|(pr, (&best, &route))| {
                        prediction_json(
                            labels,
                            pr.as_slice().expect("standard layout"),
                            best,
                            route,
                        )
                    }),
            ),
        }
        // Room for the next block's scores.
        self.scores = proba.into_raw_vec_and_offset().0;
        Ok(())
    }

    /// The answer's body, and the items sent each way.
    fn finish(self) -> Result<(Vec<u8>, [i64; 3]), String> {
        let body = match self.answer {
            NpyAnswer::Npy(_, w) => w.ok_or("no rows were read")?.finish(),
            NpyAnswer::Json(predictions) => serde_json::to_vec(&json!({
                "model_version": self.model.meta.version,
                "predictions": predictions,
            }))
            .map_err(|e| e.to_string())?,
        };
        Ok((body, self.per_route))
    }
}
