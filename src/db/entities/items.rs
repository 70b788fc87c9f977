use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub external_id: String,
    pub text: Option<String>,
    /// Little-endian f64s: compact and portable across SQLite and Postgres.
    pub features: Option<Vec<u8>>,
    pub meta: Option<Json>,
    pub status: String,
    /// Queue order: higher is handed out first, within the newest epoch.
    pub score: f64,
    /// The rescore that wrote `score` (0: an import's placeholder order);
    /// the queue serves newer epochs first.
    pub rank_epoch: i64,
    pub lease_owner: Option<i64>,
    /// Unix milliseconds; a lease is live while this is in the future.
    pub lease_expires_at: Option<i64>,
    pub pred_label: Option<String>,
    pub pred_confidence: Option<f64>,
    pub pred_version: Option<i32>,
    pub final_label: Option<String>,
    pub decided_by: Option<String>,
    pub created_at: DateTimeUtc,
    /// For review items: `review` or `escalate` (senior reviewers only).
    pub tier: Option<String>,
    /// Shown to reviewers without the model's suggestion.
    pub blind: bool,
    /// A random audit of an auto-accepted prediction.
    pub audit: bool,
    /// For gold items (status `gold`): the known answer. The model's
    /// `pred_label` then holds the suggestion shown, right or deliberately wrong.
    pub gold_label: Option<String>,
    /// How the newest ranking chose this item (`cold_start`, `random`,
    /// `active`; NULL: the import's placeholder order).
    pub selection: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
