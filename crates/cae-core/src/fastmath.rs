//! Branch-free `f32` kernels for the fused CPU passes. glibc's `expf`/`logf` are scalar calls that
//! keep the compiler from vectorising the loops around them; these are plain arithmetic, so those
//! loops vectorise. Accuracy is checked against `f64` in the tests below.

/// `e^x` for `x` in about `[-87, 88]` (clamped outside), relative error below 4e-7.
///
/// Cephes' `expf`: `x = n·ln2 + r` with `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r`, and `2^n`
/// put straight into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let rounded = x * std::f32::consts::LOG2_E + ROUND;
    let n = rounded - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * (r * r) + r + 1.0;
    // `rounded`'s bits are ROUND's plus n (its ulp is 1), so 2^n's exponent comes from integer
    // arithmetic; an `as i32` cast of n is a saturating scalar conversion that stops the loops
    // around this function from vectorising (it cost a third of the activation pass's time).
    let biased = rounded
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    y * f32::from_bits(biased << 23)
}

/// `ln(1 + e)` for `e` in `[0, 1]`, absolute error below 2e-7 (about 2 ulp of ln 2): `2·atanh(t)` with `t = e / (2 + e)`
/// in `[0, 1/3]`, its odd series to `t^13`.
#[inline(always)]
pub(crate) fn ln_1p_unit(e: f32) -> f32 {
    let t = e / (2.0 + e);
    let t2 = t * t;
    let series = 1.0
        + t2 * (1.0 / 3.0
            + t2 * (1.0 / 5.0
                + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0 + t2 * (1.0 / 11.0 + t2 * (1.0 / 13.0))))));
    2.0 * t * series
}

/// `σ(a)` and `σ'(a) = σ(1 − σ)`, stable for every `a`.
#[inline(always)]
pub(crate) fn sigmoid_and_derivative(a: f32) -> (f32, f32) {
    let e = exp(-a.abs());
    let inv = 1.0 / (1.0 + e);
    let s = if a >= 0.0 { inv } else { e * inv };
    (s, s * (1.0 - s))
}

/// `Σ a_i² w_i`, in eight independent lanes (which the compiler vectorises) then combined.
#[inline(always)]
pub(crate) fn sq_dot(a: &[f32], w: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, w8) = (a.chunks_exact(8), w.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(w8.remainder())
        .map(|(x, y)| x * x * y)
        .sum();
    for (x, y) in a8.zip(w8) {
        for k in 0..8 {
            lanes[k] += x[k] * x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `Σ a_i²`, in eight independent lanes (which the compiler vectorises) then combined.
#[inline(always)]
pub(crate) fn sq_sum(a: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let a8 = a.chunks_exact(8);
    let tail: f32 = a8.remainder().iter().map(|v| v * v).sum();
    for v in a8 {
        for k in 0..8 {
            lanes[k] += v[k] * v[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The sum of `a` accumulated in f64 (four lanes, so that it vectorises): for loss terms that
/// are reported, where an f32 sum would lose digits.
#[inline(always)]
pub(crate) fn sum_f64(a: &[f32]) -> f64 {
    let mut lanes = [0f64; 4];
    let a4 = a.chunks_exact(4);
    let tail: f64 = a4.remainder().iter().map(|&v| f64::from(v)).sum();
    for x in a4 {
        for k in 0..4 {
            lanes[k] += f64::from(x[k]);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_f64_across_its_range() {
        let mut worst = 0f64;
        for i in 0..=350_000 {
            let x = -87.0 + 175.0 * i as f64 / 350_000.0;
            let got = exp(x as f32) as f64;
            let want = (x as f32 as f64).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn ln_1p_unit_matches_f64_on_0_to_1() {
        let mut worst = 0f64;
        for i in 0..=100_000 {
            let e = i as f64 / 100_000.0;
            let got = ln_1p_unit(e as f32) as f64;
            let want = (e as f32 as f64).ln_1p();
            worst = worst.max((got - want).abs());
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
    }

    #[test]
    fn sigmoid_is_stable_and_accurate() {
        for a in [-200.0f32, -30.0, -5.0, -0.5, 0.0, 0.5, 5.0, 30.0, 200.0] {
            let (s, d) = sigmoid_and_derivative(a);
            let want = 1.0 / (1.0 + (-(a as f64)).exp());
            assert!((s as f64 - want).abs() < 1e-7, "σ({a}) = {s}, want {want}");
            assert!((d as f64 - want * (1.0 - want)).abs() < 1e-7, "σ'({a})");
        }
    }

    #[test]
    fn lane_sums_match_plain_sums() {
        let a: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain_sum: f64 = a.iter().map(|&x| x as f64).sum();
        assert!((sum_f64(&a) - plain_sum).abs() < 1e-12);
        let plain_sq: f64 = a.iter().zip(&b).map(|(x, y)| (x * x * y) as f64).sum();
        assert!((sq_dot(&a, &b) as f64 - plain_sq).abs() < 1e-4);
        let plain_squares: f64 = a.iter().map(|&x| (x * x) as f64).sum();
        assert!((sq_sum(&a) as f64 - plain_squares).abs() < 1e-4);
    }
}
