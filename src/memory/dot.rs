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

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn matches_the_serial_sum_for_every_length() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut r = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
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
    fn distance_of_a_unit_vector_to_itself_is_zero_not_negative() {
        let v: Vec<f32> = (0..384).map(|i| ((i * 7919) % 101) as f32).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let v: Vec<f32> = v.iter().map(|x| x / n).collect();
        use hnsw_rs::anndists::dist::Distance;
        let d = UnitDot.eval(&v, &v);
        assert!((0.0..1e-5).contains(&d), "{d}");
    }
}
