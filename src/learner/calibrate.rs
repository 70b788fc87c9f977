//! Temperature scaling: one scalar T, fitted on held-out predictions, divides
//! the linear scores before the softmax. It keeps the ranking (and so the
//! accuracy) and fixes over- or under-confidence.
use ndarray::Array2;

/// Held-out linear scores of one cross-validation fold.
pub(crate) struct HeldOut {
    /// Rows × classes seen by the fold's model.
    pub scores: Array2<f64>,
    /// Project label of each score column.
    pub classes: Vec<usize>,
    /// Project label of each row.
    pub truth: Vec<usize>,
    /// Position of each row among the labels given to training.
    pub rows: Vec<usize>,
}

/// Fewest usable held-out rows for fitting a temperature; below it T = 1.
pub(crate) const MIN_CALIBRATION_ROWS: usize = 20;
/// Search range of T: wide enough for any sane model, bounded so a perfectly
/// separated fold cannot push the probabilities to 0 and 1.
const T_MIN: f64 = 0.1;
const T_MAX: f64 = 10.0;

/// Summed negative log-likelihood at inverse temperature `beta`, and the
/// number of rows counted (a row whose label the fold's model never saw
/// cannot be helped by a temperature and is left out).
pub(crate) fn nll(parts: &[&HeldOut], beta: f64) -> (f64, usize) {
    let mut total = 0.0;
    let mut n = 0;
    for p in parts {
        for (row, t) in p.scores.rows().into_iter().zip(&p.truth) {
            let Some(c) = p.classes.iter().position(|c| c == t) else {
                continue;
            };
            let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let lse = row
                .iter()
                .map(|&s| (beta * (s - m)).exp())
                .sum::<f64>()
                .ln();
            total += lse - beta * (row[c] - m);
            n += 1;
        }
    }
    (total, n)
}

/// The temperature minimising the held-out log loss (golden-section search
/// on ln β: the loss is convex in β = 1/T). T = 1 with too few rows.
pub(crate) fn fit_temperature(parts: &[&HeldOut]) -> f64 {
    if nll(parts, 1.0).1 < MIN_CALIBRATION_ROWS {
        return 1.0;
    }
    let f = |lb: f64| nll(parts, lb.exp()).0;
    let (mut a, mut b) = ((1.0 / T_MAX).ln(), (1.0 / T_MIN).ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..50 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    let beta = ((a + b) / 2.0).exp();
    // Keep T = 1 unless scaling measurably helps.
    if f(beta.ln()) < f(0.0) - 1e-9 {
        1.0 / beta
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Scores drawn from a calibrated model at temperature 1, then multiplied
    /// by `k`: the fitted temperature should be close to `k`.
    fn synthetic(k: f64) -> HeldOut {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 4000;
        let mut scores = Array2::zeros((n, 3));
        let mut truth = Vec::new();
        for mut r in scores.rows_mut() {
            let s: Vec<f64> = (0..3).map(|_| rng.gen::<f64>() * 4.0).collect();
            let z: f64 = s.iter().map(|v| v.exp()).sum();
            let u = rng.gen::<f64>() * z;
            let mut acc = 0.0;
            let mut t = 2;
            for (j, v) in s.iter().enumerate() {
                acc += v.exp();
                if u <= acc {
                    t = j;
                    break;
                }
            }
            truth.push(t);
            for j in 0..3 {
                r[j] = s[j] * k;
            }
        }
        HeldOut {
            scores,
            classes: vec![0, 1, 2],
            rows: (0..truth.len()).collect(),
            truth,
        }
    }

    #[test]
    fn recovers_the_temperature_of_overconfident_scores() {
        for k in [0.5, 1.0, 3.0] {
            let h = synthetic(k);
            let t = fit_temperature(&[&h]);
            assert!((t / k - 1.0).abs() < 0.15, "k {k}: fitted {t}");
        }
    }

    #[test]
    fn too_few_rows_keep_t_1() {
        let mut h = synthetic(3.0);
        h.scores = h.scores.slice(ndarray::s![..10, ..]).to_owned();
        h.truth.truncate(10);
        assert_eq!(fit_temperature(&[&h]), 1.0);
    }
}
