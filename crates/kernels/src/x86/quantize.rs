//! Activation quantization: f32 rows to Q8_0, Q8_1, Q8_K and F16.
//!
//! Q8_0 and Q8_1 follow ggml's x86 `quantize_row_q8_0`/`quantize_row_q8_1`, which
//! llama.cpp runs on every x86 machine with AVX, not the portable `*_ref` code:
//! the inverse scale is `127 / amax` (not `1 / (amax / 127)`) and values round half to
//! even (`_mm256_round_ps` with `_MM_ROUND_NEAREST`), where the reference rounds half
//! away from zero. The two differ by one step on a few values per row; matching the x86
//! path keeps our integers equal to llama.cpp's. Q8_K follows `quantize_row_q8_K_ref`,
//! which ggml also uses on x86, and gives identical bytes.

use core::arch::x86_64::*;

use super::common::*;

/// Rounds 32 f32 at `src` (times `id`) half to even and packs them into 32 i8 at `dst`.
/// Returns the 4 i32 vectors before packing, for sums.
///
/// # Safety
/// AVX2; `src` readable for 32 f32, `dst` writable for 32 bytes.
#[inline(always)]
unsafe fn round_pack_32(src: *const f32, mul: __m256, dst: *mut u8) -> [__m256i; 4] {
    // SAFETY: the caller guarantees the ranges and AVX2.
    unsafe {
        let mut v = [_mm256_setzero_si256(); 4];
        for (k, vk) in v.iter_mut().enumerate() {
            let f = _mm256_mul_ps(_mm256_loadu_ps(src.add(8 * k)), mul);
            let f = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(f);
            *vk = _mm256_cvtps_epi32(f);
        }
        let a = _mm256_packs_epi32(v[0], v[1]);
        let b = _mm256_packs_epi32(v[2], v[3]);
        let packed = _mm256_packs_epi16(a, b);
        // The packs work within 128-bit halves; this restores the element order.
        let packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(dst.cast(), packed);
        v
    }
}

/// Largest absolute value of 32 f32 at `src`.
///
/// # Safety
/// AVX; `src` readable for 32 f32.
#[inline(always)]
unsafe fn amax_32(src: *const f32) -> f32 {
    // SAFETY: the caller guarantees the range and AVX.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_andnot_ps(sign, _mm256_loadu_ps(src));
        for k in 1..4 {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(src.add(8 * k))));
        }
        let m4 = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
        let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        _mm_cvtss_f32(m4)
    }
}

/// Quantizes `n` f32 (a multiple of 32) to Q8_0 (`SUM = false`) or Q8_1 (`SUM = true`).
///
/// # Safety
/// AVX2 and F16C; `src` readable for `n` f32, `dst` writable for `n / 32` blocks.
#[inline(always)]
pub(crate) unsafe fn q8_0<const SUM: bool>(n: usize, src: *const f32, dst: *mut u8) {
    let block_bytes = if SUM { 36 } else { 34 };
    let qs_offset = if SUM { 4 } else { 2 };
    // SAFETY: block `i < n / 32` is inside both buffers (caller's guarantee).
    unsafe {
        for i in 0..n / 32 {
            let x = src.add(32 * i);
            let y = dst.add(block_bytes * i);
            let amax = amax_32(x);
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            y.cast::<u16>().write_unaligned(f32_to_f16_bits(d));
            let v = round_pack_32(x, _mm256_set1_ps(id), y.add(qs_offset));
            if SUM {
                let s =
                    _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
                let s = hsum_i32(s) as f32;
                y.add(2)
                    .cast::<u16>()
                    .write_unaligned(f32_to_f16_bits(d * s));
            }
        }
    }
}

/// Quantizes `n` f32 (a multiple of 256) to Q8_K exactly as `quantize_row_q8_K_ref`:
/// scale `-127 / max` where `max` is the first value of largest magnitude, values
/// rounded half to even and capped at 127, `bsums` the sums of each 16 quants. An
/// all-zero block gets a zero scale, zero quants and zero sums.
///
/// # Safety
/// AVX2; `src` readable for `n` f32, `dst` writable for `n / 256` blocks.
#[inline(always)]
pub(crate) unsafe fn q8_k(n: usize, src: *const f32, dst: *mut u8) {
    // SAFETY: block `i < n / 256` is inside both buffers (caller's guarantee).
    unsafe {
        for i in 0..n / 256 {
            let x = src.add(256 * i);
            let y = dst.add(292 * i);
            let mut amax = 0.0f32;
            for k in 0..8 {
                amax = amax.max(amax_32(x.add(32 * k)));
            }
            if amax == 0.0 {
                core::ptr::write_bytes(y, 0, 292);
                continue;
            }
            let max = first_of_magnitude(x, amax);
            let iscale = -127.0 / max;
            let mul = _mm256_set1_ps(iscale);
            let cap = _mm256_set1_epi32(127);
            let qs = y.add(4);
            let offset = _mm256_set1_epi8(-128);
            for k in 0..8 {
                let xk = x.add(32 * k);
                let mut v = [_mm256_setzero_si256(); 4];
                for (l, vl) in v.iter_mut().enumerate() {
                    // `_mm256_cvtps_epi32` rounds half to even under the default
                    // rounding mode, as ggml's `nearest_int` does.
                    let f = _mm256_mul_ps(_mm256_loadu_ps(xk.add(8 * l)), mul);
                    *vl = _mm256_min_epi32(_mm256_cvtps_epi32(f), cap);
                }
                let a = _mm256_packs_epi32(v[0], v[1]);
                let b = _mm256_packs_epi32(v[2], v[3]);
                let packed = _mm256_packs_epi16(a, b);
                let packed =
                    _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256(qs.add(32 * k).cast(), packed);
                // Sums of 8 bytes via SAD on the bytes shifted to unsigned.
                let sad = _mm256_sad_epu8(_mm256_xor_si256(packed, offset), _mm256_setzero_si256());
                let mut lanes = [0i64; 4];
                _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sad);
                let bsum_lo = (lanes[0] + lanes[1] - 16 * 128) as i16;
                let bsum_hi = (lanes[2] + lanes[3] - 16 * 128) as i16;
                let bsums = y.add(260).cast::<i16>();
                bsums.add(2 * k).write_unaligned(bsum_lo);
                bsums.add(2 * k + 1).write_unaligned(bsum_hi);
            }
            y.cast::<f32>().write_unaligned(1.0 / iscale);
        }
    }
}

/// The first of 256 values at `x` whose magnitude equals `amax` (present by
/// construction of `amax`).
///
/// # Safety
/// AVX; `x` readable for 256 f32.
#[inline(always)]
unsafe fn first_of_magnitude(x: *const f32, amax: f32) -> f32 {
    // SAFETY: the caller guarantees 256 readable f32 and AVX.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let target = _mm256_set1_ps(amax);
        for k in 0..32 {
            let v = _mm256_loadu_ps(x.add(8 * k));
            let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_andnot_ps(sign, v), target);
            let mask = _mm256_movemask_ps(eq);
            if mask != 0 {
                return x.add(8 * k + mask.trailing_zeros() as usize).read();
            }
        }
        amax
    }
}

/// Converts `n` f32 to f16 with round-to-nearest-even.
///
/// # Safety
/// AVX and F16C; `src` readable for `n` f32, `dst` writable for `2 * n` bytes.
#[inline(always)]
pub(crate) unsafe fn f16(n: usize, src: *const f32, dst: *mut u8) {
    // SAFETY: every index is below `n` (caller's guarantee).
    unsafe {
        let mut i = 0;
        while i + 8 <= n {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.add(i)));
            _mm_storeu_si128(dst.add(2 * i).cast(), h);
            i += 8;
        }
        while i < n {
            dst.add(2 * i)
                .cast::<u16>()
                .write_unaligned(f32_to_f16_bits(src.add(i).read_unaligned()));
            i += 1;
        }
    }
}
