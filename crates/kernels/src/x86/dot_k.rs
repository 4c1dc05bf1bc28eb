//! Dot products of the K-quant formats (Q2_K … Q6_K) with Q8_K activations, after
//! ggml's AVX2 `ggml_vec_dot_q*_K_q8_K`. Integer sums per super-block are exact; the
//! f32 accumulation follows ggml's x86 order.
//!
//! Every kernel takes `n` values (a multiple of 256), `w` pointing at `n / 256` weight
//! blocks and `x` at `n / 256` Q8_K blocks; the caller checks the lengths.

use core::arch::x86_64::*;

use super::common::*;

pub(crate) const Q8_K_BYTES: usize = 292;
/// Offset of `qs` in a Q8_K block (after the f32 scale).
pub(crate) const Q8_K_QS: usize = 4;
/// Offset of `bsums` in a Q8_K block.
pub(crate) const Q8_K_BSUMS: usize = 260;

/// Broadcasts i16 lane `i` of each 128-bit half: bytes `2i, 2i+1` repeated.
#[inline(always)]
fn pair_shuffle(i: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (k, b) in out.iter_mut().enumerate() {
        *b = (2 * i + (k & 1)) as u8;
    }
    out
}

/// A shuffle mask whose low 128 bits broadcast i16 lane `lo` and high bits lane `hi`.
///
/// # Safety
/// The CPU must support AVX.
#[inline(always)]
pub(crate) unsafe fn scale_shuffle(lo: usize, hi: usize) -> __m256i {
    let lo = pair_shuffle(lo);
    let hi = pair_shuffle(hi);
    // SAFETY: both arrays are 16 readable bytes; AVX is guaranteed by the caller.
    unsafe {
        _mm256_set_m128i(
            _mm_loadu_si128(hi.as_ptr().cast()),
            _mm_loadu_si128(lo.as_ptr().cast()),
        )
    }
}

/// Unpacks the 12 packed bytes of Q4_K/Q5_K scales into 8 scales then 8 mins, as
/// ggml's `utmp` shuffle does.
///
/// # Safety
/// `p` must be valid for reading 12 bytes.
#[inline(always)]
pub(crate) unsafe fn unpack_scales_mins(p: *const u8) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f3f3f;
    const KMASK2: u32 = 0x0f0f0f0f;
    const KMASK3: u32 = 0x03030303;
    let mut u = [0u32; 4];
    // SAFETY: the caller guarantees 12 readable bytes at `p`; `u` has room for 16.
    unsafe { core::ptr::copy_nonoverlapping(p, u.as_mut_ptr().cast::<u8>(), 12) };
    u[3] = ((u[2] >> 4) & KMASK2) | (((u[1] >> 6) & KMASK3) << 4);
    let mins_low = u[1] & KMASK1;
    u[1] = (u[2] & KMASK2) | (((u[0] >> 6) & KMASK3) << 4);
    u[2] = mins_low;
    u[0] &= KMASK1;
    u
}

/// `(scales broadcast to both halves, sum of min * bsums as 4 i32)` for Q4_K/Q5_K.
///
/// # Safety
/// AVX2; `scales` readable for 12 bytes, `bsums` for 32.
#[inline(always)]
unsafe fn scales_and_min_products(scales: *const u8, bsums: *const u8) -> (__m256i, __m128i) {
    // SAFETY: the caller guarantees the readable ranges and AVX2.
    unsafe {
        let u = unpack_scales_mins(scales);
        let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
            u[3] as i32,
            u[2] as i32,
            u[1] as i32,
            u[0] as i32,
        ));
        let q8sums = load256(bsums);
        let q8s = _mm_hadd_epi16(
            _mm256_castsi256_si128(q8sums),
            _mm256_extracti128_si256::<1>(q8sums),
        );
        let prod = _mm_madd_epi16(_mm256_extracti128_si256::<1>(mins_and_scales), q8s);
        let sc128 = _mm256_castsi256_si128(mins_and_scales);
        (_mm256_set_m128i(sc128, sc128), prod)
    }
}

/// Q4_K × Q8_K.
///
/// # Safety
/// AVX2, FMA and F16C; `w` and `x` readable for `n / 256` blocks each.
#[inline(always)]
pub(crate) unsafe fn q4_k_q8_k(n: usize, w: *const u8, x: *const u8) -> f32 {
    const BYTES: usize = 144;
    // SAFETY: block `i < n / 256` lies inside both buffers (caller), features enabled
    // by the caller's `target_feature`; every offset below is inside one block.
    unsafe {
        let low_mask = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut acc_m = _mm_setzero_ps();
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let xb = x.add(i * Q8_K_BYTES);
            let yd = load_f32(xb);
            let d = yd * load_f16(wb);
            let dmin = -yd * load_f16(wb.add(2));
            let (scales, prod) = scales_and_min_products(wb.add(4), xb.add(Q8_K_BSUMS));
            acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
            let mut q4 = wb.add(16);
            let mut q8 = xb.add(Q8_K_QS);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..4 {
                let scale_l = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j, 2 * j));
                let scale_h = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j + 1, 2 * j + 1));
                let bits = load256(q4);
                q4 = q4.add(32);
                let q4l = _mm256_and_si256(bits, low_mask);
                let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low_mask);
                let p16l = _mm256_maddubs_epi16(q4l, load256(q8));
                let p16h = _mm256_maddubs_epi16(q4h, load256(q8.add(32)));
                q8 = q8.add(64);
                let pl = _mm256_madd_epi16(scale_l, p16l);
                let ph = _mm256_madd_epi16(scale_h, p16h);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        hsum_ps(acc) + hsum_ps128(acc_m)
    }
}

/// Q5_K × Q8_K.
///
/// # Safety
/// As for [`q4_k_q8_k`].
#[inline(always)]
pub(crate) unsafe fn q5_k_q8_k(n: usize, w: *const u8, x: *const u8) -> f32 {
    const BYTES: usize = 176;
    // SAFETY: as in `q4_k_q8_k`.
    unsafe {
        let low_mask = _mm256_set1_epi8(0x0F);
        let sixteen = _mm256_set1_epi8(16);
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0.0f32;
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let xb = x.add(i * Q8_K_BYTES);
            let yd = load_f32(xb);
            let d = yd * load_f16(wb);
            let dmin = -yd * load_f16(wb.add(2));
            let (scales, prod) = scales_and_min_products(wb.add(4), xb.add(Q8_K_BSUMS));
            summs += dmin * hsum_i32_128(prod) as f32;
            let hbits = load256(wb.add(16));
            let mut hmask = _mm256_set1_epi8(1);
            let mut q5 = wb.add(48);
            let mut q8 = xb.add(Q8_K_QS);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..4 {
                let scale_0 = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j, 2 * j));
                let scale_1 = _mm256_shuffle_epi8(scales, scale_shuffle(2 * j + 1, 2 * j + 1));
                let bits = load256(q5);
                q5 = q5.add(32);
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
                let p0 = _mm256_madd_epi16(scale_0, _mm256_maddubs_epi16(q5_0, load256(q8)));
                let p1 =
                    _mm256_madd_epi16(scale_1, _mm256_maddubs_epi16(q5_1, load256(q8.add(32))));
                q8 = q8.add(64);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        hsum_ps(acc) + summs
    }
}

/// Q6_K × Q8_K.
///
/// # Safety
/// As for [`q4_k_q8_k`].
#[inline(always)]
pub(crate) unsafe fn q6_k_q8_k(n: usize, w: *const u8, x: *const u8) -> f32 {
    const BYTES: usize = 210;
    // SAFETY: as in `q4_k_q8_k`.
    unsafe {
        let low_mask = _mm256_set1_epi8(0x0F);
        let two_bits = _mm256_set1_epi8(0x03);
        let m32 = _mm256_set1_epi8(32);
        let mut acc = _mm256_setzero_ps();
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let xb = x.add(i * Q8_K_BYTES);
            let d = load_f32(xb) * load_f16(wb.add(208));
            let scales = _mm_loadu_si128(wb.add(192).cast());
            let mut ql = wb;
            let mut qh = wb.add(128);
            let mut q8 = xb.add(Q8_K_QS);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..2 {
                let hbits = load256(qh);
                qh = qh.add(32);
                let h0 = _mm256_slli_epi16::<4>(_mm256_and_si256(hbits, two_bits));
                let h1 = _mm256_slli_epi16::<2>(_mm256_and_si256(hbits, _mm256_set1_epi8(0x0C)));
                let h2 = _mm256_and_si256(hbits, _mm256_set1_epi8(0x30));
                let h3 =
                    _mm256_srli_epi16::<2>(_mm256_and_si256(hbits, _mm256_set1_epi8(0xC0u8 as i8)));
                let bits1 = load256(ql);
                let bits2 = load256(ql.add(32));
                ql = ql.add(64);
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
                for (k, qk) in q.into_iter().enumerate() {
                    let y = load256(q8);
                    q8 = q8.add(32);
                    // (q - 32) * y as q * y - 32 * y, both in unsigned × signed form.
                    let p16 =
                        _mm256_sub_epi16(_mm256_maddubs_epi16(qk, y), _mm256_maddubs_epi16(m32, y));
                    let is = 8 * j + 2 * k;
                    let sc = _mm_shuffle_epi8(
                        scales,
                        _mm_set_epi64x(
                            0x0101010101010101 * (is as i64 + 1),
                            0x0101010101010101 * is as i64,
                        ),
                    );
                    let p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), p16);
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        hsum_ps(acc)
    }
}

/// The 16 signed Q3_K scales (6-bit, offset by 32) as i16, in two halves of 8.
///
/// # Safety
/// AVX2; `p` readable for 12 bytes.
#[inline(always)]
unsafe fn q3_k_scales(p: *const u8) -> [__m256i; 2] {
    const KMASK1: u32 = 0x03030303;
    const KMASK2: u32 = 0x0f0f0f0f;
    let mut a = [0u32; 3];
    // SAFETY: the caller guarantees 12 readable bytes and AVX2.
    unsafe {
        core::ptr::copy_nonoverlapping(p, a.as_mut_ptr().cast::<u8>(), 12);
        let s = _mm_set_epi32(
            (((a[1] >> 4) & KMASK2) | (((a[2] >> 6) & KMASK1) << 4)) as i32,
            (((a[0] >> 4) & KMASK2) | (((a[2] >> 4) & KMASK1) << 4)) as i32,
            ((a[1] & KMASK2) | (((a[2] >> 2) & KMASK1) << 4)) as i32,
            ((a[0] & KMASK2) | ((a[2] & KMASK1) << 4)) as i32,
        );
        let s = _mm_sub_epi8(s, _mm_set1_epi8(32));
        let all = _mm256_cvtepi8_epi16(s);
        let lo = _mm256_castsi256_si128(all);
        let hi = _mm256_extracti128_si256::<1>(all);
        [_mm256_set_m128i(lo, lo), _mm256_set_m128i(hi, hi)]
    }
}

/// Q3_K × Q8_K.
///
/// # Safety
/// As for [`q4_k_q8_k`].
#[inline(always)]
pub(crate) unsafe fn q3_k_q8_k(n: usize, w: *const u8, x: *const u8) -> f32 {
    const BYTES: usize = 110;
    // SAFETY: as in `q4_k_q8_k`.
    unsafe {
        let two_bits = _mm256_set1_epi8(0x03);
        let four = _mm256_set1_epi8(4);
        let mut acc = _mm256_setzero_ps();
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let xb = x.add(i * Q8_K_BYTES);
            let d = load_f32(xb) * load_f16(wb.add(108));
            let scales = q3_k_scales(wb.add(96));
            let hbits = load256(wb);
            let mut hmask = _mm256_set1_epi8(1);
            let mut q3 = wb.add(32);
            let mut q8 = xb.add(Q8_K_QS);
            let mut sumi = _mm256_setzero_si256();
            for scales_j in scales {
                let bits = load256(q3);
                q3 = q3.add(32);
                let low = [
                    _mm256_and_si256(bits, two_bits),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(bits), two_bits),
                    _mm256_and_si256(_mm256_srli_epi16::<4>(bits), two_bits),
                    _mm256_and_si256(_mm256_srli_epi16::<6>(bits), two_bits),
                ];
                for (k, ql) in low.into_iter().enumerate() {
                    // A clear high bit subtracts 4 from the value.
                    let set = _mm256_cmpeq_epi8(_mm256_and_si256(hbits, hmask), hmask);
                    hmask = _mm256_add_epi8(hmask, hmask);
                    let qh = _mm256_andnot_si256(set, four);
                    let y = load256(q8);
                    q8 = q8.add(32);
                    let p16 =
                        _mm256_sub_epi16(_mm256_maddubs_epi16(ql, y), _mm256_maddubs_epi16(qh, y));
                    let sc = _mm256_shuffle_epi8(scales_j, scale_shuffle(2 * k, 2 * k + 1));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p16));
                }
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        hsum_ps(acc)
    }
}

/// Q2_K × Q8_K.
///
/// # Safety
/// As for [`q4_k_q8_k`].
#[inline(always)]
pub(crate) unsafe fn q2_k_q8_k(n: usize, w: *const u8, x: *const u8) -> f32 {
    const BYTES: usize = 84;
    // SAFETY: as in `q4_k_q8_k`.
    unsafe {
        let low_mask = _mm_set1_epi8(0x0F);
        let two_bits = _mm256_set1_epi8(0x03);
        let mut acc = _mm256_setzero_ps();
        for i in 0..n / 256 {
            let wb = w.add(i * BYTES);
            let xb = x.add(i * Q8_K_BYTES);
            let yd = load_f32(xb);
            let d = yd * load_f16(wb.add(80));
            let dmin = -yd * load_f16(wb.add(82));
            let packed = _mm_loadu_si128(wb.cast());
            let scales8 = _mm_and_si128(packed, low_mask);
            let mins8 = _mm_and_si128(_mm_srli_epi16::<4>(packed), low_mask);
            let mins = _mm256_cvtepi8_epi16(mins8);
            let prod = _mm256_madd_epi16(mins, load256(xb.add(Q8_K_BSUMS)));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
            let all = _mm256_cvtepi8_epi16(scales8);
            let lo = _mm256_castsi256_si128(all);
            let hi = _mm256_extracti128_si256::<1>(all);
            let scales = [_mm256_set_m128i(lo, lo), _mm256_set_m128i(hi, hi)];
            let mut q2 = wb.add(16);
            let mut q8 = xb.add(Q8_K_QS);
            let mut sumi = _mm256_setzero_si256();
            for scales_j in scales {
                let bits = load256(q2);
                q2 = q2.add(32);
                let q = [
                    _mm256_and_si256(bits, two_bits),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(bits), two_bits),
                    _mm256_and_si256(_mm256_srli_epi16::<4>(bits), two_bits),
                    _mm256_and_si256(_mm256_srli_epi16::<6>(bits), two_bits),
                ];
                for (k, qk) in q.into_iter().enumerate() {
                    let p16 = _mm256_maddubs_epi16(qk, load256(q8));
                    q8 = q8.add(32);
                    let sc = _mm256_shuffle_epi8(scales_j, scale_shuffle(2 * k, 2 * k + 1));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p16));
                }
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        hsum_ps(acc)
    }
}
