//! Tiles of K-quant dot products for prefill: one weight row × [`TILE_TOKENS`] tokens,
//! the row's super-blocks unpacked (quants and scales) once for all the tokens.
//! Integer sums equal the one-pair kernels'; f32 accumulation order differs.

use core::arch::x86_64::*;

use super::common::*;
use super::dot_k::{scale_shuffle, unpack_scales_mins, Q8_K_BSUMS, Q8_K_BYTES, Q8_K_QS};
use super::tile::{TILE_ROWS, TILE_TOKENS};

// The row tiles below spell out their two rows (closures would not inherit the
// kernels' target features).
const _: () = assert!(TILE_ROWS == 2);

/// One Q4_K row against [`TILE_TOKENS`] Q8_K rows.
///
/// # Safety
/// AVX2, FMA and F16C; `w` readable for `n / 256` Q4_K blocks, every `x[t]` for
/// `n / 256` Q8_K blocks.
#[inline(always)]
pub(crate) unsafe fn q4_k_row(
    n: usize,
    w: *const u8,
    x: [*const u8; TILE_TOKENS],
) -> [f32; TILE_TOKENS] {
    const BYTES: usize = 144;
    // SAFETY: block `i < n / 256` lies inside every buffer (caller); features come
    // from the caller's `target_feature`; offsets stay inside one block.
    unsafe {
        let low_mask = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); TILE_TOKENS];
        let mut acc_m = [0.0f32; TILE_TOKENS];
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let d = load_f16(wb);
            let dmin = load_f16(wb.add(2));
            let u = unpack_scales_mins(wb.add(4));
            let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
                u[3] as i32,
                u[2] as i32,
                u[1] as i32,
                u[0] as i32,
            ));
            let mins = _mm256_extracti128_si256::<1>(mins_and_scales);
            let sc128 = _mm256_castsi256_si128(mins_and_scales);
            let scales = _mm256_set_m128i(sc128, sc128);
            let mut yd = [0.0f32; TILE_TOKENS];
            for t in 0..TILE_TOKENS {
                let xb = x[t].add(i * Q8_K_BYTES);
                yd[t] = load_f32(xb);
                let q8sums = load256(xb.add(Q8_K_BSUMS));
                let q8s = _mm_hadd_epi16(
                    _mm256_castsi256_si128(q8sums),
                    _mm256_extracti128_si256::<1>(q8sums),
                );
                let prod = hsum_i32_128(_mm_madd_epi16(mins, q8s));
                acc_m[t] -= yd[t] * dmin * prod as f32;
            }
            let mut sumi = [_mm256_setzero_si256(); TILE_TOKENS];
            for j in 0..4 {
                let scale_l = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j, 2 * j));
                let scale_h = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j + 1, 2 * j + 1));
                let bits = load256(wb.add(16 + 32 * j));
                let q4l = _mm256_and_si256(bits, low_mask);
                let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low_mask);
                for t in 0..TILE_TOKENS {
                    let q8 = x[t].add(i * Q8_K_BYTES + Q8_K_QS + 64 * j);
                    let pl = _mm256_maddubs_epi16(q4l, load256(q8));
                    let ph = _mm256_maddubs_epi16(q4h, load256(q8.add(32)));
                    sumi[t] = _mm256_add_epi32(
                        sumi[t],
                        _mm256_add_epi32(
                            _mm256_madd_epi16(scale_l, pl),
                            _mm256_madd_epi16(scale_h, ph),
                        ),
                    );
                }
            }
            for t in 0..TILE_TOKENS {
                acc[t] = _mm256_fmadd_ps(
                    _mm256_set1_ps(d * yd[t]),
                    _mm256_cvtepi32_ps(sumi[t]),
                    acc[t],
                );
            }
        }
        let mut out = [0.0f32; TILE_TOKENS];
        for t in 0..TILE_TOKENS {
            out[t] = hsum_ps(acc[t]) + acc_m[t];
        }
        out
    }
}

/// One Q5_K row against [`TILE_TOKENS`] Q8_K rows.
///
/// # Safety
/// As for [`q4_k_row`], with Q5_K weight blocks.
#[inline(always)]
pub(crate) unsafe fn q5_k_row(
    n: usize,
    w: *const u8,
    x: [*const u8; TILE_TOKENS],
) -> [f32; TILE_TOKENS] {
    const BYTES: usize = 176;
    // SAFETY: as in `q4_k_row`.
    unsafe {
        let low_mask = _mm256_set1_epi8(0x0F);
        let sixteen = _mm256_set1_epi8(16);
        let mut acc = [_mm256_setzero_ps(); TILE_TOKENS];
        let mut acc_m = [0.0f32; TILE_TOKENS];
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let d = load_f16(wb);
            let dmin = load_f16(wb.add(2));
            let u = unpack_scales_mins(wb.add(4));
            let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
                u[3] as i32,
                u[2] as i32,
                u[1] as i32,
                u[0] as i32,
            ));
            let mins = _mm256_extracti128_si256::<1>(mins_and_scales);
            let sc128 = _mm256_castsi256_si128(mins_and_scales);
            let scales = _mm256_set_m128i(sc128, sc128);
            let mut yd = [0.0f32; TILE_TOKENS];
            for t in 0..TILE_TOKENS {
                let xb = x[t].add(i * Q8_K_BYTES);
                yd[t] = load_f32(xb);
                let q8sums = load256(xb.add(Q8_K_BSUMS));
                let q8s = _mm_hadd_epi16(
                    _mm256_castsi256_si128(q8sums),
                    _mm256_extracti128_si256::<1>(q8sums),
                );
                let prod = hsum_i32_128(_mm_madd_epi16(mins, q8s));
                acc_m[t] -= yd[t] * dmin * prod as f32;
            }
            let hbits = load256(wb.add(16));
            let mut hmask = _mm256_set1_epi8(1);
            let mut sumi = [_mm256_setzero_si256(); TILE_TOKENS];
            for j in 0..4 {
                let scale_0 = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j, 2 * j));
                let scale_1 = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j + 1, 2 * j + 1));
                let bits = load256(wb.add(48 + 32 * j));
                let h0 = _mm256_cmpeq_epi8(_mm256_and_si256(hbits, hmask), hmask);
                hmask = _mm256_add_epi8(hmask, hmask);
                let h1 = _mm256_cmpeq_epi8(_mm256_and_si256(hbits, hmask), hmask);
                hmask = _mm256_add_epi8(hmask, hmask);
                let q5_0 = _mm256_or_si256(
                    _mm256_and_si256(bits, low_mask),
                    _mm256_and_si256(h0, sixteen),
                );
                let q5_1 = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low_mask),
                    _mm256_and_si256(h1, sixteen),
                );
                for t in 0..TILE_TOKENS {
                    let q8 = x[t].add(i * Q8_K_BYTES + Q8_K_QS + 64 * j);
                    let p0 = _mm256_maddubs_epi16(q5_0, load256(q8));
                    let p1 = _mm256_maddubs_epi16(q5_1, load256(q8.add(32)));
                    sumi[t] = _mm256_add_epi32(
                        sumi[t],
                        _mm256_add_epi32(
                            _mm256_madd_epi16(scale_0, p0),
                            _mm256_madd_epi16(scale_1, p1),
                        ),
                    );
                }
            }
            for t in 0..TILE_TOKENS {
                acc[t] = _mm256_fmadd_ps(
                    _mm256_set1_ps(d * yd[t]),
                    _mm256_cvtepi32_ps(sumi[t]),
                    acc[t],
                );
            }
        }
        let mut out = [0.0f32; TILE_TOKENS];
        for t in 0..TILE_TOKENS {
            out[t] = hsum_ps(acc[t]) + acc_m[t];
        }
        out
    }
}

/// One Q6_K row against [`TILE_TOKENS`] Q8_K rows.
///
/// # Safety
/// As for [`q4_k_row`], with Q6_K weight blocks.
#[inline(always)]
pub(crate) unsafe fn q6_k_row(
    n: usize,
    w: *const u8,
    x: [*const u8; TILE_TOKENS],
) -> [f32; TILE_TOKENS] {
    const BYTES: usize = 210;
    // SAFETY: as in `q4_k_row`.
    unsafe {
        let low_mask = _mm256_set1_epi8(0x0F);
        let two_bits = _mm256_set1_epi8(0x03);
        let m32 = _mm256_set1_epi8(32);
        let mut acc = [_mm256_setzero_ps(); TILE_TOKENS];
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let d = load_f16(wb.add(208));
            let scales = _mm_loadu_si128(wb.add(192).cast());
            let mut sumi = [_mm256_setzero_si256(); TILE_TOKENS];
            for j in 0..2 {
                let hbits = load256(wb.add(128 + 32 * j));
                let bits1 = load256(wb.add(64 * j));
                let bits2 = load256(wb.add(64 * j + 32));
                let h0 = _mm256_slli_epi16::<4>(_mm256_and_si256(hbits, two_bits));
                let h1 = _mm256_slli_epi16::<2>(_mm256_and_si256(hbits, _mm256_set1_epi8(0x0C)));
                let h2 = _mm256_and_si256(hbits, _mm256_set1_epi8(0x30));
                let h3 =
                    _mm256_srli_epi16::<2>(_mm256_and_si256(hbits, _mm256_set1_epi8(0xC0u8 as i8)));
                let q = [
                    _mm256_or_si256(_mm256_and_si256(bits1, low_mask), h0),
                    _mm256_or_si256(_mm256_and_si256(bits2, low_mask), h1),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(bits1), low_mask),
                        h2,
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(bits2), low_mask),
                        h3,
                    ),
                ];
                let mut sc = [_mm256_setzero_si256(); 4];
                for (k, sck) in sc.iter_mut().enumerate() {
                    let is = 8 * j + 2 * k;
                    let s = _mm_shuffle_epi8(
                        scales,
                        _mm_set_epi64x(
                            0x0101010101010101 * (is as i64 + 1),
                            0x0101010101010101 * is as i64,
                        ),
                    );
                    *sck = _mm256_cvtepi8_epi16(s);
                }
                for t in 0..TILE_TOKENS {
                    let q8 = x[t].add(i * Q8_K_BYTES + Q8_K_QS + 128 * j);
                    for k in 0..4 {
                        let y = load256(q8.add(32 * k));
                        let p16 = _mm256_sub_epi16(
                            _mm256_maddubs_epi16(q[k], y),
                            _mm256_maddubs_epi16(m32, y),
                        );
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(sc[k], p16));
                    }
                }
            }
            for t in 0..TILE_TOKENS {
                let yd = load_f32(x[t].add(i * Q8_K_BYTES));
                acc[t] =
                    _mm256_fmadd_ps(_mm256_set1_ps(d * yd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            }
        }
        let mut out = [0.0f32; TILE_TOKENS];
        for t in 0..TILE_TOKENS {
            out[t] = hsum_ps(acc[t]);
        }
        out
    }
}

/// [`TILE_ROWS`] Q4_K rows against [`TILE_TOKENS`] Q8_K rows.
///
/// # Safety
/// As for [`q4_k_row`], for every row.
#[inline(always)]
pub(crate) unsafe fn q4_k(
    n: usize,
    w: [*const u8; TILE_ROWS],
    x: [*const u8; TILE_TOKENS],
) -> [[f32; TILE_TOKENS]; TILE_ROWS] {
    // SAFETY: forwarded from the caller.
    unsafe { [q4_k_row(n, w[0], x), q4_k_row(n, w[1], x)] }
}

/// [`TILE_ROWS`] Q6_K rows against [`TILE_TOKENS`] Q8_K rows.
///
/// # Safety
/// As for [`q6_k_row`], for every row.
#[inline(always)]
pub(crate) unsafe fn q6_k(
    n: usize,
    w: [*const u8; TILE_ROWS],
    x: [*const u8; TILE_TOKENS],
) -> [[f32; TILE_TOKENS]; TILE_ROWS] {
    // SAFETY: forwarded from the caller.
    unsafe { [q6_k_row(n, w[0], x), q6_k_row(n, w[1], x)] }
}

/// [`TILE_ROWS`] Q5_K rows against [`TILE_TOKENS`] Q8_K rows.
///
/// # Safety
/// As for [`q5_k_row`], for every row.
#[inline(always)]
pub(crate) unsafe fn q5_k(
    n: usize,
    w: [*const u8; TILE_ROWS],
    x: [*const u8; TILE_TOKENS],
) -> [[f32; TILE_TOKENS]; TILE_ROWS] {
    // SAFETY: forwarded from the caller.
    unsafe { [q5_k_row(n, w[0], x), q5_k_row(n, w[1], x)] }
}
