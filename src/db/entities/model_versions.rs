use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "model_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub version: i32,
    pub trained_at: DateTimeUtc,
    pub n_labels: i32,
    /// The highest label id the model saw: labels above it are "new".
    pub label_watermark: i64,
    pub algorithm: String,
    pub metrics: Json,
    pub auto_threshold: f64,
    pub review_threshold: f64,
    pub active: bool,
    /// The fitted model with its featurizer state (bincode).
    pub model: Vec<u8>,
    /// The pool's confidence histogram, counted by the rescore with this
    /// version (`{"counts": [10 bins], "scored": n}`).
    pub pool_confidence: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
