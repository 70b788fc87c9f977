use sea_orm::entity::prelude::*;

/// The audit trail: one row per decision, appended and never updated.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "decisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub item_id: i64,
    pub label_id: Option<i64>,
    pub actor: String,
    /// label | confirm | override | undo | auto | route_review | route_escalate | audit
    pub action: String,
    pub label: Option<String>,
    pub suggestion: Option<String>,
    pub suggestion_shown: bool,
    pub model_version: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
