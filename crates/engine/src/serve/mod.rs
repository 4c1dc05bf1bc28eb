//! Serving many clients at once: one engine loop per model, continuous batching over a
//! KV cache in blocks.
//!
//! [`Engine::start`] loads a model and starts its loop on an OS thread of its own, which
//! owns the model and the KV cache. Front ends [`Engine::submit`] tokenized requests and
//! read [`Event`]s from the [`Ticket`] (async or blocking); dropping a ticket cancels its
//! request. Each step the loop admits waiting requests while KV blocks and
//! `max_running` allow, then runs one forward pass over a batch of one decode row per
//! generating sequence plus chunks of the prompts being evaluated (chunked prefill), and
//! samples, detokenizes and checks stop strings per sequence. Compute runs on that
//! thread and the kernels' pool, never on the caller's (async) threads.
//!
//! With [`EngineConfig::prefix_cache`] (the default), every full KV block a sequence
//! evaluates is kept under a key chained from its whole token prefix; a request whose
//! prompt starts with cached blocks shares them and evaluates only the rest, which gives
//! the same tokens as evaluating it whole. Cached blocks no sequence holds count as free
//! and are evicted, least recently released first, when blocks are needed.

mod engine_loop;
mod grammar;
mod logprobs;
mod runner;
mod sequence;
mod stats;
mod ticket;
mod types;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gguf::GgufFile;
use model::Model;
use tokenizer::Tokenizer;

use crate::chat::ChatTemplate;
use crate::error::EngineError;
use crate::info::ModelInfo;

pub use stats::{EngineStats, Histogram, LATENCY_BUCKETS};
pub use ticket::{EmbedResult, EmbedTicket, Ticket};
pub use types::{
    Embeddings, EngineConfig, Event, FinishReason, Request, SubmitError, Timings, TokenLogprob,
    Usage, MAX_TOP_LOGPROBS,
};

use engine_loop::{Command, EngineLoop};
use runner::Runner;
use ticket::CancelFlag;

/// A loaded model served by one engine loop thread, which owns the model and the KV
/// cache. Cheap to clone (an `Arc` inside); `Send` and `Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.inner.name)
            .field("n_ctx", &self.inner.n_ctx)
            .finish_non_exhaustive()
    }
}

/// What the handles and the loop share.
pub(crate) struct Shared {
    /// Requests submitted but not yet admitted (in the channel or the waiting queue).
    queued: AtomicUsize,
    /// Set by [`Engine::shutdown`]: no more requests are accepted.
    shutting_down: AtomicBool,
    /// The loop's latest counters.
    stats: Mutex<EngineStats>,
}

struct Inner {
    name: String,
    info: ModelInfo,
    tokenizer: Arc<Tokenizer>,
    template: ChatTemplate,
    config: EngineConfig,
    n_ctx: usize,
    n_vocab: usize,
    /// Blocks of the KV cache and positions per block, for admission checks.
    kv_blocks_total: usize,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    /// Built on the first request with a grammar.
    constraints: crate::constraint::LazyCompiler,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Loads the model at `path` and starts its engine loop. `name` is how front ends
    /// call it (e.g. `qwen2.5-coder:0.5b`).
    pub fn start(path: &Path, name: String, config: EngineConfig) -> Result<Engine, EngineError> {
        let _span = tracing::info_span!("load", model = %name).entered();
        check_config(&config)?;
        let start = Instant::now();
        let file = Arc::new(GgufFile::open(path).map_err(|source| EngineError::Open {
            path: path.to_path_buf(),
            source,
        })?);
        let tokenizer = Tokenizer::from_gguf(&file).map_err(|source| EngineError::Tokenizer {
            path: path.to_path_buf(),
            source,
        })?;
        let info = ModelInfo::from_file(&file);
        let template = ChatTemplate::for_model(&file, &tokenizer, config.chat_template.as_deref())?;
        let load_options = model::LoadOptions {
            pack_cache_dir: config.pack_cache_dir.clone(),
            cache_name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let model = Model::load_with(Arc::clone(&file), &load_options).map_err(|source| {
            EngineError::Load {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let n_vocab = model.config().n_vocab;
        let runner = Runner::new(model, &config);
        let kv_blocks_total = runner.total_blocks();
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            stats: Mutex::new(EngineStats::new(
                kv_blocks_total,
                config.kv_block_tokens,
                runner.block_bytes(),
            )),
        });
        let tokenizer = Arc::new(tokenizer);
        let (tx, rx) = mpsc::channel();
        let engine_loop = EngineLoop::new(
            runner,
            Arc::clone(&tokenizer),
            config.clone(),
            Arc::clone(&shared),
            rx,
        );
        let thread = std::thread::Builder::new()
            .name(format!("slm-engine-{name}"))
            .spawn(move || engine_loop.run())
            .map_err(EngineError::Thread)?;
        tracing::info!(
            n_ctx = config.n_ctx,
            kv_blocks = kv_blocks_total,
            kv_block_tokens = config.kv_block_tokens,
            load_ms = start.elapsed().as_millis() as u64,
            "engine started"
        );
        Ok(Engine {
            inner: Arc::new(Inner {
                name,
                info,
                tokenizer,
                template,
                n_ctx: config.n_ctx,
                config,
                n_vocab,
                kv_blocks_total,
                commands: Mutex::new(Some(tx)),
                constraints: Default::default(),
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The name front ends use for the model.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the model file holds (architecture, parameters, quantization, context).
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner.tokenizer
    }

    /// The model's chat template (the file's, a `--chat-template` override, or a built-in
    /// one): [`ChatTemplate::render`] turns conversations into prompt text.
    pub fn template(&self) -> &ChatTemplate {
        &self.inner.template
    }

    /// Tokens (prompt and generated) one sequence may hold.
    pub fn n_ctx(&self) -> usize {
        self.inner.n_ctx
    }

    /// The settings the loop runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Queues a generation request; its events come through the returned ticket.
    pub fn submit(&self, request: Request) -> Result<Ticket, SubmitError> {
        let inner = &self.inner;
        self.check_prompt(&request.prompt)?;
        if let Some(k) = request.logprobs.filter(|&k| k > MAX_TOP_LOGPROBS) {
            return Err(SubmitError::TooManyLogprobs {
                asked: k,
                max: MAX_TOP_LOGPROBS,
            });
        }
        let positions = request
            .prompt
            .len()
            .saturating_add(request.max_tokens)
            .min(inner.n_ctx);
        self.check_fits(positions)?;
        let constraint = match &request.grammar {
            Some(grammar) => Some(Box::new(
                inner
                    .constraints
                    .compile(&inner.tokenizer, grammar)
                    .map_err(SubmitError::InvalidGrammar)?,
            )),
            None => None,
        };
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancelFlag::default();
        let command = Command::Generate {
            request,
            events,
            cancel: cancel.clone(),
            submitted: Instant::now(),
            constraint,
        };
        self.send(command)?;
        Ok(Ticket::new(receiver, cancel))
    }

    /// Queues an embedding request: one vector per input (mean-pooled final hidden
    /// states after the output norm, L2-normalized). No KV is kept afterwards.
    pub fn embed(&self, inputs: Vec<Vec<u32>>) -> Result<EmbedTicket, SubmitError> {
        if inputs.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        let mut longest = 0;
        for input in &inputs {
            self.check_prompt(input)?;
            longest = longest.max(input.len());
        }
        self.check_fits(longest)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let cancel = CancelFlag::default();
        let command = Command::Embed {
            inputs,
            result: sender,
            cancel: cancel.clone(),
            submitted: Instant::now(),
        };
        self.send(command)?;
        Ok(EmbedTicket::new(receiver, cancel))
    }

    /// A snapshot of the loop's counters (cheap: a copy under a lock), as of its last
    /// step; the queue depth is current.
    pub fn stats(&self) -> EngineStats {
        let shared = &self.inner.shared;
        let mut stats = shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        stats.queue_depth = shared.queued.load(Ordering::SeqCst);
        stats
    }

    /// Stops admitting requests, lets running ones finish until `deadline` from now,
    /// cancels the rest (and every queued one), and joins the loop's thread.
    pub fn shutdown(&self, deadline: Duration) {
        let inner = &self.inner;
        inner.shared.shutting_down.store(true, Ordering::SeqCst);
        let sender = inner
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(sender) = sender {
            let until = Instant::now() + deadline;
            // A closed channel means the loop already ended; there is nothing to stop.
            let _ = sender.send(Command::Shutdown { until });
        }
        let thread = inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!(model = %inner.name, "the engine loop panicked");
            }
        }
    }

    /// Refuses prompts the model cannot take at all.
    fn check_prompt(&self, prompt: &[u32]) -> Result<(), SubmitError> {
        if prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= self.inner.n_vocab) {
            return Err(SubmitError::InvalidToken(bad));
        }
        if prompt.len() > self.inner.n_ctx {
            return Err(SubmitError::PromptTooLong {
                prompt: prompt.len(),
                n_ctx: self.inner.n_ctx,
            });
        }
        Ok(())
    }

    /// Refuses a sequence of `positions` that the whole KV cache could never hold.
    fn check_fits(&self, positions: usize) -> Result<(), SubmitError> {
        let needed_blocks = positions.div_ceil(self.inner.config.kv_block_tokens);
        if needed_blocks > self.inner.kv_blocks_total {
            return Err(SubmitError::KvTooSmall {
                needed_blocks,
                total_blocks: self.inner.kv_blocks_total,
            });
        }
        Ok(())
    }

    /// Takes a queue slot and hands the command to the loop.
    fn send(&self, command: Command) -> Result<(), SubmitError> {
        let inner = &self.inner;
        if inner.shared.shutting_down.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let max_queue = inner.config.max_queue;
        inner
            .shared
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max_queue).then_some(n + 1)
            })
            .map_err(|_| SubmitError::QueueFull { max_queue })?;
        let commands = inner.commands.lock().unwrap_or_else(|e| e.into_inner());
        let sent = commands
            .as_ref()
            .is_some_and(|sender| sender.send(command).is_ok());
        if !sent {
            inner.shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::ShuttingDown);
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop at once, cancelling whatever still runs.
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let sender = self
            .commands
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(Command::Shutdown {
                until: Instant::now(),
            });
        }
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Refuses settings the loop cannot run with.
fn check_config(config: &EngineConfig) -> Result<(), EngineError> {
    let checks = [
        ("n_ctx", config.n_ctx),
        ("kv_block_tokens", config.kv_block_tokens),
        ("max_running", config.max_running),
        ("prefill_chunk", config.prefill_chunk),
    ];
    for (name, value) in checks {
        if value == 0 {
            return Err(EngineError::BadConfig {
                setting: name,
                reason: "must be at least 1".to_string(),
            });
        }
    }
    if let (Some(budget), Some(available)) = (config.kv_budget_bytes, runner::available_memory()) {
        if budget > available {
            return Err(EngineError::BadConfig {
                setting: "kv_budget_bytes",
                reason: format!(
                    "{budget} bytes is more than the {available} bytes of memory available; give a smaller KV budget"
                ),
            });
        }
    }
    Ok(())
}
