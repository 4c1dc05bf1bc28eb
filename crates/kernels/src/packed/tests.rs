use super::*;
use crate::dispatch::Kernels;
use crate::matmul::{quantize_packed_acts, MatmulScratch, WeightView};

/// Offsets of the f16 scales in a source block, which random bytes must not make huge.
fn scale_offsets(format: PackedFormat) -> &'static [usize] {
    match format {
        PackedFormat::Q4_0 | PackedFormat::Q5_0 | PackedFormat::Q8_0 => &[0],
        PackedFormat::Q4_1 | PackedFormat::Q5_1 | PackedFormat::Q4K => &[0, 2],
        PackedFormat::Q6K => &[208],
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() % 20001) as f32 / 10000.0 - 1.0
    }
}

fn random_weights(format: PackedFormat, n_rows: usize, n_cols: usize, rng: &mut Rng) -> Vec<u8> {
    let dtype = format.dtype();
    let len = dtype.row_bytes(n_cols).unwrap() * n_rows;
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    for block in bytes.chunks_exact_mut(dtype.type_size()) {
        for &off in scale_offsets(format) {
            let v = half::f16::from_f32(rng.f32() * 0.05);
            block[off..off + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

/// Shapes with a partial last group and several blocks.
fn shapes(format: PackedFormat) -> [(usize, usize); 3] {
    let bv = format.block_values();
    [(37, bv * 3), (16, bv), (5, bv * 2)]
}

fn run_gemm(k: &Kernels, m: &PackedMatrix, x: &[f32], n_tokens: usize) -> Vec<f32> {
    run_with(k.packed_gemm, MAX_TOKENS, m, x, n_tokens)
}

fn run_with(
    gemm: PackedGemmFn,
    max_tile: usize,
    m: &PackedMatrix,
    x: &[f32],
    n_tokens: usize,
) -> Vec<f32> {
    let mut scratch = MatmulScratch::default();
    quantize_packed_acts(
        m.format().act_type(),
        m.n_cols(),
        x,
        n_tokens,
        &mut scratch,
        false,
    );
    let acts = scratch.acts_for(m.format().act_type());
    let mut out = vec![0.0f32; n_tokens * m.n_rows()];
    let mut buf = [[0.0f32; GROUP]; MAX_TOKENS];
    for g in 0..m.n_groups() {
        let mut t0 = 0;
        while t0 < n_tokens {
            // Uneven token counts exercise every tile size.
            let nt = (max_tile - (g + t0) % max_tile.min(3)).min(n_tokens - t0);
            gemm(m.format(), m.group(g), acts, t0, nt, &mut buf);
            for (t, values) in buf.iter().enumerate().take(nt) {
                for (r, &v) in values.iter().enumerate() {
                    let row = g * GROUP + r;
                    if row < m.n_rows() {
                        out[(t0 + t) * m.n_rows() + row] = v;
                    }
                }
            }
            t0 += nt;
        }
    }
    out
}

#[test]
fn reference_matches_ggml_dot_products() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let scalar = Kernels::scalar();
    for format in PackedFormat::ALL {
        for (n_rows, n_cols) in shapes(format) {
            let w = random_weights(format, n_rows, n_cols, &mut rng);
            let view = WeightView {
                dtype: format.dtype(),
                data: &w,
                n_rows,
                n_cols,
            };
            let m = pack(&view).unwrap();
            let n_tokens = 11;
            let x: Vec<f32> = (0..n_tokens * n_cols).map(|_| rng.f32()).collect();
            let got = run_gemm(&scalar, &m, &x, n_tokens);
            let act = format.act_type();
            let row_bytes = act.row_bytes(n_cols).unwrap();
            for t in 0..n_tokens {
                let mut xq = vec![0u8; row_bytes];
                scalar.quantize_row(act, &x[t * n_cols..(t + 1) * n_cols], &mut xq);
                for r in 0..n_rows {
                    let wr = &w[r * view.row_bytes()..(r + 1) * view.row_bytes()];
                    let want = scalar.vec_dot(format.dtype(), n_cols, wr, &xq);
                    let g = got[t * n_rows + r];
                    let tol = 1e-4 * (1.0 + want.abs());
                    assert!(
                        (g - want).abs() <= tol,
                        "{format:?} {n_rows}x{n_cols} r{r} t{t}: {g} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_isa_matches_the_reference_exactly() {
    let mut rng = Rng(0xD1B54A32D192ED03);
    let scalar = Kernels::scalar();
    for k in Kernels::supported() {
        for format in PackedFormat::ALL {
            for (n_rows, n_cols) in shapes(format) {
                let w = random_weights(format, n_rows, n_cols, &mut rng);
                let view = WeightView {
                    dtype: format.dtype(),
                    data: &w,
                    n_rows,
                    n_cols,
                };
                let m = pack(&view).unwrap();
                let n_tokens = 13;
                let x: Vec<f32> = (0..n_tokens * n_cols).map(|_| rng.f32() * 3.0).collect();
                let want = run_gemm(&scalar, &m, &x, n_tokens);
                let got = run_gemm(&k, &m, &x, n_tokens);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{:?} {format:?} {n_rows}x{n_cols} at {i}: {g} vs {w}",
                        k.isa
                    );
                }
            }
        }
    }
}

#[test]
fn the_lane_order_matches_ggml_and_every_isa_matches_it_exactly() {
    let mut rng = Rng(0x0BAD_F00D_DEAD_BEEF);
    let scalar = Kernels::scalar();
    let legacy = PackedFormat::ALL
        .into_iter()
        .filter(|f| f.block_values() == 32);
    for format in legacy {
        for (n_rows, n_cols) in shapes(format) {
            let w = random_weights(format, n_rows, n_cols, &mut rng);
            let view = WeightView {
                dtype: format.dtype(),
                data: &w,
                n_rows,
                n_cols,
            };
            let m = pack(&view).unwrap();
            let n_tokens = 5;
            let x: Vec<f32> = (0..n_tokens * n_cols).map(|_| rng.f32() * 2.0).collect();
            let want = run_with(scalar.packed_gemm_lanes, MAX_LANE_TOKENS, &m, &x, n_tokens);
            let blocks = run_gemm(&scalar, &m, &x, n_tokens);
            for (a, b) in want.iter().zip(&blocks) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{format:?}: {a} vs {b}"
                );
            }
            for k in Kernels::supported() {
                let got = run_with(k.packed_gemm_lanes, MAX_LANE_TOKENS, &m, &x, n_tokens);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{:?} {format:?} at {i}: {g} vs {w}",
                        k.isa
                    );
                }
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_batch_within_one_order() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for format in PackedFormat::ALL
        .into_iter()
        .filter(|&f| uses_lanes(f, 1) == uses_lanes(f, 9))
    {
        let (n_rows, n_cols) = (40, format.block_values() * 2);
        let w = random_weights(format, n_rows, n_cols, &mut rng);
        let view = WeightView {
            dtype: format.dtype(),
            data: &w,
            n_rows,
            n_cols,
        };
        let m = pack(&view).unwrap();
        let n_tokens = 9;
        let x: Vec<f32> = (0..n_tokens * n_cols).map(|_| rng.f32()).collect();
        let mut scratch = MatmulScratch::default();
        let mut all = vec![0.0; n_tokens * n_rows];
        crate::matmul_packed(&m, &x, n_tokens, &mut all, &mut scratch);
        for t in 0..n_tokens {
            let mut one = vec![0.0; n_rows];
            crate::matmul_packed(
                &m,
                &x[t * n_cols..(t + 1) * n_cols],
                1,
                &mut one,
                &mut scratch,
            );
            assert_eq!(
                one,
                all[t * n_rows..(t + 1) * n_rows],
                "{format:?} token {t}"
            );
        }
    }
}

#[test]
fn many_matrices_at_once_equal_one_at_a_time() {
    let mut rng = Rng(0x5151_5151_5151_5151);
    let n_cols = 512;
    let formats = [
        PackedFormat::Q5_0,
        PackedFormat::Q8_0,
        PackedFormat::Q4K,
        PackedFormat::Q4_1,
        PackedFormat::Q6K,
    ];
    let mats: Vec<PackedMatrix> = formats
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            let n_rows = 20 + 13 * i;
            let w = random_weights(f, n_rows, n_cols, &mut rng);
            pack(&WeightView {
                dtype: f.dtype(),
                data: &w,
                n_rows,
                n_cols,
            })
            .unwrap()
        })
        .collect();
    for n_tokens in [1, 3, 70] {
        let x: Vec<f32> = (0..n_tokens * n_cols).map(|_| rng.f32()).collect();
        let mut scratch = MatmulScratch::default();
        let want: Vec<Vec<f32>> = mats
            .iter()
            .map(|m| {
                let mut out = vec![0.0; n_tokens * m.n_rows()];
                crate::matmul_packed(m, &x, n_tokens, &mut out, &mut scratch);
                out
            })
            .collect();
        let mut outs: Vec<Vec<f32>> = mats
            .iter()
            .map(|m| vec![0.0; n_tokens * m.n_rows()])
            .collect();
        let mut jobs: Vec<(&PackedMatrix, &mut [f32])> = mats
            .iter()
            .zip(outs.iter_mut())
            .map(|(m, o)| (m, o.as_mut_slice()))
            .collect();
        crate::matmul::matmul_packed_many(&mut jobs, &x, n_tokens, &mut scratch);
        assert_eq!(outs, want, "{n_tokens} tokens");
    }
}
