//! Training and rescoring: the one place that moves data between the
//! database and the learner. The cron job and `POST …/train` both call
//! [`train_project`]; a per-project guard keeps one ML job per project at a
//! time, across replicas too ([`lock`]); fitting and scoring run on
//! low-priority threads of their own ([`background`]), never on the
//! executor.
mod background;
mod lock;
mod store;

pub use store::{LoadedModel, ModelBlob, ModelStore};

use crate::db::{self, items::Scored, models::VersionMeta};
use crate::domain::{LabelSet, Selection, Strategy};
use crate::learner::{self, threshold, Input, LearnerError};
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows fetched and scored at a time when rescoring the pool.
const SCORE_PAGE: u64 = 5_000;
/// Items both models predict for the stability (stopping) signal.
const STABILITY_SAMPLE: u64 = 1_000;
/// Unlabeled items the featurizer may learn its vocabulary and scales from.
const UNSUPERVISED_SAMPLE: u64 = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("project not found")]
    ProjectNotFound,
    #[error("fewer than 2 classes have labels")]
    NotEnoughLabels,
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("learner: {0}")]
    Learner(#[from] LearnerError),
    #[error("{0}")]
    Other(#[from] anyhow::Error),
}

/// One async mutex per project: at most one training or rescoring at a time.
#[derive(Default)]
pub struct TrainingGuards {
    map: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Projects with a rescore waiting (to settle, then for the guard), and
    /// when it may start: a further request joins it instead of queueing
    /// another whole-pool pass (an import of 1M rows in 100 batches would
    /// otherwise queue 100 of them).
    rescore_waiting: Mutex<HashMap<i64, Settle>>,
    /// When each project's newest ranking here began reading the pool: a
    /// waiting rescore asked for before that has nothing left to do (an
    /// import followed at once by a training is ranked once, not twice).
    ranked_from: Mutex<HashMap<i64, Instant>>,
    /// The newest rank epoch each project's ranking was started under here:
    /// a ranking still being written in the background stops once it is
    /// no longer the newest.
    epochs: Arc<Mutex<HashMap<i64, i64>>>,
}

impl TrainingGuards {
    fn ranking_starts(&self, project_id: i64) {
        self.ranked_from
            .lock()
            .expect("ranked lock")
            .insert(project_id, Instant::now());
    }

    fn set_epoch(&self, project_id: i64, epoch: i64) {
        self.epochs
            .lock()
            .expect("epochs lock")
            .insert(project_id, epoch);
    }

    pub fn for_project(&self, project_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.map
            .lock()
            .expect("guard map lock")
            .entry(project_id)
            .or_default()
            .clone()
    }

    /// Waits until no training or rescoring runs, at most `limit`; false if
    /// one was still running then.
    pub async fn wait_idle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let guards: Vec<_> = self
            .map
            .lock()
            .expect("guard map lock")
            .values()
            .cloned()
            .collect();
        for g in guards {
            if tokio::time::timeout_at(deadline, g.lock()).await.is_err() {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Api,
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Schedule => "schedule",
        }
    }
}

fn inputs(rows: &[(Option<String>, Option<Vec<f64>>)]) -> Vec<Input<'_>> {
    rows.iter()
        .map(|(t, f)| Input {
            text: t.as_deref(),
            features: f.as_deref(),
        })
        .collect()
}

/// An item as training sees it: id, text, features, final label.
type Row = (i64, Option<String>, Option<Vec<f64>>, Option<String>);

fn decode_rows(rows: Vec<db::items::TrainingRow>) -> Vec<Row> {
    rows.into_iter()
        .map(|r| {
            (
                r.id,
                r.text,
                r.features.as_deref().map(db::items::decode_features),
                r.final_label,
            )
        })
        .collect()
}

/// Trains a new model version on every labelled item, stores it, makes it
/// active, and rescores the unlabeled pool with it. A request that arrives
/// while the project trains (on any replica) waits for that training and
/// answers its version when it used every label the request saw.
pub async fn train_project(
    state: &AppState,
    project_id: i64,
    trigger: Trigger,
) -> Result<VersionMeta, TrainError> {
    let arrival = lock::Arrival::note(state, project_id).await?;
    let turn = lock::Turn::wait(state, project_id).await?;
    let res = match arrival.joined(state, project_id).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => train_in_turn(state, project_id, trigger).await,
        Err(e) => Err(e.into()),
    };
    turn.release().await;
    res
}

/// [`train_locked`] with its metric and log line; the caller holds the turn.
async fn train_in_turn(
    state: &AppState,
    project_id: i64,
    trigger: Trigger,
) -> Result<VersionMeta, TrainError> {
    let res = train_locked(state, project_id).await;
    let outcome = match &res {
        Ok(_) => "ok",
        Err(TrainError::NotEnoughLabels) => "not_enough_labels",
        Err(_) => "error",
    };
    state
        .metrics
        .trainings
        .with_label_values(&[outcome, trigger.as_str()])
        .inc();
    match &res {
        Ok(v) => tracing::info!(
            project_id,
            version = v.version,
            n_labels = v.n_labels,
            trigger = trigger.as_str(),
            "trained"
        ),
        Err(TrainError::NotEnoughLabels) => {}
        Err(e) => tracing::error!(project_id, error = %e, "training failed"),
    }
    res
}

async fn train_locked(state: &AppState, project_id: i64) -> Result<VersionMeta, TrainError> {
    let started = Instant::now();
    let project = db::projects::get(&state.db, project_id)
        .await?
        .ok_or(TrainError::ProjectNotFound)?;
    let labels = project_labels(&project)?;
    let watermark = db::labels::max_id(&state.db, project_id).await?;
    let labeled = decode_rows(db::items::labeled_rows(&state.read, project_id).await?);
    // A uniform sample of the pool (not its first rows: a file sorted by
    // class would give a vocabulary of a few classes), which also stands for
    // the pool in the estimates of the model's quality.
    let pool = decode_rows(
        db::items::unlabeled_sample(&state.read, project_id, UNSUPERVISED_SAMPLE).await?,
    );
    let pool_size = db::items::count_unlabeled(&state.read, project_id).await?;
    let drawn = db::labels::uniformly_drawn_items(&state.read, project_id).await?;
    let mut y = Vec::with_capacity(labeled.len());
    let mut x_rows = Vec::with_capacity(labeled.len());
    let mut uniform = Vec::with_capacity(labeled.len());
    for (id, t, f, l) in labeled {
        if let Some(i) = l.as_deref().and_then(|l| labels.index_of(l)) {
            y.push(i);
            x_rows.push((t, f));
            uniform.push(drawn.contains(&id));
        }
    }
    let distinct: std::collections::HashSet<usize> = y.iter().copied().collect();
    if distinct.len() < 2 {
        return Err(TrainError::NotEnoughLabels);
    }
    let n_classes = labels.len();
    let seed = watermark as u64;
    let n_labels = y.len();
    // While people or services keep the server busy, a fit leaves them a
    // core: with 8 annotators labelling a 1M pool on 2 cores, a fit on both
    // took `queue/next` p99 from ~7 to 13-17 ms, on one 7-9 ms.
    let cores = std::thread::available_parallelism().map_or(1, |t| t.get());
    let threads = if state.metrics.serving() {
        cores.saturating_sub(1).max(1)
    } else {
        cores
    };
    let (model, metrics, evidence) = background::spawn("fit", move || {
        let pool_rows: Vec<(Option<String>, Option<Vec<f64>>)> =
            pool.into_iter().map(|(_, t, f, _)| (t, f)).collect();
        let params = learner::TrainParams {
            seed,
            threads,
            ..Default::default()
        };
        let pool_inputs = inputs(&pool_rows);
        let (model, metrics) =
            learner::train(&inputs(&x_rows), &y, n_classes, &pool_inputs, &params)?;
        let pool_conf = model
            .predict_proba(&pool_inputs)?
            .rows()
            .into_iter()
            .map(|p| argmax(p).1)
            .collect();
        let evidence = learner::estimate::Evidence::new(&metrics, &uniform, pool_conf, pool_size);
        Ok::<_, LearnerError>((model, metrics, evidence))
    })
    .await??;
    state
        .metrics
        .training_seconds
        .with_label_values(&["fit"])
        .observe(started.elapsed().as_secs_f64());

    // The stopping signal: how much the new model's answers differ from the
    // previous one's on a fixed sample of the project (its first items).
    let stability = match state.models.current(&state.read, project_id).await? {
        Some(prev) => {
            let sample =
                db::items::list(&state.read, project_id, None, None, STABILITY_SAMPLE).await?;
            let rows: Vec<(Option<String>, Option<Vec<f64>>)> = sample
                .into_iter()
                .map(|i| {
                    (
                        i.text,
                        i.features.as_deref().map(db::items::decode_features),
                    )
                })
                .collect();
            let cur = model.clone();
            background::spawn("stability", move || -> Result<Option<f64>, LearnerError> {
                let x = inputs(&rows);
                let a = prev.model.predict_proba(&x)?;
                let b = cur.predict_proba(&x)?;
                Ok(Some(learner::agreement(&a, &b)))
            })
            .await??
        }
        None => None,
    };
    let mut metrics_json = serde_json::to_value(&metrics).map_err(anyhow::Error::from)?;
    metrics_json["stability_kappa"] = serde_json::json!(stability);
    quality_estimates(&mut metrics_json, &evidence);
    let (auto_threshold, review_threshold) = match project.target_precision {
        None => (project.auto_threshold, project.review_threshold),
        Some(target) => {
            let mut cal = threshold::choose(&evidence, target);
            // A failed audit of auto cases tightens the threshold a step.
            if let (Some(t), true) = (
                cal.auto_threshold,
                audit_failed(state, project_id, target).await?,
            ) {
                cal.auto_threshold = Some(threshold::tighten(t).unwrap_or(1.0));
                cal.reason =
                    Some("tightened one step: audited auto precision is below the target".into());
            }
            let auto = cal.auto_threshold.unwrap_or(1.0);
            metrics_json["calibration"] =
                serde_json::to_value(&cal).map_err(anyhow::Error::from)?;
            (auto, project.review_threshold.min(auto))
        }
    };
    let blob = ModelBlob {
        labels: labels.as_slice().to_vec(),
        model: model.to_bytes()?,
    }
    .encode()?;
    let meta = db::models::insert_active(
        &state.db,
        db::models::NewVersion {
            project_id,
            n_labels: n_labels as i32,
            label_watermark: watermark,
            algorithm: model.algorithm(),
            metrics: metrics_json,
            auto_threshold,
            review_threshold,
            model: blob,
        },
    )
    .await?;
    let loaded = Arc::new(LoadedModel {
        meta: meta.clone(),
        labels: labels.as_slice().to_vec(),
        model,
    });
    state.models.put(project_id, loaded.clone());
    let strategy = Strategy::parse(&project.strategy).map_err(|e| anyhow::anyhow!(e))?;
    let t = Instant::now();
    rescore_with_model(state, project_id, &loaded, strategy).await?;
    state
        .metrics
        .training_seconds
        .with_label_values(&["rescore"])
        .observe(t.elapsed().as_secs_f64());
    Ok(meta)
}

/// Puts the honest estimates into a model version's metrics: `accuracy`
/// becomes the accuracy on the whole project stratified by confidence (see
/// [`learner::estimate`]), with its interval and what it rests on; the
/// plain out-of-fold accuracy of the labels, biased low when active
/// learning chose them, stays as `cv_accuracy`.
fn quality_estimates(m: &mut serde_json::Value, ev: &learner::estimate::Evidence) {
    use learner::estimate;
    m["cv_accuracy"] = m["accuracy"].clone();
    let n_uniform = ev.labels.iter().filter(|l| l.uniform).count();
    m["accuracy_basis"] = serde_json::json!({
        "method": "stratified_by_confidence",
        "labels": ev.labels.len(),
        "uniform_labels": n_uniform,
        "pool_items": ev.pool_size,
        "pool_sample": ev.pool.len(),
    });
    if let Some(e) = estimate::accuracy(ev) {
        m["accuracy"] = serde_json::json!(e.value);
        m["accuracy_interval"] = serde_json::json!([e.low, e.high]);
    }
    m["uniform_accuracy"] = match estimate::uniform_accuracy(ev) {
        Some(e) => serde_json::json!({
            "value": e.value, "low": e.low, "high": e.high, "labels": e.n_labels,
        }),
        None => serde_json::Value::Null,
    };
}

/// True when at least 10 blind audits of auto cases put precision below target.
async fn audit_failed(state: &AppState, project_id: i64, target: f64) -> Result<bool, TrainError> {
    let rows = db::stats::review_rows(&state.read, project_id).await?;
    let audited: Vec<_> = rows.iter().filter(|r| r.audit).collect();
    if audited.len() < 10 {
        return Ok(false);
    }
    let agree = audited
        .iter()
        .filter(|r| r.pred_label.as_deref() == Some(r.label.as_str()))
        .count();
    Ok((agree as f64) < target * audited.len() as f64)
}

fn project_labels(p: &db::projects::Project) -> Result<LabelSet, TrainError> {
    let v: Vec<String> =
        serde_json::from_value(p.labels.clone()).map_err(|e| anyhow::anyhow!("labels: {e}"))?;
    LabelSet::parse(&v).map_err(|e| TrainError::Other(anyhow::anyhow!(e)))
}

/// Trains when at least `min_new_labels` labels arrived since the active
/// version; what the cron job runs. Skips if a training is already running
/// here or on another replica.
pub async fn train_if_due(
    state: &AppState,
    project_id: i64,
) -> Result<Option<VersionMeta>, TrainError> {
    if !is_due(state, project_id).await? {
        return Ok(None);
    }
    let Some(turn) = lock::Turn::try_now(state, project_id).await? else {
        return Ok(None);
    };
    // Asked again with the turn held: a training may have just finished.
    let res = match is_due(state, project_id).await {
        Ok(true) => train_in_turn(state, project_id, Trigger::Schedule)
            .await
            .map(Some),
        Ok(false) => Ok(None),
        Err(e) => Err(e),
    };
    turn.release().await;
    match res {
        Err(TrainError::NotEnoughLabels) => Ok(None),
        r => r,
    }
}

async fn is_due(state: &AppState, project_id: i64) -> Result<bool, TrainError> {
    let Some(project) = db::projects::get(&state.db, project_id).await? else {
        return Ok(false);
    };
    let watermark = db::models::active(&state.db, project_id)
        .await?
        .map(|v| v.label_watermark)
        .unwrap_or(0);
    let new = db::labels::count_since(&state.db, project_id, watermark).await?;
    Ok(new >= project.min_new_labels as u64)
}

/// Reorders the unlabeled pool: by the active model under the project's
/// strategy, or in cold-start order before any model exists. A call made
/// while another is still waiting for the project's guard returns at once:
/// the waiting one starts later and sees the same items.
pub async fn rescore_project(state: &AppState, project_id: i64) -> Result<(), TrainError> {
    rescore_project_after(state, project_id, Duration::ZERO).await
}

/// [`rescore_project`] that starts once `settle` has passed since the
/// newest request joining it, but at most [`MAX_SETTLE`] after the first:
/// a bulk import of many batches in a row is ranked once after its last
/// batch (and every few seconds while it lasts), not after every batch
/// while the next ones are being written.
pub async fn rescore_project_after(
    state: &AppState,
    project_id: i64,
    settle: Duration,
) -> Result<(), TrainError> {
    let waiting = &state.training.rescore_waiting;
    let now = Instant::now();
    {
        let mut w = waiting.lock().expect("rescore set lock");
        if let Some(s) = w.get_mut(&project_id) {
            s.start = (now + settle).min(s.first + MAX_SETTLE);
            s.last = now;
            return Ok(());
        }
        w.insert(
            project_id,
            Settle {
                first: now,
                last: now,
                start: now + settle,
            },
        );
    }
    loop {
        let start = waiting.lock().expect("rescore set lock")[&project_id].start;
        if start <= Instant::now() {
            break;
        }
        tokio::time::sleep_until(start.into()).await;
    }
    let turn = lock::Turn::wait(state, project_id).await;
    let asked = waiting
        .lock()
        .expect("rescore set lock")
        .remove(&project_id)
        .map(|s| s.last);
    let turn = turn?;
    let ranked_since = state
        .training
        .ranked_from
        .lock()
        .expect("ranked lock")
        .get(&project_id)
        .is_some_and(|&t| asked.is_some_and(|a| t >= a));
    if ranked_since {
        // A training's ranking (or another rescore) began after the last
        // request: it has read every item those requests were about.
        turn.release().await;
        return Ok(());
    }
    let res = rescore_in_turn(state, project_id).await;
    turn.release().await;
    res
}

async fn rescore_in_turn(state: &AppState, project_id: i64) -> Result<(), TrainError> {
    let Some(project) = db::projects::get(&state.db, project_id).await? else {
        return Ok(());
    };
    let strategy = Strategy::parse(&project.strategy).map_err(|e| anyhow::anyhow!(e))?;
    match state.models.current(&state.read, project_id).await? {
        Some(m) => rescore_with_model(state, project_id, &m, strategy).await,
        None => cold_start(state, project_id).await,
    }
}

/// Ranks the unlabeled pool with `model` and writes the ranking, best
/// first, under a new rank epoch (see `db::items::next_rank_epoch`).
///
/// The pool is read page by page from the reader connections and each page
/// is scored on a background thread ([`background`]), keeping only an id,
/// a score and a prediction per row; `auto` then reads back just the rows its head can
/// come from (see [`learner::AutoPlan`]). The rows are written in ranking
/// order, so the head leads the queue as soon as its first batch commits,
/// while the rest of a large pool is still being written.
async fn rescore_with_model(
    state: &AppState,
    project_id: i64,
    model: &Arc<LoadedModel>,
    strategy: Strategy,
) -> Result<(), TrainError> {
    let started = Instant::now();
    state.training.ranking_starts(project_id);
    // Two halves of the pool's id range are read and scored side by side:
    // reading a page is a reader connection's thread and decoding it the
    // executor's, so one stream keeps neither core busy.
    let Some((lo, hi)) = db::items::unlabeled_id_span(&state.read, project_id).await? else {
        return Ok(());
    };
    let mid = lo + (hi - lo) / 2;
    let (first, second) = tokio::try_join!(
        score_range(state, project_id, model, strategy, lo - 1, mid),
        score_range(state, project_id, model, strategy, mid, hi),
    )?;
    let PoolScores {
        mut ids,
        mut scores,
        mut gg,
        mut preds,
    } = first;
    ids.extend(second.ids);
    scores.extend(second.scores);
    gg.extend(second.gg);
    preds.extend(second.preds);
    if ids.is_empty() {
        return Ok(());
    }
    tracing::info!(
        project_id,
        rows = ids.len(),
        seconds = started.elapsed().as_secs_f64(),
        "pool scored"
    );
    // Pool positions the ranking drew uniformly at random.
    let mut drawn = std::collections::HashSet::new();
    if strategy == Strategy::Auto {
        let seed = (model.meta.version as u64) << 32 ^ project_id as u64;
        let head_len = learner::auto_head_len(learner::DEFAULT_BATCH);
        let plan = learner::AutoPlan::new(&gg, head_len, seed);
        let wanted: Vec<i64> = plan.rows.iter().map(|&i| ids[i]).collect();
        let mut by_id: HashMap<i64, Row> =
            decode_rows(db::items::rows_by_ids(&state.read, &wanted).await?)
                .into_iter()
                .map(|r| (r.0, r))
                .collect();
        let subset: Vec<(Option<String>, Option<Vec<f64>>)> = wanted
            .iter()
            .map(|id| {
                by_id
                    .remove(id)
                    .map(|(_, t, f, _)| (t, f))
                    .ok_or_else(|| anyhow::anyhow!("pool item {id} vanished while ranking"))
            })
            .collect::<Result<_, _>>()?;
        let m = model.clone();
        let head;
        (scores, head) = background::spawn(
            "rank",
            move || -> Result<(Vec<f64>, Vec<usize>), LearnerError> {
                let head = learner::auto_head(&m.model, &inputs(&subset), &plan, head_len, seed)?;
                Ok((learner::with_head(&head, scores), head))
            },
        )
        .await??;
        drawn.extend(
            head.iter()
                .enumerate()
                .filter(|(slot, _)| learner::is_explore_slot(*slot))
                .map(|(_, &i)| i),
        );
    }
    let mut bins = [0i64; 10];
    for &(_, conf) in &preds {
        bins[db::stats::confidence_bin(conf)] += 1;
    }
    // Only the first `--rank-depth` rows of the ranking are written; the
    // rest keep their earlier order behind them.
    let by_rank =
        |&a: &usize, &b: &usize| scores[b].total_cmp(&scores[a]).then(ids[a].cmp(&ids[b]));
    let mut order: Vec<usize> = (0..ids.len()).collect();
    let depth = state.rank_depth.ordered_rows.min(order.len());
    if depth < order.len() {
        order.select_nth_unstable_by(depth, by_rank);
        order.truncate(depth);
    }
    order.sort_unstable_by(by_rank);
    let scored: Vec<Scored> = order
        .into_iter()
        .map(|i| Scored {
            id: ids[i],
            score: scores[i],
            prediction: Some((
                model.labels[preds[i].0 as usize].clone(),
                preds[i].1,
                model.meta.version,
            )),
            selection: if strategy == Strategy::Random || drawn.contains(&i) {
                Selection::Random
            } else {
                Selection::Active
            },
        })
        .collect();
    let epoch = db::items::next_rank_epoch(&state.db, project_id).await?;
    state.training.set_epoch(project_id, epoch);
    write_ranking(state, project_id, scored, epoch).await?;
    tracing::info!(
        project_id,
        epoch,
        seconds = started.elapsed().as_secs_f64(),
        "ranking head written"
    );
    db::models::set_pool_confidence(&state.db, model.meta.id, bins, ids.len()).await?;
    Ok(())
}

/// Every row of a part of the pool, scored: id, the strategy's score, the
/// `auto` candidate weight, and the prediction (class index, confidence).
#[derive(Default)]
struct PoolScores {
    ids: Vec<i64>,
    scores: Vec<f64>,
    gg: Vec<f64>,
    preds: Vec<(u32, f64)>,
}

/// Reads the unlabelled items with ids in `(after, until]` page by page and
/// scores each page on a background thread while the next one is read.
async fn score_range(
    state: &AppState,
    project_id: i64,
    model: &Arc<LoadedModel>,
    strategy: Strategy,
    mut after: i64,
    until: i64,
) -> Result<PoolScores, TrainError> {
    let mut out = PoolScores::default();
    let mut scoring = None;
    loop {
        let page =
            db::items::unlabeled_page(&state.read, project_id, after, until, SCORE_PAGE).await?;
        if let Some(task) = scoring.take() {
            let (page_ids, ps): (Vec<i64>, learner::PageScores) = task.await??;
            out.ids.extend(page_ids);
            out.scores.extend(ps.scores);
            out.gg.extend(ps.gg);
            out.preds.extend(ps.proba.rows().into_iter().map(|p| {
                let (best, conf) = argmax(p);
                (best as u32, conf)
            }));
        }
        let Some(last) = page.last() else { break };
        after = last.id;
        let m = model.clone();
        scoring = Some(background::spawn("score", move || {
            let seed = (m.meta.version as u64) << 32 ^ page[0].id as u64;
            let rows = decode_rows(page);
            let xs: Vec<Input> = rows
                .iter()
                .map(|(_, t, f, _)| Input {
                    text: t.as_deref(),
                    features: f.as_deref(),
                })
                .collect();
            let ps = learner::score_page(&m.model, &xs, strategy.to_learner(), seed)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            Ok::<_, LearnerError>((ids, ps))
        }));
    }
    Ok(out)
}

/// Rows of the ranking's background part written between two checks that
/// no newer ranking of the project has begun.
const RANK_TAIL_ROWS_PER_CHECK: usize = 1_000;

/// Writes the first rows of a ranking (`scored`, best first, at most
/// `--rank-depth` of them; [`crate::config::RankDepth`]): the head now,
/// best first, and the rest in the background in id order (neighbouring
/// rows share database pages), given up as soon as a newer ranking of the
/// project starts; both in short transactions
/// ([`db::items::ScoreWriter`]), so a lease or a label waits for the
/// (single, on SQLite) writer a few milliseconds at most. The queue serves
/// the newest epoch first, so until the rest is written it serves the
/// previous ranking after the new head. Deeper items keep their earlier
/// order, and their stored prediction: item views show the active model's
/// (see [`current_predictions`]), so no retrain rewrites a whole large
/// pool.
async fn write_ranking(
    state: &AppState,
    project_id: i64,
    mut scored: Vec<Scored>,
    epoch: i64,
) -> Result<(), TrainError> {
    let mut rest = scored.split_off(scored.len().min(state.rank_depth.sync_rows));
    let mut writer = db::items::ScoreWriter::new(&state.db);
    writer.write(&state.db, &scored, epoch).await?;
    if rest.is_empty() {
        return Ok(());
    }
    let db = state.db.clone();
    let epochs = state.training.epochs.clone();
    let seconds = state.metrics.training_seconds.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let rows = rest.len();
        rest.sort_unstable_by_key(|s| s.id);
        for chunk in rest.chunks(RANK_TAIL_ROWS_PER_CHECK) {
            if epochs.lock().expect("epochs lock").get(&project_id) != Some(&epoch) {
                tracing::debug!(project_id, epoch, "ranking superseded");
                return;
            }
            if let Err(e) = writer.write(&db, chunk, epoch).await {
                tracing::warn!(project_id, epoch, error = %e, "writing the ranking's tail");
                return;
            }
            tokio::task::yield_now().await;
        }
        seconds
            .with_label_values(&["rank_tail"])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            project_id,
            epoch,
            rows,
            seconds = started.elapsed().as_secs_f64(),
            "ranking tail written"
        );
    });
    Ok(())
}

/// Puts the active model's prediction into the unlabelled items among
/// `items` whose stored one is another version's or missing, for a view: a
/// rescore writes predictions only as deep as `--rank-depth`, so a deeper
/// item is scored here, a page at a time, and nothing is stored.
pub async fn current_predictions(
    state: &AppState,
    project_id: i64,
    items: &mut [db::items::Item],
) -> Result<(), TrainError> {
    if !items.iter().any(|i| i.status == "unlabeled") {
        return Ok(());
    }
    let Some(model) = state.models.current(&state.read, project_id).await? else {
        return Ok(());
    };
    let version = model.meta.version;
    let stale: Vec<usize> = (0..items.len())
        .filter(|&k| items[k].status == "unlabeled" && items[k].pred_version != Some(version))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let xs: Vec<(Option<String>, Option<Vec<f64>>)> = stale
        .iter()
        .map(|&k| {
            let i = &items[k];
            (
                i.text.clone(),
                i.features.as_deref().map(db::items::decode_features),
            )
        })
        .collect();
    let m = model.clone();
    let proba = tokio::task::spawn_blocking(move || m.model.predict_proba(&inputs(&xs)))
        .await
        .map_err(|e| anyhow::anyhow!("prediction task: {e}"))??;
    for (&k, p) in stale.iter().zip(proba.rows()) {
        let (best, conf) = argmax(p);
        let i = &mut items[k];
        i.pred_label = Some(model.labels[best].clone());
        i.pred_confidence = Some(conf);
        i.pred_version = Some(version);
    }
    Ok(())
}

/// Makes sure the next `n` items of a project without a model come from a
/// cold start, not from the import's placeholder order (which follows the
/// file in runs): when the queue would hand out an unranked item — right
/// after an import, before its background ranking has run, or once an
/// earlier cold start's sample is used up — a cold start runs now, under
/// the project's turn, and the lease waits for it. Whatever the timing or
/// the order of the file, the first items handed out are the same kind of
/// sample of the whole pool.
pub async fn cold_start_if_unranked(
    state: &AppState,
    project_id: i64,
    n: u64,
) -> Result<(), TrainError> {
    let unranked = || async {
        let epochs = db::items::next_epochs(&state.db, project_id, n).await?;
        Ok::<bool, TrainError>(epochs.contains(&0))
    };
    if state
        .models
        .current(&state.read, project_id)
        .await?
        .is_some()
        || !unranked().await?
    {
        return Ok(());
    }
    let turn = lock::Turn::wait(state, project_id).await?;
    // Asked again with the turn: a ranking or a training may just have run.
    let res = match state.models.current(&state.read, project_id).await {
        Ok(None) => match unranked().await {
            Ok(true) => cold_start(state, project_id).await,
            other => other.map(|_| ()),
        },
        other => other.map(|_| ()).map_err(TrainError::from),
    };
    turn.release().await;
    res
}

async fn cold_start(state: &AppState, project_id: i64) -> Result<(), TrainError> {
    let started = Instant::now();
    state.training.ranking_starts(project_id);
    // The k-means++ head is drawn from a uniform sample of the pool, and the
    // rest of the sample follows it in random order: only the sample is read
    // and written, so an import into a large pool costs a sample, not a pass
    // over every item, and the first 2,000 items handed out never follow
    // the file's order (a file sorted by class would otherwise be served one
    // class at a time until a model exists).
    let sample = db::items::unlabeled_sample(&state.read, project_id, COLD_START_SAMPLE).await?;
    let rows = decode_rows(sample);
    if rows.is_empty() {
        return Ok(());
    }
    let scored = background::spawn(
        "cold-start",
        move || -> Result<Vec<Scored>, LearnerError> {
            let xs: Vec<(Option<String>, Option<Vec<f64>>)> = rows
                .iter()
                .map(|(_, t, f, _)| (t.clone(), f.clone()))
                .collect();
            let scores = learner::cold_start_scores(&inputs(&xs), project_id as u64)?;
            Ok(rows
                .iter()
                .zip(scores)
                .map(|((id, ..), s)| Scored {
                    id: *id,
                    score: s,
                    prediction: None,
                    // The head is chosen for diversity; the rest of the
                    // uniform sample, in random order, are uniform draws.
                    selection: if s >= 1.0 {
                        Selection::ColdStart
                    } else {
                        Selection::Random
                    },
                })
                .collect())
        },
    )
    .await??;
    // The head scores in (1, 2], the rest of the sample in [0, 1).
    let head = scored;
    let epoch = db::items::next_rank_epoch(&state.db, project_id).await?;
    state.training.set_epoch(project_id, epoch);
    db::items::demote_cold_start_head(&state.db, project_id).await?;
    db::items::write_scores(&state.db, &head, epoch).await?;
    tracing::info!(
        project_id,
        epoch,
        head = head.len(),
        seconds = started.elapsed().as_secs_f64(),
        "cold-start head written"
    );
    Ok(())
}

/// When a waiting rescore was first asked for, and when it may start.
struct Settle {
    first: Instant,
    /// The newest request that joined it.
    last: Instant,
    start: Instant,
}

/// The longest a rescore waits for requests to stop joining it.
pub const MAX_SETTLE: Duration = Duration::from_secs(10);

/// Pool items the cold start reads (the learner's own sample size).
pub const COLD_START_SAMPLE: u64 = 2_000;

/// Index and value of the largest probability (first on ties): of a slice,
/// a `Vec` or a matrix row alike, without copying it.
pub fn argmax<'a>(p: impl IntoIterator<Item = &'a f64>) -> (usize, f64) {
    p.into_iter()
        .copied()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
}
