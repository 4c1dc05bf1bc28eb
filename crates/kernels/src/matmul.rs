//! Matrix products of quantized weights with f32 activations.
//!
//! The activations are quantized once per call to the weights' `vec_dot_type` (split
//! over the pool's threads when there are many tokens). The output rows are then split
//! evenly over the threads, so every thread reads its own part of the weights once:
//! it walks its rows a few at a time ([`ROW_TILE`]) and, while those rows sit in L1,
//! takes the dot products with a tile of tokens ([`TOKEN_TILE`], whose quantized
//! activations stay in L2). Decode (one token) is thus a plain split of the rows; a
//! batch of tokens reads each weight row once per token tile instead of once per token.

use crate::{kernels, pool, DType};

/// Weight rows walked together; 4 rows of a 4864-column Q8_0 matrix are 20 KiB, which
/// fits L1 next to one token's activations.
const ROW_TILE: usize = 4;
/// Tokens whose quantized activations are reused for each tile of rows; 64 rows of
/// 4864 Q8_K activations are 350 KiB, inside L2.
const TOKEN_TILE: usize = 64;
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
}

/// A pointer that threads share to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);

// SAFETY: every user writes only elements no other thread touches (its own rows or
// tokens), and `pool::run` returns only after all threads are done.
unsafe impl<T> Sync for SharedMut<T> {}
// SAFETY: as for `Sync`.
unsafe impl<T> Send for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn get(self) -> *mut T {
        self.0
    }
}

/// The part `[start, end)` of `0..len` that thread `idx` of `n` handles, in multiples
/// of `align` except for the end.
fn split_range(len: usize, idx: usize, n: usize, align: usize) -> (usize, usize) {
    let per = len.div_ceil(n).div_ceil(align) * align;
    let start = (idx * per).min(len);
    (start, (start + per).min(len))
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

    let vec_dot = k.get(w.dtype).vec_dot;
    let quantized = &scratch.quantized[..];
    let (n_rows, n_cols) = (w.n_rows, w.n_cols);
    let out_ptr = SharedMut(out.as_mut_ptr());
    let rows_job = |idx: usize, n: usize| {
        let (r_start, r_end) = split_range(n_rows, idx, n, ROW_TILE);
        for t_start in (0..n_tokens).step_by(TOKEN_TILE) {
            let t_end = (t_start + TOKEN_TILE).min(n_tokens);
            for tile_start in (r_start..r_end).step_by(ROW_TILE) {
                for r in tile_start..(tile_start + ROW_TILE).min(r_end) {
                    let w_r = &w.data[r * w_row..(r + 1) * w_row];
                    for t in t_start..t_end {
                        let v = vec_dot(n_cols, w_r, &quantized[t * act_row..(t + 1) * act_row]);
                        // SAFETY: `t < n_tokens` and `r < n_rows`, so the index is inside
                        // `out` ([n_tokens, n_rows], checked above); row `r` belongs to
                        // this thread alone.
                        unsafe { *out_ptr.get().add(t * n_rows + r) = v };
                    }
                }
            }
        }
    };
    if parallel {
        pool::run(rows_job);
    } else {
        rows_job(0, 1);
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
    pool::run(|idx, n| {
        let (t_start, t_end) = split_range(n_tokens, idx, n, 1);
        for t in t_start..t_end {
            // SAFETY: rows `t_start..t_end` of `dst` ([n_tokens, act_row]) belong to this
            // thread alone and lie inside it; `dst` outlives `pool::run`.
            let row =
                unsafe { std::slice::from_raw_parts_mut(dst_ptr.get().add(t * act_row), act_row) };
            quantize(&x[t * n_cols..(t + 1) * n_cols], row);
        }
    });
}
