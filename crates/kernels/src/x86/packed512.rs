//! Packed-weight kernels on AVX-512 with VNNI: one zmm lane per row of a group, one
//! `vpdpbusd` per line of codes and token (the token's 4 activation bytes broadcast).
//! Results are bit for bit those of [`crate::packed::reference`].

use core::arch::x86_64::*;

use super::common::prefetch_ahead;
use crate::packed::layout::*;
use crate::packed::{check_call, PackedActs, PackedFormat, GROUP, MAX_TOKENS};

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q5_0: u8 = 2;
const Q5_1: u8 = 3;
const Q8_0: u8 = 4;

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
    // the CPU's AVX-512 features were detected.
    unsafe { gemm_unchecked(format, group.as_ptr(), acts, t0, n_tokens, out) }
}

/// The lane-order kernel for the 32-value formats and up to two tokens (see
/// [`crate::packed::reference`]).
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
    // the CPU's AVX-512 features were detected.
    unsafe { gemm_lanes_unchecked(format, group.as_ptr(), acts, t0, n_tokens, out) }
}

/// # Safety
/// As for [`gemm_unchecked`], for a 32-value format.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_lanes_unchecked(
    format: PackedFormat,
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
) {
    let mut t = 0;
    while t < n_tokens {
        let nt = (n_tokens - t).min(2);
        let o = out[t..].as_mut_ptr();
        // SAFETY: forwarded from this function's contract; `o` has room for `nt` rows.
        unsafe {
            macro_rules! call {
                ($f:expr) => {
                    if nt == 2 {
                        lanes::<{ $f }, 2>(w, a, t0 + t, o)
                    } else {
                        lanes::<{ $f }, 1>(w, a, t0 + t, o)
                    }
                };
            }
            match format {
                PackedFormat::Q4_0 => call!(Q4_0),
                PackedFormat::Q4_1 => call!(Q4_1),
                PackedFormat::Q5_0 => call!(Q5_0),
                PackedFormat::Q5_1 => call!(Q5_1),
                _ => call!(Q8_0),
            }
        }
        t += nt;
    }
}

/// Calls `$f::<..., T>` with `T` the runtime count `$nt` (1..=`$max`).
macro_rules! with_tokens {
    ($nt:expr, $f:ident, [$($g:expr),*], ($($a:expr),*)) => {
        match $nt {
            1 => $f::<$($g,)* 1>($($a),*),
            2 => $f::<$($g,)* 2>($($a),*),
            3 => $f::<$($g,)* 3>($($a),*),
            4 => $f::<$($g,)* 4>($($a),*),
            5 => $f::<$($g,)* 5>($($a),*),
            6 => $f::<$($g,)* 6>($($a),*),
            7 => $f::<$($g,)* 7>($($a),*),
            _ => $f::<$($g,)* 8>($($a),*),
        }
    };
}

/// # Safety
/// AVX-512 F/BW/VL/VNNI, AVX2, FMA, F16C; `w` holds a whole group of `acts.n_cols`
/// columns and the tokens `t0..t0 + n_tokens` exist (as [`check_call`] checks).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
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
        let left = n_tokens - t;
        let o = out[t..].as_mut_ptr();
        // SAFETY: forwarded from this function's contract; `o` has room for `nt` rows.
        let nt = unsafe {
            match format {
                PackedFormat::Q4K => {
                    let nt = left.min(4);
                    with_tokens!(nt, q4k, [], (w, a, t0 + t, o));
                    nt
                }
                PackedFormat::Q6K => {
                    let nt = left.min(4);
                    with_tokens!(nt, q6k, [], (w, a, t0 + t, o));
                    nt
                }
                PackedFormat::Q4_0 => {
                    with_tokens!(left, legacy, [Q4_0], (w, a, t0 + t, o));
                    left.min(8)
                }
                PackedFormat::Q4_1 => {
                    with_tokens!(left, legacy, [Q4_1], (w, a, t0 + t, o));
                    left.min(8)
                }
                PackedFormat::Q5_0 => {
                    with_tokens!(left, legacy, [Q5_0], (w, a, t0 + t, o));
                    left.min(8)
                }
                PackedFormat::Q5_1 => {
                    with_tokens!(left, legacy, [Q5_1], (w, a, t0 + t, o));
                    left.min(8)
                }
                PackedFormat::Q8_0 => {
                    with_tokens!(left, legacy, [Q8_0], (w, a, t0 + t, o));
                    left.min(8)
                }
            }
        };
        t += nt;
    }
}

/// Broadcast of the 4 activation bytes at `p`.
///
/// # Safety
/// AVX-512 F; `p` readable for 4 bytes.
#[inline(always)]
unsafe fn bcast4(p: *const i8) -> __m512i {
    // SAFETY: forwarded from the caller.
    unsafe { _mm512_set1_epi32(p.cast::<i32>().read_unaligned()) }
}

/// 16 f16 at `p` widened.
///
/// # Safety
/// AVX-512 F; `p` readable for 32 bytes.
#[inline(always)]
unsafe fn f16x16(p: *const u8) -> __m512 {
    // SAFETY: forwarded from the caller.
    unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
}

/// The 32-value formats; `F` picks the format, `T` tokens.
///
/// # Safety
/// As for [`gemm_unchecked`], with `T` tokens from `t0` and `out` room for `T` rows.
#[inline(always)]
unsafe fn legacy<const F: u8, const T: usize>(
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    out: *mut [f32; GROUP],
) {
    let (bytes, d_off, m_off, qh_off, off): (usize, usize, usize, usize, i32) = match F {
        Q4_0 => (Q4_0_BYTES, Q4_0_D, 0, 0, 8),
        Q4_1 => (Q4_1_BYTES, Q4_1_D, Q4_1_M, 0, 0),
        Q5_0 => (Q5_0_BYTES, Q5_0_D, 0, Q5_0_QH, 16),
        Q5_1 => (Q5_1_BYTES, Q5_1_D, Q5_1_M, Q5_1_QH, 0),
        _ => (Q8_0_BYTES, Q8_0_D, 0, 0, 128),
    };
    let has_m = F == Q4_1 || F == Q5_1;
    let five = F == Q5_0 || F == Q5_1;
    let n_cols = a.n_cols;
    let nb = n_cols / 32;
    // SAFETY: every pointer stays inside the group (`nb` blocks of `bytes`) or inside
    // token `t0 + t`'s activations, which the caller guarantees exist.
    unsafe {
        let xq: [*const i8; T] = std::array::from_fn(|t| a.qs.as_ptr().add((t0 + t) * n_cols));
        let xd: [*const f32; T] = std::array::from_fn(|t| a.d.as_ptr().add((t0 + t) * nb));
        let xs: [*const i32; T] = std::array::from_fn(|t| {
            if off != 0 {
                a.sums.as_ptr().add((t0 + t) * nb)
            } else {
                a.sums.as_ptr()
            }
        });
        let xm: [*const f32; T] = std::array::from_fn(|t| {
            if has_m {
                a.s.as_ptr().add((t0 + t) * nb)
            } else {
                a.s.as_ptr()
            }
        });
        let nibble = _mm512_set1_epi8(0x0f);
        let fifth = _mm512_set1_epi8(0x10);
        let mut facc = [_mm512_setzero_ps(); T];
        let mut macc = [_mm512_setzero_ps(); T];
        for b in 0..nb {
            let base = w.add(b * bytes);
            prefetch_ahead(base, bytes);
            let mut iacc = [_mm512_setzero_si512(); T];
            if F == Q8_0 {
                for k in 0..8 {
                    let c = _mm512_loadu_si512(base.add(64 * k).cast());
                    for t in 0..T {
                        let x = bcast4(xq[t].add(32 * b + 4 * k));
                        iacc[t] = _mm512_dpbusd_epi32(iacc[t], c, x);
                    }
                }
            } else {
                for p in 0..4 {
                    let l = _mm512_loadu_si512(base.add(64 * p).cast());
                    let mut lo = _mm512_and_si512(l, nibble);
                    let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(l), nibble);
                    if five {
                        let k_lo = base.add(qh_off + 8 * p).cast::<u64>().read_unaligned();
                        let k_hi = base
                            .add(qh_off + 8 * (p + 4))
                            .cast::<u64>()
                            .read_unaligned();
                        lo = _mm512_mask_add_epi8(lo, k_lo, lo, fifth);
                        hi = _mm512_mask_add_epi8(hi, k_hi, hi, fifth);
                    }
                    for t in 0..T {
                        let x_lo = bcast4(xq[t].add(32 * b + 4 * p));
                        let x_hi = bcast4(xq[t].add(32 * b + 4 * (p + 4)));
                        iacc[t] = _mm512_dpbusd_epi32(iacc[t], lo, x_lo);
                        iacc[t] = _mm512_dpbusd_epi32(iacc[t], hi, x_hi);
                    }
                }
            }
            let dw = f16x16(base.add(d_off));
            let mw = if has_m {
                f16x16(base.add(m_off))
            } else {
                _mm512_setzero_ps()
            };
            for t in 0..T {
                let isum = if off != 0 {
                    _mm512_sub_epi32(iacc[t], _mm512_set1_epi32(off * *xs[t].add(b)))
                } else {
                    iacc[t]
                };
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*xd[t].add(b)));
                facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, facc[t]);
                if has_m {
                    macc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(*xm[t].add(b)), macc[t]);
                }
            }
        }
        for t in 0..T {
            let acc = if has_m {
                _mm512_add_ps(facc[t], macc[t])
            } else {
                facc[t]
            };
            _mm512_storeu_ps(out.add(t).cast(), acc);
        }
    }
}

/// The 32-value formats in the lane order: eight f32 sums per token, sum `k` over
/// line `k` of every block.
///
/// # Safety
/// As for [`legacy`].
// The line and token indices pick registers in fixed arrays the compiler keeps apart.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn lanes<const F: u8, const T: usize>(
    w: *const u8,
    a: &PackedActs,
    t0: usize,
    out: *mut [f32; GROUP],
) {
    let (bytes, d_off, m_off, qh_off, off): (usize, usize, usize, usize, i32) = match F {
        Q4_0 => (Q4_0_BYTES, Q4_0_D, 0, 0, 8),
        Q4_1 => (Q4_1_BYTES, Q4_1_D, Q4_1_M, 0, 0),
        Q5_0 => (Q5_0_BYTES, Q5_0_D, 0, Q5_0_QH, 16),
        Q5_1 => (Q5_1_BYTES, Q5_1_D, Q5_1_M, Q5_1_QH, 0),
        _ => (Q8_0_BYTES, Q8_0_D, 0, 0, 128),
    };
    let has_m = F == Q4_1 || F == Q5_1;
    let five = F == Q5_0 || F == Q5_1;
    let n_cols = a.n_cols;
    let nb = n_cols / 32;
    // SAFETY: as in `legacy`; `sums4` holds `n_cols / 4` sums per token when the
    // activations are Q8_0 (the formats with an offset).
    unsafe {
        let xq: [*const i8; T] = std::array::from_fn(|t| a.qs.as_ptr().add((t0 + t) * n_cols));
        let xd: [*const f32; T] = std::array::from_fn(|t| a.d.as_ptr().add((t0 + t) * nb));
        let x4: [*const i32; T] = std::array::from_fn(|t| {
            if off != 0 {
                a.sums4.as_ptr().add((t0 + t) * (n_cols / 4))
            } else {
                a.sums4.as_ptr()
            }
        });
        let xm: [*const f32; T] = std::array::from_fn(|t| {
            if has_m {
                a.s.as_ptr().add((t0 + t) * nb)
            } else {
                a.s.as_ptr()
            }
        });
        let nibble = _mm512_set1_epi8(0x0f);
        let fifth = _mm512_set1_epi8(0x10);
        let zero = _mm512_setzero_si512();
        let mut acc = [[_mm512_setzero_ps(); 8]; T];
        let mut macc = [_mm512_setzero_ps(); T];
        // One line's integer sums minus the offset, into its lane.
        macro_rules! line {
            ($t:expr, $k:expr, $codes:expr, $scale:expr, $b:expr) => {{
                let x = bcast4(xq[$t].add(32 * $b + 4 * $k));
                let mut i = _mm512_dpbusd_epi32(zero, $codes, x);
                if off != 0 {
                    i = _mm512_sub_epi32(i, _mm512_set1_epi32(off * *x4[$t].add(8 * $b + $k)));
                }
                acc[$t][$k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), $scale, acc[$t][$k]);
            }};
        }
        for b in 0..nb {
            let base = w.add(b * bytes);
            prefetch_ahead(base, bytes);
            let dw = f16x16(base.add(d_off));
            let scale: [__m512; T] =
                std::array::from_fn(|t| _mm512_mul_ps(dw, _mm512_set1_ps(*xd[t].add(b))));
            if F == Q8_0 {
                for k in 0..8 {
                    let c = _mm512_loadu_si512(base.add(64 * k).cast());
                    for t in 0..T {
                        line!(t, k, c, scale[t], b);
                    }
                }
            } else {
                for p in 0..4 {
                    let l = _mm512_loadu_si512(base.add(64 * p).cast());
                    let mut lo = _mm512_and_si512(l, nibble);
                    let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(l), nibble);
                    if five {
                        let k_lo = base.add(qh_off + 8 * p).cast::<u64>().read_unaligned();
                        let k_hi = base
                            .add(qh_off + 8 * (p + 4))
                            .cast::<u64>()
                            .read_unaligned();
                        lo = _mm512_mask_add_epi8(lo, k_lo, lo, fifth);
                        hi = _mm512_mask_add_epi8(hi, k_hi, hi, fifth);
                    }
                    for t in 0..T {
                        line!(t, p, lo, scale[t], b);
                        line!(t, p + 4, hi, scale[t], b);
                    }
                }
            }
            if has_m {
                let mw = f16x16(base.add(m_off));
                for t in 0..T {
                    macc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(*xm[t].add(b)), macc[t]);
                }
            }
        }
        for t in 0..T {
            let l = &acc[t];
            let s = _mm512_add_ps(
                _mm512_add_ps(_mm512_add_ps(l[0], l[4]), _mm512_add_ps(l[2], l[6])),
                _mm512_add_ps(_mm512_add_ps(l[1], l[5]), _mm512_add_ps(l[3], l[7])),
            );
            let s = if has_m { _mm512_add_ps(s, macc[t]) } else { s };
            _mm512_storeu_ps(out.add(t).cast(), s);
        }
    }
}

/// Q4_K.
///
/// # Safety
/// As for [`legacy`].
#[inline(always)]
unsafe fn q4k<const T: usize>(w: *const u8, a: &PackedActs, t0: usize, out: *mut [f32; GROUP]) {
    let n_cols = a.n_cols;
    let (nsb, n16) = (n_cols / 256, n_cols / 16);
    // SAFETY: as in `legacy`.
    unsafe {
        let xq: [*const i8; T] = std::array::from_fn(|t| a.qs.as_ptr().add((t0 + t) * n_cols));
        let xd: [*const f32; T] = std::array::from_fn(|t| a.d.as_ptr().add((t0 + t) * nsb));
        let bs: [*const i32; T] = std::array::from_fn(|t| a.sums.as_ptr().add((t0 + t) * n16));
        let nibble = _mm512_set1_epi8(0x0f);
        let mut facc = [_mm512_setzero_ps(); T];
        for sb in 0..nsb {
            let base = w.add(sb * Q4K_BYTES);
            prefetch_ahead(base, Q4K_BYTES);
            let mut isum = [_mm512_setzero_si512(); T];
            for j in 0..8 {
                let mut iacc = [_mm512_setzero_si512(); T];
                for p in 0..4 {
                    let l = _mm512_loadu_si512(base.add(Q4K_SUB * j + 64 * p).cast());
                    let lo = _mm512_and_si512(l, nibble);
                    let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(l), nibble);
                    for t in 0..T {
                        let x = xq[t].add(256 * sb + 32 * j);
                        iacc[t] = _mm512_dpbusd_epi32(iacc[t], lo, bcast4(x.add(4 * p)));
                        iacc[t] = _mm512_dpbusd_epi32(iacc[t], hi, bcast4(x.add(4 * (p + 4))));
                    }
                }
                let sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(base.add(Q4K_SC + 16 * j).cast()));
                for t in 0..T {
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(iacc[t], sc));
                }
            }
            let mut imin = [_mm512_setzero_si512(); T];
            for j in 0..8 {
                let mn = _mm512_cvtepu8_epi32(_mm_loadu_si128(base.add(Q4K_MIN + 16 * j).cast()));
                for t in 0..T {
                    let pair = *bs[t].add(16 * sb + 2 * j) + *bs[t].add(16 * sb + 2 * j + 1);
                    imin[t] =
                        _mm512_add_epi32(imin[t], _mm512_mullo_epi32(mn, _mm512_set1_epi32(pair)));
                }
            }
            let d = f16x16(base.add(Q4K_D));
            let dmin = f16x16(base.add(Q4K_DMIN));
            for t in 0..T {
                let xdv = _mm512_set1_ps(*xd[t].add(sb));
                facc[t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, xdv), facc[t]);
                facc[t] = _mm512_fnmadd_ps(
                    _mm512_cvtepi32_ps(imin[t]),
                    _mm512_mul_ps(dmin, xdv),
                    facc[t],
                );
            }
        }
        for (t, acc) in facc.iter().enumerate() {
            _mm512_storeu_ps(out.add(t).cast(), *acc);
        }
    }
}

/// Bits 4..6 of line `4h + s` from a 2-bit plane `h`, in place (`0x30` per byte).
///
/// # Safety
/// AVX-512 BW.
#[inline(always)]
unsafe fn plane_bits(h: __m512i, s: usize) -> __m512i {
    // SAFETY: registers only; the features come from the caller.
    unsafe {
        let m = _mm512_set1_epi8(0x30);
        match s {
            0 => _mm512_and_si512(_mm512_slli_epi16::<4>(h), m),
            1 => _mm512_and_si512(_mm512_slli_epi16::<2>(h), m),
            2 => _mm512_and_si512(h, m),
            _ => _mm512_and_si512(_mm512_srli_epi16::<2>(h), m),
        }
    }
}

/// Q6_K.
///
/// # Safety
/// As for [`legacy`].
#[inline(always)]
unsafe fn q6k<const T: usize>(w: *const u8, a: &PackedActs, t0: usize, out: *mut [f32; GROUP]) {
    let n_cols = a.n_cols;
    let (nsb, n16) = (n_cols / 256, n_cols / 16);
    // SAFETY: as in `legacy`.
    unsafe {
        let xq: [*const i8; T] = std::array::from_fn(|t| a.qs.as_ptr().add((t0 + t) * n_cols));
        let xd: [*const f32; T] = std::array::from_fn(|t| a.d.as_ptr().add((t0 + t) * nsb));
        let bs: [*const i32; T] = std::array::from_fn(|t| a.sums.as_ptr().add((t0 + t) * n16));
        let nibble = _mm512_set1_epi8(0x0f);
        let mut facc = [_mm512_setzero_ps(); T];
        for sb in 0..nsb {
            let base = w.add(sb * Q6K_BYTES);
            prefetch_ahead(base, Q6K_BYTES);
            let mut isum = [_mm512_setzero_si512(); T];
            for c in 0..8 {
                let cb = base.add(Q6K_CHUNK * c);
                let h0 = _mm512_loadu_si512(cb.add(Q6K_HI).cast());
                let h1 = _mm512_loadu_si512(cb.add(Q6K_HI + 64).cast());
                let mut ia = [_mm512_setzero_si512(); T];
                let mut ib = [_mm512_setzero_si512(); T];
                for p in 0..4 {
                    let l = _mm512_loadu_si512(cb.add(64 * p).cast());
                    let lo = _mm512_or_si512(_mm512_and_si512(l, nibble), plane_bits(h0, p));
                    let hi = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16::<4>(l), nibble),
                        plane_bits(h1, p),
                    );
                    for t in 0..T {
                        let x = xq[t].add(256 * sb + 32 * c);
                        ia[t] = _mm512_dpbusd_epi32(ia[t], lo, bcast4(x.add(4 * p)));
                        ib[t] = _mm512_dpbusd_epi32(ib[t], hi, bcast4(x.add(4 * (p + 4))));
                    }
                }
                let sa = _mm512_cvtepi8_epi32(_mm_loadu_si128(base.add(Q6K_SC + 32 * c).cast()));
                let sbv =
                    _mm512_cvtepi8_epi32(_mm_loadu_si128(base.add(Q6K_SC + 32 * c + 16).cast()));
                for t in 0..T {
                    let b0 = *bs[t].add(16 * sb + 2 * c);
                    let b1 = *bs[t].add(16 * sb + 2 * c + 1);
                    let da = _mm512_sub_epi32(ia[t], _mm512_set1_epi32(32 * b0));
                    let db = _mm512_sub_epi32(ib[t], _mm512_set1_epi32(32 * b1));
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(da, sa));
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(db, sbv));
                }
            }
            let d = f16x16(base.add(Q6K_D));
            for t in 0..T {
                let xdv = _mm512_set1_ps(*xd[t].add(sb));
                facc[t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, xdv), facc[t]);
            }
        }
        for (t, acc) in facc.iter().enumerate() {
            _mm512_storeu_ps(out.add(t).cast(), *acc);
        }
    }
}
