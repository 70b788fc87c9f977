//! Multinomial logistic regression trained directly on the sparse rows (text).
//!
//! Same objective as linfa's `MultiLogisticRegression` and [`super::model`]'s
//! dense path: Σᵢ −log softmax(xᵢW + b)[yᵢ] + α/2‖W‖², intercept unpenalised.
//! One evaluation costs O(nnz × classes): scores row by row from the CSR
//! rows, the gradient `Xᵀ(P − Y)` column by column from a CSC copy (no
//! scatter into the columns × classes gradient). Minimised by
//! [`super::lbfgs`]. One fit runs on one thread: cross-validation runs its
//! folds in parallel instead, which keeps its speed on a busy machine (an
//! evaluation split over threads waits for the slowest one, and measured
//! 2× slower under a concurrent build).
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
            r: vec![0.0; n * k],
        }
    }

    /// Length of θ = [W; b] ((p + 1) × k, row-major).
    pub fn dim(&self) -> usize {
        (self.p + 1) * self.k
    }

    /// Loss of θ; writes its gradient into `grad`.
    pub fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (p, k) = (self.p, self.k);
        let (w, b) = theta.split_at(p * k);
        let (gw, gb) = grad.split_at_mut(p * k);
        gb.fill(0.0);
        // Scores, log loss and residuals P − Y row by row; Σ residuals = ∇b.
        let mut loss = 0.5 * self.alpha * w.iter().map(|v| v * v).sum::<f64>();
        for (i, h) in self.r.chunks_exact_mut(k).enumerate() {
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
        // ∇W = αW + Xᵀ R, column by column.
        for (c, gc) in gw.chunks_exact_mut(k).enumerate() {
            for (a, wv) in gc.iter_mut().zip(&w[c * k..c * k + k]) {
                *a = self.alpha * wv;
            }
            for q in self.colptr[c]..self.colptr[c + 1] {
                let i = self.rowidx[q] as usize;
                let v = self.cvalues[q];
                for (a, rv) in gc.iter_mut().zip(&self.r[i * k..i * k + k]) {
                    *a += v * rv;
                }
            }
        }
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
