//! Transformer operations on f32 activations: norms, rope, softmax, activations,
//! attention.
//!
//! Each operation follows the arithmetic of ggml's CPU backend (the function named in its
//! doc comment), down to the order of float operations where that order changes results:
//! slm must pick the same tokens as llama.cpp, and greedy decoding is only as stable as the
//! arithmetic under it. These are the scalar versions; they are the reference for any
//! faster one.
//!
//! Length mismatches between arguments are bugs in the caller and panic.

mod activation;
mod attention;
mod norm;
mod rope;
mod softmax;

pub use activation::{geglu, gelu, gelu_exact, silu, swiglu, swiglu_scalar, SwigluFn};
pub(crate) use attention::inner as attention_inner;
pub use attention::inner::{AttentionKernels, KV_TILE};
pub use attention::{
    attention, attention_batch, attention_batch_with, attention_row, AttentionParams, AttentionSeq,
    KvBlocks,
};
pub use norm::{rms_norm, rms_norm_in_place};
pub use rope::{Rope, RopeStyle};
pub use softmax::softmax;

#[cfg(test)]
mod tests;
