//! A safe, bounds-checked face on `matrixmultiply::sgemm` for the small dense layers.

/// Strides of a matrix view: (row stride, column stride), in elements.
pub type Strides = (usize, usize);

fn last_index(rows: usize, cols: usize, s: Strides) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * s.0 + (cols - 1) * s.1 + 1
    }
}

/// `C (m x n) = A (m x k) * B (k x n) + beta * C`, every matrix given by a slice and strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    beta: f32,
    c: &mut [f32],
    sc: Strides,
) {
    assert!(a.len() >= last_index(m, k, sa), "gemm: A too short");
    assert!(b.len() >= last_index(k, n, sb), "gemm: B too short");
    assert!(c.len() >= last_index(m, n, sc), "gemm: C too short");
    // SAFETY: the asserts above keep every index the kernel touches inside the slices, and `c`
    // is borrowed mutably so it cannot alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            beta,
            c.as_mut_ptr(),
            sc.0 as isize,
            sc.1 as isize,
        );
    }
}

/// Rows of `A` and `C` one parallel task of [`gemm_rows`] computes. Fixed, so that results do
/// not depend on the number of threads.
pub const ROW_CHUNK: usize = 256;

/// `C (m x n) = A (m x k) * B (k x n)` with `A` and `C` row-major and contiguous (row strides
/// `k` and `n`), computed in parallel over fixed chunks of rows: every element is computed by
/// one sequential kernel call, whatever the thread count.
pub fn gemm_rows(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], sb: Strides, c: &mut [f32]) {
    use rayon::prelude::*;
    assert!(
        a.len() >= m * k && c.len() >= m * n,
        "gemm_rows: A or C too short"
    );
    if n == 0 || m == 0 {
        return;
    }
    c[..m * n]
        .par_chunks_mut(ROW_CHUNK * n)
        .enumerate()
        .for_each(|(i, cc)| {
            let rows = cc.len() / n;
            let aa = &a[i * ROW_CHUNK * k..(i * ROW_CHUNK + rows) * k];
            gemm(rows, k, n, aa, (k, 1), b, sb, 0.0, cc, (n, 1));
        });
}

/// `C (m x n) = A^T B` where `A` is `k x m` and `B` is `k x n`, both row-major and contiguous:
/// the sum over the `k` rows is split into fixed chunks computed in parallel and added in
/// chunk order, so the result does not depend on the number of threads.
pub fn gemm_at_b(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    use rayon::prelude::*;
    assert!(
        a.len() >= k * m && b.len() >= k * n && c.len() >= m * n,
        "gemm_at_b: too short"
    );
    let chunks = k.div_ceil(ROW_CHUNK * 16).max(1);
    let per = k.div_ceil(chunks);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|i| {
            let (r0, r1) = (i * per, ((i + 1) * per).min(k));
            let mut part = vec![0.0f32; m * n];
            if r1 > r0 {
                gemm(
                    m,
                    r1 - r0,
                    n,
                    &a[r0 * m..r1 * m],
                    (1, m),
                    &b[r0 * n..r1 * n],
                    (n, 1),
                    0.0,
                    &mut part,
                    (n, 1),
                );
            }
            part
        })
        .collect();
    c[..m * n].fill(0.0);
    for part in partials {
        for (x, p) in c.iter_mut().zip(part) {
            *x += p;
        }
    }
}
