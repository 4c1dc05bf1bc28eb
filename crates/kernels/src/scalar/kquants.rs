//! The K-quants (super-blocks of 256 values), Q2_K … Q6_K and Q8_K: ggml's
//! `dequantize_row_*` (`ggml-quants.c`) and `ggml_vec_dot_*_q8_K_generic`
//! (`ggml-cpu/quants.c`). Their reference quantization is in
//! [`quantize_k`](super::quantize_k).
//!
//! The dot products take activations in Q8_K, whose `bsums` (sums of 16 quants) let the
//! sub-block minimums of Q2_K, Q4_K and Q5_K be applied once per 16 or 32 values. Q3_K …
//! Q6_K accumulate in eight integer lanes and sum the lanes in f32 at the end, as ggml's
//! generic code does; the order matters for the last bits of the result.

use half::f16;

use crate::blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};
use crate::QK_K;

fn check_row_len(n_blocks: usize, n_values: usize) {
    assert_eq!(
        n_blocks * QK_K,
        n_values,
        "block count does not match the value count"
    );
}

fn check_dot_len(n: usize, w_blocks: usize, x_blocks: usize) {
    assert!(
        n.is_multiple_of(QK_K),
        "{n} values are not a whole number of blocks of {QK_K}"
    );
    let n_blocks = n / QK_K;
    assert!(
        w_blocks == n_blocks && x_blocks == n_blocks,
        "dot product of {n} values needs {n_blocks} blocks, got {w_blocks} and {x_blocks}"
    );
}

fn to_f32(h: f16) -> f32 {
    h.to_f32()
}

/// Scale and min of sub-block `j` (0..8) from the 12 packed bytes of Q4_K and Q5_K
/// (ggml's `get_scale_min_k4`): 6 bits each, the first four in the low bits of bytes
/// 0..8, the last four split between the nibbles of bytes 8..12 and the top two bits
/// of bytes 0..8.
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let d = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (d, m)
    }
}

/// The sixteen 6-bit scales of a Q3_K block, unpacked and biased (`-32..=31`): the low
/// four bits of scale `j` are a nibble of `scales[j % 8]`, the high two bits are bits
/// `2 * (j / 4)` of `scales[8 + j % 4]`.
pub fn q3_k_scales(packed: &[u8; 12]) -> [i8; 16] {
    let mut scales = [0i8; 16];
    for (j, s) in scales.iter_mut().enumerate() {
        let low = if j < 8 {
            packed[j] & 0x0f
        } else {
            packed[j - 8] >> 4
        };
        let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        *s = (low | (high << 4)) as i8 - 32;
    }
    scales
}

/// The 256 quants of a Q3_K block, `-4..=3`: two low bits from `qs`, the third from
/// `hmask` (set means no offset, clear means subtract 4).
fn q3_k_quants(block: &BlockQ3_K) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (half, q) in q.chunks_exact_mut(128).enumerate() {
        let qs = &block.qs[32 * half..32 * half + 32];
        for (k, q) in q.chunks_exact_mut(32).enumerate() {
            let shift = 2 * k;
            let mask = 1u8 << (4 * half + k);
            for (l, q) in q.iter_mut().enumerate() {
                let low = ((qs[l] >> shift) & 3) as i8;
                *q = low - if block.hmask[l] & mask != 0 { 0 } else { 4 };
            }
        }
    }
    q
}

/// The 256 quants of a Q4_K block, `0..=15`, in value order.
fn q4_k_quants(block: &BlockQ4_K) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for (chunk, q) in q.chunks_exact_mut(64).enumerate() {
        let qs = &block.qs[32 * chunk..32 * chunk + 32];
        for l in 0..32 {
            q[l] = qs[l] & 0x0f;
            q[l + 32] = qs[l] >> 4;
        }
    }
    q
}

/// The 256 quants of a Q5_K block, `0..=31`, in value order.
fn q5_k_quants(block: &BlockQ5_K) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for (chunk, q) in q.chunks_exact_mut(64).enumerate() {
        let qs = &block.qs[32 * chunk..32 * chunk + 32];
        let (m1, m2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        for l in 0..32 {
            let h1 = if block.qh[l] & m1 != 0 { 16 } else { 0 };
            let h2 = if block.qh[l] & m2 != 0 { 16 } else { 0 };
            q[l] = (qs[l] & 0x0f) + h1;
            q[l + 32] = (qs[l] >> 4) + h2;
        }
    }
    q
}

/// The 256 quants of a Q6_K block, `-32..=31`, in value order.
pub(crate) fn q6_k_quants(block: &BlockQ6_K) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (half, q) in q.chunks_exact_mut(128).enumerate() {
        let ql = &block.ql[64 * half..64 * half + 64];
        let qh = &block.qh[32 * half..32 * half + 32];
        for l in 0..32 {
            q[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
            q[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            q[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            q[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
        }
    }
    q
}

/// The 2-bit quant of value `i` (0..256) of a Q2_K block: byte `32 * (i / 128) + i % 32`,
/// bits `2 * ((i / 32) % 4)`.
fn q2_k_quant(qs: &[u8; QK_K / 4], i: usize) -> u8 {
    (qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3
}

// ---------------------------------------------------------------- dequantize

/// Q2_K to f32: value `i` of sub-block `s` is `d * scale_s * q - dmin * min_s`.
pub fn dequantize_row_q2_k(x: &[BlockQ2_K], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = to_f32(block.d);
        let min = to_f32(block.dmin);
        for (sub, y) in y.chunks_exact_mut(16).enumerate() {
            let sc = block.scales[sub];
            let dl = d * f32::from(sc & 0x0f);
            let ml = min * f32::from(sc >> 4);
            for (l, y) in y.iter_mut().enumerate() {
                *y = dl * f32::from(q2_k_quant(&block.qs, 16 * sub + l)) - ml;
            }
        }
    }
}

/// Q3_K to f32: `d * (scale_s - 32) * q`.
pub fn dequantize_row_q3_k(x: &[BlockQ3_K], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d_all = to_f32(block.d);
        let scales = q3_k_scales(&block.scales);
        let q = q3_k_quants(block);
        for (sub, (y, q)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let dl = d_all * f32::from(scales[sub]);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = dl * f32::from(q);
            }
        }
    }
}

/// Q4_K to f32: `d * scale_s * q - dmin * min_s` over sub-blocks of 32.
pub fn dequantize_row_q4_k(x: &[BlockQ4_K], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = to_f32(block.d);
        let min = to_f32(block.dmin);
        let q = q4_k_quants(block);
        for (sub, (y, q)) in y.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
            let (sc, m) = scale_min_k4(sub, &block.scales);
            let d1 = d * f32::from(sc);
            let m1 = min * f32::from(m);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = d1 * f32::from(q) - m1;
            }
        }
    }
}

/// Q5_K to f32: as Q4_K with a fifth bit from `qh`.
pub fn dequantize_row_q5_k(x: &[BlockQ5_K], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = to_f32(block.d);
        let min = to_f32(block.dmin);
        let q = q5_k_quants(block);
        for (sub, (y, q)) in y.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
            let (sc, m) = scale_min_k4(sub, &block.scales);
            let d1 = d * f32::from(sc);
            let m1 = min * f32::from(m);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = d1 * f32::from(q) - m1;
            }
        }
    }
}

/// Q6_K to f32: `d * scale_s * q` with signed 8-bit scales over sub-blocks of 16.
pub fn dequantize_row_q6_k(x: &[BlockQ6_K], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = to_f32(block.d);
        let q = q6_k_quants(block);
        for (sub, (y, q)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let dl = d * f32::from(block.scales[sub]);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = dl * f32::from(q);
            }
        }
    }
}

/// Q8_K to f32: `d * q`.
pub fn dequantize_row_q8_k(x: &[BlockQ8_K], y: &mut [f32]) {
    check_row_len(x.len(), y.len());
    for (block, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        for (y, &q) in y.iter_mut().zip(&block.qs) {
            *y = block.d * f32::from(q);
        }
    }
}

// ---------------------------------------------------------------- dot products

/// Q2_K · Q8_K (`ggml_vec_dot_q2_K_q8_K_generic`).
pub fn vec_dot_q2_k_q8_k(n: usize, w: &[BlockQ2_K], x: &[BlockQ8_K]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let summs: i32 = x
            .bsums
            .iter()
            .zip(&w.scales)
            .map(|(&b, &sc)| i32::from(b) * i32::from(sc >> 4))
            .sum();
        let dall = x.d * to_f32(w.d);
        let dmin = x.d * to_f32(w.dmin);
        let mut isum = 0i32;
        for (sub, q8) in x.qs.chunks_exact(16).enumerate() {
            let scale = i32::from(w.scales[sub] & 0x0f);
            let isuml: i32 = q8
                .iter()
                .enumerate()
                .map(|(l, &q)| i32::from(q) * i32::from(q2_k_quant(&w.qs, 16 * sub + l)))
                .sum();
            isum += scale * isuml;
        }
        sum += dall * isum as f32 - dmin * summs as f32;
    }
    sum
}

/// Adds `scale * a[l] * q8[l]` for one group of 8 values into the 8 integer lanes
/// (ggml's `aux16`/`aux32` step; the products fit in i16).
fn accumulate_lanes(lanes: &mut [i32; 8], scale: i32, a: &[i8], q8: &[i8]) {
    for ((lane, &a), &q) in lanes.iter_mut().zip(a).zip(q8) {
        *lane += scale * (i32::from(q) * i32::from(a));
    }
}

/// Adds one block's lanes into the f32 lane sums: `sums[l] += d * lanes[l]`.
fn add_lanes(sums: &mut [f32; 8], d: f32, lanes: &[i32; 8]) {
    for (s, &l) in sums.iter_mut().zip(lanes) {
        *s += d * l as f32;
    }
}

/// The dot product of signed quants with per-16 scales (Q3_K, Q6_K) against Q8_K, in
/// ggml's eight-lane order.
fn dot_lanes_16(a: &[i8; QK_K], scales: impl Fn(usize) -> i32, q8: &[i8; QK_K]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for (g, (a, q)) in a.chunks_exact(8).zip(q8.chunks_exact(8)).enumerate() {
        accumulate_lanes(&mut lanes, scales(g / 2), a, q);
    }
    lanes
}

/// Q3_K · Q8_K (`ggml_vec_dot_q3_K_q8_K_generic`).
pub fn vec_dot_q3_k_q8_k(n: usize, w: &[BlockQ3_K], x: &[BlockQ8_K]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sums = [0.0f32; 8];
    for (w, x) in w.iter().zip(x) {
        let a = q3_k_quants(w);
        let scales = q3_k_scales(&w.scales);
        let lanes = dot_lanes_16(&a, |s| i32::from(scales[s]), &x.qs);
        add_lanes(&mut sums, to_f32(w.d) * x.d, &lanes);
    }
    sums.iter().fold(0.0f32, |acc, &s| acc + s)
}

/// The dot product of unsigned quants with per-32 scales (Q4_K, Q5_K) against Q8_K, in
/// ggml's eight-lane order, and the min correction `sum(bsums * mins)`.
fn dot_q4_q5_k(q: &[u8; QK_K], packed: &[u8; 12], x: &BlockQ8_K) -> ([i32; 8], i32) {
    let mut scales = [0i32; 8];
    let mut mins = [0i32; 8];
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, packed);
        scales[j] = i32::from(sc);
        mins[j] = i32::from(m);
    }
    let sumi_mins: i32 = x
        .bsums
        .iter()
        .enumerate()
        .map(|(j, &b)| i32::from(b) * mins[j / 2])
        .sum();
    let mut lanes = [0i32; 8];
    for (g, (a, q8)) in q.chunks_exact(8).zip(x.qs.chunks_exact(8)).enumerate() {
        // Quants are at most 31, so they fit the i8 lanes ggml uses.
        let a: [i8; 8] = std::array::from_fn(|l| a[l] as i8);
        accumulate_lanes(&mut lanes, scales[g / 4], &a, q8);
    }
    (lanes, sumi_mins)
}

/// Q4_K · Q8_K (`ggml_vec_dot_q4_K_q8_K_generic`).
pub fn vec_dot_q4_k_q8_k(n: usize, w: &[BlockQ4_K], x: &[BlockQ8_K]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sums = [0.0f32; 8];
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let (lanes, sumi_mins) = dot_q4_q5_k(&q4_k_quants(w), &w.scales, x);
        add_lanes(&mut sums, to_f32(w.d) * x.d, &lanes);
        let dmin = to_f32(w.dmin) * x.d;
        sum -= dmin * sumi_mins as f32;
    }
    sums.iter().fold(sum, |acc, &s| acc + s)
}

/// Q5_K · Q8_K (`ggml_vec_dot_q5_K_q8_K_generic`).
pub fn vec_dot_q5_k_q8_k(n: usize, w: &[BlockQ5_K], x: &[BlockQ8_K]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sums = [0.0f32; 8];
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let (lanes, sumi_mins) = dot_q4_q5_k(&q5_k_quants(w), &w.scales, x);
        add_lanes(&mut sums, to_f32(w.d) * x.d, &lanes);
        let dmin = to_f32(w.dmin) * x.d;
        sum -= dmin * sumi_mins as f32;
    }
    sums.iter().fold(sum, |acc, &s| acc + s)
}

/// Q6_K · Q8_K (`ggml_vec_dot_q6_K_q8_K_generic`).
pub fn vec_dot_q6_k_q8_k(n: usize, w: &[BlockQ6_K], x: &[BlockQ8_K]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sums = [0.0f32; 8];
    for (w, x) in w.iter().zip(x) {
        let a = q6_k_quants(w);
        let lanes = dot_lanes_16(&a, |s| i32::from(w.scales[s]), &x.qs);
        add_lanes(&mut sums, to_f32(w.d) * x.d, &lanes);
    }
    sums.iter().fold(0.0f32, |acc, &s| acc + s)
}

/// Q8_K · Q8_K. ggml has no Q8_K weights (the format only carries activations); this
/// exists so every type has a dot product.
pub fn vec_dot_q8_k_q8_k(n: usize, w: &[BlockQ8_K], x: &[BlockQ8_K]) -> f32 {
    check_dot_len(n, w.len(), x.len());
    let mut sum = 0.0f32;
    for (w, x) in w.iter().zip(x) {
        let sumi: i32 =
            w.qs.iter()
                .zip(&x.qs)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
        sum += sumi as f32 * (w.d * x.d);
    }
    sum
}
