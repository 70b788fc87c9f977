use super::entities::items;
use super::entities::projects::{self, Entity as Projects};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

pub use projects::Model as Project;

pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<Option<Project>, DbErr> {
    Projects::find_by_id(id).one(db).await
}

/// Fixes the feature length of a project's items at its first import (0:
/// they have none); later imports are checked against it.
pub async fn fix_feature_len(
    db: &impl ConnectionTrait,
    project_id: i64,
    len: i32,
) -> Result<(), DbErr> {
    Projects::update_many()
        .col_expr(
            projects::Column::FeatureLen,
            sea_orm::sea_query::Expr::value(len),
        )
        .filter(projects::Column::Id.eq(project_id))
        .filter(projects::Column::FeatureLen.is_null())
        .exec(db)
        .await?;
    Ok(())
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Project>, DbErr> {
    Projects::find()
        .order_by_asc(projects::Column::Id)
        .all(db)
        .await
}

/// Every project's retrain cron (id, cron): what the scheduler follows.
pub async fn crons(db: &impl ConnectionTrait) -> Result<Vec<(i64, Option<String>)>, DbErr> {
    Projects::find()
        .select_only()
        .column(projects::Column::Id)
        .column(projects::Column::RetrainCron)
        .order_by_asc(projects::Column::Id)
        .into_tuple()
        .all(db)
        .await
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub items: i64,
    pub unlabeled: i64,
    pub labeled: i64,
    pub review: i64,
    /// Of `review`: escalated cases, which only senior reviewers decide.
    pub escalated: i64,
    /// Predictions accepted automatically and stored (`enqueue: true`).
    pub auto: i64,
    /// Gold items (known answers for checking reviewers); not in `items`.
    pub gold: i64,
}

#[derive(FromQueryResult)]
struct StatusCount {
    status: String,
    n: i64,
}

pub async fn counts(db: &impl ConnectionTrait, project_id: i64) -> Result<Counts, DbErr> {
    let rows = items::Entity::find()
        .select_only()
        .column(items::Column::Status)
        .column_as(items::Column::Id.count(), "n")
        .filter(items::Column::ProjectId.eq(project_id))
        .group_by(items::Column::Status)
        .into_model::<StatusCount>()
        .all(db)
        .await?;
    let mut c = Counts::default();
    for r in rows {
        match r.status.as_str() {
            "unlabeled" => c.unlabeled = r.n,
            "labeled" => c.labeled = r.n,
            "review" => c.review = r.n,
            "auto" => c.auto = r.n,
            "gold" => {
                c.gold = r.n;
                continue;
            }
            _ => {}
        }
        c.items += r.n;
    }
    if c.review > 0 {
        c.escalated = items::Entity::find()
            .filter(items::Column::ProjectId.eq(project_id))
            .filter(items::Column::Status.eq("review"))
            .filter(items::Column::Tier.eq("escalate"))
            .count(db)
            .await? as i64;
    }
    Ok(c)
}

/// A project's settings as stored.
pub struct ProjectFields {
    pub name: String,
    pub labels: Vec<String>,
    pub strategy: String,
    pub retrain_cron: Option<String>,
    pub min_new_labels: i32,
    pub auto_threshold: f64,
    pub review_threshold: f64,
    pub target_precision: Option<f64>,
    pub lease_seconds: i32,
    pub rules: Option<serde_json::Value>,
    pub audit_share: f64,
    pub blind_share: f64,
    pub gold_share: f64,
    pub labels_per_item: i32,
}

fn fill(am: &mut projects::ActiveModel, f: ProjectFields) {
    use sea_orm::Set;
    am.name = Set(f.name);
    am.labels = Set(serde_json::json!(f.labels));
    am.strategy = Set(f.strategy);
    am.retrain_cron = Set(f.retrain_cron);
    am.min_new_labels = Set(f.min_new_labels);
    am.auto_threshold = Set(f.auto_threshold);
    am.review_threshold = Set(f.review_threshold);
    am.target_precision = Set(f.target_precision);
    am.lease_seconds = Set(f.lease_seconds);
    am.rules = Set(f.rules);
    am.audit_share = Set(f.audit_share);
    am.blind_share = Set(f.blind_share);
    am.gold_share = Set(f.gold_share);
    am.labels_per_item = Set(f.labels_per_item);
}

pub async fn create(db: &impl ConnectionTrait, f: ProjectFields) -> Result<Project, DbErr> {
    use sea_orm::Set;
    let mut am = projects::ActiveModel {
        feature_len: Set(None),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    fill(&mut am, f);
    am.insert(db).await
}

pub async fn save(
    db: &impl ConnectionTrait,
    p: Project,
    f: ProjectFields,
) -> Result<Project, DbErr> {
    let mut am: projects::ActiveModel = p.into();
    fill(&mut am, f);
    am.update(db).await
}
