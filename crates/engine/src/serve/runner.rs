//! The model and its KV cache as the engine loop drives them: one forward pass per step
//! over every sequence's rows.

use model::{KvCache, Logits, Model, ModelError};

use super::sequence::RowOutput;
use super::types::EngineConfig;

/// Share of the available memory the KV cache takes by default.
const DEFAULT_KV_MEMORY_SHARE: usize = 4;

/// The keys and values of one sequence.
#[derive(Debug, Default)]
pub(crate) struct SeqKv {
    cache: Option<KvCache>,
}

/// One sequence's part of a step.
pub(crate) struct BatchRows<'a> {
    pub tokens: &'a [u32],
    pub kv: &'a mut SeqKv,
    pub output: RowOutput,
}

/// What a step returns, rows in the order of the sequences that asked for them.
#[derive(Debug, Default)]
pub(crate) struct StepOutput {
    pub logits: Vec<f32>, // [n_logit_rows, n_vocab]
    pub hidden: Vec<f32>, // [n_hidden_rows, n_embd]
}

/// The model, the KV budget in blocks, and the buffers of a step.
pub(crate) struct Runner {
    model: Model,
    block_tokens: usize,
    total_blocks: usize,
    used_blocks: usize,
    row_logits: Vec<f32>,
}

impl Runner {
    /// A runner with the KV budget `config` asks for (or the default).
    pub fn new(model: Model, config: &EngineConfig) -> Runner {
        let bytes_per_token = kv_bytes_per_token(&model);
        let budget = config
            .kv_budget_bytes
            .unwrap_or_else(|| default_kv_budget(config, bytes_per_token));
        let block_bytes = bytes_per_token
            .saturating_mul(config.kv_block_tokens)
            .max(1);
        Runner {
            model,
            block_tokens: config.kv_block_tokens,
            total_blocks: budget / block_bytes,
            used_blocks: 0,
            row_logits: Vec::new(),
        }
    }

    /// Blocks in the cache.
    pub fn total_blocks(&self) -> usize {
        self.total_blocks
    }

    /// Blocks holding some sequence's keys and values.
    pub fn used_blocks(&self) -> usize {
        self.used_blocks
    }

    /// Blocks for `positions` positions.
    pub fn blocks_for(&self, positions: usize) -> usize {
        positions.div_ceil(self.block_tokens)
    }

    /// Width of the hidden states.
    pub fn n_embd(&self) -> usize {
        self.model.config().n_embd
    }

    /// Width of the logits.
    pub fn n_vocab(&self) -> usize {
        self.model.config().n_vocab
    }

    /// Room for `positions` positions of one sequence (blocks the caller reserved).
    pub fn allocate(&mut self, kv: &mut SeqKv, positions: usize) {
        self.release(kv);
        let blocks = self.blocks_for(positions);
        self.used_blocks += blocks;
        kv.cache = Some(self.model.new_cache(blocks * self.block_tokens));
    }

    /// Frees a sequence's blocks.
    pub fn release(&mut self, kv: &mut SeqKv) {
        if let Some(cache) = kv.cache.take() {
            self.used_blocks -= self.blocks_for(cache.capacity());
        }
    }

    /// Runs every sequence's rows, appending to their keys and values.
    pub fn step(&mut self, rows: &mut [BatchRows], out: &mut StepOutput) -> Result<(), ModelError> {
        out.logits.clear();
        out.hidden.clear();
        for row in rows.iter_mut() {
            let Some(cache) = row.kv.cache.as_mut() else {
                continue;
            };
            let logits = match row.output {
                RowOutput::None => Logits::Tail(0),
                RowOutput::LastLogits => Logits::Last,
                RowOutput::Hidden => return Err(ModelError::EmptyBatch),
            };
            self.model
                .forward(row.tokens, cache, logits, &mut self.row_logits)?;
            out.logits.extend_from_slice(&self.row_logits);
        }
        Ok(())
    }
}

/// Bytes of keys and values per cached position (f16, every layer).
fn kv_bytes_per_token(model: &Model) -> usize {
    let config = model.config();
    2 * config.n_layers * config.kv_dim() * std::mem::size_of::<u16>()
}

/// min(`n_ctx * max_running` tokens, a quarter of the available memory), but at least
/// one full context.
fn default_kv_budget(config: &EngineConfig, bytes_per_token: usize) -> usize {
    let wanted = config
        .n_ctx
        .saturating_mul(config.max_running)
        .saturating_mul(bytes_per_token);
    let one_context = config.n_ctx.saturating_mul(bytes_per_token);
    let budget = match available_memory() {
        Some(available) => wanted.min(available / DEFAULT_KV_MEMORY_SHARE),
        None => wanted,
    };
    budget.max(one_context)
}

/// `MemAvailable` of /proc/meminfo, in bytes, where the system has it.
fn available_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
