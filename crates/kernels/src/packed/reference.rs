//! The scalar packed kernel: the definition every SIMD version reproduces bit for bit.
//!
//! For row `r` and token `t`, over the row's blocks in order, starting from `acc = 0`:
//! - Q4_0, Q5_0, Q8_0: `isum = Σ code·x − off·Σx` (off 8, 16, 128);
//!   `acc = fma(isum, d_w · d_x, acc)`.
//! - Q4_1, Q5_1: `isum = Σ code·x`; `acc = fma(isum, d_w · d_x, acc)`; the minimums
//!   in a second sum, `macc = fma(m_w, s_x, macc)`, added at the end (`acc + macc`), as
//!   ggml keeps them apart.
//! - Q4_K (per 256): `isum = Σ_j sc_j · Σ_{sub j} code·x`, `imin = Σ_j min_j · (bsum_2j +
//!   bsum_2j+1)`; `acc = fma(isum, d · d_x, acc)`; `acc = fma(−imin, dmin · d_x, acc)`.
//! - Q6_K (per 256): `isum = Σ_j sc_j · (Σ_{sub j} code·x − 32 · bsum_j)`;
//!   `acc = fma(isum, d · d_x, acc)`.
//!
//! Integer sums are exact (ggml's integers); `fma` is the fused multiply-add.
//!
//! The lane order ([`gemm_lanes`], 32-value formats only) is ggml's AVX2 dot product's:
//! eight sums per row and token, sum `k` taking values `4k..4k+4` of every block:
//! `lane_k = fma(Σ_{4 values} (code − off)·x, d_w · d_x, lane_k)`; at the end
//! `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`, plus the minimums' sum
//! (`macc = fma(m_w, s_x, macc)`, ggml's `summs`) for Q4_1 and Q5_1.

use half::f16;

use super::layout::*;
use super::{check_call, PackedActs, PackedFormat, GROUP, MAX_TOKENS};

fn f16_at(bytes: &[u8], r: usize) -> f32 {
    f16::from_le_bytes([bytes[2 * r], bytes[2 * r + 1]]).to_f32()
}

/// Code of value `i` (0..32) of row `r` from 4 nibble lines (and a fifth-bit plane).
fn nibble_code(lines: &[u8], bits: Option<&[u8]>, r: usize, i: usize) -> i32 {
    let (k, j) = (i / 4, i % 4);
    let byte = lines[64 * (k % 4) + 4 * r + j];
    let mut code = if k < 4 { byte & 0x0f } else { byte >> 4 };
    if let Some(bits) = bits {
        let bit = 4 * r + j;
        code |= ((bits[8 * k + bit / 8] >> (bit % 8)) & 1) << 4;
    }
    i32::from(code)
}

/// Code of value `i` (0..32) of row `r` of a Q6_K chunk.
fn q6k_code(chunk: &[u8], r: usize, i: usize) -> i32 {
    let (k, j) = (i / 4, i % 4);
    let low = nibble_code(&chunk[..256], None, r, i);
    let plane = chunk[Q6K_HI + 64 * (k / 4) + 4 * r + j];
    low | i32::from((plane >> (2 * (k % 4))) & 3) << 4
}

/// The scalar kernel in the lane order: see the module documentation. Only for the
/// 32-value formats.
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
    for (t, out_t) in out.iter_mut().enumerate().take(n_tokens) {
        for (r, o) in out_t.iter_mut().enumerate() {
            *o = row_token_lanes(format, group, acts, t0 + t, r);
        }
    }
}

fn row_token_lanes(format: PackedFormat, group: &[u8], a: &PackedActs, t: usize, r: usize) -> f32 {
    let n_cols = a.n_cols;
    let nb = n_cols / 32;
    let x = &a.qs[t * n_cols..(t + 1) * n_cols];
    let (d_off, m_off, bits, off) = legacy_layout(format);
    let mut lanes = [0.0f32; 8];
    let mut macc = 0.0f32;
    for (b, blk) in group
        .chunks_exact(format.group_block_bytes())
        .take(nb)
        .enumerate()
    {
        let scale = f16_at(&blk[d_off..], r) * a.d[t * nb + b];
        for (k, lane) in lanes.iter_mut().enumerate() {
            let dot: i32 = (4 * k..4 * k + 4)
                .map(|i| legacy_code(format, blk, bits, r, i) * i32::from(x[32 * b + i]))
                .sum();
            let isum = if off != 0 {
                dot - off * a.sums4[t * (n_cols / 4) + 8 * b + k]
            } else {
                dot
            };
            *lane = (isum as f32).mul_add(scale, *lane);
        }
        if let Some(m_off) = m_off {
            macc = f16_at(&blk[m_off..], r).mul_add(a.s[t * nb + b], macc);
        }
    }
    let l = lanes;
    let sum = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    if m_off_of(format).is_some() {
        sum + macc
    } else {
        sum
    }
}

/// Offsets of d, m and the fifth bits, and the code offset, of a 32-value format.
fn legacy_layout(format: PackedFormat) -> (usize, Option<usize>, Option<usize>, i32) {
    match format {
        PackedFormat::Q4_0 => (Q4_0_D, None, None, 8),
        PackedFormat::Q4_1 => (Q4_1_D, Some(Q4_1_M), None, 0),
        PackedFormat::Q5_0 => (Q5_0_D, None, Some(Q5_0_QH), 16),
        PackedFormat::Q5_1 => (Q5_1_D, Some(Q5_1_M), Some(Q5_1_QH), 0),
        _ => (Q8_0_D, None, None, 128),
    }
}

fn m_off_of(format: PackedFormat) -> Option<usize> {
    legacy_layout(format).1
}

/// Code of value `i` of row `r` in a 32-value block.
fn legacy_code(format: PackedFormat, blk: &[u8], bits: Option<usize>, r: usize, i: usize) -> i32 {
    if format == PackedFormat::Q8_0 {
        i32::from(blk[64 * (i / 4) + 4 * r + i % 4])
    } else {
        nibble_code(&blk[..256], bits.map(|o| &blk[o..o + 64]), r, i)
    }
}

/// The scalar kernel: see the module documentation.
pub(crate) fn gemm(
    format: PackedFormat,
    group: &[u8],
    acts: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
) {
    check_call(format, group, acts, t0, n_tokens);
    for (t, out_t) in out.iter_mut().enumerate().take(n_tokens) {
        for (r, o) in out_t.iter_mut().enumerate() {
            *o = row_token(format, group, acts, t0 + t, r);
        }
    }
}

fn row_token(format: PackedFormat, group: &[u8], a: &PackedActs, t: usize, r: usize) -> f32 {
    let n_cols = a.n_cols;
    let x = &a.qs[t * n_cols..(t + 1) * n_cols];
    let bv = format.block_values();
    let mut acc = 0.0f32;
    let mut macc = 0.0f32;
    for (b, blk) in group
        .chunks_exact(format.group_block_bytes())
        .take(n_cols / bv)
        .enumerate()
    {
        let xb = &x[b * bv..(b + 1) * bv];
        match format {
            PackedFormat::Q4K => {
                let d_x = a.d[t * (n_cols / 256) + b];
                let bsum = &a.sums[t * (n_cols / 16) + 16 * b..][..16];
                let (mut isum, mut imin) = (0i32, 0i32);
                for j in 0..8 {
                    let lines = &blk[Q4K_SUB * j..Q4K_SUB * (j + 1)];
                    let dot: i32 = (0..32)
                        .map(|i| nibble_code(lines, None, r, i) * i32::from(xb[32 * j + i]))
                        .sum();
                    isum += i32::from(blk[Q4K_SC + 16 * j + r]) * dot;
                    imin += i32::from(blk[Q4K_MIN + 16 * j + r]) * (bsum[2 * j] + bsum[2 * j + 1]);
                }
                acc = (isum as f32).mul_add(f16_at(&blk[Q4K_D..], r) * d_x, acc);
                acc = (-(imin as f32)).mul_add(f16_at(&blk[Q4K_DMIN..], r) * d_x, acc);
            }
            PackedFormat::Q6K => {
                let d_x = a.d[t * (n_cols / 256) + b];
                let bsum = &a.sums[t * (n_cols / 16) + 16 * b..][..16];
                let mut isum = 0i32;
                for j in 0..16 {
                    let chunk = &blk[Q6K_CHUNK * (j / 2)..Q6K_CHUNK * (j / 2 + 1)];
                    let dot: i32 = (0..16)
                        .map(|i| {
                            let ic = 16 * (j % 2) + i;
                            q6k_code(chunk, r, ic) * i32::from(xb[16 * j + i])
                        })
                        .sum();
                    let sc = i32::from(blk[Q6K_SC + 16 * j + r] as i8);
                    isum += sc * (dot - 32 * bsum[j]);
                }
                acc = (isum as f32).mul_add(f16_at(&blk[Q6K_D..], r) * d_x, acc);
            }
            _ => {
                let nb = n_cols / 32;
                let d_x = a.d[t * nb + b];
                let (d_off, m_off, bits, off) = legacy_layout(format);
                let dot: i32 = (0..32)
                    .map(|i| legacy_code(format, blk, bits, r, i) * i32::from(xb[i]))
                    .sum();
                let isum = if off != 0 {
                    dot - off * a.sums[t * nb + b]
                } else {
                    dot
                };
                acc = (isum as f32).mul_add(f16_at(&blk[d_off..], r) * d_x, acc);
                if let Some(m_off) = m_off {
                    macc = f16_at(&blk[m_off..], r).mul_add(a.s[t * nb + b], macc);
                }
            }
        }
    }
    acc + macc
}
