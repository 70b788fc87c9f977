use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub labels: Json,
    pub strategy: String,
    pub retrain_cron: Option<String>,
    pub min_new_labels: i32,
    pub auto_threshold: f64,
    pub review_threshold: f64,
    pub target_precision: Option<f64>,
    pub lease_seconds: i32,
    pub feature_len: Option<i32>,
    pub created_at: DateTimeUtc,
    /// Routing rules on `meta` (a JSON list); any match escalates.
    pub rules: Option<Json>,
    /// Share of auto-accepted predictions also sent to (blind) review.
    pub audit_share: f64,
    /// Share of review items shown without the model's suggestion.
    pub blind_share: f64,
    /// Labels wanted per item from distinct people; the final label is the majority.
    pub labels_per_item: i32,
    /// Chance that a review slot is filled with a gold item.
    pub gold_share: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
