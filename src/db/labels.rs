use super::entities::items::{self, Entity as Items};
use super::entities::labels::{self, Entity as Labels};
use crate::domain::Selection;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

pub use labels::Model as Label;

/// Why a label could not be recorded; the caller maps each to an answer.
#[derive(Debug)]
pub enum LabelError {
    ItemNotFound,
    LeasedToOther,
    /// The item is in review (or gold): only reviewers decide it.
    ReviewerOnly,
    /// The item was escalated: only senior reviewers decide it.
    SeniorOnly,
    /// With k labels per item, one person labels an item once.
    AlreadyLabeledByYou,
    /// A gold item is answered once per person.
    GoldAnsweredByYou,
    /// Another person's label decides the item (one label per item): only
    /// a reviewer may change it, as an override.
    LabeledByOther,
    Db(DbErr),
}

impl From<DbErr> for LabelError {
    fn from(e: DbErr) -> Self {
        LabelError::Db(e)
    }
}

pub struct NewLabel<'a> {
    pub project_id: i64,
    pub item_id: i64,
    pub label: &'a str,
    pub annotator_id: i64,
    pub annotator: &'a str,
    pub duration_ms: Option<i64>,
    /// May label an item another person holds a lease on (admins).
    pub override_lease: bool,
    /// Labels wanted per item from distinct people (the project's k).
    pub labels_per_item: i32,
    /// May decide review and gold items (reviewers and above).
    pub may_review: bool,
    /// May decide escalated items (senior reviewers).
    pub may_escalate: bool,
}

/// What an item's live labels amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Fewer than k labels: the item stays in the annotation queue.
    Pending,
    /// The final label.
    Final(String),
    /// k labels without a majority: a reviewer decides.
    Tie,
}

/// k = 1: the latest label is final (a later label corrects an earlier one).
/// k > 1: with at least k labels, the strict majority, else a tie.
pub fn resolve(live: &[&str], k: i32) -> Resolution {
    // One vote per label; callers pass live labels only.
    if live.is_empty() || (live.len() as i32) < k {
        return Resolution::Pending;
    }
    if k <= 1 {
        return Resolution::Final(live[live.len() - 1].to_string());
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for l in live {
        *counts.entry(l).or_default() += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    let winners: Vec<&&str> = counts
        .iter()
        .filter(|(_, c)| **c == top)
        .map(|(l, _)| l)
        .collect();
    if winners.len() == 1 {
        Resolution::Final(winners[0].to_string())
    } else {
        Resolution::Tie
    }
}

/// Sets an item's status and final label from its live labels.
fn apply_resolution(am: &mut items::ActiveModel, r: Resolution) {
    match r {
        Resolution::Final(l) => {
            am.status = Set("labeled".into());
            am.final_label = Set(Some(l));
            am.decided_by = Set(Some("human".into()));
        }
        Resolution::Pending => {
            am.status = Set("unlabeled".into());
            am.final_label = Set(None);
            am.decided_by = Set(None);
        }
        Resolution::Tie => {
            am.status = Set("review".into());
            // An escalated item stays escalated.
            if am.tier.as_ref().is_none() {
                am.tier = Set(Some("review".into()));
            }
            am.final_label = Set(None);
            am.decided_by = Set(None);
        }
    }
}

async fn live_labels(db: &impl ConnectionTrait, item_id: i64) -> Result<Vec<Label>, DbErr> {
    Labels::find()
        .filter(labels::Column::ItemId.eq(item_id))
        .filter(labels::Column::UndoneAt.is_null())
        .order_by_asc(labels::Column::Id)
        .all(db)
        .await
}

/// How `item` reached the person labelling it: a review item as a review
/// (or a blind audit); an item the caller leased from the queue as the
/// ranking that put it there chose it; anything else by hand.
fn selection_of(item: &items::Model, annotator_id: i64) -> Selection {
    if item.status == "review" {
        return if item.audit {
            Selection::Audit
        } else {
            Selection::Review
        };
    }
    // The lease may have run out meanwhile: the item is still the one the
    // queue handed this person, unless someone else has taken it since.
    if item.status == "unlabeled" && item.lease_owner == Some(annotator_id) {
        return item
            .selection
            .as_deref()
            .and_then(Selection::parse)
            .unwrap_or(Selection::Unranked);
    }
    Selection::Browse
}

/// Records a label and makes it the item's final label, in one transaction
/// that is committed before this returns (the caller answers 201 after).
pub async fn create(
    db: &sea_orm::DatabaseConnection,
    n: NewLabel<'_>,
) -> Result<(Label, items::Model), LabelError> {
    let txn = db.begin().await?;
    let item = Items::find_by_id(n.item_id)
        .filter(items::Column::ProjectId.eq(n.project_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(LabelError::ItemNotFound)?;
    let now = Utc::now();
    let lease_live = item
        .lease_expires_at
        .is_some_and(|t| t > now.timestamp_millis());
    if lease_live && item.lease_owner != Some(n.annotator_id) && !n.override_lease {
        return Err(LabelError::LeasedToOther);
    }
    // Review items are decided by reviewers only, escalated ones by seniors;
    // checked on the row locked here, so the check and the label agree.
    if item.status == "review" || item.status == "gold" {
        if !n.may_review {
            return Err(LabelError::ReviewerOnly);
        }
        if item.tier.as_deref() == Some("escalate") && !n.may_escalate {
            return Err(LabelError::SeniorOnly);
        }
    }
    if item.status == "gold" {
        let answered = answer_gold(&txn, item, n, now).await?;
        txn.commit().await?;
        return Ok(answered);
    }
    let review = item.status == "review";
    // A decided item is changed only by someone of at least the tier that
    // decided it: the model's auto decisions and review decisions by
    // reviewers, escalated ones by senior reviewers. The change is recorded
    // as an override (or a confirmation) of that decision.
    let decided_tier = match item.status.as_str() {
        "auto" => Some("review"),
        "labeled" => item.tier.as_deref(),
        _ => None,
    };
    if let Some(tier) = decided_tier {
        if !n.may_review {
            return Err(LabelError::ReviewerOnly);
        }
        if tier == "escalate" && !n.may_escalate {
            return Err(LabelError::SeniorOnly);
        }
    }
    // With one label per item, the item's live labels are replaced, never
    // joined: another person's label is changed by reviewers only.
    let replaced = if n.labels_per_item <= 1 && item.status != "unlabeled" && !review {
        let live = live_labels(&txn, item.id).await?;
        if decided_tier.is_none()
            && !n.may_review
            && live.iter().any(|l| l.annotator_id != n.annotator_id)
        {
            return Err(LabelError::LabeledByOther);
        }
        live
    } else {
        Vec::new()
    };
    let corrects_other = replaced.iter().any(|l| l.annotator_id != n.annotator_id);
    if n.labels_per_item > 1 && !review {
        let mine = live_labels(&txn, item.id)
            .await?
            .iter()
            .any(|l| l.annotator_id == n.annotator_id);
        if mine {
            return Err(LabelError::AlreadyLabeledByYou);
        }
    }
    let shown = item.pred_label.is_some() && !item.blind;
    let suggestion = item.pred_label.clone();
    let version = item.pred_version;
    let source = if review {
        if item.pred_label.as_deref() == Some(n.label) {
            "review"
        } else {
            "override"
        }
    } else if decided_tier.is_some() || corrects_other {
        if item.final_label.as_deref() == Some(n.label) {
            "review"
        } else {
            "override"
        }
    } else {
        "human"
    };
    if !replaced.is_empty() {
        Labels::update_many()
            .col_expr(
                labels::Column::UndoneAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(labels::Column::Id.is_in(replaced.iter().map(|l| l.id)))
            .exec(&txn)
            .await?;
    }
    let label = labels::ActiveModel {
        id: NotSet,
        project_id: Set(n.project_id),
        item_id: Set(n.item_id),
        label: Set(n.label.to_string()),
        annotator_id: Set(n.annotator_id),
        annotator: Set(n.annotator.to_string()),
        source: Set(source.into()),
        duration_ms: Set(n.duration_ms),
        created_at: Set(now),
        undone_at: Set(None),
        selection: Set(Some(selection_of(&item, n.annotator_id).as_str().into())),
    }
    .insert(&txn)
    .await?;
    let resolution = if review || decided_tier.is_some() || n.labels_per_item <= 1 {
        // A reviewer's decision is final (also on ties of k annotators); with
        // k = 1 the newest label is final, and that is this one (the item's
        // row is locked), so its other labels need not be read.
        Resolution::Final(n.label.to_string())
    } else {
        let live = live_labels(&txn, item.id).await?;
        let names: Vec<&str> = live.iter().map(|l| l.label.as_str()).collect();
        resolve(&names, n.labels_per_item)
    };
    let mut am: items::ActiveModel = item.into();
    apply_resolution(&mut am, resolution);
    am.lease_owner = Set(None);
    am.lease_expires_at = Set(None);
    let item = am.update(&txn).await?;
    let action = match source {
        "review" => "confirm",
        "override" => "override",
        _ => "label",
    };
    record(&txn, &label, action, suggestion, shown, version).await?;
    txn.commit().await?;
    Ok((label, item))
}

/// A reviewer's answer to a gold item: recorded (source `gold`) and judged
/// later against the known answer; the item stays gold for other reviewers.
async fn answer_gold(
    txn: &sea_orm::DatabaseTransaction,
    item: items::Model,
    n: NewLabel<'_>,
    now: chrono::DateTime<Utc>,
) -> Result<(Label, items::Model), LabelError> {
    let mine = live_labels(txn, item.id)
        .await?
        .iter()
        .any(|l| l.annotator_id == n.annotator_id);
    if mine {
        return Err(LabelError::GoldAnsweredByYou);
    }
    let label = labels::ActiveModel {
        id: NotSet,
        project_id: Set(n.project_id),
        item_id: Set(n.item_id),
        label: Set(n.label.to_string()),
        annotator_id: Set(n.annotator_id),
        annotator: Set(n.annotator.to_string()),
        source: Set("gold".into()),
        duration_ms: Set(n.duration_ms),
        created_at: Set(now),
        undone_at: Set(None),
        selection: Set(Some(Selection::Gold.as_str().into())),
    }
    .insert(txn)
    .await?;
    record(
        txn,
        &label,
        "gold_answer",
        item.pred_label.clone(),
        true,
        None,
    )
    .await?;
    Ok((label, item))
}

pub async fn get(
    db: &impl ConnectionTrait,
    project_id: i64,
    label_id: i64,
) -> Result<Option<Label>, DbErr> {
    Labels::find_by_id(label_id)
        .filter(labels::Column::ProjectId.eq(project_id))
        .one(db)
        .await
}

#[derive(Debug)]
pub enum UndoError {
    AlreadyUndone,
    Db(DbErr),
}

impl From<DbErr> for UndoError {
    fn from(e: DbErr) -> Self {
        UndoError::Db(e)
    }
}

/// Undoes a label: it stays in the table (the record of work is kept) but no
/// longer counts; the item's final label falls back to its latest live label,
/// or the item goes back to the queue it came from.
pub async fn undo(db: &sea_orm::DatabaseConnection, label: &Label) -> Result<(), UndoError> {
    let txn = db.begin().await?;
    // Lock the item first, as `create` does: otherwise, on PostgreSQL, a
    // label arriving meanwhile was overwritten by this undo's view of the
    // live labels (the item went back to the queue with a live label).
    let item = Items::find_by_id(label.item_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let res = Labels::update_many()
        .col_expr(
            labels::Column::UndoneAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(labels::Column::Id.eq(label.id))
        .filter(labels::Column::UndoneAt.is_null())
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(UndoError::AlreadyUndone);
    }
    // A gold item keeps its status: only the answer is taken back.
    let item = item.filter(|i| i.status != "gold");
    if let Some(item) = item {
        let k = super::entities::projects::Entity::find_by_id(item.project_id)
            .one(&txn)
            .await?
            .map(|p| p.labels_per_item)
            .unwrap_or(1);
        let live = live_labels(&txn, item.id).await?;
        let reviewed: Vec<&Label> = live
            .iter()
            .filter(|l| matches!(l.source.as_str(), "review" | "override"))
            .collect();
        let resolution = match reviewed.last() {
            Some(r) => Resolution::Final(r.label.clone()),
            None if matches!(label.source.as_str(), "review" | "override") && live.is_empty() => {
                Resolution::Tie
            }
            None => {
                let names: Vec<&str> = live.iter().map(|l| l.label.as_str()).collect();
                resolve(&names, k)
            }
        };
        let mut am: items::ActiveModel = item.into();
        apply_resolution(&mut am, resolution);
        am.update(&txn).await?;
    }
    record(&txn, label, "undo", None, false, None).await?;
    txn.commit().await?;
    Ok(())
}

/// Appends a decision to the audit trail.
async fn record(
    db: &impl ConnectionTrait,
    label: &Label,
    action: &str,
    suggestion: Option<String>,
    suggestion_shown: bool,
    model_version: Option<i32>,
) -> Result<(), DbErr> {
    use super::entities::decisions;
    decisions::ActiveModel {
        id: NotSet,
        project_id: Set(label.project_id),
        item_id: Set(label.item_id),
        label_id: Set(Some(label.id)),
        actor: Set(label.annotator.clone()),
        action: Set(action.into()),
        label: Set(Some(label.label.clone())),
        suggestion: Set(suggestion),
        suggestion_shown: Set(suggestion_shown),
        model_version: Set(model_version),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Live labels of some items, oldest first.
pub async fn for_items(db: &impl ConnectionTrait, item_ids: &[i64]) -> Result<Vec<Label>, DbErr> {
    if item_ids.is_empty() {
        return Ok(vec![]);
    }
    Labels::find()
        .filter(labels::Column::ItemId.is_in(item_ids.iter().copied()))
        .filter(labels::Column::UndoneAt.is_null())
        .order_by_asc(labels::Column::Id)
        .all(db)
        .await
}

/// Live labels recorded after `watermark` (a label id).
pub async fn count_since(
    db: &impl ConnectionTrait,
    project_id: i64,
    watermark: i64,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Labels::find()
        .filter(labels::Column::ProjectId.eq(project_id))
        .filter(labels::Column::Id.gt(watermark))
        .filter(labels::Column::UndoneAt.is_null())
        .count(db)
        .await
}

/// The items of a project with a live label from a uniform draw of the pool
/// (selection `random`).
pub async fn uniformly_drawn_items(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<std::collections::HashSet<i64>, DbErr> {
    let ids: Vec<i64> = Labels::find()
        .select_only()
        .column(labels::Column::ItemId)
        .filter(labels::Column::ProjectId.eq(project_id))
        .filter(labels::Column::UndoneAt.is_null())
        .filter(labels::Column::Selection.eq(Selection::Random.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

pub async fn max_id(db: &impl ConnectionTrait, project_id: i64) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct M {
        m: Option<i64>,
    }
    let r = Labels::find()
        .select_only()
        .column_as(labels::Column::Id.max(), "m")
        .filter(labels::Column::ProjectId.eq(project_id))
        .into_model::<M>()
        .one(db)
        .await?;
    Ok(r.and_then(|m| m.m).unwrap_or(0))
}

/// The audit trail of some items, oldest first.
pub async fn decisions_for_items(
    db: &impl ConnectionTrait,
    item_ids: &[i64],
) -> Result<Vec<super::entities::decisions::Model>, DbErr> {
    use super::entities::decisions;
    if item_ids.is_empty() {
        return Ok(vec![]);
    }
    decisions::Entity::find()
        .filter(decisions::Column::ItemId.is_in(item_ids.iter().copied()))
        .order_by_asc(decisions::Column::Id)
        .all(db)
        .await
}

#[cfg(test)]
mod resolve_tests {
    use super::{resolve, Resolution::*};

    #[test]
    fn majority_ties_and_pending() {
        assert_eq!(resolve(&[], 1), Pending);
        assert_eq!(resolve(&["a", "b"], 1), Final("b".into()));
        assert_eq!(resolve(&["a"], 2), Pending);
        assert_eq!(resolve(&["a", "b"], 2), Tie);
        assert_eq!(resolve(&["a", "a"], 2), Final("a".into()));
        assert_eq!(resolve(&["a", "b", "a"], 3), Final("a".into()));
        assert_eq!(resolve(&["a", "b", "c"], 3), Tie);
    }
}
