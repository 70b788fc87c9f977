//! Replays active learning against a labeled pool with the server's learner
//! code: seed labels (cold-start order or random), then batches chosen by a
//! strategy, a refit after every batch, and quality on a held-out test set at
//! each budget.
use super::coldstart::cold_start_scores;
use super::estimate::{self, Evidence};
use super::features::{Csr, Featurizer};
use super::metrics::{self, accuracy, argmax, ece, macro_f1};
use super::model::{Design, FittedModel};
use super::strategy::{is_explore_slot, rank_auto, score, top_n, Strategy};
use super::threshold;
use super::{n_distinct, select_and_validate, Input, LearnerError, TrainParams};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// How the labels before the first model are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitOrder {
    /// The server's cold-start order (k-means++ seeding over the pool).
    ColdStart,
    /// Uniformly at random (the peer benchmark's protocol).
    Random,
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub strategy: Strategy,
    /// Labels before the first model.
    pub init: usize,
    pub init_order: InitOrder,
    /// Labels between refits.
    pub batch: usize,
    /// Labeled counts at which the test set is scored (ascending after sorting).
    pub budgets: Vec<usize>,
    /// Training parameters; `params.seed` seeds the whole run.
    pub params: TrainParams,
    /// α and the temperature are chosen again (by cross-validation, as the
    /// server does at every training) once the labels have grown by this
    /// factor since the last choice, and at every budget; in between, refits
    /// keep them. 1.0 = at every refit, exactly the server's behaviour.
    pub reselect_growth: f64,
    /// The precision the auto threshold is calibrated to at each budget.
    pub target_precision: f64,
}

impl SimOptions {
    pub fn new(strategy: Strategy, seed: u64) -> Self {
        SimOptions {
            strategy,
            init: 20,
            init_order: InitOrder::ColdStart,
            batch: 10,
            budgets: vec![100, 200, 400, 800],
            params: TrainParams {
                seed,
                ..Default::default()
            },
            reselect_growth: 1.25,
            target_precision: 0.97,
        }
    }
}

/// One budget of a simulated run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    pub n_labels: usize,
    /// On the test set.
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Test-set ECE of the served (calibrated) probabilities, and before scaling.
    pub ece: f64,
    pub ece_uncalibrated: f64,
    pub temperature: f64,
    pub alpha: f64,
    /// Distinct classes among the labels.
    pub classes_labeled: usize,
    /// Cohen's κ between this model's and the previous batch's model's
    /// predictions on a fixed sample of the pool (the stopping signal).
    pub kappa_previous: f64,
    /// What the server would report: accuracy stratified by confidence
    /// ([`estimate::accuracy`]) with its 95 % interval.
    pub reported_accuracy: f64,
    pub reported_low: f64,
    pub reported_high: f64,
    /// Out-of-fold accuracy of all labels (the old cross-validation figure).
    pub cv_accuracy: f64,
    /// Out-of-fold accuracy of the uniformly drawn labels, and their number.
    pub uniform_accuracy: f64,
    pub n_uniform: usize,
    /// The auto threshold calibrated to `target_precision` (1.0: none).
    pub auto_threshold: f64,
    /// Share of the test set at or above it, and the precision there
    /// (1.0 when nothing is accepted).
    pub test_coverage: f64,
    pub test_precision: f64,
    /// The largest test coverage any threshold reaches at test precision
    /// ≥ the target: what a threshold chosen on test labels would give.
    pub best_coverage: f64,
}

/// Test accuracy after `init` random labels plus batches of `batch` picked by
/// `strategy`, recorded when the labeled count reaches each budget
/// (ascending; budgets above the pool size are skipped). The featurizer is
/// fitted on the pool, as the peer does; no test label is seen before scoring.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    pool: &[Input],
    pool_labels: &[usize],
    test: &[Input],
    test_labels: &[usize],
    n_classes: usize,
    strategy: Strategy,
    init: usize,
    batch: usize,
    budgets: &[usize],
    seed: u64,
) -> Result<Vec<(usize, f64)>, LearnerError> {
    simulate_with(
        pool,
        pool_labels,
        test,
        test_labels,
        n_classes,
        strategy,
        init,
        batch,
        budgets,
        &TrainParams {
            seed,
            ..Default::default()
        },
    )
}

/// [`simulate`] with explicit training parameters (`params.seed` seeds it).
#[allow(clippy::too_many_arguments)]
pub fn simulate_with(
    pool: &[Input],
    pool_labels: &[usize],
    test: &[Input],
    test_labels: &[usize],
    n_classes: usize,
    strategy: Strategy,
    init: usize,
    batch: usize,
    budgets: &[usize],
    params: &TrainParams,
) -> Result<Vec<(usize, f64)>, LearnerError> {
    let opts = SimOptions {
        strategy,
        init,
        init_order: InitOrder::Random,
        batch,
        budgets: budgets.to_vec(),
        params: params.clone(),
        reselect_growth: 1.25,
        target_precision: 0.97,
    };
    Ok(
        simulate_run(pool, pool_labels, test, test_labels, n_classes, &opts)?
            .into_iter()
            .map(|p| (p.n_labels, p.accuracy))
            .collect(),
    )
}

/// Items of the pool the stopping signal is measured on.
const STOP_SAMPLE: usize = 1_000;

/// The full replay: see [`SimOptions`] and [`CurvePoint`].
pub fn simulate_run(
    pool: &[Input],
    pool_labels: &[usize],
    test: &[Input],
    test_labels: &[usize],
    n_classes: usize,
    o: &SimOptions,
) -> Result<Vec<CurvePoint>, LearnerError> {
    let params = &o.params;
    params.check()?;
    if pool.len() != pool_labels.len() || test.len() != test_labels.len() {
        return Err(LearnerError::BadInput("one label per item".into()));
    }
    if o.batch == 0 {
        return Err(LearnerError::BadInput("batch must be positive".into()));
    }
    if let Some(&l) = pool_labels
        .iter()
        .chain(test_labels)
        .find(|&&l| l >= n_classes)
    {
        return Err(LearnerError::BadInput(format!("label {l} out of range")));
    }
    let featurizer = Featurizer::fit(pool.iter(), params.max_vocab)?;
    let xp = featurizer.transform(pool)?;
    let xt = featurizer.transform(test)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
    let mut order: Vec<usize> = (0..pool.len()).collect();
    order.shuffle(&mut rng);
    let stop_rows: Vec<usize> = order[..STOP_SAMPLE.min(pool.len())].to_vec();
    let x_stop = xp.select_rows(&stop_rows);
    let init = o.init.min(pool.len());
    let mut labeled: Vec<usize> = match o.init_order {
        InitOrder::Random => order[..init].to_vec(),
        InitOrder::ColdStart => {
            let s = cold_start_scores(pool, params.seed)?;
            let all: Vec<usize> = (0..pool.len()).collect();
            top_n(&s, &all, init)
        }
    };
    let mut is_labeled = vec![false; pool.len()];
    labeled.iter().for_each(|&i| is_labeled[i] = true);
    // Which labels were uniform draws from the pool.
    let mut uniform = vec![o.init_order == InitOrder::Random; labeled.len()];

    let mut budgets: Vec<usize> = o
        .budgets
        .iter()
        .copied()
        .filter(|&b| b <= pool.len())
        .collect();
    budgets.sort_unstable();
    budgets.dedup();
    let mut state = Trainer {
        featurizer: &featurizer,
        xp: &xp,
        pool_labels,
        n_classes,
        params,
        growth: o.reselect_growth,
        chosen: None,
        last: None,
    };
    let mut model = state.fit(&labeled, None, true)?;
    let mut prev_stop: Option<Array2<f64>> = None;
    let mut kappa = f64::NAN;
    let mut curve = Vec::new();
    let mut round = 0u64;
    for &b in &budgets {
        while labeled.len() < b {
            round += 1;
            let free: Vec<usize> = (0..pool.len()).filter(|&i| !is_labeled[i]).collect();
            let want = o.batch.min(b - labeled.len());
            let seed = params.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round;
            let (picked, drawn): (Vec<usize>, Vec<bool>) = match (&model, o.strategy) {
                (Some(m), s) if s != Strategy::Random => {
                    let xf = xp.select_rows(&free);
                    let proba = m.proba_csr(&xf);
                    let sc = match s {
                        Strategy::Auto => rank_auto(&xf, &proba, want, seed),
                        s => score(s, &proba, seed),
                    };
                    let pos: Vec<usize> = (0..free.len()).collect();
                    let picked: Vec<usize> = top_n(&sc, &pos, want)
                        .into_iter()
                        .map(|p| free[p])
                        .collect();
                    // The auto head's random places are uniform draws.
                    let drawn = (0..picked.len())
                        .map(|j| s == Strategy::Auto && is_explore_slot(j))
                        .collect();
                    (picked, drawn)
                }
                _ => {
                    let picked: Vec<usize> =
                        free.choose_multiple(&mut rng, want).copied().collect();
                    let n = picked.len();
                    (picked, vec![true; n])
                }
            };
            picked.iter().for_each(|&i| is_labeled[i] = true);
            labeled.extend(picked);
            uniform.extend(drawn);
            let at_budget = labeled.len() >= b;
            let next = state.fit(&labeled, model.as_ref(), at_budget)?;
            if let Some(n) = &next {
                let cur = n.proba_csr(&x_stop);
                if let Some(p) = &prev_stop {
                    kappa = metrics::agreement(p, &cur);
                }
                prev_stop = Some(cur);
            }
            model = next;
        }
        let point = match &model {
            Some(m) => {
                let proba = m.proba_csr(&xt);
                let raw = m.clone().with_temperature(1.0).proba_csr(&xt);
                let pred: Vec<usize> = proba.rows().into_iter().map(argmax).collect();
                let y: Vec<usize> = labeled.iter().map(|&i| pool_labels[i]).collect();
                let free: Vec<usize> = (0..pool.len()).filter(|&i| !is_labeled[i]).collect();
                let pool_conf: Vec<f64> = m
                    .proba_csr(&xp.select_rows(&free))
                    .rows()
                    .into_iter()
                    .map(|r| r[argmax(r)])
                    .collect();
                let ev = match &state.last {
                    Some(mt) => {
                        let n = pool_conf.len();
                        Evidence::new(mt, &uniform, pool_conf, n)
                    }
                    None => Evidence::default(),
                };
                let rep = estimate::accuracy(&ev);
                let uni = estimate::uniform_accuracy(&ev);
                let cal = threshold::choose(&ev, o.target_precision);
                let test_conf: Vec<(f64, bool)> = proba
                    .rows()
                    .into_iter()
                    .zip(&pred)
                    .zip(test_labels)
                    .map(|((r, p), t)| (r[*p], p == t))
                    .collect();
                let t = cal.auto_threshold.unwrap_or(f64::INFINITY);
                let acc: Vec<bool> = test_conf.iter().filter(|c| c.0 >= t).map(|c| c.1).collect();
                CurvePoint {
                    reported_accuracy: rep.as_ref().map_or(f64::NAN, |e| e.value),
                    reported_low: rep.as_ref().map_or(f64::NAN, |e| e.low),
                    reported_high: rep.as_ref().map_or(f64::NAN, |e| e.high),
                    cv_accuracy: estimate::cv_accuracy(&ev).unwrap_or(f64::NAN),
                    uniform_accuracy: uni.as_ref().map_or(f64::NAN, |e| e.value),
                    n_uniform: uni.as_ref().map_or(0, |e| e.n_labels),
                    auto_threshold: cal.auto_threshold.unwrap_or(1.0),
                    test_coverage: acc.len() as f64 / test_conf.len().max(1) as f64,
                    test_precision: if acc.is_empty() {
                        1.0
                    } else {
                        acc.iter().filter(|c| **c).count() as f64 / acc.len() as f64
                    },
                    best_coverage: best_coverage(&test_conf, o.target_precision),
                    n_labels: labeled.len(),
                    accuracy: accuracy(&pred, test_labels),
                    macro_f1: macro_f1(&pred, test_labels),
                    ece: ece(&proba, test_labels),
                    ece_uncalibrated: ece(&raw, test_labels),
                    temperature: m.temperature(),
                    alpha: m.alpha(),
                    classes_labeled: n_distinct(&y),
                    kappa_previous: kappa,
                }
            }
            None => CurvePoint {
                n_labels: labeled.len(),
                accuracy: 0.0,
                macro_f1: 0.0,
                ece: 0.0,
                ece_uncalibrated: 0.0,
                temperature: 1.0,
                alpha: params.alpha,
                classes_labeled: n_distinct(
                    &labeled.iter().map(|&i| pool_labels[i]).collect::<Vec<_>>(),
                ),
                kappa_previous: kappa,
                reported_accuracy: f64::NAN,
                reported_low: f64::NAN,
                reported_high: f64::NAN,
                cv_accuracy: f64::NAN,
                uniform_accuracy: f64::NAN,
                n_uniform: 0,
                auto_threshold: 1.0,
                test_coverage: 0.0,
                test_precision: 1.0,
                best_coverage: 0.0,
            },
        };
        curve.push(point);
    }
    Ok(curve)
}

/// The largest share of `scored` (confidence, right) that a confidence
/// threshold accepts at precision ≥ `target`.
pub fn best_coverage(scored: &[(f64, bool)], target: f64) -> f64 {
    let mut s = scored.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut right, mut best) = (0usize, 0usize);
    for (i, c) in s.iter().enumerate() {
        right += c.1 as usize;
        // Only cut between distinct confidences.
        let cut = s.get(i + 1).is_none_or(|n| n.0 < c.0);
        if cut && right as f64 >= target * (i + 1) as f64 {
            best = i + 1;
        }
    }
    best as f64 / s.len().max(1) as f64
}

/// Fits the way [`super::train`] does, keeping α and T between choices.
struct Trainer<'a> {
    featurizer: &'a Featurizer,
    xp: &'a Csr,
    pool_labels: &'a [usize],
    n_classes: usize,
    params: &'a TrainParams,
    /// See [`SimOptions::reselect_growth`].
    growth: f64,
    /// (labels when chosen, parameters with α, temperature).
    chosen: Option<(usize, TrainParams, f64)>,
    /// The out-of-fold metrics of the last choice.
    last: Option<super::Metrics>,
}

impl Trainer<'_> {
    fn fit(
        &mut self,
        labeled: &[usize],
        previous: Option<&FittedModel>,
        force_select: bool,
    ) -> Result<Option<FittedModel>, LearnerError> {
        let y: Vec<usize> = labeled.iter().map(|&i| self.pool_labels[i]).collect();
        if n_distinct(&y) < 2 {
            return Ok(None);
        }
        let x = self.xp.select_rows(labeled);
        let design = Design::new(&x, self.featurizer.dim());
        let stale = match &self.chosen {
            None => true,
            Some(_) if self.growth <= 1.0 => true,
            Some((n0, ..)) => (labeled.len() as f64) >= *n0 as f64 * self.growth || *n0 < 10,
        };
        if force_select || stale {
            let (p, m, _) = select_and_validate(&design, &y, self.n_classes, self.params)?;
            self.chosen = Some((labeled.len(), p, m.temperature));
            self.last = Some(m);
        }
        let (_, p, t) = self.chosen.as_ref().expect("chosen above");
        // Warm start only when α did not change (else the old optimum is far).
        let prev = previous.filter(|m| m.alpha() == p.alpha);
        let all: Vec<usize> = (0..labeled.len()).collect();
        let sub = design.fit_from(&all, &y, p, prev)?;
        Ok(Some(
            FittedModel::new(
                self.featurizer.clone(),
                self.n_classes,
                &design,
                &sub,
                p,
                y.len(),
            )
            .with_temperature(*t),
        ))
    }
}
