//! The legacy formats of 32 values per block, Q4_0 … Q8_1: ggml's
//! `quantize_row_*_ref` and `dequantize_row_*` (`ggml-quants.c`) and
//! `ggml_vec_dot_*_generic` (`ggml-cpu/quants.c`).
//!
//! Q8_0 and Q8_1 double as activation formats: Q8_0 pairs with Q4_0, Q5_0 and Q8_0
//! weights, Q8_1 (which also stores `d * sum(qs)`) with Q4_1 and Q5_1, whose offset `m`
//! then costs one multiply per block.

use half::f16;

use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK};

/// Checks that `n` values fill `w_blocks` weight blocks and `x_blocks` activation blocks.
fn check_dot_len(n: usize, w_blocks: usize, x_blocks: usize) -> usize {
    assert!(
        n.is_multiple_of(QK),
        "{n} values are not a whole number of blocks of {QK}"
    );
    let n_blocks = n / QK;
    assert!(
        w_blocks == n_blocks && x_blocks == n_blocks,
        "dot product of {n} values needs {n_blocks} blocks, got {w_blocks} and {x_blocks}"
    );
    n_blocks
}

fn check_row_len(n_blocks: usize, n_values: usize) {
    assert_eq!(
        n_blocks * QK,
        n_values,
        "block count does not match the value count"
    );
}

fn to_f32(h: f16) -> f32 {
    h.to_f32()
}

/// Absolute maximum of a block and the value that has it (the first one on ties, so the
/// sign is that of the first extreme value as in ggml).
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// Minimum and maximum of a block, starting from ±`f32::MAX` as ggml does.
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// Packs the fifth bits of 32 five-bit values: bit `j` of the little-endian u32.
fn pack_high_bits(q: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= u32::from((v & 0x10) >> 4) << j;
    }
    qh.to_le_bytes()
}

/// The five-bit value `j` of a Q5 block (`0..=31`).
fn q5_value(qs: &[u8; QK / 2], qh: u32, j: usize) -> u8 {
    let low = if j < QK / 2 {
        qs[j] & 0x0f
    } else {
        qs[j - QK / 2] >> 4
    };
    let high = (((qh >> j) & 1) << 4) as u8;
    low | high
}

// ---------------------------------------------------------------- dequantize

/// Q4_0 to f32: `x = d * (q - 8)`.
pub fn dequantize_row_q4_0(x: &[BlockQ4_0], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = to_f32(block.d);
        for j in 0..QK / 2 {
            let x0 = i32::from(block.qs[j] & 0x0f) - 8;
            let x1 = i32::from(block.qs[j] >> 4) - 8;
            y[j] = x0 as f32 * d;
            y[j + QK / 2] = x1 as f32 * d;
        }
    }
}

/// Q4_1 to f32: `x = d * q + m`.
pub fn dequantize_row_q4_1(x: &[BlockQ4_1], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = to_f32(block.d);
        let m = to_f32(block.m);
        for j in 0..QK / 2 {
            let x0 = block.qs[j] & 0x0f;
            let x1 = block.qs[j] >> 4;
            y[j] = f32::from(x0) * d + m;
            y[j + QK / 2] = f32::from(x1) * d + m;
        }
    }
}

/// Q5_0 to f32: `x = d * (q - 16)`.
pub fn dequantize_row_q5_0(x: &[BlockQ5_0], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = to_f32(block.d);
        let qh = u32::from_le_bytes(block.qh);
        for (j, y) in y.iter_mut().enumerate() {
            let q = i32::from(q5_value(&block.qs, qh, j)) - 16;
            *y = q as f32 * d;
        }
    }
}

/// Q5_1 to f32: `x = d * q + m`.
pub fn dequantize_row_q5_1(x: &[BlockQ5_1], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = to_f32(block.d);
        let m = to_f32(block.m);
        let qh = u32::from_le_bytes(block.qh);
        for (j, y) in y.iter_mut().enumerate() {
            *y = f32::from(q5_value(&block.qs, qh, j)) * d + m;
        }
    }
}

/// Q8_0 to f32: `x = d * q`.
pub fn dequantize_row_q8_0(x: &[BlockQ8_0], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = to_f32(block.d);
        for (y, &q) in y.iter_mut().zip(&block.qs) {
            *y = f32::from(q) * d;
        }
    }
}

/// Q8_1 to f32: `x = d * q` (`s` is redundant). ggml has no such function; this is the
/// format's definition.
pub fn dequantize_row_q8_1(x: &[BlockQ8_1], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = to_f32(block.d);
        for (y, &q) in y.iter_mut().zip(&block.qs) {
            *y = f32::from(q) * d;
        }
    }
}

// ---------------------------------------------------------------- quantize

/// f32 to Q4_0 (`quantize_row_q4_0_ref`): the scale maps the value of largest magnitude
/// to -8, so that extreme uses the one level with no positive twin.
pub fn quantize_row_q4_0(x: &[f32], y: &mut [BlockQ4_0]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (_, max) = signed_absmax(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        for j in 0..QK / 2 {
            // C converts the float to int8_t by truncation, then clamps to 15.
            let q0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
            let q1 = ((x[j + QK / 2] * id + 8.5) as i8).min(15) as u8;
            block.qs[j] = q0 | (q1 << 4);
        }
    }
}

/// f32 to Q4_1 (`quantize_row_q4_1_ref`): 16 levels from the block's minimum to its
/// maximum.
pub fn quantize_row_q4_1(x: &[f32], y: &mut [BlockQ4_1]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        block.m = f16::from_f32(min);
        for j in 0..QK / 2 {
            let q0 = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
            let q1 = (((x[j + QK / 2] - min) * id + 0.5) as i8).min(15) as u8;
            block.qs[j] = q0 | (q1 << 4);
        }
    }
}

/// f32 to Q5_0 (`quantize_row_q5_0_ref`): as Q4_0 with 32 levels, the extreme at -16.
pub fn quantize_row_q5_0(x: &[f32], y: &mut [BlockQ5_0]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (_, max) = signed_absmax(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        let mut q = [0u8; QK];
        for (q, &v) in q.iter_mut().zip(x) {
            *q = ((v * id + 16.5) as i8).min(31) as u8;
        }
        for j in 0..QK / 2 {
            block.qs[j] = (q[j] & 0x0f) | ((q[j + QK / 2] & 0x0f) << 4);
        }
        block.qh = pack_high_bits(&q);
    }
}

/// f32 to Q5_1 (`quantize_row_q5_1_ref`): as Q4_1 with 32 levels.
pub fn quantize_row_q5_1(x: &[f32], y: &mut [BlockQ5_1]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f16::from_f32(d);
        block.m = f16::from_f32(min);
        let mut q = [0u8; QK];
        for (q, &v) in q.iter_mut().zip(x) {
            // ggml converts straight to uint8_t, without a clamp.
            *q = ((v - min) * id + 0.5) as u8;
        }
        for j in 0..QK / 2 {
            block.qs[j] = (q[j] & 0x0f) | ((q[j + QK / 2] & 0x0f) << 4);
        }
        block.qh = pack_high_bits(&q);
    }
}

/// Q8_0 scale and quants of one block: `d = amax / 127`, `q = round(x / d)` (ties away
/// from zero, C's `roundf`).
fn quantize_block_q8(x: &[f32]) -> (f32, [i8; QK]) {
    let amax = x.iter().fold(0.0f32, |amax, v| amax.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    (d, qs)
}

/// f32 to Q8_0 (`quantize_row_q8_0_ref`), the activation format of Q4_0, Q5_0 and Q8_0.
pub fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, qs) = quantize_block_q8(x);
        block.d = f16::from_f32(d);
        block.qs = qs;
    }
}

/// f32 to Q8_1 (`quantize_row_q8_1_ref`), the activation format of Q4_1 and Q5_1:
/// Q8_0's quants plus `s = d * sum(qs)` with `d` still in f32.
pub fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, qs) = quantize_block_q8(x);
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        block.d = f16::from_f32(d);
        block.s = f16::from_f32(sum as f32 * d);
        block.qs = qs;
    }
}

// ---------------------------------------------------------------- dot products

/// Sum over a block of `w[j] * x[j]`, the low-nibble half and the high-nibble half
/// accumulated apart as ggml does (the sum is the same integer either way).
fn dot_block(w: impl Fn(usize) -> i32, x: &[i8; QK]) -> i32 {
    let mut sum0 = 0i32;
    let mut sum1 = 0i32;
    for j in 0..QK / 2 {
        sum0 += w(j) * i32::from(x[j]);
        sum1 += w(j + QK / 2) * i32::from(x[j + QK / 2]);
    }
    sum0 + sum1
}

/// Q4_0 · Q8_0 (`ggml_vec_dot_q4_0_q8_0_generic`).
pub fn vec_dot_q4_0_q8_0(n: usize, w: &[BlockQ4_0], x: &[BlockQ8_0]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let sumi = dot_block(
            |j| {
                let nibble = if j < QK / 2 {
                    w.qs[j] & 0x0f
                } else {
                    w.qs[j - QK / 2] >> 4
                };
                i32::from(nibble) - 8
            },
            &x.qs,
        );
        sum += sumi as f32 * to_f32(w.d) * to_f32(x.d);
    }
    sum
}

/// Q4_1 · Q8_1 (`ggml_vec_dot_q4_1_q8_1_generic`): `d_w d_x sum(q_w q_x) + m_w s_x`.
pub fn vec_dot_q4_1_q8_1(n: usize, w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let sumi = dot_block(
            |j| {
                let nibble = if j < QK / 2 {
                    w.qs[j] & 0x0f
                } else {
                    w.qs[j - QK / 2] >> 4
                };
                i32::from(nibble)
            },
            &x.qs,
        );
        sum += (to_f32(w.d) * to_f32(x.d)) * sumi as f32 + to_f32(w.m) * to_f32(x.s);
    }
    sum
}

/// Q5_0 · Q8_0 (`ggml_vec_dot_q5_0_q8_0_generic`).
pub fn vec_dot_q5_0_q8_0(n: usize, w: &[BlockQ5_0], x: &[BlockQ8_0]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let qh = u32::from_le_bytes(w.qh);
        let sumi = dot_block(|j| i32::from(q5_value(&w.qs, qh, j)) - 16, &x.qs);
        sum += (to_f32(w.d) * to_f32(x.d)) * sumi as f32;
    }
    sum
}

/// Q5_1 · Q8_1 (`ggml_vec_dot_q5_1_q8_1_generic`).
pub fn vec_dot_q5_1_q8_1(n: usize, w: &[BlockQ5_1], x: &[BlockQ8_1]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let qh = u32::from_le_bytes(w.qh);
        let sumi = dot_block(|j| i32::from(q5_value(&w.qs, qh, j)), &x.qs);
        sum += (to_f32(w.d) * to_f32(x.d)) * sumi as f32 + to_f32(w.m) * to_f32(x.s);
    }
    sum
}

/// Q8_0 · Q8_0 (`ggml_vec_dot_q8_0_q8_0_generic`).
pub fn vec_dot_q8_0_q8_0(n: usize, w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let sumi: i32 =
            w.qs.iter()
                .zip(&x.qs)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
        sum += sumi as f32 * (to_f32(w.d) * to_f32(x.d));
    }
    sum
}

/// Q8_1 · Q8_1, shaped like the Q8_0 kernel. ggml has no Q8_1 weights (the format only
/// carries activations); this exists so every type has a dot product.
pub fn vec_dot_q8_1_q8_1(n: usize, w: &[BlockQ8_1], x: &[BlockQ8_1]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let sumi: i32 =
            w.qs.iter()
                .zip(&x.qs)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
        sum += sumi as f32 * (to_f32(w.d) * to_f32(x.d));
    }
    sum
}
