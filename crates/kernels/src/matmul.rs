//! Matrix products of quantized weights with f32 activations.

use rayon::prelude::*;

use crate::{kernels, DType};

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
    assert_eq!(x.len(), n_tokens * w.n_cols);
    assert_eq!(out.len(), n_tokens * w.n_rows);
    let act_type = w.dtype.vec_dot_type();
    let act_row = act_type
        .row_bytes(w.n_cols)
        .expect("weight rows are whole blocks of the activation type too");
    scratch.quantized.resize(act_row * n_tokens, 0);
    for (src, dst) in x
        .chunks_exact(w.n_cols)
        .zip(scratch.quantized.chunks_exact_mut(act_row))
    {
        k.quantize_row(act_type, src, dst);
    }
    let w_row = w.row_bytes();
    let quantized = &scratch.quantized;
    out.par_chunks_mut(w.n_rows)
        .zip(quantized.par_chunks(act_row))
        .for_each(|(out_t, x_t)| {
            for (r, o) in out_t.iter_mut().enumerate() {
                *o = k.vec_dot(w.dtype, w.n_cols, &w.data[r * w_row..(r + 1) * w_row], x_t);
            }
        });
}
