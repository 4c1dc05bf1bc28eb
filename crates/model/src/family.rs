//! Model families as descriptions: what one transformer block does differently for each
//! architecture, as values the block reads. Adding a family is adding a description here;
//! the block has no per-architecture code.
//!
//! Facts come from llama.cpp (`src/models/{llama,qwen2,gemma3}.cpp`, `llama_model_rope_type`,
//! the hparams loader in `src/llama-model.cpp`, tensor names in `src/llama-arch.cpp`).

use kernels::ops::RopeStyle;

/// Where a tensor stands in a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The family always has it; a file without it is an error.
    Required,
    /// Used when the file has it.
    Optional,
    /// Not part of the family; a file with it is an error.
    Absent,
}

/// The normalization layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `x / sqrt(mean(x²) + eps) * w` (`LLM_NORM_RMS`).
    Rms,
}

/// The feed-forward activation, always gated: `down(act(gate(x)) * up(x))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU on the gate (`LLM_FFN_SILU`, `LLM_FFN_PAR`).
    SiluGated,
    /// Tanh-approximated GELU on the gate (`LLM_FFN_GELU`, `LLM_FFN_PAR`).
    GeluGated,
}

/// A factor on the token embeddings before the first layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingScale {
    /// Embeddings as stored.
    None,
    /// Times `sqrt(n_embd)` (Gemma).
    SqrtEmbd,
}

/// How the `1 / sqrt(head_dim)` attention scale is applied. The product is the same; the
/// rounding differs, so each family does it where llama.cpp does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionScale {
    /// On the query-key dot products (`kq_scale` of `build_attn`).
    OnScores,
    /// On the queries after rope, with the dot products unscaled (Gemma 3:
    /// `ggml_scale(Qcur, f_attention_scale)`).
    OnQueries,
}

/// The dimension `d` of the `1 / sqrt(d)` attention scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDim {
    /// The head size.
    HeadDim,
    /// `n_embd / n_heads` for a model of exactly this many layers, the head size
    /// otherwise (Gemma 3 27B, 62 layers, was trained with `query_pre_attn_scalar =
    /// n_embd / n_heads`; llama.cpp recognises it by its layer count).
    EmbdPerHeadWithLayers(usize),
}

/// Which layers attend through a sliding window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlidingWindow {
    /// Every layer sees the whole context.
    None,
    /// Of every `period` layers the last is global and the others local
    /// (llama.cpp's `set_swa_pattern(period)`: layer `i` is local when
    /// `i % period < period - 1`). Local layers see `{arch}.attention.sliding_window`
    /// positions and use rope base `local_rope_base` (`rope_freq_base_train_swa`) unless
    /// the file sets `{arch}.rope.freq_base_swa`.
    Pattern {
        /// Layers per repetition of the pattern.
        period: usize,
        /// Rope base of the local layers.
        local_rope_base: f32,
    },
}

/// What to do when the file has no `output.weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The output projection is required.
    Own,
    /// Use `token_embd.weight` (tied embeddings) when `output.weight` is absent.
    TiedWhenAbsent,
}

/// GGUF tensor names, without the `blk.N.` prefix and the `.weight`/`.bias` suffix
/// (llama.cpp's `LLM_TENSOR_NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorNames {
    /// Token embeddings, `[n_embd, n_vocab]`.
    pub token_embd: &'static str,
    /// Final norm.
    pub output_norm: &'static str,
    /// Output projection, `[n_embd, n_vocab]`.
    pub output: &'static str,
    /// Per-pair rope frequency factors (Llama 3 rope scaling), `[n_rot / 2]`.
    pub rope_freqs: &'static str,
    /// Norm before attention.
    pub attn_norm: &'static str,
    /// Query projection.
    pub attn_q: &'static str,
    /// Key projection.
    pub attn_k: &'static str,
    /// Value projection.
    pub attn_v: &'static str,
    /// Attention output projection.
    pub attn_output: &'static str,
    /// Per-head query norm.
    pub attn_q_norm: &'static str,
    /// Per-head key norm.
    pub attn_k_norm: &'static str,
    /// Norm of the attention output before the residual add.
    pub post_attention_norm: &'static str,
    /// Norm before the feed-forward network.
    pub ffn_norm: &'static str,
    /// Gate projection.
    pub ffn_gate: &'static str,
    /// Up projection.
    pub ffn_up: &'static str,
    /// Down projection.
    pub ffn_down: &'static str,
    /// Norm of the feed-forward output before the residual add.
    pub post_ffw_norm: &'static str,
}

impl TensorNames {
    /// `blk.{layer_idx}.{stem}.{suffix}`.
    pub fn layer(layer_idx: usize, stem: &str, suffix: &str) -> String {
        format!("blk.{layer_idx}.{stem}.{suffix}")
    }

    /// `{stem}.{suffix}` for tensors outside the layers.
    pub fn global(stem: &str, suffix: &str) -> String {
        format!("{stem}.{suffix}")
    }
}

/// The names llama.cpp gives every family slm runs.
pub const GGUF_NAMES: TensorNames = TensorNames {
    token_embd: "token_embd",
    output_norm: "output_norm",
    output: "output",
    rope_freqs: "rope_freqs",
    attn_norm: "attn_norm",
    attn_q: "attn_q",
    attn_k: "attn_k",
    attn_v: "attn_v",
    attn_output: "attn_output",
    attn_q_norm: "attn_q_norm",
    attn_k_norm: "attn_k_norm",
    post_attention_norm: "post_attention_norm",
    ffn_norm: "ffn_norm",
    ffn_gate: "ffn_gate",
    ffn_up: "ffn_up",
    ffn_down: "ffn_down",
    post_ffw_norm: "post_ffw_norm",
};

/// A model family: everything the shared transformer block needs to know about an
/// architecture beyond the numbers in the file's metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// `general.architecture`, also the prefix of the family's metadata keys.
    pub architecture: &'static str,
    /// Normalization of every norm layer.
    pub norm: NormKind,
    /// Rope pair layout.
    pub rope_style: RopeStyle,
    /// Biases on the query, key and value projections.
    pub qkv_bias: Need,
    /// Bias on the attention output projection.
    pub attn_output_bias: Need,
    /// Per-head RMS norm of queries and keys before rope.
    pub qk_norm: bool,
    /// Norms on the attention and feed-forward outputs before their residual adds.
    pub post_norms: bool,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Factor on the embeddings.
    pub embedding_scale: EmbeddingScale,
    /// Where the attention scale is applied.
    pub attention_scale: AttentionScale,
    /// What the attention scale is computed from.
    pub attention_scale_dim: ScaleDim,
    /// Sliding-window layers.
    pub sliding_window: SlidingWindow,
    /// Whether `rope_freqs.weight` (per-pair frequency factors) may be present.
    pub rope_freqs: Need,
    /// Whether the output projection may be tied to the embeddings.
    pub output: Output,
    /// Tensor names.
    pub names: &'static TensorNames,
}

/// Llama 1/2/3 and models that reuse its architecture (SmolLM2, Mistral-like dense models).
pub const LLAMA: Family = Family {
    architecture: "llama",
    norm: NormKind::Rms,
    rope_style: RopeStyle::Normal,
    qkv_bias: Need::Optional,
    attn_output_bias: Need::Optional,
    qk_norm: false,
    post_norms: false,
    activation: Activation::SiluGated,
    embedding_scale: EmbeddingScale::None,
    attention_scale: AttentionScale::OnScores,
    attention_scale_dim: ScaleDim::HeadDim,
    sliding_window: SlidingWindow::None,
    rope_freqs: Need::Optional,
    output: Output::TiedWhenAbsent,
    names: &GGUF_NAMES,
};

/// Qwen2 and Qwen2.5.
pub const QWEN2: Family = Family {
    architecture: "qwen2",
    norm: NormKind::Rms,
    rope_style: RopeStyle::Neox,
    qkv_bias: Need::Required,
    attn_output_bias: Need::Optional,
    qk_norm: false,
    post_norms: false,
    activation: Activation::SiluGated,
    embedding_scale: EmbeddingScale::None,
    attention_scale: AttentionScale::OnScores,
    attention_scale_dim: ScaleDim::HeadDim,
    sliding_window: SlidingWindow::None,
    rope_freqs: Need::Absent,
    output: Output::TiedWhenAbsent,
    names: &GGUF_NAMES,
};

/// Gemma 3 (text).
pub const GEMMA3: Family = Family {
    architecture: "gemma3",
    norm: NormKind::Rms,
    rope_style: RopeStyle::Neox,
    qkv_bias: Need::Absent,
    attn_output_bias: Need::Absent,
    qk_norm: true,
    post_norms: true,
    activation: Activation::GeluGated,
    embedding_scale: EmbeddingScale::SqrtEmbd,
    attention_scale: AttentionScale::OnQueries,
    attention_scale_dim: ScaleDim::EmbdPerHeadWithLayers(62),
    sliding_window: SlidingWindow::Pattern {
        period: 6,
        local_rope_base: 10_000.0,
    },
    rope_freqs: Need::Absent,
    output: Output::TiedWhenAbsent,
    names: &GGUF_NAMES,
};

/// Every family slm runs.
pub const FAMILIES: [Family; 3] = [LLAMA, QWEN2, GEMMA3];

impl Family {
    /// The description of `architecture`, or `None` for one slm does not run.
    pub fn for_architecture(architecture: &str) -> Option<Family> {
        FAMILIES
            .into_iter()
            .find(|f| f.architecture == architecture)
    }
}
