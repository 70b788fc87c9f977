//! Held-out quality of probabilistic predictions.
use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins of the expected calibration error.
pub const ECE_BINS: usize = 15;
/// Probabilities are clipped to [EPS, 1 - EPS] in the log loss.
const LOG_LOSS_EPS: f64 = 1e-15;

/// Out-of-fold quality of a trained model. `log_loss` and `ece` are those of
/// the calibrated probabilities the model serves (the temperature of each
/// fold's predictions fitted on the other folds'); the `_uncalibrated` fields
/// are the same predictions before temperature scaling.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Metrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub log_loss: f64,
    pub ece: f64,
    /// Number of predictions the metrics were computed on (0: none).
    pub evaluated_on: usize,
    /// ECE before temperature scaling.
    #[serde(default)]
    pub ece_uncalibrated: f64,
    /// Log loss before temperature scaling.
    #[serde(default)]
    pub log_loss_uncalibrated: f64,
    /// Temperature the served probabilities are divided by (1: none).
    #[serde(default = "one")]
    pub temperature: f64,
    /// L2 strength chosen by cross-validation.
    #[serde(default)]
    pub alpha: f64,
    /// Per out-of-fold prediction: (confidence, was it right). What the
    /// auto-accept threshold is chosen on; not stored.
    #[serde(skip)]
    pub heldout: Vec<(f64, bool)>,
    /// The label (its position among the labels trained on) of each entry
    /// of `heldout`; not stored.
    #[serde(skip)]
    pub heldout_rows: Vec<usize>,
}

fn one() -> f64 {
    1.0
}

impl Metrics {
    /// Zeros with `evaluated_on = 0`: too few labels to hold any out.
    pub fn none() -> Self {
        Metrics {
            accuracy: 0.0,
            macro_f1: 0.0,
            log_loss: 0.0,
            ece: 0.0,
            evaluated_on: 0,
            ece_uncalibrated: 0.0,
            log_loss_uncalibrated: 0.0,
            temperature: 1.0,
            alpha: 0.0,
            heldout: vec![],
            heldout_rows: vec![],
        }
    }

    /// Metrics of `proba` (items × classes) against the true label indices.
    pub fn evaluate(proba: &Array2<f64>, y: &[usize]) -> Self {
        assert_eq!(proba.nrows(), y.len(), "one label per row");
        if y.is_empty() {
            return Metrics::none();
        }
        let pred: Vec<usize> = proba.rows().into_iter().map(argmax).collect();
        Metrics {
            accuracy: accuracy(&pred, y),
            macro_f1: macro_f1(&pred, y),
            log_loss: log_loss(proba, y),
            ece: ece(proba, y),
            evaluated_on: y.len(),
            ece_uncalibrated: ece(proba, y),
            log_loss_uncalibrated: log_loss(proba, y),
            temperature: 1.0,
            alpha: 0.0,
            heldout: proba
                .rows()
                .into_iter()
                .zip(&pred)
                .zip(y)
                .map(|((r, p), t)| (r[*p], p == t))
                .collect(),
            heldout_rows: (0..y.len()).collect(),
        }
    }
}

/// Cohen's kappa between the predicted classes of two models on the same
/// rows (items × classes each): 1 when they agree everywhere, 0 when they
/// agree as often as chance would. The stopping signal: when successive
/// versions agree at κ ≥ 0.99 on a fixed unlabeled sample, more labels
/// barely change the model. Rows of different counts compare their common prefix.
pub fn agreement(prev: &Array2<f64>, cur: &Array2<f64>) -> f64 {
    let n = prev.nrows().min(cur.nrows());
    if n == 0 {
        return 1.0;
    }
    let k = prev.ncols().max(cur.ncols());
    let a: Vec<usize> = prev.rows().into_iter().take(n).map(argmax).collect();
    let b: Vec<usize> = cur.rows().into_iter().take(n).map(argmax).collect();
    kappa(&a, &b, k)
}

/// Cohen's kappa of two labelings with classes below `k`.
pub fn kappa(a: &[usize], b: &[usize], k: usize) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 1.0;
    }
    let mut ca = vec![0.0; k];
    let mut cb = vec![0.0; k];
    let mut same = 0.0;
    for (&x, &y) in a.iter().zip(b).take(n) {
        ca[x] += 1.0;
        cb[y] += 1.0;
        same += (x == y) as u8 as f64;
    }
    let nf = n as f64;
    let po = same / nf;
    let pe: f64 = ca.iter().zip(&cb).map(|(x, y)| x * y).sum::<f64>() / (nf * nf);
    if pe >= 1.0 {
        // Both predict one class everywhere: agreement iff it is the same.
        return if po >= 1.0 { 1.0 } else { 0.0 };
    }
    (po - pe) / (1.0 - pe)
}

/// Index of the largest value (first on ties).
pub fn argmax(r: ArrayView1<f64>) -> usize {
    let mut best = 0;
    for (i, &v) in r.iter().enumerate() {
        if v > r[best] {
            best = i;
        }
    }
    best
}

pub fn accuracy(pred: &[usize], y: &[usize]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
}

/// Mean F1 over the classes present in `y` (F1 = 0 when a class is never predicted right).
pub fn macro_f1(pred: &[usize], y: &[usize]) -> f64 {
    let mut classes: Vec<usize> = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return 0.0;
    }
    let total: f64 = classes
        .iter()
        .map(|&c| {
            let tp = pred
                .iter()
                .zip(y)
                .filter(|(p, t)| **p == c && **t == c)
                .count() as f64;
            let n_pred = pred.iter().filter(|p| **p == c).count() as f64;
            let n_true = y.iter().filter(|t| **t == c).count() as f64;
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (n_pred + n_true)
            }
        })
        .sum();
    total / classes.len() as f64
}

/// Mean negative log probability of the true label.
pub fn log_loss(proba: &Array2<f64>, y: &[usize]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let s: f64 = proba
        .rows()
        .into_iter()
        .zip(y)
        .map(|(r, &t)| -r[t].clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln())
        .sum();
    s / y.len() as f64
}

/// Expected calibration error over `ECE_BINS` equal-width bins of the top
/// probability: Σ |B|/n · |accuracy(B) − confidence(B)|; bins are (i/15, (i+1)/15].
pub fn ece(proba: &Array2<f64>, y: &[usize]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let mut count = [0usize; ECE_BINS];
    let mut conf = [0.0f64; ECE_BINS];
    let mut correct = [0.0f64; ECE_BINS];
    for (r, &t) in proba.rows().into_iter().zip(y) {
        let p = argmax(r);
        let c = r[p];
        let b = ((c * ECE_BINS as f64).ceil() as usize).clamp(1, ECE_BINS) - 1;
        count[b] += 1;
        conf[b] += c;
        correct[b] += (p == t) as u8 as f64;
    }
    let n = y.len() as f64;
    (0..ECE_BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| (correct[b] - conf[b]).abs() / n)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn accuracy_counts_hits() {
        assert_eq!(accuracy(&[0, 1, 1, 2], &[0, 1, 2, 2]), 0.75);
    }

    #[test]
    fn macro_f1_by_hand() {
        // class 0: tp 1, pred 1, true 2 → 2/3; class 1: tp 1, pred 2, true 1 → 2/3;
        // class 2: tp 1, pred 1, true 1 → 1.
        let f = macro_f1(&[0, 1, 1, 2], &[0, 0, 1, 2]);
        assert!((f - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        // A class only predicted (never true) is not averaged in.
        assert!((macro_f1(&[0, 3], &[0, 1]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn log_loss_by_hand_and_clipped() {
        let p = array![[0.8, 0.2], [0.4, 0.6]];
        let l = log_loss(&p, &[0, 0]);
        assert!((l - (-(0.8f64).ln() - (0.4f64).ln()) / 2.0).abs() < 1e-12);
        let zero = array![[1.0, 0.0]];
        assert!((log_loss(&zero, &[1]) - (-(1e-15f64).ln())).abs() < 1e-9);
    }

    #[test]
    fn ece_by_hand() {
        // Bin (0.6, 0.667]: conf 0.62, 0.66, one right → |1 − 1.28| = 0.28.
        // Bin (0.933, 1]: conf 0.95, right → |1 − 0.95| = 0.05. ECE = 0.33 / 3.
        let p = array![[0.62, 0.38], [0.34, 0.66], [0.95, 0.05]];
        let e = ece(&p, &[0, 0, 0]);
        assert!((e - 0.33 / 3.0).abs() < 1e-12, "{e}");
        // Confidence 1/15 exactly lies in the first bin; a perfect 1.0 in the last.
        let q = array![[1.0, 0.0]];
        assert_eq!(ece(&q, &[0]), 0.0);
    }

    #[test]
    fn kappa_by_hand() {
        assert_eq!(kappa(&[0, 1, 0, 1], &[0, 1, 0, 1], 2), 1.0);
        // po = 0.5, pe = 0.5 → 0.
        assert!(kappa(&[0, 1, 0, 1], &[0, 0, 1, 1], 2).abs() < 1e-12);
        assert_eq!(kappa(&[2, 2], &[2, 2], 3), 1.0);
        let p = array![[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]];
        let q = array![[0.7, 0.3], [0.4, 0.6], [0.3, 0.7]];
        // a = [0, 1, 0], b = [0, 1, 1]: po = 2/3, pe = (2·1 + 1·2)/9 = 4/9 → 0.4.
        assert!((agreement(&p, &q) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn evaluate_empty_is_nan_free() {
        let m = Metrics::evaluate(&Array2::zeros((0, 3)), &[]);
        assert_eq!(m, Metrics::none());
    }
}
