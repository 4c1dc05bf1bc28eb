//! The inner loops of attention with AVX2 (and F16C): the same multiplies and adds, in
//! the same order, as the scalar reference in `ops::attention::inner`, eight keys or
//! eight dimensions per instruction.

use core::arch::x86_64::*;
use std::ops::Range;

use half::f16;

use crate::ops::attention_inner::{
    check_accumulate, check_keys, check_scores, check_values, EXP_LN2_HI, EXP_LN2_LO, EXP_LOG2E,
    EXP_POLY, EXP_ROUND, KV_TILE,
};

/// Transposes eight rows of eight floats: `r[x]` becomes the `x`-th column.
///
/// # Safety
/// The CPU has AVX (the caller is compiled with it).
#[inline(always)]
unsafe fn transpose8(r: &mut [__m256; 8]) {
    // SAFETY: register shuffles only; the caller guarantees AVX.
    unsafe {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        r[0] = _mm256_permute2f128_ps::<0x20>(u0, u4);
        r[1] = _mm256_permute2f128_ps::<0x20>(u1, u5);
        r[2] = _mm256_permute2f128_ps::<0x20>(u2, u6);
        r[3] = _mm256_permute2f128_ps::<0x20>(u3, u7);
        r[4] = _mm256_permute2f128_ps::<0x31>(u0, u4);
        r[5] = _mm256_permute2f128_ps::<0x31>(u1, u5);
        r[6] = _mm256_permute2f128_ps::<0x31>(u2, u6);
        r[7] = _mm256_permute2f128_ps::<0x31>(u3, u7);
    }
}

/// # Safety
/// AVX2 and F16C are present; `k` holds `(n - 1) * stride + head_dim` values (`n > 0`),
/// `kt` holds `head_dim * KV_TILE`, `first + n <= KV_TILE`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn keys_transposed_avx2(
    k: *const f16,
    stride: usize,
    n: usize,
    head_dim: usize,
    first: usize,
    kt: *mut f32,
) {
    let full_keys = n / 8 * 8;
    let full_dims = head_dim / 8 * 8;
    // SAFETY: every offset read is below (n - 1) * stride + head_dim and every offset
    // written below head_dim * KV_TILE (first + j < first + n <= KV_TILE), as the
    // contract gives.
    unsafe {
        let kt = kt.add(first);
        for j0 in (0..full_keys).step_by(8) {
            for d0 in (0..full_dims).step_by(8) {
                let mut r = [_mm256_setzero_ps(); 8];
                for (i, row) in r.iter_mut().enumerate() {
                    let src = k.add((j0 + i) * stride + d0).cast::<__m128i>();
                    *row = _mm256_cvtph_ps(_mm_loadu_si128(src));
                }
                transpose8(&mut r);
                for (x, col) in r.iter().enumerate() {
                    _mm256_storeu_ps(kt.add((d0 + x) * KV_TILE + j0), *col);
                }
            }
            for d in full_dims..head_dim {
                for j in j0..j0 + 8 {
                    *kt.add(d * KV_TILE + j) = (*k.add(j * stride + d)).to_f32();
                }
            }
        }
        for j in full_keys..n {
            for d in 0..head_dim {
                *kt.add(d * KV_TILE + j) = (*k.add(j * stride + d)).to_f32();
            }
        }
    }
}

/// # Safety
/// AVX2 and F16C are present; `v` holds `(n - 1) * stride + head_dim` values, `out`
/// `n * head_dim`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn values_avx2(v: *const f16, stride: usize, n: usize, head_dim: usize, out: *mut f32) {
    let full_dims = head_dim / 8 * 8;
    // SAFETY: every offset read is below (n - 1) * stride + head_dim, every offset
    // written below n * head_dim, as the contract gives.
    unsafe {
        for j in 0..n {
            let src = v.add(j * stride);
            let dst = out.add(j * head_dim);
            for d in (0..full_dims).step_by(8) {
                let x = _mm_loadu_si128(src.add(d).cast::<__m128i>());
                _mm256_storeu_ps(dst.add(d), _mm256_cvtph_ps(x));
            }
            for d in full_dims..head_dim {
                *dst.add(d) = (*src.add(d)).to_f32();
            }
        }
    }
}

/// Scores of `N` groups of eight keys from key `j0`: one running sum per key, in
/// dimension order, the groups' chains side by side.
///
/// # Safety
/// AVX2 is present; `q` holds `head_dim` values, `kt` `head_dim * KV_TILE`, `scores`
/// `KV_TILE`; `j0 + 8 * N <= KV_TILE`.
#[inline(always)]
unsafe fn score_groups<const N: usize>(
    q: *const f32,
    head_dim: usize,
    kt: *const f32,
    j0: usize,
    scale: f32,
    scores: *mut f32,
) {
    // SAFETY: reads of q below head_dim, of kt below head_dim * KV_TILE, writes of scores
    // below j0 + 8 N <= KV_TILE, as the contract gives.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); N];
        for d in 0..head_dim {
            let x = _mm256_set1_ps(*q.add(d));
            let row = kt.add(d * KV_TILE + j0);
            for (g, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(x, _mm256_loadu_ps(row.add(8 * g))));
            }
        }
        let scale = _mm256_set1_ps(scale);
        for (g, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(scores.add(j0 + 8 * g), _mm256_mul_ps(*a, scale));
        }
    }
}

/// # Safety
/// AVX2 is present; `q` holds `head_dim` values, `kt` `head_dim * KV_TILE`, `scores`
/// `KV_TILE`; `keys.end <= KV_TILE`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scores_avx2(
    q: *const f32,
    head_dim: usize,
    kt: *const f32,
    keys: Range<usize>,
    scale: f32,
    scores: *mut f32,
) -> f32 {
    if keys.is_empty() {
        return f32::NEG_INFINITY;
    }
    // Groups of eight keys from the group holding the first; KV_TILE is a multiple of
    // eight, so no group reaches past the tile.
    let j0 = keys.start / 8 * 8;
    let groups = keys.end.div_ceil(8) - keys.start / 8;
    // SAFETY: j0 + 8 groups <= KV_TILE (keys.end <= KV_TILE, a multiple of eight); the
    // other bounds are this function's contract.
    unsafe {
        match groups {
            1 => score_groups::<1>(q, head_dim, kt, j0, scale, scores),
            2 => score_groups::<2>(q, head_dim, kt, j0, scale, scores),
            3 => score_groups::<3>(q, head_dim, kt, j0, scale, scores),
            4 => score_groups::<4>(q, head_dim, kt, j0, scale, scores),
            5 => score_groups::<5>(q, head_dim, kt, j0, scale, scores),
            6 => score_groups::<6>(q, head_dim, kt, j0, scale, scores),
            7 => score_groups::<7>(q, head_dim, kt, j0, scale, scores),
            _ => score_groups::<8>(q, head_dim, kt, j0, scale, scores),
        }
    }
    // The maximum of the keys asked for (finite scores: order does not matter).
    let mut max = _mm256_set1_ps(f32::NEG_INFINITY);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let first = _mm256_set1_epi32(keys.start as i32 - 1);
    let end = _mm256_set1_epi32(keys.end as i32);
    for g in 0..groups {
        let j = j0 + 8 * g;
        // SAFETY: j + 8 <= KV_TILE, within scores.
        let group = unsafe { _mm256_loadu_ps(scores.add(j)) };
        let index = _mm256_add_epi32(_mm256_set1_epi32(j as i32), lanes);
        let inside = _mm256_and_si256(
            _mm256_cmpgt_epi32(index, first),
            _mm256_cmpgt_epi32(end, index),
        );
        let group = _mm256_blendv_ps(
            _mm256_set1_ps(f32::NEG_INFINITY),
            group,
            _mm256_castsi256_ps(inside),
        );
        max = _mm256_max_ps(max, group);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: 8 floats written to an 8-float array.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), max) };
    lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// `inner::exp` of eight values, the same operations (ggml's `ggml_v_expf` for AVX2).
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    // SAFETY: register operations only; the caller guarantees AVX2 and FMA.
    unsafe {
        let r = _mm256_set1_ps(EXP_ROUND);
        let z = _mm256_fmadd_ps(x, _mm256_set1_ps(EXP_LOG2E), r);
        let n = _mm256_sub_ps(z, r);
        let b = _mm256_fnmadd_ps(
            n,
            _mm256_set1_ps(EXP_LN2_LO),
            _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x),
        );
        let e = _mm256_slli_epi32::<23>(_mm256_castps_si256(z));
        let k = _mm256_castsi256_ps(_mm256_add_epi32(
            e,
            _mm256_castps_si256(_mm256_set1_ps(1.0)),
        ));
        let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
        let c = _mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, _mm256_set1_ps(126.0));
        let u = _mm256_mul_ps(b, b);
        let [p0, p1, p2, p3, p4] = EXP_POLY.map(|p| _mm256_set1_ps(p));
        let j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(_mm256_fmadd_ps(p0, b, p1), u, _mm256_fmadd_ps(p2, b, p3)),
            u,
            _mm256_mul_ps(p4, b),
        );
        let near = _mm256_fmadd_ps(j, k, k);
        if _mm256_movemask_ps(c) == 0 {
            return near;
        }
        let g = _mm256_and_si256(
            _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps())),
            _mm256_set1_epi32(0x8200_0000u32 as i32),
        );
        let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
        let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
        let d = _mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, _mm256_set1_ps(192.0));
        let far = _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1);
        let y = _mm256_blendv_ps(near, far, c);
        _mm256_blendv_ps(y, _mm256_mul_ps(s1, s1), d)
    }
}

/// `inner::exp` of up to eight values through [`exp8`] (tails as the vector body).
///
/// # Safety
/// The CPU has AVX2 and FMA; `p` holds `n <= 8` values.
#[inline(always)]
unsafe fn exp_partial(p: *mut f32, n: usize, minus: f32) {
    let mut lanes = [0.0f32; 8];
    // SAFETY: n <= 8 values at p (contract) and in lanes; exp8's needs are the caller's.
    unsafe {
        std::ptr::copy_nonoverlapping(p, lanes.as_mut_ptr(), n);
        let x = _mm256_sub_ps(_mm256_loadu_ps(lanes.as_ptr()), _mm256_set1_ps(minus));
        _mm256_storeu_ps(lanes.as_mut_ptr(), exp8(x));
        std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, n);
    }
}

/// # Safety
/// AVX2 is present; `scores` holds `n` values.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exp_sum_avx2(scores: *mut f32, n: usize, max: f32) -> f64 {
    let full = n / 8 * 8;
    // SAFETY: every offset is below n.
    unsafe {
        let m = _mm256_set1_ps(max);
        for j in (0..full).step_by(8) {
            let x = _mm256_sub_ps(_mm256_loadu_ps(scores.add(j)), m);
            _mm256_storeu_ps(scores.add(j), exp8(x));
        }
        exp_partial(scores.add(full), n - full, max);
        let mut sum = 0.0f64;
        for j in 0..n {
            sum += f64::from(*scores.add(j));
        }
        sum
    }
}

/// # Safety
/// AVX2 is present; `w` holds `n` values, `v` `n * head_dim`, `out` `head_dim`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn accumulate_avx2(w: *const f32, n: usize, v: *const f32, head_dim: usize, out: *mut f32) {
    let mut d0 = 0;
    // SAFETY: every offset read from v is below n * head_dim, from w below n, and every
    // offset of out below head_dim.
    unsafe {
        while d0 + 64 <= head_dim {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm256_loadu_ps(out.add(d0 + 8 * r));
            }
            for j in 0..n {
                let wj = _mm256_set1_ps(*w.add(j));
                let row = v.add(j * head_dim + d0);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(wj, _mm256_loadu_ps(row.add(8 * r))));
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(d0 + 8 * r), *a);
            }
            d0 += 64;
        }
        while d0 + 8 <= head_dim {
            let mut a = _mm256_loadu_ps(out.add(d0));
            for j in 0..n {
                let wj = _mm256_set1_ps(*w.add(j));
                a = _mm256_add_ps(
                    a,
                    _mm256_mul_ps(wj, _mm256_loadu_ps(v.add(j * head_dim + d0))),
                );
            }
            _mm256_storeu_ps(out.add(d0), a);
            d0 += 8;
        }
        for d in d0..head_dim {
            let mut o = *out.add(d);
            for j in 0..n {
                o += *w.add(j) * *v.add(j * head_dim + d);
            }
            *out.add(d) = o;
        }
    }
}

/// Checks lengths, then converts keys with AVX2.
pub(crate) fn keys_transposed(
    k: &[f16],
    stride: usize,
    n: usize,
    head_dim: usize,
    first: usize,
    kt: &mut [f32],
) {
    check_keys(k, stride, n, head_dim, first, kt);
    if n == 0 {
        return;
    }
    // SAFETY: lengths were checked; this function is only put in a table after the
    // features were detected.
    unsafe { keys_transposed_avx2(k.as_ptr(), stride, n, head_dim, first, kt.as_mut_ptr()) }
}

/// Checks lengths, then converts values with AVX2.
pub(crate) fn values(v: &[f16], stride: usize, n: usize, out: &mut [f32]) {
    let head_dim = check_values(v, stride, n, out);
    // SAFETY: lengths were checked; this function is only put in a table after the
    // features were detected.
    unsafe { values_avx2(v.as_ptr(), stride, n, head_dim, out.as_mut_ptr()) }
}

/// Checks lengths, then computes scores with AVX2.
pub(crate) fn scores(
    q: &[f32],
    kt: &[f32],
    keys: Range<usize>,
    scale: f32,
    scores: &mut [f32],
) -> f32 {
    check_scores(q, kt, &keys, scores);
    // SAFETY: lengths were checked; this function is only put in a table after the
    // features were detected.
    unsafe {
        scores_avx2(
            q.as_ptr(),
            q.len(),
            kt.as_ptr(),
            keys,
            scale,
            scores.as_mut_ptr(),
        )
    }
}

/// Checks lengths, then accumulates with AVX2.
pub(crate) fn accumulate(w: &[f32], v: &[f32], out: &mut [f32]) {
    check_accumulate(w, v, out);
    // SAFETY: lengths were checked; this function is only put in a table after the
    // features were detected.
    unsafe { accumulate_avx2(w.as_ptr(), w.len(), v.as_ptr(), out.len(), out.as_mut_ptr()) }
}

/// Softmax numerators and their sum with AVX2.
pub(crate) fn exp_sum(scores: &mut [f32], max: f32) -> f64 {
    // SAFETY: the length is the slice's; this function is only put in a table after the
    // features were detected.
    unsafe { exp_sum_avx2(scores.as_mut_ptr(), scores.len(), max) }
}

/// # Safety
/// AVX2 is present; `gate` and `up` hold `n` values.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn swiglu_avx2(gate: *mut f32, up: *const f32, n: usize) {
    let full = n / 8 * 8;
    // SAFETY: every offset is below n.
    unsafe {
        let one = _mm256_set1_ps(1.0);
        for i in (0..full).step_by(8) {
            let x = _mm256_loadu_ps(gate.add(i));
            let t = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
            let silu = _mm256_div_ps(x, _mm256_add_ps(one, t));
            _mm256_storeu_ps(gate.add(i), _mm256_mul_ps(silu, _mm256_loadu_ps(up.add(i))));
        }
        if full < n {
            // The tail through the same vector code, padded.
            let mut x = [0.0f32; 8];
            let mut u = [0.0f32; 8];
            std::ptr::copy_nonoverlapping(gate.add(full), x.as_mut_ptr(), n - full);
            std::ptr::copy_nonoverlapping(up.add(full), u.as_mut_ptr(), n - full);
            let xv = _mm256_loadu_ps(x.as_ptr());
            let t = exp8(_mm256_sub_ps(_mm256_setzero_ps(), xv));
            let silu = _mm256_div_ps(xv, _mm256_add_ps(one, t));
            _mm256_storeu_ps(
                x.as_mut_ptr(),
                _mm256_mul_ps(silu, _mm256_loadu_ps(u.as_ptr())),
            );
            std::ptr::copy_nonoverlapping(x.as_ptr(), gate.add(full), n - full);
        }
    }
}

/// SwiGLU with AVX2.
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len());
    // SAFETY: both slices hold gate.len() values; this function is only put in a table
    // after the features were detected.
    unsafe { swiglu_avx2(gate.as_mut_ptr(), up.as_ptr(), gate.len()) }
}
