use super::project_or_404;
use crate::auth::Caller;
use crate::db;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use futures_util::stream;
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects/{pid}/stats", web::get().to(stats))
        .route("/projects/{pid}/export", web::get().to(export));
}

async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Annotator)?;
    let (p, spec) = project_or_404(&state, path.into_inner()).await?;
    let counts = db::projects::counts(&state.read, p.id).await?;
    let dist = db::stats::label_distribution(&state.read, p.id).await?;
    let sources = db::stats::label_sources(&state.read, p.id).await?;
    let selections = db::stats::label_selections(&state.read, p.id).await?;
    let annotators = db::stats::annotators(&state.read, p.id).await?;
    let mut versions = db::models::list(&state.read, p.id).await?;
    versions.reverse();
    let curve: Vec<_> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "n_labels": v.n_labels,
                "accuracy": v.metrics.get("accuracy"),
                "accuracy_interval": v.metrics.get("accuracy_interval"),
                "cv_accuracy": v.metrics.get("cv_accuracy"),
                "macro_f1": v.metrics.get("macro_f1"),
                "trained_at": super::views::rfc3339(v.trained_at),
            })
        })
        .collect();
    let reviewed = sources.get("review").copied().unwrap_or(0);
    let overridden = sources.get("override").copied().unwrap_or(0);
    let override_rate = if reviewed + overridden > 0 {
        Some(overridden as f64 / (reviewed + overridden) as f64)
    } else {
        None
    };
    let active = versions.iter().find(|v| v.active);
    // Stopping signal: Cohen's kappa between successive models' predictions
    // on a fixed sample; ≥ 0.99 over the last 3 versions = stopped changing.
    let kappas: Vec<f64> = versions
        .iter()
        .rev()
        .filter_map(|v| v.metrics.get("stability_kappa").and_then(|k| k.as_f64()))
        .take(3)
        .collect();
    let mean_kappa = (kappas.len() == 3).then(|| kappas.iter().sum::<f64>() / 3.0);
    let stopping = json!({
        "recent_kappa": kappas,
        "mean_kappa_last_3": mean_kappa,
        "stopped_changing": mean_kappa.is_some_and(|k| k >= 0.99),
    });
    let new_labels = db::labels::count_since(
        &state.read,
        p.id,
        active.map(|v| v.label_watermark).unwrap_or(0),
    )
    .await?;
    let (hist, hist_version) = db::stats::pool_histogram(&state.read, p.id, active).await?;
    let reviews = db::stats::review_rows(&state.read, p.id).await?;
    let human = db::stats::human_labels(&state.read, p.id).await?;
    let gold = db::gold::answers(&state.read, p.id).await?;
    let gold_items = db::gold::count(&state.read, p.id).await?;
    let mut volumes: std::collections::BTreeMap<
        String,
        serde_json::Map<String, serde_json::Value>,
    > = Default::default();
    state.route_counts.flush(&state.db).await?;
    for (day, route, n) in db::stats::routing_volumes(&state.read, p.id).await? {
        let e = volumes.entry(day.clone()).or_insert_with(|| {
            let mut m = serde_json::Map::new();
            m.insert("day".into(), json!(day));
            for r in ["auto", "review", "escalate"] {
                m.insert(r.into(), json!(0));
            }
            m
        });
        e.insert(route, json!(n));
    }
    Ok(HttpResponse::Ok().json(json!({
        "counts": counts,
        "confidence_histogram": {
            "edges": (0..=10).map(|i| i as f64 / 10.0).collect::<Vec<_>>(),
            "counts": hist,
            "model_version": hist_version,
        },
        "label_distribution": dist,
        "label_sources": sources,
        "label_selections": selections,
        "learning_curve": curve,
        "stopping": stopping,
        "override_rate": override_rate,
        "annotators": annotators,
        "routing_volumes": volumes.into_values().collect::<Vec<_>>(),
        "overrides": super::review_stats::overrides(&reviews),
        "confident_and_wrong": super::review_stats::confident_and_wrong(&reviews, spec.thresholds.auto),
        "audit": super::review_stats::audit(&reviews, spec.target_precision),
        "reviewers": super::review_stats::reviewers(&reviews, &gold),
        "gold": super::review_stats::gold_summary(gold_items, &gold),
        "calibration": active.and_then(|v| v.metrics.get("calibration")),
        "agreement": super::review_stats::agreement(&human, spec.labels_per_item as usize),
        "active_model": active.map(|v| v.version),
        "labels_since_active_model": new_labels,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
}

#[derive(Clone, Copy)]
enum Format {
    Jsonl,
    Csv,
}

const EXPORT_PAGE: u64 = 1000;

/// Every labelled item with its final label, streamed page by page so an
/// export of a million items never sits in memory whole.
async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<i64>,
    q: web::Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (p, _) = project_or_404(&state, path.into_inner()).await?;
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => Format::Jsonl,
        "csv" => Format::Csv,
        other => {
            return Err(ApiError::invalid(format!(
                "format must be jsonl or csv (got {other:?})"
            )))
        }
    };
    let pid = p.id;
    let st = state.clone();
    // State: (next id to read after, header written, finished)
    let body = stream::unfold((0i64, false, false), move |(after, header, done)| {
        let st = st.clone();
        async move {
            if done {
                return None;
            }
            let mut out = String::new();
            if !header {
                if let Format::Csv = format {
                    out.push_str("id,external_id,label,text,features,annotators\n");
                }
            }
            match export_page(&st, pid, after, format, &mut out).await {
                Ok((next, finished)) => Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from(out)),
                    (next, true, finished),
                )),
                Err(e) => {
                    // The status line is gone already: end the stream with an
                    // error so the client sees a broken transfer, not a short file.
                    tracing::error!(error = %e, "export failed");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        (after, true, true),
                    ))
                }
            }
        }
    });
    let (ct, ext) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    Ok(HttpResponse::Ok()
        .content_type(ct)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"project-{pid}.{ext}\""),
        ))
        .streaming(body))
}

/// A CSV cell that a spreadsheet will not run as a formula (OWASP's CSV
/// injection advice): text starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return gets a leading `'`. Numbers are written by loupe itself
/// and left alone.
fn spreadsheet_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Appends one page of the export to `out`; returns the last id and whether
/// this was the last page.
async fn export_page(
    st: &AppState,
    pid: i64,
    after: i64,
    format: Format,
    out: &mut String,
) -> Result<(i64, bool), sea_orm::DbErr> {
    let rows = db::items::list(&st.db, pid, Some("labeled"), Some(after), EXPORT_PAGE).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let labels = db::labels::for_items(&st.db, &ids).await?;
    let trail = match format {
        Format::Jsonl => db::labels::decisions_for_items(&st.db, &ids).await?,
        Format::Csv => vec![],
    };
    for r in &rows {
        let who: Vec<&str> = labels
            .iter()
            .filter(|l| l.item_id == r.id)
            .map(|l| l.annotator.as_str())
            .collect();
        // How the item reached the person whose label decided it.
        let selection = labels
            .iter()
            .filter(|l| l.item_id == r.id && l.undone_at.is_none())
            .max_by_key(|l| l.id)
            .and_then(|l| l.selection.as_deref());
        let features = r.features.as_deref().map(db::items::decode_features);
        match format {
            Format::Jsonl => {
                let v = json!({
                    "id": r.id, "external_id": r.external_id, "label": r.final_label,
                    "text": r.text, "features": features, "meta": r.meta,
                    "decided_by": r.decided_by, "annotators": who, "selection": selection,
                    "decisions": trail.iter().filter(|d| d.item_id == r.id).map(|d| json!({
                        "actor": d.actor, "action": d.action, "label": d.label,
                        "suggestion": d.suggestion, "suggestion_shown": d.suggestion_shown,
                        "model_version": d.model_version,
                        "at": super::views::rfc3339(d.created_at),
                    })).collect::<Vec<_>>(),
                });
                out.push_str(&v.to_string());
                out.push('\n');
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let feats = features
                    .map(|f| {
                        f.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let _ = w.write_record([
                    r.id.to_string(),
                    spreadsheet_safe(&r.external_id),
                    spreadsheet_safe(r.final_label.as_deref().unwrap_or_default()),
                    spreadsheet_safe(r.text.as_deref().unwrap_or_default()),
                    feats,
                    spreadsheet_safe(&who.join(" ")),
                ]);
                if let Ok(b) = w.into_inner() {
                    out.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
    }
    let finished = (rows.len() as u64) < EXPORT_PAGE;
    Ok((rows.last().map(|r| r.id).unwrap_or(after), finished))
}
