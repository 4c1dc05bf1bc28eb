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
mod packcache;
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
pub use kv_pool::{prefix_key, BlockTable, KvPool, ROOT_KEY};
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
    /// Bytes of the repacked weight copies.
    repacked_bytes: usize,
    /// Activations of a batch, reused by every forward call (one call at a time).
    scratch: Mutex<Scratch>,
}

impl Model {
    /// Binds the model in `file`: finds its family, reads and checks its hyperparameters
    /// and every tensor. Nothing is copied but the small norm and bias vectors.
    pub fn load(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        Model::load_with(file, &LoadOptions::default())
    }

    /// [`Model::load`] with options: where to keep repacked weights between runs.
    pub fn load_with(file: Arc<GgufFile>, options: &LoadOptions) -> Result<Model, ModelError> {
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
        let mut weights = weights::bind(&mut binder, &family, &config, token_embd)?;
        binder.finish()?;
        let repacked_bytes = if repack_enabled() {
            repack(&file, &mut weights, options)
        } else {
            0
        };
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
            repacked_bytes,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    /// Bytes of the weight copies repacked at load for the matmul kernels (0 when
    /// repacking is off: `SLM_REPACK=0`).
    pub fn repacked_bytes(&self) -> usize {
        self.repacked_bytes
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

/// Whether weights are repacked at load (the default); `SLM_REPACK=0` keeps the file's
/// layout only, which saves the copies' memory at the cost of speed.
fn repack_enabled() -> bool {
    std::env::var_os("SLM_REPACK").is_none_or(|v| v != "0")
}

/// How [`Model::load_with`] treats repacked weights.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A directory for a cache of the repacked weights: read when it matches the model
    /// file, written (and older caches of `cache_name` removed) when not. `None`: repack
    /// in memory at every load.
    pub pack_cache_dir: Option<std::path::PathBuf>,
    /// The cache file's name stem (the model's name), kept to a safe file name.
    pub cache_name: String,
}

/// Repacks the weights, through the cache when `options` names one; returns the bytes
/// the packed copies take.
fn repack(file: &GgufFile, weights: &mut Weights, options: &LoadOptions) -> usize {
    let start = std::time::Instant::now();
    let cache = options.pack_cache_dir.as_ref().map(|dir| {
        let name: String = options
            .cache_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let key = packcache::key(file, weights);
        (
            dir.clone(),
            name.clone(),
            packcache::path(dir, &name, key),
            key,
        )
    });
    if let Some((_, _, path, key)) = &cache {
        if let Some(bytes) = packcache::load(path, *key, weights) {
            tracing::debug!(path = %path.display(), mib = bytes >> 20, ms = start.elapsed().as_millis() as u64, "repacked weights mapped from the cache");
            return bytes;
        }
    }
    let bytes = weights.pack(file);
    tracing::debug!(
        mib = bytes >> 20,
        ms = start.elapsed().as_millis() as u64,
        "weights repacked"
    );
    if let Some((dir, name, path, key)) = &cache {
        match packcache::save(path, *key, weights) {
            Ok(()) => packcache::remove_stale(dir, name, path),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not write the repacked-weights cache; the next load repacks again")
            }
        }
    }
    bytes
}
