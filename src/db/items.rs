use super::entities::items::{self, Entity as Items};
use super::entities::labels;
use crate::domain::Selection;
use chrono::Utc;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait, Value,
};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub use items::Model as Item;

/// One row of an import, already checked by the domain layer.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub external_id: String,
    pub text: Option<String>,
    pub features: Option<Vec<f64>>,
    pub meta: Option<serde_json::Value>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportOutcome {
    pub inserted: u64,
    pub duplicates: u64,
    pub labeled: u64,
}

pub fn encode_features(f: &[f64]) -> Vec<u8> {
    f.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode_features(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
        .collect()
}

/// Rows per multi-row `INSERT` of an import (and per chunk a streaming
/// import is handed).
pub const CHUNK: usize = 1000;

/// Imports a batch in one transaction: rows whose `external_id` exists (in
/// the project or earlier in the batch) are counted as duplicates and left as
/// they were; pre-labelled rows get a label row from `importer`; a
/// `feature_len` is fixed as the project's.
pub async fn import(
    db: &sea_orm::DatabaseConnection,
    project_id: i64,
    feature_len: Option<i32>,
    mut rows: Vec<NewItem>,
    importer: (i64, &str),
    initial_score: impl Fn(usize) -> f64,
) -> Result<ImportOutcome, DbErr> {
    let (tx, rx) = tokio::sync::mpsc::channel(1 + rows.len() / CHUNK);
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(CHUNK));
        tx.try_send(std::mem::replace(&mut rows, rest))
            .expect("the channel holds every chunk");
    }
    drop(tx);
    let parsed = async move { Ok::<_, DbErr>(feature_len) };
    import_stream(db, project_id, rx, parsed, importer, initial_score).await
}

/// [`import`] of rows that arrive in chunks while they are being parsed:
/// each chunk is inserted as it comes, and once the sender is done,
/// `parsed` tells whether the whole body was good (and which feature
/// length to fix). An error there, or a database error, rolls everything
/// back: a bad row anywhere changes nothing. The transaction starts with
/// the first chunk, so a body refused at its first rows never takes the
/// writer.
pub async fn import_stream<E: From<DbErr>>(
    db: &sea_orm::DatabaseConnection,
    project_id: i64,
    mut chunks: tokio::sync::mpsc::Receiver<Vec<NewItem>>,
    parsed: impl std::future::Future<Output = Result<Option<i32>, E>>,
    importer: (i64, &str),
    initial_score: impl Fn(usize) -> f64,
) -> Result<ImportOutcome, E> {
    let mut out = ImportOutcome::default();
    let Some(first) = chunks.recv().await else {
        // Nothing to insert: an empty body, or one refused at its first rows.
        if let Some(len) = parsed.await? {
            super::projects::fix_feature_len(db, project_id, len).await?;
        }
        return Ok(out);
    };
    let txn = db.begin().await?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut placed = 0;
    let now = Utc::now();
    let mut label_rows: Vec<labels::ActiveModel> = Vec::new();
    let mut next = Some(first);
    while let Some(chunk) = next {
        let mut fresh = Vec::with_capacity(chunk.len());
        for r in &chunk {
            if seen.insert(r.external_id.clone()) {
                fresh.push(r);
            } else {
                out.duplicates += 1;
            }
        }
        if fresh.is_empty() {
            next = chunks.recv().await;
            continue;
        }
        let inserted =
            insert_chunk(&txn, project_id, &fresh, now, |i| initial_score(placed + i)).await?;
        placed += fresh.len();
        out.inserted += inserted.count;
        out.duplicates += fresh.len() as u64 - inserted.count;
        // Label rows for the pre-labelled items that were inserted.
        for (id, i) in inserted.labeled {
            label_rows.push(labels::ActiveModel {
                id: NotSet,
                project_id: Set(project_id),
                item_id: Set(id),
                label: Set(fresh[i].label.clone().expect("a labelled row")),
                annotator_id: Set(importer.0),
                annotator: Set(importer.1.to_string()),
                source: Set("import".into()),
                duration_ms: Set(None),
                created_at: Set(now),
                undone_at: Set(None),
                selection: Set(Some(Selection::Import.as_str().into())),
            });
        }
        next = chunks.recv().await;
    }
    // A bad row after the last chunk sent returns here, and the dropped
    // transaction rolls back.
    let feature_len = parsed.await?;
    out.labeled = label_rows.len() as u64;
    while !label_rows.is_empty() {
        let rest = label_rows.split_off(label_rows.len().min(CHUNK));
        labels::Entity::insert_many(std::mem::replace(&mut label_rows, rest))
            .exec_without_returning(&txn)
            .await?;
    }
    if let Some(len) = feature_len {
        super::projects::fix_feature_len(&txn, project_id, len).await?;
    }
    txn.commit().await?;
    Ok(out)
}

/// What [`insert_chunk`] inserted: how many rows, and the id and chunk
/// position of each inserted row that carried a label.
struct Inserted {
    count: u64,
    labeled: Vec<(i64, usize)>,
}

/// Columns an import writes; the others keep their defaults (no lease, no
/// prediction, not gold, epoch 0).
const IMPORT_COLUMNS: &str = "project_id, external_id, text, features, meta, status, score, \
     final_label, decided_by, created_at, blind, audit";
const IMPORT_VALUES_PER_ROW: usize = 12;

/// One multi-row `INSERT … ON CONFLICT (project_id, external_id) DO NOTHING`
/// (a prepared statement reused for every full chunk): an external id the
/// project has already keeps its item and counts as a duplicate. Only a
/// chunk with labelled rows asks for the inserted ids back (`RETURNING`).
async fn insert_chunk(
    db: &impl ConnectionTrait,
    project_id: i64,
    chunk: &[&NewItem],
    now: chrono::DateTime<Utc>,
    initial_score: impl Fn(usize) -> f64,
) -> Result<Inserted, DbErr> {
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * IMPORT_VALUES_PER_ROW);
    let mut sql = String::with_capacity(64 + chunk.len() * 64);
    sql.push_str("INSERT INTO items (");
    sql.push_str(IMPORT_COLUMNS);
    sql.push_str(") VALUES ");
    for (i, r) in chunk.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for k in 0..IMPORT_VALUES_PER_ROW {
            if k > 0 {
                sql.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(values.len() + k + 1).to_string());
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
        values.push(project_id.into());
        values.push(r.external_id.clone().into());
        values.push(r.text.clone().into());
        values.push(r.features.as_deref().map(encode_features).into());
        values.push(r.meta.clone().into());
        values.push(
            if r.label.is_some() {
                "labeled"
            } else {
                "unlabeled"
            }
            .into(),
        );
        values.push(initial_score(i).into());
        values.push(r.label.clone().into());
        values.push(r.label.as_ref().map(|_| "human".to_string()).into());
        values.push(now.into());
        values.push(false.into());
        values.push(false.into());
    }
    sql.push_str(" ON CONFLICT (project_id, external_id) DO NOTHING");
    if !chunk.iter().any(|r| r.label.is_some()) {
        let res = db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        return Ok(Inserted {
            count: res.rows_affected(),
            labeled: Vec::new(),
        });
    }
    sql.push_str(" RETURNING id, external_id");
    let returned = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let pos: HashMap<&str, usize> = chunk
        .iter()
        .enumerate()
        .map(|(i, r)| (r.external_id.as_str(), i))
        .collect();
    let mut labeled = Vec::new();
    for row in &returned {
        let id: i64 = row.try_get_by_index(0)?;
        let ext: String = row.try_get_by_index(1)?;
        let i = pos[ext.as_str()];
        if chunk[i].label.is_some() {
            labeled.push((id, i));
        }
    }
    Ok(Inserted {
        count: returned.len() as u64,
        labeled,
    })
}

pub async fn get(
    db: &impl ConnectionTrait,
    project_id: i64,
    id: i64,
) -> Result<Option<Item>, DbErr> {
    Items::find_by_id(id)
        .filter(items::Column::ProjectId.eq(project_id))
        .one(db)
        .await
}

pub async fn get_by_external(
    db: &impl ConnectionTrait,
    project_id: i64,
    external_id: &str,
) -> Result<Option<Item>, DbErr> {
    Items::find()
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::ExternalId.eq(external_id))
        .one(db)
        .await
}

/// A page of items in id order, after `after`.
pub async fn list(
    db: &impl ConnectionTrait,
    project_id: i64,
    status: Option<&str>,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<Item>, DbErr> {
    let mut q = Items::find().filter(items::Column::ProjectId.eq(project_id));
    match status {
        // Gold items are listed as the review items they pass for.
        Some("review") => q = q.filter(items::Column::Status.is_in(["review", "gold"])),
        Some(s) => q = q.filter(items::Column::Status.eq(s)),
        None => {}
    }
    if let Some(a) = after {
        q = q.filter(items::Column::Id.gt(a));
    }
    q.order_by_asc(items::Column::Id).limit(limit).all(db).await
}

/// Which items a queue hands out: every knob of [`lease_next`].
#[derive(Debug, Clone, Copy)]
pub struct QueueFilter {
    pub project_id: i64,
    pub status: &'static str,
    pub owner: i64,
    pub include_escalated: bool,
    /// k labels per item come from k different people.
    pub skip_labeled_by_owner: bool,
}

/// How long a PostgreSQL lease request waits for rows that others hold
/// locked for a moment (a concurrent lease, a rescore writing scores).
const LOCKED_ROWS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The ids of the next `n` available items, best first, leaving out `skip`;
/// `lock` adds `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite ignores it).
fn next_ids(
    f: &QueueFilter,
    now: i64,
    n: u64,
    skip: &[i64],
    lock: bool,
) -> sea_orm::sea_query::SelectStatement {
    let mut sub = Query::select();
    if f.skip_labeled_by_owner {
        sub.and_where(
            items::Column::Id.not_in_subquery(
                Query::select()
                    .column(labels::Column::ItemId)
                    .from(labels::Entity)
                    .and_where(labels::Column::ProjectId.eq(f.project_id))
                    .and_where(labels::Column::AnnotatorId.eq(f.owner))
                    .and_where(labels::Column::UndoneAt.is_null())
                    .to_owned(),
            ),
        );
    }
    if !f.include_escalated {
        sub.cond_where(
            Condition::any()
                .add(items::Column::Tier.is_null())
                .add(items::Column::Tier.ne("escalate")),
        );
    }
    if !skip.is_empty() {
        sub.and_where(items::Column::Id.is_not_in(skip.iter().copied()));
    }
    sub.column(items::Column::Id)
        .from(items::Entity)
        .and_where(items::Column::ProjectId.eq(f.project_id))
        .and_where(items::Column::Status.eq(f.status))
        .cond_where(
            Condition::any()
                .add(items::Column::LeaseExpiresAt.is_null())
                .add(items::Column::LeaseExpiresAt.lt(now)),
        )
        .order_by(items::Column::RankEpoch, Order::Desc)
        .order_by(items::Column::Score, Order::Desc)
        .order_by(items::Column::Id, Order::Asc)
        .limit(n);
    if lock {
        sub.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    sub.to_owned()
}

/// The rank epochs of the next `n` unlabelled items the queue would hand
/// out (0: the import's placeholder order, which no ranking has reached).
pub async fn next_epochs(
    db: &impl ConnectionTrait,
    project_id: i64,
    n: u64,
) -> Result<Vec<i64>, DbErr> {
    Items::find()
        .select_only()
        .column(items::Column::RankEpoch)
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        .filter(
            Condition::any()
                .add(items::Column::LeaseExpiresAt.is_null())
                .add(items::Column::LeaseExpiresAt.lt(super::now_ms())),
        )
        .order_by_desc(items::Column::RankEpoch)
        .order_by_desc(items::Column::Score)
        .limit(n)
        .into_tuple()
        .all(db)
        .await
}

async fn ids_of(
    db: &impl ConnectionTrait,
    q: &sea_orm::sea_query::SelectStatement,
) -> Result<Vec<i64>, DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(backend.build(q))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0))
        .collect()
}

/// Leases the next `n` items of a queue to its owner for `lease_ms`.
///
/// SQLite runs one atomic statement: `UPDATE … WHERE id IN (SELECT … ORDER
/// BY score DESC LIMIT n) RETURNING *`. PostgreSQL, in one transaction,
/// picks and locks rows with `SELECT … FOR UPDATE SKIP LOCKED`, then updates
/// exactly those ids. Two traps made the single statement short-change
/// callers there under concurrency (fewer than `n` items, even none, while
/// the pool was full): a row just updated by a concurrent rescore made the
/// `IN (subquery)` be rechecked and the row dropped, and rows a rescore holds
/// locked for a moment are skipped. So the ids are picked first, and while
/// the snapshot shows available rows that were skipped, it waits briefly for
/// their locks and picks again.
pub async fn lease_next(
    db: &sea_orm::DatabaseConnection,
    f: QueueFilter,
    n: u64,
    lease_ms: i64,
) -> Result<Vec<Item>, DbErr> {
    // A lease runs from when it is written (a PostgreSQL caller may have
    // waited for locked rows before; see also the single statements).
    let lease = |now: i64| {
        Items::update_many()
            .col_expr(items::Column::LeaseOwner, Expr::value(f.owner))
            .col_expr(items::Column::LeaseExpiresAt, Expr::value(now + lease_ms))
    };
    let rows = match db.get_database_backend() {
        DbBackend::Postgres => {
            // Most leases are served by one statement; only one that came
            // up short (rows locked by others, or the queue's end) takes
            // the careful path below for the rest.
            let mut rows = lease_in_one_statement(db, &f, n, lease_ms).await?;
            if rows.len() as u64 >= n {
                return Ok(sorted_best_first(rows));
            }
            let txn = db.begin().await?;
            let deadline = std::time::Instant::now() + LOCKED_ROWS_WAIT;
            let mut ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let first = ids.len();
            loop {
                let want = n - ids.len() as u64;
                let now = super::now_ms();
                let got = ids_of(&txn, &next_ids(&f, now, want, &ids, true)).await?;
                ids.extend(got);
                if ids.len() as u64 >= n || std::time::Instant::now() >= deadline {
                    break;
                }
                let skipped = ids_of(&txn, &next_ids(&f, now, 1, &ids, false)).await?;
                if skipped.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            if ids.len() > first {
                rows.extend(
                    lease(super::now_ms())
                        .filter(items::Column::Id.is_in(ids.split_off(first)))
                        .exec_with_returning(&txn)
                        .await?,
                );
            }
            txn.commit().await?;
            rows
        }
        _ => {
            // The statement may wait for the one writer connection: the
            // lease runs from when SQLite runs it ('now' of the statement),
            // not from when it was sent, so it never seems to start before
            // an earlier holder let the item go.
            let now = super::now_ms();
            Items::update_many()
                .col_expr(items::Column::LeaseOwner, Expr::value(f.owner))
                .col_expr(
                    items::Column::LeaseExpiresAt,
                    Expr::cust_with_values(
                        "CAST(unixepoch('subsec') * 1000 AS INTEGER) + ?",
                        [lease_ms],
                    ),
                )
                .filter(items::Column::Id.in_subquery(next_ids(&f, now, n, &[], false)))
                .exec_with_returning(db)
                .await?
        }
    };
    Ok(sorted_best_first(rows))
}

fn sorted_best_first(mut rows: Vec<Item>) -> Vec<Item> {
    rows.sort_by(|a, b| {
        (b.rank_epoch.cmp(&a.rank_epoch))
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
    rows
}

/// PostgreSQL: picks and locks the next `n` rows (`FOR UPDATE SKIP LOCKED`
/// in a CTE, evaluated once) and leases exactly those, in one statement and
/// one round trip. The update joins the locked ids rather than rechecking an
/// `IN (subquery)`, so a row is never dropped after it was picked; it may
/// still return fewer than `n` rows (rows locked by others are skipped).
async fn lease_in_one_statement(
    db: &impl ConnectionTrait,
    f: &QueueFilter,
    n: u64,
    lease_ms: i64,
) -> Result<Vec<Item>, DbErr> {
    let now = super::now_ms();
    let pick = DbBackend::Postgres.build(&next_ids(f, now, n, &[], true));
    let mut values = pick.values.map(|v| v.0).unwrap_or_default();
    let (pick, k) = (pick.sql, values.len());
    values.push(f.owner.into());
    values.push(lease_ms.into());
    // The lease runs from when its row is written (after it was locked),
    // not from when this statement was sent: a caller that waited for a
    // pooled connection meanwhile must not get a lease that seems to start
    // before an earlier holder let the item go.
    let sql = format!(
        "WITH picked AS ({pick}) UPDATE items SET lease_owner = ${}, \
         lease_expires_at = floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint + ${} \
         FROM picked WHERE items.id = picked.id RETURNING items.*",
        k + 1,
        k + 2
    );
    Items::find()
        .from_raw_sql(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(db)
        .await
}

/// The columns of a [`TrainingRow`].
fn training_select() -> sea_orm::Select<Items> {
    Items::find().select_only().columns([
        items::Column::Id,
        items::Column::Text,
        items::Column::Features,
        items::Column::FinalLabel,
    ])
}

/// What training needs of a labelled item.
#[derive(Debug, Clone, FromQueryResult)]
pub struct TrainingRow {
    pub id: i64,
    pub text: Option<String>,
    pub features: Option<Vec<u8>>,
    pub final_label: Option<String>,
}

pub async fn labeled_rows(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Vec<TrainingRow>, DbErr> {
    training_select()
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("labeled"))
        .filter(items::Column::FinalLabel.is_not_null())
        .order_by_asc(items::Column::Id)
        .into_model::<TrainingRow>()
        .all(db)
        .await
}

/// How many unlabelled items the project has, counting no further than `n`
/// (so the cost stays bounded on a large pool).
pub async fn unlabeled_up_to(
    db: &impl ConnectionTrait,
    project_id: i64,
    n: u64,
) -> Result<u64, DbErr> {
    let ids: Vec<i64> = Items::find()
        .select_only()
        .column(items::Column::Id)
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        .limit(n)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.len() as u64)
}

/// Up to `n` unlabelled items picked at random (for the cold start).
pub async fn unlabeled_sample(
    db: &impl ConnectionTrait,
    project_id: i64,
    n: u64,
) -> Result<Vec<TrainingRow>, DbErr> {
    // Ids first, from the (project, status, id) index alone; then only the
    // sampled rows are read, not every item's text and features.
    let ids: Vec<i64> = Items::find()
        .select_only()
        .column(items::Column::Id)
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        // random() is spelled alike in SQLite and PostgreSQL.
        .order_by(Expr::cust("random()"), Order::Asc)
        .limit(n)
        .into_tuple()
        .all(db)
        .await?;
    // In id order: a sample of the whole pool is then the same rows in the
    // same order every time, and the cold start's seeded choice repeats.
    let mut rows = rows_by_ids(db, &ids).await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// How many unlabelled items a project has.
pub async fn count_unlabeled(db: &impl ConnectionTrait, project_id: i64) -> Result<usize, DbErr> {
    use sea_orm::PaginatorTrait;
    Ok(Items::find()
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        .count(db)
        .await? as usize)
}

/// Moves an earlier cold-start head (scores ≥ 1) back among the rest (and
/// their epoch), so a new head leads the queue alone.
pub async fn demote_cold_start_head(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<(), DbErr> {
    Items::update_many()
        .col_expr(
            items::Column::Score,
            sea_orm::sea_query::ExprTrait::sub(Expr::col(items::Column::Score), 1.0),
        )
        .col_expr(items::Column::RankEpoch, Expr::value(0i64))
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        .filter(items::Column::Score.gte(1.0))
        .exec(db)
        .await?;
    Ok(())
}

/// The smallest and largest id among a project's unlabelled items (two
/// index seeks).
pub async fn unlabeled_id_span(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Option<(i64, i64)>, DbErr> {
    let end = |desc: bool| {
        let q = Items::find()
            .select_only()
            .column(items::Column::Id)
            .filter(items::Column::ProjectId.eq(project_id))
            .filter(items::Column::Status.eq("unlabeled"));
        if desc {
            q.order_by_desc(items::Column::Id)
        } else {
            q.order_by_asc(items::Column::Id)
        }
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
    };
    Ok(end(false).await?.zip(end(true).await?))
}

/// A page of unlabelled items with ids in `(after, until]` (id order) for
/// scoring.
pub async fn unlabeled_page(
    db: &impl ConnectionTrait,
    project_id: i64,
    after: i64,
    until: i64,
    limit: u64,
) -> Result<Vec<TrainingRow>, DbErr> {
    training_select()
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        .filter(items::Column::Id.gt(after))
        .filter(items::Column::Id.lte(until))
        .order_by_asc(items::Column::Id)
        .limit(limit)
        .into_model::<TrainingRow>()
        .all(db)
        .await
}

/// The epoch for a new ranking of a project's pool: one past the newest
/// epoch among its unlabelled items (an index seek).
pub async fn next_rank_epoch(db: &impl ConnectionTrait, project_id: i64) -> Result<i64, DbErr> {
    let newest: Option<i64> = Items::find()
        .select_only()
        .column(items::Column::RankEpoch)
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("unlabeled"))
        .order_by_desc(items::Column::RankEpoch)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.unwrap_or(0) + 1)
}

/// What training needs of the given items, in no particular order.
pub async fn rows_by_ids(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<TrainingRow>, DbErr> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        out.extend(
            training_select()
                .filter(items::Column::Id.is_in(chunk.iter().copied()))
                .into_model::<TrainingRow>()
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// A model's view of one pool item, written back after scoring.
#[derive(Debug, Clone)]
pub struct Scored {
    pub id: i64,
    pub score: f64,
    pub prediction: Option<(String, f64, i32)>,
    /// How the ranking chose the item: copied to its label when the person
    /// the queue hands it to labels it.
    pub selection: Selection,
}

/// Rows per score-writing statement, at most (6 bound values a row: well
/// under SQLite's 32,766 and PostgreSQL's 65,535 parameters).
const SCORE_ROWS_PER_STATEMENT: usize = 1_000;

/// How long one transaction of a ranking write should hold the writer.
/// Rewriting a row's score moves it in the queue index and rewrites its
/// page: at a 1M-item SQLite pool that costs 40–100 µs a row, so a fixed
/// 1,000 rows a transaction held the single writer ~100 ms, and every lease
/// and label arriving meanwhile waited for it.
const SCORE_TXN_TARGET: Duration = Duration::from_millis(4);

/// Writes a ranking's scores and predictions, under a rank epoch, in
/// transactions that each hold the writer about [`SCORE_TXN_TARGET`]: the
/// rows a transaction double while one takes under half of it and halve
/// while one takes over twice it (between 16 and
/// [`SCORE_ROWS_PER_STATEMENT`]); a small pool soon writes a thousand rows
/// a commit, a large one a few dozen. That is on SQLite, whose one writer
/// everyone waits for. PostgreSQL locks rows, not the database (a lease
/// skips a locked row), so there each transaction writes
/// [`SCORE_ROWS_PER_STATEMENT`] rows: sized to 4 ms it wrote a 1M pool's
/// ranking tail in 7.1 s instead of ~3.
pub struct ScoreWriter {
    rows_per_txn: usize,
    adaptive: bool,
}

impl ScoreWriter {
    pub fn new(db: &impl ConnectionTrait) -> Self {
        let adaptive = db.get_database_backend() == DbBackend::Sqlite;
        ScoreWriter {
            rows_per_txn: if adaptive {
                64
            } else {
                SCORE_ROWS_PER_STATEMENT
            },
            adaptive,
        }
    }

    /// Writes `rows` in order, a transaction at a time (each one statement:
    /// `WITH v(…) AS (VALUES …) UPDATE items SET … FROM v WHERE items.id =
    /// v.id`, which both SQLite ≥ 3.33 and PostgreSQL run).
    pub async fn write(
        &mut self,
        db: &sea_orm::DatabaseConnection,
        mut rows: &[Scored],
        epoch: i64,
    ) -> Result<(), DbErr> {
        while !rows.is_empty() {
            let (chunk, rest) = rows.split_at(self.rows_per_txn.min(rows.len()));
            let started = Instant::now();
            let txn = db.begin().await?;
            write_score_chunk(&txn, chunk, epoch).await?;
            let before_commit = started.elapsed();
            txn.commit().await?;
            let took = started.elapsed();
            // On SQLite the commit that takes the log past the writer's
            // checkpoint threshold checkpoints it (see `db::start_checkpointer`):
            // under a 1M-pool ranking, one commit in ~0.4 s took ~100 ms.
            if took > SCORE_TXN_TARGET * 10 {
                tracing::debug!(
                    rows = chunk.len(),
                    ms = took.as_secs_f64() * 1e3,
                    commit_ms = (took - before_commit).as_secs_f64() * 1e3,
                    "slow ranking transaction"
                );
            }
            if self.adaptive {
                let full = chunk.len() == self.rows_per_txn;
                self.rows_per_txn = next_rows_per_txn(self.rows_per_txn, took, full);
            }
            rows = rest;
        }
        Ok(())
    }
}

/// The rows for a ranking's next transaction after one of `rows` took
/// `took` (`full`: it had all `rows`, not just a remainder).
fn next_rows_per_txn(rows: usize, took: Duration, full: bool) -> usize {
    if took < SCORE_TXN_TARGET / 2 && full {
        (rows * 2).min(SCORE_ROWS_PER_STATEMENT)
    } else if took > SCORE_TXN_TARGET * 2 {
        (rows / 2).max(16)
    } else {
        rows
    }
}

/// Writes scores and predictions under a rank epoch ([`ScoreWriter`]).
pub async fn write_scores(
    db: &sea_orm::DatabaseConnection,
    rows: &[Scored],
    epoch: i64,
) -> Result<(), DbErr> {
    ScoreWriter::new(db).write(db, rows, epoch).await
}

async fn write_score_chunk(
    db: &impl ConnectionTrait,
    chunk: &[Scored],
    epoch: i64,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
    let mut tuples = Vec::with_capacity(chunk.len());
    for r in chunk {
        let base = values.len();
        let ph = |k: usize| match backend {
            DbBackend::Postgres => format!("${}", base + k),
            _ => "?".to_string(),
        };
        let (pl, pc, pv) = match &r.prediction {
            Some((l, c, v)) => (Some(l.clone()), Some(*c), Some(*v)),
            None => (None, None, None),
        };
        values.push(r.id.into());
        values.push(r.score.into());
        values.push(pl.into());
        values.push(pc.into());
        values.push(pv.into());
        values.push(r.selection.as_str().into());
        tuples.push(match backend {
            DbBackend::Postgres => format!(
                "({}::bigint, {}::float8, {}::text, {}::float8, {}::int, {}::text)",
                ph(1),
                ph(2),
                ph(3),
                ph(4),
                ph(5),
                ph(6)
            ),
            _ => "(?, ?, ?, ?, ?, ?)".to_string(),
        });
    }
    let sql = format!(
        "WITH v(id, score, pl, pc, pv, sel) AS (VALUES {}) \
         UPDATE items SET score = v.score, rank_epoch = {epoch}, pred_label = v.pl, \
         pred_confidence = v.pc, pred_version = v.pv, selection = v.sel \
         FROM v WHERE items.id = v.id",
        tuples.join(", ")
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Why predictions could not be stored.
#[derive(Debug)]
pub enum StoreError {
    /// This external id names an item (stored, or earlier in the batch)
    /// with other text or features.
    OtherContent(String),
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        StoreError::Db(e)
    }
}

/// A prediction stored with `enqueue: true`: routed to people (status
/// `review`, with its tier) or accepted automatically (status `auto`,
/// decided by the model; an audited one goes to review instead).
pub struct StoredPrediction {
    pub item: NewItem,
    pub pred_label: String,
    pub confidence: f64,
    pub version: i32,
    /// None: accepted automatically; Some(tier): sent to review.
    pub review_tier: Option<&'static str>,
    pub blind: bool,
    pub audit: bool,
}

/// Stores predictions (least confident first in the review queue) and their
/// routing decisions in the audit trail. An external id that exists keeps
/// its item, untouched; its id is returned.
pub async fn store_predictions(
    db: &sea_orm::DatabaseConnection,
    project_id: i64,
    actor: &str,
    rows: Vec<StoredPrediction>,
) -> Result<Vec<i64>, StoreError> {
    use super::entities::decisions;
    let txn = db.begin().await?;
    let now = Utc::now();
    let exts: Vec<String> = rows.iter().map(|r| r.item.external_id.clone()).collect();
    // One external id, one content: a case sent again (a retry) finds its
    // item; the same id with other text or features is refused, in the
    // batch or against a stored item, so a decision is never handed back
    // for content it was not made on.
    let content = |t: &Option<String>, f: &Option<Vec<u8>>| (t.clone(), f.clone());
    let mut sent: HashMap<&str, (Option<String>, Option<Vec<u8>>)> = HashMap::new();
    for r in &rows {
        let c = content(
            &r.item.text,
            &r.item.features.as_deref().map(encode_features),
        );
        if let Some(prev) = sent.insert(r.item.external_id.as_str(), c.clone()) {
            if prev != c {
                return Err(StoreError::OtherContent(r.item.external_id.clone()));
            }
        }
    }
    let existing: HashSet<String> = {
        let mut e = HashSet::new();
        for chunk in exts.chunks(CHUNK) {
            let found: Vec<(String, Option<String>, Option<Vec<u8>>)> = Items::find()
                .select_only()
                .column(items::Column::ExternalId)
                .column(items::Column::Text)
                .column(items::Column::Features)
                .filter(items::Column::ProjectId.eq(project_id))
                .filter(items::Column::ExternalId.is_in(chunk.iter().map(|s| s.as_str())))
                .into_tuple()
                .all(&txn)
                .await?;
            for (ext, t, f) in found {
                if sent.get(ext.as_str()) != Some(&content(&t, &f)) {
                    return Err(StoreError::OtherContent(ext));
                }
                e.insert(ext);
            }
        }
        e
    };
    let mut once = HashSet::new();
    let fresh: Vec<&StoredPrediction> = rows
        .iter()
        .filter(|r| !existing.contains(&r.item.external_id))
        .filter(|r| once.insert(r.item.external_id.as_str()))
        .collect();
    for chunk in fresh.chunks(CHUNK) {
        let models = chunk.iter().map(|r| {
            let auto = r.review_tier.is_none();
            items::ActiveModel {
                id: NotSet,
                project_id: Set(project_id),
                external_id: Set(r.item.external_id.clone()),
                text: Set(r.item.text.clone()),
                features: Set(r.item.features.as_deref().map(encode_features)),
                meta: Set(r.item.meta.clone()),
                status: Set(if auto { "auto" } else { "review" }.into()),
                score: Set(1.0 - r.confidence),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                pred_label: Set(Some(r.pred_label.clone())),
                pred_confidence: Set(Some(r.confidence)),
                pred_version: Set(Some(r.version)),
                final_label: Set(auto.then(|| r.pred_label.clone())),
                decided_by: Set(auto.then(|| "model".to_string())),
                created_at: Set(now),
                tier: Set(r.review_tier.map(str::to_string)),
                blind: Set(r.blind),
                audit: Set(r.audit),
                gold_label: Set(None),
                rank_epoch: Set(0),
                selection: Set(None),
            }
        });
        Items::insert_many(models)
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
    }
    let mut ids: HashMap<String, i64> = HashMap::new();
    for chunk in exts.chunks(CHUNK) {
        let found: Vec<(i64, String)> = Items::find()
            .select_only()
            .column(items::Column::Id)
            .column(items::Column::ExternalId)
            .filter(items::Column::ProjectId.eq(project_id))
            .filter(items::Column::ExternalId.is_in(chunk.iter().map(|s| s.as_str())))
            .into_tuple()
            .all(&txn)
            .await?;
        ids.extend(found.into_iter().map(|(id, e)| (e, id)));
    }
    let trail: Vec<decisions::ActiveModel> = fresh
        .iter()
        .filter_map(|r| {
            let id = *ids.get(&r.item.external_id)?;
            let action = match (r.review_tier, r.audit) {
                (_, true) => "audit",
                (None, false) => "auto",
                (Some("escalate"), false) => "route_escalate",
                (Some(_), false) => "route_review",
            };
            Some(decisions::ActiveModel {
                id: NotSet,
                project_id: Set(project_id),
                item_id: Set(id),
                label_id: Set(None),
                actor: Set(actor.to_string()),
                action: Set(action.into()),
                label: Set(r.review_tier.is_none().then(|| r.pred_label.clone())),
                suggestion: Set(Some(r.pred_label.clone())),
                suggestion_shown: Set(false),
                model_version: Set(Some(r.version)),
                created_at: Set(now),
            })
        })
        .collect();
    for chunk in trail.chunks(CHUNK) {
        decisions::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(exts
        .iter()
        .map(|e| ids.get(e).copied().unwrap_or(0))
        .collect())
}

/// Counts predictions per day and route (`INSERT … ON CONFLICT DO UPDATE`,
/// the same statement on SQLite and PostgreSQL).
pub async fn count_routes(
    db: &impl ConnectionTrait,
    project_id: i64,
    day: &str,
    counts: &[(&str, i64)],
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for (route, n) in counts.iter().filter(|(_, n)| *n > 0) {
        let sql = match backend {
            DbBackend::Postgres => "INSERT INTO routing_daily (project_id, day, route, n) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (project_id, day, route) DO UPDATE SET n = routing_daily.n + excluded.n",
            _ => "INSERT INTO routing_daily (project_id, day, route, n) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (project_id, day, route) DO UPDATE SET n = routing_daily.n + excluded.n",
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                project_id.into(),
                (*day).into(),
                (*route).into(),
                (*n).into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// Ends the caller's own leases on these items (skip, leaving the page).
pub async fn release(
    db: &impl ConnectionTrait,
    project_id: i64,
    owner: i64,
    item_ids: &[i64],
) -> Result<u64, DbErr> {
    let res = Items::update_many()
        .col_expr(items::Column::LeaseOwner, Expr::value(Option::<i64>::None))
        .col_expr(
            items::Column::LeaseExpiresAt,
            Expr::value(Option::<i64>::None),
        )
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::LeaseOwner.eq(owner))
        .filter(items::Column::Id.is_in(item_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

#[cfg(test)]
mod score_writer_tests {
    use super::*;

    #[test]
    fn transactions_grow_while_quick_and_shrink_while_slow() {
        let ms = Duration::from_millis;
        assert_eq!(next_rows_per_txn(64, ms(1), true), 128);
        assert_eq!(next_rows_per_txn(800, ms(1), true), 1_000);
        // A short remainder says nothing about a full transaction's time.
        assert_eq!(next_rows_per_txn(64, ms(1), false), 64);
        assert_eq!(next_rows_per_txn(64, ms(4), true), 64);
        assert_eq!(next_rows_per_txn(64, ms(30), true), 32);
        assert_eq!(next_rows_per_txn(20, ms(30), true), 16);
    }

    #[tokio::test]
    async fn writes_every_row_under_the_epoch() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        crate::db::locks::migrate(&db).await.unwrap();
        let spec: crate::domain::ProjectRequest =
            serde_json::from_value(serde_json::json!({"name": "p", "labels": ["a", "b"]})).unwrap();
        let spec = crate::domain::ProjectSpec::create(spec).unwrap();
        let pid = crate::db::projects::create(&db, spec.to_fields())
            .await
            .unwrap()
            .id;
        let rows: Vec<NewItem> = (0..2_500)
            .map(|i| NewItem {
                external_id: format!("x{i}"),
                text: Some(format!("item {i}")),
                features: None,
                meta: None,
                label: None,
            })
            .collect();
        import(&db, pid, None, rows, (0, "test"), |i| i as f64)
            .await
            .unwrap();
        let ids: Vec<i64> = Items::find()
            .filter(items::Column::ProjectId.eq(pid))
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        let scored: Vec<Scored> = ids
            .iter()
            .map(|&id| Scored {
                id,
                score: id as f64 / 10.0,
                prediction: Some(("b".into(), 0.75, 3)),
                selection: Selection::Random,
            })
            .collect();
        let mut w = ScoreWriter::new(&db);
        w.write(&db, &scored, 7).await.unwrap();
        assert!((16..=SCORE_ROWS_PER_STATEMENT).contains(&w.rows_per_txn));
        for i in Items::find().all(&db).await.unwrap() {
            assert_eq!(i.rank_epoch, 7);
            assert_eq!(i.score, i.id as f64 / 10.0);
            assert_eq!(i.pred_label.as_deref(), Some("b"));
            assert_eq!(i.pred_version, Some(3));
            assert_eq!(i.selection.as_deref(), Some("random"));
        }
    }
}
