//! The kernel set chosen once at start from the CPU's features.
//!
//! A [`Kernels`] value is a table of function pointers, one entry per [`DType`] for
//! each of vec_dot, quantize and dequantize. [`kernels()`] builds the best table for
//! this CPU on first use: AVX-512 (with VNNI) if present, else AVX2, else the scalar
//! reference. `SLM_FORCE_SCALAR=1` forces the scalar table. Entries a set has no fast
//! kernel for hold the scalar one, so every table covers every type.

use std::sync::OnceLock;

use crate::ops::{AttentionKernels, SwigluFn};
use crate::packed::PackedGemmFn;
use crate::{scalar, DType};

/// Instruction sets slm has kernels for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, the reference.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 (F, BW, VL) with VNNI, on top of the AVX2 set.
    Avx512,
}

impl Isa {
    /// Every instruction set, from the most portable to the fastest.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// A short lower-case name (`avx2`).
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// Dot product of `n` values: weights of one type, activations of its `vec_dot_type`.
pub type VecDotFn = fn(n: usize, w: &[u8], x: &[u8]) -> f32;
/// Quantizes f32 values into whole blocks of one type.
pub type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);
/// Dequantizes whole blocks of one type into f32 values.
pub type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);
/// Weight rows in a tile of dot products ([`VecDotTileFn`]).
pub const TILE_ROWS: usize = 2;
/// Tokens in a tile of dot products ([`VecDotTileFn`]).
pub const TILE_TOKENS: usize = 4;
/// Dot products of [`TILE_ROWS`] weight rows with [`TILE_TOKENS`] activation rows of
/// `n` values each: `out[r][t] = vec_dot(n, w[r], x[t])` up to f32 rounding.
pub type VecDotTileFn =
    fn(n: usize, w: [&[u8]; TILE_ROWS], x: [&[u8]; TILE_TOKENS]) -> [[f32; TILE_TOKENS]; TILE_ROWS];

/// The kernels of one type. Every function checks its slice lengths and panics on a
/// mismatch (a bug in the caller).
#[derive(Debug, Clone, Copy)]
pub struct TypeKernels {
    /// Dot product of a row of this type with a row of its `vec_dot_type`.
    pub vec_dot: VecDotFn,
    /// Quantizes f32 values into this type.
    pub quantize: QuantizeFn,
    /// Dequantizes this type into f32 values.
    pub dequantize: DequantizeFn,
    /// A tile of dot products for batches of tokens, where the set has one.
    pub vec_dot_tile: Option<VecDotTileFn>,
}

/// Position of `dtype` in [`DType::ALL`], the index into a table.
const fn type_index(dtype: DType) -> usize {
    match dtype {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q5_0 => 4,
        DType::Q5_1 => 5,
        DType::Q8_0 => 6,
        DType::Q8_1 => 7,
        DType::Q2_K => 8,
        DType::Q3_K => 9,
        DType::Q4_K => 10,
        DType::Q5_K => 11,
        DType::Q6_K => 12,
        DType::Q8_K => 13,
        DType::BF16 => 14,
    }
}

/// The scalar entry of one type: closures that call `crate::scalar` with the type.
macro_rules! scalar_entry {
    ($dtype:ident) => {
        TypeKernels {
            vec_dot: |n, w, x| scalar::vec_dot(DType::$dtype, n, w, x),
            quantize: |src, dst| scalar::quantize_row(DType::$dtype, src, dst),
            dequantize: |src, dst| scalar::dequantize_row(DType::$dtype, src, dst),
            vec_dot_tile: None,
        }
    };
}

/// A table of kernels for one instruction set.
#[derive(Debug, Clone)]
pub struct Kernels {
    /// The instruction set this table was built for.
    pub isa: Isa,
    /// One entry per type, in [`DType::ALL`] order.
    types: [TypeKernels; DType::ALL.len()],
    /// The matrix product over packed weights ([`crate::packed`]).
    pub packed_gemm: PackedGemmFn,
    /// The same in ggml's lane order, for the 32-value formats and at most
    /// [`crate::packed::MAX_LANE_TOKENS`] tokens ([`crate::packed::uses_lanes`]).
    pub packed_gemm_lanes: PackedGemmFn,
    /// The inner loops of attention ([`crate::ops::attention_batch`]).
    pub attention: AttentionKernels,
    /// SwiGLU ([`crate::ops::swiglu`]).
    pub swiglu: SwigluFn,
}

impl Kernels {
    /// The portable reference table.
    pub fn scalar() -> Kernels {
        Kernels {
            isa: Isa::Scalar,
            types: [
                scalar_entry!(F32),
                scalar_entry!(F16),
                scalar_entry!(Q4_0),
                scalar_entry!(Q4_1),
                scalar_entry!(Q5_0),
                scalar_entry!(Q5_1),
                scalar_entry!(Q8_0),
                scalar_entry!(Q8_1),
                scalar_entry!(Q2_K),
                scalar_entry!(Q3_K),
                scalar_entry!(Q4_K),
                scalar_entry!(Q5_K),
                scalar_entry!(Q6_K),
                scalar_entry!(Q8_K),
                scalar_entry!(BF16),
            ],
            packed_gemm: crate::packed::reference::gemm,
            packed_gemm_lanes: crate::packed::reference::gemm_lanes,
            attention: AttentionKernels::SCALAR,
            swiglu: crate::ops::swiglu_scalar,
        }
    }

    /// The table for `isa`, or `None` when this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        let mut k = Kernels::scalar();
        let supported = match isa {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => crate::x86::install_avx2(&mut k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => crate::x86::install_avx2(&mut k) && crate::x86::install_avx512(&mut k),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        };
        k.isa = isa;
        supported.then_some(k)
    }

    /// Every table this CPU can run, from the most portable to the fastest.
    pub fn supported() -> Vec<Kernels> {
        Isa::ALL.into_iter().filter_map(Kernels::for_isa).collect()
    }

    /// The fastest table this CPU runs, or the scalar one when the environment variable
    /// `SLM_FORCE_SCALAR` is `1`. `SLM_ISA` (`scalar`, `avx2`, `avx512`) caps the
    /// instruction set, so one machine can run the kernels another would pick (an AVX2-only
    /// CPU's path on an AVX-512 one); an unknown value is ignored.
    pub fn detect() -> Kernels {
        if std::env::var_os("SLM_FORCE_SCALAR").is_some_and(|v| v == "1") {
            return Kernels::scalar();
        }
        let cap = std::env::var("SLM_ISA")
            .ok()
            .and_then(|name| Isa::ALL.into_iter().find(|isa| isa.name() == name));
        let mut supported = Kernels::supported();
        if let Some(cap) = cap {
            let rank = |isa: Isa| Isa::ALL.iter().position(|i| *i == isa);
            supported.retain(|k| rank(k.isa) <= rank(cap));
        }
        supported.pop().unwrap_or_else(Kernels::scalar)
    }

    /// The kernels of `dtype`.
    #[inline]
    pub fn get(&self, dtype: DType) -> &TypeKernels {
        &self.types[type_index(dtype)]
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn set_vec_dot(&mut self, dtype: DType, f: VecDotFn) {
        self.types[type_index(dtype)].vec_dot = f;
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn set_vec_dot_tile(&mut self, dtype: DType, f: VecDotTileFn) {
        self.types[type_index(dtype)].vec_dot_tile = Some(f);
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn set_quantize(&mut self, dtype: DType, f: QuantizeFn) {
        self.types[type_index(dtype)].quantize = f;
    }

    /// Dot product of `n` values, `w` of type `dtype`, `x` of type `dtype.vec_dot_type()`.
    #[inline]
    pub fn vec_dot(&self, dtype: DType, n: usize, w: &[u8], x: &[u8]) -> f32 {
        (self.get(dtype).vec_dot)(n, w, x)
    }

    /// Quantizes activations `src` into `dst`, whole blocks of `dtype`.
    #[inline]
    pub fn quantize_row(&self, dtype: DType, src: &[f32], dst: &mut [u8]) {
        (self.get(dtype).quantize)(src, dst)
    }

    /// Dequantizes whole blocks of `dtype` from `src` into `dst`.
    #[inline]
    pub fn dequantize_row(&self, dtype: DType, src: &[u8], dst: &mut [f32]) {
        (self.get(dtype).dequantize)(src, dst)
    }
}

/// The kernel table for this CPU, detected on first use (see [`Kernels::detect`]).
pub fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(Kernels::detect)
}
