//! Multinomial logistic regression trained directly on the sparse rows: text,
//! and numeric features once there are more labels than columns (a dense
//! row is a CSR row with every entry; an evaluation is O(non-zeros ×
//! classes) either way).
//!
//! Same objective as linfa's `MultiLogisticRegression` (which
//! [`super::model`] runs in the Gram basis):
//! Σᵢ −log softmax(xᵢW + b)[yᵢ] + α/2‖W‖², intercept unpenalised.
//! One evaluation costs O(nnz × classes): scores row by row from the CSR
//! rows, the gradient `Xᵀ(P − Y)` column by column from a CSC copy (no
//! scatter into the columns × classes gradient). Minimised by
//! [`super::lbfgs`]. Cross-validation runs its folds in parallel, one
//! thread a fit, which keeps its speed on a busy machine (an evaluation split
//! over threads waits for the slowest one, and measured 2× slower under a
//! concurrent build); the final fit, which runs alone, splits each
//! evaluation over the cores ([`Problem::with_threads`]).
use super::features::Csr;
use super::lbfgs;

/// Correction pairs kept by L-BFGS. scipy (scikit-learn) keeps 10; here the
/// two-loop recursion over (columns × classes)-long vectors costs as much as
/// an evaluation, and on the fortunes set 5 pairs trained 1.4× faster than 10
/// (3 pairs: no faster) at the same accuracy.
const MEMORY: usize = 5;

/// Training rows (columns already the design's active positions) and labels.
pub(crate) struct Problem {
    n: usize,
    p: usize,
    k: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
    colptr: Vec<usize>,
    rowidx: Vec<u32>,
    cvalues: Vec<f64>,
    y: Vec<usize>,
    alpha: f64,
    /// Threads one evaluation is split over.
    threads: usize,
    /// Scores, then residuals P − Y (n × k).
    r: Vec<f64>,
}

impl Problem {
    /// Rows `rows` of `x` (columns < `p`), class indices `y` (< `k`).
    pub fn new(x: &Csr, rows: &[usize], y: Vec<usize>, p: usize, k: usize, alpha: f64) -> Self {
        let sub = x.select_rows(rows);
        let n = rows.len();
        let mut colptr = vec![0usize; p + 1];
        for &c in &sub.indices {
            colptr[c as usize + 1] += 1;
        }
        for c in 0..p {
            colptr[c + 1] += colptr[c];
        }
        let mut next = colptr.clone();
        let mut rowidx = vec![0u32; sub.indices.len()];
        let mut cvalues = vec![0.0; sub.indices.len()];
        for i in 0..n {
            let (idx, val) = sub.row(i);
            for (&c, &v) in idx.iter().zip(val) {
                let q = &mut next[c as usize];
                rowidx[*q] = i as u32;
                cvalues[*q] = v;
                *q += 1;
            }
        }
        Problem {
            n,
            p,
            k,
            indptr: sub.indptr,
            indices: sub.indices,
            values: sub.values,
            colptr,
            rowidx,
            cvalues,
            y,
            alpha,
            threads: 1,
            r: vec![0.0; n * k],
        }
    }

    /// Splits each evaluation over `threads` threads (a fit that runs
    /// alone: the final fit after cross-validation).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Length of θ = [W; b] ((p + 1) × k, row-major).
    pub fn dim(&self) -> usize {
        (self.p + 1) * self.k
    }

    /// Loss of θ; writes its gradient into `grad`. With `threads` > 1 the
    /// rows (scores, residuals) and then the columns (gradient) are split
    /// into that many parts of about equal nonzeros, one thread each.
    pub fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (p, k) = (self.p, self.k);
        let (w, b) = theta.split_at(p * k);
        let (gw, gb) = grad.split_at_mut(p * k);
        let rows = Rows {
            indptr: &self.indptr,
            indices: &self.indices,
            values: &self.values,
            y: &self.y,
            k,
        };
        let cols = Cols {
            colptr: &self.colptr,
            rowidx: &self.rowidx,
            values: &self.cvalues,
            k,
            alpha: self.alpha,
        };
        let mut loss = 0.5 * self.alpha * w.iter().map(|v| v * v).sum::<f64>();
        gb.fill(0.0);
        let t = self.threads.clamp(1, self.n.max(1));
        if t == 1 {
            loss += rows.residuals(0, w, b, &mut self.r, gb);
            cols.gradient(0, w, &self.r, gw);
            return loss;
        }
        // Rows: parts of about equal nonzeros, each with its own ∇b.
        let row_cuts = cuts(&self.indptr, t);
        let r = &mut self.r;
        let parts: Vec<(f64, Vec<f64>)> = std::thread::scope(|s| {
            let mut rest: &mut [f64] = r;
            let mut handles = Vec::with_capacity(t);
            for win in row_cuts.windows(2) {
                let (mine, tail) = rest.split_at_mut((win[1] - win[0]) * k);
                rest = tail;
                let (rows, start) = (&rows, win[0]);
                handles.push(s.spawn(move || {
                    let mut g = vec![0.0; k];
                    (rows.residuals(start, w, b, mine, &mut g), g)
                }));
            }
            handles
                .into_iter()
                .map(|h| h.join().expect("residual thread"))
                .collect()
        });
        for (l, g) in parts {
            loss += l;
            for (a, v) in gb.iter_mut().zip(g) {
                *a += v;
            }
        }
        // Columns: each part writes its own rows of ∇W.
        let col_cuts = cuts(&self.colptr, t);
        let r = &self.r;
        std::thread::scope(|s| {
            let mut rest: &mut [f64] = gw;
            for win in col_cuts.windows(2) {
                let (mine, tail) = rest.split_at_mut((win[1] - win[0]) * k);
                rest = tail;
                let (cols, start) = (&cols, win[0]);
                s.spawn(move || cols.gradient(start, w, r, mine));
            }
        });
        loss
    }

    /// Minimises from `theta` (length [`Problem::dim`]) in place; true when
    /// the largest gradient entry reached `gtol`.
    pub fn solve(&mut self, theta: &mut [f64], gtol: f64, max_iter: usize) -> bool {
        debug_assert_eq!(theta.len(), self.dim());
        let out = lbfgs::minimize(
            |t, g| self.eval(t, g),
            theta,
            &lbfgs::Options {
                max_iter,
                gtol,
                memory: MEMORY,
            },
        );
        tracing::debug!(
            n = self.n,
            p = self.p,
            k = self.k,
            iterations = out.iterations,
            evaluations = out.evaluations,
            converged = out.converged,
            "sparse logistic fit"
        );
        out.converged
    }
}

/// Where to cut `ptr`'s ranges (a CSR/CSC pointer array) into `t` parts of
/// about equal nonzeros: `t + 1` ascending positions from 0 to the end.
fn cuts(ptr: &[usize], t: usize) -> Vec<usize> {
    let n = ptr.len() - 1;
    let nnz = ptr[n];
    let mut out = vec![0];
    for j in 1..t {
        let target = nnz * j / t;
        let c = ptr.partition_point(|&q| q < target).min(n);
        out.push(c.max(*out.last().expect("starts with 0")));
    }
    out.push(n);
    out
}

/// The CSR side of a [`Problem`].
struct Rows<'a> {
    indptr: &'a [usize],
    indices: &'a [u32],
    values: &'a [f64],
    y: &'a [usize],
    k: usize,
}

impl Rows<'_> {
    /// Scores, log loss and residuals P − Y for rows `start..` (as many as
    /// `r` holds, k a row); adds Σ residuals (∇b) into `gb`.
    fn residuals(&self, start: usize, w: &[f64], b: &[f64], r: &mut [f64], gb: &mut [f64]) -> f64 {
        let k = self.k;
        let mut loss = 0.0;
        for (off, h) in r.chunks_exact_mut(k).enumerate() {
            let i = start + off;
            h.copy_from_slice(b);
            for q in self.indptr[i]..self.indptr[i + 1] {
                let c = self.indices[q] as usize;
                let v = self.values[q];
                for (hj, wj) in h.iter_mut().zip(&w[c * k..c * k + k]) {
                    *hj += v * wj;
                }
            }
            let m = h.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
            let yi = self.y[i];
            let hy = h[yi];
            let mut s = 0.0;
            for hj in h.iter_mut() {
                *hj = (*hj - m).exp();
                s += *hj;
            }
            loss += m + s.ln() - hy;
            let inv = 1.0 / s;
            for (hj, g) in h.iter_mut().zip(gb.iter_mut()) {
                *hj *= inv;
                *g += *hj;
            }
            h[yi] -= 1.0;
            gb[yi] -= 1.0;
        }
        loss
    }
}

/// The CSC side of a [`Problem`].
struct Cols<'a> {
    colptr: &'a [usize],
    rowidx: &'a [u32],
    values: &'a [f64],
    k: usize,
    alpha: f64,
}

impl Cols<'_> {
    /// ∇W = αW + Xᵀ R for columns `start..` (as many as `gw` holds).
    fn gradient(&self, start: usize, w: &[f64], r: &[f64], gw: &mut [f64]) {
        let k = self.k;
        for (off, gc) in gw.chunks_exact_mut(k).enumerate() {
            let c = start + off;
            for (a, wv) in gc.iter_mut().zip(&w[c * k..c * k + k]) {
                *a = self.alpha * wv;
            }
            for q in self.colptr[c]..self.colptr[c + 1] {
                let i = self.rowidx[q] as usize;
                let v = self.values[q];
                for (a, rv) in gc.iter_mut().zip(&r[i * k..i * k + k]) {
                    *a += v * rv;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// A random CSR matrix, rows with 0..12 nonzeros among `p` columns
    /// (some rows and columns empty).
    fn random_csr(rng: &mut StdRng, n: usize, p: usize) -> Csr {
        let mut x = Csr::new();
        for _ in 0..n {
            let mut cols: Vec<u32> = (0..rng.gen_range(0..12))
                .map(|_| rng.gen_range(0..p as u32))
                .collect();
            cols.sort_unstable();
            cols.dedup();
            for c in cols {
                x.indices.push(c);
                x.values.push(rng.gen_range(-1.0..1.0));
            }
            x.indptr.push(x.indices.len());
        }
        x
    }

    #[test]
    fn split_evaluation_matches_one_thread() {
        let mut rng = StdRng::seed_from_u64(7);
        let (n, p, k) = (301, 57, 4);
        let x = random_csr(&mut rng, n, p);
        let rows: Vec<usize> = (0..n).rev().collect();
        let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..k)).collect();
        let theta: Vec<f64> = (0..(p + 1) * k).map(|_| rng.gen_range(-0.5..0.5)).collect();
        let mut one = Problem::new(&x, &rows, y.clone(), p, k, 0.3);
        let mut g1 = vec![0.0; one.dim()];
        let l1 = one.eval(&theta, &mut g1);
        for t in [2, 3, 8, 1000] {
            let mut many = Problem::new(&x, &rows, y.clone(), p, k, 0.3).with_threads(t);
            let mut gt = vec![f64::NAN; many.dim()];
            let lt = many.eval(&theta, &mut gt);
            assert!(
                (l1 - lt).abs() <= 1e-9 * l1.abs(),
                "{t} threads: {l1} vs {lt}"
            );
            for (a, b) in g1.iter().zip(&gt) {
                assert!(
                    (a - b).abs() <= 1e-9 * (1.0 + a.abs()),
                    "{t} threads: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn cuts_cover_every_range_in_order() {
        let ptr = [0, 0, 5, 5, 6, 20, 20];
        for t in 1..9 {
            let c = cuts(&ptr, t);
            assert_eq!(c.len(), t + 1);
            assert_eq!((c[0], c[t]), (0, 6));
            assert!(c.windows(2).all(|w| w[0] <= w[1]), "{c:?}");
        }
    }
}
