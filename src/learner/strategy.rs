//! Informativeness scores: higher = ask a human first.
use super::features::Csr;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The default: diverse, uncertain batches with a share of random picks
    /// (see [`rank_pool`](super::rank_pool)).
    #[default]
    Auto,
    Entropy,
    Margin,
    LeastConfidence,
    Random,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Auto,
        Strategy::Entropy,
        Strategy::Margin,
        Strategy::LeastConfidence,
        Strategy::Random,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Entropy => "entropy",
            Strategy::Margin => "margin",
            Strategy::LeastConfidence => "least_confidence",
            Strategy::Random => "random",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Share of each batch the auto strategy picks uniformly at random: keeps
/// visiting the whole pool (classes and regions the model is wrongly sure
/// about), and leaves an unbiased sample among the labels.
pub const EXPLORE_SHARE: f64 = 0.2;
/// Batch size assumed when only per-row scores are asked for.
pub const DEFAULT_BATCH: usize = 10;
/// Batches the auto strategy orders ahead (the rest follows by margin).
const HEAD_BATCHES: usize = 5;
/// Largest number of rows the auto strategy's diversity search looks at
/// (the ones with the largest gradient embeddings).
const MAX_CANDIDATES: usize = 20_000;

/// One score per row of `proba`: entropy (normalised to [0, 1]), margin
/// (1 − (p1 − p2)), least confidence (1 − pmax), or uniform random from `seed`.
/// `Auto` without the items' features: margin order with every fifth place
/// of the head given to a random item (the full strategy is [`rank_pool`](super::rank_pool)).
pub fn score(strategy: Strategy, proba: &Array2<f64>, seed: u64) -> Vec<f64> {
    let k = proba.ncols();
    match strategy {
        Strategy::Auto => {
            let margin = score(Strategy::Margin, proba, seed);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let pos: Vec<usize> = (0..proba.nrows()).collect();
            let by_margin = top_n(&margin, &pos, HEAD_BATCHES * DEFAULT_BATCH);
            let mut taken = vec![false; proba.nrows()];
            let mut head = Vec::new();
            let mut next = by_margin.into_iter();
            while head.len() < (HEAD_BATCHES * DEFAULT_BATCH).min(proba.nrows()) {
                let pick = if is_explore_slot(head.len()) {
                    random_untaken(&taken, &mut rng)
                } else {
                    next.by_ref().find(|&i| !taken[i])
                };
                let Some(i) = pick.or_else(|| random_untaken(&taken, &mut rng)) else {
                    break;
                };
                taken[i] = true;
                head.push(i);
            }
            head_scores(&head, margin)
        }
        Strategy::Random => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..proba.nrows()).map(|_| rng.gen::<f64>()).collect()
        }
        Strategy::Entropy => {
            let norm = if k > 1 { (k as f64).ln() } else { 1.0 };
            proba
                .rows()
                .into_iter()
                .map(|r| {
                    let h: f64 = r.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
                    (h / norm).clamp(0.0, 1.0)
                })
                .collect()
        }
        Strategy::Margin => proba
            .rows()
            .into_iter()
            .map(|r| {
                let (mut p1, mut p2) = (0.0f64, 0.0f64);
                for &p in r {
                    if p > p1 {
                        p2 = p1;
                        p1 = p;
                    } else if p > p2 {
                        p2 = p;
                    }
                }
                1.0 - (p1 - p2)
            })
            .collect(),
        Strategy::LeastConfidence => proba
            .rows()
            .into_iter()
            .map(|r| 1.0 - r.iter().fold(0.0f64, |a, &b| a.max(b)))
            .collect(),
    }
}

/// Whether place `slot` of a ranking goes to a random item: one place in
/// 1/EXPLORE_SHARE, the first at the end of the first such stretch.
pub fn is_explore_slot(slot: usize) -> bool {
    let f = |s: usize| (s as f64 * EXPLORE_SHARE + 1e-9).floor();
    f(slot + 1) > f(slot)
}

fn random_untaken(taken: &[bool], rng: &mut Xoshiro256PlusPlus) -> Option<usize> {
    let free = taken.iter().filter(|t| !**t).count();
    if free == 0 {
        return None;
    }
    let mut k = rng.gen_range(0..free);
    for (i, t) in taken.iter().enumerate() {
        if !*t {
            if k == 0 {
                return Some(i);
            }
            k -= 1;
        }
    }
    None
}

/// Scores putting `head` first, in order, in (2, 3]; every other row keeps
/// its `rest` score (expected in [0, 1]).
pub(crate) fn head_scores(head: &[usize], mut rest: Vec<f64>) -> Vec<f64> {
    let h = head.len() as f64;
    for (r, &i) in head.iter().enumerate() {
        rest[i] = 3.0 - r as f64 / h;
    }
    rest
}

/// The auto strategy on featurized rows: a head of `head_len` rows in which
/// one place in five is a uniformly random row and the others follow
/// k-means++ seeding over the rows' gradient embeddings (BADGE, Ash et al.
/// 2020): for logistic regression the embedding of a row is
/// (p − e_ŷ) ⊗ [x̂, 1] (x̂ = x / ‖x‖), the gradient its label would give if the model's guess
/// were right. Its length grows with the uncertainty, and distances between
/// embeddings separate rows in different regions or with different confusions,
/// so each next pick is uncertain *and* unlike the picks before it. Rows past
/// the head follow by margin.
pub(crate) fn rank_auto(x: &Csr, proba: &Array2<f64>, head_len: usize, seed: u64) -> Vec<f64> {
    let margin = score(Strategy::Margin, proba, seed);
    if proba.nrows() == 0 {
        return margin;
    }
    let gg = embedding_lengths(x, proba);
    let plan = AutoPlan::new(&gg, head_len, seed);
    let head = if plan.rows.len() == proba.nrows() {
        plan.head(x, proba, head_len, seed)
    } else {
        let sub_x = x.select_rows(&plan.rows);
        let sub_p = proba.select(ndarray::Axis(0), &plan.rows);
        plan.head(&sub_x, &sub_p, head_len, seed)
    };
    head_scores(&head, margin)
}

/// Squared lengths of the rows' gradient embeddings, ‖p − e_ŷ‖²·‖[x̂, 1]‖²:
/// what picks the auto strategy's candidates. Rows are scaled to unit length
/// (text rows already are): with standardized numbers a few extreme values
/// would otherwise make outliers look like the most informative rows. Then
/// ‖[x̂, 1]‖² = 2 (1 for an empty row).
pub(crate) fn embedding_lengths(x: &Csr, proba: &Array2<f64>) -> Vec<f64> {
    (0..proba.nrows())
        .map(|i| {
            let r = proba.row(i);
            let best = super::metrics::argmax(r);
            let aa: f64 = r
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    if k == best {
                        (p - 1.0) * (p - 1.0)
                    } else {
                        p * p
                    }
                })
                .sum();
            let empty = x.row(i).1.iter().all(|v| *v == 0.0);
            aa * if empty { 1.0 } else { 2.0 }
        })
        .collect()
}

/// Which rows of a pool the auto strategy's head can come from: the
/// [`MAX_CANDIDATES`] rows with the longest gradient embeddings (the
/// diversity search looks at these) and, for the random fifth of the head,
/// a uniform sample of the whole pool drawn up front. Only these rows'
/// features are needed, so a pool of any size can be scored page by page and
/// only this subset read again (see `training::rescore_with_model`).
#[derive(Debug, Clone)]
pub struct AutoPlan {
    /// Pool positions of the subset, ascending.
    pub rows: Vec<usize>,
    /// Per subset row: a candidate of the diversity search.
    is_cand: Vec<bool>,
    /// Subset positions of the random picks, in draw order; `None` when the
    /// subset is the whole pool (random picks are then drawn as they come).
    explore: Option<Vec<usize>>,
}

impl AutoPlan {
    pub fn new(gg: &[f64], head_len: usize, seed: u64) -> AutoPlan {
        let n = gg.len();
        if n <= MAX_CANDIDATES {
            return AutoPlan {
                rows: (0..n).collect(),
                is_cand: vec![true; n],
                explore: None,
            };
        }
        let pos: Vec<usize> = (0..n).collect();
        let cands = top_n(gg, &pos, MAX_CANDIDATES);
        // Every head place could be a random one after the candidates run out.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed_e0e0_1a2b_3c4d);
        let draws = rand::seq::index::sample(&mut rng, n, head_len.min(n)).into_vec();
        let mut rows: Vec<usize> = cands.iter().chain(&draws).copied().collect();
        rows.sort_unstable();
        rows.dedup();
        let mut is_cand = vec![false; rows.len()];
        for c in &cands {
            is_cand[rows.binary_search(c).expect("candidate in subset")] = true;
        }
        let explore = draws
            .iter()
            .map(|d| rows.binary_search(d).expect("draw in subset"))
            .collect();
        AutoPlan {
            rows,
            is_cand,
            explore: Some(explore),
        }
    }

    /// The head (pool positions, in order) from the subset's featurized rows
    /// `x` and probabilities `proba` (one row per entry of `rows`): one place
    /// in five a random row, the others k-means++ seeding over the
    /// candidates' gradient embeddings.
    pub(crate) fn head(
        &self,
        x: &Csr,
        proba: &Array2<f64>,
        head_len: usize,
        seed: u64,
    ) -> Vec<usize> {
        let n = proba.nrows();
        assert_eq!(n, self.rows.len(), "one subset row per planned row");
        let is_cand = &self.is_cand;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        // a_i = p_i − e_ŷ, and ‖a_i‖²·(‖x_i‖² + 1), the squared embedding length.
        let mut a = proba.clone();
        for mut r in a.rows_mut() {
            let best = super::metrics::argmax(r.view());
            r[best] -= 1.0;
        }
        let aa: Array1<f64> = a.rows().into_iter().map(|r| r.dot(&r)).collect();
        let inv_norm: Vec<f64> = (0..n)
            .map(|i| {
                let nn = x.row(i).1.iter().map(|v| v * v).sum::<f64>().sqrt();
                if nn > 0.0 {
                    1.0 / nn
                } else {
                    0.0
                }
            })
            .collect();
        let gg: Vec<f64> = (0..n)
            .map(|i| aa[i] * if inv_norm[i] > 0.0 { 2.0 } else { 1.0 })
            .collect();
        let mut explore = self.explore.as_ref().map(|e| e.iter());
        let dim = x.indices.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
        let mut buf = vec![0.0; dim];
        let mut dmin = vec![f64::INFINITY; n];
        let mut taken = vec![false; n];
        let mut head = Vec::with_capacity(head_len);
        let mut no_centre_yet = true;
        let mut random_pick = |taken: &[bool], rng: &mut Xoshiro256PlusPlus| match &mut explore {
            Some(list) => list.find(|&&i| !taken[i]).copied(),
            None => random_untaken(taken, rng),
        };
        while head.len() < head_len.min(n) {
            let pick = if is_explore_slot(head.len()) {
                random_pick(&taken, &mut rng)
            } else if no_centre_yet {
                (0..n)
                    .filter(|&i| is_cand[i] && !taken[i])
                    .max_by(|&i, &j| gg[i].total_cmp(&gg[j]).then(j.cmp(&i)))
            } else {
                let total: f64 = (0..n)
                    .filter(|&i| is_cand[i] && !taken[i])
                    .map(|i| dmin[i])
                    .sum();
                if total > 0.0 {
                    let mut t = rng.gen::<f64>() * total;
                    let mut chosen = None;
                    for i in 0..n {
                        if !is_cand[i] || taken[i] || dmin[i] <= 0.0 {
                            continue;
                        }
                        chosen = Some(i);
                        t -= dmin[i];
                        if t <= 0.0 {
                            break;
                        }
                    }
                    chosen
                } else {
                    None
                }
            };
            let Some(c) = pick.or_else(|| random_untaken(&taken, &mut rng)) else {
                break;
            };
            taken[c] = true;
            head.push(c);
            no_centre_yet = false;
            // Distances of every candidate to the new centre c.
            let (ci, cv) = x.row(c);
            for (&j, &v) in ci.iter().zip(cv) {
                buf[j as usize] = v * inv_norm[c];
            }
            let ac = a.row(c);
            for i in 0..n {
                if !is_cand[i] || taken[i] {
                    continue;
                }
                let (ii, iv) = x.row(i);
                let xdot: f64 = ii
                    .iter()
                    .zip(iv)
                    .map(|(&j, &v)| v * buf[j as usize])
                    .sum::<f64>()
                    * inv_norm[i]
                    + 1.0;
                let d = (gg[i] + gg[c] - 2.0 * a.row(i).dot(&ac) * xdot).max(0.0);
                if d < dmin[i] {
                    dmin[i] = d;
                }
            }
            for &j in ci {
                buf[j as usize] = 0.0;
            }
        }
        head.into_iter().map(|i| self.rows[i]).collect()
    }
}

/// Indices of the `n` highest scores among `candidates` (ties: earlier first).
pub(crate) fn top_n(scores: &[f64], candidates: &[usize], n: usize) -> Vec<usize> {
    let mut c: Vec<usize> = candidates.to_vec();
    c.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    c.truncate(n);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn scores_by_hand() {
        let p = array![[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]];
        let e = score(Strategy::Entropy, &p, 0);
        assert!((e[0] - 2f64.ln() / 3f64.ln()).abs() < 1e-12);
        assert_eq!(e[1], 0.0);
        let m = score(Strategy::Margin, &p, 0);
        assert!((m[0] - 1.0).abs() < 1e-12 && m[1] == 0.0 && (m[2] - 0.7).abs() < 1e-12);
        let l = score(Strategy::LeastConfidence, &p, 0);
        assert!((l[0] - 0.5).abs() < 1e-12 && l[1] == 0.0 && (l[2] - 0.4).abs() < 1e-12);
        let uniform = array![[0.25, 0.25, 0.25, 0.25]];
        assert!((score(Strategy::Entropy, &uniform, 0)[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn explore_slots_are_one_in_five() {
        let slots: Vec<usize> = (0..20).filter(|&s| is_explore_slot(s)).collect();
        assert_eq!(slots, vec![4, 9, 14, 19]);
    }

    #[test]
    fn auto_scores_put_a_mixed_head_first() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let p = Array2::from_shape_fn((200, 3), |_| rng.gen::<f64>() + 0.01);
        let p = &p / &p.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
        let s = score(Strategy::Auto, &p, 4);
        assert_eq!(s, score(Strategy::Auto, &p, 4));
        assert_eq!(s.iter().filter(|v| **v > 2.0).count(), 50);
        let m = score(Strategy::Margin, &p, 0);
        let pos: Vec<usize> = (0..200).collect();
        let head = top_n(&s, &pos, 5);
        let best_margin = top_n(&m, &pos, 4);
        assert_eq!(&head[..4], &best_margin[..]);
    }

    #[test]
    fn random_is_seeded() {
        let p = Array2::zeros((5, 2));
        let a = score(Strategy::Random, &p, 7);
        assert_eq!(a, score(Strategy::Random, &p, 7));
        assert_ne!(a, score(Strategy::Random, &p, 8));
        assert!(a.iter().all(|v| (0.0..1.0).contains(v)));
    }

    #[test]
    fn strategy_serde_is_snake_case() {
        let s = serde_json::to_string(&Strategy::LeastConfidence).unwrap();
        assert_eq!(s, "\"least_confidence\"");
        for st in Strategy::ALL {
            let j = serde_json::to_string(&st).unwrap();
            assert_eq!(j, format!("\"{}\"", st.as_str()));
            assert_eq!(Strategy::parse(st.as_str()), Some(st));
        }
        assert_eq!(Strategy::default(), Strategy::Auto);
    }

    #[test]
    fn top_n_breaks_ties_by_index() {
        assert_eq!(
            top_n(&[0.1, 0.9, 0.9, 0.5], &[0, 1, 2, 3], 3),
            vec![1, 2, 3]
        );
    }
}
