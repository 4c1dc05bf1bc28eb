//! Activation functions and the gated forms the feed-forward layers use.

use std::sync::OnceLock;

use half::f16;

const GELU_COEF_A: f32 = 0.044715;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// SiLU, `x / (1 + e^-x)`, as ggml's vector `ggml_v_silu` computes it, with its
/// exponential ([`crate::ops::attention_inner::exp`], which the vector kernels reproduce
/// bit for bit).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + crate::ops::attention_inner::exp(0.0 - x))
}

/// GELU with the tanh approximation, computed directly (`ggml_gelu_f32`).
pub fn gelu_exact(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)).tanh())
}

/// GELU as ggml's CPU backend computes it (`ggml_vec_gelu_f32` with `GGML_GELU_FP16`,
/// on by default): 0 below -10, the identity above 10, and in between a lookup of the
/// input rounded to f16 in a table of [`gelu_exact`] results rounded to f16.
pub fn gelu(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let table = gelu_table();
        f16::from_bits(table[usize::from(f16::from_f32(x).to_bits())]).to_f32()
    }
}

/// `ggml_table_gelu_f16`: GELU of every f16 value, rounded to f16 (128 KiB, built once).
fn gelu_table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_exact(f16::from_bits(bits).to_f32())).to_bits())
            .collect()
    })
}

/// `gate[i] = silu(gate[i]) * up[i]`, ggml's `swiglu` (`ggml_vec_swiglu_f32`), with this
/// CPU's kernel (every instruction set gives the same bits).
pub fn swiglu(
    gate: &mut [f32], // [n]
    up: &[f32],       // [n]
) {
    assert_eq!(gate.len(), up.len());
    (crate::kernels().swiglu)(gate, up);
}

/// Signature of a SwiGLU kernel: `gate[i] = silu(gate[i]) * up[i]`, slices of one length.
pub type SwigluFn = fn(gate: &mut [f32], up: &[f32]);

/// The portable SwiGLU, the reference of the vector ones.
pub fn swiglu_scalar(
    gate: &mut [f32], // [n]
    up: &[f32],       // [n]
) {
    assert_eq!(gate.len(), up.len());
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// `gate[i] = gelu(gate[i]) * up[i]`, ggml's `geglu` (`ggml_vec_geglu_f32`), with the
/// table GELU of [`gelu`].
pub fn geglu(
    gate: &mut [f32], // [n]
    up: &[f32],       // [n]
) {
    assert_eq!(gate.len(), up.len());
    for (g, &u) in gate.iter_mut().zip(up) {
        // ggml writes 0 below -10 rather than multiplying, which matters when `u` is
        // not finite.
        *g = if *g <= -10.0 { 0.0 } else { gelu(*g) * u };
    }
}
