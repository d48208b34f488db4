//! Packed XNOR-popcount kernels with a runtime check for the POPCNT instruction.
//!
//! The default x86-64 target does not emit POPCNT; counting bits in software is about twice as
//! slow. The kernels are compiled twice, once with the `popcnt` target feature, and the fast
//! variant is chosen once per call when the CPU has it.

use crate::vocab::matrix::BinaryMatrix;

/// Number of positions where `a` and `b` agree, over `n` valid bits (padding bits must be zero
/// in both, so they agree and are subtracted out).
#[inline(always)]
fn matches(a: &[u64], b: &[u64], n: u32) -> u32 {
    let mut diff = 0u32;
    for (x, y) in a.iter().zip(b) {
        diff += (x ^ y).count_ones();
    }
    n - diff
}

#[inline(always)]
fn matvec_generic(w: &BinaryMatrix, x: &[u64], out: &mut [u32]) {
    let n = w.cols() as u32;
    for (r, o) in out.iter_mut().enumerate() {
        *o = matches(w.row(r), x, n);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn matvec_popcnt(w: &BinaryMatrix, x: &[u64], out: &mut [u32]) {
    matvec_generic(w, x, out)
}

/// `out[r] = popcount(XNOR(row r of w, x))` for every row.
pub fn matvec(w: &BinaryMatrix, x: &[u64], out: &mut [u32]) {
    debug_assert_eq!(x.len(), w.words_per_row());
    debug_assert_eq!(out.len(), w.rows());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU supports POPCNT, checked just above.
        unsafe { matvec_popcnt(w, x, out) };
        return;
    }
    matvec_generic(w, x, out)
}

/// True when the fast POPCNT path is in use on this CPU.
pub fn has_popcnt() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
