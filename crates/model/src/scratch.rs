//! Activation buffers of one batch, grown to the largest batch seen (at most
//! [`crate::MAX_BATCH`] rows) and then reused, so decoding allocates nothing per token.

use kernels::MatmulScratch;

use crate::config::ModelConfig;

/// Buffers of `rows` rows each; a batch uses the first `n_tokens` rows.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Rows every buffer has room for.
    pub rows: usize,
    /// The residual stream.
    pub x: Vec<f32>, // [rows, n_embd]
    /// Norm outputs (attn_norm, ffn_norm, result_norm).
    pub norm: Vec<f32>, // [rows, n_embd]
    /// Queries.
    pub q: Vec<f32>, // [rows, q_dim]
    /// Keys of the batch.
    pub k: Vec<f32>, // [rows, kv_dim]
    /// Values of the batch.
    pub v: Vec<f32>, // [rows, kv_dim]
    /// Attention output before its projection (kqv_out).
    pub attn: Vec<f32>, // [rows, q_dim]
    /// Projection outputs (attn_out, ffn_out).
    pub proj: Vec<f32>, // [rows, n_embd]
    /// Gate projection, then the activation.
    pub gate: Vec<f32>, // [rows, n_ff]
    /// Up projection.
    pub up: Vec<f32>, // [rows, n_ff]
    /// Cos and sin of one position.
    pub rope: Vec<f32>, // [n_rot]
    /// Quantized activations of the matmuls.
    pub matmul: MatmulScratch,
}

impl Scratch {
    /// Makes room for `rows` rows of a `config` model.
    pub fn ensure(&mut self, config: &ModelConfig, rows: usize) {
        if rows <= self.rows && self.rope.len() == config.n_rot {
            return;
        }
        let rows = rows.max(self.rows);
        let grow = |buffer: &mut Vec<f32>, width: usize| buffer.resize(rows * width, 0.0);
        grow(&mut self.x, config.n_embd);
        grow(&mut self.norm, config.n_embd);
        grow(&mut self.q, config.q_dim());
        grow(&mut self.k, config.kv_dim());
        grow(&mut self.v, config.kv_dim());
        grow(&mut self.attn, config.q_dim());
        grow(&mut self.proj, config.n_embd);
        grow(&mut self.gate, config.n_ff);
        grow(&mut self.up, config.n_ff);
        self.rope.resize(config.n_rot, 0.0);
        self.rows = rows;
    }
}
