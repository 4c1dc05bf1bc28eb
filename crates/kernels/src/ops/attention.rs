//! Causal multi-head attention over an f16 KV cache, with grouped-query heads and an
//! optional sliding window.
//!
//! The arithmetic follows ggml's CPU flash attention (`ggml_compute_forward_flash_attn_ext_f16`),
//! which llama.cpp uses by default on the CPU: one pass over the keys with an online
//! softmax (running maximum `M`, running sum `S`, the output row rescaled whenever the
//! maximum grows), keys and values read from f16, accumulation in f32.

use std::ops::Range;

use half::f16;
use rayon::prelude::*;

/// Shape and scaling of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionParams {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads; each serves `n_heads / n_kv_heads` consecutive query heads.
    pub n_kv_heads: usize,
    /// Values per head (keys and values alike).
    pub head_dim: usize,
    /// Factor applied to every query-key dot product (`1 / sqrt(head_dim)` usually).
    pub scale: f32,
    /// Sliding window: a query at position `p` sees keys at positions `p0` with
    /// `p - p0 < window` (llama.cpp's `LLAMA_SWA_TYPE_STANDARD`); `None` sees all earlier
    /// positions.
    pub window: Option<usize>,
}

impl AttentionParams {
    /// The key positions a query at `pos` attends to.
    pub fn visible(&self, pos: usize) -> Range<usize> {
        let start = match self.window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        };
        start..pos + 1
    }
}

/// Attention of `n_tokens` consecutive queries, the first at position `first_pos`, over
/// the cached keys and values, which must already hold every position up to
/// `first_pos + n_tokens - 1`. Each (token, head) pair is one task on the compute pool.
pub fn attention(
    params: &AttentionParams,
    q: &[f32], // [n_tokens, n_heads * head_dim]
    k: &[f16], // [n_positions, n_kv_heads * head_dim]
    v: &[f16], // [n_positions, n_kv_heads * head_dim]
    first_pos: usize,
    out: &mut [f32], // [n_tokens, n_heads * head_dim]
) {
    let head_dim = params.head_dim;
    let q_dim = params.n_heads * head_dim;
    let kv_dim = params.n_kv_heads * head_dim;
    assert!(params.n_kv_heads > 0 && params.n_heads % params.n_kv_heads == 0);
    assert_eq!(q.len(), out.len());
    assert_eq!(q.len() % q_dim, 0);
    let n_tokens = q.len() / q_dim;
    assert!(k.len() >= (first_pos + n_tokens) * kv_dim);
    assert_eq!(k.len(), v.len());
    let group = params.n_heads / params.n_kv_heads;
    out.par_chunks_mut(head_dim)
        .zip(q.par_chunks(head_dim))
        .enumerate()
        .for_each(|(task, (out_head, q_head))| {
            let token = task / params.n_heads;
            let head = task % params.n_heads;
            let kv_offset = (head / group) * head_dim;
            let positions = params.visible(first_pos + token);
            attention_row(
                q_head,
                k,
                v,
                kv_dim,
                kv_offset,
                positions,
                params.scale,
                out_head,
            );
        });
}

/// One query head against one key/value head: `out = softmax(scale * q·K) V` over
/// `positions`, where the head's keys are `k[p * kv_dim + kv_offset ..][..head_dim]`.
#[allow(clippy::too_many_arguments)]
pub fn attention_row(
    q: &[f32], // [head_dim]
    k: &[f16], // [n_positions, kv_dim]
    v: &[f16], // [n_positions, kv_dim]
    kv_dim: usize,
    kv_offset: usize,
    positions: Range<usize>,
    scale: f32,
    out: &mut [f32], // [head_dim]
) {
    let head_dim = q.len();
    assert_eq!(out.len(), head_dim);
    out.fill(0.0);
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0.0f32;
    for pos in positions {
        let start = pos * kv_dim + kv_offset;
        let k_row = &k[start..start + head_dim];
        let v_row = &v[start..start + head_dim];
        let dot: f32 = q.iter().zip(k_row).map(|(&a, &b)| a * b.to_f32()).sum();
        let s = dot * scale;
        let mut ms = 1.0f32;
        let mut vs = 1.0f32;
        if s > max {
            // A new maximum: rescale what was accumulated, this value weighs e^0 = 1.
            ms = (max - s).exp();
            max = s;
            for o in out.iter_mut() {
                *o *= ms;
            }
        } else {
            vs = (s - max).exp();
        }
        for (o, &x) in out.iter_mut().zip(v_row) {
            *o += x.to_f32() * vs;
        }
        sum = sum * ms + vs;
    }
    let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
    for o in out.iter_mut() {
        *o *= inv;
    }
}
