//! Tensor block formats (F32 … Q6_K, Q8_K), quantize/dequantize, dot products, matmul,
//! transformer ops (norms, rope, softmax, activations, attention), the compute pool and a
//! memory read-bandwidth probe.
//!
//! The kernels know nothing of files, models or requests: they take slices and shapes.
//! Each operation has a plain `scalar` version, the reference every fast version is tested
//! against; ISA-specific versions live in `x86`. The set used at run time is chosen once,
//! at first use, by [`kernels()`]; setting `SLM_FORCE_SCALAR=1` forces the scalar set.
//! All SIMD `unsafe` code of slm lives in this crate.

pub mod bandwidth;
pub mod blocks;
pub mod dispatch;
pub mod dtype;
pub mod matmul;
pub mod ops;
pub mod packed;
pub mod pool;
pub mod scalar;
// AVX-512 intrinsics are stable since Rust 1.89, newer than the declared minimum.
#[cfg(target_arch = "x86_64")]
mod x86;

pub use dispatch::{kernels, Isa, Kernels, TypeKernels};
pub use dtype::{DType, QK_K};
pub use matmul::{matmul, matmul_packed, matmul_packed_many, MatmulScratch, WeightView};
pub use packed::{pack, PackedFormat, PackedMatrix, SharedBytes};
pub use pool::set_threads;
