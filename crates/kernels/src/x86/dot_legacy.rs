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

const Q4_0_BYTES: usize = 18;
const Q4_1_BYTES: usize = 20;
const Q5_0_BYTES: usize = 22;
const Q5_1_BYTES: usize = 24;
const Q8_0_BYTES: usize = 34;
const Q8_1_BYTES: usize = 36;

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
        let mut acc = _mm256_setzero_ps();
        for i in 0..n / 32 {
            let wb = w.add(i * Q4_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            let d = _mm256_set1_ps(load_f16(wb) * load_f16(xb));
            let qw = _mm256_sub_epi8(bytes_from_nibbles_32(wb.add(2)), _mm256_set1_epi8(8));
            let qx = load256(xb.add(2));
            let p = dot_i8i8::<VNNI>(qw, qx);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        }
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
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0.0f32;
        for i in 0..n / 32 {
            let wb = w.add(i * Q4_1_BYTES);
            let xb = x.add(i * Q8_1_BYTES);
            summs += load_f16(wb.add(2)) * load_f16(xb.add(2));
            let d = _mm256_set1_ps(load_f16(wb) * load_f16(xb));
            let qw = bytes_from_nibbles_32(wb.add(4));
            let qx = load256(xb.add(4));
            let p = dot_u8i8::<VNNI>(qw, qx);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        }
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
        let mut acc = _mm256_setzero_ps();
        for i in 0..n / 32 {
            let wb = w.add(i * Q5_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            let d = _mm256_set1_ps(load_f16(wb) * load_f16(xb));
            // Values are `(nibble | fifth_bit << 4) - 16`: a clear fifth bit makes the
            // byte `nibble - 16`, that is `nibble | 0xF0` as i8.
            let high = _mm256_andnot_si256(
                bytes_from_bits_32(wb.add(2)),
                _mm256_set1_epi8(0xF0u8 as i8),
            );
            let qw = _mm256_or_si256(bytes_from_nibbles_32(wb.add(6)), high);
            let qx = load256(xb.add(2));
            let p = dot_i8i8::<VNNI>(qw, qx);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        }
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
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0.0f32;
        for i in 0..n / 32 {
            let wb = w.add(i * Q5_1_BYTES);
            let xb = x.add(i * Q8_1_BYTES);
            summs += load_f16(wb.add(2)) * load_f16(xb.add(2));
            let d = _mm256_set1_ps(load_f16(wb) * load_f16(xb));
            let high = _mm256_and_si256(bytes_from_bits_32(wb.add(4)), _mm256_set1_epi8(0x10));
            let qw = _mm256_or_si256(bytes_from_nibbles_32(wb.add(8)), high);
            let qx = load256(xb.add(4));
            let p = dot_u8i8::<VNNI>(qw, qx);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        }
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
        let mut acc = _mm256_setzero_ps();
        for i in 0..n / 32 {
            let wb = w.add(i * Q8_0_BYTES);
            let xb = x.add(i * Q8_0_BYTES);
            let d = _mm256_set1_ps(load_f16(wb) * load_f16(xb));
            let p = dot_i8i8::<VNNI>(load256(wb.add(2)), load256(xb.add(2)));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
        }
        hsum_ps(acc)
    }
}
