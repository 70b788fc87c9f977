//! The machine-learning core: featurization, multinomial logistic regression
//! (linfa), held-out metrics, sampling strategies and cold start.
//!
//! Self-contained: nothing here refers to the rest of the crate.
mod affine;
mod calibrate;
mod coldstart;
pub mod estimate;
mod features;
mod lbfgs;
mod metrics;
mod model;
mod sim;
mod sparse;
mod strategy;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
pub mod threshold;
mod vexp;

pub use coldstart::cold_start_scores;
pub use metrics::{agreement, Metrics};
pub use model::FittedModel;
pub use sim::{simulate, simulate_run, CurvePoint, InitOrder, SimOptions};
pub use strategy::{is_explore_slot, score, AutoPlan, Strategy, DEFAULT_BATCH, EXPLORE_SHARE};

use features::Featurizer;
use model::Design;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// One item as the learner sees it: text, numeric features, or both.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub text: Option<&'a str>,
    pub features: Option<&'a [f64]>,
}

#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    #[error("fewer than 2 distinct labels to learn from")]
    NotEnoughClasses,
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("fitting failed: {0}")]
    Fit(String),
    #[error("model (de)serialization failed: {0}")]
    Serde(String),
    /// The fitted model's outputs are not finite numbers (features of
    /// extreme magnitude, such as ±1e300): it must not serve.
    #[error("the model's outputs are not finite numbers: features of extreme magnitude?")]
    NotFinite,
}

/// Hyperparameters of [`train`]; `Default` is what the server uses.
#[derive(Clone, Debug)]
pub struct TrainParams {
    /// Seeds the cross-validation folds.
    pub seed: u64,
    /// L2 strength on the *summed* log loss (≈ 1/C of scikit-learn).
    pub alpha: f64,
    /// Most frequent terms (by document frequency) kept in the vocabulary.
    pub max_vocab: usize,
    /// Iterations of the solvers (linfa's in the Gram basis — a fallback
    /// finishes if it stops short — and the sparse one).
    pub max_iterations: u64,
    /// Gradient-norm tolerance of linfa's solver (the Gram basis) and of
    /// its fallback.
    pub tolerance: f64,
    /// Tolerance of the sparse solver (text, and numeric features with more
    /// labels than columns): it stops when no gradient
    /// entry of the *mean* objective (summed one / labels) exceeds this —
    /// scikit-learn's `tol` for lbfgs.
    pub sparse_tolerance: f64,
    /// Folds of the cross-validation behind the metrics (at most).
    pub cv_folds: usize,
    /// Candidate L2 strengths, chosen by cross-validated (calibrated) log
    /// loss on the labels at hand; empty: always `alpha`. `alpha` is also
    /// used while there are too few labels for cross-validation.
    pub alpha_grid: Vec<f64>,
    /// Fit a temperature on the held-out predictions (else T = 1).
    pub calibrate: bool,
    /// Threads a fit may use: cross-validation runs its folds on this many,
    /// one fold a thread; the final sparse fit splits its evaluations over
    /// them. Default: the machine's cores.
    pub threads: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            seed: 0,
            alpha: 1.0,
            max_vocab: 20_000,
            max_iterations: 200,
            tolerance: 1e-3,
            sparse_tolerance: 1e-4,
            cv_folds: 5,
            alpha_grid: DEFAULT_ALPHA_GRID.to_vec(),
            calibrate: true,
            threads: std::thread::available_parallelism().map_or(1, |t| t.get()),
        }
    }
}

/// A decade either side of scikit-learn's default C = 1 (α ≈ 1/C).
pub const DEFAULT_ALPHA_GRID: [f64; 3] = [0.1, 1.0, 10.0];

impl TrainParams {
    fn check(&self) -> Result<(), LearnerError> {
        let bad = |m: &str| Err(LearnerError::BadInput(m.into()));
        if !(self.alpha.is_finite() && self.alpha > 0.0)
            || self.alpha_grid.iter().any(|a| !(a.is_finite() && *a > 0.0))
        {
            return bad("alpha must be a positive number");
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.tolerance) && positive(self.sparse_tolerance)) {
            return bad("tolerance must be a positive number");
        }
        if self.max_vocab == 0 || self.max_iterations == 0 {
            return bad("max_vocab and max_iterations must be positive");
        }
        Ok(())
    }
}

/// From this many labels cross-validation uses at most [`LARGE_CV_FOLDS`]
/// folds: on 2 cores 4 folds take two rounds of parallel fits where 5 take
/// three, and with thousands of labels the estimates barely change. Every
/// label is still held out exactly once.
const FEWER_FOLDS_FROM: usize = 2_000;
const LARGE_CV_FOLDS: usize = 4;

/// Cross-validation fits of the sparse solver stop at this multiple
/// of `sparse_tolerance` (1e-3 by default; the final fit keeps 1e-4, like
/// scikit-learn). They only rank α values a decade apart and give the
/// held-out scores for the temperature and the thresholds; the last tenth of
/// the gradient costs most of the iterations (fortunes, 10k docs: 9.5 s →
/// 3.5 s for the whole training, test accuracy unchanged). The held-out rows
/// still never reach a fold's solver.
const CV_TOLERANCE_FACTOR: f64 = 10.0;

/// Fewest labels for which cross-validated metrics are computed.
const MIN_LABELS_FOR_CV: usize = 10;

fn check_labels(labels: &[usize], n_items: usize, n_classes: usize) -> Result<(), LearnerError> {
    if labels.len() != n_items {
        return Err(LearnerError::BadInput(format!(
            "{n_items} items but {} labels",
            labels.len()
        )));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= n_classes) {
        return Err(LearnerError::BadInput(format!(
            "label index {l} out of range for {n_classes} classes"
        )));
    }
    if n_distinct(labels) < 2 {
        return Err(LearnerError::NotEnoughClasses);
    }
    Ok(())
}

fn n_distinct(labels: &[usize]) -> usize {
    let mut v = labels.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Fits on all labeled items (the pool only shapes the vocabulary, IDF and
/// scales — its labels are never used) and estimates quality by stratified
/// k-fold cross-validation on the labeled items.
pub fn train(
    labeled: &[Input],
    labels: &[usize],
    n_classes: usize,
    pool: &[Input],
    params: &TrainParams,
) -> Result<(FittedModel, Metrics), LearnerError> {
    params.check()?;
    check_labels(labels, labeled.len(), n_classes)?;
    let featurizer = Featurizer::fit(labeled.iter().chain(pool.iter()), params.max_vocab)?;
    let x = featurizer.transform(labeled)?;
    let design = Design::new(&x, featurizer.dim());
    let (chosen, metrics, init) = select_and_validate(&design, labels, n_classes, params)?;
    let all: Vec<usize> = (0..labeled.len()).collect();
    let fit = design.fit_warm(&all, labels, &chosen, init)?;
    let model = FittedModel::new(featurizer, n_classes, &design, &fit, &chosen, labels.len())
        .with_temperature(metrics.temperature);
    // A model that answers NaN would route everything to people with no
    // confidence at all: refuse it here, before anything stores it.
    let probe = &labeled[..labeled.len().min(256)];
    if model.predict_proba(probe)?.iter().any(|p| !p.is_finite()) {
        return Err(LearnerError::NotFinite);
    }
    Ok((model, metrics))
}

/// Chooses α from `params.alpha_grid` by cross-validated log loss (after
/// temperature scaling), fits the temperature on the chosen α's out-of-fold
/// scores, and reports out-of-fold metrics. Returns the parameters to fit
/// the final model with (α set) and the metrics (`temperature` is the one to
/// serve with), and, on designs that warm-start, a starting point for the
/// final fit: the mean of the chosen α's fold solutions.
///
/// On such designs each fold walks the grid from the largest α down, every
/// fit starting from the previous one's optimum on the *same* training rows
/// (the held-out rows never reach a fold's solver, so the scores stay honest).
#[allow(clippy::type_complexity)]
pub(crate) fn select_and_validate(
    design: &Design,
    labels: &[usize],
    n_classes: usize,
    params: &TrainParams,
) -> Result<(TrainParams, Metrics, Option<ndarray::Array2<f64>>), LearnerError> {
    let with_alpha = |a: f64| TrainParams {
        alpha: a,
        ..params.clone()
    };
    let n = labels.len();
    if n < MIN_LABELS_FOR_CV || params.cv_folds < 2 {
        let mut m = Metrics::none();
        m.alpha = params.alpha;
        return Ok((with_alpha(params.alpha), m, None));
    }
    let grid: Vec<f64> = if params.alpha_grid.is_empty() {
        vec![params.alpha]
    } else {
        params.alpha_grid.clone()
    };
    let mut k = (n / 5).clamp(2, params.cv_folds);
    if n >= FEWER_FOLDS_FROM {
        k = k.min(LARGE_CV_FOLDS);
    }
    let fold = stratified_folds(labels, k, params.seed);
    let (mut per_alpha, mut inits) = held_out(design, labels, &fold, k, &grid, params)?;
    let mut best: Option<(usize, f64, f64)> = None;
    for (gi, &a) in grid.iter().enumerate() {
        let parts = &per_alpha[gi];
        let refs: Vec<&calibrate::HeldOut> = parts.iter().collect();
        let beta = if params.calibrate {
            1.0 / calibrate::fit_temperature(&refs)
        } else {
            1.0
        };
        let (loss, used) = calibrate::nll(&refs, beta);
        let loss = if used > 0 {
            loss / used as f64
        } else {
            f64::INFINITY
        };
        if best.as_ref().is_none_or(|b| loss < b.2 - 1e-9) {
            best = Some((gi, a, loss));
        }
    }
    let (gi, alpha, _) = best.expect("a non-empty grid");
    let parts = std::mem::take(&mut per_alpha[gi]);
    let init = inits[gi].take();
    if parts.is_empty() {
        let mut m = Metrics::none();
        m.alpha = alpha;
        return Ok((with_alpha(alpha), m, init));
    }
    let refs: Vec<&calibrate::HeldOut> = parts.iter().collect();
    let temperature = if params.calibrate {
        calibrate::fit_temperature(&refs)
    } else {
        1.0
    };
    // Honest calibrated metrics: each fold scaled by a temperature fitted on the others.
    let mut cal = Vec::new();
    let mut raw = Vec::new();
    let mut truth = Vec::new();
    let mut rows = Vec::new();
    for (f, p) in parts.iter().enumerate() {
        let others: Vec<&calibrate::HeldOut> = parts
            .iter()
            .enumerate()
            .filter(|(g, _)| *g != f)
            .map(|(_, q)| q)
            .collect();
        let t = if params.calibrate {
            calibrate::fit_temperature(&others)
        } else {
            1.0
        };
        cal.push(model::scores_to_proba_t(
            p.scores.view(),
            &p.classes,
            n_classes,
            t,
        ));
        raw.push(model::scores_to_proba(
            p.scores.view(),
            &p.classes,
            n_classes,
        ));
        truth.extend_from_slice(&p.truth);
        rows.extend_from_slice(&p.rows);
    }
    let cat = |v: &[ndarray::Array2<f64>]| {
        let views: Vec<_> = v.iter().map(|p| p.view()).collect();
        ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| LearnerError::Fit(e.to_string()))
    };
    let u = Metrics::evaluate(&cat(&raw)?, &truth);
    let mut m = Metrics::evaluate(&cat(&cal)?, &truth);
    // Scaling is kept only when it helped predictions it was not fitted on.
    let temperature = if m.log_loss < u.log_loss {
        temperature
    } else {
        m = u.clone();
        1.0
    };
    m.ece_uncalibrated = u.ece;
    m.log_loss_uncalibrated = u.log_loss;
    m.temperature = temperature;
    m.alpha = alpha;
    m.heldout_rows = rows;
    Ok((with_alpha(alpha), m, init))
}

/// Out-of-fold scores per fold for each α of `grid` (same order); folds
/// whose training part has a single class are skipped. With warm starts, also
/// the mean fold solution per α over all labels' classes.
#[allow(clippy::type_complexity)]
fn held_out(
    design: &Design,
    labels: &[usize],
    fold: &[usize],
    k: usize,
    grid: &[f64],
    params: &TrainParams,
) -> Result<
    (
        Vec<Vec<calibrate::HeldOut>>,
        Vec<Option<ndarray::Array2<f64>>>,
    ),
    LearnerError,
> {
    let n = labels.len();
    let warm = design.warm_starts();
    let mut all_classes = labels.to_vec();
    all_classes.sort_unstable();
    all_classes.dedup();
    // Largest α first: the most regularised fit is the quickest from zero.
    let mut order: Vec<usize> = (0..grid.len()).collect();
    order.sort_by(|&a, &b| grid[b].total_cmp(&grid[a]));
    // One fold: its α path, as (grid index, fit, held-out part) in path order.
    let run_fold = |f: usize| -> Result<
        Vec<(usize, Option<ndarray::Array2<f64>>, calibrate::HeldOut)>,
        LearnerError,
    > {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold[i] == f);
        let y: Vec<usize> = train.iter().map(|&i| labels[i]).collect();
        if test.is_empty() || n_distinct(&y) < 2 {
            return Ok(Vec::new());
        }
        let mut prev = None;
        let mut out = Vec::with_capacity(order.len());
        for &gi in &order {
            let p = TrainParams {
                alpha: grid[gi],
                sparse_tolerance: params.sparse_tolerance * CV_TOLERANCE_FACTOR,
                threads: 1,
                ..params.clone()
            };
            let sub = design.fit_warm(&train, &y, &p, prev.take())?;
            let theta = warm.then(|| sub.theta());
            prev.clone_from(&theta);
            let part = calibrate::HeldOut {
                scores: design.scores(&sub, &test),
                classes: sub.classes().to_vec(),
                truth: test.iter().map(|&i| labels[i]).collect(),
                rows: test.clone(),
            };
            out.push((gi, theta, part));
        }
        Ok(out)
    };
    // Folds are independent: spread them over the fit's threads (each fit
    // itself runs on one thread — coarse tasks keep their speed on a busy
    // machine).
    let workers = params.threads.clamp(1, k.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, _)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let f = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if f >= k {
                            break mine;
                        }
                        mine.push((f, run_fold(f)));
                    }
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("fold thread"))
            .collect()
    });
    results.sort_by_key(|(f, _)| *f);
    let mut parts: Vec<Vec<calibrate::HeldOut>> = (0..grid.len()).map(|_| Vec::new()).collect();
    let mut sums: Vec<Option<ndarray::Array2<f64>>> = vec![None; grid.len()];
    let mut counts = vec![0usize; grid.len()];
    for (_, r) in results {
        for (gi, theta, part) in r? {
            if let Some(theta) = theta {
                let sum = sums[gi].get_or_insert_with(|| {
                    ndarray::Array2::zeros((theta.nrows(), all_classes.len()))
                });
                for (j, c) in part.classes.iter().enumerate() {
                    let col = all_classes.binary_search(c).expect("a label");
                    let mut dst = sum.column_mut(col);
                    dst += &theta.column(j);
                }
                counts[gi] += 1;
            }
            parts[gi].push(part);
        }
    }
    for (s, &c) in sums.iter_mut().zip(&counts) {
        if let Some(s) = s {
            *s /= c as f64;
        }
    }
    Ok((parts, sums))
}

/// Scores the unlabeled `pool` for annotation under `strategy` (higher = ask
/// first) and returns them with the model's calibrated probabilities
/// (items × classes), so one pass gives both the queue order and the
/// predictions. `batch` is how many items annotators take between two
/// retrains (the project's `min_new_labels`; [`DEFAULT_BATCH`] if unsure).
/// For `Auto` the pool must be whole — the diversity of a batch is judged
/// against the other rows given — while the other strategies score each row
/// on its own, so any page of the pool will do. Deterministic for a seed.
pub fn rank_pool(
    model: &FittedModel,
    pool: &[Input],
    strategy: Strategy,
    batch: usize,
    seed: u64,
) -> Result<(ndarray::Array2<f64>, Vec<f64>), LearnerError> {
    let x = model.featurize(pool)?;
    let proba = model.proba_csr(&x);
    let scores = rank_rows(&x, &proba, strategy, batch, seed);
    Ok((proba, scores))
}

/// Batches of `batch` the auto strategy orders ahead in [`rank_pool`]: the
/// server may hand out more than one batch before the next model.
const RANK_HEAD_BATCHES: usize = 5;

pub(crate) fn rank_rows(
    x: &features::Csr,
    proba: &ndarray::Array2<f64>,
    strategy: Strategy,
    batch: usize,
    seed: u64,
) -> Vec<f64> {
    match strategy {
        Strategy::Auto => strategy::rank_auto(x, proba, auto_head_len(batch), seed),
        s => score(s, proba, seed),
    }
}

/// How many rows the auto strategy orders ahead for batches of `batch`.
pub fn auto_head_len(batch: usize) -> usize {
    RANK_HEAD_BATCHES * batch.max(1)
}

/// One page of a pool scored on its own: what ranking a pool of any size
/// keeps of each row. [`rank_pool`] in pieces — score every page, then for
/// `Auto` build an [`AutoPlan`] from all `gg`, read back only its rows and
/// call [`auto_head`] — gives the same ranking without holding the pool.
pub struct PageScores {
    /// Calibrated probabilities (rows × classes).
    pub proba: ndarray::Array2<f64>,
    /// The strategy's score of each row; for `Auto`, margin (the order past
    /// its head).
    pub scores: Vec<f64>,
    /// `Auto` only: squared gradient-embedding lengths (what picks its
    /// candidates); empty otherwise.
    pub gg: Vec<f64>,
}

pub fn score_page(
    model: &FittedModel,
    page: &[Input],
    strategy: Strategy,
    seed: u64,
) -> Result<PageScores, LearnerError> {
    let x = model.featurize(page)?;
    let proba = model.proba_csr(&x);
    let (scores, gg) = match strategy {
        Strategy::Auto => (
            score(Strategy::Margin, &proba, seed),
            strategy::embedding_lengths(&x, &proba),
        ),
        s => (score(s, &proba, seed), Vec::new()),
    };
    Ok(PageScores { proba, scores, gg })
}

/// The auto strategy's head (pool positions, in order) from the rows of
/// `plan` (`subset[i]` is pool row `plan.rows[i]`).
pub fn auto_head(
    model: &FittedModel,
    subset: &[Input],
    plan: &AutoPlan,
    head_len: usize,
    seed: u64,
) -> Result<Vec<usize>, LearnerError> {
    let x = model.featurize(subset)?;
    let proba = model.proba_csr(&x);
    Ok(plan.head(&x, &proba, head_len, seed))
}

/// Final scores of a pool ranked by `auto`: the head in (2, 3], in order,
/// then every other row by its margin `scores`.
pub fn with_head(head: &[usize], scores: Vec<f64>) -> Vec<f64> {
    strategy::head_scores(head, scores)
}

/// Stratified folds: each class's items shuffled, then dealt round-robin.
fn stratified_folds(labels: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut rng);
    order.sort_by_key(|&i| labels[i]);
    let mut fold = vec![0; labels.len()];
    for (pos, &i) in order.iter().enumerate() {
        fold[i] = pos % k;
    }
    fold
}
