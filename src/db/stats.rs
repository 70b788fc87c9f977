use super::entities::{items, labels};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::collections::BTreeMap;

#[derive(FromQueryResult)]
struct KeyCount {
    k: Option<String>,
    n: i64,
}

/// Final labels of labelled items, counted.
pub async fn label_distribution(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<BTreeMap<String, i64>, DbErr> {
    let rows = items::Entity::find()
        .select_only()
        .column_as(items::Column::FinalLabel, "k")
        .column_as(items::Column::Id.count(), "n")
        .filter(items::Column::ProjectId.eq(project_id))
        .filter(items::Column::Status.eq("labeled"))
        .group_by(items::Column::FinalLabel)
        .into_model::<KeyCount>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.k.map(|k| (k, r.n)))
        .collect())
}

/// Live labels counted by source (human, review, override, import).
pub async fn label_sources(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<BTreeMap<String, i64>, DbErr> {
    let rows = labels::Entity::find()
        .select_only()
        .column_as(labels::Column::Source, "k")
        .column_as(labels::Column::Id.count(), "n")
        .filter(labels::Column::ProjectId.eq(project_id))
        .filter(labels::Column::UndoneAt.is_null())
        .group_by(labels::Column::Source)
        .into_model::<KeyCount>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.k.map(|k| (k, r.n)))
        .collect())
}

/// Live labels by how their item was chosen (`labels.selection`; labels
/// from before it was recorded count as `unknown`).
pub async fn label_selections(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<BTreeMap<String, i64>, DbErr> {
    let rows = labels::Entity::find()
        .select_only()
        .column_as(labels::Column::Selection, "k")
        .column_as(labels::Column::Id.count(), "n")
        .filter(labels::Column::ProjectId.eq(project_id))
        .filter(labels::Column::UndoneAt.is_null())
        .group_by(labels::Column::Selection)
        .into_model::<KeyCount>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.k.unwrap_or_else(|| "unknown".into()), r.n))
        .collect())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AnnotatorStats {
    pub annotator: String,
    pub labels: i64,
    pub undone: i64,
    pub median_duration_ms: Option<i64>,
}

/// Per annotator: live labels, undone labels, median duration. Imports are
/// not people's work and are left out.
pub async fn annotators(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Vec<AnnotatorStats>, DbErr> {
    let rows: Vec<(String, Option<i64>, bool)> = labels::Entity::find()
        .select_only()
        .column(labels::Column::Annotator)
        .column(labels::Column::DurationMs)
        .column_as(labels::Column::UndoneAt.is_not_null(), "undone")
        .filter(labels::Column::ProjectId.eq(project_id))
        .filter(labels::Column::Source.ne("import"))
        .order_by_asc(labels::Column::Annotator)
        .into_tuple()
        .all(db)
        .await?;
    let mut by: BTreeMap<String, (i64, i64, Vec<i64>)> = BTreeMap::new();
    for (name, dur, undone) in rows {
        let e = by.entry(name).or_default();
        if undone {
            e.1 += 1;
        } else {
            e.0 += 1;
            if let Some(d) = dur {
                e.2.push(d);
            }
        }
    }
    Ok(by
        .into_iter()
        .map(|(annotator, (labels, undone, mut d))| {
            d.sort_unstable();
            AnnotatorStats {
                annotator,
                labels,
                undone,
                median_duration_ms: median(&d),
            }
        })
        .collect())
}

fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// Items in a status, per project (for the queue-size gauge).
pub async fn status_counts_all(
    db: &impl ConnectionTrait,
) -> Result<Vec<(i64, String, i64)>, DbErr> {
    items::Entity::find()
        .select_only()
        .column(items::Column::ProjectId)
        .column(items::Column::Status)
        .column_as(items::Column::Id.count(), "n")
        .group_by(items::Column::ProjectId)
        .group_by(items::Column::Status)
        .into_tuple()
        .all(db)
        .await
}

/// The bin of a confidence among 10 equal bins of [0, 1], as
/// [`confidence_histogram`] counts it in SQL (`c < b/10` puts it below `b`).
pub fn confidence_bin(c: f64) -> usize {
    (1..10).find(|&b| c < b as f64 / 10.0).map_or(9, |b| b - 1)
}

/// Model confidence over the unlabeled pool in 10 equal bins of [0, 1],
/// counted in the database from the stored predictions. A rescore counts
/// every pool item's in memory instead (`db::models::pool_confidence`); this
/// serves a pool no model has ranked yet.
pub async fn confidence_histogram(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<[i64; 10], DbErr> {
    use sea_orm::{DbBackend, Statement};
    let backend = db.get_database_backend();
    let mut case = String::from("CASE");
    for b in 1..10 {
        case.push_str(&format!(
            " WHEN pred_confidence < {:.1} THEN {}",
            b as f64 / 10.0,
            b - 1
        ));
    }
    case.push_str(" ELSE 9 END");
    let ph = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT {case} AS b, COUNT(*) AS n FROM items \
         WHERE project_id = {ph} AND status = 'unlabeled' AND pred_confidence IS NOT NULL \
         GROUP BY b"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [project_id.into()],
        ))
        .await?;
    let mut out = [0i64; 10];
    for r in rows {
        let b: i32 = r.try_get("", "b")?;
        let n: i64 = r.try_get("", "n")?;
        out[b.clamp(0, 9) as usize] += n;
    }
    Ok(out)
}

/// The dashboard's confidence histogram and the version whose rescore
/// counted it over the whole pool; a pool no model has ranked yet (or only
/// a version from before such counts) is counted from its stored
/// predictions, with no version.
pub async fn pool_histogram(
    db: &impl ConnectionTrait,
    project_id: i64,
    active: Option<&super::models::VersionMeta>,
) -> Result<([i64; 10], Option<i32>), DbErr> {
    if let Some(v) = active {
        if let Some(counts) = super::models::pool_confidence(db, v.id).await? {
            return Ok((counts, Some(v.version)));
        }
    }
    Ok((confidence_histogram(db, project_id).await?, None))
}

#[cfg(test)]
mod tests {
    #[test]
    fn confidence_bins_match_the_sql() {
        use super::confidence_bin;
        assert_eq!(confidence_bin(0.0), 0);
        assert_eq!(confidence_bin(0.099), 0);
        assert_eq!(confidence_bin(0.1), 1);
        assert_eq!(confidence_bin(0.5), 5);
        assert_eq!(confidence_bin(0.899_999), 8);
        assert_eq!(confidence_bin(0.9), 9);
        assert_eq!(confidence_bin(1.0), 9);
    }

    #[test]
    fn median_even_odd() {
        assert_eq!(super::median(&[]), None);
        assert_eq!(super::median(&[3]), Some(3));
        assert_eq!(super::median(&[1, 3]), Some(2));
        assert_eq!(super::median(&[1, 2, 9]), Some(2));
    }
}

/// Predictions per day and route, oldest day first.
pub async fn routing_volumes(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Vec<(String, String, i64)>, DbErr> {
    use sea_orm::{DbBackend, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT day, route, n FROM routing_daily WHERE project_id = $1 ORDER BY day"
        }
        _ => "SELECT day, route, n FROM routing_daily WHERE project_id = ? ORDER BY day",
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [project_id.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get("", "day")?,
                r.try_get("", "route")?,
                r.try_get("", "n")?,
            ))
        })
        .collect()
}

/// A human decision on an item the model had a prediction for.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ReviewRow {
    pub item_id: i64,
    pub external_id: String,
    pub source: String,
    pub annotator: String,
    pub label: String,
    pub duration_ms: Option<i64>,
    pub pred_label: Option<String>,
    pub pred_confidence: Option<f64>,
    pub pred_version: Option<i32>,
    pub blind: bool,
    pub audit: bool,
}

/// Live review decisions (confirmations and overrides), oldest first.
pub async fn review_rows(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Vec<ReviewRow>, DbErr> {
    use sea_orm::{DbBackend, Statement};
    let backend = db.get_database_backend();
    let ph = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT l.item_id, i.external_id, l.source, l.annotator, l.label, l.duration_ms, \
         i.pred_label, i.pred_confidence, i.pred_version, i.blind, i.audit \
         FROM labels l JOIN items i ON i.id = l.item_id \
         WHERE l.project_id = {ph} AND l.undone_at IS NULL AND l.source IN ('review', 'override') \
         ORDER BY l.id"
    );
    ReviewRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [project_id.into()],
    ))
    .all(db)
    .await
}

/// Live labels people gave in the annotation queue: (item, annotator, label).
pub async fn human_labels(
    db: &impl ConnectionTrait,
    project_id: i64,
) -> Result<Vec<(i64, String, String)>, DbErr> {
    labels::Entity::find()
        .select_only()
        .column(labels::Column::ItemId)
        .column(labels::Column::Annotator)
        .column(labels::Column::Label)
        .filter(labels::Column::ProjectId.eq(project_id))
        .filter(labels::Column::UndoneAt.is_null())
        .filter(labels::Column::Source.eq("human"))
        .order_by_asc(labels::Column::Id)
        .into_tuple()
        .all(db)
        .await
}
