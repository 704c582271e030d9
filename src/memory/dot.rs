//! The dot product every vector comparison runs on — exact search, the HNSW
//! graph's distance, duplicate detection, question similarity.
//!
//! A plain `iter().zip().map().sum()` over `f32` does not vectorise: float
//! addition is not associative, so the compiler must add the 384 products one
//! after another, each waiting for the last (~4 cycles apiece). Summing into
//! independent lanes lets it keep several additions in flight; on x86-64 CPUs
//! with AVX2 and FMA (checked once at run time, cached by std) the lanes are
//! 4 × 8 wide fused multiply-adds. Results differ from the serial sum only in
//! rounding (~1e-7 for unit vectors).
//!
//! Stored vectors are half floats ([`f16`]: one copy, half the memory, in
//! the HNSW graph — see [`super::ann`]); [`dot_f16`] compares two of them
//! and [`dot_f16_f32`] a stored one with a query kept in full precision.
//! With F16C (checked once at run time) eight halves are widened per
//! instruction; otherwise they are converted one by one.

pub use half::f16;

/// `a · b` over the common length of the two slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU features `dot_avx2` is compiled for were just detected.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

/// Portable version: 16 independent partial sums the compiler maps onto
/// whatever vector registers the target has.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads 8 floats at offsets i..i + 32 <= n of both slices.
    unsafe {
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * k));
                let y = _mm256_loadu_ps(pb.add(i + 8 * k));
                *a = _mm256_fmadd_ps(x, y, *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), s);
        let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum();
        lanes.iter().sum::<f32>() + tail
    }
}

/// `a · b` of two half-float vectors, summed in f32.
#[inline]
pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if f16c() {
            // SAFETY: the CPU features `dot_f16_avx2` is compiled for were just detected.
            return unsafe { dot_f16_avx2(a, b) };
        }
    }
    dot_f16_lanes(a, b, |x| x.to_f32())
}

/// `a · q`: a stored half-float vector with a full-precision query.
#[inline]
pub fn dot_f16_f32(a: &[f16], q: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if f16c() {
            // SAFETY: the CPU features `dot_f16_f32_avx2` is compiled for were just detected.
            return unsafe { dot_f16_f32_avx2(a, q) };
        }
    }
    dot_f16_lanes(a, q, |x| *x)
}

/// Half floats of `v` (round to nearest).
pub fn to_f16(v: &[f32]) -> Vec<f16> {
    v.iter().map(|x| f16::from_f32(*x)).collect()
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn f16c() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

/// Portable version of the half-float products.
#[inline(always)]
fn dot_f16_lanes<B>(a: &[f16], b: &[B], wide: impl Fn(&B) -> f32) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x.to_f32() * wide(y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i].to_f32() * wide(&y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(a: &[f16], b: &[f16]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr() as *const __m128i, b.as_ptr() as *const __m128i);
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut i = 0;
    // SAFETY: every load reads 8 halves (16 bytes) at offsets i..i + 8 <= n
    // of both slices (unaligned loads).
    unsafe {
        while i + 16 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i / 8 + k)));
                let y = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i / 8 + k)));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 16;
        }
        while i + 8 <= n {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i / 8)));
            let y = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i / 8)));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(acc[0], acc[1]);
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), s);
        let tail: f32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| x.to_f32() * y.to_f32())
            .sum();
        lanes.iter().sum::<f32>() + tail
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_f32_avx2(a: &[f16], q: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(q.len());
    let (pa, pq) = (a.as_ptr() as *const __m128i, q.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut i = 0;
    // SAFETY: every load reads 8 values at offsets i..i + 8 <= n of both
    // slices (unaligned loads).
    unsafe {
        while i + 16 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i / 8 + k)));
                let y = _mm256_loadu_ps(pq.add(i + 8 * k));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 16;
        }
        while i + 8 <= n {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i / 8)));
            let y = _mm256_loadu_ps(pq.add(i));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(acc[0], acc[1]);
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), s);
        let tail: f32 = a[i..n]
            .iter()
            .zip(&q[i..n])
            .map(|(x, y)| x.to_f32() * y)
            .sum();
        lanes.iter().sum::<f32>() + tail
    }
}

/// The HNSW graph's distance between unit vectors: `1 - a·b`, never below
/// 0 (rounding can push the dot product of a vector with itself just past 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitDot;

impl hnsw_rs::anndists::dist::Distance<f32> for UnitDot {
    #[inline]
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// The same on the graph's half-float points.
impl hnsw_rs::anndists::dist::Distance<f16> for UnitDot {
    #[inline]
    fn eval(&self, a: &[f16], b: &[f16]) -> f32 {
        (1.0 - dot_f16(a, b)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-0.5, 0.5) (xorshift).
    fn values(mut s: u64) -> impl FnMut() -> f32 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    fn serial(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn matches_the_serial_sum_for_every_length() {
        let mut r = values(0x2545_f491_4f6c_dd1d);
        for n in 0..100 {
            let a: Vec<f32> = (0..n).map(|_| r()).collect();
            let b: Vec<f32> = (0..n + 3).map(|_| r()).collect();
            let want = serial(&a, &b[..n]);
            for got in [dot(&a, &b), dot_lanes(&a, &b), dot(&b, &a)] {
                assert!(
                    (f64::from(got) - want).abs() < 1e-5,
                    "n={n}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn half_float_products_match_the_serial_sum() {
        let mut r = values(0x9e37_79b9_7f4a_7c15);
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|_| r()).collect();
            let b: Vec<f32> = (0..n + 2).map(|_| r()).collect();
            let (ha, hb) = (to_f16(&a), to_f16(&b));
            let wide = |h: &[f16]| h.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
            let want = serial(&wide(&ha), &wide(&hb)[..n]);
            for got in [
                dot_f16(&ha, &hb),
                dot_f16_lanes(&ha, &hb, |x| x.to_f32()),
                dot_f16(&hb, &ha),
            ] {
                assert!(
                    (f64::from(got) - want).abs() < 1e-5,
                    "n={n}: {got} vs {want}"
                );
            }
            let want = serial(&wide(&ha), &b[..n]);
            let got = dot_f16_f32(&ha, &b);
            assert!(
                (f64::from(got) - want).abs() < 1e-5,
                "n={n}: {got} vs {want}"
            );
            // Half floats keep ~3 decimal digits: close to the f32 product.
            assert!((f64::from(got) - serial(&a, &b[..n])).abs() < 2e-2, "n={n}");
        }
    }

    #[test]
    fn distance_of_a_unit_vector_to_itself_is_zero_not_negative() {
        let v: Vec<f32> = (0..384).map(|i| ((i * 7919) % 101) as f32).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let v: Vec<f32> = v.iter().map(|x| x / n).collect();
        use hnsw_rs::anndists::dist::Distance;
        let d = UnitDot.eval(&v, &v);
        assert!((0.0..1e-5).contains(&d), "{d}");
    }
}
