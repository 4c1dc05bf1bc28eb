//! The batch-first forward pass: embeddings, the layer stack, final norm and the output
//! projection of the rows whose logits are wanted.
//!
//! Named intermediates an [`Observer`] sees, each `[n_rows, width]`:
//! `inp_embd` (after any embedding scale), per layer `attn_norm`, `Qcur`, `Kcur`, `Vcur`
//! (after bias, QK-norm and rope), `kqv_out`, `attn_out` (projected, after any post-norm),
//! `ffn_inp`, `ffn_norm`, `ffn_act` (activation times up), `ffn_out` (after any post-norm),
//! `l_out`; then `result_norm` and `result_output` (the logits).
//! In the last layer, rows after `Vcur` are only those whose output is wanted.

use crate::batch::{Plan, SeqRows};
use crate::block::{Block, LayerRows};
use crate::kv_pool::KvPool;
use crate::observe::{NoObserver, Observer};
use crate::scratch::Scratch;
use crate::{KvCache, Model, ModelError};

/// Tokens per internal batch. Longer inputs are processed in chunks of this size, which
/// bounds the activation memory (llama.cpp's default `n_ubatch` is also 512).
pub const MAX_BATCH: usize = 512;

/// Which rows of logits a forward call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// The last token's (one row): decoding.
    Last,
    /// Every token's: scoring a text.
    All,
    /// The last `n` tokens' (`Tail(0)` computes none: a prefill that only fills the cache).
    Tail(usize),
}

impl Model {
    /// Runs `tokens` at positions `cache.len()..`, appends their keys and values to
    /// `cache`, and writes the logits of the rows `logits` selects into `out`
    /// (`[n_rows, n_vocab]`, replacing its contents). On error nothing is appended.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        self.forward_observed(tokens, cache, logits, out, &mut NoObserver)
    }

    /// [`Model::forward`], showing every named intermediate to `observer`.
    pub fn forward_observed(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
        out: &mut Vec<f32>,
        observer: &mut dyn Observer,
    ) -> Result<(), ModelError> {
        let n_out = self.check_batch(tokens, cache, logits)?;
        let n_vocab = self.config.n_vocab;
        let n_tokens = tokens.len();
        out.clear();
        out.resize(n_out * n_vocab, 0.0);
        let first_out = n_tokens - n_out;
        // One forward call at a time uses the scratch; a poisoned lock only means an
        // earlier call panicked, and the buffers hold nothing that must be consistent.
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let mut chunk_start = 0;
        while chunk_start < n_tokens {
            let chunk_end = (chunk_start + MAX_BATCH).min(n_tokens);
            let out_start = first_out.clamp(chunk_start, chunk_end);
            let chunk_out =
                &mut out[(out_start - first_out) * n_vocab..(chunk_end - first_out) * n_vocab];
            let plan = Plan::new(vec![SeqRows {
                table: &cache.table,
                rows: 0..chunk_end - chunk_start,
                first_pos: cache.table.len(),
                n_out: chunk_end - out_start,
                hidden: false,
            }]);
            self.run_plan(
                &mut scratch,
                &mut cache.pool,
                &tokens[chunk_start..chunk_end],
                &plan,
                chunk_out,
                &mut [],
                observer,
            );
            drop(plan);
            cache.table.advance(chunk_end - chunk_start);
            chunk_start = chunk_end;
        }
        Ok(())
    }

    /// Checks a batch against the vocabulary and the cache; returns the logit rows wanted.
    fn check_batch(
        &self,
        tokens: &[u32],
        cache: &KvCache,
        logits: Logits,
    ) -> Result<usize, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        let pool = &cache.pool;
        if pool.n_layers() != self.config.n_layers || pool.kv_dim() != self.config.kv_dim() {
            return Err(ModelError::CacheMismatch);
        }
        let n_vocab = self.config.n_vocab;
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { token, n_vocab });
        }
        if cache.len() + tokens.len() > cache.capacity() {
            return Err(ModelError::ContextFull {
                len: cache.len(),
                n_tokens: tokens.len(),
                capacity: cache.capacity(),
            });
        }
        match logits {
            Logits::Last => Ok(1),
            Logits::All => Ok(tokens.len()),
            Logits::Tail(n) if n <= tokens.len() => Ok(n),
            Logits::Tail(n) => Err(ModelError::TooManyLogitRows {
                requested: n,
                n_tokens: tokens.len(),
            }),
        }
    }

    /// One batch of at most [`MAX_BATCH`] rows as `plan` lays them out, the sequences'
    /// blocks already reserved in `pool`: writes the wanted rows' logits into `logits` and
    /// hidden states into `hidden`, in sequence order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_plan(
        &self,
        scratch: &mut Scratch,
        pool: &mut KvPool,
        tokens: &[u32], // [n_rows]
        plan: &Plan,
        logits: &mut [f32], // [n_logit_rows, n_vocab]
        hidden: &mut [f32], // [n_hidden_rows, n_embd]
        observer: &mut dyn Observer,
    ) {
        let config = &self.config;
        let n_embd = config.n_embd;
        let n = plan.n_rows;
        scratch.ensure(config, n);
        self.embed(tokens, &mut scratch.x[..n * n_embd]);
        observer.observe("inp_embd", None, n, &scratch.x[..n * n_embd]);
        for (layer_idx, layer) in self.weights.layers.iter().enumerate() {
            let rows = LayerRows {
                plan,
                last: layer_idx + 1 == config.n_layers,
            };
            let block = Block {
                model: self,
                layer,
                layer_idx,
            };
            block.run(scratch, pool, &rows, observer);
        }
        if plan.out_rows.is_empty() {
            return;
        }
        self.output(scratch, plan, logits, hidden, observer);
    }

    /// Embedding rows of `tokens`, scaled as the family says.
    fn embed(
        &self,
        tokens: &[u32],
        x: &mut [f32], // [n_tokens, n_embd]
    ) {
        let n_embd = self.config.n_embd;
        let scale = match self.family.embedding_scale {
            crate::family::EmbeddingScale::None => None,
            crate::family::EmbeddingScale::SqrtEmbd => Some((n_embd as f32).sqrt()),
        };
        for (row, &token) in x.chunks_exact_mut(n_embd).zip(tokens) {
            self.weights
                .token_embd
                .dequantize_row(&self.file, token as usize, row);
            if let Some(s) = scale {
                row.iter_mut().for_each(|v| *v *= s);
            }
        }
    }

    /// Final norm of the wanted rows (the first `plan.out_rows.len()` of the residual
    /// stream after the last layer), then the output projection of those that want logits.
    fn output(
        &self,
        scratch: &mut Scratch,
        plan: &Plan,
        logits: &mut [f32], // [n_logit_rows, n_vocab]
        hidden: &mut [f32], // [n_hidden_rows, n_embd]
        observer: &mut dyn Observer,
    ) {
        let n_embd = self.config.n_embd;
        let n_rows = plan.out_rows.len();
        let x = &scratch.x[..n_rows * n_embd];
        let norm = &mut scratch.norm[..n_rows * n_embd];
        for (src, dst) in x.chunks_exact(n_embd).zip(norm.chunks_exact_mut(n_embd)) {
            kernels::ops::rms_norm(
                src,
                &self.weights.output_norm,
                self.config.rms_norm_eps,
                dst,
            );
        }
        observer.observe("result_norm", None, n_rows, norm);
        // Hidden rows are copied out; logit rows are gathered (when the two mix) for
        // one matmul.
        let (mut row, mut n_logit_rows, mut hidden_at) = (0, 0, 0);
        for seq in &plan.seqs {
            let rows = row * n_embd..(row + seq.n_out) * n_embd;
            row += seq.n_out;
            if seq.hidden {
                hidden[hidden_at..hidden_at + rows.len()].copy_from_slice(&norm[rows.clone()]);
                hidden_at += rows.len();
            } else {
                let dst = n_logit_rows * n_embd;
                norm.copy_within(rows, dst);
                n_logit_rows += seq.n_out;
            }
        }
        if n_logit_rows == 0 {
            return;
        }
        let norm = &scratch.norm[..n_logit_rows * n_embd];
        let output = &self.weights.output;
        match &output.packed {
            Some(packed) => {
                kernels::matmul_packed(packed, norm, n_logit_rows, logits, &mut scratch.matmul)
            }
            None => kernels::matmul(
                &output.view(&self.file),
                norm,
                n_logit_rows,
                logits,
                &mut scratch.matmul,
            ),
        }
        observer.observe("result_output", None, n_logit_rows, logits);
    }
}
