//! Order of the pool before any model exists: a diverse head first.
use super::features::Featurizer;
use super::{Input, LearnerError};
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Items the diverse head is chosen from (a seeded random sample of the pool).
const SAMPLE: usize = 2_000;
/// Items ordered by k-means++ seeding; the rest of the pool follows at random.
const HEAD: usize = 300;
/// Vocabulary of the cold-start featurizer (fitted on the sample only).
const VOCAB: usize = 5_000;
/// Dimension the sparse features are randomly projected to.
const PROJ_DIM: usize = 64;

/// A score per pool item (higher = earlier). The first `HEAD` items are chosen
/// from a random sample by k-means++ seeding (the first nearest the sample mean,
/// each next with probability ∝ squared distance to the chosen ones), so they
/// cover the feature space; they score in (1, 2]. All others get seeded
/// random scores in [0, 1). Deterministic for a seed.
pub fn cold_start_scores(pool: &[Input], seed: u64) -> Result<Vec<f64>, LearnerError> {
    let n = pool.len();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut scores: Vec<f64> = (0..n).map(|_| rng.gen::<f64>()).collect();
    if n == 0 {
        return Ok(scores);
    }
    let mut sample: Vec<usize> = (0..n).collect();
    sample.shuffle(&mut rng);
    sample.truncate(SAMPLE);
    sample.sort_unstable();
    let items: Vec<Input> = sample.iter().map(|&i| pool[i]).collect();
    let x = embed(&items, &mut rng)?;
    let head = kmeanspp_order(&x, HEAD.min(items.len()), &mut rng);
    let h = head.len() as f64;
    for (rank, &s) in head.iter().enumerate() {
        scores[sample[s]] = 2.0 - rank as f64 / h;
    }
    Ok(scores)
}

/// Dense rows: standardized numbers as they are when there are few of them,
/// otherwise a seeded Gaussian random projection of the sparse features.
fn embed(items: &[Input], rng: &mut Xoshiro256PlusPlus) -> Result<Array2<f64>, LearnerError> {
    let f = Featurizer::fit(items.iter(), VOCAB)?;
    let x = f.transform(items)?;
    let dim = f.dim();
    let (proj, out_dim) = if dim <= PROJ_DIM {
        (None, dim)
    } else {
        let scale = 1.0 / (PROJ_DIM as f64).sqrt();
        let r = Array2::from_shape_simple_fn((dim, PROJ_DIM), || {
            // Sum of uniforms: close enough to Gaussian for a projection.
            (rng.gen::<f64>() + rng.gen::<f64>() + rng.gen::<f64>() - 1.5) * 2.0 * scale
        });
        (Some(r), PROJ_DIM)
    };
    let mut out = Array2::zeros((items.len(), out_dim));
    for (i, mut o) in out.rows_mut().into_iter().enumerate() {
        let (idx, val) = x.row(i);
        for (&c, &v) in idx.iter().zip(val) {
            match &proj {
                Some(r) => o.scaled_add(v, &r.row(c as usize)),
                None => o[c as usize] = v,
            }
        }
    }
    Ok(out)
}

fn sq_dist_to(x: &Array2<f64>, c: usize) -> Array1<f64> {
    let d = x - &x.row(c);
    (&d * &d).sum_axis(Axis(1))
}

/// Positions of `k` rows of `x` in k-means++ seeding order.
fn kmeanspp_order(x: &Array2<f64>, k: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<usize> {
    let n = x.nrows();
    if k == 0 || n == 0 {
        return Vec::new();
    }
    let mean = x.mean_axis(Axis(0)).expect("non-empty");
    let d0 = {
        let d = x - &mean;
        (&d * &d).sum_axis(Axis(1))
    };
    let first = (0..n)
        .min_by(|&a, &b| d0[a].total_cmp(&d0[b]))
        .expect("non-empty");
    let mut order = vec![first];
    let mut chosen = vec![false; n];
    chosen[first] = true;
    let mut dmin = sq_dist_to(x, first);
    while order.len() < k {
        let total: f64 = dmin
            .iter()
            .zip(&chosen)
            .filter(|(_, c)| !**c)
            .map(|(d, _)| d)
            .sum();
        let next = if total > 0.0 {
            let mut t = rng.gen::<f64>() * total;
            let mut pick = None;
            for i in 0..n {
                if chosen[i] || dmin[i] <= 0.0 {
                    continue;
                }
                pick = Some(i);
                t -= dmin[i];
                if t <= 0.0 {
                    break;
                }
            }
            pick
        } else {
            None
        };
        // Only duplicates of chosen rows remain: take them at random.
        let next = match next {
            Some(i) => i,
            None => {
                let rest: Vec<usize> = (0..n).filter(|&i| !chosen[i]).collect();
                rest[rng.gen_range(0..rest.len())]
            }
        };
        chosen[next] = true;
        order.push(next);
        let d = sq_dist_to(x, next);
        ndarray::Zip::from(&mut dmin)
            .and(&d)
            .for_each(|a, &b| *a = a.min(b));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_covers_clusters_and_is_deterministic() {
        // Three tight clusters of very different sizes, listed cluster by cluster.
        let mut rows = Vec::new();
        for (centre, count) in [(0.0, 500), (100.0, 20), (-100.0, 5)] {
            for i in 0..count {
                rows.push(vec![
                    centre + (i % 7) as f64 * 0.01,
                    centre - (i % 5) as f64 * 0.01,
                ]);
            }
        }
        let items: Vec<Input> = rows
            .iter()
            .map(|r| Input {
                text: None,
                features: Some(r),
            })
            .collect();
        let s = cold_start_scores(&items, 3).unwrap();
        assert_eq!(s, cold_start_scores(&items, 3).unwrap());
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        let cluster = |i: usize| {
            if i < 500 {
                0
            } else if i < 520 {
                1
            } else {
                2
            }
        };
        let mut first3: Vec<usize> = order[..3].iter().map(|&i| cluster(i)).collect();
        first3.sort_unstable();
        assert_eq!(
            first3,
            vec![0, 1, 2],
            "the first three items cover all clusters"
        );
        assert!(s.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn text_pool_and_empty_pool() {
        assert!(cold_start_scores(&[], 1).unwrap().is_empty());
        let docs = [
            "cheap pills now",
            "meeting at noon",
            "cheap pills",
            "noon meeting",
            "x",
        ];
        let items: Vec<Input> = docs
            .iter()
            .map(|d| Input {
                text: Some(d),
                features: None,
            })
            .collect();
        let s = cold_start_scores(&items, 1).unwrap();
        assert_eq!(s.len(), 5);
        assert!(s.iter().filter(|v| **v > 1.0).count() == 5);
    }
}
