//! Causal multi-head attention over an f16 KV cache, with grouped-query heads and an
//! optional sliding window.
//!
//! The arithmetic follows ggml's CPU flash attention (`ggml_compute_forward_flash_attn_ext_f16`),
//! which llama.cpp uses by default on the CPU: keys and values are read from f16 and
//! converted to f32, and the softmax is computed online, tile by tile of keys (as
//! `ggml_compute_forward_flash_attn_ext_tiled`): each tile's maximum may raise the running
//! maximum `M`, which rescales the output accumulated so far and the running sum `S`; the
//! tile's `exp(s - M)` are summed in f64 and its values added in f32.
//!
//! Work is cut into tasks of one key/value head, the query heads it serves and a block of
//! tokens, so each tile of keys and values is converted once for all of them.

use std::cell::RefCell;
use std::ops::Range;

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::pool;

pub(crate) mod inner;

use inner::{AttentionKernels, KV_TILE};

/// Queries of consecutive tokens that share a task.
const TOKEN_BLOCK: usize = 16;
/// Below this many query-key products a call runs on the caller's thread alone: waking
/// the pool costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 16;
/// The output rows, written by pool threads at disjoint (token, head) slots.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: every task writes only the output slots of its own (token, head) pairs (tasks
// are disjoint), and `pool::for_each_chunk` returns only after every task is done.
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
/// `first_pos + n_tokens - 1`, spread over the compute pool.
pub fn attention(
    params: &AttentionParams,
    q: &[f32], // [n_tokens, n_heads * head_dim]
    k: &[f16], // [n_positions, n_kv_heads * head_dim]
    v: &[f16], // [n_positions, n_kv_heads * head_dim]
    first_pos: usize,
    out: &mut [f32], // [n_tokens, n_heads * head_dim]
) {
    let q_dim = params.n_heads * params.head_dim;
    let kv_dim = params.n_kv_heads * params.head_dim;
    assert!(q_dim > 0 && kv_dim > 0);
    assert_eq!(q.len() % q_dim, 0);
    let n_tokens = q.len() / q_dim;
    // The contiguous cache is one block holding every position.
    let seq = AttentionSeq {
        kv: KvBlocks {
            k,
            v,
            blocks: &[0],
            block_tokens: (k.len() / kv_dim).max(1),
        },
        rows: 0..n_tokens,
        first_pos,
    };
    attention_batch(params, q, &[seq], out);
}

/// The keys and values of one sequence, in blocks of `block_tokens` positions taken from
/// a shared store: position `p` lives at row
/// `blocks[p / block_tokens] * block_tokens + p % block_tokens` of `k` and `v`.
#[derive(Debug, Clone, Copy)]
pub struct KvBlocks<'a> {
    /// Keys of the whole store.
    pub k: &'a [f16], // [n_store_blocks * block_tokens, n_kv_heads * head_dim]
    /// Values of the whole store.
    pub v: &'a [f16], // [n_store_blocks * block_tokens, n_kv_heads * head_dim]
    /// The sequence's blocks, in position order.
    pub blocks: &'a [u32],
    /// Positions per block.
    pub block_tokens: usize,
}

impl KvBlocks<'_> {
    /// Where position `pos`'s row starts in `k` and `v`.
    fn row_start(&self, pos: usize, kv_dim: usize) -> usize {
        let block = self.blocks[pos / self.block_tokens] as usize;
        (block * self.block_tokens + pos % self.block_tokens) * kv_dim
    }
}

/// One sequence of a batched attention call: its queries are rows `rows` of `q` (and of
/// `out`), the first at position `first_pos`.
#[derive(Debug, Clone)]
pub struct AttentionSeq<'a> {
    /// The sequence's cached keys and values, holding every position up to
    /// `first_pos + rows.len() - 1`.
    pub kv: KvBlocks<'a>,
    /// Its query rows; sequences' rows are ascending and do not overlap.
    pub rows: Range<usize>,
    /// Position of its first query row.
    pub first_pos: usize,
}

/// Attention of several sequences' queries, each over its own keys and values, as one
/// job on the compute pool. A query's result does not depend on the other sequences nor
/// on how the work is cut: tiles of keys start at multiples of [`KV_TILE`] positions.
pub fn attention_batch(
    params: &AttentionParams,
    q: &[f32], // [n_rows, n_heads * head_dim]
    seqs: &[AttentionSeq],
    out: &mut [f32], // [n_rows, n_heads * head_dim]
) {
    attention_batch_with(&crate::kernels().attention, params, q, seqs, out);
}

/// [`attention_batch`] with the inner loops of a given instruction set; every set gives
/// the same bits.
pub fn attention_batch_with(
    kernels: &AttentionKernels,
    params: &AttentionParams,
    q: &[f32], // [n_rows, n_heads * head_dim]
    seqs: &[AttentionSeq],
    out: &mut [f32], // [n_rows, n_heads * head_dim]
) {
    let head_dim = params.head_dim;
    let q_dim = params.n_heads * head_dim;
    let kv_dim = params.n_kv_heads * head_dim;
    assert!(params.n_kv_heads > 0 && params.n_heads.is_multiple_of(params.n_kv_heads));
    assert_eq!(q.len(), out.len());
    assert_eq!(q.len() % q_dim, 0);
    let n_rows = q.len() / q_dim;
    let mut rows_end = 0;
    let mut work = 0usize;
    let mut n_blocks = 0;
    for seq in seqs {
        // Disjoint rows keep the tasks' output slots disjoint.
        assert!(seq.rows.start >= rows_end && seq.rows.end >= seq.rows.start);
        rows_end = seq.rows.end;
        let kv = &seq.kv;
        assert!(kv.block_tokens > 0);
        assert_eq!(kv.k.len(), kv.v.len());
        let n_positions = seq.first_pos + seq.rows.len();
        assert!(kv.blocks.len() * kv.block_tokens >= n_positions);
        let store_blocks = kv.k.len() / (kv.block_tokens * kv_dim);
        let used_blocks = n_positions.div_ceil(kv.block_tokens);
        assert!(kv.blocks[..used_blocks]
            .iter()
            .all(|&b| (b as usize) < store_blocks));
        work += seq.rows.len() * params.n_heads * n_positions * head_dim;
        n_blocks += seq.rows.len().div_ceil(TOKEN_BLOCK);
    }
    assert!(rows_end <= n_rows);
    if n_blocks == 0 {
        return;
    }
    let group = params.n_heads / params.n_kv_heads;
    let parallel = work >= PARALLEL_MIN_WORK;
    // With too few (head, block) tasks to keep the pool busy (decoding, few key/value
    // heads), a group's query heads are split over tasks too.
    let threads = if parallel { pool::n_threads() } else { 1 };
    let splits = threads
        .div_ceil(params.n_kv_heads * n_blocks)
        .clamp(1, group);
    let heads_per_task = group.div_ceil(splits);
    let splits = group.div_ceil(heads_per_task);
    // The first task of each sequence, and the end of the last.
    let tasks_per_block = params.n_kv_heads * splits;
    let mut first_task = Vec::with_capacity(seqs.len() + 1);
    let mut n_tasks = 0;
    for seq in seqs {
        first_task.push(n_tasks);
        n_tasks += seq.rows.len().div_ceil(TOKEN_BLOCK) * tasks_per_block;
    }
    let shared = SharedOut(out.as_mut_ptr());
    let run_task = |task: usize| {
        let seq_idx = first_task.partition_point(|&t| t <= task) - 1;
        let seq = &seqs[seq_idx];
        let task = task - first_task[seq_idx];
        let seq_blocks = seq.rows.len().div_ceil(TOKEN_BLOCK);
        let block = task % seq_blocks;
        let kv_head = task / seq_blocks / splits;
        let split = task / seq_blocks % splits;
        let first_head = kv_head * group + split * heads_per_task;
        let last_head = (first_head + heads_per_task).min((kv_head + 1) * group);
        let start = seq.rows.start + block * TOKEN_BLOCK;
        let tokens = start..(start + TOKEN_BLOCK).min(seq.rows.end);
        let mut task = Task {
            kernels,
            params,
            q,
            kv: seq.kv,
            first_row: seq.rows.start,
            first_pos: seq.first_pos,
            kv_head,
            heads: first_head..last_head,
            tokens,
            out: shared,
        };
        SCRATCH.with(|scratch| task.run(&mut scratch.borrow_mut()));
    };
    if parallel {
        pool::for_each_chunk(n_tasks, run_task);
    } else {
        (0..n_tasks).for_each(run_task);
    }
}

/// Per-thread buffers of [`Task::run`], grown to the largest task seen.
#[derive(Default)]
struct Scratch {
    k: Vec<f16>,      // [KV_TILE, head_dim]
    kt: Vec<f32>,     // [head_dim, KV_TILE]
    v: Vec<f32>,      // [KV_TILE, head_dim]
    scores: Vec<f32>, // [KV_TILE]
    max: Vec<f32>,    // [n_queries]
    sum: Vec<f32>,    // [n_queries]
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The queries of some heads of one key/value head, for a block of one sequence's tokens.
struct Task<'a> {
    kernels: &'a AttentionKernels,
    params: &'a AttentionParams,
    q: &'a [f32],
    kv: KvBlocks<'a>,
    /// The sequence's first query row, at position `first_pos`.
    first_row: usize,
    first_pos: usize,
    kv_head: usize,
    heads: Range<usize>,
    tokens: Range<usize>,
    out: SharedOut,
}

impl Task<'_> {
    /// The output slot of query head `head` of token `token`.
    fn out_head(&mut self, token: usize, head: usize) -> &mut [f32] {
        let head_dim = self.params.head_dim;
        let at = (token * self.params.n_heads + head) * head_dim;
        assert!(at + head_dim <= self.q.len());
        // SAFETY: `at + head_dim` is within `out` (as long as `q`, checked above), and
        // only the one task that owns (token, head) writes this slot, through this one
        // borrow at a time.
        unsafe { std::slice::from_raw_parts_mut(self.out.get().add(at), head_dim) }
    }

    /// The position of query row `token`.
    fn pos(&self, token: usize) -> usize {
        self.first_pos + (token - self.first_row)
    }

    fn run(&mut self, s: &mut Scratch) {
        let p = self.params;
        let head_dim = p.head_dim;
        let kv_dim = p.n_kv_heads * head_dim;
        let n_queries = self.heads.len() * self.tokens.len();
        s.k.resize(KV_TILE * head_dim, f16::ZERO);
        s.kt.resize(KV_TILE * head_dim, 0.0);
        s.v.resize(KV_TILE * head_dim, 0.0);
        s.scores.resize(KV_TILE, 0.0);
        s.max.clear();
        s.max.resize(n_queries, f32::NEG_INFINITY);
        s.sum.clear();
        s.sum.resize(n_queries, 0.0);
        for token in self.tokens.clone() {
            for head in self.heads.clone() {
                self.out_head(token, head).fill(0.0);
            }
        }
        let span = p.visible(self.pos(self.tokens.start)).start..self.pos(self.tokens.end);
        // Tiles start at multiples of KV_TILE, so a query meets the same tiles (and the
        // same rounding) whether it comes alone or in a batch.
        let mut tile_start = span.start / KV_TILE * KV_TILE;
        while tile_start < span.end {
            let tile = tile_start.max(span.start)..(tile_start + KV_TILE).min(span.end);
            for (i, pos) in tile.clone().enumerate() {
                let at = self.kv.row_start(pos, kv_dim) + self.kv_head * head_dim;
                let dst = i * head_dim..(i + 1) * head_dim;
                s.k[dst.clone()].copy_from_slice(&self.kv.k[at..at + head_dim]);
                self.kv.v[at..at + head_dim].convert_to_f32_slice(&mut s.v[dst]);
            }
            (self.kernels.keys_transposed)(&s.k[..tile.len() * head_dim], head_dim, &mut s.kt);
            let mut query = 0;
            for token in self.tokens.clone() {
                let visible = p.visible(self.pos(token));
                let seen = visible.start.max(tile.start)..visible.end.min(tile.end);
                for head in self.heads.clone() {
                    if !seen.is_empty() {
                        let rows = seen.start - tile.start..seen.end - tile.start;
                        self.tile_update(s, token, head, query, rows);
                    }
                    query += 1;
                }
            }
            tile_start += KV_TILE;
        }
        let mut query = 0;
        for token in self.tokens.clone() {
            for head in self.heads.clone() {
                let sum = s.sum[query];
                let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
                self.out_head(token, head)
                    .iter_mut()
                    .for_each(|o| *o *= inv);
                query += 1;
            }
        }
    }

    /// Adds the keys and values of `rows` of the converted tile to one query's output.
    fn tile_update(
        &mut self,
        s: &mut Scratch,
        token: usize,
        head: usize,
        query: usize,
        rows: Range<usize>,
    ) {
        let head_dim = self.params.head_dim;
        let at = (token * self.params.n_heads + head) * head_dim;
        let all_q = self.q;
        let q = &all_q[at..at + head_dim];
        let kernels = self.kernels;
        let tile_max = (kernels.scores)(q, &s.kt, rows.clone(), self.params.scale, &mut s.scores);
        let scores = &mut s.scores[rows.clone()];
        let old_max = s.max[query];
        let new_max = old_max.max(tile_max);
        let out = self.out_head(token, head);
        if new_max > old_max {
            let ms = inner::exp(old_max - new_max);
            out.iter_mut().for_each(|o| *o *= ms);
            s.sum[query] *= ms;
        }
        s.max[query] = new_max;
        let tile_sum = (kernels.exp_sum)(scores, new_max);
        s.sum[query] = (f64::from(s.sum[query]) + tile_sum) as f32;
        let v = &s.v[rows.start * head_dim..rows.end * head_dim];
        (kernels.accumulate)(scores, v, out);
    }
}

/// One query head against one key/value head: `out = softmax(scale * q·K) V` over
/// `positions`, where the head's keys are `k[p * kv_dim + kv_offset ..][..head_dim]`.
/// A one-pass online softmax, key by key: the plain reference [`attention`] is tested
/// against.
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

#[cfg(test)]
mod tests;
