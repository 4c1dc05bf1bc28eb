//! The one transformer block every family runs, steered by its [`Family`] description:
//!
//! ```text
//! x ─► attn_norm ─► q,k,v (+bias) ─► [QK-norm] ─► rope ─► [q·scale] ─► cache ─► attention
//!   ─► attn_output (+bias) ─► [post_attention_norm] ─► + x ─► ffn_norm ─► act(gate)·up
//!   ─► ffn_down ─► [post_ffw_norm] ─► + ─► next layer
//! ```
//!
//! As in llama.cpp's `src/models/{llama,qwen2,gemma3}.cpp`.

use half::f16;
use kernels::ops::{self, AttentionParams, AttentionSeq, KvBlocks, Rope};
use kernels::MatmulScratch;

use crate::batch::Plan;
use crate::family::{Activation, AttentionScale, Family};
use crate::kv_pool::KvPool;
use crate::observe::Observer;
use crate::scratch::Scratch;
use crate::weights::{LayerWeights, Matrix};
use crate::Model;

/// Which rows of a batch a layer computes.
pub(crate) struct LayerRows<'p> {
    /// Every row of the batch; all get keys and values.
    pub plan: &'p Plan<'p>,
    /// The last layer: only the rows whose output is wanted go on past the keys and
    /// values, moved to the front of the buffers (`plan.out_rows`).
    pub last: bool,
}

impl LayerRows<'_> {
    /// Rows that go through attention and the feed-forward network: the first
    /// `n_active()` rows of the buffers once the keys and values are computed.
    fn n_active(&self) -> usize {
        if self.last {
            self.plan.out_rows.len()
        } else {
            self.plan.n_rows
        }
    }

    /// Whether the active rows are a subset moved to the front.
    fn compacted(&self) -> bool {
        self.n_active() < self.plan.n_rows
    }
}

/// One layer of a model.
pub(crate) struct Block<'m> {
    pub model: &'m Model,
    pub layer: &'m LayerWeights,
    pub layer_idx: usize,
}

/// `out = x W^T (+ bias)` for `n_rows` rows.
fn linear(
    model: &Model,
    w: &Matrix,
    bias: Option<&[f32]>, // [w.n_rows]
    x: &[f32],            // [n_rows, w.n_cols]
    n_rows: usize,
    out: &mut [f32], // [n_rows, w.n_rows]
    scratch: &mut MatmulScratch,
) {
    match &w.packed {
        Some(packed) => kernels::matmul_packed(packed, x, n_rows, out, scratch),
        None => kernels::matmul(&w.view(&model.file), x, n_rows, out, scratch),
    }
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(w.n_rows) {
            row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
        }
    }
}

/// One matrix of [`linear_many`]: weights, optional bias, output.
type LinearJob<'a> = (&'a Matrix, Option<&'a [f32]>, &'a mut [f32]);

/// Several packed matrices of one input at once (`out = x W^T (+ bias)` each, `out`
/// `[n_rows, w.n_rows]`), sharing the activations' quantization and one pool dispatch.
/// Returns false, computing nothing, unless every matrix is packed.
fn linear_many(
    jobs: &mut [LinearJob<'_>],
    x: &[f32], // [n_rows, n_cols]
    n_rows: usize,
    scratch: &mut MatmulScratch,
) -> bool {
    let mut packed = Vec::with_capacity(jobs.len());
    for (w, _, out) in jobs.iter_mut() {
        let Some(p) = w.packed.as_deref() else {
            return false;
        };
        packed.push((p, &mut **out));
    }
    kernels::matmul_packed_many(&mut packed, x, n_rows, scratch);
    for (w, bias, out) in jobs.iter_mut() {
        if let Some(bias) = bias {
            for row in out.chunks_exact_mut(w.n_rows) {
                row.iter_mut().zip(*bias).for_each(|(o, b)| *o += b);
            }
        }
    }
    true
}

/// RMS norm of each `weight.len()`-wide row of `x` into `out`.
fn norm_rows(
    x: &[f32],      // [n_rows, width]
    weight: &[f32], // [width]
    eps: f32,
    out: &mut [f32], // [n_rows, width]
) {
    let width = weight.len();
    for (src, dst) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        ops::rms_norm(src, weight, eps, dst);
    }
}

/// RMS norm of each `weight.len()`-wide row (or head) of `x` in place.
fn norm_rows_in_place(
    x: &mut [f32],  // [n_rows, width]
    weight: &[f32], // [width]
    eps: f32,
) {
    for row in x.chunks_exact_mut(weight.len()) {
        ops::rms_norm_in_place(row, weight, eps);
    }
}

/// `x += y`, element by element.
fn add_in_place(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

impl Block<'_> {
    fn family(&self) -> &Family {
        &self.model.family
    }

    /// Runs the layer on the batch in `scratch.x`, caching its keys and values.
    pub fn run(
        &self,
        s: &mut Scratch,
        pool: &mut KvPool,
        rows: &LayerRows,
        obs: &mut dyn Observer,
    ) {
        self.attention(s, pool, rows, obs);
        self.feed_forward(s, rows, obs);
    }

    /// Queries, keys and values of the batch: keys and values for every row, queries for
    /// the active rows (moved to the front in the last layer, the residual stream with
    /// them); biases, QK-norm, rope and the query scale applied.
    fn qkv(&self, s: &mut Scratch, rows: &LayerRows, obs: &mut dyn Observer) {
        let config = &self.model.config;
        let lw = self.layer;
        let plan = rows.plan;
        let (n, e) = (plan.n_rows, config.n_embd);
        let (q_dim, kv_dim, head_dim) = (config.q_dim(), config.kv_dim(), config.head_dim);
        let na = rows.n_active();
        let eps = config.rms_norm_eps;
        let il = Some(self.layer_idx);

        norm_rows(&s.x[..n * e], &lw.attn_norm, eps, &mut s.norm[..n * e]);
        obs.observe("attn_norm", il, n, &s.norm[..n * e]);
        let k = &mut s.k[..n * kv_dim];
        let v = &mut s.v[..n * kv_dim];
        if !rows.compacted() {
            // Every row is wanted: queries, keys and values in one pass over the input.
            let q = &mut s.q[..n * q_dim];
            let fused = linear_many(
                &mut [
                    (&lw.attn_q, lw.attn_q_bias.as_deref(), &mut *q),
                    (&lw.attn_k, lw.attn_k_bias.as_deref(), &mut *k),
                    (&lw.attn_v, lw.attn_v_bias.as_deref(), &mut *v),
                ],
                &s.norm[..n * e],
                n,
                &mut s.matmul,
            );
            if !fused {
                for (w, bias, out) in [
                    (&lw.attn_q, lw.attn_q_bias.as_deref(), &mut *q),
                    (&lw.attn_k, lw.attn_k_bias.as_deref(), &mut *k),
                    (&lw.attn_v, lw.attn_v_bias.as_deref(), &mut *v),
                ] {
                    linear(self.model, w, bias, &s.norm[..n * e], n, out, &mut s.matmul);
                }
            }
        } else {
            linear(
                self.model,
                &lw.attn_k,
                lw.attn_k_bias.as_deref(),
                &s.norm[..n * e],
                n,
                k,
                &mut s.matmul,
            );
            linear(
                self.model,
                &lw.attn_v,
                lw.attn_v_bias.as_deref(),
                &s.norm[..n * e],
                n,
                v,
                &mut s.matmul,
            );
            // The wanted rows of the norm (gathered) and of the residual stream (moved
            // to the front: a row only moves down, so the copies do not overlap).
            for (j, &row) in plan.out_rows.iter().enumerate() {
                s.proj[j * e..(j + 1) * e].copy_from_slice(&s.norm[row * e..(row + 1) * e]);
                s.x.copy_within(row * e..(row + 1) * e, j * e);
            }
            linear(
                self.model,
                &lw.attn_q,
                lw.attn_q_bias.as_deref(),
                &s.proj[..na * e],
                na,
                &mut s.q[..na * q_dim],
                &mut s.matmul,
            );
        }
        let q = &mut s.q[..na * q_dim];
        if let (Some(qn), Some(kn)) = (&lw.attn_q_norm, &lw.attn_k_norm) {
            norm_rows_in_place(q, qn, eps);
            norm_rows_in_place(k, kn, eps);
        }

        let layer_config = &config.layers[self.layer_idx];
        let mut rope = Rope::new(
            self.family().rope_style,
            config.n_rot,
            layer_config.rope_freq_base,
        );
        rope.freq_scale = layer_config.rope_freq_scale;
        let freq_factors = self.model.weights.rope_freqs.as_deref();
        // The active rows, ascending, as batch rows: all of them, or the wanted ones.
        let mut next_active = 0;
        for (i, &pos) in plan.positions.iter().enumerate() {
            rope.fill_cache(pos, freq_factors, &mut s.rope);
            for head in k[i * kv_dim..(i + 1) * kv_dim].chunks_exact_mut(head_dim) {
                rope.apply(&s.rope, head);
            }
            let active_row = if rows.compacted() {
                plan.out_rows.get(next_active).copied()
            } else {
                Some(i)
            };
            if active_row == Some(i) {
                let row = next_active;
                for head in q[row * q_dim..(row + 1) * q_dim].chunks_exact_mut(head_dim) {
                    rope.apply(&s.rope, head);
                }
                next_active += 1;
            }
        }
        if self.family().attention_scale == AttentionScale::OnQueries {
            let scale = config.attention_scale;
            q.iter_mut().for_each(|x| *x *= scale);
        }
        obs.observe("Qcur", il, na, q);
        obs.observe("Kcur", il, n, k);
        obs.observe("Vcur", il, n, v);
    }

    /// Self-attention of the active rows, added into the residual stream.
    fn attention(
        &self,
        s: &mut Scratch,
        pool: &mut KvPool,
        rows: &LayerRows,
        obs: &mut dyn Observer,
    ) {
        let config = &self.model.config;
        let lw = self.layer;
        let plan = rows.plan;
        let e = config.n_embd;
        let q_dim = config.q_dim();
        let na = rows.n_active();
        let il = Some(self.layer_idx);

        self.qkv(s, rows, obs);
        self.store_kv(s, pool, plan);
        if na == 0 {
            return;
        }

        let params = AttentionParams {
            n_heads: config.n_heads,
            n_kv_heads: config.n_kv_heads,
            head_dim: config.head_dim,
            scale: match self.family().attention_scale {
                AttentionScale::OnScores => config.attention_scale,
                AttentionScale::OnQueries => 1.0,
            },
            window: config.layers[self.layer_idx].sliding_window,
        };
        let block_tokens = pool.block_tokens();
        let (cache_k, cache_v) = pool.layer_mut(self.layer_idx);
        let (cache_k, cache_v) = (&*cache_k, &*cache_v);
        let mut query_row = 0;
        let seqs: Vec<AttentionSeq> = plan
            .seqs
            .iter()
            .filter_map(|seq| {
                // Query rows: all the sequence's, or (last layer) its wanted tail.
                let n_queries = if rows.last { seq.n_out } else { seq.rows.len() };
                let first = query_row;
                query_row += n_queries;
                (n_queries > 0).then(|| AttentionSeq {
                    kv: KvBlocks {
                        k: cache_k,
                        v: cache_v,
                        blocks: seq.table.blocks(),
                        block_tokens,
                    },
                    rows: first..first + n_queries,
                    first_pos: seq.first_pos + seq.rows.len() - n_queries,
                })
            })
            .collect();
        let attn = &mut s.attn[..na * q_dim];
        ops::attention_batch(&params, &s.q[..na * q_dim], &seqs, attn);
        obs.observe("kqv_out", il, na, attn);

        let proj = &mut s.proj[..na * e];
        linear(
            self.model,
            &lw.attn_output,
            lw.attn_output_bias.as_deref(),
            attn,
            na,
            proj,
            &mut s.matmul,
        );
        if let Some(w) = &lw.post_attention_norm {
            norm_rows_in_place(proj, w, config.rms_norm_eps);
        }
        obs.observe("attn_out", il, na, proj);
        let x = &mut s.x[..na * e];
        add_in_place(x, proj);
        obs.observe("ffn_inp", il, na, x);
    }

    /// Writes every row's key and value, as f16, at its sequence's position in the pool.
    fn store_kv(&self, s: &Scratch, pool: &mut KvPool, plan: &Plan) {
        let kv_dim = self.model.config.kv_dim();
        let starts: Vec<usize> = plan
            .seqs
            .iter()
            .flat_map(|seq| {
                (seq.first_pos..seq.first_pos + seq.rows.len())
                    .map(|pos| pool.row_start(seq.table, pos))
            })
            .collect();
        let (cache_k, cache_v) = pool.layer_mut(self.layer_idx);
        for (i, &at) in starts.iter().enumerate() {
            let src = i * kv_dim..(i + 1) * kv_dim;
            for (dst, &x) in cache_k[at..at + kv_dim].iter_mut().zip(&s.k[src.clone()]) {
                *dst = f16::from_f32(x);
            }
            for (dst, &x) in cache_v[at..at + kv_dim].iter_mut().zip(&s.v[src]) {
                *dst = f16::from_f32(x);
            }
        }
    }

    /// The gated feed-forward network of the active rows, added into the residual stream.
    fn feed_forward(&self, s: &mut Scratch, rows: &LayerRows, obs: &mut dyn Observer) {
        let config = &self.model.config;
        let lw = self.layer;
        let e = config.n_embd;
        let na = rows.n_active();
        if na == 0 {
            return;
        }
        let il = Some(self.layer_idx);
        let norm = &mut s.norm[..na * e];
        norm_rows(&s.x[..na * e], &lw.ffn_norm, config.rms_norm_eps, norm);
        obs.observe("ffn_norm", il, na, norm);
        let gate = &mut s.gate[..na * config.n_ff];
        let up = &mut s.up[..na * config.n_ff];
        let fused = linear_many(
            &mut [
                (&lw.ffn_gate, None, &mut *gate),
                (&lw.ffn_up, None, &mut *up),
            ],
            norm,
            na,
            &mut s.matmul,
        );
        if !fused {
            linear(
                self.model,
                &lw.ffn_gate,
                None,
                norm,
                na,
                gate,
                &mut s.matmul,
            );
            linear(self.model, &lw.ffn_up, None, norm, na, up, &mut s.matmul);
        }
        match self.family().activation {
            Activation::SiluGated => ops::swiglu(gate, up),
            Activation::GeluGated => ops::geglu(gate, up),
        }
        obs.observe("ffn_act", il, na, gate);
        let proj = &mut s.proj[..na * e];
        linear(
            self.model,
            &lw.ffn_down,
            None,
            gate,
            na,
            proj,
            &mut s.matmul,
        );
        if let Some(w) = &lw.post_ffw_norm {
            norm_rows_in_place(proj, w, config.rms_norm_eps);
        }
        obs.observe("ffn_out", il, na, proj);
        let x = &mut s.x[..na * e];
        add_in_place(x, proj);
        obs.observe("l_out", il, na, x);
    }
}
