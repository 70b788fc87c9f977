//! Honest estimates of a model's quality from the labels active learning
//! chose.
//!
//! Labels picked for uncertainty are the hardest items of the pool: their
//! cross-validated accuracy undershoots the accuracy on the pool by 0.1 or
//! more, and thresholds calibrated on them automate nothing. Two things make
//! the estimates honest here:
//!
//! - **Stratification by confidence.** Accuracy is estimated per confidence
//!   bin from the out-of-fold predictions of the labels in that bin, and the
//!   bins are weighted by their share of the *population* — every item of the
//!   project: a labelled one by its out-of-fold confidence, an unlabelled one
//!   by the served model's. Active learning over-samples the unsure bins;
//!   weighting by the population undoes that. Within a bin, actively chosen
//!   items are still a little harder than typical ones, so the bias left is
//!   towards *under*-estimating: thresholds stay on the safe side.
//! - **Uniform draws.** Labels of items drawn uniformly from the pool (the
//!   random share of `auto`, the `random` strategy) are an unbiased sample:
//!   their out-of-fold accuracy is reported beside the stratified figure.
//!
//! Thresholds are chosen by fixed-sequence testing (Learn then Test,
//! Angelopoulos et al. 2021): from the highest grid threshold down, each is
//! tested at the full δ and the walk stops at the first that fails, so no
//! Bonferroni split over the grid is needed.
use serde::{Deserialize, Serialize};

/// A labelled item's out-of-fold prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Labelled {
    /// Calibrated confidence of the out-of-fold prediction.
    pub confidence: f64,
    pub correct: bool,
    /// Drawn uniformly at random from the unlabelled pool.
    pub uniform: bool,
}

/// What the estimates rest on.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The labelled items with an out-of-fold prediction.
    pub labels: Vec<Labelled>,
    /// The served model's calibrated confidence on a uniform sample of the
    /// unlabelled pool.
    pub pool: Vec<f64>,
    /// Unlabelled items the sample stands for (≥ `pool.len()`).
    pub pool_size: usize,
}

impl Evidence {
    /// The evidence of a training: its out-of-fold predictions
    /// (`metrics.heldout`), which of the labels were uniform draws
    /// (`uniform[i]` for the i-th label trained on), and the served model's
    /// confidence on a uniform sample of the `pool_size` unlabelled items.
    pub fn new(
        metrics: &super::Metrics,
        uniform: &[bool],
        pool: Vec<f64>,
        pool_size: usize,
    ) -> Evidence {
        Evidence {
            labels: metrics
                .heldout
                .iter()
                .zip(&metrics.heldout_rows)
                .map(|(&(confidence, correct), &r)| Labelled {
                    confidence,
                    correct,
                    uniform: uniform.get(r).copied().unwrap_or(false),
                })
                .collect(),
            pool,
            pool_size,
        }
    }
}

/// An estimate with its 95 % interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// Labels it rests on.
    pub n_labels: usize,
}

/// Confidence-bin edges: the threshold grid with 0 below it.
fn edges() -> Vec<f64> {
    std::iter::once(0.0)
        .chain(super::threshold::GRID.iter().copied())
        .collect()
}

fn bin_of(edges: &[f64], c: f64) -> usize {
    edges.iter().rposition(|&e| c >= e).unwrap_or(0)
}

/// Per confidence bin: population weight, labels, correct labels, and the
/// summed confidence of the labels (or of the pool sample when no label
/// falls in the bin).
#[derive(Clone, Debug, Default)]
struct Bin {
    weight: f64,
    n: f64,
    correct: f64,
    conf_sum: f64,
    conf_n: f64,
}

fn bins(ev: &Evidence) -> Vec<Bin> {
    let e = edges();
    let mut out = vec![Bin::default(); e.len()];
    for l in &ev.labels {
        let b = &mut out[bin_of(&e, l.confidence)];
        b.weight += 1.0;
        b.n += 1.0;
        b.correct += l.correct as u8 as f64;
    }
    let w = if ev.pool.is_empty() {
        0.0
    } else {
        ev.pool_size.max(ev.pool.len()) as f64 / ev.pool.len() as f64
    };
    let mut pool_conf = vec![(0.0, 0.0); e.len()];
    for &c in &ev.pool {
        let i = bin_of(&e, c);
        out[i].weight += w;
        pool_conf[i].0 += c;
        pool_conf[i].1 += 1.0;
    }
    for (i, b) in out.iter_mut().enumerate() {
        let labelled: Vec<f64> = ev
            .labels
            .iter()
            .filter(|l| bin_of(&e, l.confidence) == i)
            .map(|l| l.confidence)
            .collect();
        if labelled.is_empty() {
            (b.conf_sum, b.conf_n) = pool_conf[i];
        } else {
            b.conf_sum = labelled.iter().sum();
            b.conf_n = labelled.len() as f64;
        }
    }
    out
}

/// Weight of the calibrated confidence as a prior on a bin's accuracy, in
/// labels: a bin with few labels leans on what the model says of itself.
const PRIOR_LABELS: f64 = 1.0;

/// Accuracy on the population, stratified by confidence (see the module
/// notes); `None` without labels.
pub fn accuracy(ev: &Evidence) -> Option<Estimate> {
    if ev.labels.is_empty() {
        return None;
    }
    let bs = bins(ev);
    let total: f64 = bs.iter().map(|b| b.weight).sum();
    let (mut value, mut var) = (0.0, 0.0);
    for b in bs.iter().filter(|b| b.weight > 0.0) {
        let prior = if b.conf_n > 0.0 {
            b.conf_sum / b.conf_n
        } else {
            0.5
        };
        let m = b.n + PRIOR_LABELS;
        let acc = (b.correct + PRIOR_LABELS * prior) / m;
        let share = b.weight / total;
        value += share * acc;
        // A bin's variance is at least that of one error in its labels.
        let p = acc.clamp(1.0 / (m + 1.0), m / (m + 1.0));
        var += share * share * p * (1.0 - p) / m;
    }
    // The project's items are themselves a sample of what the model will
    // see: accuracy on new items varies around theirs by this much.
    var += value * (1.0 - value) / total;
    let half = 1.96 * var.sqrt();
    Some(Estimate {
        value,
        low: (value - half).max(0.0),
        high: (value + half).min(1.0),
        n_labels: ev.labels.len(),
    })
}

/// Out-of-fold accuracy of the uniformly drawn labels alone, with a Wilson
/// interval; `None` without any.
pub fn uniform_accuracy(ev: &Evidence) -> Option<Estimate> {
    let u: Vec<&Labelled> = ev.labels.iter().filter(|l| l.uniform).collect();
    if u.is_empty() {
        return None;
    }
    let n = u.len() as f64;
    let p = u.iter().filter(|l| l.correct).count() as f64 / n;
    let z = 1.96f64;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    Some(Estimate {
        value: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
        n_labels: u.len(),
    })
}

/// Out-of-fold accuracy of every label (what cross-validation says; biased
/// low when active learning chose the labels).
pub fn cv_accuracy(ev: &Evidence) -> Option<f64> {
    (!ev.labels.is_empty())
        .then(|| ev.labels.iter().filter(|l| l.correct).count() as f64 / ev.labels.len() as f64)
}

/// The population as (confidence, weight): every labelled item by its
/// out-of-fold confidence (weight 1), every unlabelled one through the
/// sample of the pool (each sampled item standing for pool_size / sample).
/// New traffic is like the whole project, not like the unlabelled pool
/// alone: active learning has taken the hardest items out of the pool.
pub fn population(ev: &Evidence) -> Vec<(f64, f64)> {
    let w = if ev.pool.is_empty() {
        0.0
    } else {
        ev.pool_size.max(ev.pool.len()) as f64 / ev.pool.len() as f64
    };
    ev.labels
        .iter()
        .map(|l| (l.confidence, 1.0))
        .chain(ev.pool.iter().map(|&c| (c, w)))
        .collect()
}

/// Share of the population at or above `t` (see [`population`]).
pub fn coverage(ev: &Evidence, t: f64) -> Option<f64> {
    let pop = population(ev);
    let total: f64 = pop.iter().map(|p| p.1).sum();
    (total > 0.0).then(|| pop.iter().filter(|p| p.0 >= t).map(|p| p.1).sum::<f64>() / total)
}

/// Precision of the labels' out-of-fold predictions at or above `t`, each
/// confidence bin weighted by its share of the population (labels crowd
/// the unsure bins; the population does not); `None` without such labels.
pub fn precision_at(ev: &Evidence, t: f64) -> Option<f64> {
    let e = edges();
    let mut num = 0.0;
    let mut den = 0.0;
    for (i, b) in bins(ev).iter().enumerate() {
        if b.n == 0.0 || e[i] < t - 1e-12 {
            continue;
        }
        // Each label of the bin stands for weight/n items of the population.
        num += b.weight / b.n * b.correct;
        den += b.weight;
    }
    (den > 0.0).then(|| num / den)
}

/// How likely a prediction of confidence c is right, as a logistic curve in
/// logit(c) fitted on the out-of-fold predictions of the labels:
/// P(right | c) = σ(a + b·logit(c)). Two numbers, fitted on every label, so
/// the sparse top of the confidence range borrows strength from the rest;
/// labels active learning chose are harder than typical items of the same
/// confidence, which bends the curve down: the bias is towards caution.
#[derive(Clone, Debug)]
pub struct Reliability {
    pub a: f64,
    pub b: f64,
    /// Inverse of the (penalised) Fisher information: the covariance of (a, b).
    cov: [[f64; 2]; 2],
}

fn logit(c: f64) -> f64 {
    let c = c.clamp(1e-6, 1.0 - 1e-6);
    (c / (1.0 - c)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A weak Gaussian prior on (a, b), centred on a calibrated model (a = 0,
/// b = 1): it keeps the fit finite when the labels hold no error at all.
const RELIABILITY_PRIOR_SD: f64 = 3.0;

impl Reliability {
    /// Newton's method on the penalised log-likelihood; `None` without labels.
    pub fn fit(labels: &[Labelled]) -> Option<Reliability> {
        if labels.is_empty() {
            return None;
        }
        let lam = 1.0 / (RELIABILITY_PRIOR_SD * RELIABILITY_PRIOR_SD);
        let (mut a, mut b) = (0.0f64, 1.0f64);
        let mut h = [[0.0; 2]; 2];
        for _ in 0..50 {
            let (mut ga, mut gb) = (-lam * a, -lam * (b - 1.0));
            h = [[lam, 0.0], [0.0, lam]];
            for l in labels {
                let z = logit(l.confidence);
                let p = sigmoid(a + b * z);
                let r = l.correct as u8 as f64 - p;
                ga += r;
                gb += r * z;
                let w = p * (1.0 - p);
                h[0][0] += w;
                h[0][1] += w * z;
                h[1][1] += w * z * z;
            }
            h[1][0] = h[0][1];
            let det = h[0][0] * h[1][1] - h[0][1] * h[1][0];
            if det <= 0.0 || !det.is_finite() {
                return None;
            }
            let da = (h[1][1] * ga - h[0][1] * gb) / det;
            let db = (h[0][0] * gb - h[1][0] * ga) / det;
            a += da;
            b += db;
            if da.abs() + db.abs() < 1e-9 {
                break;
            }
        }
        let det = h[0][0] * h[1][1] - h[0][1] * h[1][0];
        if !(a.is_finite() && b.is_finite() && det > 0.0) {
            return None;
        }
        let cov = [
            [h[1][1] / det, -h[0][1] / det],
            [-h[1][0] / det, h[0][0] / det],
        ];
        Some(Reliability { a, b, cov })
    }

    /// Expected precision of the items with (confidence, weight) `items`,
    /// and a lower bound on it: each item's probability of being right
    /// bounded at `z` standard errors of its linear predictor a + b·logit(c)
    /// (on the logit scale, so a curve resting on a few labels near 1 is
    /// not taken for certainty), then averaged.
    pub fn precision(&self, items: &[(f64, f64)], z: f64) -> Option<(f64, f64)> {
        let n: f64 = items.iter().map(|i| i.1).sum();
        if n <= 0.0 {
            return None;
        }
        let c = &self.cov;
        let (mut p, mut lo) = (0.0, 0.0);
        for &(conf, w) in items {
            let x = logit(conf);
            let eta = self.a + self.b * x;
            let var = c[0][0] + 2.0 * x * c[0][1] + x * x * c[1][1];
            p += w * sigmoid(eta);
            lo += w * sigmoid(eta - z * var.max(0.0).sqrt());
        }
        Some((p / n, lo / n))
    }
}
