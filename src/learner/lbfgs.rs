//! L-BFGS with a strong-Wolfe line search on flat parameter vectors, for the
//! sparse logistic solver (text and numeric designs).
//!
//! Written here rather than driven through argmin (which linfa-logistic
//! already pulls in): the text objective computes loss and gradient together
//! in one sparse pass into buffers it owns, while argmin asks for cost and
//! gradient through separate calls and moves owned parameter arrays through
//! every iteration. With ~10⁵–10⁶ parameters and evaluations of a few
//! milliseconds those copies and the duplicated pass are a large share of the
//! time; the algorithm itself (two-loop recursion, Nocedal & Wright's
//! Algorithms 3.5/3.6 with cubic interpolation) is ~150 lines.

/// Sufficient decrease (Armijo) constant.
const C1: f64 = 1e-4;
/// Curvature constant of the strong Wolfe conditions (usual for quasi-Newton).
const C2: f64 = 0.9;
/// Function evaluations one line search may use.
const MAX_LINE_EVALS: usize = 25;

pub(crate) struct Options {
    /// Iterations (line searches) at most.
    pub max_iter: usize,
    /// Converged when the largest absolute gradient entry is at most this.
    pub gtol: f64,
    /// Correction pairs kept.
    pub memory: usize,
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub converged: bool,
    pub iterations: usize,
    pub evaluations: usize,
}

/// Dot product with eight independent sums (one running sum is a chain of
/// dependent additions the compiler may not reorder: ~4× slower here).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f64>() + tail
}

fn max_abs(a: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let c = a.chunks_exact(8);
    let tail = c.remainder().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for x in c {
        for i in 0..8 {
            acc[i] = acc[i].max(x[i].abs());
        }
    }
    acc.iter().fold(tail, |m, v| m.max(*v))
}

/// Minimises `eval` (which returns f(x) and writes ∇f(x) into its second
/// argument) from `x`, leaving the last accepted point in `x`.
pub(crate) fn minimize<F>(mut eval: F, x: &mut [f64], opt: &Options) -> Outcome
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut f = eval(x, &mut g);
    let mut evals = 1;
    // Ring of correction pairs (s, y, 1 / sᵀy); `head` is the oldest.
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    let mut head = 0;
    let mut d = vec![0.0; n];
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    let mut alphas = vec![0.0; opt.memory];
    let mut iterations = 0;
    while iterations < opt.max_iter {
        if !f.is_finite() {
            break;
        }
        if max_abs(&g) <= opt.gtol {
            return Outcome {
                converged: true,
                iterations,
                evaluations: evals,
            };
        }
        iterations += 1;
        // d = −H g by the two-loop recursion, newest pair first.
        let m = s_hist.len();
        d.copy_from_slice(&g);
        for j in (0..m).rev() {
            let i = (head + j) % m;
            let a = rho[i] * dot(&s_hist[i], &d);
            alphas[j] = a;
            d.iter_mut().zip(&y_hist[i]).for_each(|(q, y)| *q -= a * y);
        }
        if m > 0 {
            let i = (head + m - 1) % m;
            let gamma = 1.0 / (rho[i] * dot(&y_hist[i], &y_hist[i]));
            d.iter_mut().for_each(|q| *q *= gamma);
        }
        for (j, &a) in alphas.iter().enumerate().take(m) {
            let i = (head + j) % m;
            let b = rho[i] * dot(&y_hist[i], &d);
            d.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(q, s)| *q += (a - b) * s);
        }
        d.iter_mut().for_each(|q| *q = -*q);
        let mut gd = dot(&g, &d);
        let mut t0 = 1.0;
        if gd.is_nan() || gd >= 0.0 || m == 0 {
            // First step, or the curvature pairs went bad: steepest descent
            // with a unit-length first trial step.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            head = 0;
            d.iter_mut().zip(&g).for_each(|(q, v)| *q = -v);
            gd = -dot(&g, &g);
            t0 = 1.0 / (-gd).sqrt();
        }
        let Some(fnew) = line_search(&mut eval, x, &d, f, gd, t0, &mut xn, &mut gn, &mut evals)
        else {
            break;
        };
        // Store the pair (s, y) = (xn − x, gn − g) when its curvature is positive.
        let (mut s, mut y) = if s_hist.len() == opt.memory {
            let i = head;
            head = (head + 1) % opt.memory;
            (
                std::mem::take(&mut s_hist[i]),
                std::mem::take(&mut y_hist[i]),
            )
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        for j in 0..n {
            s[j] = xn[j] - x[j];
            y[j] = gn[j] - g[j];
        }
        let sy = dot(&s, &y);
        let full = s_hist.len() == opt.memory;
        if sy > 1e-10 * dot(&y, &y) {
            if full {
                // Put the new pair where the oldest was (now the newest slot).
                let i = (head + opt.memory - 1) % opt.memory;
                s_hist[i] = s;
                y_hist[i] = y;
                rho[i] = 1.0 / sy;
            } else {
                s_hist.push(s);
                y_hist.push(y);
                rho.push(1.0 / sy);
            }
        } else if full {
            // Dropped the oldest pair without a replacement: restart the memory.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            head = 0;
        }
        x.copy_from_slice(&xn);
        std::mem::swap(&mut g, &mut gn);
        let stalled = f - fnew <= 1e-13 * f.abs().max(1.0);
        f = fnew;
        if stalled {
            break;
        }
    }
    Outcome {
        converged: max_abs(&g) <= opt.gtol,
        iterations,
        evaluations: evals,
    }
}

/// Strong-Wolfe line search along `d` from `x` (f0, slope gd0 < 0), first
/// trial step `t0`. On success the accepted point and its gradient are in
/// `xn`, `gn` and its value is returned; `None` when no decrease was found.
#[allow(clippy::too_many_arguments)]
fn line_search<F>(
    eval: &mut F,
    x: &[f64],
    d: &[f64],
    f0: f64,
    gd0: f64,
    t0: f64,
    xn: &mut [f64],
    gn: &mut [f64],
    evals: &mut usize,
) -> Option<f64>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut at = |t: f64, xn: &mut [f64], gn: &mut [f64]| -> (f64, f64) {
        for ((o, &a), &b) in xn.iter_mut().zip(x).zip(d) {
            *o = a + t * b;
        }
        *evals += 1;
        let f = eval(xn, gn);
        (f, dot(gn, d))
    };
    // Bracketing phase: (lo, flo, glo) the best step so far satisfying Armijo.
    let (mut lo, mut flo, mut glo) = (0.0, f0, gd0);
    let mut t = t0;
    let mut hi = None;
    let mut used = 0;
    while used < MAX_LINE_EVALS {
        used += 1;
        let (ft, gt) = at(t, xn, gn);
        if !ft.is_finite() || ft > f0 + C1 * t * gd0 || (used > 1 && ft >= flo) {
            hi = Some((t, ft, gt));
            break;
        }
        if gt.abs() <= -C2 * gd0 {
            return Some(ft);
        }
        if gt >= 0.0 {
            hi = Some((lo, flo, glo));
            (lo, flo, glo) = (t, ft, gt);
            break;
        }
        (lo, flo, glo) = (t, ft, gt);
        t *= 4.0;
    }
    // Zoom between lo (Armijo holds, lowest value) and hi.
    if let Some((mut th, mut fh, mut gh)) = hi {
        while used < MAX_LINE_EVALS {
            used += 1;
            let (a, b) = (lo.min(th), lo.max(th));
            let w = b - a;
            if w <= 1e-16 * b.max(1e-300) {
                break;
            }
            let mut t = if fh.is_finite() {
                cubic_min(lo, flo, glo, th, fh, gh)
            } else {
                f64::NAN
            };
            if !(t.is_finite() && t >= a + 0.1 * w && t <= b - 0.1 * w) {
                t = 0.5 * (lo + th);
            }
            let (ft, gt) = at(t, xn, gn);
            if !ft.is_finite() || ft > f0 + C1 * t * gd0 || ft >= flo {
                (th, fh, gh) = (t, ft, gt);
            } else {
                if gt.abs() <= -C2 * gd0 {
                    return Some(ft);
                }
                if gt * (th - lo) >= 0.0 {
                    (th, fh, gh) = (lo, flo, glo);
                }
                (lo, flo, glo) = (t, ft, gt);
            }
        }
    }
    // Out of evaluations: settle for the best Armijo point, if any.
    if lo > 0.0 && flo < f0 {
        let (f, _) = at(lo, xn, gn);
        return Some(f);
    }
    None
}

/// Minimiser of the cubic matching values and slopes at `a` and `b`.
fn cubic_min(a: f64, fa: f64, ga: f64, b: f64, fb: f64, gb: f64) -> f64 {
    let d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - ga * gb;
    if disc < 0.0 {
        return f64::NAN;
    }
    let d2 = (b - a).signum() * disc.sqrt();
    b - (b - a) * (gb + d2 - d1) / (gb - ga + 2.0 * d2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_rosenbrock() {
        let rosen = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let mut x = [-1.2, 1.0];
        let out = minimize(
            rosen,
            &mut x,
            &Options {
                max_iter: 200,
                gtol: 1e-8,
                memory: 10,
            },
        );
        assert!(out.converged, "{out:?}");
        assert!(
            (x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6,
            "{x:?}"
        );
    }
}
