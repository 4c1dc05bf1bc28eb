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
    /// AVX2 (and AVX-512 BW with VL when `AVX512`); `wb` readable for one block.
    unsafe fn unpack<const AVX512: bool>(wb: *const u8) -> __m256i;
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
    unsafe fn unpack<const AVX512: bool>(wb: *const u8) -> __m256i {
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
    unsafe fn unpack<const AVX512: bool>(wb: *const u8) -> __m256i {
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
    unsafe fn unpack<const AVX512: bool>(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe {
            let high = select_by_bits::<AVX512>(wb.add(2), true, _mm256_set1_epi8(0x10));
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
    unsafe fn unpack<const AVX512: bool>(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe {
            let high = select_by_bits::<AVX512>(wb.add(4), true, _mm256_set1_epi8(0x10));
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
    unsafe fn unpack<const AVX512: bool>(wb: *const u8) -> __m256i {
        // SAFETY: forwarded from the caller.
        unsafe { load256(wb.add(2)) }
    }
}

/// The f16 bits at `p`.
///
/// # Safety
/// `p` readable for 2 bytes.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> i16 {
    // SAFETY: forwarded from the caller.
    unsafe { p.cast::<i16>().read_unaligned() }
}

/// Lane `k` of `v` in every lane.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn lane(v: __m256, k: i32) -> __m256 {
    // SAFETY: forwarded from the caller; registers only.
    unsafe { _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(k)) }
}

/// `out[r][t] = dot(w[r], x[t])` for a tile of a legacy format.
///
/// # Safety
/// AVX2, FMA and F16C (plus AVX-512 BW, VL and VNNI when `VNNI`); every `w[r]` readable for
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
        // Lane t: the sum over blocks of m[r] * s[t].
        let mut summs = [_mm_setzero_ps(); TILE_ROWS];
        let offset = _mm256_set1_epi8(F::OFFSET);
        for i in 0..n / 32 {
            let wb = [w[0].add(i * F::W_BYTES), w[1].add(i * F::W_BYTES)];
            let xb = [
                x[0].add(i * F::X_BYTES),
                x[1].add(i * F::X_BYTES),
                x[2].add(i * F::X_BYTES),
                x[3].add(i * F::X_BYTES),
            ];
            // Every f16 scale of the tile's blocks widened in one go:
            // [d(w0), d(w1), m(w0), m(w1), d(x0) .. d(x3)] and [s(x0) .. s(x3)].
            let (m0, m1, s) = if F::HAS_MIN {
                (f16_at(wb[0].add(2)), f16_at(wb[1].add(2)), [0i16; 4])
            } else {
                (0, 0, [0i16; 4])
            };
            let scales = _mm256_cvtph_ps(_mm_setr_epi16(
                f16_at(wb[0]),
                f16_at(wb[1]),
                m0,
                m1,
                f16_at(xb[0]),
                f16_at(xb[1]),
                f16_at(xb[2]),
                f16_at(xb[3]),
            ));
            let sx = if F::HAS_MIN {
                _mm_cvtph_ps(_mm_setr_epi16(
                    f16_at(xb[0].add(2)),
                    f16_at(xb[1].add(2)),
                    f16_at(xb[2].add(2)),
                    f16_at(xb[3].add(2)),
                    s[0],
                    s[1],
                    s[2],
                    s[3],
                ))
            } else {
                _mm_setzero_ps()
            };
            let wq = [F::unpack::<VNNI>(wb[0]), F::unpack::<VNNI>(wb[1])];
            let dw = [lane(scales, 0), lane(scales, 1)];
            if F::HAS_MIN {
                summs[0] = _mm_fmadd_ps(_mm256_castps256_ps128(lane(scales, 2)), sx, summs[0]);
                summs[1] = _mm_fmadd_ps(_mm256_castps256_ps128(lane(scales, 3)), sx, summs[1]);
            }
            for t in 0..TILE_TOKENS {
                let xq = load256(xb[t].add(F::X_QS));
                let dx = lane(scales, 4 + t as i32);
                let correction = if F::OFFSET != 0 {
                    dot_u8i8::<VNNI>(offset, xq)
                } else {
                    _mm256_setzero_si256()
                };
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
                }
            }
        }
        let mut out = [[0.0f32; TILE_TOKENS]; TILE_ROWS];
        for r in 0..TILE_ROWS {
            let mut ms = [0.0f32; TILE_TOKENS];
            _mm_storeu_ps(ms.as_mut_ptr(), summs[r]);
            for t in 0..TILE_TOKENS {
                out[r][t] = hsum_ps(acc[r][t]) + ms[t];
            }
        }
        out
    }
}
