use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "labels")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: i64,
    pub item_id: i64,
    pub label: String,
    pub annotator_id: i64,
    pub annotator: String,
    pub source: String,
    pub duration_ms: Option<i64>,
    pub created_at: DateTimeUtc,
    pub undone_at: Option<DateTimeUtc>,
    /// How the item reached the person who labelled it (see `domain::Selection`).
    pub selection: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
