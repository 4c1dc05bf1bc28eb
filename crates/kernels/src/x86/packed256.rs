//! Packed-weight kernels on AVX2 (with FMA and F16C): one ymm lane per row of half a
//! group. Each 64-byte line of codes is `[16 rows][4 bytes]`; its first 32 bytes are
//! rows 0..8, its last 32 rows 8..16, and the f16 scales, the fifth-bit masks and the
//! 8-bit sub-block scales split the same way, so a pass over one half keeps everything
//! in 8-lane registers. A tile of one token runs both halves in one pass (each line read
//! once, as decode streams the weights); larger tiles run one half per pass, so that
//! their accumulators stay in the 16 ymm registers.
//!
//! Without VNNI a byte dot product is `vpmaddubsw` (pairs of u8·i8 into i16) and
//! `vpmaddwd` (pairs of i16 into i32). Several `vpmaddubsw` results are summed in i16
//! before widening, as far as the codes' range allows without overflow (4-bit codes:
//! 8 results, 5-bit: 4, 6-bit: 2); the widening multiplies by the sub-block scale where
//! the format has one. Q8_0's codes (`q + 128`, up to 255) do not fit `vpmaddubsw`'s
//! pairs, so the kernel recovers the signed byte `q` and computes `Σ q·x` with the sign
//! trick, which is the reference's `Σ code·x − 128·Σx` (the activation sums are the
//! sums of the activation bytes). Every integer is therefore the reference's, and the
//! float steps are its steps in its order: results are bit for bit those of
//! [`crate::packed::reference`].
//!
//! Activation bytes are `-127..=127` (as quantization makes them); the i16 sums above
//! stay exact for `-128` too, except in Q8_0's sign trick.
//!
//! The lane-order kernel ([`gemm_lanes`], Q4_1 and Q5_1 in practice) converts every
//! line's integer to float into its own sum, so it keeps eight f32 sums a row: it runs
//! one token and one half a pass.

use core::arch::x86_64::*;

use super::common::{bytes_from_bits_32, load256, prefetch_ahead};
use crate::packed::layout::*;
use crate::packed::{check_call, PackedActs, PackedFormat, GROUP, MAX_TOKENS};

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q5_0: u8 = 2;
const Q5_1: u8 = 3;
const Q8_0: u8 = 4;

/// Rows in one half of a group, one per ymm lane.
const HALF: usize = GROUP / 2;

/// The packed kernel for this set (see [`crate::packed::PackedGemmFn`]).
pub(crate) fn gemm(
    format: PackedFormat,
    group: &[u8],
    acts: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
) {
    check_call(format, group, acts, t0, n_tokens);
    // SAFETY: the shapes were checked just above; this function is only installed after
    // the CPU's AVX2, FMA and F16C features were detected.
    unsafe { gemm_unchecked(format, group.as_ptr(), acts, t0, n_tokens, out) }
}

/// The lane-order kernel for the 32-value formats (see [`crate::packed::reference`]).
pub(crate) fn gemm_lanes(
    format: PackedFormat,
    group: &[u8],
    acts: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
) {
    check_call(format, group, acts, t0, n_tokens);
    assert!(
        format.block_values() == 32,
        "the lane order is for 32-value formats"
    );
    // SAFETY: the shapes were checked just above; this function is only installed after
    // the CPU's AVX2, FMA and F16C features were detected.
    unsafe { gemm_lanes_unchecked(format, group.as_ptr(), acts, t0, n_tokens, out) }
}

/// # Safety
/// As for [`gemm_unchecked`], for a 32-value format.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_lanes_unchecked(
    format: PackedFormat,
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
) {
    // Eight sums a row: one token and one half a pass keeps them in registers.
    for t in 0..n_tokens {
        let o = out[t..].as_mut_ptr();
        for h in 0..2 {
            // SAFETY: forwarded from this function's contract; `o` has room for a row.
            unsafe {
                match format {
                    PackedFormat::Q4_0 => lanes::<Q4_0>(w, a, t0 + t, h, o),
                    PackedFormat::Q4_1 => lanes::<Q4_1>(w, a, t0 + t, h, o),
                    PackedFormat::Q5_0 => lanes::<Q5_0>(w, a, t0 + t, h, o),
                    PackedFormat::Q5_1 => lanes::<Q5_1>(w, a, t0 + t, h, o),
                    _ => lanes::<Q8_0>(w, a, t0 + t, h, o),
                }
            }
        }
    }
}

/// Calls `$f::<..., T, NH>(.., h0, ..)` for the runtime token count `$nt` (1..=4): one
/// token runs both halves at once (`NH = 2`), more run one half per call.
macro_rules! with_tokens {
    ($nt:expr, $f:ident, [$($g:expr),*], ($w:expr, $a:expr, $t0:expr, $o:expr)) => {
        match $nt {
            1 => $f::<$($g,)* 1, 2>($w, $a, $t0, 0, $o),
            2 => {
                $f::<$($g,)* 2, 1>($w, $a, $t0, 0, $o);
                $f::<$($g,)* 2, 1>($w, $a, $t0, 1, $o);
            }
            3 => {
                $f::<$($g,)* 3, 1>($w, $a, $t0, 0, $o);
                $f::<$($g,)* 3, 1>($w, $a, $t0, 1, $o);
            }
            _ => {
                $f::<$($g,)* 4, 1>($w, $a, $t0, 0, $o);
                $f::<$($g,)* 4, 1>($w, $a, $t0, 1, $o);
            }
        }
    };
}

/// Tokens per tile: the accumulators of 4 tokens and one half still fit the 16 ymm
/// registers. 4 is as fast as 2 or 3 for the 4-bit formats and Q8_0, and faster for
/// Q5_0, Q5_1 and Q6_K, whose costlier unpacking the tokens share.
const TILE_TOKENS: usize = 4;

/// # Safety
/// AVX2, FMA, F16C; `w` holds a whole group of `acts.n_cols` columns and the tokens
/// `t0..t0 + n_tokens` exist (as [`check_call`] checks).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_unchecked(
    format: PackedFormat,
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
) {
    let mut t = 0;
    while t < n_tokens {
        let nt = (n_tokens - t).min(TILE_TOKENS);
        let o = out[t..].as_mut_ptr();
        let t1 = t0 + t;
        // SAFETY: forwarded from this function's contract; `o` has room for `nt` rows.
        unsafe {
            match format {
                PackedFormat::Q4K => with_tokens!(nt, q4k, [], (w, a, t1, o)),
                PackedFormat::Q6K => with_tokens!(nt, q6k, [], (w, a, t1, o)),
                PackedFormat::Q4_0 => with_tokens!(nt, legacy, [Q4_0], (w, a, t1, o)),
                PackedFormat::Q4_1 => with_tokens!(nt, legacy, [Q4_1], (w, a, t1, o)),
                PackedFormat::Q5_0 => with_tokens!(nt, legacy, [Q5_0], (w, a, t1, o)),
                PackedFormat::Q5_1 => with_tokens!(nt, legacy, [Q5_1], (w, a, t1, o)),
                PackedFormat::Q8_0 => with_tokens!(nt, legacy, [Q8_0], (w, a, t1, o)),
            }
        }
        t += nt;
    }
}

/// Broadcast of the 4 activation bytes at `p` to 8 lanes.
///
/// # Safety
/// AVX2; `p` readable for 4 bytes.
#[inline(always)]
unsafe fn bcast4(p: *const i8) -> __m256i {
    // SAFETY: forwarded from the caller.
    unsafe { _mm256_set1_epi32(p.cast::<i32>().read_unaligned()) }
}

/// 8 f16 at `p` widened.
///
/// # Safety
/// AVX, F16C; `p` readable for 16 bytes.
#[inline(always)]
unsafe fn f16x8(p: *const u8) -> __m256 {
    // SAFETY: forwarded from the caller.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

/// The 8 bytes at `p`, each as both i16 halves of an i32 lane (unsigned bytes when
/// `SIGNED` is false): the multiplier that makes `vpmaddwd` scale a lane's pair sum.
///
/// # Safety
/// AVX2; `p` readable for 8 bytes.
#[inline(always)]
unsafe fn scale_pairs<const SIGNED: bool>(p: *const u8) -> __m256i {
    // SAFETY: forwarded from the caller.
    unsafe {
        let s = _mm_loadl_epi64(p.cast());
        let twice = _mm_unpacklo_epi8(s, s);
        if SIGNED {
            _mm256_cvtepi8_epi16(twice)
        } else {
            _mm256_cvtepu8_epi16(twice)
        }
    }
}

/// The 8 bytes at `p` widened to i32 lanes (unsigned bytes when `SIGNED` is false).
///
/// # Safety
/// AVX2; `p` readable for 8 bytes.
#[inline(always)]
unsafe fn bytes_to_i32<const SIGNED: bool>(p: *const u8) -> __m256i {
    // SAFETY: forwarded from the caller.
    unsafe {
        let s = _mm_loadl_epi64(p.cast());
        if SIGNED {
            _mm256_cvtepi8_epi32(s)
        } else {
            _mm256_cvtepu8_epi32(s)
        }
    }
}

/// Per-token activation pointers of a tile: values, scales, sums, Q8_1 `s`.
struct Tile<const T: usize> {
    xq: [*const i8; T],
    xd: [*const f32; T],
    xs: [*const i32; T],
    xm: [*const f32; T],
}

impl<const T: usize> Tile<T> {
    /// The tokens `t0..t0 + T`, with `nd` scales, `ns` sums and `nm` `s` values a token.
    ///
    /// # Safety
    /// The tokens exist in `a`, whose arrays hold that many values a token.
    #[inline(always)]
    unsafe fn new(a: &PackedActs, t0: usize, nd: usize, ns: usize, nm: usize) -> Tile<T> {
        let n_cols = a.n_cols;
        // SAFETY: each offset is the start of an existing token's row (or 0 when the
        // array has no values a token), as the caller guarantees.
        unsafe {
            Tile {
                xq: std::array::from_fn(|t| a.qs.as_ptr().add((t0 + t) * n_cols)),
                xd: std::array::from_fn(|t| a.d.as_ptr().add((t0 + t) * nd)),
                xs: std::array::from_fn(|t| a.sums.as_ptr().add((t0 + t) * ns)),
                xm: std::array::from_fn(|t| a.s.as_ptr().add((t0 + t) * nm)),
            }
        }
    }
}

/// Stores the accumulators of halves `h0..h0 + NH` of `T` tokens.
///
/// # Safety
/// AVX; `out` has room for `T` rows.
#[inline(always)]
unsafe fn store<const T: usize, const NH: usize>(
    acc: &[[__m256; T]; NH],
    h0: usize,
    out: *mut [f32; GROUP],
) {
    for (h, acc_h) in acc.iter().enumerate() {
        for (t, v) in acc_h.iter().enumerate() {
            // SAFETY: row `t < T` of `out` exists; lanes `8(h0 + h)..+8` are inside it.
            unsafe { _mm256_storeu_ps(out.add(t).cast::<f32>().add(HALF * (h0 + h)), *v) }
        }
    }
}

/// The codes of nibble line `p` of a 32-value block, half `h` (8 rows): the low nibbles
/// (values `4p..4p+4`) and the high ones (values `4(p+4)..`), with their fifth bits
/// (at `qh_off`) when `FIVE`.
///
/// # Safety
/// AVX2; `base` is a block of a group with its fifth-bit masks at `qh_off` (if `FIVE`).
#[inline(always)]
unsafe fn nibble_line<const FIVE: bool>(
    base: *const u8,
    qh_off: usize,
    h: usize,
    p: usize,
) -> (__m256i, __m256i) {
    // SAFETY: line `p` and its masks are inside the block (caller's contract).
    unsafe {
        let nibble = _mm256_set1_epi8(0x0f);
        let l = load256(base.add(64 * p + 32 * h));
        let mut lo = _mm256_and_si256(l, nibble);
        let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(l), nibble);
        if FIVE {
            let fifth = _mm256_set1_epi8(0x10);
            let m_lo = bytes_from_bits_32(base.add(qh_off + 8 * p + 4 * h));
            let m_hi = bytes_from_bits_32(base.add(qh_off + 8 * (p + 4) + 4 * h));
            lo = _mm256_or_si256(lo, _mm256_and_si256(m_lo, fifth));
            hi = _mm256_or_si256(hi, _mm256_and_si256(m_hi, fifth));
        }
        (lo, hi)
    }
}

/// The integer dot products of one 32-value block of 4- or 5-bit codes (`FIVE`) for
/// halves `h0..h0 + NH` and `T` tokens whose block values start at `x[t]`.
///
/// # Safety
/// As for [`nibble_line`]; every `x[t]` readable for 32 bytes.
#[inline(always)]
unsafe fn dot_nibbles<const FIVE: bool, const T: usize, const NH: usize>(
    base: *const u8,
    qh_off: usize,
    h0: usize,
    x: [*const i8; T],
) -> [[__m256i; T]; NH] {
    // SAFETY: every read is inside the block or the tokens' 32 values (caller's contract).
    unsafe {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); T]; NH];
        let mut a16 = [[_mm256_setzero_si256(); T]; NH];
        for p in 0..4 {
            for (h, a16_h) in a16.iter_mut().enumerate() {
                let (lo, hi) = nibble_line::<FIVE>(base, qh_off, h0 + h, p);
                for (t, a16_t) in a16_h.iter_mut().enumerate() {
                    let d_lo = _mm256_maddubs_epi16(lo, bcast4(x[t].add(4 * p)));
                    let d_hi = _mm256_maddubs_epi16(hi, bcast4(x[t].add(4 * (p + 4))));
                    *a16_t = _mm256_add_epi16(*a16_t, _mm256_add_epi16(d_lo, d_hi));
                }
            }
            // i16 sums of |code·x| <= 31·128·2 per product: 4 products fit for 5-bit
            // codes, 8 for 4-bit ones (15·128·2·8 = 30720).
            if p == 3 || (FIVE && p == 1) {
                for h in 0..NH {
                    for t in 0..T {
                        let wide = _mm256_madd_epi16(a16[h][t], ones);
                        acc[h][t] = _mm256_add_epi32(acc[h][t], wide);
                        a16[h][t] = _mm256_setzero_si256();
                    }
                }
            }
        }
        acc
    }
}

/// Per row, `Σ q·x` of line `k` (codes `q + 128`) of a Q8_0 block, half `h`, with the 4
/// activation bytes at `x` (the sign trick: `|q|` times `x` with `q`'s sign).
///
/// # Safety
/// AVX2; `base` is a Q8_0 block of a group; `x` readable for 4 bytes.
#[inline(always)]
unsafe fn q8_0_line(base: *const u8, h: usize, k: usize, x: *const i8) -> __m256i {
    // SAFETY: line `k` is inside the block and `x` readable (caller's contract).
    unsafe {
        let q = _mm256_xor_si256(load256(base.add(64 * k + 32 * h)), _mm256_set1_epi8(-128));
        let signed_x = _mm256_sign_epi8(bcast4(x), q);
        let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), signed_x);
        _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
    }
}

/// `Σ q·x` of one Q8_0 block (codes `q + 128`) for halves `h0..h0 + NH` and `T` tokens.
///
/// # Safety
/// As for [`dot_nibbles`].
#[inline(always)]
unsafe fn dot_q8_0<const T: usize, const NH: usize>(
    base: *const u8,
    h0: usize,
    x: [*const i8; T],
) -> [[__m256i; T]; NH] {
    // SAFETY: every read is inside the block or the tokens' 32 values (caller's contract).
    unsafe {
        let bias = _mm256_set1_epi8(-128);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); T]; NH];
        for k in 0..8 {
            for (h, acc_h) in acc.iter_mut().enumerate() {
                let q = _mm256_xor_si256(load256(base.add(64 * k + 32 * (h0 + h))), bias);
                let abs = _mm256_sign_epi8(q, q);
                for (t, acc_t) in acc_h.iter_mut().enumerate() {
                    let signed_x = _mm256_sign_epi8(bcast4(x[t].add(4 * k)), q);
                    let d = _mm256_madd_epi16(_mm256_maddubs_epi16(abs, signed_x), ones);
                    *acc_t = _mm256_add_epi32(*acc_t, d);
                }
            }
        }
        acc
    }
}

/// The 32-value formats; `F` picks the format, `T` tokens, halves `h0..h0 + NH`.
///
/// # Safety
/// As for [`gemm_unchecked`], with `T` tokens from `t0` and `out` room for `T` rows.
#[inline(always)]
unsafe fn legacy<const F: u8, const T: usize, const NH: usize>(
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    h0: usize,
    out: *mut [f32; GROUP],
) {
    let (bytes, d_off, m_off, qh_off, off): (usize, usize, usize, usize, i32) = match F {
        Q4_0 => (Q4_0_BYTES, Q4_0_D, 0, 0, 8),
        Q4_1 => (Q4_1_BYTES, Q4_1_D, Q4_1_M, 0, 0),
        Q5_0 => (Q5_0_BYTES, Q5_0_D, 0, Q5_0_QH, 16),
        Q5_1 => (Q5_1_BYTES, Q5_1_D, Q5_1_M, Q5_1_QH, 0),
        _ => (Q8_0_BYTES, Q8_0_D, 0, 0, 0),
    };
    let has_m = F == Q4_1 || F == Q5_1;
    let five = F == Q5_0 || F == Q5_1;
    let nb = a.n_cols / 32;
    // SAFETY: every pointer stays inside the group (`nb` blocks of `bytes`) or inside
    // token `t0 + t`'s activations, which the caller guarantees exist; the arrays a
    // format does not use are never read.
    unsafe {
        let x = Tile::<T>::new(
            a,
            t0,
            nb,
            if off != 0 { nb } else { 0 },
            if has_m { nb } else { 0 },
        );
        let mut facc = [[_mm256_setzero_ps(); T]; NH];
        let mut macc = [[_mm256_setzero_ps(); T]; NH];
        for b in 0..nb {
            let base = w.add(b * bytes);
            if h0 == 0 {
                prefetch_ahead(base, bytes);
            }
            let xb = x.xq.map(|p| p.add(32 * b));
            let iacc = match (F == Q8_0, five) {
                (true, _) => dot_q8_0::<T, NH>(base, h0, xb),
                (false, true) => dot_nibbles::<true, T, NH>(base, qh_off, h0, xb),
                (false, false) => dot_nibbles::<false, T, NH>(base, qh_off, h0, xb),
            };
            for h in 0..NH {
                let row = HALF * (h0 + h);
                let dw = f16x8(base.add(d_off + 2 * row));
                for t in 0..T {
                    let isum = if off != 0 {
                        _mm256_sub_epi32(iacc[h][t], _mm256_set1_epi32(off * *x.xs[t].add(b)))
                    } else {
                        iacc[h][t]
                    };
                    let scale = _mm256_mul_ps(dw, _mm256_set1_ps(*x.xd[t].add(b)));
                    facc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, facc[h][t]);
                }
                if has_m {
                    let mw = f16x8(base.add(m_off + 2 * row));
                    for (macc_t, xm) in macc[h].iter_mut().zip(x.xm) {
                        *macc_t = _mm256_fmadd_ps(mw, _mm256_set1_ps(*xm.add(b)), *macc_t);
                    }
                }
            }
        }
        if has_m {
            for h in 0..NH {
                for t in 0..T {
                    facc[h][t] = _mm256_add_ps(facc[h][t], macc[h][t]);
                }
            }
        }
        store(&facc, h0, out);
    }
}

/// The 32-value formats in the lane order, for token `t` and half `h`: eight f32 sums
/// per row, sum `k` over line `k` of every block.
///
/// # Safety
/// As for [`gemm_unchecked`], with token `t` existing and `out` room for one row.
#[inline(always)]
unsafe fn lanes<const F: u8>(
    w: *const u8,
    a: &PackedActs,
    t: usize,
    h: usize,
    out: *mut [f32; GROUP],
) {
    // Q8_0's offset is folded into the sign trick (`Σ q·x`).
    let (bytes, d_off, m_off, qh_off, off): (usize, usize, usize, usize, i32) = match F {
        Q4_0 => (Q4_0_BYTES, Q4_0_D, 0, 0, 8),
        Q4_1 => (Q4_1_BYTES, Q4_1_D, Q4_1_M, 0, 0),
        Q5_0 => (Q5_0_BYTES, Q5_0_D, 0, Q5_0_QH, 16),
        Q5_1 => (Q5_1_BYTES, Q5_1_D, Q5_1_M, Q5_1_QH, 0),
        _ => (Q8_0_BYTES, Q8_0_D, 0, 0, 0),
    };
    let has_m = F == Q4_1 || F == Q5_1;
    let n_cols = a.n_cols;
    let nb = n_cols / 32;
    // SAFETY: every pointer stays inside the group or token `t`'s activations, which the
    // caller guarantees exist; `sums4` holds `n_cols / 4` sums a token when the
    // activations are Q8_0 (the formats with an offset), and is only read then.
    unsafe {
        let xq = a.qs.as_ptr().add(t * n_cols);
        let xd = a.d.as_ptr().add(t * nb);
        let x4 = a
            .sums4
            .as_ptr()
            .add(if off != 0 { t * (n_cols / 4) } else { 0 });
        let xm = a.s.as_ptr().add(if has_m { t * nb } else { 0 });
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut macc = _mm256_setzero_ps();
        for b in 0..nb {
            let base = w.add(b * bytes);
            if h == 0 {
                prefetch_ahead(base, bytes);
            }
            let x = xq.add(32 * b);
            let scale = _mm256_mul_ps(f16x8(base.add(d_off + 16 * h)), _mm256_set1_ps(*xd.add(b)));
            let mut line = |k: usize, i: __m256i| {
                let i = if off != 0 {
                    _mm256_sub_epi32(i, _mm256_set1_epi32(off * *x4.add(8 * b + k)))
                } else {
                    i
                };
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), scale, acc[k]);
            };
            if F == Q8_0 {
                for k in 0..8 {
                    line(k, q8_0_line(base, h, k, x.add(4 * k)));
                }
            } else {
                let five = F == Q5_0 || F == Q5_1;
                for p in 0..4 {
                    let (lo, hi) = if five {
                        nibble_line::<true>(base, qh_off, h, p)
                    } else {
                        nibble_line::<false>(base, qh_off, h, p)
                    };
                    let d_lo = _mm256_maddubs_epi16(lo, bcast4(x.add(4 * p)));
                    line(p, _mm256_madd_epi16(d_lo, ones));
                    let d_hi = _mm256_maddubs_epi16(hi, bcast4(x.add(4 * (p + 4))));
                    line(p + 4, _mm256_madd_epi16(d_hi, ones));
                }
            }
            if has_m {
                let mw = f16x8(base.add(m_off + 16 * h));
                macc = _mm256_fmadd_ps(mw, _mm256_set1_ps(*xm.add(b)), macc);
            }
        }
        let l = &acc;
        let sum = _mm256_add_ps(
            _mm256_add_ps(_mm256_add_ps(l[0], l[4]), _mm256_add_ps(l[2], l[6])),
            _mm256_add_ps(_mm256_add_ps(l[1], l[5]), _mm256_add_ps(l[3], l[7])),
        );
        let sum = if has_m { _mm256_add_ps(sum, macc) } else { sum };
        store(&[[sum]], h, out);
    }
}

/// `Σ_j sc_j · Σ_{sub j} code·x` of one Q4_K super-block for halves `h0..h0 + NH` and
/// `T` tokens whose super-block values start at `x[t]`.
///
/// # Safety
/// AVX2; `base` is a Q4_K block of a group; every `x[t]` readable for 256 bytes.
#[inline(always)]
unsafe fn q4k_dots<const T: usize, const NH: usize>(
    base: *const u8,
    h0: usize,
    x: [*const i8; T],
) -> [[__m256i; T]; NH] {
    // SAFETY: every read is inside the block or the tokens' 256 values.
    unsafe {
        let nibble = _mm256_set1_epi8(0x0f);
        let mut isum = [[_mm256_setzero_si256(); T]; NH];
        for j in 0..8 {
            // i16 sums of 8 products of 4-bit codes: |sum| <= 15·128·2·8 = 30720.
            let mut a16 = [[_mm256_setzero_si256(); T]; NH];
            for p in 0..4 {
                for (h, a16_h) in a16.iter_mut().enumerate() {
                    let l = load256(base.add(Q4K_SUB * j + 64 * p + 32 * (h0 + h)));
                    let lo = _mm256_and_si256(l, nibble);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(l), nibble);
                    for (t, a16_t) in a16_h.iter_mut().enumerate() {
                        let xj = x[t].add(32 * j);
                        let d_lo = _mm256_maddubs_epi16(lo, bcast4(xj.add(4 * p)));
                        let d_hi = _mm256_maddubs_epi16(hi, bcast4(xj.add(4 * (p + 4))));
                        *a16_t = _mm256_add_epi16(*a16_t, _mm256_add_epi16(d_lo, d_hi));
                    }
                }
            }
            for h in 0..NH {
                let sc = scale_pairs::<false>(base.add(Q4K_SC + 16 * j + HALF * (h0 + h)));
                for t in 0..T {
                    isum[h][t] = _mm256_add_epi32(isum[h][t], _mm256_madd_epi16(a16[h][t], sc));
                }
            }
        }
        isum
    }
}

/// Q4_K.
///
/// # Safety
/// As for [`legacy`].
#[inline(always)]
unsafe fn q4k<const T: usize, const NH: usize>(
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    h0: usize,
    out: *mut [f32; GROUP],
) {
    let nsb = a.n_cols / 256;
    // SAFETY: as in `legacy`.
    unsafe {
        let x = Tile::<T>::new(a, t0, nsb, a.n_cols / 16, 0);
        let mut facc = [[_mm256_setzero_ps(); T]; NH];
        for sb in 0..nsb {
            let base = w.add(sb * Q4K_BYTES);
            if h0 == 0 {
                prefetch_ahead(base, Q4K_BYTES);
            }
            let isum = q4k_dots::<T, NH>(base, h0, x.xq.map(|p| p.add(256 * sb)));
            for h in 0..NH {
                let row = HALF * (h0 + h);
                let mut imin = [_mm256_setzero_si256(); T];
                for j in 0..8 {
                    let mn = bytes_to_i32::<false>(base.add(Q4K_MIN + 16 * j + row));
                    for (imin_t, xs) in imin.iter_mut().zip(x.xs) {
                        let bs = xs.add(16 * sb + 2 * j);
                        let pair = _mm256_set1_epi32((*bs).wrapping_add(*bs.add(1)));
                        *imin_t = _mm256_add_epi32(*imin_t, _mm256_mullo_epi32(mn, pair));
                    }
                }
                let d = f16x8(base.add(Q4K_D + 2 * row));
                let dmin = f16x8(base.add(Q4K_DMIN + 2 * row));
                for t in 0..T {
                    let xd = _mm256_set1_ps(*x.xd[t].add(sb));
                    let f = _mm256_cvtepi32_ps(isum[h][t]);
                    facc[h][t] = _mm256_fmadd_ps(f, _mm256_mul_ps(d, xd), facc[h][t]);
                    let f = _mm256_cvtepi32_ps(imin[t]);
                    facc[h][t] = _mm256_fnmadd_ps(f, _mm256_mul_ps(dmin, xd), facc[h][t]);
                }
            }
        }
        store(&facc, h0, out);
    }
}

/// Bits 4..6 of line `4h + s` from a 2-bit plane `h`, in place (`0x30` per byte).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn plane_bits(plane: __m256i, s: usize) -> __m256i {
    // SAFETY: registers only; the features come from the caller.
    unsafe {
        let m = _mm256_set1_epi8(0x30);
        match s {
            0 => _mm256_and_si256(_mm256_slli_epi16::<4>(plane), m),
            1 => _mm256_and_si256(_mm256_slli_epi16::<2>(plane), m),
            2 => _mm256_and_si256(plane, m),
            _ => _mm256_and_si256(_mm256_srli_epi16::<2>(plane), m),
        }
    }
}

/// `Σ_j sc_j · Σ_{sub j} code·x` of one Q6_K super-block (codes with their offset of 32)
/// for halves `h0..h0 + NH` and `T` tokens whose super-block values start at `x[t]`.
///
/// # Safety
/// AVX2; `base` is a Q6_K block of a group; every `x[t]` readable for 256 bytes.
#[inline(always)]
unsafe fn q6k_dots<const T: usize, const NH: usize>(
    base: *const u8,
    h0: usize,
    x: [*const i8; T],
) -> [[__m256i; T]; NH] {
    // SAFETY: every read is inside the block or the tokens' 256 values.
    unsafe {
        let nibble = _mm256_set1_epi8(0x0f);
        let mut isum = [[_mm256_setzero_si256(); T]; NH];
        // Sub-block `j = 2c + s`: the low (`s = 0`) or high nibbles of chunk `c`'s lines
        // with 2-bit plane `s`.
        for j in 0..16 {
            let (c, s) = (j / 2, j % 2);
            let chunk = base.add(Q6K_CHUNK * c);
            for (h, isum_h) in isum.iter_mut().enumerate() {
                let half = 32 * (h0 + h);
                let plane = load256(chunk.add(Q6K_HI + 64 * s + half));
                let sc = scale_pairs::<true>(base.add(Q6K_SC + 16 * j + half / 4));
                // i16 sums of 2 products of 6-bit codes: |sum| <= 63·128·2·2 = 32256.
                let mut a16 = [_mm256_setzero_si256(); T];
                for p in 0..4 {
                    let l = load256(chunk.add(64 * p + half));
                    let l = if s == 0 { l } else { _mm256_srli_epi16::<4>(l) };
                    let code = _mm256_or_si256(_mm256_and_si256(l, nibble), plane_bits(plane, p));
                    for t in 0..T {
                        let xs = bcast4(x[t].add(16 * j + 4 * p));
                        a16[t] = _mm256_add_epi16(a16[t], _mm256_maddubs_epi16(code, xs));
                    }
                    if p % 2 == 1 {
                        for t in 0..T {
                            let wide = _mm256_madd_epi16(a16[t], sc);
                            isum_h[t] = _mm256_add_epi32(isum_h[t], wide);
                            a16[t] = _mm256_setzero_si256();
                        }
                    }
                }
            }
        }
        isum
    }
}

/// Q6_K.
///
/// # Safety
/// As for [`legacy`].
#[inline(always)]
unsafe fn q6k<const T: usize, const NH: usize>(
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    h0: usize,
    out: *mut [f32; GROUP],
) {
    let nsb = a.n_cols / 256;
    // SAFETY: as in `legacy`.
    unsafe {
        let x = Tile::<T>::new(a, t0, nsb, a.n_cols / 16, 0);
        let mut facc = [[_mm256_setzero_ps(); T]; NH];
        for sb in 0..nsb {
            let base = w.add(sb * Q6K_BYTES);
            if h0 == 0 {
                prefetch_ahead(base, Q6K_BYTES);
            }
            let dots = q6k_dots::<T, NH>(base, h0, x.xq.map(|p| p.add(256 * sb)));
            for h in 0..NH {
                let row = HALF * (h0 + h);
                // Σ_j sc_j · bsum_j, times the offset 32 below: Σ_j sc_j · (dot_j −
                // 32·bsum_j) in wrapping i32, as the reference's.
                let mut offset = [_mm256_setzero_si256(); T];
                for j in 0..16 {
                    let sc = bytes_to_i32::<true>(base.add(Q6K_SC + 16 * j + row));
                    for (offset_t, xs) in offset.iter_mut().zip(x.xs) {
                        let bs = _mm256_set1_epi32(*xs.add(16 * sb + j));
                        *offset_t = _mm256_add_epi32(*offset_t, _mm256_mullo_epi32(sc, bs));
                    }
                }
                let d = f16x8(base.add(Q6K_D + 2 * row));
                for t in 0..T {
                    let isum = _mm256_sub_epi32(dots[h][t], _mm256_slli_epi32::<5>(offset[t]));
                    let xd = _mm256_set1_ps(*x.xd[t].add(sb));
                    let f = _mm256_cvtepi32_ps(isum);
                    facc[h][t] = _mm256_fmadd_ps(f, _mm256_mul_ps(d, xd), facc[h][t]);
                }
            }
        }
        store(&facc, h0, out);
    }
}
