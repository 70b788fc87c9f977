//! `x · W + b` for rows read straight from a request's bytes (little-endian
//! float64, any alignment): the scores of a features-only model, with the
//! widest instructions the CPU has chosen at run time (AVX-512, AVX2 with
//! FMA, or the baseline SSE2), as in [`super::vexp`].
//!
//! A general matrix product packs both operands into panels first; here the
//! weights are few (features × classes) and laid out once, padded to whole
//! vectors of classes, and each row is read once, in place: a few rows at a
//! time, every weight vector loaded once for them.

/// Classes a vector holds (a 512-bit register of float64).
const LANES: usize = 8;

/// A features-only model's scores as one affine map.
#[derive(Clone, Debug)]
pub struct Affine {
    d: usize,
    k: usize,
    /// `k` rounded up to whole vectors.
    kp: usize,
    /// Features × `kp`, row-major; the padding is 0.
    w: Vec<f64>,
    /// `kp` intercepts; the padding is 0.
    b: Vec<f64>,
}

impl Affine {
    /// From the weights (features × classes) and intercepts (one a class).
    pub fn new(w: ndarray::ArrayView2<f64>, b: ndarray::ArrayView1<f64>) -> Affine {
        let (d, k) = w.dim();
        assert_eq!(b.len(), k, "one intercept a class");
        let kp = k.div_ceil(LANES) * LANES;
        let mut wp = vec![0.0; d * kp];
        for (row, src) in wp.chunks_exact_mut(kp.max(1)).zip(w.rows()) {
            for (o, &v) in row.iter_mut().zip(src) {
                *o = v;
            }
        }
        let mut bp = vec![0.0; kp];
        for (o, &v) in bp.iter_mut().zip(b) {
            *o = v;
        }
        Affine {
            d,
            k,
            kp,
            w: wp,
            b: bp,
        }
    }

    /// Features a row has.
    pub fn inputs(&self) -> usize {
        self.d
    }

    /// Scores a row gets.
    pub fn outputs(&self) -> usize {
        self.k
    }

    /// The scores of `n` rows: `x` holds them, `n ×` [`Affine::inputs`]
    /// little-endian float64 values (C order, any alignment); `out` gets
    /// `n ×` [`Affine::outputs`] scores (C order). A row with a value that
    /// is not finite gets a score that is not finite (NaN and ±∞ spread
    /// through every product and sum), so checking the few scores finds
    /// them.
    pub fn apply_le(&self, x: &[u8], out: &mut [f64]) {
        let n = out.len() / self.k.max(1);
        assert_eq!(out.len(), n * self.k, "whole rows of scores");
        assert_eq!(x.len(), n * self.d * 8, "whole rows of features");
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has the features the function is built for.
                return unsafe { apply_avx512(self, x, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: as above.
                return unsafe { apply_avx2(self, x, out) };
            }
        }
        apply_scalar(self, x, out)
    }
}

/// A kernel for one vector width: `$rows` rows × up to 3 vectors of
/// classes at a time, every weight vector loaded once for the rows, every
/// feature broadcast once for the vectors.
macro_rules! simd_kernel {
    ($name:ident, $feat:literal, $lanes:literal, $rows:literal, $vt:ty, $splat:ident,
     $load:ident, $fma:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        pub(super) fn $name(a: &Affine, x: &[u8], out: &mut [f64]) {
            if a.k == 0 {
                return;
            }
            let n = out.len() / a.k;
            let mut r = 0;
            while r + $rows <= n {
                // SAFETY: these rows are in x and out (checked by the caller).
                unsafe { group::<$rows>(a, x, out, r) };
                r += $rows;
            }
            while r < n {
                // SAFETY: as above.
                unsafe { group::<1>(a, x, out, r) };
                r += 1;
            }
        }

        /// Rows `r..r + R`.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn group<const R: usize>(a: &Affine, x: &[u8], out: &mut [f64], r: usize) {
            // Three vectors a tile where there are three: rows × 3
            // independent sums keep both FMA units busy (with rows × 1 each
            // FMA waits for the one before).
            let vectors = a.k.div_ceil($lanes);
            let mut v = 0;
            while v + 3 <= vectors {
                unsafe { tile::<R, 3>(a, x, out, r, v * $lanes) };
                v += 3;
            }
            match vectors - v {
                2 => unsafe { tile::<R, 2>(a, x, out, r, v * $lanes) },
                1 => unsafe { tile::<R, 1>(a, x, out, r, v * $lanes) },
                _ => {}
            }
        }

        /// Rows `r..r + R` × classes `c0..c0 + V·lanes` (those there are).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn tile<const R: usize, const V: usize>(
            a: &Affine,
            x: &[u8],
            out: &mut [f64],
            r: usize,
            c0: usize,
        ) {
            use std::arch::x86_64::*;
            let d = a.d;
            let xp = x.as_ptr();
            let wp = a.w.as_ptr();
            // SAFETY: c0 + V·lanes ≤ kp (whole vectors; kp is a multiple of
            // every width), rows r..r+R hold d values each in x.
            unsafe {
                let mut acc: [[$vt; V]; R] =
                    [std::array::from_fn(|u| $load(a.b.as_ptr().add(c0 + u * $lanes))); R];
                for j in 0..d {
                    let w: [$vt; V] =
                        std::array::from_fn(|u| $load(wp.add(j * a.kp + c0 + u * $lanes)));
                    for (q, acc) in acc.iter_mut().enumerate() {
                        let at = xp.add(((r + q) * d + j) * 8) as *const f64;
                        let xv = $splat(at.read_unaligned());
                        for u in 0..V {
                            acc[u] = $fma(xv, w[u], acc[u]);
                        }
                    }
                }
                let mut tmp = [0.0f64; $lanes];
                for (q, acc) in acc.iter().enumerate() {
                    for (u, v) in acc.iter().enumerate() {
                        let c = c0 + u * $lanes;
                        if c >= a.k {
                            break;
                        }
                        let m = $lanes.min(a.k - c);
                        let o = (r + q) * a.k + c;
                        if m == $lanes {
                            $store(out.as_mut_ptr().add(o), *v);
                        } else {
                            $store(tmp.as_mut_ptr(), *v);
                            out[o..o + m].copy_from_slice(&tmp[..m]);
                        }
                    }
                }
            }
        }
    };
}

mod x512 {
    use super::Affine;
    simd_kernel!(
        apply_avx512,
        "avx512f,fma",
        8,
        4,
        __m512d,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_fmadd_pd,
        _mm512_storeu_pd
    );
}

mod x256 {
    use super::Affine;
    simd_kernel!(
        apply_avx2,
        "avx2,fma",
        4,
        // 3 rows × 3 vectors: 9 sums, 3 weight vectors and the broadcast
        // fit AVX2's 16 registers (4 rows spill a sum to the stack).
        3,
        __m256d,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_fmadd_pd,
        _mm256_storeu_pd
    );
}

#[cfg(target_arch = "x86_64")]
use x256::apply_avx2;
#[cfg(target_arch = "x86_64")]
use x512::apply_avx512;

/// The portable kernel: a row at a time, a class at a time.
fn apply_scalar(a: &Affine, x: &[u8], out: &mut [f64]) {
    if a.k == 0 {
        return;
    }
    let row_bytes = a.d * 8;
    for (r, o) in out.chunks_exact_mut(a.k).enumerate() {
        o.copy_from_slice(&a.b[..a.k]);
        let xr = &x[r * row_bytes..(r + 1) * row_bytes];
        for (xb, w) in xr.chunks_exact(8).zip(a.w.chunks_exact(a.kp)) {
            let xv = f64::from_le_bytes(xb.try_into().expect("8 bytes"));
            for (o, &w) in o.iter_mut().zip(w) {
                *o += xv * w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    fn le_bytes(x: &Array2<f64>) -> Vec<u8> {
        x.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    /// Every shape around the vector and row-group sizes, on every path,
    /// against ndarray's product; from bytes at an odd address too.
    #[test]
    fn equals_the_matrix_product() {
        for (n, d, k) in [
            (1, 1, 1),
            (3, 5, 2),
            (4, 64, 10),
            (9, 64, 10),
            (7, 3, 8),
            (6, 2, 9),
            (5, 17, 16),
            (13, 30, 23),
            (6, 11, 40),
            (2, 0, 3),
        ] {
            let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) % 17) as f64 - 8.5);
            let w =
                Array2::from_shape_fn((d, k), |(j, c)| ((j * 13 + c * 5) % 11) as f64 * 0.37 - 1.5);
            let b = Array1::from_shape_fn(k, |c| c as f64 * 0.25 - 1.0);
            let want = x.dot(&w) + &b;
            let a = Affine::new(w.view(), b.view());
            let mut bytes = vec![0u8];
            bytes.extend(le_bytes(&x));
            type Path = fn(&Affine, &[u8], &mut [f64]);
            let mut paths: Vec<(&str, Path)> = vec![
                ("dispatch", |a, x, o| a.apply_le(x, o)),
                ("scalar", apply_scalar),
            ];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has the features.
                paths.push(("avx2", |a, x, o| unsafe { apply_avx2(a, x, o) }));
            }
            for (name, path) in paths {
                let mut out = vec![f64::NAN; n * k];
                path(&a, &bytes[1..], &mut out);
                for (i, (g, w)) in out.iter().zip(want.iter()).enumerate() {
                    assert!(close(*g, *w), "{name} {n}×{d}×{k} [{i}]: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn a_value_that_is_not_finite_spoils_its_rows_scores_only() {
        let w = Array2::from_shape_fn((3, 2), |(j, c)| if j == 1 { 0.0 } else { (j + c) as f64 });
        let b = Array1::zeros(2);
        let a = Affine::new(w.view(), b.view());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut x = Array2::from_elem((5, 3), 1.0);
            // Feature 1 has weight 0 for every class: ∞ · 0 is NaN still.
            x[[2, 1]] = bad;
            let mut out = vec![0.0; 10];
            a.apply_le(&le_bytes(&x), &mut out);
            for (r, s) in out.chunks(2).enumerate() {
                assert_eq!(s.iter().all(|v| v.is_finite()), r != 2, "row {r}, {bad}");
            }
        }
    }
}
