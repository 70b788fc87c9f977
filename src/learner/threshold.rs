//! Choosing the auto-accept threshold with a guarantee (selective
//! classification): the lowest grid threshold at which the expected
//! precision of new items meets the target with a one-sided 95 % bound.
//!
//! Labels active learning chose crowd the unsure confidences, so the
//! confident region where a threshold lies holds few of them: counting
//! labels there (Clopper–Pearson, Bonferroni over the grid) needed ~190
//! confident labels with no error and automated nothing at 400 or 1,000
//! server-chosen labels. Here every label informs the bound through a
//! two-number reliability curve, P(right | confidence), fitted on the
//! out-of-fold predictions of all labels ([`estimate::Reliability`]); the
//! precision at a threshold is that curve averaged over the *population*
//! above it (labelled items by their out-of-fold confidence, the pool by
//! the served model's: [`estimate::population`]), and its lower bound comes
//! from the curve's uncertainty. The labels above the threshold must not
//! contradict it: their precision, each confidence bin weighted by its share
//! of the population ([`estimate::precision_at`]), must meet the target too.
//! Thresholds are tested in a fixed sequence from the highest down, each at
//! the full δ, stopping at the first that fails (Learn then Test), so no
//! split of δ over the grid is needed.
use super::estimate::{self, Evidence};
use serde::Serialize;

/// Thresholds tried, lowest first.
pub const GRID: [f64; 16] = [
    0.50, 0.60, 0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995,
];
/// Probability that the chosen threshold misses the target.
pub const DELTA: f64 = 0.05;
/// The one-sided normal quantile of 1 − δ.
const Z_DELTA: f64 = 1.645;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    pub target_precision: f64,
    /// The chosen auto threshold; `None` when no threshold meets the target
    /// and everything goes to people.
    pub auto_threshold: Option<f64>,
    /// Expected precision of new items at or above the threshold.
    pub estimated_precision: Option<f64>,
    /// Its one-sided 95 % lower bound.
    pub precision_lower_bound: Option<f64>,
    /// Share of new items (items like the project's, labelled or not) at or
    /// above the threshold: what would be auto-accepted.
    pub expected_coverage: Option<f64>,
    /// Human labels with an out-of-fold prediction.
    pub n_heldout: usize,
    /// Of them, items drawn uniformly from the pool.
    pub n_uniform: usize,
    pub reason: Option<String>,
}

pub fn choose(ev: &Evidence, target: f64) -> Calibration {
    let n = ev.labels.len();
    let n_uniform = ev.labels.iter().filter(|l| l.uniform).count();
    let mut chosen = None;
    if let Some(rel) = estimate::Reliability::fit(&ev.labels) {
        let pop = estimate::population(ev);
        for &t in GRID.iter().rev() {
            let above: Vec<(f64, f64)> = pop.iter().copied().filter(|p| p.0 >= t).collect();
            let Some((p, lower)) = rel.precision(&above, Z_DELTA) else {
                continue;
            };
            let labels_say = estimate::precision_at(ev, t);
            if lower < target || labels_say.is_some_and(|q| q < target) {
                break;
            }
            chosen = Some((t, p, lower));
        }
    }
    match chosen {
        Some((t, p, lower)) => Calibration {
            target_precision: target,
            auto_threshold: Some(t),
            estimated_precision: Some(p),
            precision_lower_bound: Some(lower),
            expected_coverage: estimate::coverage(ev, t),
            n_heldout: n,
            n_uniform,
            reason: None,
        },
        None => Calibration {
            target_precision: target,
            auto_threshold: None,
            estimated_precision: None,
            precision_lower_bound: None,
            expected_coverage: Some(0.0),
            n_heldout: n,
            n_uniform,
            reason: Some(format!(
                "no threshold reaches {:.1} % precision with 95 % confidence on {n} held-out \
                 labels: every prediction goes to people until more labels (or audits) show \
                 where the model is reliable",
                target * 100.0,
            )),
        },
    }
}

/// The next grid threshold above `t` (tightening after a failed audit).
pub fn tighten(t: f64) -> Option<f64> {
    GRID.iter().copied().find(|g| *g > t + 1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(labels: &[(f64, bool)], pool: Vec<f64>) -> Evidence {
        Evidence {
            labels: labels
                .iter()
                .map(|&(confidence, correct)| estimate::Labelled {
                    confidence,
                    correct,
                    uniform: false,
                })
                .collect(),
            pool_size: pool.len(),
            pool,
        }
    }

    #[test]
    fn threshold_needs_enough_evidence() {
        // A handful of labels says too little.
        let few: Vec<(f64, bool)> = (0..8).map(|_| (0.99, true)).collect();
        let c = choose(&evidence(&few, vec![0.99; 100]), 0.97);
        assert_eq!(c.auto_threshold, None, "{c:?}");
        assert!(c.reason.is_some());
        // 400 items, errors only at low confidence: a threshold is found and
        // excludes the unsure region.
        let mut many: Vec<(f64, bool)> = (0..300)
            .map(|i| (0.9 + (i % 10) as f64 / 100.0, true))
            .collect();
        many.extend((0..100).map(|i| (0.55 + (i % 20) as f64 / 100.0, i % 3 != 0)));
        let pool: Vec<f64> = many.iter().map(|l| l.0).collect();
        let c = choose(&evidence(&many, pool), 0.97);
        let t = c.auto_threshold.expect("a threshold");
        assert!((0.75..=0.9).contains(&t), "{t}");
        assert!(c.precision_lower_bound.unwrap() >= 0.97);
        assert!((c.expected_coverage.unwrap() - 0.75).abs() < 0.01);
    }

    #[test]
    fn an_overconfident_model_automates_nothing() {
        // The model says 0.99 and is right 9 times in 10.
        let l: Vec<(f64, bool)> = (0..400).map(|i| (0.99, i % 10 != 0)).collect();
        let c = choose(&evidence(&l, vec![0.99; 1000]), 0.97);
        assert_eq!(c.auto_threshold, None, "{c:?}");
    }

    #[test]
    fn the_population_weights_the_bins() {
        // Labels crowd the unsure bin [0.9, 0.92) with 1 error in 25; the
        // pool lies almost all at ≥ 0.995, where 120 labels are right. Plain
        // precision of the labels ≥ 0.9 is 0.993; weighted by the population
        // it is higher.
        let mut l: Vec<(f64, bool)> = (0..120).map(|_| (0.995, true)).collect();
        l.extend((0..25).map(|i| (0.91, i != 0)));
        let mut pool = vec![0.999; 950];
        pool.extend(vec![0.91; 50]);
        let ev = evidence(&l, pool);
        let p = estimate::precision_at(&ev, 0.9).unwrap();
        assert!(p > 0.997, "{p}");
    }

    #[test]
    fn tighten_moves_up_the_grid() {
        assert_eq!(tighten(0.9), Some(0.92));
        assert_eq!(tighten(0.995), None);
    }
}
