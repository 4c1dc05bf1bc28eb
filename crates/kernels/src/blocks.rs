//! Block layouts of the quantized formats, byte for byte as ggml stores them
//! (`ggml-common.h`). Every struct is `#[repr(C)]`, has no padding, and its size is
//! checked at compile time against [`DType::type_size`](crate::DType::type_size).

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::dtype::QK_K;

/// Values per block of the legacy formats (Q4_0 … Q8_1).
pub const QK: usize = 32;

/// Q4_0: 32 four-bit values, `x = d * (q - 8)`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Nibbles: value `j` is the low nibble of `qs[j]`, value `j + 16` the high nibble.
    pub qs: [u8; QK / 2],
}

/// Q4_1: 32 four-bit values, `x = d * q + m`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Nibbles, laid out as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// Q5_0: 32 five-bit values, `x = d * (q - 16)`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits: bit `j` of the little-endian u32 is the high bit of value `j`.
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// Q5_1: 32 five-bit values, `x = d * q + m`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bits, as in [`BlockQ5_0`].
    pub qh: [u8; 4],
    /// Low nibbles, as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// Q8_0: 32 eight-bit values, `x = d * q`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants.
    pub qs: [i8; QK],
}

/// Q8_1: Q8_0 plus `s = d * sum(qs)`, the activation format paired with Q4_1 and Q5_1.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// `d * sum(qs)`.
    pub s: f16,
    /// Quants.
    pub qs: [i8; QK],
}

/// Q2_K: 16 sub-blocks of 16 two-bit values with 4-bit scales and mins.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ2_K {
    /// Low nibble: scale, high nibble: min, per sub-block.
    pub scales: [u8; QK_K / 16],
    /// Two-bit quants.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
}

/// Q3_K: 16 sub-blocks of 16 three-bit values with 6-bit scales.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ3_K {
    /// High bits of the quants.
    pub hmask: [u8; QK_K / 8],
    /// Low two bits of the quants.
    pub qs: [u8; QK_K / 4],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

/// Q4_K: 8 sub-blocks of 32 four-bit values with 6-bit scales and mins.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; 12],
    /// Four-bit quants.
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: 8 sub-blocks of 32 five-bit values with 6-bit scales and mins.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// Scales and mins, packed as in [`BlockQ4_K`].
    pub scales: [u8; 12],
    /// High bits of the quants.
    pub qh: [u8; QK_K / 8],
    /// Low four bits of the quants.
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 16 sub-blocks of 16 six-bit values with 8-bit scales.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ6_K {
    /// Low four bits of the quants.
    pub ql: [u8; QK_K / 2],
    /// High two bits of the quants.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

/// Q8_K: the activation format paired with the K-quants.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_K {
    /// Scale (f32, unlike the other formats).
    pub d: f32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// Sums of each group of 16 quants.
    pub bsums: [i16; QK_K / 16],
}

macro_rules! assert_block_size {
    ($($block:ty => $dtype:ident),* $(,)?) => {
        $(const _: () = assert!(
            core::mem::size_of::<$block>() == crate::DType::$dtype.type_size()
        );)*
    };
}

assert_block_size!(
    BlockQ4_0 => Q4_0,
    BlockQ4_1 => Q4_1,
    BlockQ5_0 => Q5_0,
    BlockQ5_1 => Q5_1,
    BlockQ8_0 => Q8_0,
    BlockQ8_1 => Q8_1,
    BlockQ2_K => Q2_K,
    BlockQ3_K => Q3_K,
    BlockQ4_K => Q4_K,
    BlockQ5_K => Q5_K,
    BlockQ6_K => Q6_K,
    BlockQ8_K => Q8_K,
);
