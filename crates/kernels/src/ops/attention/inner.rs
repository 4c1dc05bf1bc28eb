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

/// Converts `k.len() / head_dim` keys (at most [`KV_TILE`]) of `head_dim` f16 values to
/// f32, transposed: dimension `d` of key `j` goes to `kt[d * KV_TILE + j]`.
pub type KeysTransposedFn = fn(
    k: &[f16], // [n_keys, head_dim]
    head_dim: usize,
    kt: &mut [f32], // [head_dim, KV_TILE]
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
        scores,
        exp_sum,
        accumulate,
    };
}

/// Panics unless the arguments of a key conversion fit.
pub(crate) fn check_keys(k: &[f16], head_dim: usize, kt: &[f32]) -> usize {
    assert!(head_dim > 0 && k.len().is_multiple_of(head_dim));
    let n = k.len() / head_dim;
    assert!(n <= KV_TILE, "{n} keys do not fit a tile of {KV_TILE}");
    assert!(kt.len() >= head_dim * KV_TILE);
    n
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

fn keys_transposed(k: &[f16], head_dim: usize, kt: &mut [f32]) {
    let n = check_keys(k, head_dim, kt);
    for j in 0..n {
        for d in 0..head_dim {
            kt[d * KV_TILE + j] = k[j * head_dim + d].to_f32();
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

/// Below this, `exp` is 0 (e^x would be subnormal).
pub(crate) const EXP_MIN: f32 = -87.336_55;
/// log2(e).
pub(crate) const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts: the first has few enough bits that `n * LN2_HI` is exact.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
/// The rest of ln 2.
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// The polynomial of `exp` on `[-ln2/2, ln2/2]` (Cephes' `expf`), highest degree first.
pub(crate) const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// e^x for x ≤ 0, within about 2 ulp (Cephes' `expf`), with separate multiplies and adds
/// only, so the vector versions give the same bits: `x = n ln2 + r`, `e^x = 2^n e^r`.
/// Values below [`EXP_MIN`] give 0; positive values are treated as 0.
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let x = x.min(0.0);
    if x < EXP_MIN {
        return 0.0;
    }
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI;
    let r = r - n * LN2_LO;
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let e = p * (r * r) + r + 1.0;
    // n lies in [-126, 0]: 2^n is a normal f32.
    let two_n = f32::from_bits(((n as i32 + 127) as u32) << 23);
    e * two_n
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
