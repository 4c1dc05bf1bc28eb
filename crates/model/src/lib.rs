//! Model architectures as descriptions over one shared transformer block, binding GGUF
//! tensors to weights, the batched forward pass and the KV cache.
//!
//! A family ([`Family`]: Llama, Qwen2, Gemma 3) is a value that says what the block does
//! differently — rope layout, biases, QK-norm, post-norms, activation, scales, sliding
//! window, tensor names. [`Model::load`] reads the hyperparameters ([`ModelConfig`]),
//! checks every tensor's shape, type and size and keeps the weights in the mapped file.
//! [`Model::forward_batch`] runs the rows of many sequences through the stack in one pass,
//! appending their keys and values to their blocks of a [`KvPool`], and writes the logits
//! (or hidden states) of the rows asked for; [`Model::forward`] is its one-sequence case
//! over a [`KvCache`].
//!
//! This crate does not sample, schedule or parse text.

mod batch;
mod block;
mod cache;
mod config;
mod error;
pub mod family;
mod forward;
mod kv_pool;
mod observe;
mod scratch;
mod weights;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use gguf::GgufFile;

pub use batch::{BatchOutput, Output, SeqInput};
pub use cache::KvCache;
pub use config::{LayerConfig, ModelConfig};
pub use error::ModelError;
pub use family::Family;
pub use forward::{Logits, MAX_BATCH};
pub use kv_pool::{BlockTable, KvPool};
pub use observe::Observer;

use scratch::Scratch;
use weights::{Binder, Weights};

/// A loaded model: its description, dimensions and weights (views into the mapped file).
#[derive(Debug)]
pub struct Model {
    file: Arc<GgufFile>,
    family: Family,
    config: ModelConfig,
    weights: Weights,
    /// Activations of a batch, reused by every forward call (one call at a time).
    scratch: Mutex<Scratch>,
}

impl Model {
    /// Binds the model in `file`: finds its family, reads and checks its hyperparameters
    /// and every tensor. Nothing is copied but the small norm and bias vectors.
    pub fn load(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let architecture = file
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or(ModelError::MissingArchitecture)?;
        let family = Family::for_architecture(architecture).ok_or_else(|| {
            ModelError::UnknownArchitecture {
                architecture: architecture.to_string(),
            }
        })?;
        let mut binder = Binder::new(&file, family.architecture);
        let n_embd_key = format!("{}.embedding_length", family.architecture);
        let n_embd = file
            .get(&n_embd_key)
            .and_then(|v| v.as_u64())
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| ModelError::MissingKey {
                key: n_embd_key,
                architecture: family.architecture.to_string(),
            })?;
        let token_embd = weights::token_embd(&mut binder, &family, n_embd)?;
        let mut config = ModelConfig::from_metadata(&file, &family, token_embd.n_rows)?;
        let weights = weights::bind(&mut binder, &family, &config, token_embd)?;
        binder.finish()?;
        config.n_params = file.tensors().iter().map(|t| t.n_elements()).sum();
        config.tensor_types = tensor_type_counts(&file);
        tracing::debug!(
            architecture = %config.architecture,
            n_layers = config.n_layers,
            n_params = config.n_params,
            "model bound"
        );
        Ok(Model {
            file,
            family,
            config,
            weights,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    /// Dimensions and hyperparameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The family description the model runs under.
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// The file the weights live in.
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// An empty KV cache for `n_ctx` positions of this model.
    pub fn new_cache(&self, n_ctx: usize) -> KvCache {
        KvCache::new(self.config.n_layers, self.config.kv_dim(), n_ctx)
    }
}

/// Tensors per type name, most frequent first, then by name.
fn tensor_type_counts(file: &GgufFile) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for t in file.tensors() {
        let name = t.ggml_type.name();
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name.to_string(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}
