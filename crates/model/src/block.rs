//! The one transformer block every family runs, steered by its [`Family`] description:
//!
//! ```text
//! x ─► attn_norm ─► q,k,v (+bias) ─► [QK-norm] ─► rope ─► [q·scale] ─► cache ─► attention
//!   ─► attn_output (+bias) ─► [post_attention_norm] ─► + x ─► ffn_norm ─► act(gate)·up
//!   ─► ffn_down ─► [post_ffw_norm] ─► + ─► next layer
//! ```
//!
//! As in llama.cpp's `src/models/{llama,qwen2,gemma3}.cpp`.

use std::ops::Range;

use half::f16;
use kernels::ops::{self, AttentionParams, Rope};
use kernels::MatmulScratch;

use crate::family::{Activation, AttentionScale, Family};
use crate::observe::Observer;
use crate::scratch::Scratch;
use crate::weights::{LayerWeights, Matrix};
use crate::{KvCache, Model};

/// Which rows of a batch a layer computes.
pub(crate) struct LayerRows {
    /// Tokens in the batch; all get keys and values.
    pub n_tokens: usize,
    /// Tokens that go through attention and the feed-forward network.
    pub active: Range<usize>,
    /// Position of the batch's first token.
    pub pos0: usize,
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
        cache: &mut KvCache,
        rows: &LayerRows,
        obs: &mut dyn Observer,
    ) {
        self.attention(s, cache, rows, obs);
        self.feed_forward(s, rows, obs);
    }

    /// Queries, keys and values of the batch: keys and values for every row, queries for
    /// the active rows; biases, QK-norm, rope and the query scale applied.
    fn qkv(&self, s: &mut Scratch, rows: &LayerRows, obs: &mut dyn Observer) {
        let config = &self.model.config;
        let lw = self.layer;
        let (n, e) = (rows.n_tokens, config.n_embd);
        let (q_dim, kv_dim, head_dim) = (config.q_dim(), config.kv_dim(), config.head_dim);
        let active = rows.active.clone();
        let na = active.len();
        let eps = config.rms_norm_eps;
        let il = Some(self.layer_idx);

        norm_rows(&s.x[..n * e], &lw.attn_norm, eps, &mut s.norm[..n * e]);
        obs.observe("attn_norm", il, n, &s.norm[..n * e]);
        let q = &mut s.q[..na * q_dim];
        let k = &mut s.k[..n * kv_dim];
        let v = &mut s.v[..n * kv_dim];
        let active_norm = &s.norm[active.start * e..active.end * e];
        let fused = na == n
            && linear_many(
                &mut [
                    (&lw.attn_q, lw.attn_q_bias.as_deref(), &mut *q),
                    (&lw.attn_k, lw.attn_k_bias.as_deref(), &mut *k),
                    (&lw.attn_v, lw.attn_v_bias.as_deref(), &mut *v),
                ],
                active_norm,
                n,
                &mut s.matmul,
            );
        if !fused {
            linear(
                self.model,
                &lw.attn_q,
                lw.attn_q_bias.as_deref(),
                active_norm,
                na,
                q,
                &mut s.matmul,
            );
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
        }
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
        for i in 0..n {
            rope.fill_cache(rows.pos0 + i, freq_factors, &mut s.rope);
            for head in k[i * kv_dim..(i + 1) * kv_dim].chunks_exact_mut(head_dim) {
                rope.apply(&s.rope, head);
            }
            if active.contains(&i) {
                let row = i - active.start;
                for head in q[row * q_dim..(row + 1) * q_dim].chunks_exact_mut(head_dim) {
                    rope.apply(&s.rope, head);
                }
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
        cache: &mut KvCache,
        rows: &LayerRows,
        obs: &mut dyn Observer,
    ) {
        let config = &self.model.config;
        let lw = self.layer;
        let (n, e) = (rows.n_tokens, config.n_embd);
        let (q_dim, kv_dim) = (config.q_dim(), config.kv_dim());
        let active = rows.active.clone();
        let na = active.len();
        let il = Some(self.layer_idx);

        self.qkv(s, rows, obs);
        let (cache_k, cache_v) = cache.layer_mut(self.layer_idx);
        let start = rows.pos0 * kv_dim;
        for (dst, &src) in cache_k[start..start + n * kv_dim]
            .iter_mut()
            .zip(&s.k[..n * kv_dim])
        {
            *dst = f16::from_f32(src);
        }
        for (dst, &src) in cache_v[start..start + n * kv_dim]
            .iter_mut()
            .zip(&s.v[..n * kv_dim])
        {
            *dst = f16::from_f32(src);
        }
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
        let end = start + n * kv_dim;
        let attn = &mut s.attn[..na * q_dim];
        ops::attention(
            &params,
            &s.q[..na * q_dim],
            &cache_k[..end],
            &cache_v[..end],
            rows.pos0 + active.start,
            attn,
        );
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
        let x = &mut s.x[active.start * e..active.end * e];
        add_in_place(x, proj);
        obs.observe("ffn_inp", il, na, x);
    }

    /// The gated feed-forward network of the active rows, added into the residual stream.
    fn feed_forward(&self, s: &mut Scratch, rows: &LayerRows, obs: &mut dyn Observer) {
        let config = &self.model.config;
        let lw = self.layer;
        let e = config.n_embd;
        let active = rows.active.clone();
        let na = active.len();
        if na == 0 {
            return;
        }
        let il = Some(self.layer_idx);
        let norm = &mut s.norm[..na * e];
        norm_rows(
            &s.x[active.start * e..active.end * e],
            &lw.ffn_norm,
            config.rms_norm_eps,
            norm,
        );
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
        let x = &mut s.x[active.start * e..active.end * e];
        add_in_place(x, proj);
        obs.observe("l_out", il, na, x);
    }
}
