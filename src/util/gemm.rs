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

/// Panics unless `A` (`m x k`) and `B` (`k x n`) lie inside their slices.
fn check_inputs(m: usize, k: usize, n: usize, a: &[f32], sa: Strides, b: &[f32], sb: Strides) {
    assert!(a.len() >= last_index(m, k, sa), "gemm: A too short");
    assert!(b.len() >= last_index(k, n, sb), "gemm: B too short");
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
    check_inputs(m, k, n, a, sa, b, sb);
    assert!(c.len() >= last_index(m, n, sc), "gemm: C too short");
    // SAFETY: the checks above keep every index the kernel touches inside the slices, and `c`
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

/// Rows of `C` one parallel task of [`gemm_rows`] and [`gemm_at_b`] computes. Fixed, so that
/// results do not depend on the number of threads.
pub const ROW_CHUNK: usize = 1024;

/// Columns of `C` one parallel task computes (fixed for the same reason): a batch of 100
/// rows times a layer of 256 neurons is still split over the cores.
pub const COL_CHUNK: usize = 64;

/// `C (m x n) = A (m x k) * B (k x n)`, `C` row-major and contiguous, computed in parallel
/// over fixed tiles of [`ROW_CHUNK`] x [`COL_CHUNK`]: every element is computed by one
/// sequential kernel call over the whole of `k`, whatever the thread count.
#[allow(clippy::too_many_arguments)]
fn gemm_tiles(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    c: &mut [f32],
) {
    use rayon::prelude::*;
    check_inputs(m, k, n, a, sa, b, sb);
    assert!(c.len() >= m * n, "gemm: C too short");
    if m == 0 || n == 0 {
        return;
    }
    /// The output matrix, shared by tasks that write disjoint tiles of it.
    struct Out(*mut f32);
    // SAFETY: tasks only write through the pointer, each to its own tile (see below).
    unsafe impl Sync for Out {}
    let out = Out(c.as_mut_ptr());
    let (row_tiles, col_tiles) = (m.div_ceil(ROW_CHUNK), n.div_ceil(COL_CHUNK));
    (0..row_tiles * col_tiles).into_par_iter().for_each(|t| {
        let (r0, c0) = ((t / col_tiles) * ROW_CHUNK, (t % col_tiles) * COL_CHUNK);
        let (rows, cols) = (ROW_CHUNK.min(m - r0), COL_CHUNK.min(n - c0));
        let out = &out;
        // SAFETY: the checks above keep every element of A, B and C the kernel reads or
        // writes inside its slice (tile rows `r0..r0 + rows` of A, columns `c0..c0 + cols` of
        // B, and that tile of C); tiles are disjoint, so no element of C is written by two
        // tasks, and `c` is borrowed mutably for the whole call, so nothing else reads it.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                cols,
                1.0,
                a.as_ptr().add(r0 * sa.0),
                sa.0 as isize,
                sa.1 as isize,
                b.as_ptr().add(c0 * sb.1),
                sb.0 as isize,
                sb.1 as isize,
                0.0,
                out.0.add(r0 * n + c0),
                n as isize,
                1,
            );
        }
    });
}

/// `C (m x n) = A (m x k) * B (k x n)` with `A` and `C` row-major and contiguous (row strides
/// `k` and `n`), computed in parallel over fixed tiles of `C` (see [`ROW_CHUNK`],
/// [`COL_CHUNK`]).
pub fn gemm_rows(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], sb: Strides, c: &mut [f32]) {
    assert!(
        a.len() >= m * k && c.len() >= m * n,
        "gemm_rows: A or C too short"
    );
    gemm_tiles(m, k, n, a, (k, 1), b, sb, c);
}

/// Rows of the sum one parallel task of [`gemm_at_b`] covers, at least (fixed, for the same
/// reason as [`ROW_CHUNK`]).
pub const SUM_CHUNK: usize = 4096;

/// `C (m x n) = A^T B` where `A` is `k x m` and `B` is `k x n`, both row-major and contiguous.
/// Up to [`SUM_CHUNK`] rows the product is computed over tiles of `C` as in [`gemm_rows`];
/// beyond, the sum over the `k` rows is split into fixed chunks computed in parallel and added
/// in chunk order. Either way the result does not depend on the number of threads.
pub fn gemm_at_b(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    use rayon::prelude::*;
    assert!(
        a.len() >= k * m && b.len() >= k * n && c.len() >= m * n,
        "gemm_at_b: too short"
    );
    if k <= SUM_CHUNK {
        gemm_tiles(m, k, n, a, (1, m), b, (n, 1), c);
        return;
    }
    let chunks = k.div_ceil(SUM_CHUNK);
    let per = k.div_ceil(chunks);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|i| {
            let (r0, r1) = (i * per, ((i + 1) * per).min(k));
            let mut part = vec![0.0f32; m * n];
            gemm_tiles(
                m,
                r1 - r0,
                n,
                &a[r0 * m..r1 * m],
                (1, m),
                &b[r0 * n..r1 * n],
                (n, 1),
                &mut part,
            );
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
        // A small batch times a wide layer: split over column tiles, the same bits as one
        // kernel call over the whole matrix.
        let (m, k, n) = (100, 300, 3 * COL_CHUNK + 5);
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let w: Vec<f32> = (0..k * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut whole = vec![0.0f32; m * n];
        gemm(m, k, n, &a, (k, 1), &w, (n, 1), 0.0, &mut whole, (n, 1));
        let tiled = |t| {
            run_in(t, || {
                let mut c = vec![0.0f32; m * n];
                gemm_rows(m, k, n, &a, &w, (n, 1), &mut c);
                c
            })
        };
        assert_eq!(tiled(1), whole);
        assert_eq!(tiled(2), whole);
        // A^T B with a short sum, over tiles of C.
        let at = |t| {
            run_in(t, || {
                let mut c = vec![0.0f32; k * n];
                gemm_at_b(k, m, n, &a, &whole, &mut c);
                c
            })
        };
        assert_eq!(at(1), at(2));
    }
}
