//! Hyperparameters read from a file's metadata, checked for consistency, plus the
//! per-layer settings a family's description derives from them.

use gguf::{GgufFile, Value};

use crate::family::{Family, ScaleDim, SlidingWindow};
use crate::ModelError;

/// Settings of one layer that vary along the stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerConfig {
    /// Positions a query sees through the sliding window, `None` for global attention.
    pub sliding_window: Option<usize>,
    /// Rope frequency base.
    pub rope_freq_base: f32,
    /// Rope linear position scale (`1 / rope.scaling.factor`).
    pub rope_freq_scale: f32,
}

/// What a model is: its family and dimensions, as `slm show` prints them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// `general.architecture` (`llama`, `qwen2`, `gemma3`).
    pub architecture: String,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    /// Tokens in the vocabulary (rows of `token_embd.weight`).
    pub n_vocab: usize,
    /// Context length the model was trained with (`{arch}.context_length`).
    pub n_ctx_train: usize,
    /// Width of the residual stream (`{arch}.embedding_length`).
    pub n_embd: usize,
    /// Transformer blocks (`{arch}.block_count`).
    pub n_layers: usize,
    /// Query heads (`{arch}.attention.head_count`).
    pub n_heads: usize,
    /// Key/value heads (`{arch}.attention.head_count_kv`, default `n_heads`).
    pub n_kv_heads: usize,
    /// Values per head (`{arch}.attention.key_length`, default `n_embd / n_heads`).
    pub head_dim: usize,
    /// Hidden width of the feed-forward network (`{arch}.feed_forward_length`).
    pub n_ff: usize,
    /// Values of each head that rope rotates (`{arch}.rope.dimension_count`, default
    /// `head_dim`).
    pub n_rot: usize,
    /// Rope base of the global layers (`{arch}.rope.freq_base`, default 10000).
    pub rope_freq_base: f32,
    /// Rope linear position scale of the global layers, 1 without scaling.
    pub rope_freq_scale: f32,
    /// Epsilon of the RMS norms (`{arch}.attention.layer_norm_rms_epsilon`).
    pub rms_norm_eps: f32,
    /// Sliding window of the local layers (`{arch}.attention.sliding_window`), when the
    /// family has local layers.
    pub sliding_window: Option<usize>,
    /// The `1 / sqrt(d)` attention scale.
    pub attention_scale: f32,
    /// Per-layer settings, `n_layers` of them.
    pub layers: Vec<LayerConfig>,
    /// Number of weights: the sum of all tensors' element counts.
    pub n_params: u64,
    /// How many tensors of each type the file holds, most frequent first.
    pub tensor_types: Vec<(String, usize)>,
}

/// Reads typed metadata values under an architecture's prefix.
struct Meta<'a> {
    file: &'a GgufFile,
    architecture: &'a str,
}

impl Meta<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.architecture)
    }

    fn bad(key: &str, expected: &str, value: &Value) -> ModelError {
        ModelError::BadKey {
            key: key.to_string(),
            expected: expected.to_string(),
            got: format!("{value:?}"),
        }
    }

    fn missing(&self, key: String) -> ModelError {
        ModelError::MissingKey {
            key,
            architecture: self.architecture.to_string(),
        }
    }

    /// A positive count that fits in memory arithmetic.
    fn count(&self, suffix: &str) -> Result<Option<usize>, ModelError> {
        let key = self.key(suffix);
        let Some(value) = self.file.get(&key) else {
            return Ok(None);
        };
        let n = value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0 && n <= u32::MAX as usize)
            .ok_or_else(|| Meta::bad(&key, "a positive integer", value))?;
        Ok(Some(n))
    }

    fn required_count(&self, suffix: &str) -> Result<usize, ModelError> {
        self.count(suffix)?
            .ok_or_else(|| self.missing(self.key(suffix)))
    }

    /// A finite float.
    fn float(&self, suffix: &str) -> Result<Option<f32>, ModelError> {
        let key = self.key(suffix);
        let Some(value) = self.file.get(&key) else {
            return Ok(None);
        };
        let x = value
            .as_f32()
            .filter(|x| x.is_finite())
            .ok_or_else(|| Meta::bad(&key, "a finite number", value))?;
        Ok(Some(x))
    }

    fn string(&self, suffix: &str) -> Result<Option<&str>, ModelError> {
        let key = self.key(suffix);
        let Some(value) = self.file.get(&key) else {
            return Ok(None);
        };
        value
            .as_str()
            .map(Some)
            .ok_or_else(|| Meta::bad(&key, "a string", value))
    }
}

fn inconsistent(message: String) -> ModelError {
    ModelError::Inconsistent(message)
}

/// The rope linear scale the file asks for, as llama.cpp's hparams loader reads it:
/// `rope.scaling.type` defaults to linear, `rope.scaling.factor` (or the older
/// `rope.scale_linear`) gives the factor, and type `none` turns scaling off.
fn rope_freq_scale(meta: &Meta) -> Result<f32, ModelError> {
    let kind = meta.string("rope.scaling.type")?.unwrap_or("linear");
    let factor = match meta.float("rope.scaling.factor")? {
        Some(f) => Some(f),
        None => meta.float("rope.scale_linear")?,
    };
    match kind {
        "none" => Ok(1.0),
        "linear" => match factor {
            Some(f) if f > 0.0 => Ok(1.0 / f),
            Some(0.0) => Ok(1.0),
            Some(f) => Err(ModelError::BadKey {
                key: meta.key("rope.scaling.factor"),
                expected: "a positive factor".to_string(),
                got: f.to_string(),
            }),
            None => Ok(1.0),
        },
        other => Err(ModelError::UnsupportedRopeScaling {
            kind: other.to_string(),
        }),
    }
}

impl ModelConfig {
    /// Reads and checks the hyperparameters of a `family` model. `n_vocab` comes from the
    /// embedding tensor, which the caller has found.
    pub(crate) fn from_metadata(
        file: &GgufFile,
        family: &Family,
        n_vocab: usize,
    ) -> Result<ModelConfig, ModelError> {
        let meta = Meta {
            file,
            architecture: family.architecture,
        };
        let n_embd = meta.required_count("embedding_length")?;
        let n_layers = meta.required_count("block_count")?;
        // Every layer has tensors; this bounds what the layer list allocates before any
        // tensor is checked.
        if n_layers > file.tensors().len() {
            return Err(inconsistent(format!(
                "block_count {n_layers} exceeds the {} tensors in the file",
                file.tensors().len()
            )));
        }
        let n_heads = meta.required_count("attention.head_count")?;
        let n_kv_heads = meta.count("attention.head_count_kv")?.unwrap_or(n_heads);
        let head_dim = match meta.count("attention.key_length")? {
            Some(d) => d,
            None if n_embd % n_heads == 0 => n_embd / n_heads,
            None => {
                return Err(inconsistent(format!(
                    "embedding_length {n_embd} is not a multiple of head_count {n_heads}"
                )))
            }
        };
        let value_dim = meta.count("attention.value_length")?.unwrap_or(head_dim);
        let n_rot = meta.count("rope.dimension_count")?.unwrap_or(head_dim);
        if value_dim != head_dim {
            return Err(inconsistent(format!(
                "key_length {head_dim} differs from value_length {value_dim}"
            )));
        }
        if n_heads % n_kv_heads != 0 {
            return Err(inconsistent(format!(
                "head_count {n_heads} is not a multiple of head_count_kv {n_kv_heads}"
            )));
        }
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(inconsistent(format!(
                "rope.dimension_count {n_rot} must be even and at most the head size {head_dim}"
            )));
        }
        let rms_norm_eps = meta
            .float("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| meta.missing(meta.key("attention.layer_norm_rms_epsilon")))?;
        let rope_freq_base = meta.float("rope.freq_base")?.unwrap_or(10_000.0);
        let rope_freq_scale = rope_freq_scale(&meta)?;
        let sliding_window = match family.sliding_window {
            SlidingWindow::None => None,
            SlidingWindow::Pattern { .. } => Some(meta.required_count("attention.sliding_window")?),
        };
        let layers = layer_configs(
            &meta,
            family,
            n_layers,
            rope_freq_base,
            rope_freq_scale,
            sliding_window,
        )?;
        let scale_dim = match family.attention_scale_dim {
            ScaleDim::EmbdPerHeadWithLayers(layers) if layers == n_layers => n_embd / n_heads,
            _ => head_dim,
        };
        let name = file
            .get("general.name")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(ModelConfig {
            architecture: family.architecture.to_string(),
            name,
            n_vocab,
            n_ctx_train: meta.required_count("context_length")?,
            n_embd,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            n_ff: meta.required_count("feed_forward_length")?,
            n_rot,
            rope_freq_base,
            rope_freq_scale,
            rms_norm_eps,
            sliding_window,
            attention_scale: 1.0 / (scale_dim as f32).sqrt(),
            layers,
            n_params: 0,
            tensor_types: Vec::new(),
        })
    }

    /// Width of the concatenated query heads.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of the concatenated key (or value) heads, one row of the KV cache.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// Window and rope settings of each layer under the family's sliding-window pattern.
fn layer_configs(
    meta: &Meta,
    family: &Family,
    n_layers: usize,
    rope_freq_base: f32,
    rope_freq_scale: f32,
    sliding_window: Option<usize>,
) -> Result<Vec<LayerConfig>, ModelError> {
    let global = LayerConfig {
        sliding_window: None,
        rope_freq_base,
        rope_freq_scale,
    };
    let SlidingWindow::Pattern {
        period,
        local_rope_base,
    } = family.sliding_window
    else {
        return Ok(vec![global; n_layers]);
    };
    let local = LayerConfig {
        sliding_window,
        rope_freq_base: meta.float("rope.freq_base_swa")?.unwrap_or(local_rope_base),
        // llama.cpp's rope_freq_scale_train_swa: local layers are never position-scaled.
        rope_freq_scale: 1.0,
    };
    Ok((0..n_layers)
        .map(|layer_idx| {
            if layer_idx % period < period - 1 {
                local
            } else {
                global
            }
        })
        .collect())
}
