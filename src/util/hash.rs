//! FNV-1a, the 64-bit content hash used for cache and resume keys (not for security).

/// The FNV-1a 64-bit offset basis: the hash of nothing.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Extends the FNV-1a hash `h` with `bytes`.
pub fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
