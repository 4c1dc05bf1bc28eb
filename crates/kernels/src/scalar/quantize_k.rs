//! Reference quantization of the K-quants, ggml's `quantize_row_*_ref` for Q2_K … Q6_K
//! and Q8_K (`ggml-quants.c`), with the scale searches they use: `make_qkx2_quants`
//! (asymmetric, scale and min: Q2_K, Q4_K, Q5_K), `make_q3_quants` (symmetric with
//! coordinate descent: Q3_K) and `make_qx_quants` (symmetric, weighted: Q6_K).
//!
//! These are the `_ref` paths ggml uses without an importance matrix. Q8_K is the
//! activation format of every K-quant; its quantization is on the token path.

// The loops index several arrays by sub-block number in step, as ggml's code does;
// keeping the indices makes the port easy to check line by line.
#![allow(clippy::needless_range_loop)]

use half::f16;

use super::kquants::scale_min_k4;
use super::nearest_int;
use crate::blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};
use crate::QK_K;

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below this is all zeros.
const GROUP_MAX_EPS: f32 = 1e-15;

fn check_row_len(n_blocks: usize, n_values: usize) {
    assert_eq!(
        n_blocks * QK_K,
        n_values,
        "block count does not match the value count"
    );
}

/// Packs 256 two-bit values (Q2_K quants, Q3_K low bits) as ggml lays them out: byte
/// `32 * (i / 128) + i % 32`, bits `2 * ((i / 32) % 4)`.
fn pack_2bit(levels: &[u8; QK_K], qs: &mut [u8; QK_K / 4]) {
    for (chunk, levels) in levels.chunks_exact(128).enumerate() {
        for l in 0..32 {
            qs[32 * chunk + l] =
                levels[l] | (levels[l + 32] << 2) | (levels[l + 64] << 4) | (levels[l + 96] << 6);
        }
    }
}

/// The scales `make_qkx2_quants` tries: `(nmax + rmin + rdelta * k) / (max - min)` for
/// `k` in `0..=nstep`, scored by absolute error (`use_mad`) or squared error.
struct ScaleSearch {
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
}

/// `sum w_i err(scale * l_i + min - x_i)`, in ggml's order.
fn weighted_error(
    scale: f32,
    min: f32,
    levels: &[u8],
    x: &[f32],
    weights: &[f32],
    use_mad: bool,
) -> f32 {
    let mut total = 0.0f32;
    for ((&l, &xi), &w) in levels.iter().zip(x).zip(weights) {
        let diff = scale * f32::from(l) + min - xi;
        total += w * if use_mad { diff.abs() } else { diff * diff };
    }
    total
}

/// `make_qkx2_quants`: levels `0..=nmax` for `x ≈ scale * level - min` minimizing the
/// weighted error, starting from `nmax / (max - min)` and refitting scale and min by
/// weighted least squares for each scale of `search`. Returns `(scale, min)`, the min
/// to subtract (`>= 0`).
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    levels: &mut [u8],
    search: &ScaleSearch,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    for (l, &xi) in levels.iter_mut().zip(x) {
        *l = nearest_int(iscale * (xi - min)).clamp(0, nmax) as u8;
    }
    let mut best_error = weighted_error(scale, min, levels, x, weights, search.use_mad);
    if search.nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0u8; 32];
    let aux = &mut aux[..n];
    for is in 0..=search.nstep {
        let iscale = (search.rmin + search.rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            aux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let cur_error = weighted_error(this_scale, this_min, aux, x, weights, search.use_mad);
            if cur_error < best_error {
                levels.copy_from_slice(aux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Largest magnitude of `x` and the signed value that has it (the first on ties).
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (amax, max)
}

/// `make_q3_quants` with `do_rmse`: symmetric levels `-nmax..nmax` (stored `+ nmax`)
/// fitted by least squares weighted with `x²`, then up to five rounds of changing one
/// level at a time while that lowers the error. Returns the scale.
fn make_q3_quants(nmax: i32, x: &[f32], levels: &mut [i8]) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (l_out, &xi) in levels.iter_mut().zip(x) {
        let l = nearest_int(iscale * xi).clamp(-nmax, nmax - 1);
        *l_out = l as i8;
        let w = xi * xi;
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (l_io, &xi) in levels.iter_mut().zip(x) {
            let w = xi * xi;
            let old = f32::from(*l_io);
            let mut slx = sumlx - w * xi * old;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * old * old;
                let new_l = nearest_int(xi * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != i32::from(*l_io) {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *l_io = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for l in levels.iter_mut() {
        *l += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// The weighted sums `(sum w x l, sum w l²)` of `make_qx_quants` for one trial scale,
/// with `w = x²` (`rmse_type` 1, no importance weights).
fn qx_sums(nmax: i32, iscale: f32, x: &[f32], mut store: impl FnMut(usize, i32)) -> (f32, f32) {
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (i, &xi) in x.iter().enumerate() {
        let l = nearest_int(iscale * xi).clamp(-nmax, nmax - 1);
        store(i, l);
        let w = xi * xi;
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    (sumlx, suml2)
}

/// `make_qx_quants` with `rmse_type` 1 and no importance weights: symmetric levels
/// (stored `+ nmax`) for the best of 19 scales around `-nmax / max`, scored by the
/// `x²`-weighted least-squares fit. Returns the scale.
fn make_qx_quants(nmax: i32, x: &[f32], levels: &mut [i8]) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (sumlx, suml2) = qx_sums(nmax, iscale, x, |i, l| levels[i] = (l + nmax) as i8);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = qx_sums(nmax, iscale, x, |_, _| {});
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            qx_sums(nmax, iscale, x, |i, l| levels[i] = (l + nmax) as i8);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

// ---------------------------------------------------------------- quantize

/// Q2_K's scale search: 16 steps of 0.1 from `nmax - 0.5`, absolute error (ggml's
/// arguments to `make_qkx2_quants` in `quantize_row_q2_K_ref`).
const Q2_K_SEARCH: ScaleSearch = ScaleSearch {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: true,
};
/// Q4_K's scale search: 21 steps of 0.1 from `nmax - 1`, squared error.
const Q4_K_SEARCH: ScaleSearch = ScaleSearch {
    rmin: -1.0,
    rdelta: 0.1,
    nstep: 20,
    use_mad: false,
};
/// Q5_K's scale search: 16 steps of 0.1 from `nmax - 0.5`, squared error.
const Q5_K_SEARCH: ScaleSearch = ScaleSearch {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: false,
};

/// f32 to Q2_K (`quantize_row_q2_K_ref`).
pub fn quantize_row_q2_k(x: &[f32], y: &mut [BlockQ2_K]) {
    check_row_len(y.len(), x.len());
    const Q4SCALE: f32 = 15.0;
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut levels = [0u8; QK_K];
        let mut scales = [0.0f32; QK_K / 16];
        let mut mins = [0.0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..QK_K / 16 {
            let xs = &x[16 * j..16 * j + 16];
            let weights: [f32; 16] = std::array::from_fn(|l| xs[l].abs());
            let (scale, min) = make_qkx2_quants(
                3,
                xs,
                &weights,
                &mut levels[16 * j..16 * j + 16],
                &Q2_K_SEARCH,
            );
            scales[j] = scale;
            mins[j] = min;
            if scale > max_scale {
                max_scale = scale;
            }
            if min > max_min {
                max_min = min;
            }
        }
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..QK_K / 16 {
                block.scales[j] = nearest_int(iscale * scales[j]) as u8;
            }
            block.d = f16::from_f32(max_scale / Q4SCALE);
        } else {
            block.scales = [0; QK_K / 16];
            block.d = f16::from_f32(0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..QK_K / 16 {
                let l = nearest_int(iscale * mins[j]);
                block.scales[j] |= (l << 4) as u8;
            }
            block.dmin = f16::from_f32(max_min / Q4SCALE);
        } else {
            block.dmin = f16::from_f32(0.0);
        }
        let d_all = block.d.to_f32();
        let dmin_all = block.dmin.to_f32();
        for j in 0..QK_K / 16 {
            let d = d_all * f32::from(block.scales[j] & 0x0f);
            if d == 0.0 {
                continue;
            }
            let dm = dmin_all * f32::from(block.scales[j] >> 4);
            for ii in 0..16 {
                let l = nearest_int((x[16 * j + ii] + dm) / d);
                levels[16 * j + ii] = l.clamp(0, 3) as u8;
            }
        }
        pack_2bit(&levels, &mut block.qs);
    }
}

/// f32 to Q3_K (`quantize_row_q3_K_ref`).
pub fn quantize_row_q3_k(x: &[f32], y: &mut [BlockQ3_K]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut levels = [0i8; QK_K];
        let mut scales = [0.0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for j in 0..QK_K / 16 {
            scales[j] =
                make_q3_quants(4, &x[16 * j..16 * j + 16], &mut levels[16 * j..16 * j + 16]);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        block.scales = [0; 12];
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..QK_K / 16 {
                // ggml stores nearest_int's result in an int8_t before clamping.
                let l = (nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32;
                let l = l as u8;
                if j < 8 {
                    block.scales[j] = l & 0x0f;
                } else {
                    block.scales[j - 8] |= (l & 0x0f) << 4;
                }
                block.scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            block.d = f16::from_f32(1.0 / iscale);
        } else {
            block.d = f16::from_f32(0.0);
        }
        let d_all = block.d.to_f32();
        let unpacked = super::kquants::q3_k_scales(&block.scales);
        for j in 0..QK_K / 16 {
            let d = d_all * f32::from(unpacked[j]);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let l = nearest_int(x[16 * j + ii] / d).clamp(-4, 3);
                levels[16 * j + ii] = (l + 4) as i8;
            }
        }
        // The third bit of value j goes to bit j / 32 of hmask[j % 32].
        block.hmask = [0; QK_K / 8];
        let mut low = [0u8; QK_K];
        for (j, (&l, low)) in levels.iter().zip(low.iter_mut()).enumerate() {
            let mut l = l as u8;
            if l > 3 {
                block.hmask[j % 32] |= 1 << (j / 32);
                l -= 4;
            }
            *low = l;
        }
        pack_2bit(&low, &mut block.qs);
    }
}

/// Packs the 6-bit scales and mins of Q4_K and Q5_K (the inverse of [`scale_min_k4`]).
fn pack_scales_k4(ls: &[u8; 8], lm: &[u8; 8], packed: &mut [u8; 12]) {
    *packed = [0; 12];
    for j in 0..8 {
        if j < 4 {
            packed[j] = ls[j];
            packed[j + 4] = lm[j];
        } else {
            packed[j + 4] = (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4);
            packed[j - 4] |= (ls[j] >> 4) << 6;
            packed[j] |= (lm[j] >> 4) << 6;
        }
    }
}

/// The shared part of `quantize_row_q4_K_ref` and `quantize_row_q5_K_ref`: per
/// sub-block of 32, `make_qkx2_quants` weighted by `rms + |x|`, then 6-bit scales and
/// mins, then the levels again from the rounded scales. Returns the levels `0..=nmax`.
fn quantize_block_k4(
    nmax: i32,
    search: &ScaleSearch,
    x: &[f32],
    d_out: &mut f16,
    dmin_out: &mut f16,
    packed: &mut [u8; 12],
) -> [u8; QK_K] {
    let mut levels = [0u8; QK_K];
    let mut scales = [0.0f32; QK_K / 32];
    let mut mins = [0.0f32; QK_K / 32];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2 = xs.iter().fold(0.0f32, |acc, &v| acc + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|l| av_x + xs[l].abs());
        let (scale, min) =
            make_qkx2_quants(nmax, xs, &weights, &mut levels[32 * j..32 * j + 32], search);
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // ggml stores nearest_int's result in a uint8_t before clamping to 63.
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    pack_scales_k4(&ls, &lm, packed);
    *d_out = f16::from_f32(max_scale / 63.0);
    *dmin_out = f16::from_f32(max_min / 63.0);
    let d_all = d_out.to_f32();
    let dmin_all = dmin_out.to_f32();
    for j in 0..QK_K / 32 {
        let (sc, m) = scale_min_k4(j, packed);
        let d = d_all * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * f32::from(m);
        for ii in 0..32 {
            let l = nearest_int((x[32 * j + ii] + dm) / d);
            levels[32 * j + ii] = l.clamp(0, nmax) as u8;
        }
    }
    levels
}

/// f32 to Q4_K (`quantize_row_q4_K_ref`).
pub fn quantize_row_q4_k(x: &[f32], y: &mut [BlockQ4_K]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let levels = quantize_block_k4(
            15,
            &Q4_K_SEARCH,
            x,
            &mut block.d,
            &mut block.dmin,
            &mut block.scales,
        );
        for (chunk, levels) in levels.chunks_exact(64).enumerate() {
            for l in 0..32 {
                block.qs[32 * chunk + l] = levels[l] | (levels[l + 32] << 4);
            }
        }
    }
}

/// f32 to Q5_K (`quantize_row_q5_K_ref`).
pub fn quantize_row_q5_k(x: &[f32], y: &mut [BlockQ5_K]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let levels = quantize_block_k4(
            31,
            &Q5_K_SEARCH,
            x,
            &mut block.d,
            &mut block.dmin,
            &mut block.scales,
        );
        block.qh = [0; QK_K / 8];
        for (chunk, levels) in levels.chunks_exact(64).enumerate() {
            let (m1, m2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
            for j in 0..32 {
                let mut l1 = levels[j];
                if l1 > 15 {
                    l1 -= 16;
                    block.qh[j] |= m1;
                }
                let mut l2 = levels[j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    block.qh[j] |= m2;
                }
                block.qs[32 * chunk + j] = l1 | (l2 << 4);
            }
        }
    }
}

/// f32 to Q6_K (`quantize_row_q6_K_ref`).
pub fn quantize_row_q6_k(x: &[f32], y: &mut [BlockQ6_K]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut levels = [0i8; QK_K];
        let mut scales = [0.0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        for ib in 0..QK_K / 16 {
            let scale = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut levels[16 * ib..16 * ib + 16],
            );
            scales[ib] = scale;
            if scale.abs() > max_abs_scale {
                max_abs_scale = scale.abs();
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            *block = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -128.0 / max_scale;
        block.d = f16::from_f32(1.0 / iscale);
        for ib in 0..QK_K / 16 {
            block.scales[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
        }
        let d_all = block.d.to_f32();
        for j in 0..QK_K / 16 {
            let d = d_all * f32::from(block.scales[j]);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let l = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
                levels[16 * j + ii] = (l + 32) as i8;
            }
        }
        for (half, levels) in levels.chunks_exact(128).enumerate() {
            let ql = &mut block.ql[64 * half..64 * half + 64];
            let qh = &mut block.qh[32 * half..32 * half + 32];
            for l in 0..32 {
                let q =
                    [levels[l], levels[l + 32], levels[l + 64], levels[l + 96]].map(|v| v as u8);
                ql[l] = (q[0] & 0x0f) | ((q[2] & 0x0f) << 4);
                ql[l + 32] = (q[1] & 0x0f) | ((q[3] & 0x0f) << 4);
                qh[l] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
            }
        }
    }
}

/// f32 to Q8_K (`quantize_row_q8_K_ref`), the activation format of the K-quants:
/// `d = max / -127` where `max` is the value of largest magnitude (so it maps to -127),
/// quants by `nearest_int` clamped to 127, and the sums of each 16 quants.
pub fn quantize_row_q8_k(x: &[f32], y: &mut [BlockQ8_K]) {
    check_row_len(y.len(), x.len());
    for (block, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (amax, max) = signed_absmax(x);
        if amax == 0.0 {
            // ggml leaves bsums untouched here; zero is what they would sum to.
            *block = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in block.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (sum, qs) in block.bsums.iter_mut().zip(block.qs.chunks_exact(16)) {
            *sum = qs.iter().map(|&q| i16::from(q)).sum();
        }
        block.d = 1.0 / iscale;
    }
}
