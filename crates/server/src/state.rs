//! What every handler shares: the settings, the counters and the served models, which are
//! known by name from the start and become usable once loaded.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use engine::Engine;

use crate::config::{ModelSpec, ServeConfig};
use crate::error::ApiError;
use crate::metrics::{HistogramSnapshot, Metrics, ModelStats};

/// The handlers' shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The server's settings.
    pub config: Arc<ServeConfig>,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// The models, loaded or loading.
    pub models: Arc<Models>,
}

impl AppState {
    /// State for serving `specs` (not loaded yet).
    pub fn new(config: ServeConfig, specs: Vec<ModelSpec>) -> AppState {
        AppState {
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            models: Arc::new(Models {
                specs,
                loaded: OnceLock::new(),
                failed: OnceLock::new(),
            }),
        }
    }

    /// A deadline for a request that starts now.
    pub fn deadline(&self) -> Option<Instant> {
        self.config
            .request_timeout
            .and_then(|t| Instant::now().checked_add(t))
    }
}

/// One loaded model.
#[derive(Debug, Clone)]
pub struct Served {
    /// How it was asked for.
    pub spec: ModelSpec,
    /// Its engine loop.
    pub engine: Engine,
    /// How long loading took.
    pub load_duration: Duration,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's modification time.
    pub modified: SystemTime,
}

/// The served models: named at start, loaded in the background.
#[derive(Debug)]
pub struct Models {
    specs: Vec<ModelSpec>,
    loaded: OnceLock<Vec<Served>>,
    failed: OnceLock<String>,
}

impl Models {
    /// The names clients may ask for, the default first.
    pub fn names(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.name.clone()).collect()
    }

    /// The models as asked for at start.
    pub fn specs(&self) -> &[ModelSpec] {
        &self.specs
    }

    /// Marks every model loaded (once).
    pub fn set_loaded(&self, served: Vec<Served>) {
        if self.loaded.set(served).is_err() {
            tracing::warn!("the models were marked loaded twice; the second set is ignored");
        }
    }

    /// Marks loading as failed; requests then get 503 with this reason.
    pub fn set_failed(&self, reason: String) {
        let _ = self.failed.set(reason);
    }

    /// The loaded models, if loading has finished.
    pub fn loaded(&self) -> Option<&[Served]> {
        self.loaded.get().map(Vec::as_slice)
    }

    /// True once every model is loaded.
    pub fn ready(&self) -> bool {
        self.loaded.get().is_some()
    }

    /// The model a request names (absent or empty: the default one). 404 for a name not
    /// served, 503 while loading.
    pub fn get(&self, name: Option<&str>) -> Result<&Served, ApiError> {
        let index = match name.map(str::trim).filter(|n| !n.is_empty()) {
            None => 0,
            Some(name) => self
                .index_of(name)
                .ok_or_else(|| ApiError::model_not_found(name, &self.names()))?,
        };
        let Some(loaded) = self.loaded.get() else {
            if let Some(reason) = self.failed.get() {
                return Err(ApiError::unavailable(format!(
                    "the models could not be loaded: {reason}"
                )));
            }
            return Err(ApiError::unavailable(
                "the models are still loading; retry in a moment (GET /ready says when they are loaded)",
            ));
        };
        loaded
            .get(index)
            .ok_or_else(|| ApiError::unavailable("no model is served"))
    }

    /// Where `name` is in the list: exact, or with Ollama's implied `:latest` tag on
    /// either side.
    fn index_of(&self, name: &str) -> Option<usize> {
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        self.specs.iter().position(|s| {
            s.name == name || s.name == bare || s.name.strip_suffix(":latest") == Some(bare)
        })
    }

    /// Each loaded model's figures for `/metrics`.
    pub fn stats(&self) -> Vec<ModelStats> {
        let Some(loaded) = self.loaded.get() else {
            return Vec::new();
        };
        loaded
            .iter()
            .map(|served| {
                let s = served.engine.stats();
                let histogram = |h: &engine::Histogram| HistogramSnapshot {
                    buckets: h.buckets(),
                    sum: h.sum(),
                    count: h.count(),
                };
                ModelStats {
                    model: served.spec.name.clone(),
                    queue_depth: s.queue_depth,
                    running: s.running,
                    kv_blocks_total: s.kv_blocks_total,
                    kv_blocks_used: s.kv_blocks_used,
                    kv_blocks_cached: s.kv_blocks_cached,
                    kv_block_bytes: s.kv_block_bytes,
                    prompt_tokens_cached_total: s.prompt_tokens_cached_total,
                    prefix_cache_lookups_total: s.prefix_cache_lookups_total,
                    prefix_cache_hits_total: s.prefix_cache_hits_total,
                    prompt_tokens_total: s.prompt_tokens_total,
                    generated_tokens_total: s.generated_tokens_total,
                    requests_total: s.requests_total,
                    ttft_seconds: histogram(&s.ttft_seconds),
                    itl_seconds: histogram(&s.itl_seconds),
                }
            })
            .collect()
    }
}
