//! The kernel set chosen once at start from the CPU's features.

use std::sync::OnceLock;

use crate::{scalar, DType};

/// Instruction sets slm has kernels for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, the reference.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 (F, BW, VL), with VNNI where present.
    Avx512,
}

/// Dot product of `n` values: weights of one type, activations of its `vec_dot_type`.
pub type VecDotFn = fn(n: usize, w: &[u8], x: &[u8]) -> f32;
/// Quantizes f32 values into whole blocks of one type.
pub type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);
/// Dequantizes whole blocks of one type into f32 values.
pub type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);

/// A table of kernels for one instruction set.
#[derive(Debug)]
pub struct Kernels {
    /// The instruction set this table was built for.
    pub isa: Isa,
}

impl Kernels {
    /// The portable reference table.
    pub fn scalar() -> Kernels {
        Kernels { isa: Isa::Scalar }
    }

    /// Dot product of `n` values, `w` of type `dtype`, `x` of type `dtype.vec_dot_type()`.
    pub fn vec_dot(&self, dtype: DType, n: usize, w: &[u8], x: &[u8]) -> f32 {
        scalar::vec_dot(dtype, n, w, x)
    }

    /// Quantizes activations `src` into `dst`, whole blocks of `dtype`.
    pub fn quantize_row(&self, dtype: DType, src: &[f32], dst: &mut [u8]) {
        scalar::quantize_row(dtype, src, dst)
    }

    /// Dequantizes whole blocks of `dtype` from `src` into `dst`.
    pub fn dequantize_row(&self, dtype: DType, src: &[u8], dst: &mut [f32]) {
        scalar::dequantize_row(dtype, src, dst)
    }
}

/// The kernel table for this CPU, detected on first use.
pub fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(Kernels::scalar)
}
