//! Multinomial logistic regression on sparse features, and the fitted model
//! served for predictions.
//!
//! Under an L2 penalty a feature that is zero in every training row gets
//! weight exactly 0, so only the *active* columns of the labeled rows are
//! trained. Text, and numeric features with at least as many labeled rows as
//! active columns, are fitted by [`super::sparse`]: L-BFGS on the CSR rows,
//! O(non-zeros × classes) an evaluation, stopping like scikit-learn. Numeric
//! features with more active columns than rows (the first labels of a
//! project) go to linfa, which fits dense matrices only, in an n-dimensional
//! basis — with the Gram matrix `K = X Xᵀ = Z Zᵀ` (pivoted Cholesky,
//! `Z = L`), `X = Z Q` with orthonormal `Q`, and `w = Qᵀβ` gives `Xw = Zβ`
//! and `‖w‖ = ‖β‖`: the identical optimum, found in a space whose size is the
//! number of labels.
use super::features::{Csr, Featurizer};
use super::sparse;
use super::{Input, LearnerError, TrainParams};
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut1, Axis};
use serde::{Deserialize, Serialize};

/// Probability given to a project label no training item has yet.
pub(crate) const UNSEEN_PROBABILITY: f64 = 1e-6;
const NO_COLUMN: u32 = u32::MAX;
/// A pivot is dropped when its row is (numerically) a combination of earlier rows.
const PIVOT_TOLERANCE: f64 = 1e-9;

/// One logistic fit on a dense design: weights (p × k), intercept (k),
/// the project label of each column.
pub(crate) struct LogitFit {
    pub w: Array2<f64>,
    pub b: Array1<f64>,
    pub classes: Vec<usize>,
    pub converged: bool,
}

/// Fits linfa's multinomial model and checks the gradient itself: linfa stops
/// silently at `max_iterations`, and its loss takes the log-sum-exp with one
/// max over the whole score matrix, so once row maxima spread by more than
/// ~35 (well-separated classes) its loss and gradient disagree and it stalls.
/// Then the same objective is finished by [`refine`] from where linfa stopped.
pub(crate) fn fit_logistic(
    z: ArrayView2<f64>,
    y: &[usize],
    p: &TrainParams,
) -> Result<LogitFit, LearnerError> {
    let nf = z.ncols();
    let (classes, yi) = class_indices(y);
    let ds = Dataset::new(z.to_owned(), Array1::from(y.to_vec()));
    let m = MultiLogisticRegression::default()
        .alpha(p.alpha)
        .max_iterations(p.max_iterations)
        .gradient_tolerance(p.tolerance)
        .fit(&ds)
        .map_err(|e| LearnerError::Fit(e.to_string()))?;
    debug_assert_eq!(m.classes(), classes.as_slice());
    let mut theta = Array2::zeros((nf + 1, classes.len()));
    theta.slice_mut(s![..nf, ..]).assign(m.params());
    theta.row_mut(nf).assign(m.intercept());
    let (_, g) = objective(z, &yi, p.alpha, &theta);
    let mut converged = norm(&g) <= p.tolerance * 10.0;
    if !converged {
        converged = refine(z, &yi, p.alpha, &mut theta, p.tolerance, REFINE_ITERATIONS);
    }
    Ok(LogitFit {
        w: theta.slice(s![..nf, ..]).to_owned(),
        b: theta.row(nf).to_owned(),
        classes,
        converged,
    })
}

/// Iterations of the fallback solver.
const REFINE_ITERATIONS: usize = 2_000;
/// Corrections kept by the fallback L-BFGS.
const LBFGS_MEMORY: usize = 10;

fn norm(a: &Array2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn dot(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a * b).sum()
}

/// linfa's objective Σ −log softmax(zW + b)[y] + α/2‖W‖² and its gradient, with
/// parameters θ = [W; b] ((features + 1) × classes) and a per-row log-sum-exp.
fn objective(
    z: ArrayView2<f64>,
    yi: &[usize],
    alpha: f64,
    theta: &Array2<f64>,
) -> (f64, Array2<f64>) {
    let nf = z.ncols();
    let w = theta.slice(s![..nf, ..]);
    let mut h = z.dot(&w) + theta.row(nf);
    let mut loss = 0.5 * alpha * w.iter().map(|v| v * v).sum::<f64>();
    for (mut row, &c) in h.rows_mut().into_iter().zip(yi) {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let hc = row[c];
        row.mapv_inplace(|v| (v - m).exp());
        let sum = row.sum();
        loss += m + sum.ln() - hc;
        row /= sum;
        row[c] -= 1.0;
    }
    let mut g = Array2::zeros(theta.raw_dim());
    g.slice_mut(s![..nf, ..])
        .assign(&(z.t().dot(&h) + &(&w * alpha)));
    g.row_mut(nf).assign(&h.sum_axis(Axis(0)));
    (loss, g)
}

/// L-BFGS with Armijo backtracking on [`objective`]; true when ‖∇‖ ≤ `tol`.
fn refine(
    z: ArrayView2<f64>,
    yi: &[usize],
    alpha: f64,
    theta: &mut Array2<f64>,
    tol: f64,
    max_iter: usize,
) -> bool {
    let (mut f, mut g) = objective(z, yi, alpha, theta);
    let mut hist: std::collections::VecDeque<(Array2<f64>, Array2<f64>, f64)> = Default::default();
    for _ in 0..max_iter {
        if norm(&g) <= tol {
            return true;
        }
        // Two-loop recursion: d = −H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(hist.len());
        for (sv, yv, rho) in hist.iter().rev() {
            let a = rho * dot(sv, &q);
            q.scaled_add(-a, yv);
            alphas.push(a);
        }
        if let Some((sv, yv, _)) = hist.back() {
            q *= dot(sv, yv) / dot(yv, yv);
        } else {
            q /= norm(&g).max(1.0);
        }
        for ((sv, yv, rho), a) in hist.iter().zip(alphas.into_iter().rev()) {
            let bcoef = rho * dot(yv, &q);
            q.scaled_add(a - bcoef, sv);
        }
        let mut d = -q;
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            hist.clear();
            d = -&g / norm(&g).max(1.0);
            slope = dot(&g, &d);
        }
        let mut step = 1.0;
        let (next, fnext, gnext) = loop {
            let cand = &*theta + &(&d * step);
            let (fc, gc) = objective(z, yi, alpha, &cand);
            if fc <= f + 1e-4 * step * slope {
                break (cand, fc, gc);
            }
            step *= 0.5;
            if step < 1e-20 {
                return norm(&g) <= tol;
            }
        };
        let sv = &next - &*theta;
        let yv = &gnext - &g;
        let sy = dot(&sv, &yv);
        if sy > 1e-12 {
            if hist.len() == LBFGS_MEMORY {
                hist.pop_front();
            }
            hist.push_back((sv, yv, 1.0 / sy));
        }
        *theta = next;
        f = fnext;
        g = gnext;
    }
    let _ = f;
    norm(&g) <= tol
}

/// The distinct labels of `y`, ascending, and each label's index among them.
fn class_indices(y: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut classes = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let yi = y
        .iter()
        .map(|c| classes.binary_search(c).expect("label among classes"))
        .collect();
    (classes, yi)
}

/// ‖∇‖ of linfa's objective, for parameters in linfa's layout.
#[cfg(test)]
pub(crate) fn gradient_norm(
    z: ArrayView2<f64>,
    y: &[usize],
    classes: &[usize],
    w: &Array2<f64>,
    b: &Array1<f64>,
    alpha: f64,
) -> f64 {
    let yi: Vec<usize> = y
        .iter()
        .map(|c| classes.binary_search(c).expect("label"))
        .collect();
    let nf = z.ncols();
    let mut theta = Array2::zeros((nf + 1, w.ncols()));
    theta.slice_mut(s![..nf, ..]).assign(w);
    theta.row_mut(nf).assign(b);
    norm(&objective(z, &yi, alpha, &theta).1)
}

pub(crate) fn softmax_inplace(mut v: ArrayViewMut1<f64>) {
    if let Some(s) = v.as_slice_mut() {
        let k = s.len();
        return softmax_rows(s, k, 1.0);
    }
    let max = v.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    v.mapv_inplace(|x| (x - max).exp());
    let sum = v.sum();
    v.mapv_inplace(|x| x / sum);
}

/// The softmax of each row of `s` (rows of `k` scores, each multiplied by
/// `inv_t` first), with one vectorized `exp` pass over them all.
fn softmax_rows(s: &mut [f64], k: usize, inv_t: f64) {
    if k == 0 {
        return;
    }
    for row in s.chunks_exact_mut(k) {
        if inv_t != 1.0 {
            for v in row.iter_mut() {
                *v *= inv_t;
            }
        }
        let max = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        for v in row.iter_mut() {
            *v -= max;
        }
    }
    super::vexp::exp_in_place(s);
    // One division a row, then products (within an ulp of dividing each).
    for row in s.chunks_exact_mut(k) {
        let inv: f64 = 1.0 / row.iter().sum::<f64>();
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Softmax over the seen classes, spread into the project's label columns.
pub(crate) fn scores_to_proba(
    scores: ArrayView2<f64>,
    classes: &[usize],
    n_classes: usize,
) -> Array2<f64> {
    scores_to_proba_t(scores, classes, n_classes, 1.0)
}

/// [`scores_to_proba_t`] taking the scores: when every project label was
/// seen (in order), the softmax runs in place on them — the same arithmetic,
/// without a second matrix.
fn into_proba(
    mut scores: Array2<f64>,
    classes: &[usize],
    n_classes: usize,
    temperature: f64,
) -> Array2<f64> {
    let every_class =
        classes.len() == n_classes && classes.iter().enumerate().all(|(i, &c)| i == c);
    if !every_class {
        return scores_to_proba_t(scores.view(), classes, n_classes, temperature);
    }
    let k = scores.ncols();
    match scores.as_slice_mut() {
        Some(s) => softmax_rows(s, k, 1.0 / temperature),
        None => scores.rows_mut().into_iter().for_each(|mut row| {
            row *= 1.0 / temperature;
            softmax_inplace(row)
        }),
    }
    scores
}

/// [`scores_to_proba`] of the scores divided by a temperature.
pub(crate) fn scores_to_proba_t(
    scores: ArrayView2<f64>,
    classes: &[usize],
    n_classes: usize,
    temperature: f64,
) -> Array2<f64> {
    let inv_t = 1.0 / temperature;
    let mut out = Array2::zeros((scores.nrows(), n_classes));
    let n_unseen = n_classes - classes.len();
    let keep = 1.0 - n_unseen as f64 * UNSEEN_PROBABILITY;
    // One scratch row for all rows (the same arithmetic as a fresh copy each).
    let mut p = Array1::zeros(classes.len());
    for (s, mut o) in scores.rows().into_iter().zip(out.rows_mut()) {
        p.assign(&s);
        if inv_t != 1.0 {
            p *= inv_t;
        }
        softmax_inplace(p.view_mut());
        if n_unseen > 0 {
            o.fill(UNSEEN_PROBABILITY);
            p *= keep;
        }
        for (&c, &v) in classes.iter().zip(p.iter()) {
            o[c] = v;
        }
    }
    out
}

enum Kind {
    /// Rows × rows Gram matrix.
    Gram(Array2<f64>),
    /// The rows with columns renumbered to active positions ([`sparse`]).
    Sparse(Csr),
}

/// A design with more active columns than rows is trained through linfa in
/// the Gram basis when at least 1/`DENSE_MIN_FILL` of its rows × active
/// columns are non-zero (numeric features); every other design goes to the
/// sparse solver, whose cost follows the non-zeros. Numeric designs with
/// more rows than columns went to linfa on the dense matrix until the
/// sparse solver took them: 10k noisy digits (64 columns, 10 classes, the
/// α grid's 13 fits) trained in 51 s there against 0.74 s, at the same
/// objective and scikit-learn's stopping rule (linfa stalls on
/// well-separated classes, and [`refine`] had to finish most fits).
const DENSE_MIN_FILL: usize = 4;

/// The labeled rows prepared once for the final fit and every CV fold.
pub(crate) struct Design<'a> {
    x: &'a Csr,
    active: Vec<u32>,
    col_pos: Vec<u32>,
    kind: Kind,
}

/// A fit on a subset of the design's rows.
pub(crate) struct SubFit {
    logit: LogitFit,
    /// Gram basis: design rows of the pivots and `u` with `w = Σ u_q x_q`.
    pivots: Vec<usize>,
    u: Option<Array2<f64>>,
}

impl SubFit {
    /// Project label of each score column.
    pub fn classes(&self) -> &[usize] {
        &self.logit.classes
    }

    /// Parameters [W; b] ((active + 1) × classes) to warm-start another fit
    /// (not for Gram fits, whose weights live in the pivot basis).
    pub fn theta(&self) -> Array2<f64> {
        debug_assert!(self.u.is_none());
        let mut t = Array2::zeros((self.logit.w.nrows() + 1, self.logit.w.ncols()));
        t.slice_mut(s![..self.logit.w.nrows(), ..])
            .assign(&self.logit.w);
        t.row_mut(self.logit.w.nrows()).assign(&self.logit.b);
        t
    }
}

impl<'a> Design<'a> {
    pub fn new(x: &'a Csr, dim: usize) -> Self {
        let mut col_pos = vec![NO_COLUMN; dim];
        for (&c, &v) in x.indices.iter().zip(&x.values) {
            if v != 0.0 {
                col_pos[c as usize] = 0;
            }
        }
        let mut active = Vec::new();
        for (c, p) in col_pos.iter_mut().enumerate() {
            if *p == 0 {
                *p = active.len() as u32;
                active.push(c as u32);
            }
        }
        let n = x.n_rows();
        let dense = x.values.len() * DENSE_MIN_FILL >= n * active.len();
        let kind = if dense && active.len() > n {
            Kind::Gram(gram(x, dim))
        } else {
            let mut xa = x.clone();
            for c in xa.indices.iter_mut() {
                *c = col_pos[*c as usize];
            }
            // An explicit zero would point at NO_COLUMN: drop those entries.
            if xa.indices.contains(&NO_COLUMN) {
                let mut clean = Csr::new();
                for i in 0..n {
                    let (idx, val) = xa.row(i);
                    for (&c, &v) in idx.iter().zip(val) {
                        if c != NO_COLUMN {
                            clean.indices.push(c);
                            clean.values.push(v);
                        }
                    }
                    clean.indptr.push(clean.indices.len());
                }
                xa = clean;
            }
            Kind::Sparse(xa)
        };
        Design {
            x,
            active,
            col_pos,
            kind,
        }
    }

    #[cfg(test)]
    pub fn is_sparse(&self) -> bool {
        matches!(self.kind, Kind::Sparse(_))
    }

    /// The same rows through the Gram basis (for comparisons in tests).
    #[cfg(test)]
    pub fn into_gram(mut self, dim: usize) -> Self {
        self.kind = Kind::Gram(gram(self.x, dim));
        self
    }

    /// Whether fits start from given parameters ([`Design::fit_warm`]).
    pub fn warm_starts(&self) -> bool {
        matches!(self.kind, Kind::Sparse(_))
    }

    /// Fits on design rows `rows` with labels `y` (one per row).
    #[cfg(test)]
    pub fn fit(
        &self,
        rows: &[usize],
        y: &[usize],
        p: &TrainParams,
    ) -> Result<SubFit, LearnerError> {
        self.fit_from(rows, y, p, None)
    }

    /// [`Design::fit`] starting the solver from `previous`'s weights where it
    /// can (not in the Gram basis; a class or column it lacks starts at 0).
    pub fn fit_from(
        &self,
        rows: &[usize],
        y: &[usize],
        p: &TrainParams,
        previous: Option<&FittedModel>,
    ) -> Result<SubFit, LearnerError> {
        let init = match (&self.kind, previous) {
            (Kind::Sparse(_), Some(m)) => Some(self.initial_params(m, y)),
            _ => None,
        };
        self.fit_warm(rows, y, p, init)
    }

    /// [`Design::fit`] from parameters `init` ((active + 1) × classes of `y`,
    /// intercept last) where the design can use them (not the Gram basis).
    pub fn fit_warm(
        &self,
        rows: &[usize],
        y: &[usize],
        p: &TrainParams,
        init: Option<Array2<f64>>,
    ) -> Result<SubFit, LearnerError> {
        match &self.kind {
            Kind::Sparse(xa) => {
                let (classes, yi) = class_indices(y);
                let (na, k) = (self.active.len(), classes.len());
                let mut theta = match init {
                    Some(t) if t.dim() == (na + 1, k) => t.as_standard_layout().into_owned(),
                    _ => Array2::zeros((na + 1, k)),
                };
                let mut prob =
                    sparse::Problem::new(xa, rows, yi, na, k, p.alpha).with_threads(p.threads);
                let converged = prob.solve(
                    theta.as_slice_mut().expect("standard layout"),
                    p.sparse_tolerance * rows.len().max(1) as f64,
                    p.max_iterations as usize,
                );
                Ok(SubFit {
                    logit: LogitFit {
                        w: theta.slice(s![..na, ..]).to_owned(),
                        b: theta.row(na).to_owned(),
                        classes,
                        converged,
                    },
                    pivots: Vec::new(),
                    u: None,
                })
            }
            Kind::Gram(k) => {
                let sub = k.select(Axis(0), rows).select(Axis(1), rows);
                let (z, piv) = pivoted_cholesky(&sub);
                let logit = fit_logistic(z.view(), y, p)?;
                // Solve Z_Pᵀ u = β with Z_P (r × r) lower triangular.
                let zp = z.select(Axis(0), &piv);
                let r = piv.len();
                let mut u = Array2::zeros(logit.w.raw_dim());
                for i in (0..r).rev() {
                    let rhs =
                        &logit.w.row(i) - &zp.slice(s![i + 1.., i]).dot(&u.slice(s![i + 1.., ..]));
                    u.row_mut(i).assign(&(rhs / zp[[i, i]]));
                }
                Ok(SubFit {
                    logit,
                    pivots: piv.into_iter().map(|q| rows[q]).collect(),
                    u: Some(u),
                })
            }
        }
    }

    /// `previous`'s weights laid out for this design: (active + 1) × classes of `y`.
    fn initial_params(&self, previous: &FittedModel, y: &[usize]) -> Array2<f64> {
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let na = self.active.len();
        let mut w = Array2::zeros((na + 1, classes.len()));
        for (j, c) in classes.iter().enumerate() {
            let Some(pj) = previous.classes.iter().position(|pc| pc == c) else {
                continue;
            };
            for (a, &col) in self.active.iter().enumerate() {
                if let Some(&pr) = previous.col_pos.get(col as usize) {
                    if pr != NO_COLUMN {
                        w[[a, j]] = previous.coef[[pr as usize, pj]];
                    }
                }
            }
            w[[na, j]] = previous.intercept[pj];
        }
        w
    }

    /// Linear scores (rows × seen classes) of design rows under a fit.
    pub fn scores(&self, f: &SubFit, rows: &[usize]) -> Array2<f64> {
        let s = match (&self.kind, &f.u) {
            (Kind::Gram(k), Some(u)) => k.select(Axis(0), rows).select(Axis(1), &f.pivots).dot(u),
            (Kind::Gram(_), None) => unreachable!("a Gram fit always has u"),
            (Kind::Sparse(xa), _) => {
                let k = f.logit.w.ncols();
                let mut out = Array2::zeros((rows.len(), k));
                for (&i, mut o) in rows.iter().zip(out.rows_mut()) {
                    let (idx, val) = xa.row(i);
                    for (&c, &v) in idx.iter().zip(val) {
                        o.scaled_add(v, &f.logit.w.row(c as usize));
                    }
                }
                out
            }
        };
        s + &f.logit.b
    }

    /// Weights over the active columns (active × seen classes).
    fn coef(&self, f: &SubFit) -> Array2<f64> {
        match &f.u {
            None => f.logit.w.clone(),
            Some(u) => {
                let mut w = Array2::zeros((self.active.len(), u.ncols()));
                for (q, &row) in f.pivots.iter().enumerate() {
                    let (idx, val) = self.x.row(row);
                    for (&c, &v) in idx.iter().zip(val) {
                        w.row_mut(self.col_pos[c as usize] as usize)
                            .scaled_add(v, &u.row(q));
                    }
                }
                w
            }
        }
    }
}

/// `X Xᵀ` of a sparse matrix (dense buffer scatter, one row at a time).
fn gram(x: &Csr, dim: usize) -> Array2<f64> {
    let n = x.n_rows();
    let mut k = Array2::zeros((n, n));
    let mut buf = vec![0.0; dim];
    for i in 0..n {
        let (ii, iv) = x.row(i);
        for (&c, &v) in ii.iter().zip(iv) {
            buf[c as usize] = v;
        }
        for j in 0..=i {
            let (ji, jv) = x.row(j);
            let mut acc = 0.0;
            for t in 0..ji.len() {
                acc += jv[t] * buf[ji[t] as usize];
            }
            k[[i, j]] = acc;
            k[[j, i]] = acc;
        }
        for &c in ii {
            buf[c as usize] = 0.0;
        }
    }
    k
}

/// Cholesky `K ≈ Z Zᵀ` skipping rows that are combinations of earlier ones;
/// returns `Z` (n × r) and the pivot rows (Z restricted to them is lower triangular).
fn pivoted_cholesky(k: &Array2<f64>) -> (Array2<f64>, Vec<usize>) {
    let n = k.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    let mut piv = Vec::new();
    for j in 0..n {
        let mut v = k.slice(s![j.., j]).to_owned();
        if j > 0 {
            let lj = l.slice(s![j, ..j]).to_owned();
            v -= &l.slice(s![j.., ..j]).dot(&lj);
        }
        let d = v[0];
        if d > PIVOT_TOLERANCE * k[[j, j]] && d > 1e-300 {
            v /= d.sqrt();
            l.slice_mut(s![j.., j]).assign(&v);
            piv.push(j);
        }
    }
    (l.select(Axis(1), &piv), piv)
}

/// A fitted model: the featurizer state and the logistic weights over the
/// columns that carry any. Immutable and cheap to share.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "ModelRepr", into = "ModelRepr")]
pub struct FittedModel {
    featurizer: Featurizer,
    n_classes: usize,
    classes: Vec<usize>,
    active: Vec<u32>,
    col_pos: Vec<u32>,
    coef: Array2<f64>,
    intercept: Array1<f64>,
    alpha: f64,
    n_train: usize,
    converged: bool,
    temperature: f64,
    /// Features-only models: the same scores as one affine map of the raw
    /// features (derived on load, not stored).
    folded: Option<Folded>,
}

/// A features-only model's scores as `x · w + b` on the raw features: the
/// standardization is folded into the weights (`w_j / sd_j`, the means into
/// the intercept), so a batch is scored with one matrix product.
#[derive(Clone, Debug)]
struct Folded {
    affine: super::affine::Affine,
}

impl Folded {
    fn of(r: &ModelRepr) -> Option<Folded> {
        if r.featurizer.text.is_some() {
            return None;
        }
        let scaler = r.featurizer.numeric.as_ref()?;
        let (means, stds) = (scaler.means(), scaler.stds());
        let k = r.classes.len();
        let mut w = Array2::zeros((means.len(), k));
        let mut b = r.intercept.clone();
        for (p, &c) in r.active.iter().enumerate() {
            let j = c as usize;
            let (Some(&m), Some(&sd)) = (means.get(j), stds.get(j)) else {
                continue;
            };
            let row = r.coef.row(p);
            w.row_mut(j).scaled_add(1.0 / sd, &row);
            b.scaled_add(-m / sd, &row);
        }
        Some(Folded {
            affine: super::affine::Affine::new(w.view(), b.view()),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct ModelRepr {
    featurizer: Featurizer,
    n_classes: usize,
    classes: Vec<usize>,
    active: Vec<u32>,
    coef: Array2<f64>,
    intercept: Array1<f64>,
    alpha: f64,
    n_train: usize,
    converged: bool,
    /// Scores are divided by it before the softmax (temperature scaling).
    temperature: f64,
}

/// The stored form before temperature scaling existed (read as T = 1).
#[derive(Deserialize)]
struct ModelReprV1 {
    featurizer: Featurizer,
    n_classes: usize,
    classes: Vec<usize>,
    active: Vec<u32>,
    coef: Array2<f64>,
    intercept: Array1<f64>,
    alpha: f64,
    n_train: usize,
    converged: bool,
}

impl From<ModelReprV1> for ModelRepr {
    fn from(r: ModelReprV1) -> Self {
        ModelRepr {
            featurizer: r.featurizer,
            n_classes: r.n_classes,
            classes: r.classes,
            active: r.active,
            coef: r.coef,
            intercept: r.intercept,
            alpha: r.alpha,
            n_train: r.n_train,
            converged: r.converged,
            temperature: 1.0,
        }
    }
}

impl From<ModelRepr> for FittedModel {
    fn from(r: ModelRepr) -> Self {
        let mut col_pos = vec![NO_COLUMN; r.featurizer.dim()];
        for (p, &c) in r.active.iter().enumerate() {
            if let Some(slot) = col_pos.get_mut(c as usize) {
                *slot = p as u32;
            }
        }
        let folded = Folded::of(&r);
        FittedModel {
            folded,
            featurizer: r.featurizer,
            n_classes: r.n_classes,
            classes: r.classes,
            active: r.active,
            col_pos,
            coef: r.coef,
            intercept: r.intercept,
            alpha: r.alpha,
            n_train: r.n_train,
            converged: r.converged,
            temperature: r.temperature,
        }
    }
}

impl From<FittedModel> for ModelRepr {
    fn from(m: FittedModel) -> Self {
        ModelRepr {
            featurizer: m.featurizer,
            n_classes: m.n_classes,
            classes: m.classes,
            active: m.active,
            coef: m.coef,
            intercept: m.intercept,
            alpha: m.alpha,
            n_train: m.n_train,
            converged: m.converged,
            temperature: m.temperature,
        }
    }
}

impl FittedModel {
    pub(crate) fn new(
        featurizer: Featurizer,
        n_classes: usize,
        design: &Design,
        fit: &SubFit,
        p: &TrainParams,
        n_train: usize,
    ) -> Self {
        ModelRepr {
            featurizer,
            n_classes,
            classes: fit.logit.classes.clone(),
            active: design.active.clone(),
            coef: design.coef(fit),
            intercept: fit.logit.b.clone(),
            alpha: p.alpha,
            n_train,
            converged: fit.logit.converged,
            temperature: 1.0,
        }
        .into()
    }

    /// The same model serving probabilities at temperature `t` (> 0).
    pub(crate) fn with_temperature(mut self, t: f64) -> Self {
        debug_assert!(t.is_finite() && t > 0.0);
        self.temperature = t;
        self
    }

    /// Temperature of the served probabilities (1: uncalibrated).
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// L2 strength the model was fitted with.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Number of project labels (columns of `predict_proba`).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Project label indices that had training items.
    pub fn seen_classes(&self) -> &[usize] {
        &self.classes
    }

    /// Labeled items the model was fitted on.
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// Whether the solver reached its gradient tolerance.
    pub fn converged(&self) -> bool {
        self.converged
    }

    pub fn algorithm(&self) -> String {
        let feats = match (&self.featurizer.text, &self.featurizer.numeric) {
            (Some(_), Some(_)) => "tfidf+standardized",
            (Some(_), None) => "tfidf",
            _ => "standardized",
        };
        format!(
            "{feats}+logistic(l2, alpha={})+temperature({:.3})",
            self.alpha, self.temperature
        )
    }

    #[cfg(test)]
    pub(crate) fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    /// Linear scores of one sparse row into `s` (seen classes).
    fn score_row(&self, row: &[(u32, f64)], mut s: ArrayViewMut1<f64>) {
        s.assign(&self.intercept);
        for &(c, v) in row {
            let p = self.col_pos[c as usize];
            if p != NO_COLUMN {
                s.scaled_add(v, &self.coef.row(p as usize));
            }
        }
    }

    /// Linear scores (rows × seen classes) of an already featurized matrix.
    pub(crate) fn scores_csr(&self, x: &Csr) -> Array2<f64> {
        let mut out = Array2::zeros((x.n_rows(), self.classes.len()));
        let mut row = Vec::new();
        for (i, o) in out.rows_mut().into_iter().enumerate() {
            let (idx, val) = x.row(i);
            row.clear();
            row.extend(idx.iter().copied().zip(val.iter().copied()));
            self.score_row(&row, o);
        }
        out
    }

    /// Calibrated probabilities of an already featurized matrix.
    pub(crate) fn proba_csr(&self, x: &Csr) -> Array2<f64> {
        into_proba(
            self.scores_csr(x),
            &self.classes,
            self.n_classes,
            self.temperature,
        )
    }

    pub(crate) fn featurize(&self, items: &[Input]) -> Result<Csr, LearnerError> {
        self.featurizer.transform(items)
    }

    /// Probabilities for every project label (items × n_classes); rows sum to 1.
    /// Calibrated: the scores are divided by the model's temperature, fitted on
    /// held-out labels at training. Computed sparsely: no dense items ×
    /// vocabulary matrix is built.
    pub fn predict_proba(&self, items: &[Input]) -> Result<Array2<f64>, LearnerError> {
        self.predict_proba_at(items, self.temperature)
    }

    /// [`FittedModel::predict_proba`] before temperature scaling.
    pub fn predict_proba_uncalibrated(&self, items: &[Input]) -> Result<Array2<f64>, LearnerError> {
        self.predict_proba_at(items, 1.0)
    }

    /// Features a features-only model reads per item (`None` when it reads
    /// text: such a model needs [`FittedModel::predict_proba`]).
    pub fn feature_len(&self) -> Option<usize> {
        self.folded.as_ref().map(|f| f.affine.inputs())
    }

    /// [`FittedModel::predict_proba`] of a features-only model for a matrix
    /// of raw features (items × [`FittedModel::feature_len`], finite), as one
    /// affine map (the kernel [`FittedModel::score_le_rows`] serves `.npy`
    /// batches with): equal to it up to rounding.
    pub fn predict_proba_features(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, LearnerError> {
        let width = self.feature_len().ok_or_else(|| {
            LearnerError::BadInput("this model reads text: send items with their text".into())
        })?;
        if x.ncols() != width {
            return Err(LearnerError::BadInput(format!(
                "expected {width} features, got {}",
                x.ncols()
            )));
        }
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut scores = Array2::zeros((x.nrows(), self.score_len()));
        let out = scores.as_slice_mut().expect("standard layout");
        self.score_le_rows(&bytes, out)?;
        Ok(self.proba_of_scores(scores))
    }

    /// The raw scores of a features-only model for rows read straight from
    /// bytes (one block of a batch scored as it arrives): `x` holds `n ×` [`FittedModel::feature_len`] little-endian
    /// float64 values (C order, any alignment), `out` gets `n ×`
    /// [`FittedModel::score_len`] scores. A row holding a value that is not
    /// finite gets scores that are not finite.
    pub fn score_le_rows(&self, x: &[u8], out: &mut [f64]) -> Result<(), LearnerError> {
        let f = self.folded.as_ref().ok_or_else(|| {
            LearnerError::BadInput("this model reads text: send items with their text".into())
        })?;
        let a = &f.affine;
        let n = out.len() / a.outputs().max(1);
        if out.len() != n * a.outputs() || x.len() != n * a.inputs() * 8 {
            return Err(LearnerError::BadInput(format!(
                "{} bytes and room for {} scores are not whole rows of {} features and {} scores",
                x.len(),
                out.len(),
                a.inputs(),
                a.outputs()
            )));
        }
        a.apply_le(x, out);
        Ok(())
    }

    /// The classes a features-only model scores (the columns
    /// [`FittedModel::score_le_rows`] fills).
    pub fn score_len(&self) -> usize {
        self.classes.len()
    }

    /// Probabilities over every project label from the raw scores of
    /// [`FittedModel::score_le_rows`] (items × [`FittedModel::score_len`]).
    pub fn proba_of_scores(&self, scores: Array2<f64>) -> Array2<f64> {
        into_proba(scores, &self.classes, self.n_classes, self.temperature)
    }

    fn predict_proba_at(&self, items: &[Input], t: f64) -> Result<Array2<f64>, LearnerError> {
        let mut scores = Array2::zeros((items.len(), self.classes.len()));
        let mut row = Vec::new();
        for (it, s) in items.iter().zip(scores.rows_mut()) {
            row.clear();
            self.featurizer.transform_row(it, &mut row)?;
            self.score_row(&row, s);
        }
        Ok(into_proba(scores, &self.classes, self.n_classes, t))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, LearnerError> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| LearnerError::Serde(e.to_string()))
    }

    pub fn from_bytes(b: &[u8]) -> Result<FittedModel, LearnerError> {
        let cfg = bincode::config::standard();
        let m: FittedModel = match bincode::serde::decode_from_slice::<FittedModel, _>(b, cfg) {
            Ok((m, _)) => m,
            Err(e) => match bincode::serde::decode_from_slice::<ModelReprV1, _>(b, cfg) {
                Ok((old, used)) if used == b.len() => ModelRepr::from(old).into(),
                _ => return Err(LearnerError::Serde(e.to_string())),
            },
        };
        if !(m.temperature.is_finite() && m.temperature > 0.0) {
            return Err(LearnerError::Serde("inconsistent model".into()));
        }
        if m.coef.nrows() != m.active.len()
            || m.coef.ncols() != m.classes.len()
            || m.intercept.len() != m.classes.len()
            || m.classes.iter().any(|&c| c >= m.n_classes)
            || m.active.iter().any(|&c| c as usize >= m.featurizer.dim())
        {
            return Err(LearnerError::Serde("inconsistent model".into()));
        }
        Ok(m)
    }
}

/// Entries of a dense row view, for tests comparing with linfa.
#[cfg(test)]
pub(crate) fn dense_active(m: &FittedModel, x: &Csr) -> Array2<f64> {
    let mut d = Array2::zeros((x.n_rows(), m.active.len()));
    for i in 0..x.n_rows() {
        let (idx, val) = x.row(i);
        for (&c, &v) in idx.iter().zip(val) {
            let p = m.col_pos[c as usize];
            if p != NO_COLUMN {
                d[[i, p as usize]] = v;
            }
        }
    }
    d
}

#[cfg(test)]
pub(crate) fn coef_of(m: &FittedModel) -> (&Array2<f64>, &Array1<f64>) {
    (&m.coef, &m.intercept)
}
