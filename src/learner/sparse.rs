//! Multinomial logistic regression trained directly on the sparse rows (text).
//!
//! Same objective as linfa's `MultiLogisticRegression` and [`super::model`]'s
//! dense path: Σᵢ −log softmax(xᵢW + b)[yᵢ] + α/2‖W‖², intercept unpenalised.
//! One evaluation costs O(nnz × classes): scores row by row from the CSR
//! rows, the gradient `Xᵀ(P − Y)` column by column from a CSC copy, so both
//! halves split over threads without any reduction of the (columns × classes)
//! gradient. Minimised by [`super::lbfgs`].
use super::features::Csr;
use super::lbfgs;

/// Below this much work (nnz × classes) an evaluation stays on one thread.
const PARALLEL_WORK: usize = 200_000;
/// Threads one evaluation uses at most.
const MAX_THREADS: usize = 4;
/// Correction pairs kept by L-BFGS (scipy's and so scikit-learn's default).
const MEMORY: usize = 10;

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
    threads: usize,
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
        let work = sub.indices.len() * k;
        let threads = if work < PARALLEL_WORK {
            1
        } else {
            std::env::var("LOUPE_T")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
        };
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
            threads,
        }
    }

    /// Length of θ = [W; b] ((p + 1) × k, row-major).
    pub fn dim(&self) -> usize {
        (self.p + 1) * self.k
    }

    /// Loss of θ; writes its gradient into `grad`.
    pub fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (n, p, k) = (self.n, self.p, self.k);
        let (w, b) = theta.split_at(p * k);
        let t = self.threads;
        // Scores, log loss and residuals, rows split over threads.
        let rows_per = n.div_ceil(t).max(1);
        let (indptr, indices, values, y) = (&self.indptr, &self.indices, &self.values, &self.y);
        let row_part = |start: usize, r: &mut [f64]| -> (f64, Vec<f64>) {
            let mut loss = 0.0;
            let mut gb = vec![0.0; k];
            for (off, h) in r.chunks_exact_mut(k).enumerate() {
                let i = start + off;
                h.copy_from_slice(b);
                for q in indptr[i]..indptr[i + 1] {
                    let c = indices[q] as usize;
                    let v = values[q];
                    for (hj, wj) in h.iter_mut().zip(&w[c * k..c * k + k]) {
                        *hj += v * wj;
                    }
                }
                let m = h.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                let hy = h[y[i]];
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
                h[y[i]] -= 1.0;
                gb[y[i]] -= 1.0;
            }
            (loss, gb)
        };
        let parts: Vec<(f64, Vec<f64>)> = if t == 1 {
            vec![row_part(0, &mut self.r)]
        } else {
            std::thread::scope(|s| {
                let hs: Vec<_> = self
                    .r
                    .chunks_mut(rows_per * k)
                    .enumerate()
                    .map(|(ci, r)| s.spawn(move || row_part(ci * rows_per, r)))
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("loss thread"))
                    .collect()
            })
        };
        let mut loss = 0.5 * self.alpha * w.iter().map(|v| v * v).sum::<f64>();
        let (gw, gb) = grad.split_at_mut(p * k);
        gb.fill(0.0);
        for (l, g) in parts {
            loss += l;
            gb.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        // Gradient of W: αW + Xᵀ R, columns split over threads.
        let (colptr, rowidx, cvalues, r, alpha) = (
            &self.colptr,
            &self.rowidx,
            &self.cvalues,
            &self.r,
            self.alpha,
        );
        let col_part = |start: usize, g: &mut [f64]| {
            for (off, gc) in g.chunks_exact_mut(k).enumerate() {
                let c = start + off;
                for (a, wv) in gc.iter_mut().zip(&w[c * k..c * k + k]) {
                    *a = alpha * wv;
                }
                for q in colptr[c]..colptr[c + 1] {
                    let i = rowidx[q] as usize;
                    let v = cvalues[q];
                    for (a, rv) in gc.iter_mut().zip(&r[i * k..i * k + k]) {
                        *a += v * rv;
                    }
                }
            }
        };
        if t == 1 {
            col_part(0, gw);
        } else {
            // Split by entries, not columns: frequent terms come first.
            let nnz = colptr[p];
            let mut bounds = vec![0];
            for j in 1..t {
                let c = colptr.partition_point(|&e| e < nnz * j / t).min(p);
                bounds.push(c.max(bounds[j - 1]));
            }
            bounds.push(p);
            std::thread::scope(|s| {
                let mut rest = gw;
                for j in 0..t {
                    let (a, b) = (bounds[j], bounds[j + 1]);
                    let (head, tail) = rest.split_at_mut((b - a) * k);
                    rest = tail;
                    s.spawn(move || col_part(a, head));
                }
            });
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
                memory: std::env::var("LOUPE_M")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(MEMORY),
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
