//! Causal multi-head attention over an f16 KV cache, with grouped-query heads and an
//! optional sliding window.
//!
//! The arithmetic follows ggml's CPU flash attention (`ggml_compute_forward_flash_attn_ext_f16`),
//! which llama.cpp uses by default on the CPU: one pass over the keys with an online
//! softmax (running maximum `M`, running sum `S`, the output row rescaled whenever the
//! maximum grows), keys and values read from f16, accumulation in f32.

use std::ops::Range;

use half::f16;

use crate::pool;

/// Below this many query-key products a call runs on the caller's thread alone: waking
/// the pool costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// The output rows, written by pool threads at disjoint (token, head) slots.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: every task writes only its own `head_dim` slot of the output (tasks are
// distinct), and `pool::for_each_chunk` returns only after every task is done.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

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
/// `first_pos + n_tokens - 1`. The (token, head) pairs are spread over the compute pool.
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
    let n_tasks = n_tokens * params.n_heads;
    let work = n_tasks * (first_pos + n_tokens) * head_dim;
    let n_chunks = if work < PARALLEL_MIN_WORK {
        1
    } else {
        n_tasks.min(pool::n_threads() * 4)
    };
    let per_chunk = n_tasks.div_ceil(n_chunks.max(1)).max(1);
    let shared = SharedOut(out.as_mut_ptr());
    pool::for_each_chunk(n_tasks.div_ceil(per_chunk), |chunk| {
        let tasks = chunk * per_chunk..((chunk + 1) * per_chunk).min(n_tasks);
        for task in tasks {
            let token = task / params.n_heads;
            let head = task % params.n_heads;
            let kv_offset = (head / group) * head_dim;
            let positions = params.visible(first_pos + token);
            let q_head = &q[task * head_dim..(task + 1) * head_dim];
            // SAFETY: `task < n_tasks`, so the slot lies inside `out` (whose length was
            // checked to be `n_tasks * head_dim`), and no other task writes it.
            let out_head = unsafe {
                std::slice::from_raw_parts_mut(shared.get().add(task * head_dim), head_dim)
            };
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
        }
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
