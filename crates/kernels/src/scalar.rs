//! Scalar reference kernels: plain code shaped like ggml's `*_ref` and `*_generic`
//! functions. They are the oracle for every SIMD kernel and the fallback on any CPU.
//!
//! Conventions: `src`/`dst` byte slices hold whole blocks of the named type; `n` is the
//! number of values. Length mismatches are bugs in the caller and panic.

use crate::DType;

/// Dequantizes `dst.len()` values of type `dtype` from `src` (whole blocks).
pub fn dequantize_row(dtype: DType, src: &[u8], dst: &mut [f32]) {
    let _ = (dtype, src, dst);
    todo!("scalar dequantize")
}

/// Quantizes `src` into `dst` (whole blocks of `dtype`), as ggml's `quantize_row_*_ref`.
pub fn quantize_row(dtype: DType, src: &[f32], dst: &mut [u8]) {
    let _ = (dtype, src, dst);
    todo!("scalar quantize")
}

/// Dot product of `n` values: `w` holds weights of type `dtype`, `x` activations of type
/// `dtype.vec_dot_type()`, both as whole blocks.
pub fn vec_dot(dtype: DType, n: usize, w: &[u8], x: &[u8]) -> f32 {
    let _ = (dtype, n, w, x);
    todo!("scalar vec_dot")
}
