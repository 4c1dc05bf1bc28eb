//! Dot products of the 32-value formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) with Q8_0 or
//! Q8_1 activations, after ggml's AVX2 `ggml_vec_dot_q*_q8_*`: each block's integer
//! dot product is exact; the f32 accumulation order is ggml's x86 one (8 lanes, fused
//! multiply-add per block), so results differ from the scalar reference only by float
//! rounding.
//!
//! Every kernel takes `n` values (a multiple of 32), `w` pointing at `n / 32` weight
//! blocks and `x` at `n / 32` activation blocks; the caller checks the lengths.

use core::arch::x86_64::*;

use super::common::*;

/// Runs `$block` (an expression of `$i` giving the block's scale and integer lane
/// sums) over `$n_blocks` blocks, two at a time into two accumulators so consecutive
/// blocks' multiply-adds do not wait on each other. A macro rather than a function
/// taking a closure: closures do not inherit the kernel's `target_feature`s.
macro_rules! accumulate {
    ($n_blocks:expr, |$i:ident| $block:expr) => {{
        let n_blocks = $n_blocks;
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut k = 0;
        while k + 2 <= n_blocks {
            let (d0, p0) = {
                let $i = k;
                $block
            };
            let (d1, p1) = {
                let $i = k + 1;
                $block
            };
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
            acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(p1), acc1);
            k += 2;
        }
        if k < n_blocks {
            let (d0, p0) = {
                let $i = k;
                $block
            };
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
        }
        _mm256_add_ps(acc0, acc1)
    }};
}

/// Like [`accumulate!`] for the formats whose weight and activation blocks both start
/// with their f16 scale: `$block` gives only the integer lane sums of block `$i`. The
/// scales are widened eight blocks at a time ([`scales8`]) instead of one by one, which
/// took a third of the loop.
macro_rules! accumulate_scaled {
    ($n_blocks:expr, ($w:expr, $w_bytes:expr), ($x:expr, $x_bytes:expr), |$i:ident| $block:expr) => {{
        let n_blocks = $n_blocks;
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut k = 0;
        while k + 8 <= n_blocks {
            let d = _mm256_mul_ps(
                scales8($w.add(k * $w_bytes), $w_bytes),
                scales8($x.add(k * $x_bytes), $x_bytes),
            );
            for b in (0..8).step_by(2) {
                let p0 = {
                    let $i = k + b;
                    $block
                };
                let p1 = {
                    let $i = k + b + 1;
                    $block
                };
                let d0 = _mm256_permutevar8x32_ps(d, _mm256_set1_epi32(b as i32));
                let d1 = _mm256_permutevar8x32_ps(d, _mm256_set1_epi32(b as i32 + 1));
                acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
                acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(p1), acc1);
            }
            k += 8;
        }
        while k < n_blocks {
            let p0 = {
                let $i = k;
                $block
            };
            let d0 = scale($w.add(k * $w_bytes), $x.add(k * $x_bytes));
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
            k += 1;
        }
        _mm256_add_ps(acc0, acc1)
    }};
}

/// The f16 scales at the starts of the 8 blocks of `stride` bytes from `p`, widened.
/// One gather of the 4 bytes at each block start (the scale and the block's next 2
/// bytes), then the low halves packed and widened together.
///
/// # Safety
/// AVX2 and F16C; `p` readable for 8 blocks of `stride >= 4` bytes.
#[inline(always)]
unsafe fn scales8(p: *const u8, stride: usize) -> __m256 {
    let s = stride as i32;
    // SAFETY: every gathered address is a block start inside the range the caller
    // guarantees, with at least 4 bytes of its block after it.
    unsafe {
        let offsets = _mm256_setr_epi32(0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s);
        let words = _mm256_i32gather_epi32::<1>(p.cast(), offsets);
        // Low 16 bits of each 32-bit lane into the low 8 bytes of each 128-bit half...
        let low_halves = _mm256_shuffle_epi8(
            words,
            _mm256_setr_epi8(
                0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9, 12, 13,
                -1, -1, -1, -1, -1, -1, -1, -1,
            ),
        );
        // ...and both halves' low 8 bytes together.
        let packed = _mm256_permute4x64_epi64::<0b00_00_10_00>(low_halves);
        _mm256_cvtph_ps(_mm256_castsi256_si128(packed))
    }
}

const Q4_0_BYTES: usize = 18;
const Q4_1_BYTES: usize = 20;
const Q5_0_BYTES: usize = 22;
const Q5_1_BYTES: usize = 24;
const Q8_0_BYTES: usize = 34;
const Q8_1_BYTES: usize = 36;

/// The combined scale of weight block `wb` and activation block `xb` (f16 scales at
/// their starts), broadcast.
///
/// # Safety
/// AVX; both pointers readable for 2 bytes.
#[inline(always)]
unsafe fn scale(wb: *const u8, xb: *const u8) -> __m256 {
    // SAFETY: forwarded from the caller.
    unsafe { _mm256_set1_ps(load_f16(wb) * load_f16(xb)) }
}

/// For the formats with a min: the f16 pairs `[d, m]` of the weight block and
/// `[d, s]` of the Q8_1 block widened together and multiplied; returns the combined
/// scale broadcast and the products `[d * d, m * s, 0, 0]`.
///
/// # Safety
/// AVX; both pointers readable for 2 bytes.
#[inline(always)]
unsafe fn scale_and_min(wb: *const u8, xb: *const u8) -> (__m256, __m128) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let w_dm = _mm_cvtph_ps(_mm_cvtsi32_si128(wb.cast::<i32>().read_unaligned()));
        let x_ds = _mm_cvtph_ps(_mm_cvtsi32_si128(xb.cast::<i32>().read_unaligned()));
        let prod = _mm_mul_ps(w_dm, x_ds);
        (_mm256_broadcastss_ps(prod), prod)
    }
}

/// Q4_0 × Q8_0.
///
/// # Safety
/// AVX2, FMA and F16C (plus AVX-512 BW, VL and VNNI when `VNNI`); `w` and `x` readable for
/// `n / 32` blocks each.
#[inline(always)]
pub(crate) unsafe fn q4_0_q8_0<const VNNI: bool>(n: usize, w: *const u8, x: *const u8) -> f32 {
    // SAFETY: block `i < n / 32` lies inside both buffers, as the caller guarantees,
    // and the features are enabled by the caller's `target_feature`.
    unsafe {
        let acc = accumulate_scaled!(n / 32, (w, Q4_0_BYTES), (x, Q8_0_BYTES), |i| {
            let wb = w.add(i * Q4_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            let qw = _mm256_sub_epi8(bytes_from_nibbles_32(wb.add(2)), _mm256_set1_epi8(8));
            dot_i8i8::<VNNI>(qw, load256(xb.add(2)))
        });
        hsum_ps(acc)
    }
}

/// Q4_1 × Q8_1.
///
/// # Safety
/// As for [`q4_0_q8_0`].
#[inline(always)]
pub(crate) unsafe fn q4_1_q8_1<const VNNI: bool>(n: usize, w: *const u8, x: *const u8) -> f32 {
    // SAFETY: as in `q4_0_q8_0`.
    unsafe {
        let mut summs = _mm_setzero_ps();
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q4_1_BYTES);
            let xb = x.add(i * Q8_1_BYTES);
            let (d, prod) = scale_and_min(wb, xb);
            summs = _mm_add_ps(summs, prod);
            let qw = bytes_from_nibbles_32(wb.add(4));
            (d, dot_u8i8::<VNNI>(qw, load256(xb.add(4))))
        });
        hsum_ps(acc) + _mm_cvtss_f32(_mm_movehdup_ps(summs))
    }
}

/// Q5_0 × Q8_0.
///
/// # Safety
/// As for [`q4_0_q8_0`].
#[inline(always)]
pub(crate) unsafe fn q5_0_q8_0<const VNNI: bool>(n: usize, w: *const u8, x: *const u8) -> f32 {
    // SAFETY: as in `q4_0_q8_0`.
    unsafe {
        let acc = accumulate_scaled!(n / 32, (w, Q5_0_BYTES), (x, Q8_0_BYTES), |i| {
            let wb = w.add(i * Q5_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            // Values are `(nibble | fifth_bit << 4) - 16`: a clear fifth bit makes the
            // byte `nibble - 16`, that is `nibble | 0xF0` as i8.
            let high = select_by_bits::<VNNI>(wb.add(2), false, _mm256_set1_epi8(0xF0u8 as i8));
            let qw = _mm256_or_si256(bytes_from_nibbles_32(wb.add(6)), high);
            dot_i8i8::<VNNI>(qw, load256(xb.add(2)))
        });
        hsum_ps(acc)
    }
}

/// Q5_1 × Q8_1.
///
/// # Safety
/// As for [`q4_0_q8_0`].
#[inline(always)]
pub(crate) unsafe fn q5_1_q8_1<const VNNI: bool>(n: usize, w: *const u8, x: *const u8) -> f32 {
    // SAFETY: as in `q4_0_q8_0`.
    unsafe {
        let mut summs = _mm_setzero_ps();
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q5_1_BYTES);
            let xb = x.add(i * Q8_1_BYTES);
            let (d, prod) = scale_and_min(wb, xb);
            summs = _mm_add_ps(summs, prod);
            let high = select_by_bits::<VNNI>(wb.add(4), true, _mm256_set1_epi8(0x10));
            let qw = _mm256_or_si256(bytes_from_nibbles_32(wb.add(8)), high);
            (d, dot_u8i8::<VNNI>(qw, load256(xb.add(4))))
        });
        hsum_ps(acc) + _mm_cvtss_f32(_mm_movehdup_ps(summs))
    }
}

/// Q8_0 × Q8_0.
///
/// # Safety
/// As for [`q4_0_q8_0`].
#[inline(always)]
pub(crate) unsafe fn q8_0_q8_0<const VNNI: bool>(n: usize, w: *const u8, x: *const u8) -> f32 {
    // SAFETY: as in `q4_0_q8_0`.
    unsafe {
        let acc = accumulate_scaled!(n / 32, (w, Q8_0_BYTES), (x, Q8_0_BYTES), |i| {
            let wb = w.add(i * Q8_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            dot_i8i8::<VNNI>(load256(wb.add(2)), load256(xb.add(2)))
        });
        hsum_ps(acc)
    }
}
