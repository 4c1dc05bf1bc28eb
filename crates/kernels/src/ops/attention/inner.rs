//! The inner loops of attention, as a table chosen with the other kernels: the scalar
//! functions here define the arithmetic, and the x86 versions do exactly the same
//! operations (no fused multiply-add, the same summation order), so every instruction set
//! gives bit-identical results.
//!
//! A query-key score is the dot product of `head_dim` values summed in dimension order,
//! then scaled: the vector versions compute eight keys per register and run the chains of
//! up to eight registers side by side, each query value broadcast once for all of them.

use std::ops::Range;

use half::f16;

/// Keys a tile holds at most (the row stride of a transposed key tile).
pub const KV_TILE: usize = 64;

/// Converts `n` keys of `head_dim` f16 values, each `stride` values after the previous
/// in `k`, to f32 in columns `first..first + n` of a transposed tile: dimension `d` of key
/// `j` goes to `kt[d * KV_TILE + first + j]`.
pub type KeysTransposedFn = fn(
    k: &[f16], // [(n - 1) * stride + head_dim]
    stride: usize,
    n: usize,
    head_dim: usize,
    first: usize,
    kt: &mut [f32], // [head_dim, KV_TILE]
);

/// Converts `n` rows of `out.len() / n` f16 values, each `stride` values after the
/// previous in `v`, to consecutive f32 rows of `out`.
pub type ValuesFn = fn(
    v: &[f16], // [(n - 1) * stride + head_dim]
    stride: usize,
    n: usize,
    out: &mut [f32], // [n, head_dim]
);

/// `scores[j] = scale * q · key j` for every `j` in `keys`, the keys read from a
/// transposed tile ([`KeysTransposedFn`]); returns the largest of them (`-inf` for no
/// keys). Entries outside `keys` may be overwritten.
pub type ScoresFn = fn(
    q: &[f32],  // [head_dim]
    kt: &[f32], // [head_dim, KV_TILE]
    keys: Range<usize>,
    scale: f32,
    scores: &mut [f32], // [KV_TILE]
) -> f32;

/// `scores[j] = exp(scores[j] - max)` ([`exp`]) for every `j`; returns their sum, added
/// in order in f64.
pub type ExpSumFn = fn(scores: &mut [f32], max: f32) -> f64;

/// `out[d] += w[j] * v[j * head_dim + d]` for `j` in order, a multiply then an add.
pub type AccumulateFn = fn(
    w: &[f32],       // [n_rows]
    v: &[f32],       // [n_rows, head_dim]
    out: &mut [f32], // [head_dim]
);

/// The inner loops of one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct AttentionKernels {
    /// Key tile conversion.
    pub keys_transposed: KeysTransposedFn,
    /// Value conversion.
    pub values: ValuesFn,
    /// Query-key scores.
    pub scores: ScoresFn,
    /// Softmax numerators and their sum.
    pub exp_sum: ExpSumFn,
    /// Weighted sum of values.
    pub accumulate: AccumulateFn,
}

impl AttentionKernels {
    /// The portable reference.
    pub const SCALAR: AttentionKernels = AttentionKernels {
        keys_transposed,
        values,
        scores,
        exp_sum,
        accumulate,
    };
}

/// Panics unless the arguments of a key conversion fit.
pub(crate) fn check_keys(
    k: &[f16],
    stride: usize,
    n: usize,
    head_dim: usize,
    first: usize,
    kt: &[f32],
) {
    assert!(head_dim > 0 && stride >= head_dim);
    assert!(
        first + n <= KV_TILE,
        "keys {first}..{} do not fit a tile of {KV_TILE}",
        first + n
    );
    assert!(n == 0 || k.len() >= (n - 1) * stride + head_dim);
    assert!(kt.len() >= head_dim * KV_TILE);
}

/// Panics unless the arguments of a value conversion fit; returns `head_dim`.
pub(crate) fn check_values(v: &[f16], stride: usize, n: usize, out: &[f32]) -> usize {
    if n == 0 {
        return 0;
    }
    assert!(out.len().is_multiple_of(n));
    let head_dim = out.len() / n;
    assert!(stride >= head_dim && v.len() >= (n - 1) * stride + head_dim);
    head_dim
}

/// Panics unless the arguments of a score computation fit.
pub(crate) fn check_scores(q: &[f32], kt: &[f32], keys: &Range<usize>, scores: &[f32]) {
    assert!(keys.start <= keys.end && keys.end <= KV_TILE);
    assert!(kt.len() >= q.len() * KV_TILE);
    assert!(scores.len() >= KV_TILE);
}

/// Panics unless the arguments of an accumulation fit.
pub(crate) fn check_accumulate(w: &[f32], v: &[f32], out: &[f32]) {
    assert!(v.len() >= w.len() * out.len());
}

fn keys_transposed(
    k: &[f16],
    stride: usize,
    n: usize,
    head_dim: usize,
    first: usize,
    kt: &mut [f32],
) {
    check_keys(k, stride, n, head_dim, first, kt);
    for j in 0..n {
        for d in 0..head_dim {
            kt[d * KV_TILE + first + j] = k[j * stride + d].to_f32();
        }
    }
}

fn values(v: &[f16], stride: usize, n: usize, out: &mut [f32]) {
    let head_dim = check_values(v, stride, n, out);
    for j in 0..n {
        for d in 0..head_dim {
            out[j * head_dim + d] = v[j * stride + d].to_f32();
        }
    }
}

fn scores(q: &[f32], kt: &[f32], keys: Range<usize>, scale: f32, scores: &mut [f32]) -> f32 {
    check_scores(q, kt, &keys, scores);
    let mut max = f32::NEG_INFINITY;
    for j in keys {
        let mut sum = 0.0f32;
        for (d, &x) in q.iter().enumerate() {
            sum += x * kt[d * KV_TILE + j];
        }
        scores[j] = sum * scale;
        max = max.max(scores[j]);
    }
    max
}

fn exp_sum(scores: &mut [f32], max: f32) -> f64 {
    let mut sum = 0.0f64;
    for s in scores.iter_mut() {
        *s = exp(*s - max);
        sum += f64::from(*s);
    }
    sum
}

/// 1.5 × 2^23: adding it rounds an f32 to an integer.
pub(crate) const EXP_ROUND: f32 = f32::from_bits(0x4b40_0000);
/// log2(e).
pub(crate) const EXP_LOG2E: f32 = f32::from_bits(0x3fb8_aa3b);
/// ln 2 in two parts.
pub(crate) const EXP_LN2_HI: f32 = f32::from_bits(0x3f31_7200);
/// The rest of ln 2.
pub(crate) const EXP_LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
/// The polynomial's coefficients, highest degree first.
pub(crate) const EXP_POLY: [f32; 5] = [
    f32::from_bits(0x3c07_2010),
    f32::from_bits(0x3d2b_9f17),
    f32::from_bits(0x3e2a_af33),
    f32::from_bits(0x3eff_fedb),
    f32::from_bits(0x3f7f_fff6),
];

/// e^x as ggml's vector `ggml_v_expf` computes it on AVX2 (adapted from Arm's optimized
/// routines, at most about 2 ulp off): `x = n ln2 + b`, `e^x = 2^n (1 + p(b))`, with fused
/// multiply-adds. The vector kernels do the same operations, so every instruction set
/// gives the same bits, and they are ggml's.
pub fn exp(x: f32) -> f32 {
    let z = x.mul_add(EXP_LOG2E, EXP_ROUND);
    let n = z - EXP_ROUND;
    let b = (-n).mul_add(EXP_LN2_LO, (-n).mul_add(EXP_LN2_HI, x));
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1.0f32.to_bits()));
    let u = b * b;
    let [p0, p1, p2, p3, p4] = EXP_POLY;
    let j = p0
        .mul_add(b, p1)
        .mul_add(u, p2.mul_add(b, p3))
        .mul_add(u, p4 * b);
    if n.abs() <= 126.0 || n.is_nan() {
        return j.mul_add(k, k);
    }
    // Far from 0: 2^n split in two factors so neither overflows, or a flush to 0 or
    // infinity.
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

fn accumulate(w: &[f32], v: &[f32], out: &mut [f32]) {
    check_accumulate(w, v, out);
    let head_dim = out.len();
    for (j, &wj) in w.iter().enumerate() {
        let row = &v[j * head_dim..(j + 1) * head_dim];
        for (o, &x) in out.iter_mut().zip(row) {
            *o += wj * x;
        }
    }
}
