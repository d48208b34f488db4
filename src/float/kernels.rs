//! Matrix-vector product for single images. A GEMM library repacks the weight matrix on every
//! call, which at one image costs more than the product itself; a row-by-row dot product with
//! sixteen independent accumulators is what the compiler turns into packed multiplies and adds
//! (no reassociation needed, so no fast-math). It is compiled twice, once with AVX2 and FMA
//! enabled, and the fast variant is chosen at run time when the CPU has them.

/// `y[o] = b[o] + sum_j w[o * n + j] * x[j]`.
#[inline(always)]
fn gemv_generic(w: &[f32], n: usize, x: &[f32], b: &[f32], y: &mut [f32]) {
    for ((row, &bias), out) in w.chunks_exact(n).zip(b).zip(y.iter_mut()) {
        let mut acc = [0.0f32; 16];
        let (rc, rr) = row.split_at(n - n % 16);
        let (xc, xr) = x.split_at(n - n % 16);
        for (wc, xc) in rc.chunks_exact(16).zip(xc.chunks_exact(16)) {
            for k in 0..16 {
                acc[k] += wc[k] * xc[k];
            }
        }
        let mut s = bias;
        for (a, b) in rr.iter().zip(xr) {
            s += a * b;
        }
        *out = s + acc.iter().sum::<f32>();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_avx2(w: &[f32], n: usize, x: &[f32], b: &[f32], y: &mut [f32]) {
    gemv_generic(w, n, x, b, y)
}

/// Whether the CPU has AVX2 and FMA (the fast variant of the single-image product, and the kernels
/// `matrixmultiply` picks for batches).
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `y = W x + b` for `W` of `y.len()` rows and `n` columns, row-major.
pub fn gemv(w: &[f32], n: usize, x: &[f32], b: &[f32], y: &mut [f32]) {
    assert_eq!(w.len(), n * y.len());
    assert_eq!(x.len(), n);
    assert_eq!(b.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        unsafe { gemv_avx2(w, n, x, b, y) };
        return;
    }
    gemv_generic(w, n, x, b, y)
}
