use half::f16;

use super::*;

/// Float ops here differ from the f64 formulas only by f32 rounding, a few ulps over the
/// short rows these tests use.
const TOL: f32 = 1e-5;

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn assert_close(got: &[f32], want: &[f64], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(close(g, w as f32, tol), "index {i}: got {g}, want {w}");
    }
}

#[test]
fn rms_norm_matches_formula() {
    let x = [1.0f32, -2.0, 3.0, 0.5];
    let w = [1.0f32, 0.5, 2.0, -1.0];
    let eps = 1e-6;
    let mean_sq: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / 4.0;
    let scale = 1.0 / (mean_sq + f64::from(eps)).sqrt();
    let want: Vec<f64> = x
        .iter()
        .zip(&w)
        .map(|(&a, &b)| f64::from(a) * scale * f64::from(b))
        .collect();
    let mut out = [0.0f32; 4];
    rms_norm(&x, &w, eps, &mut out);
    assert_close(&out, &want, TOL);
    let mut inplace = x;
    rms_norm_in_place(&mut inplace, &w, eps);
    assert_eq!(inplace, out);
}

#[test]
fn rms_norm_of_zeros_is_zeros() {
    let mut x = [0.0f32; 8];
    rms_norm_in_place(&mut x, &[1.0; 8], 1e-5);
    assert_eq!(x, [0.0; 8]);
}

/// Rope against the textbook formula: pair `i` at position `p` turns by
/// `p * base^(-2i/n_dims)`.
fn rope_direct(style: RopeStyle, head: &[f32], n_dims: usize, pos: usize, base: f64) -> Vec<f64> {
    let mut out: Vec<f64> = head.iter().map(|&v| f64::from(v)).collect();
    for pair in 0..n_dims / 2 {
        let theta = pos as f64 * base.powf(-2.0 * pair as f64 / n_dims as f64);
        let (i, j) = match style {
            RopeStyle::Normal => (2 * pair, 2 * pair + 1),
            RopeStyle::Neox => (pair, pair + n_dims / 2),
        };
        let (x0, x1) = (f64::from(head[i]), f64::from(head[j]));
        out[i] = x0 * theta.cos() - x1 * theta.sin();
        out[j] = x0 * theta.sin() + x1 * theta.cos();
    }
    out
}

fn check_rope(style: RopeStyle, head_dim: usize, n_dims: usize, pos: usize, base: f32) {
    let head: Vec<f32> = (0..head_dim)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let rope = Rope::new(style, n_dims, base);
    let mut cache = vec![0.0; n_dims];
    rope.fill_cache(pos, None, &mut cache);
    let mut got = head.clone();
    rope.apply(&cache, &mut got);
    let want = rope_direct(style, &head, n_dims, pos, f64::from(base));
    // The angle is built by repeated f32 multiplication, as ggml does, so it drifts from
    // the exact angle by a few ulps per pair; at position 1000 that is ~1e-4 radians.
    let tol = 1e-6 * (pos as f32 + 1.0);
    assert_close(&got, &want, tol);
}

#[test]
fn rope_matches_direct_formula() {
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        check_rope(style, 64, 64, 0, 10_000.0);
        check_rope(style, 64, 64, 1, 10_000.0);
        check_rope(style, 64, 64, 17, 100_000.0);
        check_rope(style, 128, 128, 1000, 1_000_000.0);
        check_rope(style, 256, 256, 300, 10_000.0);
        // Partial rotation: the last 32 values pass through.
        check_rope(style, 96, 64, 5, 10_000.0);
    }
}

#[test]
fn rope_at_position_zero_is_identity() {
    let head: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let rope = Rope::new(RopeStyle::Neox, 16, 10_000.0);
    let mut cache = vec![0.0; 16];
    rope.fill_cache(0, None, &mut cache);
    let mut got = head.clone();
    rope.apply(&cache, &mut got);
    assert_eq!(got, head);
}

#[test]
fn rope_freq_factors_divide_the_angle() {
    let rope = Rope::new(RopeStyle::Normal, 8, 10_000.0);
    let factors = [1.0, 2.0, 4.0, 8.0];
    let mut with = vec![0.0; 8];
    rope.fill_cache(10, Some(&factors), &mut with);
    let theta_scale = 10_000f32.powf(-2.0 / 8.0);
    let mut theta = 10.0f32;
    for (pair, ff) in factors.iter().enumerate() {
        assert!(close(with[2 * pair], (theta / ff).cos(), TOL));
        assert!(close(with[2 * pair + 1], (theta / ff).sin(), TOL));
        theta *= theta_scale;
    }
}

#[test]
fn rope_linear_scaling_scales_positions() {
    let mut scaled = Rope::new(RopeStyle::Normal, 8, 10_000.0);
    scaled.freq_scale = 0.25;
    let plain = Rope::new(RopeStyle::Normal, 8, 10_000.0);
    let (mut a, mut b) = (vec![0.0; 8], vec![0.0; 8]);
    scaled.fill_cache(40, None, &mut a);
    plain.fill_cache(10, None, &mut b);
    for (x, y) in a.iter().zip(&b) {
        assert!(close(*x, *y, 1e-4), "{x} vs {y}");
    }
}

#[test]
fn softmax_matches_formula() {
    let mut x = [1.0f32, 2.0, 3.0, -1.0, 0.0];
    let max = 3.0f64;
    let exps: Vec<f64> = x.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let want: Vec<f64> = exps.iter().map(|e| e / sum).collect();
    softmax(&mut x);
    assert_close(&x, &want, TOL);
    let total: f32 = x.iter().sum();
    assert!(close(total, 1.0, TOL));
}

#[test]
fn softmax_handles_masked_rows() {
    let mut x = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
    softmax(&mut x);
    assert_eq!(x, [0.0, 1.0, 0.0]);
    let mut all = [f32::NEG_INFINITY; 3];
    softmax(&mut all);
    assert_eq!(all, [0.0; 3]);
}

#[test]
fn silu_values() {
    assert_eq!(silu(0.0), 0.0);
    assert!(close(silu(1.0), 0.731_058_6, TOL));
    assert!(close(silu(-2.0), -0.238_405_85, TOL));
    let mut gate = [1.0f32, -2.0];
    swiglu(&mut gate, &[2.0, 3.0]);
    assert!(close(gate[0], 2.0 * 0.731_058_6, TOL));
    assert!(close(gate[1], 3.0 * -0.238_405_85, TOL));
}

#[test]
fn gelu_exact_values() {
    // tanh-approximation GELU, values from the formula in f64.
    let formula = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
    };
    for x in [-3.0f32, -1.0, -0.1, 0.0, 0.5, 1.0, 2.5, 6.0] {
        let want = formula(f64::from(x)) as f32;
        assert!(close(gelu_exact(x), want, TOL), "gelu_exact({x})");
    }
}

#[test]
fn gelu_uses_the_f16_table() {
    // Inside (-10, 10) the result is the f16-rounded GELU of the f16-rounded input.
    for x in [-9.5f32, -3.3, -1.0, -0.123, 0.0, 0.4567, 1.0, 2.71, 9.99] {
        let rounded = f16::from_f32(x).to_f32();
        let want = f16::from_f32(gelu_exact(rounded)).to_f32();
        assert_eq!(gelu(x), want, "gelu({x})");
        // And it stays within f16 precision of the exact value.
        assert!(close(gelu(x), gelu_exact(x), 2e-3), "gelu({x})");
    }
    assert_eq!(gelu(-10.0), 0.0);
    assert_eq!(gelu(-50.0), 0.0);
    assert_eq!(gelu(10.0), 10.0);
    assert_eq!(gelu(123.0), 123.0);
    let mut gate = [1.0f32, -20.0, 20.0];
    geglu(&mut gate, &[2.0, 5.0, 0.5]);
    assert_eq!(gate, [gelu(1.0) * 2.0, 0.0, 10.0]);
}

/// Attention by the two-pass formula in f64, the oracle for the online softmax.
#[allow(clippy::too_many_arguments)]
fn attention_direct(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    kv_dim: usize,
    kv_offset: usize,
    positions: std::ops::Range<usize>,
    scale: f32,
) -> Vec<f64> {
    let head_dim = q.len();
    let scores: Vec<f64> = positions
        .clone()
        .map(|p| {
            let row = &k[p * kv_dim + kv_offset..][..head_dim];
            q.iter()
                .zip(row)
                .map(|(&a, &b)| f64::from(a) * f64::from(b.to_f32()))
                .sum::<f64>()
                * f64::from(scale)
        })
        .collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = weights.iter().sum();
    let mut out = vec![0.0f64; head_dim];
    for (p, w) in positions.zip(&weights) {
        let row = &v[p * kv_dim + kv_offset..][..head_dim];
        for (o, x) in out.iter_mut().zip(row) {
            *o += w / sum * f64::from(x.to_f32());
        }
    }
    out
}

fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[test]
fn attention_matches_two_pass_formula_with_gqa_and_window() {
    let (n_heads, n_kv_heads, head_dim) = (6, 2, 8);
    let kv_dim = n_kv_heads * head_dim;
    let n_positions = 12;
    let k: Vec<f16> = pseudo_random(n_positions * kv_dim, 1)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let v: Vec<f16> = pseudo_random(n_positions * kv_dim, 2)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    for window in [None, Some(4)] {
        let params = AttentionParams {
            n_heads,
            n_kv_heads,
            head_dim,
            scale: 0.35,
            window,
        };
        let first_pos = 5;
        let n_tokens = n_positions - first_pos;
        let q: Vec<f32> = pseudo_random(n_tokens * n_heads * head_dim, 3)
            .iter()
            .map(|x| x * 3.0)
            .collect();
        let mut out = vec![0.0; q.len()];
        attention(&params, &q, &k, &v, first_pos, &mut out);
        for t in 0..n_tokens {
            for h in 0..n_heads {
                let at = (t * n_heads + h) * head_dim;
                let kv_offset = (h / (n_heads / n_kv_heads)) * head_dim;
                let want = attention_direct(
                    &q[at..at + head_dim],
                    &k,
                    &v,
                    kv_dim,
                    kv_offset,
                    params.visible(first_pos + t),
                    params.scale,
                );
                assert_close(&out[at..at + head_dim], &want, 1e-5);
            }
        }
    }
}

#[test]
fn attention_window_bounds() {
    let p = AttentionParams {
        n_heads: 1,
        n_kv_heads: 1,
        head_dim: 1,
        scale: 1.0,
        window: Some(512),
    };
    assert_eq!(p.visible(0), 0..1);
    assert_eq!(p.visible(511), 0..512);
    assert_eq!(p.visible(512), 1..513);
    let full = AttentionParams { window: None, ..p };
    assert_eq!(full.visible(1000), 0..1001);
}

#[test]
fn attention_over_one_position_returns_its_value() {
    let v: Vec<f16> = [0.5f32, -1.0, 2.0, 0.25]
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let k: Vec<f16> = [1.0f32, 1.0, 1.0, 1.0]
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let mut out = [0.0f32; 4];
    attention_row(&[3.0, -1.0, 0.0, 2.0], &k, &v, 4, 0, 0..1, 0.5, &mut out);
    assert_eq!(out, [0.5, -1.0, 2.0, 0.25]);
}

#[test]
fn attention_over_many_tiles_and_blocks_matches_the_formula() {
    // Longer than a key tile and a token block, windows crossing tile edges, a decode
    // step (one token) and a prefill spread over the pool.
    let (n_heads, n_kv_heads, head_dim) = (8, 2, 40);
    let kv_dim = n_kv_heads * head_dim;
    let n_positions = 150;
    let k: Vec<f16> = pseudo_random(n_positions * kv_dim, 4)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let v: Vec<f16> = pseudo_random(n_positions * kv_dim, 5)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    for (first_pos, window) in [
        (30, None),
        (30, Some(70)),
        (149, None),
        (149, Some(33)),
        (0, Some(1)),
    ] {
        let n_tokens = n_positions - first_pos;
        let q: Vec<f32> = pseudo_random(n_tokens * n_heads * head_dim, 6)
            .iter()
            .map(|x| x * 2.0)
            .collect();
        let params = AttentionParams {
            n_heads,
            n_kv_heads,
            head_dim,
            scale: 0.3,
            window,
        };
        let mut out = vec![0.0; q.len()];
        attention(&params, &q, &k, &v, first_pos, &mut out);
        let mut row = vec![0.0; head_dim];
        for t in 0..n_tokens {
            for h in 0..n_heads {
                let at = (t * n_heads + h) * head_dim;
                let kv_offset = (h / (n_heads / n_kv_heads)) * head_dim;
                let positions = params.visible(first_pos + t);
                let want = attention_direct(
                    &q[at..at + head_dim],
                    &k,
                    &v,
                    kv_dim,
                    kv_offset,
                    positions.clone(),
                    params.scale,
                );
                assert_close(&out[at..at + head_dim], &want, 1e-5);
                attention_row(
                    &q[at..at + head_dim],
                    &k,
                    &v,
                    kv_dim,
                    kv_offset,
                    positions,
                    params.scale,
                    &mut row,
                );
                assert_close(&row, &want, 1e-5);
            }
        }
    }
}
