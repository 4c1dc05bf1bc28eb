//! Causal multi-head attention over an f16 KV cache, with grouped-query heads and an
//! optional sliding window.
//!
//! The arithmetic follows ggml's CPU flash attention (`ggml_compute_forward_flash_attn_ext_f16`),
//! which llama.cpp uses by default on the CPU: keys and values are read from f16 and
//! converted to f32, and the softmax is computed online, tile by tile of keys (as
//! `ggml_compute_forward_flash_attn_ext_tiled`): each tile's maximum may raise the running
//! maximum `M`, which rescales the output accumulated so far and the running sum `S`; the
//! tile's `exp(s - M)` are summed in f64 and its values added in f32. Keys are taken in
//! chunks of [`KV_CHUNK`] positions, each with its own online softmax, and the chunks'
//! results merged in order (as ggml merges the key ranges it splits over threads when
//! decoding), so that decoding can spread one long context over the threads.
//!
//! Work is cut into tasks of one key/value head, the query heads it serves and a block of
//! tokens (and, when that gives too few tasks, one chunk of keys), so each tile of keys
//! and values is converted once for all of them, straight from the cache rows.

use std::cell::RefCell;
use std::ops::Range;

use half::f16;

use crate::pool;

pub(crate) mod inner;

use inner::{AttentionKernels, KV_TILE};

/// Queries of consecutive tokens that share a task.
const TOKEN_BLOCK: usize = 16;
/// Each query goes through its keys in chunks of this many positions (from multiples of
/// it), an online softmax per chunk, and merges the chunks' results in order: the chunks
/// of one long context can then be split over threads (decoding) and give the same bits
/// as one thread going through them all (prefill). A multiple of [`KV_TILE`].
const KV_CHUNK: usize = 2 * KV_TILE;
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
    attention_planned(kernels, params, q, seqs, out, None);
}

/// [`attention_batch_with`], with the chunks of keys split over tasks or not as
/// `force_split` says (`None`: as the work calls for); the result is the same.
fn attention_planned(
    kernels: &AttentionKernels,
    params: &AttentionParams,
    q: &[f32], // [n_rows, n_heads * head_dim]
    seqs: &[AttentionSeq],
    out: &mut [f32], // [n_rows, n_heads * head_dim]
    force_split: Option<bool>,
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
    let threads = if parallel { pool::n_threads() } else { 1 };
    // Decoding (one or a few query rows) gives too few (head, block) tasks to keep the
    // pool busy: then each block's chunks of keys become tasks of their own, whose
    // results are merged after the job, in the same order a single task merges them.
    let split_keys = match force_split {
        Some(split) => split,
        None => threads > 1 && params.n_kv_heads * n_blocks < 4 * threads,
    };
    // The units of work: one block of one sequence's rows, with the key chunks it sees.
    // (A buffer kept on the calling thread: no allocation per token once it has grown.)
    let mut units = UNITS.take();
    units.clear();
    let mut n_pieces = 0;
    let mut n_partials = 0;
    for (seq_idx, seq) in seqs.iter().enumerate() {
        for start in seq.rows.clone().step_by(TOKEN_BLOCK) {
            let tokens = start..(start + TOKEN_BLOCK).min(seq.rows.end);
            let first = seq.first_pos + (tokens.start - seq.rows.start);
            let last = seq.first_pos + (tokens.end - 1 - seq.rows.start);
            let chunks = params.visible(first).start / KV_CHUNK..last / KV_CHUNK + 1;
            let unit = Unit {
                seq: seq_idx,
                tokens,
                chunks,
                first_piece: n_pieces,
                partials_at: n_partials,
            };
            if split_keys {
                n_pieces += unit.chunks.len();
                n_partials += unit.chunks.len() * unit.piece_len(params);
            } else {
                n_pieces += 1;
            }
            units.push(unit);
        }
    }
    // With still too few tasks, a group's query heads are split over tasks too.
    let splits = threads
        .div_ceil(params.n_kv_heads * n_pieces)
        .clamp(1, group);
    let heads_per_task = group.div_ceil(splits);
    let splits = group.div_ceil(heads_per_task);
    let tasks_per_piece = params.n_kv_heads * splits;
    let n_tasks = n_pieces * tasks_per_piece;
    // Split chunks leave their (max, sum, output) here: from a unit's `partials_at`,
    // its piece p's row r (of the unit's block) and head h at
    // `((p * rows + r) * n_heads + h) * (2 + head_dim)`.
    PARTIALS.with(|partials| {
        let mut partials = partials.borrow_mut();
        partials.resize(n_partials, 0.0);
        let shared = SharedOut(out.as_mut_ptr());
        let shared_partials = SharedOut(partials.as_mut_ptr());
        let run_task = |task: usize| {
            let piece = task / tasks_per_piece;
            let unit = &units[units.partition_point(|u| u.first_piece <= piece) - 1];
            let seq = &seqs[unit.seq];
            let rest = task % tasks_per_piece;
            let kv_head = rest / splits;
            let split = rest % splits;
            let first_head = kv_head * group + split * heads_per_task;
            let last_head = (first_head + heads_per_task).min((kv_head + 1) * group);
            let (chunks, partials) = if split_keys {
                let chunk = unit.chunks.start + (piece - unit.first_piece);
                (
                    chunk..chunk + 1,
                    Some(SharedOut(shared_partials.get().wrapping_add(
                        unit.partials_at + (piece - unit.first_piece) * unit.piece_len(params),
                    ))),
                )
            } else {
                (unit.chunks.clone(), None)
            };
            let mut task = Task {
                kernels,
                params,
                q,
                kv: seq.kv,
                first_row: seq.rows.start,
                first_pos: seq.first_pos,
                kv_head,
                heads: first_head..last_head,
                tokens: unit.tokens.clone(),
                chunks,
                out: shared,
                partials,
            };
            SCRATCH.with(|scratch| task.run(&mut scratch.borrow_mut()));
        };
        if parallel {
            pool::for_each_chunk(n_tasks, run_task);
        } else {
            (0..n_tasks).for_each(run_task);
        }
        if split_keys {
            merge_partials(params, &units, &partials, out);
        }
    });
    UNITS.set(units);
}

/// A block of at most [`TOKEN_BLOCK`] consecutive query rows of one sequence.
struct Unit {
    seq: usize,
    /// Its rows of `q` and `out`.
    tokens: Range<usize>,
    /// The chunks of [`KV_CHUNK`] key positions its queries see (some, not all of them).
    chunks: Range<usize>,
    /// Its first piece of work among all units' (one piece per chunk when the chunks are
    /// split over tasks, else one for all chunks).
    first_piece: usize,
    /// Where its pieces' partial results start in the buffer of a split call.
    partials_at: usize,
}

impl Unit {
    /// The length of one piece's partial results: (max, sum, output) per row and head.
    fn piece_len(&self, params: &AttentionParams) -> usize {
        self.tokens.len() * params.n_heads * (2 + params.head_dim)
    }
}

/// Merges the chunks' results that split tasks left in `partials`, for every unit, in
/// chunk order, and writes the normalized outputs.
fn merge_partials(params: &AttentionParams, units: &[Unit], partials: &[f32], out: &mut [f32]) {
    let head_dim = params.head_dim;
    let slot = 2 + head_dim;
    for unit in units {
        for (r, token) in unit.tokens.clone().enumerate() {
            for head in 0..params.n_heads {
                let at = (token * params.n_heads + head) * head_dim;
                let o = &mut out[at..at + head_dim];
                o.fill(0.0);
                let mut max = f32::NEG_INFINITY;
                let mut sum = 0.0f32;
                // Only a split call leaves partials: one piece per chunk.
                for piece in 0..unit.chunks.len() {
                    let s = unit.partials_at
                        + ((piece * unit.tokens.len() + r) * params.n_heads + head) * slot;
                    let part = &partials[s..s + slot];
                    merge_chunk(&mut max, &mut sum, o, part[0], part[1], &part[2..]);
                }
                normalize(o, sum);
            }
        }
    }
}

/// Folds one chunk's online-softmax result (its maximum score, sum of numerators and
/// unnormalized output) into a query's running one; the first chunk's become the running
/// ones as they are.
fn merge_chunk(
    max: &mut f32,
    sum: &mut f32,
    out: &mut [f32],
    chunk_max: f32,
    chunk_sum: f32,
    chunk_out: &[f32],
) {
    if chunk_sum == 0.0 {
        // No key of the chunk was visible to this query.
        return;
    }
    if *sum == 0.0 {
        // The first chunk (a chunk that saw a key sums to at least e^0 = 1).
        out.copy_from_slice(chunk_out);
        *sum = chunk_sum;
        *max = chunk_max;
        return;
    }
    let new_max = max.max(chunk_max);
    let old_scale = inner::exp(*max - new_max);
    let chunk_scale = inner::exp(chunk_max - new_max);
    for (o, &c) in out.iter_mut().zip(chunk_out) {
        *o = *o * old_scale + c * chunk_scale;
    }
    *sum = *sum * old_scale + chunk_sum * chunk_scale;
    *max = new_max;
}

/// Divides a query's output by its softmax sum (an output with no key stays 0).
fn normalize(out: &mut [f32], sum: f32) {
    let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
    out.iter_mut().for_each(|o| *o *= inv);
}

/// Asks the CPU to bring `row` into its caches: a hint, which reads nothing and changes
/// no result.
#[inline(always)]
fn prefetch_row(row: &[f16]) {
    // Every 64 bytes from the first value, and the last (a row need not start a line).
    #[cfg(target_arch = "x86_64")]
    for at in (0..row.len()).step_by(32).chain(row.len().checked_sub(1)) {
        // SAFETY: SSE is part of x86-64; a prefetch reads nothing architecturally and
        // does not fault.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(row[at..].as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Per-thread buffers of [`Task::run`], grown to the largest task seen.
#[derive(Default)]
struct Scratch {
    kt: Vec<f32>,     // [head_dim, KV_TILE]
    v: Vec<f32>,      // [KV_TILE, head_dim]
    scores: Vec<f32>, // [KV_TILE]
    /// Each query's running maximum and sum over the chunks merged so far.
    max: Vec<f32>, // [n_queries]
    sum: Vec<f32>,    // [n_queries]
    /// Each query's state within the current chunk.
    chunk_max: Vec<f32>, // [n_queries]
    chunk_sum: Vec<f32>, // [n_queries]
    chunk_out: Vec<f32>, // [n_queries, head_dim]
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// The units of work of a call, on the calling thread.
    static UNITS: RefCell<Vec<Unit>> = const { RefCell::new(Vec::new()) };
    /// The chunk results of split calls, on the calling thread.
    static PARTIALS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The queries of some heads of one key/value head, for a block of one sequence's
/// tokens, over some chunks of keys.
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
    /// The chunks of [`KV_CHUNK`] positions to go through.
    chunks: Range<usize>,
    out: SharedOut,
    /// Where a split task leaves its one chunk's results (the unit's first row at
    /// offset 0) instead of writing outputs.
    partials: Option<SharedOut>,
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
        s.kt.resize(KV_TILE * head_dim, 0.0);
        s.v.resize(KV_TILE * head_dim, 0.0);
        s.scores.resize(KV_TILE, 0.0);
        s.max.clear();
        s.max.resize(n_queries, f32::NEG_INFINITY);
        s.sum.clear();
        s.sum.resize(n_queries, 0.0);
        s.chunk_max.resize(n_queries, 0.0);
        s.chunk_sum.resize(n_queries, 0.0);
        s.chunk_out.resize(n_queries * head_dim, 0.0);
        if self.partials.is_none() {
            for token in self.tokens.clone() {
                for head in self.heads.clone() {
                    self.out_head(token, head).fill(0.0);
                }
            }
        }
        let span = p.visible(self.pos(self.tokens.start)).start..self.pos(self.tokens.end);
        // The last position this task reads.
        let fetch_end = span.end.min(self.chunks.end * KV_CHUNK);
        for chunk in self.chunks.clone() {
            let keys = (chunk * KV_CHUNK).max(span.start)..((chunk + 1) * KV_CHUNK).min(span.end);
            s.chunk_max[..n_queries].fill(f32::NEG_INFINITY);
            s.chunk_sum[..n_queries].fill(0.0);
            s.chunk_out[..n_queries * head_dim].fill(0.0);
            // Tiles start at multiples of KV_TILE (and chunks at multiples of tiles), so
            // a query meets the same tiles (and the same rounding) whether it comes alone
            // or in a batch.
            let mut tile_start = keys.start / KV_TILE * KV_TILE;
            while tile_start < keys.end {
                let tile = tile_start.max(keys.start)..(tile_start + KV_TILE).min(keys.end);
                // Runs of positions in one block of the cache lie `kv_dim` apart.
                let mut pos = tile.start;
                while pos < tile.end {
                    let block_end = (pos / self.kv.block_tokens + 1) * self.kv.block_tokens;
                    let n = block_end.min(tile.end) - pos;
                    let at = self.kv.row_start(pos, kv_dim) + self.kv_head * head_dim;
                    let len = (n - 1) * kv_dim + head_dim;
                    let first = pos - tile.start;
                    let k = &self.kv.k[at..at + len];
                    (self.kernels.keys_transposed)(k, kv_dim, n, head_dim, first, &mut s.kt);
                    let v = &self.kv.v[at..at + len];
                    let out = &mut s.v[first * head_dim..(first + n) * head_dim];
                    (self.kernels.values)(v, kv_dim, n, out);
                    pos += n;
                }
                // The next tile's keys and values come from memory while this one's are
                // multiplied.
                let next = tile.end..(tile.end + KV_TILE).min(fetch_end);
                for pos in next {
                    let at = self.kv.row_start(pos, kv_dim) + self.kv_head * head_dim;
                    prefetch_row(&self.kv.k[at..at + head_dim]);
                    prefetch_row(&self.kv.v[at..at + head_dim]);
                }
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
            self.finish_chunk(s);
        }
        if self.partials.is_none() {
            let mut query = 0;
            for token in self.tokens.clone() {
                for head in self.heads.clone() {
                    let sum = s.sum[query];
                    normalize(self.out_head(token, head), sum);
                    query += 1;
                }
            }
        }
    }

    /// Hands every query's result over the chunk just done on: merged into its output,
    /// or left in the partials of a split task.
    fn finish_chunk(&mut self, s: &mut Scratch) {
        let head_dim = self.params.head_dim;
        let n_heads = self.params.n_heads;
        let mut query = 0;
        for (r, token) in self.tokens.clone().enumerate() {
            for head in self.heads.clone() {
                let chunk_out = &s.chunk_out[query * head_dim..(query + 1) * head_dim];
                let (chunk_max, chunk_sum) = (s.chunk_max[query], s.chunk_sum[query]);
                match self.partials {
                    Some(partials) => {
                        let at = (r * n_heads + head) * (2 + head_dim);
                        // SAFETY: the slot lies within this piece's part of the buffer
                        // (r < rows, head < n_heads), which the caller sized, and
                        // only this task writes the slots of its (row, head) pairs.
                        let part = unsafe {
                            std::slice::from_raw_parts_mut(partials.get().add(at), 2 + head_dim)
                        };
                        part[0] = chunk_max;
                        part[1] = chunk_sum;
                        part[2..].copy_from_slice(chunk_out);
                    }
                    None => {
                        let (mut max, mut sum) = (s.max[query], s.sum[query]);
                        merge_chunk(
                            &mut max,
                            &mut sum,
                            self.out_head(token, head),
                            chunk_max,
                            chunk_sum,
                            chunk_out,
                        );
                        s.max[query] = max;
                        s.sum[query] = sum;
                    }
                }
                query += 1;
            }
        }
    }

    /// Adds the keys and values of `rows` of the converted tile to one query's state in
    /// the current chunk.
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
        let q = &self.q[at..at + head_dim];
        let kernels = self.kernels;
        let tile_max = (kernels.scores)(q, &s.kt, rows.clone(), self.params.scale, &mut s.scores);
        let scores = &mut s.scores[rows.clone()];
        let old_max = s.chunk_max[query];
        let new_max = old_max.max(tile_max);
        let out = &mut s.chunk_out[query * head_dim..(query + 1) * head_dim];
        if new_max > old_max {
            let ms = inner::exp(old_max - new_max);
            out.iter_mut().for_each(|o| *o *= ms);
            s.chunk_sum[query] *= ms;
        }
        s.chunk_max[query] = new_max;
        let tile_sum = (kernels.exp_sum)(scores, new_max);
        s.chunk_sum[query] = (f64::from(s.chunk_sum[query]) + tile_sum) as f32;
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
