use super::entities::model_versions::{self, Entity as Versions};
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbErr,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

/// A model version without its (large) serialized model.
#[derive(Debug, Clone, FromQueryResult)]
pub struct VersionMeta {
    pub id: i64,
    pub project_id: i64,
    pub version: i32,
    pub trained_at: DateTime<Utc>,
    pub n_labels: i32,
    pub label_watermark: i64,
    pub algorithm: String,
    pub metrics: serde_json::Value,
    pub auto_threshold: f64,
    pub review_threshold: f64,
    pub active: bool,
}

const META_COLUMNS: [model_versions::Column; 11] = [
    model_versions::Column::Id,
    model_versions::Column::ProjectId,
    model_versions::Column::Version,
    model_versions::Column::TrainedAt,
    model_versions::Column::NLabels,
    model_versions::Column::LabelWatermark,
    model_versions::Column::Algorithm,
    model_versions::Column::Metrics,
    model_versions::Column::AutoThreshold,
    model_versions::Column::ReviewThreshold,
    model_versions::Column::Active,
];

pub struct NewVersion {
    pub project_id: i64,
    pub n_labels: i32,
    pub label_watermark: i64,
    pub algorithm: String,
    pub metrics: serde_json::Value,
    pub auto_threshold: f64,
    pub review_threshold: f64,
    pub model: Vec<u8>,
}

/// Stores a new version and makes it the only active one, atomically.
pub async fn insert_active(
    db: &sea_orm::DatabaseConnection,
    v: NewVersion,
) -> Result<VersionMeta, DbErr> {
    let txn = db.begin().await?;
    let last: Option<i32> = Versions::find()
        .select_only()
        .column_as(model_versions::Column::Version.max(), "m")
        .filter(model_versions::Column::ProjectId.eq(v.project_id))
        .into_tuple::<Option<i32>>()
        .one(&txn)
        .await?
        .flatten();
    Versions::update_many()
        .col_expr(model_versions::Column::Active, Expr::value(false))
        .filter(model_versions::Column::ProjectId.eq(v.project_id))
        .filter(model_versions::Column::Active.eq(true))
        .exec(&txn)
        .await?;
    let m = model_versions::ActiveModel {
        id: NotSet,
        project_id: Set(v.project_id),
        version: Set(last.unwrap_or(0) + 1),
        trained_at: Set(Utc::now()),
        n_labels: Set(v.n_labels),
        label_watermark: Set(v.label_watermark),
        algorithm: Set(v.algorithm),
        metrics: Set(v.metrics),
        auto_threshold: Set(v.auto_threshold),
        review_threshold: Set(v.review_threshold),
        active: Set(true),
        model: Set(v.model),
        pool_confidence: Set(None),
    }
    .insert(&txn)
    .await?;
    // Gold items pass for review items of the active model: nothing in
    // them may tell a reviewer they are gold.
    super::entities::items::Entity::update_many()
        .col_expr(
            super::entities::items::Column::PredVersion,
            Expr::value(m.version),
        )
        .filter(super::entities::items::Column::ProjectId.eq(v.project_id))
        .filter(super::entities::items::Column::Status.eq("gold"))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(VersionMeta {
        id: m.id,
        project_id: m.project_id,
        version: m.version,
        trained_at: m.trained_at,
        n_labels: m.n_labels,
        label_watermark: m.label_watermark,
        algorithm: m.algorithm,
        metrics: m.metrics,
        auto_threshold: m.auto_threshold,
        review_threshold: m.review_threshold,
        active: m.active,
    })
}

pub async fn list(db: &impl ConnectionTrait, project_id: i64) -> Result<Vec<VersionMeta>, DbErr> {
    Versions::find()
        .select_only()
        .columns(META_COLUMNS)
        .filter(model_versions::Column::ProjectId.eq(project_id))
        .order_by_desc(model_versions::Column::Version)
        .into_model::<VersionMeta>()
        .all(db)
        .await
}

pub async fn active(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Option<VersionMeta>, DbErr> {
    Versions::find()
        .select_only()
        .columns(META_COLUMNS)
        .filter(model_versions::Column::ProjectId.eq(project_id))
        .filter(model_versions::Column::Active.eq(true))
        .into_model::<VersionMeta>()
        .one(db)
        .await
}

/// The serialized model of one version.
pub async fn blob(db: &impl ConnectionTrait, id: i64) -> Result<Option<Vec<u8>>, DbErr> {
    Versions::find_by_id(id)
        .select_only()
        .column(model_versions::Column::Model)
        .into_tuple::<Vec<u8>>()
        .one(db)
        .await
}

/// Stores the pool's confidence histogram under a version (see
/// `training::rescore_with_model`): 10 bins of [0, 1] (`db::stats::confidence_bin`)
/// over the `scored` unlabelled items.
pub async fn set_pool_confidence(
    db: &impl ConnectionTrait,
    id: i64,
    counts: [i64; 10],
    scored: usize,
) -> Result<(), DbErr> {
    Versions::update_many()
        .col_expr(
            model_versions::Column::PoolConfidence,
            Expr::value(serde_json::json!({"counts": counts, "scored": scored})),
        )
        .filter(model_versions::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The pool's confidence histogram under a version, once a rescore counted it.
pub async fn pool_confidence(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<[i64; 10]>, DbErr> {
    Ok(Versions::find_by_id(id)
        .select_only()
        .column(model_versions::Column::PoolConfidence)
        .into_tuple::<Option<serde_json::Value>>()
        .one(db)
        .await?
        .flatten()
        .and_then(|h| serde_json::from_value(h["counts"].clone()).ok()))
}
