//! x86-64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL, VNNI).
//!
//! The kernel bodies are `#[inline(always)]` functions generic over the one choice that
//! differs between the two sets (whether to use VNNI's `vpdpbusd` for byte dot
//! products); [`isa_set!`] instantiates them inside `#[target_feature]` functions, once
//! per set, and wraps each in a safe function that checks slice lengths. The safe
//! functions are only reachable through a [`Kernels`] table that [`install_avx2`] or
//! [`install_avx512`] filled after checking the CPU's features.

mod attn;
mod common;
mod dot_float;
mod dot_k;
mod dot_legacy;
mod packed256;
mod packed512;
mod quantize;
mod tile;
mod tile_k;

#[cfg(test)]
mod tests;

pub(crate) use common::prefetch_ahead;

use crate::dispatch::{Kernels, TILE_ROWS, TILE_TOKENS};
use crate::DType;

/// Whether this CPU runs the AVX2 set: AVX2, FMA and F16C.
pub(crate) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// Whether this CPU runs the AVX-512 set: the AVX2 set plus AVX-512 F, BW, VL and VNNI
/// (Zen 4, Ice Lake and later). AVX-512 CPUs without VNNI use the AVX2 set.
pub(crate) fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// Panics unless `w` and `x` hold the whole blocks of `n` values of `dtype` and of its
/// `vec_dot_type`.
#[inline]
fn check_dot(dtype: DType, n: usize, w: &[u8], x: &[u8]) {
    let need_w = dtype.row_bytes(n);
    let need_x = dtype.vec_dot_type().row_bytes(n);
    match (need_w, need_x) {
        (Some(need_w), Some(need_x)) if w.len() >= need_w && x.len() >= need_x => {}
        _ => panic!(
            "vec_dot {}: {n} values need whole blocks and {need_w:?}/{need_x:?} bytes, got {}/{}",
            dtype.name(),
            w.len(),
            x.len()
        ),
    }
}

/// Panics unless `dst` holds the whole blocks of `src.len()` values of `dtype`.
#[inline]
fn check_quantize(dtype: DType, src: &[f32], dst: &[u8]) {
    match dtype.row_bytes(src.len()) {
        Some(need) if dst.len() >= need => {}
        need => panic!(
            "quantize {}: {} values need whole blocks and {need:?} bytes, got {}",
            dtype.name(),
            src.len(),
            dst.len()
        ),
    }
}

/// Defines one kernel set: `$features` for `#[target_feature]`, `$vnni` for the byte
/// dot products, `$f32_dot`/`$f16_dot` the float dot bodies.
macro_rules! isa_set {
    ($set:ident, $features:literal, $vnni:literal, $f32_dot:path, $f16_dot:path) => {
        mod $set {
            use super::*;

            macro_rules! dot {
                ($name:ident, $dtype:ident, $body:path) => {
                    /// # Safety
                    /// The CPU has this set's features; `w` and `x` hold `n` values.
                    #[target_feature(enable = $features)]
                    unsafe fn $name(n: usize, w: *const u8, x: *const u8) -> f32 {
                        // SAFETY: forwarded from this function's contract.
                        unsafe { $body(n, w, x) }
                    }

                    pub(super) mod $name {
                        use super::*;
                        /// Checks lengths, then runs the kernel.
                        pub(crate) fn safe(n: usize, w: &[u8], x: &[u8]) -> f32 {
                            check_dot(DType::$dtype, n, w, x);
                            // SAFETY: lengths were checked just above; this function is
                            // only put in a table after the features were detected.
                            unsafe { super::$name(n, w.as_ptr(), x.as_ptr()) }
                        }
                    }
                };
            }

            macro_rules! tile {
                ($name:ident, $dtype:ident, $body:path) => {
                    /// # Safety
                    /// The CPU has this set's features; every row holds `n` values.
                    #[target_feature(enable = $features)]
                    unsafe fn $name(
                        n: usize,
                        w: [*const u8; TILE_ROWS],
                        x: [*const u8; TILE_TOKENS],
                    ) -> [[f32; TILE_TOKENS]; TILE_ROWS] {
                        // SAFETY: forwarded from this function's contract.
                        unsafe { $body(n, w, x) }
                    }

                    pub(super) mod $name {
                        use super::*;
                        /// Checks lengths, then runs the kernel.
                        pub(crate) fn safe(
                            n: usize,
                            w: [&[u8]; TILE_ROWS],
                            x: [&[u8]; TILE_TOKENS],
                        ) -> [[f32; TILE_TOKENS]; TILE_ROWS] {
                            for (w_r, x_t) in
                                w.iter().flat_map(|w_r| x.iter().map(move |x_t| (w_r, x_t)))
                            {
                                check_dot(DType::$dtype, n, w_r, x_t);
                            }
                            // SAFETY: every row's length was checked just above; this
                            // function is only put in a table after the features were
                            // detected.
                            unsafe { super::$name(n, w.map(<[u8]>::as_ptr), x.map(<[u8]>::as_ptr)) }
                        }
                    }
                };
            }

            macro_rules! quantize {
                ($name:ident, $dtype:ident, $body:expr) => {
                    /// # Safety
                    /// The CPU has this set's features; `dst` holds `n` values' blocks.
                    #[target_feature(enable = $features)]
                    unsafe fn $name(n: usize, src: *const f32, dst: *mut u8) {
                        // SAFETY: forwarded from this function's contract.
                        unsafe { $body(n, src, dst) }
                    }

                    pub(super) mod $name {
                        use super::*;
                        /// Checks lengths, then runs the kernel.
                        pub(crate) fn safe(src: &[f32], dst: &mut [u8]) {
                            check_quantize(DType::$dtype, src, dst);
                            // SAFETY: lengths were checked just above; this function is
                            // only put in a table after the features were detected.
                            unsafe { super::$name(src.len(), src.as_ptr(), dst.as_mut_ptr()) }
                        }
                    }
                };
            }

            dot!(dot_q4_0, Q4_0, dot_legacy::q4_0_q8_0::<$vnni>);
            dot!(dot_q4_1, Q4_1, dot_legacy::q4_1_q8_1::<$vnni>);
            dot!(dot_q5_0, Q5_0, dot_legacy::q5_0_q8_0::<$vnni>);
            dot!(dot_q5_1, Q5_1, dot_legacy::q5_1_q8_1::<$vnni>);
            dot!(dot_q8_0, Q8_0, dot_legacy::q8_0_q8_0::<$vnni>);
            dot!(dot_q2_k, Q2_K, dot_k::q2_k_q8_k);
            dot!(dot_q3_k, Q3_K, dot_k::q3_k_q8_k);
            dot!(dot_q4_k, Q4_K, dot_k::q4_k_q8_k);
            dot!(dot_q5_k, Q5_K, dot_k::q5_k_q8_k);
            dot!(dot_q6_k, Q6_K, dot_k::q6_k_q8_k);
            dot!(dot_f32, F32, $f32_dot);
            dot!(dot_f16, F16, $f16_dot);
            tile!(tile_q4_0, Q4_0, tile::legacy::<tile::Q4_0, $vnni>);
            tile!(tile_q4_1, Q4_1, tile::legacy::<tile::Q4_1, $vnni>);
            tile!(tile_q5_0, Q5_0, tile::legacy::<tile::Q5_0, $vnni>);
            tile!(tile_q5_1, Q5_1, tile::legacy::<tile::Q5_1, $vnni>);
            tile!(tile_q8_0, Q8_0, tile::legacy::<tile::Q8_0, $vnni>);
            tile!(tile_q4_k, Q4_K, tile_k::q4_k);
            tile!(tile_q5_k, Q5_K, tile_k::q5_k);
            tile!(tile_q6_k, Q6_K, tile_k::q6_k);
            quantize!(quantize_q8_0, Q8_0, quantize::q8_0::<false>);
            quantize!(quantize_q8_1, Q8_1, quantize::q8_0::<true>);
            quantize!(quantize_q8_k, Q8_K, quantize::q8_k);
            quantize!(quantize_f16, F16, quantize::f16);

            /// Puts this set's kernels into `k`.
            pub(super) fn install(k: &mut Kernels) {
                k.set_vec_dot(DType::Q4_0, dot_q4_0::safe);
                k.set_vec_dot(DType::Q4_1, dot_q4_1::safe);
                k.set_vec_dot(DType::Q5_0, dot_q5_0::safe);
                k.set_vec_dot(DType::Q5_1, dot_q5_1::safe);
                k.set_vec_dot(DType::Q8_0, dot_q8_0::safe);
                k.set_vec_dot(DType::Q2_K, dot_q2_k::safe);
                k.set_vec_dot(DType::Q3_K, dot_q3_k::safe);
                k.set_vec_dot(DType::Q4_K, dot_q4_k::safe);
                k.set_vec_dot(DType::Q5_K, dot_q5_k::safe);
                k.set_vec_dot(DType::Q6_K, dot_q6_k::safe);
                k.set_vec_dot(DType::F32, dot_f32::safe);
                k.set_vec_dot(DType::F16, dot_f16::safe);
                k.set_vec_dot_tile(DType::Q4_0, tile_q4_0::safe);
                k.set_vec_dot_tile(DType::Q4_1, tile_q4_1::safe);
                k.set_vec_dot_tile(DType::Q5_0, tile_q5_0::safe);
                k.set_vec_dot_tile(DType::Q5_1, tile_q5_1::safe);
                k.set_vec_dot_tile(DType::Q8_0, tile_q8_0::safe);
                k.set_vec_dot_tile(DType::Q4_K, tile_q4_k::safe);
                k.set_vec_dot_tile(DType::Q5_K, tile_q5_k::safe);
                k.set_vec_dot_tile(DType::Q6_K, tile_q6_k::safe);
                k.set_quantize(DType::Q8_0, quantize_q8_0::safe);
                k.set_quantize(DType::Q8_1, quantize_q8_1::safe);
                k.set_quantize(DType::Q8_K, quantize_q8_k::safe);
                k.set_quantize(DType::F16, quantize_f16::safe);
            }
        }
    };
}

isa_set!(
    avx2,
    "avx2,fma,f16c",
    false,
    dot_float::f32_f32_avx2,
    dot_float::f16_f16_avx2
);
isa_set!(
    avx512,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    true,
    dot_float::f32_f32_avx512,
    dot_float::f16_f16_avx512
);

/// Puts the AVX2 kernels into `k`, or returns false (and leaves `k`) when the CPU
/// lacks the features.
pub(crate) fn install_avx2(k: &mut Kernels) -> bool {
    if !has_avx2() {
        return false;
    }
    avx2::install(k);
    k.attention = crate::ops::AttentionKernels {
        keys_transposed: attn::keys_transposed,
        values: attn::values,
        scores: attn::scores,
        exp_sum: attn::exp_sum,
        accumulate: attn::accumulate,
    };
    k.swiglu = attn::swiglu;
    k.packed_gemm = packed256::gemm;
    k.packed_gemm_lanes = packed256::gemm_lanes;
    true
}

/// Puts the AVX-512 kernels into `k`, or returns false (and leaves `k`) when the CPU
/// lacks the features.
pub(crate) fn install_avx512(k: &mut Kernels) -> bool {
    if !has_avx512() {
        return false;
    }
    avx512::install(k);
    k.packed_gemm = packed512::gemm;
    k.packed_gemm_lanes = packed512::gemm_lanes;
    true
}
