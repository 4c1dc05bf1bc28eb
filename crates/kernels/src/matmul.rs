//! Matrix products of quantized weights with f32 activations.
//!
//! The activations are quantized once per call to the weights' `vec_dot_type` (split
//! over the pool's threads when there are many tokens). The output rows are then cut
//! into a few equal chunks per thread, which the threads claim one by one (so a thread
//! the OS runs late does not hold up the others), and every weight row is read once
//! per tile of tokens: a chunk is walked a few rows at a time ([`ROW_TILE`]) and, while
//! those rows sit in L1, their dot products with a tile of tokens ([`TOKEN_TILE`],
//! whose quantized activations stay in L2) are taken. Decode (one token) is thus a
//! plain split of the rows.

use crate::dispatch::{VecDotFn, VecDotTileFn, TILE_ROWS, TILE_TOKENS};
use crate::packed::{PackedActs, PackedMatrix, GROUP, MAX_TOKENS};
use crate::{kernels, pool, DType, QK_K};

/// Weight rows walked together; 4 rows of a 4864-column Q8_0 matrix are 20 KiB, which
/// fits L1 next to one token's activations.
const ROW_TILE: usize = 4;
/// Tokens whose quantized activations are reused for each tile of rows; 64 rows of
/// 4864 Q8_K activations are 350 KiB, inside L2.
const TOKEN_TILE: usize = 64;
const _: () = assert!(ROW_TILE.is_multiple_of(TILE_ROWS) && TOKEN_TILE.is_multiple_of(TILE_TOKENS));

/// Chunks of rows per thread: enough to even out threads that start late, few enough
/// that claiming them costs nothing next to the work.
const CHUNKS_PER_THREAD: usize = 16;
/// Below this many tokens the activations are quantized on the calling thread.
const PARALLEL_QUANTIZE_TOKENS: usize = 4;
/// Below this many weight bytes × tokens a matmul runs on the calling thread only:
/// waking the pool costs more than it saves.
const PARALLEL_MIN_WORK: usize = 64 * 1024;

/// A weight matrix of `n_rows` rows of `n_cols` values each, stored row after row in
/// blocks of `dtype` (a view into the mapped model file or a repacked copy).
#[derive(Debug, Clone, Copy)]
pub struct WeightView<'a> {
    /// Element type.
    pub dtype: DType,
    /// Raw blocks, `n_rows * dtype.row_bytes(n_cols)` bytes.
    pub data: &'a [u8],
    /// Output features.
    pub n_rows: usize,
    /// Input features (a multiple of the block size).
    pub n_cols: usize,
}

impl WeightView<'_> {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.dtype
            .row_bytes(self.n_cols)
            .expect("weight views are built with whole-block rows")
    }
}

/// Scratch memory reused across matmuls so the token loop does not allocate.
#[derive(Debug, Default)]
pub struct MatmulScratch {
    quantized: Vec<u8>,
    /// Quantized activations per activation type (Q8_0, Q8_1, Q8_K).
    acts: [PackedActs; 3],
}

/// The slot of `act_type` in [`MatmulScratch::acts`].
fn act_slot(act_type: DType) -> usize {
    match act_type {
        DType::Q8_0 => 0,
        DType::Q8_1 => 1,
        _ => 2,
    }
}

impl MatmulScratch {
    /// The activations last quantized to `act_type`.
    pub(crate) fn acts_for(&self, act_type: DType) -> &PackedActs {
        &self.acts[act_slot(act_type)]
    }
}

/// A pointer that threads share to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);

// SAFETY: every user writes only elements no other thread touches (its own rows or
// tokens), and the pool returns only after all threads are done with it.
unsafe impl<T> Sync for SharedMut<T> {}
// SAFETY: as for `Sync`.
unsafe impl<T> Send for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn get(self) -> *mut T {
        self.0
    }
}

/// Cuts `0..len` into at most `max_chunks` equal chunks whose length is a multiple of
/// `align` (but the last); returns the chunk length and count.
fn chunking(len: usize, max_chunks: usize, align: usize) -> (usize, usize) {
    let per = len.div_ceil(max_chunks.max(1)).div_ceil(align).max(1) * align;
    (per, len.div_ceil(per))
}

/// `out[t * n_rows + r] = dot(w[r], x[t])` for `x: [n_tokens, n_cols]`,
/// `out: [n_tokens, n_rows]`. Activations are quantized once to the weights'
/// `vec_dot_type` and reused by every row.
pub fn matmul(
    w: &WeightView,
    x: &[f32], // [n_tokens, n_cols]
    n_tokens: usize,
    out: &mut [f32], // [n_tokens, n_rows]
    scratch: &mut MatmulScratch,
) {
    let k = kernels();
    assert_eq!(
        x.len(),
        n_tokens * w.n_cols,
        "matmul: x is not [n_tokens, n_cols]"
    );
    assert_eq!(
        out.len(),
        n_tokens * w.n_rows,
        "matmul: out is not [n_tokens, n_rows]"
    );
    let w_row = w.row_bytes();
    assert!(
        w.data.len() >= w_row * w.n_rows,
        "matmul: weight data shorter than its shape"
    );
    let act_type = w.dtype.vec_dot_type();
    let act_row = act_type
        .row_bytes(w.n_cols)
        .expect("weight rows are whole blocks of the activation type too");
    if n_tokens == 0 || w.n_rows == 0 {
        return;
    }
    let parallel = w_row * w.n_rows * n_tokens >= PARALLEL_MIN_WORK;
    scratch.quantized.resize(act_row * n_tokens, 0);
    quantize_activations(act_type, w.n_cols, x, &mut scratch.quantized, parallel);

    let kernels = k.get(w.dtype);
    let job = RowsJob {
        w,
        w_row,
        act: &scratch.quantized, // [n_tokens, act_row]
        act_row,
        n_tokens,
        out: SharedMut(out.as_mut_ptr()),
        vec_dot: kernels.vec_dot,
        tile: kernels.vec_dot_tile,
    };
    let max_chunks = if parallel {
        pool::n_threads() * CHUNKS_PER_THREAD
    } else {
        1
    };
    let (chunk_rows, n_chunks) = chunking(w.n_rows, max_chunks, ROW_TILE);
    pool::for_each_chunk(n_chunks, |chunk| {
        let r_start = chunk * chunk_rows;
        job.rows(r_start, (r_start + chunk_rows).min(w.n_rows));
    });
}

/// What every thread of one matmul needs to compute a range of output rows.
struct RowsJob<'a> {
    w: &'a WeightView<'a>,
    w_row: usize,
    act: &'a [u8], // [n_tokens, act_row]
    act_row: usize,
    n_tokens: usize,
    out: SharedMut<f32>, // [n_tokens, n_rows]
    vec_dot: VecDotFn,
    tile: Option<VecDotTileFn>,
}

impl RowsJob<'_> {
    fn weight_row(&self, r: usize) -> &[u8] {
        &self.w.data[r * self.w_row..(r + 1) * self.w_row]
    }

    fn act_row(&self, t: usize) -> &[u8] {
        &self.act[t * self.act_row..(t + 1) * self.act_row]
    }

    fn store(&self, r: usize, t: usize, v: f32) {
        assert!(r < self.w.n_rows && t < self.n_tokens);
        // SAFETY: `t < n_tokens` and `r < n_rows` (just checked), so the index is inside
        // `out` ([n_tokens, n_rows], checked by `matmul`); row `r` belongs to the
        // calling chunk alone.
        unsafe { *self.out.get().add(t * self.w.n_rows + r) = v };
    }

    /// Output rows `r_start..r_end` for every token: rows [`ROW_TILE`] at a time, each
    /// group against a [`TOKEN_TILE`] of tokens, in tiles of dot products where the
    /// kernel set has them and pair by pair for the edges.
    fn rows(&self, r_start: usize, r_end: usize) {
        let n_cols = self.w.n_cols;
        for t_start in (0..self.n_tokens).step_by(TOKEN_TILE) {
            let t_end = (t_start + TOKEN_TILE).min(self.n_tokens);
            for group in (r_start..r_end).step_by(ROW_TILE) {
                let group_end = (group + ROW_TILE).min(r_end);
                let mut r = group;
                if let Some(tile) = self.tile.filter(|_| t_end - t_start >= TILE_TOKENS) {
                    while r + TILE_ROWS <= group_end {
                        let w_rows: [&[u8]; TILE_ROWS] =
                            std::array::from_fn(|i| self.weight_row(r + i));
                        let mut t = t_start;
                        while t + TILE_TOKENS <= t_end {
                            let x: [&[u8]; TILE_TOKENS] =
                                std::array::from_fn(|i| self.act_row(t + i));
                            let v = tile(n_cols, w_rows, x);
                            for (i, row) in v.iter().enumerate() {
                                for (j, &value) in row.iter().enumerate() {
                                    self.store(r + i, t + j, value);
                                }
                            }
                            t += TILE_TOKENS;
                        }
                        for rr in r..r + TILE_ROWS {
                            self.pairs(rr, t, t_end);
                        }
                        r += TILE_ROWS;
                    }
                }
                for rr in r..group_end {
                    self.pairs(rr, t_start, t_end);
                }
            }
        }
    }

    /// Row `r` against tokens `t_start..t_end`, one dot product at a time.
    fn pairs(&self, r: usize, t_start: usize, t_end: usize) {
        let w_r = self.weight_row(r);
        for t in t_start..t_end {
            self.store(r, t, (self.vec_dot)(self.w.n_cols, w_r, self.act_row(t)));
        }
    }
}

/// Quantizes each token's `n_cols` values of `x` into one `act_type` row of `dst`.
fn quantize_activations(
    act_type: DType,
    n_cols: usize,
    x: &[f32],      // [n_tokens, n_cols]
    dst: &mut [u8], // [n_tokens, act_row]
    parallel: bool,
) {
    let quantize = kernels().get(act_type).quantize;
    let n_tokens = x.len() / n_cols.max(1);
    if n_tokens == 0 || n_cols == 0 {
        return;
    }
    let act_row = dst.len() / n_tokens;
    if !parallel || n_tokens < PARALLEL_QUANTIZE_TOKENS {
        for (src, row) in x.chunks_exact(n_cols).zip(dst.chunks_exact_mut(act_row)) {
            quantize(src, row);
        }
        return;
    }
    let dst_ptr = SharedMut(dst.as_mut_ptr());
    pool::for_each_chunk(n_tokens, |t| {
        // SAFETY: row `t < n_tokens` of `dst` ([n_tokens, act_row]) belongs to this
        // chunk alone and lies inside it; `dst` outlives `for_each_chunk`.
        let row =
            unsafe { std::slice::from_raw_parts_mut(dst_ptr.get().add(t * act_row), act_row) };
        quantize(&x[t * n_cols..(t + 1) * n_cols], row);
    });
}

/// `out[t * n_rows + r] = dot(w[r], x[t])` over a packed matrix: the activations are
/// quantized once (to the format's activation type) and every group of rows is read
/// once per [`TOKEN_TILE`] of tokens, its blocks unpacked once per [`MAX_TOKENS`].
/// Results do not depend on `n_tokens` (see [`crate::packed`]).
pub fn matmul_packed(
    w: &PackedMatrix,
    x: &[f32], // [n_tokens, n_cols]
    n_tokens: usize,
    out: &mut [f32], // [n_tokens, n_rows]
    scratch: &mut MatmulScratch,
) {
    matmul_packed_many(&mut [(w, out)], x, n_tokens, scratch);
}

/// [`matmul_packed`] of several matrices with the same input (queries, keys and values;
/// gate and up): the input is quantized once per activation type and all matrices'
/// rows are shared out to the pool in one go. Each `(w, out)` has `out`
/// `[n_tokens, w.n_rows()]`; every `w` has `x`'s `n_cols` columns.
pub fn matmul_packed_many(
    jobs: &mut [(&PackedMatrix, &mut [f32])],
    x: &[f32], // [n_tokens, n_cols]
    n_tokens: usize,
    scratch: &mut MatmulScratch,
) {
    let Some(n_cols) = jobs.first().map(|(w, _)| w.n_cols()) else {
        return;
    };
    assert_eq!(
        x.len(),
        n_tokens * n_cols,
        "matmul: x is not [n_tokens, n_cols]"
    );
    let mut total_bytes = 0;
    for (w, out) in jobs.iter() {
        assert_eq!(
            w.n_cols(),
            n_cols,
            "matmul: matrices of one input differ in columns"
        );
        assert_eq!(
            out.len(),
            n_tokens * w.n_rows(),
            "matmul: out is not [n_tokens, n_rows]"
        );
        total_bytes += w.size_bytes();
    }
    if n_tokens == 0 {
        return;
    }
    let parallel = total_bytes * n_tokens >= PARALLEL_MIN_WORK;
    for act_type in [DType::Q8_0, DType::Q8_1, DType::Q8_K] {
        if jobs.iter().any(|(w, _)| w.format().act_type() == act_type) {
            quantize_packed_acts(act_type, n_cols, x, n_tokens, scratch, parallel);
        }
    }
    let max_chunks = if parallel {
        pool::n_threads() * CHUNKS_PER_THREAD
    } else {
        1
    };
    // Every matrix's groups cut into chunks; chunk `c` of the whole list belongs to the
    // matrix whose range of chunk numbers holds it.
    let mut plan = Vec::with_capacity(jobs.len());
    let mut first_chunk = 0;
    for (w, out) in jobs.iter_mut() {
        let share = (max_chunks * w.size_bytes())
            .div_ceil(total_bytes.max(1))
            .max(1);
        let (per, n_chunks) = chunking(w.n_groups(), share, 1);
        plan.push(Planned {
            w,
            out: SharedMut(out.as_mut_ptr()),
            acts: scratch.acts_for(w.format().act_type()),
            per,
            first_chunk,
        });
        first_chunk += n_chunks;
    }
    let k = kernels();
    pool::for_each_chunk(first_chunk, |c| {
        let job = plan
            .iter()
            .rev()
            .find(|p| p.first_chunk <= c)
            .expect("chunk 0 belongs to the first matrix");
        let chunk = c - job.first_chunk;
        let n_groups = job.w.n_groups();
        let (gemm, tile) = if crate::packed::uses_lanes(job.w.format(), n_tokens) {
            (k.packed_gemm_lanes, crate::packed::MAX_LANE_TOKENS)
        } else {
            (k.packed_gemm, MAX_TOKENS)
        };
        job.groups(
            gemm,
            tile,
            chunk * job.per..((chunk + 1) * job.per).min(n_groups),
            n_tokens,
        );
    });
}

/// One matrix of [`matmul_packed_many`] with its share of the chunks.
struct Planned<'a> {
    w: &'a PackedMatrix,
    out: SharedMut<f32>, // [n_tokens, w.n_rows()]
    acts: &'a PackedActs,
    /// Groups per chunk.
    per: usize,
    /// Number of this matrix's first chunk in the whole list.
    first_chunk: usize,
}

impl Planned<'_> {
    /// Groups `groups` for every token.
    fn groups(
        &self,
        gemm: crate::packed::PackedGemmFn,
        tile: usize,
        groups: std::ops::Range<usize>,
        n_tokens: usize,
    ) {
        let n_rows = self.w.n_rows();
        let format = self.w.format();
        let mut buf = [[0.0f32; GROUP]; MAX_TOKENS];
        for t_start in (0..n_tokens).step_by(TOKEN_TILE) {
            let t_end = (t_start + TOKEN_TILE).min(n_tokens);
            for g in groups.clone() {
                let rows = g * GROUP..(g * GROUP + GROUP).min(n_rows);
                for t0 in (t_start..t_end).step_by(tile) {
                    let nt = tile.min(t_end - t0);
                    gemm(format, self.w.group(g), self.acts, t0, nt, &mut buf);
                    for (t, row) in buf.iter().enumerate().take(nt) {
                        let dst = (t0 + t) * n_rows + rows.start;
                        assert!(dst + rows.len() <= n_tokens * n_rows);
                        // SAFETY: the range is inside `out` (just checked); rows of group
                        // `g` belong to this chunk alone; `out` outlives the pool call.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(self.out.get().add(dst), rows.len())
                        };
                        // A whole group is a copy of constant length, which compiles to
                        // a few vector moves instead of a call to memcpy.
                        match <&mut [f32; GROUP]>::try_from(&mut *dst) {
                            Ok(whole) => *whole = *row,
                            Err(_) => dst.copy_from_slice(&row[..rows.len()]),
                        }
                    }
                }
            }
        }
    }
}

/// Quantizes `x` to `act_type` and splits the blocks into `scratch.acts`.
pub(crate) fn quantize_packed_acts(
    act_type: DType,
    n_cols: usize,
    x: &[f32], // [n_tokens, n_cols]
    n_tokens: usize,
    scratch: &mut MatmulScratch,
    parallel: bool,
) {
    let act_row = act_type
        .row_bytes(n_cols)
        .expect("packed rows are whole blocks of the activation type");
    scratch.quantized.resize(act_row * n_tokens, 0);
    quantize_activations(act_type, n_cols, x, &mut scratch.quantized, parallel);
    let a = &mut scratch.acts[act_slot(act_type)];
    a.n_cols = n_cols;
    a.n_tokens = n_tokens;
    a.qs.resize(n_tokens * n_cols, 0);
    let nb32 = n_cols / 32;
    let (n_d, n_sums, n_s) = match act_type {
        DType::Q8_0 => (nb32, nb32, 0),
        DType::Q8_1 => (nb32, 0, nb32),
        _ => (n_cols / QK_K, n_cols / 16, 0),
    };
    a.d.resize(n_tokens * n_d, 0.0);
    a.sums.resize(n_tokens * n_sums, 0);
    let n_sums4 = if act_type == DType::Q8_0 {
        n_cols / 4
    } else {
        0
    };
    a.sums4.resize(n_tokens * n_sums4, 0);
    let mut sums4 = a.sums4.chunks_exact_mut(n_sums4.max(1));
    a.s.resize(n_tokens * n_s, 0.0);
    let rows = scratch.quantized.chunks_exact(act_row);
    let qs = a.qs.chunks_exact_mut(n_cols);
    let d = a.d.chunks_exact_mut(n_d.max(1));
    let mut sums = a.sums.chunks_exact_mut(n_sums.max(1));
    let mut s = a.s.chunks_exact_mut(n_s.max(1));
    for ((src, qs), d) in rows.zip(qs).zip(d) {
        let f16 = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        match act_type {
            DType::Q8_0 | DType::Q8_1 => {
                let (head, bytes) = if act_type == DType::Q8_0 {
                    (2, 34)
                } else {
                    (4, 36)
                };
                let mut sums4_row = if act_type == DType::Q8_0 {
                    sums4.next()
                } else {
                    None
                };
                let mut sums = if act_type == DType::Q8_0 {
                    sums.next()
                } else {
                    None
                };
                let mut s = if act_type == DType::Q8_1 {
                    s.next()
                } else {
                    None
                };
                for (b, blk) in src.chunks_exact(bytes).enumerate() {
                    d[b] = f16(&blk[0..2]);
                    let q: &[i8] = bytemuck::cast_slice(&blk[head..head + 32]);
                    qs[32 * b..32 * b + 32].copy_from_slice(q);
                    if let Some(sums) = sums.as_deref_mut() {
                        sums[b] = q.iter().map(|&v| i32::from(v)).sum();
                    }
                    if let Some(sums4) = sums4_row.as_deref_mut() {
                        for (j, quad) in q.chunks_exact(4).enumerate() {
                            sums4[8 * b + j] = quad.iter().map(|&v| i32::from(v)).sum();
                        }
                    }
                    if let Some(s) = s.as_deref_mut() {
                        s[b] = f16(&blk[2..4]);
                    }
                }
            }
            _ => {
                let sums = sums.next().expect("one sums row per token");
                const BYTES: usize = 4 + QK_K + 32;
                for (b, blk) in src.chunks_exact(BYTES).enumerate() {
                    d[b] = f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]);
                    let q: &[i8] = bytemuck::cast_slice(&blk[4..4 + QK_K]);
                    qs[QK_K * b..QK_K * (b + 1)].copy_from_slice(q);
                    for (j, pair) in blk[4 + QK_K..BYTES].chunks_exact(2).enumerate() {
                        sums[16 * b + j] = i32::from(i16::from_le_bytes([pair[0], pair[1]]));
                    }
                }
            }
        }
    }
}
