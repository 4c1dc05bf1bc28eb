//! Attention over blocks and batches of sequences gives exactly what the contiguous,
//! one-sequence call gives: the same tiles, the same arithmetic.

use half::f16;

use super::*;

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn halves(n: usize, seed: u64) -> Vec<f16> {
    values(n, seed).into_iter().map(f16::from_f32).collect()
}

/// The whole contiguous cache as one block: a single sequence whose queries are the
/// positions from `first_pos` to the end.
fn whole_cache<'a>(
    k: &'a [f16],
    v: &'a [f16],
    blocks: &'a [u32; 1],
    n_positions: usize,
    first_pos: usize,
) -> AttentionSeq<'a> {
    AttentionSeq {
        kv: KvBlocks {
            k,
            v,
            blocks,
            block_tokens: n_positions,
        },
        rows: 0..n_positions - first_pos,
        first_pos,
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// One sequence of a test: its contiguous keys and values, queries and first position.
struct Seq {
    k: Vec<f16>, // [n_positions, kv_dim]
    v: Vec<f16>, // [n_positions, kv_dim]
    q: Vec<f32>, // [n_tokens, q_dim]
    first_pos: usize,
}

/// Copies every sequence's positions into blocks of a shared store, in a scrambled
/// block order; returns the store's keys, values and each sequence's block list.
fn scatter(
    seqs: &[Seq],
    kv_dim: usize,
    block_tokens: usize,
) -> (Vec<f16>, Vec<f16>, Vec<Vec<u32>>) {
    let n_blocks: usize = seqs
        .iter()
        .map(|s| (s.k.len() / kv_dim).div_ceil(block_tokens))
        .sum::<usize>()
        + 3;
    // Blocks handed out last first, so no sequence's blocks are in store order.
    let mut order: Vec<u32> = (0..n_blocks as u32).rev().collect();
    let mut k = vec![f16::from_f32(9.0); n_blocks * block_tokens * kv_dim];
    let mut v = k.clone();
    let mut tables = Vec::new();
    for seq in seqs {
        let n_positions = seq.k.len() / kv_dim;
        let table: Vec<u32> = order.drain(..n_positions.div_ceil(block_tokens)).collect();
        for pos in 0..n_positions {
            let block = table[pos / block_tokens] as usize;
            let at = (block * block_tokens + pos % block_tokens) * kv_dim;
            k[at..at + kv_dim].copy_from_slice(&seq.k[pos * kv_dim..(pos + 1) * kv_dim]);
            v[at..at + kv_dim].copy_from_slice(&seq.v[pos * kv_dim..(pos + 1) * kv_dim]);
        }
        tables.push(table);
    }
    (k, v, tables)
}

#[test]
fn a_batch_over_blocks_equals_each_sequence_alone() {
    let (n_heads, n_kv_heads, head_dim) = (8, 2, 32);
    let (q_dim, kv_dim) = (n_heads * head_dim, n_kv_heads * head_dim);
    // A long prefill, a decode deep in its context, a short prompt, a first token.
    let shapes = [(150, 20), (200, 199), (9, 0), (1, 0)];
    let seqs: Vec<Seq> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(n_positions, first_pos))| Seq {
            k: halves(n_positions * kv_dim, 10 + i as u64),
            v: halves(n_positions * kv_dim, 20 + i as u64),
            q: values((n_positions - first_pos) * q_dim, 30 + i as u64),
            first_pos,
        })
        .collect();
    for window in [None, Some(40)] {
        let params = AttentionParams {
            n_heads,
            n_kv_heads,
            head_dim,
            scale: 0.2,
            window,
        };
        let alone: Vec<Vec<f32>> = seqs
            .iter()
            .map(|s| {
                let mut out = vec![0.0; s.q.len()];
                attention(&params, &s.q, &s.k, &s.v, s.first_pos, &mut out);
                out
            })
            .collect();
        for block_tokens in [16, 32, 48, 64] {
            let (k, v, tables) = scatter(&seqs, kv_dim, block_tokens);
            let q: Vec<f32> = seqs.iter().flat_map(|s| s.q.iter().copied()).collect();
            let mut row = 0;
            let batch: Vec<AttentionSeq> = seqs
                .iter()
                .zip(&tables)
                .map(|(s, table)| {
                    let n = s.q.len() / q_dim;
                    row += n;
                    AttentionSeq {
                        kv: KvBlocks {
                            k: &k,
                            v: &v,
                            blocks: table,
                            block_tokens,
                        },
                        rows: row - n..row,
                        first_pos: s.first_pos,
                    }
                })
                .collect();
            let mut out = vec![0.0; q.len()];
            attention_batch(&params, &q, &batch, &mut out);
            let expected: Vec<f32> = alone.iter().flatten().copied().collect();
            assert!(
                out == expected,
                "blocks of {block_tokens}, window {window:?}: the batch differs"
            );
        }
    }
}

#[test]
fn every_instruction_set_gives_the_scalar_bits() {
    // Head sizes with and without a tail past the last multiple of eight and of 64.
    for (n_heads, n_kv_heads, head_dim) in [
        (4, 2, 64),
        (6, 3, 72),
        (2, 1, 12),
        (8, 2, 128),
        (2, 2, 256),
        (3, 1, 8),
    ] {
        let (q_dim, kv_dim) = (n_heads * head_dim, n_kv_heads * head_dim);
        // Prefill past a tile, decode at odd depths, a first token.
        for (n_positions, first_pos) in [(150, 0), (131, 130), (70, 61), (1, 0), (9, 3), (600, 599)]
        {
            let k = halves(n_positions * kv_dim, 1 + head_dim as u64);
            let v = halves(n_positions * kv_dim, 2 + n_positions as u64);
            let q = values((n_positions - first_pos) * q_dim, 3 + first_pos as u64);
            for window in [None, Some(37)] {
                let params = AttentionParams {
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    scale: 0.3,
                    window,
                };
                let blocks = [0u32];
                let seq = whole_cache(&k, &v, &blocks, n_positions, first_pos);
                let run = |kernels: &AttentionKernels| {
                    let mut out = vec![0.0; q.len()];
                    attention_batch_with(
                        kernels,
                        &params,
                        &q,
                        std::slice::from_ref(&seq),
                        &mut out,
                    );
                    out
                };
                let expected = run(&AttentionKernels::SCALAR);
                for set in crate::Kernels::supported() {
                    assert!(
                        same_bits(&run(&set.attention), &expected),
                        "{}: head_dim {head_dim}, {n_positions} positions from {first_pos}, window {window:?}",
                        set.isa.name()
                    );
                }
            }
        }
    }
}

#[test]
fn exp_is_within_three_ulp_of_the_exact_value() {
    let mut x = -87.0f32;
    while x <= 88.0 {
        let exact = (f64::from(x)).exp();
        let got = f64::from(super::inner::exp(x));
        let ulp = f64::from(f32::EPSILON) * exact;
        assert!(
            (got - exact).abs() <= 3.0 * ulp,
            "exp({x}) = {got}, exactly {exact}"
        );
        x += 0.0137;
    }
    assert_eq!(super::inner::exp(-200.0), 0.0);
    assert_eq!(super::inner::exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(super::inner::exp(200.0), f32::INFINITY);
    assert_eq!(super::inner::exp(0.0), 1.0);
    assert!(super::inner::exp(f32::NAN).is_nan());
    // Between -126 and -88 ln2 the result is subnormal, still close.
    let sub = f64::from(super::inner::exp(-95.0));
    assert!((sub - (-95.0f64).exp()).abs() < 1e-44);
}

#[test]
fn vector_exp_sums_give_the_scalar_bits() {
    let mut scores: Vec<f32> = values(61, 7).iter().map(|v| v * 40.0).collect();
    // Far below the maximum: subnormal results and flushes to zero.
    scores.extend([-60.0, -100.0, -130.0, -1e30, f32::NEG_INFINITY]);
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut expected = scores.clone();
    let expected_sum = (AttentionKernels::SCALAR.exp_sum)(&mut expected, max);
    for set in crate::Kernels::supported() {
        let mut got = scores.clone();
        let sum = (set.attention.exp_sum)(&mut got, max);
        assert_eq!(sum.to_bits(), expected_sum.to_bits(), "{}", set.isa.name());
        assert!(same_bits(&got, &expected), "{}", set.isa.name());
    }
}

#[test]
fn vector_swiglu_gives_the_scalar_bits() {
    let mut gate: Vec<f32> = values(203, 11).iter().map(|v| v * 30.0).collect();
    gate.extend([0.0, -0.0, 100.0, -100.0, 1e-30, -1e-30, 95.0, -150.0, 300.0]);
    let up = values(gate.len(), 12);
    let mut expected = gate.clone();
    crate::ops::swiglu_scalar(&mut expected, &up);
    for set in crate::Kernels::supported() {
        let mut got = gate.clone();
        (set.swiglu)(&mut got, &up);
        for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{}: gate {}",
                set.isa.name(),
                gate[i]
            );
        }
    }
    // SiLU itself stays within a few ulp of the textbook formula.
    for &x in &gate[..203] {
        let exact = f64::from(x) / (1.0 + (-f64::from(x)).exp());
        let got = f64::from(crate::ops::silu(x));
        assert!(
            (got - exact).abs() <= 4.0 * f64::from(f32::EPSILON) * exact.abs().max(1e-30),
            "silu({x})"
        );
    }
}

#[test]
fn chunks_split_over_tasks_give_the_bits_of_one_task() {
    // Contexts of several chunks, with and without a window, decode and short prefills
    // (a block's first and last tokens see different chunks).
    for (n_heads, n_kv_heads, head_dim) in [(9, 3, 64), (4, 1, 40), (12, 2, 128)] {
        let (q_dim, kv_dim) = (n_heads * head_dim, n_kv_heads * head_dim);
        for (n_positions, first_pos) in [(1100, 1099), (700, 680), (257, 256), (300, 0)] {
            let k = halves(n_positions * kv_dim, 5 + n_positions as u64);
            let v = halves(n_positions * kv_dim, 6 + head_dim as u64);
            let q = values((n_positions - first_pos) * q_dim, 7 + first_pos as u64);
            for window in [None, Some(300)] {
                let params = AttentionParams {
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    scale: 0.125,
                    window,
                };
                let blocks = [0u32];
                let seq = whole_cache(&k, &v, &blocks, n_positions, first_pos);
                let kernels = &crate::kernels().attention;
                let run = |split| {
                    let mut out = vec![0.0; q.len()];
                    attention_planned(
                        kernels,
                        &params,
                        &q,
                        std::slice::from_ref(&seq),
                        &mut out,
                        Some(split),
                    );
                    out
                };
                let whole = run(false);
                assert!(
                    same_bits(&whole, &run(true)),
                    "{n_heads}/{n_kv_heads} heads of {head_dim}: {n_positions} positions from {first_pos}, window {window:?}"
                );
                // And both are the attention the formula gives.
                for (t, row) in whole.chunks(q_dim).enumerate() {
                    let pos = first_pos + t;
                    for h in 0..n_heads {
                        let mut expected = vec![0.0; head_dim];
                        attention_row(
                            &q[(t * n_heads + h) * head_dim..][..head_dim],
                            &k,
                            &v,
                            kv_dim,
                            h / (n_heads / n_kv_heads) * head_dim,
                            params.visible(pos),
                            params.scale,
                            &mut expected,
                        );
                        for (a, b) in row[h * head_dim..(h + 1) * head_dim].iter().zip(&expected) {
                            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn key_and_value_conversions_of_every_instruction_set_give_the_scalar_bits() {
    let scalar = AttentionKernels::SCALAR;
    for head_dim in [8, 12, 64, 72, 128] {
        for (stride, n, first) in [
            (head_dim, 64, 0),
            (3 * head_dim + 5, 13, 40),
            (head_dim, 1, 63),
            (2 * head_dim, 9, 7),
            (head_dim, 0, 64),
        ] {
            let len = if n == 0 {
                0
            } else {
                (n - 1) * stride + head_dim
            };
            let src = halves(len, (head_dim + n) as u64);
            let mut kt_expected = vec![-1.0; head_dim * KV_TILE];
            (scalar.keys_transposed)(&src, stride, n, head_dim, first, &mut kt_expected);
            let mut v_expected = vec![-1.0; n * head_dim];
            (scalar.values)(&src, stride, n, &mut v_expected);
            for set in crate::Kernels::supported() {
                let mut kt = vec![-1.0; head_dim * KV_TILE];
                (set.attention.keys_transposed)(&src, stride, n, head_dim, first, &mut kt);
                assert!(
                    kt == kt_expected,
                    "{}: keys, head_dim {head_dim}, {n} from {first}",
                    set.isa.name()
                );
                let mut v = vec![-1.0; n * head_dim];
                (set.attention.values)(&src, stride, n, &mut v);
                assert!(
                    v == v_expected,
                    "{}: values, head_dim {head_dim}, {n} rows",
                    set.isa.name()
                );
            }
        }
    }
}
