//! Scalar reference kernels: plain code shaped like ggml's `*_ref` and `*_generic`
//! functions. They are the oracle for every SIMD kernel and the fallback on any CPU.
//!
//! Each format has three kinds of kernel, in one submodule per family
//! ([`legacy`] for Q4_0 … Q8_1, [`kquants`] and [`quantize_k`] for Q2_K … Q8_K,
//! [`float`] for F32, F16 and BF16):
//!
//! - `dequantize_row_*`: blocks to f32, as ggml's `dequantize_row_*`.
//! - `quantize_row_*`: f32 to blocks, as ggml's `quantize_row_*_ref` (for the K-quants
//!   this is the search over scales in `make_qkx2_quants`, `make_q3_quants` and
//!   `make_qx_quants`, without importance weights). These also quantize activations:
//!   Q8_0, Q8_1 and Q8_K are the `vec_dot_type`s of the weight formats.
//! - `vec_dot_*`: the dot product of a weight row with an activation row already in the
//!   weight type's [`DType::vec_dot_type`], as ggml's `ggml_vec_dot_*_generic`.
//!
//! Integer arithmetic is the same as ggml's; float operations are done in the same order
//! where ggml's C code defines one. Results can still differ from a given llama.cpp build
//! in the last bits where its compiler fuses a multiply and an add (gcc contracts to FMA
//! by default when the target has it) or where it runs a SIMD kernel with another
//! summation order; a SIMD kernel compared with these needs a float tolerance for the
//! same reason, while its integer sums must match exactly.
//!
//! Conventions: `src`/`dst` byte slices hold whole blocks of the named type; `n` is the
//! number of values. Length mismatches are bugs in the caller and panic. Byte slices are
//! reinterpreted as block slices in place when they are aligned for the block type (2
//! bytes for the f16-scaled formats, 4 for Q8_K and F32: mapped GGUF tensor data is
//! 32-byte aligned, and `Vec<u8>` buffers are in practice though not by contract); an
//! unaligned slice is copied first, which is slower but gives the same result.
//!
//! Where ggml has nothing to port, these kernels define the behaviour: Q8_1 and Q8_K
//! dequantize and dot with themselves (ggml only uses them for activations), and Q8_K's
//! all-zero block gets zero `bsums` (ggml leaves them as they were).

pub mod float;
pub mod kquants;
pub mod legacy;
pub mod quantize_k;

#[cfg(test)]
mod tests;

use bytemuck::Pod;

use crate::DType;

/// Dequantizes `dst.len()` values of type `dtype` from `src` (whole blocks).
pub fn dequantize_row(dtype: DType, src: &[u8], dst: &mut [f32]) {
    let n_blocks = n_blocks(dtype, dst.len());
    assert_eq!(
        src.len(),
        n_blocks * dtype.type_size(),
        "{} source holds a different number of values than the destination",
        dtype.name()
    );
    match dtype {
        DType::F32 => with_blocks(src, |x| float::dequantize_row_f32(x, dst)),
        DType::F16 => with_blocks(src, |x| float::dequantize_row_f16(x, dst)),
        DType::BF16 => with_blocks(src, |x| float::dequantize_row_bf16(x, dst)),
        DType::Q4_0 => with_blocks(src, |x| legacy::dequantize_row_q4_0(x, dst)),
        DType::Q4_1 => with_blocks(src, |x| legacy::dequantize_row_q4_1(x, dst)),
        DType::Q5_0 => with_blocks(src, |x| legacy::dequantize_row_q5_0(x, dst)),
        DType::Q5_1 => with_blocks(src, |x| legacy::dequantize_row_q5_1(x, dst)),
        DType::Q8_0 => with_blocks(src, |x| legacy::dequantize_row_q8_0(x, dst)),
        DType::Q8_1 => with_blocks(src, |x| legacy::dequantize_row_q8_1(x, dst)),
        DType::Q2_K => with_blocks(src, |x| kquants::dequantize_row_q2_k(x, dst)),
        DType::Q3_K => with_blocks(src, |x| kquants::dequantize_row_q3_k(x, dst)),
        DType::Q4_K => with_blocks(src, |x| kquants::dequantize_row_q4_k(x, dst)),
        DType::Q5_K => with_blocks(src, |x| kquants::dequantize_row_q5_k(x, dst)),
        DType::Q6_K => with_blocks(src, |x| kquants::dequantize_row_q6_k(x, dst)),
        DType::Q8_K => with_blocks(src, |x| kquants::dequantize_row_q8_k(x, dst)),
    }
}

/// Quantizes `src` into `dst` (whole blocks of `dtype`), as ggml's `quantize_row_*_ref`.
pub fn quantize_row(dtype: DType, src: &[f32], dst: &mut [u8]) {
    let n_blocks = n_blocks(dtype, src.len());
    assert_eq!(
        dst.len(),
        n_blocks * dtype.type_size(),
        "{} destination holds a different number of values than the source",
        dtype.name()
    );
    match dtype {
        DType::F32 => with_blocks_mut(dst, |y| float::quantize_row_f32(src, y)),
        DType::F16 => with_blocks_mut(dst, |y| float::quantize_row_f16(src, y)),
        DType::BF16 => with_blocks_mut(dst, |y| float::quantize_row_bf16(src, y)),
        DType::Q4_0 => with_blocks_mut(dst, |y| legacy::quantize_row_q4_0(src, y)),
        DType::Q4_1 => with_blocks_mut(dst, |y| legacy::quantize_row_q4_1(src, y)),
        DType::Q5_0 => with_blocks_mut(dst, |y| legacy::quantize_row_q5_0(src, y)),
        DType::Q5_1 => with_blocks_mut(dst, |y| legacy::quantize_row_q5_1(src, y)),
        DType::Q8_0 => with_blocks_mut(dst, |y| legacy::quantize_row_q8_0(src, y)),
        DType::Q8_1 => with_blocks_mut(dst, |y| legacy::quantize_row_q8_1(src, y)),
        DType::Q2_K => with_blocks_mut(dst, |y| quantize_k::quantize_row_q2_k(src, y)),
        DType::Q3_K => with_blocks_mut(dst, |y| quantize_k::quantize_row_q3_k(src, y)),
        DType::Q4_K => with_blocks_mut(dst, |y| quantize_k::quantize_row_q4_k(src, y)),
        DType::Q5_K => with_blocks_mut(dst, |y| quantize_k::quantize_row_q5_k(src, y)),
        DType::Q6_K => with_blocks_mut(dst, |y| quantize_k::quantize_row_q6_k(src, y)),
        DType::Q8_K => with_blocks_mut(dst, |y| quantize_k::quantize_row_q8_k(src, y)),
    }
}

/// Dot product of `n` values: `w` holds weights of type `dtype`, `x` activations of type
/// `dtype.vec_dot_type()`, both as whole blocks.
pub fn vec_dot(dtype: DType, n: usize, w: &[u8], x: &[u8]) -> f32 {
    let x_type = dtype.vec_dot_type();
    assert_eq!(
        w.len(),
        n_blocks(dtype, n) * dtype.type_size(),
        "{} weights do not hold {n} values",
        dtype.name()
    );
    assert_eq!(
        x.len(),
        n_blocks(x_type, n) * x_type.type_size(),
        "{} activations do not hold {n} values",
        x_type.name()
    );
    match dtype {
        DType::F32 => with_blocks2(w, x, |w, x| float::vec_dot_f32(n, w, x)),
        DType::F16 => with_blocks2(w, x, |w, x| float::vec_dot_f16(n, w, x)),
        DType::BF16 => with_blocks2(w, x, |w, x| float::vec_dot_bf16(n, w, x)),
        DType::Q4_0 => with_blocks2(w, x, |w, x| legacy::vec_dot_q4_0_q8_0(n, w, x)),
        DType::Q4_1 => with_blocks2(w, x, |w, x| legacy::vec_dot_q4_1_q8_1(n, w, x)),
        DType::Q5_0 => with_blocks2(w, x, |w, x| legacy::vec_dot_q5_0_q8_0(n, w, x)),
        DType::Q5_1 => with_blocks2(w, x, |w, x| legacy::vec_dot_q5_1_q8_1(n, w, x)),
        DType::Q8_0 => with_blocks2(w, x, |w, x| legacy::vec_dot_q8_0_q8_0(n, w, x)),
        DType::Q8_1 => with_blocks2(w, x, |w, x| legacy::vec_dot_q8_1_q8_1(n, w, x)),
        DType::Q2_K => with_blocks2(w, x, |w, x| kquants::vec_dot_q2_k_q8_k(n, w, x)),
        DType::Q3_K => with_blocks2(w, x, |w, x| kquants::vec_dot_q3_k_q8_k(n, w, x)),
        DType::Q4_K => with_blocks2(w, x, |w, x| kquants::vec_dot_q4_k_q8_k(n, w, x)),
        DType::Q5_K => with_blocks2(w, x, |w, x| kquants::vec_dot_q5_k_q8_k(n, w, x)),
        DType::Q6_K => with_blocks2(w, x, |w, x| kquants::vec_dot_q6_k_q8_k(n, w, x)),
        DType::Q8_K => with_blocks2(w, x, |w, x| kquants::vec_dot_q8_k_q8_k(n, w, x)),
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, by adding 1.5 * 2^23 so the
/// integer lands in the low mantissa bits. Exact for `|value| <= 4194303`, which every
/// caller guarantees for finite input; other values give a wrong but harmless integer
/// (as in ggml, whose `assert` is compiled out), never a panic.
#[inline]
pub fn nearest_int(value: f32) -> i32 {
    let shifted = value + 12_582_912.0;
    ((shifted.to_bits() & 0x007f_ffff) as i32).wrapping_sub(0x0040_0000)
}

/// Number of blocks of `dtype` in `n` values; panics when `n` is not a whole number of
/// blocks (a caller bug: shapes are checked when a model is loaded).
fn n_blocks(dtype: DType, n: usize) -> usize {
    let block = dtype.block_size();
    assert!(
        n.is_multiple_of(block),
        "{n} values are not a whole number of {} blocks of {block}",
        dtype.name()
    );
    n / block
}

/// Runs `f` on `bytes` viewed as blocks, copying them first when `bytes` is not aligned
/// for `B`. `bytes.len()` must be a multiple of the block size.
fn with_blocks<B: Pod, R>(bytes: &[u8], f: impl FnOnce(&[B]) -> R) -> R {
    match bytemuck::try_cast_slice::<u8, B>(bytes) {
        Ok(blocks) => f(blocks),
        Err(_) => {
            assert_eq!(bytes.len() % size_of::<B>(), 0, "partial block");
            let mut blocks = vec![B::zeroed(); bytes.len() / size_of::<B>()];
            bytemuck::cast_slice_mut::<B, u8>(&mut blocks).copy_from_slice(bytes);
            f(&blocks)
        }
    }
}

/// [`with_blocks`] for two slices of possibly different block types.
fn with_blocks2<A: Pod, B: Pod, R>(a: &[u8], b: &[u8], f: impl FnOnce(&[A], &[B]) -> R) -> R {
    with_blocks(a, |a| with_blocks(b, |b| f(a, b)))
}

/// Runs `f` on `bytes` viewed as mutable blocks, through an aligned copy when `bytes` is
/// not aligned for `B`.
fn with_blocks_mut<B: Pod>(bytes: &mut [u8], f: impl FnOnce(&mut [B])) {
    let aligned = bytes.as_ptr().align_offset(align_of::<B>()) == 0;
    if aligned {
        f(bytemuck::cast_slice_mut(bytes));
    } else {
        assert_eq!(bytes.len() % size_of::<B>(), 0, "partial block");
        let mut blocks = vec![B::zeroed(); bytes.len() / size_of::<B>()];
        f(&mut blocks);
        bytes.copy_from_slice(bytemuck::cast_slice(&blocks));
    }
}
