//! Properties of the scalar reference kernels: round trips stay within each format's
//! error, dot products agree with the dot product of the dequantized rows, arbitrary
//! block bytes never panic, and activation quantization keeps ggml's conventions.

use half::f16;
use kernels::blocks::{BlockQ8_0, BlockQ8_1, BlockQ8_K};
use kernels::{scalar, DType, QK_K};
use proptest::prelude::*;

// ---------------------------------------------------------------- tolerances
//
// Round-trip bounds are the largest error of one value, as a fraction of the largest
// magnitude in its block (32 values, or 256 for the K-quants). They hold for values whose
// scales are normal f16 numbers, which is why the generated rows have magnitudes between 1
// and about 10^4 (tiny scales lose precision as f16 subnormals, huge ones overflow).

/// F16 rounds each value to nearest: relative error at most 2^-11 of the value itself.
const F16_REL: f32 = 1.0 / 2048.0;
/// Below 2^-14 f16 values are subnormal, spaced 2^-24 apart: half a spacing absolute.
const F16_ABS: f32 = 1.0 / (1u32 << 25) as f32;
/// BF16 keeps 8 significant bits: relative error at most 2^-8 of the value itself.
const BF16_REL: f32 = 1.0 / 256.0;
/// Rounding a scale to f16 moves a reconstructed value by up to `|q| * d * 2^-11`, at
/// most the block's maximum times 2^-11; 2^-10 leaves room for the offset of Q4_1/Q5_1.
const F16_SCALE_ROUNDING: f32 = 1.0 / 1024.0;
/// Q4_0 maps the extreme value to -8 steps of `d = amax / 8`, so the opposite extreme is
/// clamped to +7 steps: the error reaches one whole step.
const Q4_0_ERR: f32 = 1.0 / 8.0 + F16_SCALE_ROUNDING;
/// Q5_0: as Q4_0 with `d = amax / 16`.
const Q5_0_ERR: f32 = 1.0 / 16.0 + F16_SCALE_ROUNDING;
/// Q4_1 spans `[min, max]` (at most twice the block's maximum magnitude) in 15 steps and
/// rounds to nearest: half a step, `2 amax / 30`.
const Q4_1_ERR: f32 = 2.0 / 30.0 + 2.0 * F16_SCALE_ROUNDING;
/// Q5_1: as Q4_1 with 31 steps.
const Q5_1_ERR: f32 = 2.0 / 62.0 + 2.0 * F16_SCALE_ROUNDING;
/// Q8_0 and Q8_1: half a step of `amax / 127`, plus the f16 rounding of `d`.
const Q8_ERR: f32 = 1.0 / 254.0 + F16_SCALE_ROUNDING;
/// Q8_K: half a step of `amax / 127`; its scale is an f32, so only f32 rounding adds.
const Q8_K_ERR: f32 = 1.0 / 254.0 + 1.0 / (1 << 20) as f32;
// The K-quant searches minimize a weighted squared (or, for Q2_K, absolute) error over
// each sub-block, not the largest error, and the sub-block scales are themselves
// quantized to 4, 6 or 8 bits; a value can therefore land several steps away. These
// bounds are the worst ratio seen over 20,000 rows of twelve shapes of data (uniform,
// gaussian, outliers, one sign, sparse, few levels, ramps) with about 35% headroom.
/// Q2_K: four levels per 16 values; worst seen 0.59.
const Q2_K_ERR: f32 = 0.8;
/// Q3_K: eight levels per 16 values; worst seen 0.27.
const Q3_K_ERR: f32 = 0.37;
/// Q4_K: sixteen levels per 32 values; worst seen 0.11.
const Q4_K_ERR: f32 = 0.15;
/// Q5_K: 32 levels per 32 values; worst seen 0.065.
const Q5_K_ERR: f32 = 0.088;
/// Q6_K: 64 levels per 16 values; worst seen 0.022.
const Q6_K_ERR: f32 = 0.03;

/// Round-trip bound of `dtype` for a value `x` in a block whose largest magnitude is
/// `amax`.
fn round_trip_bound(dtype: DType, x: f32, amax: f32) -> f32 {
    match dtype {
        DType::F32 => 0.0,
        DType::F16 => x.abs() * F16_REL + F16_ABS,
        DType::BF16 => x.abs() * BF16_REL,
        DType::Q4_0 => amax * Q4_0_ERR,
        DType::Q4_1 => amax * Q4_1_ERR,
        DType::Q5_0 => amax * Q5_0_ERR,
        DType::Q5_1 => amax * Q5_1_ERR,
        DType::Q8_0 | DType::Q8_1 => amax * Q8_ERR,
        DType::Q8_K => amax * Q8_K_ERR,
        DType::Q2_K => amax * Q2_K_ERR,
        DType::Q3_K => amax * Q3_K_ERR,
        DType::Q4_K => amax * Q4_K_ERR,
        DType::Q5_K => amax * Q5_K_ERR,
        DType::Q6_K => amax * Q6_K_ERR,
    }
}

/// Error bound of a quantized activation, as for [`round_trip_bound`].
fn activation_bound(x_type: DType, x: f32, amax: f32) -> f32 {
    round_trip_bound(x_type, x, amax)
}

/// Values per block for the round-trip bound: the unit whose maximum sets the scale
/// (1 for the float types, whose bound depends on the value alone).
fn scale_block(dtype: DType) -> usize {
    dtype.block_size()
}

/// Float rounding of the kernels' own sums, and the f16 rounding of Q8_1's `s`, both
/// relative to `sum over blocks of max|w| * sum|x|` (the size of the offset terms).
const DOT_ROUNDING: f32 = 1.0 / 1024.0;

// ---------------------------------------------------------------- helpers

/// Row shapes the generator draws from; weights and activations of real models are
/// mostly gaussian with outliers, the rest are the corners of the quantizers.
fn make_row(n: usize, kind: u8, scale: f32, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    (0..n)
        .map(|i| {
            let u = uniform() * 2.0 - 1.0;
            let g = (0..6).map(|_| uniform()).sum::<f32>() - 3.0;
            let v = match kind {
                0 => u,
                1 => g,
                2 if uniform() < 0.02 => g * 20.0,
                2 => g,
                3 => u.abs() + 0.5,
                4 => -u.abs(),
                5 if uniform() < 0.7 => 0.0,
                5 => g,
                6 if i % 16 == 3 => 5.0,
                6 => u * 0.01,
                7 if uniform() < 0.5 => u.signum(),
                7 => u * 0.001,
                8 => (uniform() * 16.0).floor() - 8.0,
                9 => (i % 64) as f32 / 64.0 - 0.3,
                _ => 1.0,
            };
            v * scale
        })
        .collect()
}

prop_compose! {
    /// A row of `n_blocks` blocks of `block` values.
    fn row(block: usize, max_blocks: usize)
        (n_blocks in 0..=max_blocks, kind in 0u8..=10, scale in 1.0f32..100.0, seed in any::<u64>())
        -> Vec<f32>
    {
        make_row(n_blocks * block, kind, scale, seed)
    }
}

fn quantize(dtype: DType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; dtype.row_bytes(x.len()).expect("whole blocks")];
    scalar::quantize_row(dtype, x, &mut out);
    out
}

fn dequantize(dtype: DType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; n];
    scalar::dequantize_row(dtype, bytes, &mut out);
    out
}

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Max blocks per generated row: up to 1,024 values for both block sizes.
fn max_blocks(dtype: DType) -> usize {
    if dtype.block_size() == QK_K {
        4
    } else {
        32
    }
}

/// The unit of generated rows: a block, or 32 values of the float types.
fn row_block(dtype: DType) -> usize {
    dtype.block_size().max(32)
}

fn check_round_trip(dtype: DType, x: &[f32]) -> Result<(), TestCaseError> {
    let y = dequantize(dtype, &quantize(dtype, x), x.len());
    let block = scale_block(dtype);
    for (b, (xb, yb)) in x
        .chunks(block.max(1))
        .zip(y.chunks(block.max(1)))
        .enumerate()
    {
        let amax = max_abs(xb);
        for (i, (&xv, &yv)) in xb.iter().zip(yb).enumerate() {
            let bound = round_trip_bound(dtype, xv, amax);
            prop_assert!(
                (xv - yv).abs() <= bound,
                "{}: value {} of block {b}: {xv} came back as {yv} (bound {bound})",
                dtype.name(),
                i,
            );
        }
    }
    Ok(())
}

/// The dot product of `quantize(x)` with weights `w` (already quantized) against the f64
/// dot product of the dequantized weights with the unquantized `x`.
fn check_vec_dot(dtype: DType, w_values: &[f32], x: &[f32]) -> Result<(), TestCaseError> {
    let n = x.len();
    let x_type = dtype.vec_dot_type();
    let w = quantize(dtype, w_values);
    let wf = dequantize(dtype, &w, n);
    let xq = quantize(x_type, x);
    let got = scalar::vec_dot(dtype, n, &w, &xq);
    let want: f64 = wf
        .iter()
        .zip(x)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();

    let x_block = scale_block(x_type);
    let mut bound = 0.0f64;
    for (wb, xb) in wf.chunks(x_block).zip(x.chunks(x_block)) {
        let amax = max_abs(xb);
        for (wv, &xv) in wb.iter().zip(xb) {
            bound += f64::from(wv.abs() * activation_bound(x_type, xv, amax));
        }
    }
    for (wb, xb) in wf.chunks(32).zip(x.chunks(32)) {
        let x_sum: f32 = xb.iter().map(|v| v.abs()).sum();
        bound += f64::from(max_abs(wb) * x_sum * DOT_ROUNDING);
    }
    prop_assert!(
        (f64::from(got) - want).abs() <= bound + 1e-6,
        "{}: vec_dot {got}, dequantized dot {want}, bound {bound}",
        dtype.name()
    );
    Ok(())
}

/// Makes every scale field of `bytes` (blocks of `dtype`) finite, keeping the other bits:
/// an all-ones exponent loses its top bit. Q8_K's f32 scale is also kept below 2^100 so
/// `d * 127` stays finite.
fn make_scales_finite(dtype: DType, bytes: &mut [u8]) {
    let fix_f16 = |b: &mut [u8]| {
        let bits = u16::from_le_bytes([b[0], b[1]]);
        let bits = if bits & 0x7c00 == 0x7c00 {
            bits & !0x4000
        } else {
            bits
        };
        b.copy_from_slice(&bits.to_le_bytes());
    };
    let f16_offsets: &[usize] = match dtype {
        DType::Q4_0 | DType::Q5_0 | DType::Q8_0 => &[0],
        DType::Q4_1 | DType::Q5_1 | DType::Q8_1 | DType::Q4_K | DType::Q5_K => &[0, 2],
        DType::Q2_K => &[80, 82],
        DType::Q3_K => &[108],
        DType::Q6_K => &[208],
        DType::F16 => &[0],
        DType::F32 | DType::BF16 | DType::Q8_K => &[],
    };
    for block in bytes.chunks_exact_mut(dtype.type_size()) {
        for &o in f16_offsets {
            fix_f16(&mut block[o..o + 2]);
        }
        match dtype {
            DType::BF16 => {
                let bits = u16::from_le_bytes([block[0], block[1]]);
                let bits = if bits & 0x7f80 == 0x7f80 {
                    bits & !0x4000
                } else {
                    bits
                };
                block.copy_from_slice(&bits.to_le_bytes());
            }
            DType::F32 | DType::Q8_K => {
                let bits = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
                // Exponent at most 2^100 for Q8_K (finite times 127), any finite for F32.
                let limit = if dtype == DType::Q8_K {
                    (127 + 100) << 23
                } else {
                    0x7f00_0000
                };
                let bits = if bits & 0x7f80_0000 > limit {
                    bits & !0x4000_0000
                } else {
                    bits
                };
                block[..4].copy_from_slice(&bits.to_le_bytes());
            }
            _ => {}
        }
    }
}

fn config() -> ProptestConfig {
    // The K-quant searches are slow in unoptimized test builds; 128 cases per type still
    // cover every row shape many times. PROPTEST_CASES overrides this for a longer run.
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        default
    } else {
        ProptestConfig {
            cases: 128,
            ..default
        }
    }
}

// ---------------------------------------------------------------- properties

macro_rules! per_type {
    ($($name:ident => $dtype:expr),* $(,)?) => {
        mod round_trip {
            use super::*;
            $(proptest! {
                #![proptest_config(config())]
                #[test]
                fn $name(x in row(row_block($dtype), max_blocks($dtype))) {
                    check_round_trip($dtype, &x)?;
                }
            })*
        }

        mod vec_dot {
            use super::*;
            $(proptest! {
                #![proptest_config(config())]
                #[test]
                fn $name(
                    n_blocks in 0..=max_blocks($dtype),
                    w_kind in 0u8..=10, w_seed in any::<u64>(),
                    x_kind in 0u8..=10, x_seed in any::<u64>(),
                    x_scale in 1.0f32..100.0,
                ) {
                    let n = n_blocks * row_block($dtype);
                    let w = make_row(n, w_kind, 1.0, w_seed);
                    let x = make_row(n, x_kind, x_scale, x_seed);
                    check_vec_dot($dtype, &w, &x)?;
                }
            })*
        }

        mod random_blocks {
            use super::*;
            $(proptest! {
                #![proptest_config(config())]
                #[test]
                fn $name(
                    n_blocks in 0..=4usize,
                    w_bytes in prop::collection::vec(any::<u8>(), 4 * 292),
                    x_bytes in prop::collection::vec(any::<u8>(), 4 * 292),
                ) {
                    let dtype = $dtype;
                    let n = n_blocks * row_block(dtype);
                    let mut w = w_bytes[..dtype.row_bytes(n).unwrap()].to_vec();
                    make_scales_finite(dtype, &mut w);
                    let y = dequantize(dtype, &w, n);
                    prop_assert!(y.iter().all(|v| v.is_finite()), "{}: {:?}", dtype.name(), y);
                    let x_type = dtype.vec_dot_type();
                    let mut x = x_bytes[..x_type.row_bytes(n).unwrap()].to_vec();
                    make_scales_finite(x_type, &mut x);
                    // Only that it returns: random scales may overflow the sum to infinity.
                    let _ = scalar::vec_dot(dtype, n, &w, &x);
                }
            })*
        }
    };
}

per_type!(
    f32 => DType::F32,
    f16 => DType::F16,
    bf16 => DType::BF16,
    q4_0 => DType::Q4_0,
    q4_1 => DType::Q4_1,
    q5_0 => DType::Q5_0,
    q5_1 => DType::Q5_1,
    q8_0 => DType::Q8_0,
    q8_1 => DType::Q8_1,
    q2_k => DType::Q2_K,
    q3_k => DType::Q3_K,
    q4_k => DType::Q4_K,
    q5_k => DType::Q5_K,
    q6_k => DType::Q6_K,
    q8_k => DType::Q8_K,
);

// ---------------------------------------------------------------- activations

proptest! {
    #![proptest_config(config())]

    /// A block of zeros quantizes to all-zero bytes: scale 0 and quants 0, and for Q8_1
    /// `s = 0`, for Q8_K `bsums = 0`.
    #[test]
    fn q8_of_zeros_is_all_zero(n_blocks in 0..=3usize) {
        let x = vec![0.0f32; n_blocks * QK_K];
        for dtype in [DType::Q8_0, DType::Q8_1, DType::Q8_K] {
            prop_assert!(quantize(dtype, &x).iter().all(|&b| b == 0), "{}", dtype.name());
        }
    }

    /// One value much larger than the rest sets the scale: Q8_0 and Q8_1 store it as
    /// ±127 with `d = |v| / 127` (in f16); Q8_K stores it as -127 with `d = v / -127`
    /// (its scale carries the sign), and its bsums are the sums of each 16 quants.
    #[test]
    fn q8_follows_the_largest_value(
        position in 0..QK_K,
        big in prop_oneof![1.0f32..1000.0, -1000.0f32..-1.0],
        seed in any::<u64>(),
    ) {
        let mut x = make_row(QK_K, 1, 0.1 * big.abs() / 4.0, seed);
        x[position] = big;
        let block = position / 32;

        let q8_0: BlockQ8_0 = bytemuck::pod_read_unaligned(
            &quantize(DType::Q8_0, &x)[block * 34..block * 34 + 34],
        );
        prop_assert_eq!(q8_0.qs[position % 32], if big > 0.0 { 127 } else { -127 });
        prop_assert_eq!(q8_0.d, f16::from_f32(big.abs() / 127.0));

        let q8_1: BlockQ8_1 = bytemuck::pod_read_unaligned(
            &quantize(DType::Q8_1, &x)[block * 36..block * 36 + 36],
        );
        prop_assert_eq!(q8_1.qs, q8_0.qs);
        let sum: i32 = q8_1.qs.iter().map(|&q| i32::from(q)).sum();
        prop_assert_eq!(q8_1.s, f16::from_f32(sum as f32 * (big.abs() / 127.0)));

        let q8_k: BlockQ8_K = bytemuck::pod_read_unaligned(&quantize(DType::Q8_K, &x));
        prop_assert_eq!(q8_k.qs[position], -127);
        prop_assert_eq!(q8_k.d, 1.0 / (-127.0 / big));
        for (j, sum) in q8_k.bsums.iter().enumerate() {
            let want: i16 = q8_k.qs[16 * j..16 * j + 16].iter().map(|&q| i16::from(q)).sum();
            prop_assert_eq!(*sum, want);
        }
    }
}
