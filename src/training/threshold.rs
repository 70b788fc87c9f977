//! Choosing the auto-accept threshold with a guarantee (selective
//! classification): on held-out human labels, the smallest threshold whose
//! precision meets the target with a Clopper–Pearson bound, Bonferroni over
//! a fixed grid. Never chosen from training data.
use serde::Serialize;

/// Thresholds tried, lowest first (|G| = 16 enters the Bonferroni split).
pub const GRID: [f64; 16] = [
    0.50, 0.60, 0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995,
];
/// Probability that the chosen threshold misses the target.
pub const DELTA: f64 = 0.05;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    pub target_precision: f64,
    /// The chosen auto threshold; `None` when no threshold meets the target
    /// and everything goes to people.
    pub auto_threshold: Option<f64>,
    /// Precision on the held-out labels at that threshold.
    pub estimated_precision: Option<f64>,
    /// Its Clopper–Pearson lower bound (1 − δ, Bonferroni over the grid).
    pub precision_lower_bound: Option<f64>,
    /// Share of held-out items at or above the threshold.
    pub expected_coverage: Option<f64>,
    pub n_heldout: usize,
    pub reason: Option<String>,
}

/// `heldout`: (confidence, was the prediction right) for each held-out label.
pub fn choose(heldout: &[(f64, bool)], target: f64) -> Calibration {
    let n = heldout.len();
    let delta = DELTA / GRID.len() as f64;
    for &t in GRID.iter() {
        let accepted: Vec<bool> = heldout
            .iter()
            .filter(|(c, _)| *c >= t)
            .map(|(_, ok)| *ok)
            .collect();
        let k = accepted.len();
        if k == 0 {
            continue;
        }
        let errors = accepted.iter().filter(|ok| !**ok).count();
        let upper = clopper_pearson_upper(errors, k, delta);
        if upper <= 1.0 - target {
            return Calibration {
                target_precision: target,
                auto_threshold: Some(t),
                estimated_precision: Some(1.0 - errors as f64 / k as f64),
                precision_lower_bound: Some(1.0 - upper),
                expected_coverage: Some(k as f64 / n as f64),
                n_heldout: n,
                reason: None,
            };
        }
    }
    // With no errors, k ≥ ln(|G|/δ)/ε accepted items are needed.
    let needed = ((GRID.len() as f64 / DELTA).ln() / (1.0 - target)).ceil() as usize;
    Calibration {
        target_precision: target,
        auto_threshold: None,
        estimated_precision: None,
        precision_lower_bound: None,
        expected_coverage: Some(0.0),
        n_heldout: n,
        reason: Some(format!(
            "no threshold reaches {:.1} % precision with 95 % confidence on {n} held-out labels \
             (at least ~{needed} confident, correct ones are needed): every prediction goes to people",
            target * 100.0
        )),
    }
}

/// The next grid threshold above `t` (tightening after a failed audit).
pub fn tighten(t: f64) -> Option<f64> {
    GRID.iter().copied().find(|g| *g > t + 1e-12)
}

/// Upper bound on an error rate after `e` errors in `k` trials, holding with
/// probability 1 − δ: the p with P(Binomial(k, p) ≤ e) = δ, i.e.
/// `Beta.ppf(1 − δ, e + 1, k − e)`.
pub fn clopper_pearson_upper(e: usize, k: usize, delta: f64) -> f64 {
    if e >= k {
        return 1.0;
    }
    let (a, b) = ((e + 1) as f64, (k - e) as f64);
    // I_p(a, b) rises from 0 to 1 in p: bisect for 1 − δ.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if inc_beta(a, b, mid) < 1.0 - delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI.ln() - (std::f64::consts::PI * x).sin().ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let mut a = C[0];
        let t = x + 7.5;
        for (i, c) in C.iter().enumerate().skip(1) {
            a += c / (x + i as f64);
        }
        0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }
}

/// The regularized incomplete beta function I_x(a, b).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction for the incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_known_values() {
        // Zero errors: upper = 1 − δ^(1/k).
        let u = clopper_pearson_upper(0, 100, 0.05);
        assert!((u - (1.0 - 0.05f64.powf(0.01))).abs() < 1e-9, "{u}");
        // scipy.stats.beta.ppf(0.95, 3, 98) = 0.06155...
        let u = clopper_pearson_upper(2, 100, 0.05);
        assert!((u - 0.06155).abs() < 2e-4, "{u}");
        assert_eq!(clopper_pearson_upper(5, 5, 0.05), 1.0);
    }

    #[test]
    fn threshold_needs_enough_evidence() {
        // 50 perfect confident items are too few for 97 % at δ = 0.05/16.
        let few: Vec<(f64, bool)> = (0..50).map(|_| (0.99, true)).collect();
        let c = choose(&few, 0.97);
        assert_eq!(c.auto_threshold, None);
        assert!(c.reason.is_some());
        // 400 items, errors only at low confidence: a threshold is found and
        // excludes the unsure region.
        let mut many: Vec<(f64, bool)> = (0..300)
            .map(|i| (0.9 + (i % 10) as f64 / 100.0, true))
            .collect();
        many.extend((0..100).map(|i| (0.55 + (i % 20) as f64 / 100.0, i % 3 != 0)));
        let c = choose(&many, 0.97);
        let t = c.auto_threshold.expect("a threshold");
        assert!((0.75..=0.9).contains(&t), "{t}");
        assert!(c.precision_lower_bound.unwrap() >= 0.97);
        assert!((c.expected_coverage.unwrap() - 0.75).abs() < 0.01);
    }

    #[test]
    fn tighten_moves_up_the_grid() {
        assert_eq!(tighten(0.9), Some(0.92));
        assert_eq!(tighten(0.995), None);
    }
}
