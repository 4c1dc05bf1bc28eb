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
/// F16C and AVX; both pointers readable for 2 bytes.
#[inline(always)]
unsafe fn scale(wb: *const u8, xb: *const u8) -> __m256 {
    // SAFETY: forwarded from the caller.
    unsafe { _mm256_set1_ps(load_f16(wb) * load_f16(xb)) }
}

/// Q4_0 × Q8_0.
///
/// # Safety
/// AVX2, FMA and F16C (plus AVX512-VNNI/VL when `VNNI`); `w` and `x` readable for
/// `n / 32` blocks each.
#[inline(always)]
pub(crate) unsafe fn q4_0_q8_0<const VNNI: bool>(n: usize, w: *const u8, x: *const u8) -> f32 {
    // SAFETY: block `i < n / 32` lies inside both buffers, as the caller guarantees,
    // and the features are enabled by the caller's `target_feature`.
    unsafe {
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q4_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            let qw = _mm256_sub_epi8(bytes_from_nibbles_32(wb.add(2)), _mm256_set1_epi8(8));
            (scale(wb, xb), dot_i8i8::<VNNI>(qw, load256(xb.add(2))))
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
        let mut summs = 0.0f32;
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q4_1_BYTES);
            let xb = x.add(i * Q8_1_BYTES);
            summs += load_f16(wb.add(2)) * load_f16(xb.add(2));
            let qw = bytes_from_nibbles_32(wb.add(4));
            (scale(wb, xb), dot_u8i8::<VNNI>(qw, load256(xb.add(4))))
        });
        hsum_ps(acc) + summs
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
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q5_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            // Values are `(nibble | fifth_bit << 4) - 16`: a clear fifth bit makes the
            // byte `nibble - 16`, that is `nibble | 0xF0` as i8.
            let high = _mm256_andnot_si256(
                bytes_from_bits_32(wb.add(2)),
                _mm256_set1_epi8(0xF0u8 as i8),
            );
            let qw = _mm256_or_si256(bytes_from_nibbles_32(wb.add(6)), high);
            (scale(wb, xb), dot_i8i8::<VNNI>(qw, load256(xb.add(2))))
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
        let mut summs = 0.0f32;
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q5_1_BYTES);
            let xb = x.add(i * Q8_1_BYTES);
            summs += load_f16(wb.add(2)) * load_f16(xb.add(2));
            let high = _mm256_and_si256(bytes_from_bits_32(wb.add(4)), _mm256_set1_epi8(0x10));
            let qw = _mm256_or_si256(bytes_from_nibbles_32(wb.add(8)), high);
            (scale(wb, xb), dot_u8i8::<VNNI>(qw, load256(xb.add(4))))
        });
        hsum_ps(acc) + summs
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
        let acc = accumulate!(n / 32, |i| {
            let wb = w.add(i * Q8_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            (
                scale(wb, xb),
                dot_i8i8::<VNNI>(load256(wb.add(2)), load256(xb.add(2))),
            )
        });
        hsum_ps(acc)
    }
}
