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
pub const ROW_CHUNK: usize = 1024;

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

/// Rows of the sum one parallel task of [`gemm_at_b`] covers, at least (fixed, for the same
/// reason as [`ROW_CHUNK`]).
pub const SUM_CHUNK: usize = 4096;

/// `C (m x n) = A^T B` where `A` is `k x m` and `B` is `k x n`, both row-major and contiguous:
/// the sum over the `k` rows is split into fixed chunks computed in parallel and added in
/// chunk order, so the result does not depend on the number of threads.
pub fn gemm_at_b(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    use rayon::prelude::*;
    assert!(
        a.len() >= k * m && b.len() >= k * n && c.len() >= m * n,
        "gemm_at_b: too short"
    );
    let chunks = k.div_ceil(SUM_CHUNK).max(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in(threads: usize, f: impl FnOnce() -> Vec<f32> + Send) -> Vec<f32> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    /// The parallel GEMMs give the same bits on 1 thread and on 3, and the right values.
    #[test]
    fn parallel_gemms_do_not_depend_on_the_thread_count() {
        let mut rng = crate::util::rng::Rng::new(5, 0);
        let (m, k, n) = (7, 9000, 5);
        let a: Vec<f32> = (0..k * m).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let at_b = |t| {
            run_in(t, || {
                let mut c = vec![0.0f32; m * n];
                gemm_at_b(m, k, n, &a, &b, &mut c);
                c
            })
        };
        let one = at_b(1);
        assert_eq!(one, at_b(3));
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|r| a[r * m + i] as f64 * b[r * n + j] as f64)
                    .sum();
                assert!((one[i * n + j] as f64 - exact).abs() < 1e-2, "{i},{j}");
            }
        }
        // A (k x m) times a (m x n) matrix, rows in parallel.
        let w: Vec<f32> = (0..m * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let rows = |t| {
            run_in(t, || {
                let mut c = vec![0.0f32; k * n];
                gemm_rows(k, m, n, &a, &w, (n, 1), &mut c);
                c
            })
        };
        assert_eq!(rows(1), rows(3));
    }
}
