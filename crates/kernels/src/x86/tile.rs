//! Tiles of dot products for prefill: [`TILE_ROWS`] weight rows × [`TILE_TOKENS`]
//! tokens at once. Each weight block is unpacked once for all the tile's tokens and
//! each activation block loaded once for all its rows, which the one-pair kernels
//! redo for every pair; a batch of tokens thus costs a fraction per token of a matvec.
//!
//! The legacy formats are handled as unsigned weights `u` with a fixed offset `o`
//! (`q = u - o`): `sum(q * y) = sum(u * y) - o * sum(y)`, both integer sums exact, so
//! the byte dot product needs no sign trick per pair. Q8_0 weights are signed bytes
//! and use the sign trick instead. Every pair's integer sums equal the one-pair
//! kernel's; only the f32 accumulation order differs (one accumulator per pair).

use core::arch::x86_64::*;

use super::common::*;

pub(crate) use crate::dispatch::{TILE_ROWS, TILE_TOKENS};

/// How one legacy format's blocks unpack.
pub(crate) trait Legacy {
    /// Bytes of a weight block.
    const W_BYTES: usize;
    /// Bytes of an activation block (Q8_0 or Q8_1).
    const X_BYTES: usize;
    /// Offset of the quants in an activation block.
    const X_QS: usize;
    /// `o` in `q = u - o`; 0 for the formats with a min.
    const OFFSET: i8;
    /// Whether the weights are signed bytes (Q8_0), used with the sign trick.
    const SIGNED: bool;
    /// Whether the block has a min `m` (added as `m * s` with the activations' `s`).
    const HAS_MIN: bool;

    /// The 32 weights of the block at `wb` as bytes (`u`, or `q` when `SIGNED`).
    ///
    /// # Safety
    /// AVX2; `wb` readable for one block.
    unsafe fn unpack(wb: *const u8) -> __m256i;
}

/// Q4_0: nibbles, offset 8.
pub(crate) struct Q4_0;
/// Q4_1: nibbles with a min.
pub(crate) struct Q4_1;
/// Q5_0: five-bit values, offset 16.
pub(crate) struct Q5_0;
/// Q5_1: five-bit values with a min.
pub(crate) struct Q5_1;
/// Q8_0: signed bytes.
pub(crate) struct Q8_0;

impl Legacy for Q4_0 {
    const W_BYTES: usize = 18;
    const X_BYTES: usize = 34;
    const X_QS: usize = 2;
    const OFFSET: i8 = 8;
    const SIGNED: bool = false;
    const HAS_MIN: bool = false;
    #[inline(always)]
    unsafe fn unpack(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe { bytes_from_nibbles_32(wb.add(2)) }
    }
}

impl Legacy for Q4_1 {
    const W_BYTES: usize = 20;
    const X_BYTES: usize = 36;
    const X_QS: usize = 4;
    const OFFSET: i8 = 0;
    const SIGNED: bool = false;
    const HAS_MIN: bool = true;
    #[inline(always)]
    unsafe fn unpack(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe { bytes_from_nibbles_32(wb.add(4)) }
    }
}

impl Legacy for Q5_0 {
    const W_BYTES: usize = 22;
    const X_BYTES: usize = 34;
    const X_QS: usize = 2;
    const OFFSET: i8 = 16;
    const SIGNED: bool = false;
    const HAS_MIN: bool = false;
    #[inline(always)]
    unsafe fn unpack(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe {
            let high = _mm256_and_si256(bytes_from_bits_32(wb.add(2)), _mm256_set1_epi8(0x10));
            _mm256_or_si256(bytes_from_nibbles_32(wb.add(6)), high)
        }
    }
}

impl Legacy for Q5_1 {
    const W_BYTES: usize = 24;
    const X_BYTES: usize = 36;
    const X_QS: usize = 4;
    const OFFSET: i8 = 0;
    const SIGNED: bool = false;
    const HAS_MIN: bool = true;
    #[inline(always)]
    unsafe fn unpack(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe {
            let high = _mm256_and_si256(bytes_from_bits_32(wb.add(4)), _mm256_set1_epi8(0x10));
            _mm256_or_si256(bytes_from_nibbles_32(wb.add(8)), high)
        }
    }
}

impl Legacy for Q8_0 {
    const W_BYTES: usize = 34;
    const X_BYTES: usize = 34;
    const X_QS: usize = 2;
    const OFFSET: i8 = 0;
    const SIGNED: bool = true;
    const HAS_MIN: bool = false;
    #[inline(always)]
    unsafe fn unpack(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe { load256(wb.add(2)) }
    }
}

/// `out[r][t] = dot(w[r], x[t])` for a tile of a legacy format.
///
/// # Safety
/// AVX2, FMA and F16C (plus AVX512-VNNI/VL when `VNNI`); every `w[r]` readable for
/// `n / 32` weight blocks and every `x[t]` for `n / 32` activation blocks.
#[inline(always)]
pub(crate) unsafe fn legacy<F: Legacy, const VNNI: bool>(
    n: usize,
    w: [*const u8; TILE_ROWS],
    x: [*const u8; TILE_TOKENS],
) -> [[f32; TILE_TOKENS]; TILE_ROWS] {
    // SAFETY: block `i < n / 32` of every row lies inside its buffer (caller), and the
    // features are enabled by the caller's `target_feature`.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); TILE_TOKENS]; TILE_ROWS];
        let mut summs = [[0.0f32; TILE_TOKENS]; TILE_ROWS];
        let offset = _mm256_set1_epi8(F::OFFSET);
        for i in 0..n / 32 {
            let mut wq = [_mm256_setzero_si256(); TILE_ROWS];
            let mut dw = [_mm256_setzero_ps(); TILE_ROWS];
            let mut mw = [0.0f32; TILE_ROWS];
            for r in 0..TILE_ROWS {
                let wb = w[r].add(i * F::W_BYTES);
                wq[r] = F::unpack(wb);
                dw[r] = _mm256_set1_ps(load_f16(wb));
                if F::HAS_MIN {
                    mw[r] = load_f16(wb.add(2));
                }
            }
            for t in 0..TILE_TOKENS {
                let xb = x[t].add(i * F::X_BYTES);
                let xq = load256(xb.add(F::X_QS));
                let dx = _mm256_set1_ps(load_f16(xb));
                let correction = if F::OFFSET != 0 {
                    dot_u8i8::<VNNI>(offset, xq)
                } else {
                    _mm256_setzero_si256()
                };
                let sx = if F::HAS_MIN { load_f16(xb.add(2)) } else { 0.0 };
                for r in 0..TILE_ROWS {
                    let p = if F::SIGNED {
                        dot_i8i8::<VNNI>(wq[r], xq)
                    } else if F::OFFSET != 0 {
                        _mm256_sub_epi32(dot_u8i8::<VNNI>(wq[r], xq), correction)
                    } else {
                        dot_u8i8::<VNNI>(wq[r], xq)
                    };
                    acc[r][t] =
                        _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx), _mm256_cvtepi32_ps(p), acc[r][t]);
                    if F::HAS_MIN {
                        summs[r][t] += mw[r] * sx;
                    }
                }
            }
        }
        let mut out = [[0.0f32; TILE_TOKENS]; TILE_ROWS];
        for r in 0..TILE_ROWS {
            for t in 0..TILE_TOKENS {
                out[r][t] = hsum_ps(acc[r][t]) + summs[r][t];
            }
        }
        out
    }
}
