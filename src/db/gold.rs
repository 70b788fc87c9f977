//! Gold items: items with a known answer that reviewers meet in their queue
//! without knowing it. The suggestion shown is stored in `pred_label`; some
//! are deliberately wrong, which is how rubber-stamping shows.
use super::entities::items::{self, Entity as Items};
use super::entities::labels;
use super::items::{encode_features, Item, NewItem};
use chrono::Utc;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

/// A checked gold row: the item, its known answer, the suggestion to show and
/// the confidence shown with it.
#[derive(Debug, Clone)]
pub struct NewGold {
    pub item: NewItem,
    pub answer: String,
    pub suggestion: String,
    pub confidence: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GoldOutcome {
    pub inserted: u64,
    pub duplicates: u64,
    /// Of those inserted: shown with a suggestion other than the answer.
    pub wrong_suggestions: u64,
}

/// Inserts gold items in one transaction; an `external_id` already in the
/// project is a duplicate and left as it was.
pub async fn insert(
    db: &sea_orm::DatabaseConnection,
    project_id: i64,
    feature_len: Option<i32>,
    rows: Vec<NewGold>,
) -> Result<GoldOutcome, DbErr> {
    let txn = db.begin().await?;
    let mut out = GoldOutcome::default();
    let now = Utc::now();
    // Shown as a prediction of the active model, as review items are.
    let version = super::models::active(&txn, project_id)
        .await?
        .map(|v| v.version);
    for g in rows {
        let model = items::ActiveModel {
            id: NotSet,
            project_id: Set(project_id),
            external_id: Set(g.item.external_id.clone()),
            text: Set(g.item.text.clone()),
            features: Set(g.item.features.as_deref().map(encode_features)),
            meta: Set(g.item.meta.clone()),
            status: Set("gold".into()),
            score: Set(0.0),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            pred_label: Set(Some(g.suggestion.clone())),
            pred_confidence: Set(Some(g.confidence)),
            pred_version: Set(version),
            final_label: Set(None),
            decided_by: Set(None),
            created_at: Set(now),
            tier: Set(Some("review".into())),
            blind: Set(false),
            audit: Set(false),
            gold_label: Set(Some(g.answer.clone())),
            rank_epoch: Set(0),
            selection: Set(None),
        };
        let n = Items::insert(model)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    items::Column::ProjectId,
                    items::Column::ExternalId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if n == 0 {
            out.duplicates += 1;
        } else {
            out.inserted += 1;
            out.wrong_suggestions += (g.suggestion != g.answer) as u64;
        }
    }
    if let Some(len) = feature_len {
        super::projects::fix_feature_len(&txn, project_id, len).await?;
    }
    txn.commit().await?;
    Ok(out)
}

/// Up to `n` gold items `owner` has not answered yet, picked at random.
pub async fn pick(
    db: &impl ConnectionTrait,
    project_id: i64,
    owner: i64,
    n: usize,
) -> Result<Vec<Item>, DbErr> {
    if n == 0 {
        return Ok(vec![]);
    }
    let answered = Query::select()
        .column(labels::Column::ItemId)
        .from(labels::Entity)
        .and_where(labels::Column::ProjectId.eq(project_id))
        .and_where(labels::Column::AnnotatorId.eq(owner))
        .and_where(labels::Column::UndoneAt.is_null())
        .to_owned();
    let ids: Vec<i64> = Items::find()
        .select_only()
        .column(items::Column::Id)
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("gold"))
        .filter(items::Column::Id.not_in_subquery(answered))
        .order_by_asc(items::Column::Id)
        .limit(10_000)
        .into_tuple()
        .all(db)
        .await?;
    let chosen: Vec<i64> =
        rand::seq::index::sample(&mut rand::thread_rng(), ids.len(), n.min(ids.len()))
            .into_iter()
            .map(|i| ids[i])
            .collect();
    Items::find()
        .filter(items::Column::Id.is_in(chosen))
        .all(db)
        .await
}

/// One live answer to a gold item.
#[derive(Debug, Clone, FromQueryResult)]
pub struct GoldAnswer {
    pub annotator: String,
    pub label: String,
    pub answer: String,
    pub suggestion: Option<String>,
    pub duration_ms: Option<i64>,
}

/// Every live answer to the project's gold items, oldest first.
pub async fn answers(db: &impl ConnectionTrait, project_id: i64) -> Result<Vec<GoldAnswer>, DbErr> {
    use sea_orm::{DbBackend, Statement};
    let backend = db.get_database_backend();
    let ph = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT l.annotator, l.label, i.gold_label AS answer, i.pred_label AS suggestion, \
         l.duration_ms FROM labels l JOIN items i ON i.id = l.item_id \
         WHERE l.project_id = {ph} AND l.source = 'gold' AND l.undone_at IS NULL \
         AND i.gold_label IS NOT NULL ORDER BY l.id"
    );
    GoldAnswer::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [project_id.into()],
    ))
    .all(db)
    .await
}

/// How many gold items the project holds.
pub async fn count(db: &impl ConnectionTrait, project_id: i64) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Items::find()
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("gold"))
        .count(db)
        .await
}
