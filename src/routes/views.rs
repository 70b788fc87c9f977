//! The JSON shapes of docs/api.md, built from database rows.
use crate::db::{self, items::Item, labels::Label, models::VersionMeta, projects::Project};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn rfc3339_ms(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(rfc3339)
}

pub fn project(p: &Project, counts: db::projects::Counts) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "labels": p.labels,
        "strategy": p.strategy,
        "retrain_cron": p.retrain_cron,
        "min_new_labels": p.min_new_labels,
        "routing": {
            "auto_threshold": p.auto_threshold,
            "review_threshold": p.review_threshold,
            "target_precision": p.target_precision,
            "rules": p.rules.clone().unwrap_or_else(|| json!([])),
            "audit_share": p.audit_share,
            "blind_share": p.blind_share,
            "gold_share": p.gold_share,
        },
        "lease_seconds": p.lease_seconds,
        "labels_per_item": p.labels_per_item,
        "feature_len": p.feature_len.filter(|n| *n > 0),
        "created_at": rfc3339(p.created_at),
        "counts": counts,
    })
}

#[derive(Serialize)]
pub struct LabelView {
    pub id: i64,
    pub item_id: i64,
    pub label: String,
    pub annotator: String,
    pub source: String,
    /// How the item reached the labeller (`domain::Selection`; null for
    /// labels from before it was recorded).
    pub selection: Option<String>,
    pub created_at: String,
    pub duration_ms: Option<i64>,
}

pub fn label(l: &Label) -> LabelView {
    LabelView {
        id: l.id,
        item_id: l.item_id,
        label: l.label.clone(),
        annotator: l.annotator.clone(),
        source: l.source.clone(),
        selection: l.selection.clone(),
        created_at: rfc3339(l.created_at),
        duration_ms: l.duration_ms,
    }
}

pub fn item(i: &Item, labels: &[Label]) -> Value {
    if i.status == "gold" {
        return gold_item(i);
    }
    let prediction = match (&i.pred_label, i.pred_confidence, i.pred_version) {
        (Some(l), Some(c), Some(v)) => json!({"label": l, "confidence": c, "model_version": v}),
        _ => Value::Null,
    };
    json!({
        "id": i.id,
        "external_id": i.external_id,
        "text": i.text,
        "features": i.features.as_deref().map(db::items::decode_features),
        "meta": i.meta,
        "status": i.status,
        "prediction": prediction,
        "label": i.final_label,
        "decided_by": i.decided_by,
        "labels": labels.iter().filter(|l| l.item_id == i.id).map(label).collect::<Vec<_>>(),
    })
}

/// A gold item reads like an undecided review item: its answer, and the
/// answers reviewers gave, are nowhere in it.
fn gold_item(i: &Item) -> Value {
    json!({
        "id": i.id,
        "external_id": i.external_id,
        "text": i.text,
        "features": i.features.as_deref().map(db::items::decode_features),
        "meta": i.meta,
        "status": "review",
        "prediction": {"label": i.pred_label, "confidence": i.pred_confidence, "model_version": i.pred_version},
        "label": null,
        "decided_by": null,
        "labels": [],
    })
}

pub fn model_version(v: &VersionMeta) -> Value {
    json!({
        "version": v.version,
        "trained_at": rfc3339(v.trained_at),
        "n_labels": v.n_labels,
        "algorithm": v.algorithm,
        "metrics": v.metrics,
        "thresholds": {"auto": v.auto_threshold, "review": v.review_threshold},
        "active": v.active,
    })
}
