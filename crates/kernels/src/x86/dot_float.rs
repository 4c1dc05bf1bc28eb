//! Dot products of F32 and F16 rows, after ggml's `ggml_vec_dot_f32` and
//! `ggml_vec_dot_f16`: several independent fused multiply-add accumulators, products
//! in f32 (F16 values are widened with F16C, exactly). Any `n` is allowed; the tail
//! that does not fill a vector is summed with masks (AVX-512) or one by one (AVX2).

use core::arch::x86_64::*;

use super::common::*;

/// F32 × F32 with 256-bit vectors.
///
/// # Safety
/// AVX2 and FMA; `w` and `x` readable for `n` f32 each (as bytes, unaligned).
#[inline(always)]
pub(crate) unsafe fn f32_f32_avx2(n: usize, w: *const u8, x: *const u8) -> f32 {
    let w = w.cast::<f32>();
    let x = x.cast::<f32>();
    // SAFETY: every read is at an index below `n` (caller's guarantee); features are
    // enabled by the caller's `target_feature`.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let o = i + 8 * k;
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(o)), _mm256_loadu_ps(x.add(o)), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(i)), _mm256_loadu_ps(x.add(i)), acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum_ps(sum);
        while i < n {
            total += w.add(i).read_unaligned() * x.add(i).read_unaligned();
            i += 1;
        }
        total
    }
}

/// Widens 8 f16 at `p` to f32.
///
/// # Safety
/// F16C; `p` readable for 16 bytes.
#[inline(always)]
unsafe fn load8_f16(p: *const u16) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes and F16C.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

/// F16 × F16 with 256-bit vectors.
///
/// # Safety
/// AVX2, FMA and F16C; `w` and `x` readable for `n` f16 each.
#[inline(always)]
pub(crate) unsafe fn f16_f16_avx2(n: usize, w: *const u8, x: *const u8) -> f32 {
    let w = w.cast::<u16>();
    let x = x.cast::<u16>();
    // SAFETY: as in `f32_f32_avx2`.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let o = i + 8 * k;
                *a = _mm256_fmadd_ps(load8_f16(w.add(o)), load8_f16(x.add(o)), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(load8_f16(w.add(i)), load8_f16(x.add(i)), acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum_ps(sum);
        while i < n {
            total += load_f16(w.add(i).cast()) * load_f16(x.add(i).cast());
            i += 1;
        }
        total
    }
}

/// F32 × F32 with 512-bit vectors.
///
/// # Safety
/// AVX-512F; `w` and `x` readable for `n` f32 each.
#[inline(always)]
pub(crate) unsafe fn f32_f32_avx512(n: usize, w: *const u8, x: *const u8) -> f32 {
    let w = w.cast::<f32>();
    let x = x.cast::<f32>();
    // SAFETY: full loads stay below `n`; the tail load is masked to the lanes below
    // `n`, and masked-off lanes are not read. Features come from the caller.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let o = i + 16 * k;
                *a = _mm512_fmadd_ps(_mm512_loadu_ps(w.add(o)), _mm512_loadu_ps(x.add(o)), *a);
            }
            i += 64;
        }
        while i < n {
            let left = n - i;
            let mask: __mmask16 = if left >= 16 {
                0xFFFF
            } else {
                (1u16 << left) - 1
            };
            let a = _mm512_maskz_loadu_ps(mask, w.add(i));
            let b = _mm512_maskz_loadu_ps(mask, x.add(i));
            acc[0] = _mm512_fmadd_ps(a, b, acc[0]);
            i += 16;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }
}

/// F16 × F16 with 512-bit vectors.
///
/// # Safety
/// AVX-512F and AVX-512BW; `w` and `x` readable for `n` f16 each.
#[inline(always)]
pub(crate) unsafe fn f16_f16_avx512(n: usize, w: *const u8, x: *const u8) -> f32 {
    let w = w.cast::<u16>();
    let x = x.cast::<u16>();
    // SAFETY: as in `f32_f32_avx512`.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let o = i + 16 * k;
                let a16 = _mm512_cvtph_ps(_mm256_loadu_si256(w.add(o).cast()));
                let b16 = _mm512_cvtph_ps(_mm256_loadu_si256(x.add(o).cast()));
                *a = _mm512_fmadd_ps(a16, b16, *a);
            }
            i += 64;
        }
        while i < n {
            let left = n - i;
            let mask: __mmask16 = if left >= 16 {
                0xFFFF
            } else {
                (1u16 << left) - 1
            };
            let a = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w.add(i).cast()));
            let b = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, x.add(i).cast()));
            acc[0] = _mm512_fmadd_ps(a, b, acc[0]);
            i += 16;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }
}
