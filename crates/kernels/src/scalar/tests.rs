use half::{bf16, f16};

use super::float::f32_to_bf16;
use super::kquants::{q3_k_scales, scale_min_k4};
use super::{dequantize_row, nearest_int, quantize_row, vec_dot};
use crate::blocks::*;
use crate::{DType, QK_K};

/// Deterministic values in about [-scale, scale] (a small LCG, so the tests need no
/// random crate and always see the same data).
fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn dequantize(dtype: DType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; n];
    dequantize_row(dtype, bytes, &mut out);
    out
}

fn quantize(dtype: DType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; dtype.row_bytes(x.len()).unwrap()];
    quantize_row(dtype, x, &mut out);
    out
}

fn check_dequantize<B: bytemuck::Pod>(dtype: DType, block: B, expected: &[(usize, f32)]) {
    let n = dtype.block_size();
    let y = dequantize(dtype, bytemuck::bytes_of(&block), n);
    for &(i, want) in expected {
        assert_eq!(y[i], want, "{} value {i}", dtype.name());
    }
}

#[test]
fn nearest_int_rounds_ties_to_even() {
    for (value, want) in [
        (0.5, 0),
        (1.5, 2),
        (2.5, 2),
        (-0.5, 0),
        (-1.5, -2),
        (3.7, 4),
        (-3.7, -4),
    ] {
        assert_eq!(nearest_int(value), want, "nearest_int({value})");
    }
}

#[test]
fn bf16_rounds_to_nearest_even_and_quiets_nan() {
    assert_eq!(f32_to_bf16(1.0).to_bits(), 0x3f80);
    // 1 + 2^-8 is halfway between two bf16 values: ties go to the even mantissa.
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)).to_bits(), 0x3f80);
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)).to_bits(), 0x3f82);
    assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)).to_bits(), 0x7fc0);
}

#[test]
fn dequantize_hand_made_legacy_blocks() {
    let two = f16::from_f32(2.0);
    let half = f16::from_f32(0.5);
    let mut qs = [0u8; 16];
    qs[0] = 0x1f;
    check_dequantize(
        DType::Q4_0,
        BlockQ4_0 { d: two, qs },
        &[(0, 14.0), (16, -14.0), (1, -16.0)],
    );
    check_dequantize(
        DType::Q4_1,
        BlockQ4_1 {
            d: two,
            m: half,
            qs,
        },
        &[(0, 30.5), (16, 2.5), (1, 0.5)],
    );
    // Value 0 has its fifth bit set (qh bit 0), value 17 too (qh bit 17).
    let qh = (1u32 | (1 << 17)).to_le_bytes();
    check_dequantize(
        DType::Q5_0,
        BlockQ5_0 { d: two, qh, qs },
        &[(0, 30.0), (16, -30.0), (17, 0.0), (1, -32.0)],
    );
    check_dequantize(
        DType::Q5_1,
        BlockQ5_1 {
            d: two,
            m: half,
            qh,
            qs,
        },
        &[(0, 62.5), (16, 2.5), (17, 32.5), (1, 0.5)],
    );
    let mut q8 = [0i8; 32];
    q8[3] = -7;
    q8[31] = 127;
    check_dequantize(
        DType::Q8_0,
        BlockQ8_0 { d: half, qs: q8 },
        &[(3, -3.5), (31, 63.5)],
    );
    check_dequantize(
        DType::Q8_1,
        BlockQ8_1 {
            d: half,
            s: half,
            qs: q8,
        },
        &[(3, -3.5)],
    );
}

#[test]
fn dequantize_hand_made_k_blocks_with_16_value_sub_blocks() {
    let one = f16::from_f32(1.0);
    let half = f16::from_f32(0.5);

    // Q2_K: sub-block 0 has scale 3, min 2; value 0 has quant 3; value 32 (bits 2..4
    // of byte 0) has quant 1 and sits in sub-block 2 (scale 1, min 0).
    let mut scales = [0u8; 16];
    scales[0] = 0x23;
    scales[2] = 0x01;
    let mut qs = [0u8; 64];
    qs[0] = 0b0111;
    let block = BlockQ2_K {
        scales,
        qs,
        d: one,
        dmin: half,
    };
    check_dequantize(DType::Q2_K, block, &[(0, 8.0), (1, -1.0), (32, 1.0)]);

    // Q3_K: scale 0 is 32 + 2 (low nibble 2, high bits 2 in byte 8); value 0 has low
    // bits 3 and its hmask bit set (no -4), value 1 has low bits 0 and no hmask bit (-4).
    let mut scales = [0u8; 12];
    scales[0] = 0x02;
    scales[8] = 0b10;
    let mut qs = [0u8; 64];
    qs[0] = 3;
    let mut hmask = [0u8; 32];
    hmask[0] = 1;
    let block = BlockQ3_K {
        hmask,
        qs,
        scales,
        d: half,
    };
    check_dequantize(DType::Q3_K, block, &[(0, 3.0), (1, -4.0)]);
    assert_eq!(q3_k_scales(&block.scales)[0], 2);
}

#[test]
fn dequantize_hand_made_k_blocks_with_32_value_sub_blocks() {
    let one = f16::from_f32(1.0);
    let half = f16::from_f32(0.5);

    // Q4_K: sub-block 0 scale 2 min 3; sub-block 1 (high nibbles) scale 1 min 0.
    let mut scales = [0u8; 12];
    scales[0] = 2;
    scales[4] = 3;
    scales[1] = 1;
    let mut qs = [0u8; 128];
    qs[0] = 0x5f;
    let block = BlockQ4_K {
        d: one,
        dmin: half,
        scales,
        qs,
    };
    check_dequantize(DType::Q4_K, block, &[(0, 28.5), (1, -1.5), (32, 5.0)]);

    // Q5_K: as Q4_K, value 0 also has its fifth bit.
    let mut qh = [0u8; 32];
    qh[0] = 1;
    let block = BlockQ5_K {
        d: one,
        dmin: half,
        scales,
        qh,
        qs,
    };
    check_dequantize(DType::Q5_K, block, &[(0, 60.5), (1, -1.5), (32, 5.0)]);
}

#[test]
fn dequantize_hand_made_q6_k_and_q8_k_blocks() {
    let half = f16::from_f32(0.5);

    // Q6_K: value 0 is (0xf | 3 << 4) - 32 = 31 with scale -2; value 16 is -32, scale 3.
    let mut ql = [0u8; 128];
    ql[0] = 0x0f;
    let mut qh = [0u8; 64];
    qh[0] = 3;
    let mut scales = [0i8; 16];
    scales[0] = -2;
    scales[1] = 3;
    let block = BlockQ6_K {
        ql,
        qh,
        scales,
        d: half,
    };
    check_dequantize(DType::Q6_K, block, &[(0, -31.0), (16, -48.0)]);

    let mut qs = [0i8; QK_K];
    qs[5] = -3;
    let block = BlockQ8_K {
        d: 0.25,
        qs,
        bsums: [0; 16],
    };
    check_dequantize(DType::Q8_K, block, &[(5, -0.75), (6, 0.0)]);
}

#[test]
fn scale_min_k4_unpacks_high_bits() {
    let mut packed = [0u8; 12];
    packed[0] = 0b1100_0000; // top bits of scale 4
    packed[4] = 0b0100_0000; // top bits of min 4
    packed[8] = 0x21; // low nibbles: scale 4 = 1, min 4 = 2
    assert_eq!(scale_min_k4(4, &packed), (0x31, 0x12));
}

#[test]
fn float_types_convert_and_dot() {
    let x = [1.5f32, -2.0, 0.25];
    let h = quantize(DType::F16, &x);
    assert_eq!(dequantize(DType::F16, &h, 3), x);
    let b = quantize(DType::BF16, &x);
    assert_eq!(dequantize(DType::BF16, &b, 3), x);
    let f = quantize(DType::F32, &x);
    assert_eq!(dequantize(DType::F32, &f, 3), x);
    for (dtype, bytes) in [(DType::F16, &h), (DType::BF16, &b), (DType::F32, &f)] {
        assert_eq!(vec_dot(dtype, 3, bytes, bytes), 1.5 * 1.5 + 4.0 + 0.0625);
    }
    assert_eq!(bytemuck::cast_slice::<u8, bf16>(&b)[1].to_f32(), -2.0);
}

/// Every weight type: the kernel's dot product equals the f64 dot product of the
/// dequantized rows up to f32 rounding of the terms.
#[test]
fn vec_dot_matches_dequantized_dot() {
    for dtype in DType::ALL {
        let x_type = dtype.vec_dot_type();
        let n = 2 * QK_K;
        let w = quantize(dtype, &values(n, 1, 1.0));
        let x = quantize(x_type, &values(n, 2, 3.0));
        let wf = dequantize(dtype, &w, n);
        let xf = dequantize(x_type, &x, n);
        let want: f64 = wf
            .iter()
            .zip(&xf)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        let scale: f64 = wf
            .iter()
            .zip(&xf)
            .map(|(a, b)| f64::from((a * b).abs()))
            .sum();
        // Q8_1 stores s = d * sum(q) rounded to f16, which the Q4_1 and Q5_1 kernels use
        // for the offset term: allow max|w| * sum|x| * 2^-11 per block for that.
        let s_rounding: f64 = if x_type == DType::Q8_1 {
            wf.chunks(32)
                .zip(xf.chunks(32))
                .map(|(w, x)| {
                    let w_max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let x_sum: f32 = x.iter().map(|v| v.abs()).sum();
                    f64::from(w_max * x_sum) / 2048.0
                })
                .sum()
        } else {
            0.0
        };
        let got = f64::from(vec_dot(dtype, n, &w, &x));
        assert!(
            (got - want).abs() <= 1e-5 * scale + s_rounding + 1e-6,
            "{}: vec_dot {got}, dequantized dot {want}",
            dtype.name()
        );
    }
}

/// Every type: quantizing then dequantizing stays close to the input.
#[test]
fn quantize_round_trip_is_close() {
    let n = 2 * QK_K;
    let x = values(n, 3, 2.0);
    for dtype in DType::ALL {
        let y = dequantize(dtype, &quantize(dtype, &x), n);
        let rms = (x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            / n as f32)
            .sqrt();
        assert!(rms < 0.3, "{}: round-trip rms error {rms}", dtype.name());
    }
}

#[test]
fn q8_activations_follow_ggml_on_edge_cases() {
    // All zeros: scale 0, quants 0.
    let zeros = vec![0.0f32; QK_K];
    for dtype in [DType::Q8_0, DType::Q8_1, DType::Q8_K] {
        let q = quantize(dtype, &zeros);
        assert!(q.iter().all(|&b| b == 0), "{} of zeros", dtype.name());
    }
    // One large positive value: Q8_0 maps it to +127, Q8_K to -127 with a negative d.
    let mut x = vec![0.0f32; QK_K];
    x[7] = 100.0;
    x[8] = -25.0;
    let q8_0: BlockQ8_0 = bytemuck::pod_read_unaligned(&quantize(DType::Q8_0, &x)[..34]);
    assert_eq!((q8_0.qs[7], q8_0.qs[8]), (127, -32));
    assert_eq!(q8_0.d, f16::from_f32(100.0 / 127.0));
    let q8_1: BlockQ8_1 = bytemuck::pod_read_unaligned(&quantize(DType::Q8_1, &x)[..36]);
    assert_eq!(q8_1.s, f16::from_f32(95.0 * (100.0f32 / 127.0)));
    let q8_k: BlockQ8_K = bytemuck::pod_read_unaligned(&quantize(DType::Q8_K, &x)[..292]);
    assert_eq!((q8_k.qs[7], q8_k.qs[8]), (-127, 32));
    assert_eq!(q8_k.d, 1.0 / (-127.0 / 100.0));
    assert_eq!(q8_k.bsums[0], -95);
}

#[test]
fn unaligned_buffers_give_the_same_result() {
    let n = QK_K;
    let x = values(n, 4, 1.0);
    for dtype in DType::ALL {
        let bytes = quantize(dtype, &x);
        let mut shifted = vec![0u8; bytes.len() + 1];
        quantize_row(dtype, &x, &mut shifted[1..]);
        assert_eq!(shifted[1..], bytes[..], "{} quantize", dtype.name());
        let want = dequantize(dtype, &bytes, n);
        assert_eq!(
            dequantize(dtype, &shifted[1..], n),
            want,
            "{} dequantize",
            dtype.name()
        );
    }
}
