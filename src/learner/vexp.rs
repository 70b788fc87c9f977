//! `exp` over a slice, written so the compiler vectorizes it, with the
//! widest instructions the CPU has chosen at run time (AVX-512, AVX2 with
//! FMA, or the baseline SSE2). The softmax of every prediction spends its
//! time here: libm's `exp` is a call per value, this is a few vector
//! instructions per 4–8 values.
//!
//! Method (as Cephes and most vector libraries): `x = k·ln 2 + r` with
//! `k = round(x / ln 2)` and `|r| ≤ ln 2 / 2` (Cody–Waite: ln 2 in two parts,
//! so `r` is exact to well below an ulp), `exp(r)` by its Taylor series to
//! r¹³ (the first term left out is below 4·10⁻¹⁸ relatively), times `2^k`
//! built from its bits. Within 2 ulp of the exact value for x in
//! [-708, 709]; 0 below (where the exact value is below 3·10⁻³⁰⁸ and a
//! softmax term is nothing), +inf above, NaN stays NaN.

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split: the high part has trailing zero bits, so `k · LN2_HI` is exact.
/// (fdlibm's split: 6.93147180369123816490e-01 and 1.90821492927058770002e-10.)
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// 1.5 · 2⁵²: adding it rounds to an integer held in the low mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
const LO: f64 = -708.0;
const HI: f64 = 709.0;

/// 1/n! for n = 2..=13, highest first (Horner).
const INV_FACT: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
];

#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn exp1<const FMA: bool>(x: f64) -> f64 {
    let xc = x.clamp(LO, HI);
    let t = madd::<FMA>(xc, LOG2E, ROUNDER);
    let k = t - ROUNDER;
    // k as an integer, read from t's low mantissa bits.
    let ki = (t.to_bits() as i64).wrapping_sub(ROUNDER.to_bits() as i64);
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, xc));
    let mut p = INV_FACT[0];
    for &c in &INV_FACT[1..] {
        p = madd::<FMA>(p, r, c);
    }
    // exp(r) = 1 + r + r²·p
    let er = madd::<FMA>(r * r, p, r) + 1.0;
    let scale = f64::from_bits(((ki + 1023) as u64) << 52);
    let y = er * scale;
    // Below the range: 0; above: inf; NaN stays NaN (clamp keeps NaN).
    if x < LO {
        0.0
    } else if x > HI {
        f64::INFINITY
    } else {
        y
    }
}

#[inline(always)]
fn exp_loop<const FMA: bool>(v: &mut [f64]) {
    for x in v.iter_mut() {
        *x = exp1::<FMA>(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn exp_avx512(v: &mut [f64]) {
    exp_loop::<true>(v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn exp_avx2(v: &mut [f64]) {
    exp_loop::<true>(v)
}

/// Replaces every value with its exponential.
pub fn exp_in_place(v: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is built for.
            return unsafe { exp_avx512(v) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { exp_avx2(v) };
        }
    }
    exp_loop::<false>(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64).abs_diff(b.to_bits() as i64)
    }

    fn check(xs: &[f64], run: impl Fn(&mut [f64])) {
        let mut v = xs.to_vec();
        run(&mut v);
        for (&x, &y) in xs.iter().zip(&v) {
            let want = x.exp();
            assert!(
                ulps(y, want) <= 2,
                "exp({x}) = {y}, libm says {want} ({} ulp)",
                ulps(y, want)
            );
        }
    }

    fn grid() -> Vec<f64> {
        // Dense near 0 (softmax terms), spread to the ends of the range.
        let mut xs: Vec<f64> = (0..20_000).map(|i| -50.0 + i as f64 * 0.005_003).collect();
        xs.extend((0..2_000).map(|i| -708.0 + i as f64 * 0.7085));
        xs.extend([
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            0.5 * std::f64::consts::LN_2,
            1.0,
            -1.0,
        ]);
        xs
    }

    #[test]
    fn within_two_ulp_of_libm_on_every_path() {
        let xs = grid();
        check(&xs, exp_in_place);
        check(&xs, exp_loop::<false>);
        check(&xs, exp_loop::<true>);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features.
            check(&xs, |v| unsafe { exp_avx2(v) });
        }
    }

    #[test]
    fn the_ends_of_the_range() {
        let mut v = vec![
            -709.0,
            -1e10,
            f64::NEG_INFINITY,
            710.0,
            f64::INFINITY,
            f64::NAN,
        ];
        exp_in_place(&mut v);
        assert_eq!(v[..3], [0.0, 0.0, 0.0]);
        assert_eq!(v[3..5], [f64::INFINITY, f64::INFINITY]);
        assert!(v[5].is_nan());
    }
}
