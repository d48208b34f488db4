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
