//! F32, F16 and BF16: conversions and dot products, as ggml-cpu's scalar paths
//! (`ggml_vec_dot_f32`, `ggml_vec_dot_f16`, `ggml_vec_dot_bf16` without SIMD, which sum
//! the f32 products in double precision).
//!
//! ggml pairs F16 weights with F16 activations and BF16 with BF16, so the activation row
//! is rounded to the weight type before the dot product; these kernels do the same.

use half::{bf16, f16};

/// Copies f32 values (the F32 "blocks" are single values).
pub fn dequantize_row_f32(x: &[f32], y: &mut [f32]) {
    y.copy_from_slice(x);
}

/// Widens f16 values to f32 (exact).
pub fn dequantize_row_f16(x: &[f16], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "f16 source and f32 destination differ in length"
    );
    for (y, x) in y.iter_mut().zip(x) {
        *y = x.to_f32();
    }
}

/// Widens bf16 values to f32 (exact: the bits shifted up by 16).
pub fn dequantize_row_bf16(x: &[bf16], y: &mut [f32]) {
    assert_eq!(
        x.len(),
        y.len(),
        "bf16 source and f32 destination differ in length"
    );
    for (y, x) in y.iter_mut().zip(x) {
        *y = f32::from_bits(u32::from(x.to_bits()) << 16);
    }
}

/// Copies f32 values.
pub fn quantize_row_f32(x: &[f32], y: &mut [f32]) {
    y.copy_from_slice(x);
}

/// Rounds f32 values to f16, to nearest even, overflowing to infinity (ggml's
/// `GGML_FP32_TO_FP16` and F16C's `vcvtps2ph` with rounding mode 0 agree on this).
pub fn quantize_row_f16(x: &[f32], y: &mut [f16]) {
    assert_eq!(
        x.len(),
        y.len(),
        "f32 source and f16 destination differ in length"
    );
    for (y, x) in y.iter_mut().zip(x) {
        *y = f16::from_f32(*x);
    }
}

/// Rounds f32 values to bf16 as ggml's `ggml_compute_fp32_to_bf16`.
pub fn quantize_row_bf16(x: &[f32], y: &mut [bf16]) {
    assert_eq!(
        x.len(),
        y.len(),
        "f32 source and bf16 destination differ in length"
    );
    for (y, x) in y.iter_mut().zip(x) {
        *y = f32_to_bf16(*x);
    }
}

/// ggml's `ggml_compute_fp32_to_bf16`: round to nearest even; a NaN keeps its sign and
/// top payload bits and is forced quiet.
pub fn f32_to_bf16(value: f32) -> bf16 {
    let bits = value.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return bf16::from_bits(((bits >> 16) | 64) as u16);
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    bf16::from_bits((bits.wrapping_add(rounding) >> 16) as u16)
}

/// Dot product of `n` f32 values: products in f32, summed in f64 (ggml's scalar
/// `ggml_vec_dot_f32`).
pub fn vec_dot_f32(n: usize, x: &[f32], y: &[f32]) -> f32 {
    assert!(
        x.len() == n && y.len() == n,
        "f32 rows do not hold {n} values"
    );
    let mut sum = 0.0f64;
    for (a, b) in x.iter().zip(y) {
        sum += f64::from(a * b);
    }
    sum as f32
}

/// Dot product of `n` f16 values: products in f32, summed in f64 (ggml's scalar
/// `ggml_vec_dot_f16`).
pub fn vec_dot_f16(n: usize, x: &[f16], y: &[f16]) -> f32 {
    assert!(
        x.len() == n && y.len() == n,
        "f16 rows do not hold {n} values"
    );
    let mut sum = 0.0f64;
    for (a, b) in x.iter().zip(y) {
        sum += f64::from(a.to_f32() * b.to_f32());
    }
    sum as f32
}

/// Dot product of `n` bf16 values: products in f32, summed in f64 (ggml's scalar
/// `ggml_vec_dot_bf16`).
pub fn vec_dot_bf16(n: usize, x: &[bf16], y: &[bf16]) -> f32 {
    assert!(
        x.len() == n && y.len() == n,
        "bf16 rows do not hold {n} values"
    );
    let mut sum = 0.0f64;
    for (a, b) in x.iter().zip(y) {
        sum += f64::from(a.to_f32() * b.to_f32());
    }
    sum as f32
}
