//! The ggml tensor types, numbered as ggml's `enum ggml_type` numbers them (which is how a
//! GGUF file stores them), with the block geometry of each.

use std::fmt;

/// A tensor element type as a GGUF file names it: a plain number type or a block
/// quantization format.
///
/// The discriminants are ggml's type ids. Ids 4 and 5 (`Q4_2`, `Q4_3`), 31 to 33 (the
/// `Q4_0_N_M` repacked types) and 36 to 38 (`IQ4_NL_N_M`) were removed from ggml and cannot
/// appear in a file that current llama.cpp writes, so they are not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
#[allow(non_camel_case_types)] // The format's own names, as every GGUF tool prints them.
pub enum GgmlType {
    /// 32-bit float.
    F32 = 0,
    /// 16-bit IEEE float.
    F16 = 1,
    /// 4-bit quants with one f16 scale per 32 values.
    Q4_0 = 2,
    /// 4-bit quants with an f16 scale and minimum per 32 values.
    Q4_1 = 3,
    /// 5-bit quants with one f16 scale per 32 values.
    Q5_0 = 6,
    /// 5-bit quants with an f16 scale and minimum per 32 values.
    Q5_1 = 7,
    /// 8-bit quants with one f16 scale per 32 values.
    Q8_0 = 8,
    /// 8-bit quants with an f16 scale and sum per 32 values.
    Q8_1 = 9,
    /// 2-bit K-quant, super-blocks of 256.
    Q2_K = 10,
    /// 3-bit K-quant, super-blocks of 256.
    Q3_K = 11,
    /// 4-bit K-quant, super-blocks of 256.
    Q4_K = 12,
    /// 5-bit K-quant, super-blocks of 256.
    Q5_K = 13,
    /// 6-bit K-quant, super-blocks of 256.
    Q6_K = 14,
    /// 8-bit K-quant (activations), super-blocks of 256.
    Q8_K = 15,
    /// 2.06 bits per weight lattice quant.
    IQ2_XXS = 16,
    /// 2.31 bits per weight lattice quant.
    IQ2_XS = 17,
    /// 3.06 bits per weight lattice quant.
    IQ3_XXS = 18,
    /// 1.56 bits per weight lattice quant.
    IQ1_S = 19,
    /// 4-bit non-linear quant, blocks of 32.
    IQ4_NL = 20,
    /// 3.44 bits per weight lattice quant.
    IQ3_S = 21,
    /// 2.56 bits per weight lattice quant.
    IQ2_S = 22,
    /// 4.25 bits per weight non-linear quant, super-blocks of 256.
    IQ4_XS = 23,
    /// 8-bit signed integer.
    I8 = 24,
    /// 16-bit signed integer.
    I16 = 25,
    /// 32-bit signed integer.
    I32 = 26,
    /// 64-bit signed integer.
    I64 = 27,
    /// 64-bit float.
    F64 = 28,
    /// 1.75 bits per weight lattice quant.
    IQ1_M = 29,
    /// bfloat16.
    BF16 = 30,
    /// 1.69 bits per weight ternary quant.
    TQ1_0 = 34,
    /// 2.06 bits per weight ternary quant.
    TQ2_0 = 35,
    /// 4-bit microscaling float (E2M1 values under one E8M0 exponent per 32).
    MXFP4 = 39,
}

/// Values per K-quant super-block (ggml's `QK_K`).
const QK_K: usize = 256;

impl GgmlType {
    /// Every type, in id order.
    pub const ALL: [GgmlType; 32] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ];

    /// The type with ggml id `id`, or `None` for an id ggml does not define (or removed).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The ggml type id, as stored in a GGUF tensor info.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The name ggml and the GGUF tools print (`Q4_K`).
    pub const fn name(self) -> &'static str {
        self.traits().0
    }

    /// Values per block (1 for plain number types).
    pub const fn block_size(self) -> usize {
        self.traits().1
    }

    /// Bytes per block.
    pub const fn type_size(self) -> usize {
        self.traits().2
    }

    /// Whether this is a block quantization format rather than a plain number type.
    pub const fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes of `n_values` values, or `None` when `n_values` is not a whole number of
    /// blocks or the size overflows.
    pub fn bytes_for(self, n_values: u64) -> Option<u64> {
        let block_size = self.block_size() as u64;
        if !n_values.is_multiple_of(block_size) {
            return None;
        }
        (n_values / block_size).checked_mul(self.type_size() as u64)
    }

    /// Name, block size and block bytes, as in ggml's `type_traits` table (ggml.c) and the
    /// block structs of ggml-common.h.
    const fn traits(self) -> (&'static str, usize, usize) {
        match self {
            GgmlType::F32 => ("F32", 1, 4),
            GgmlType::F16 => ("F16", 1, 2),
            GgmlType::Q4_0 => ("Q4_0", 32, 18),
            GgmlType::Q4_1 => ("Q4_1", 32, 20),
            GgmlType::Q5_0 => ("Q5_0", 32, 22),
            GgmlType::Q5_1 => ("Q5_1", 32, 24),
            GgmlType::Q8_0 => ("Q8_0", 32, 34),
            GgmlType::Q8_1 => ("Q8_1", 32, 36),
            GgmlType::Q2_K => ("Q2_K", QK_K, 84),
            GgmlType::Q3_K => ("Q3_K", QK_K, 110),
            GgmlType::Q4_K => ("Q4_K", QK_K, 144),
            GgmlType::Q5_K => ("Q5_K", QK_K, 176),
            GgmlType::Q6_K => ("Q6_K", QK_K, 210),
            GgmlType::Q8_K => ("Q8_K", QK_K, 292),
            GgmlType::IQ2_XXS => ("IQ2_XXS", QK_K, 66),
            GgmlType::IQ2_XS => ("IQ2_XS", QK_K, 74),
            GgmlType::IQ3_XXS => ("IQ3_XXS", QK_K, 98),
            GgmlType::IQ1_S => ("IQ1_S", QK_K, 50),
            GgmlType::IQ4_NL => ("IQ4_NL", 32, 18),
            GgmlType::IQ3_S => ("IQ3_S", QK_K, 110),
            GgmlType::IQ2_S => ("IQ2_S", QK_K, 82),
            GgmlType::IQ4_XS => ("IQ4_XS", QK_K, 136),
            GgmlType::I8 => ("I8", 1, 1),
            GgmlType::I16 => ("I16", 1, 2),
            GgmlType::I32 => ("I32", 1, 4),
            GgmlType::I64 => ("I64", 1, 8),
            GgmlType::F64 => ("F64", 1, 8),
            GgmlType::IQ1_M => ("IQ1_M", QK_K, 56),
            GgmlType::BF16 => ("BF16", 1, 2),
            GgmlType::TQ1_0 => ("TQ1_0", QK_K, 54),
            GgmlType::TQ2_0 => ("TQ2_0", QK_K, 66),
            GgmlType::MXFP4 => ("MXFP4", 32, 17),
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<GgmlType> for u32 {
    fn from(ggml_type: GgmlType) -> u32 {
        ggml_type.id()
    }
}
