//! The model and its KV cache as the engine loop drives them: one forward pass per step
//! over every sequence's rows.

use model::{BatchOutput, BlockTable, KvPool, Logits, Model, ModelError, Output, SeqInput};

use super::sequence::RowOutput;
use super::types::EngineConfig;

/// Share of the available memory the KV cache takes by default.
const DEFAULT_KV_MEMORY_SHARE: usize = 4;

/// The keys and values of one sequence: its blocks in the pool.
#[derive(Debug, Default)]
pub(crate) struct SeqKv {
    table: BlockTable,
}

/// One sequence's part of a step.
pub(crate) struct BatchRows<'a> {
    pub tokens: &'a [u32],
    pub kv: &'a mut SeqKv,
    pub output: RowOutput,
}

/// What a step returns, rows in the order of the sequences that asked for them.
pub(crate) type StepOutput = BatchOutput;

/// The model, its KV pool, and the buffers of a step.
pub(crate) struct Runner {
    model: Model,
    pool: KvPool,
}

impl Runner {
    /// A runner with the KV budget `config` asks for (or the default).
    pub fn new(model: Model, config: &EngineConfig) -> Runner {
        let bytes_per_token = model.kv_bytes_per_token();
        let budget = config
            .kv_budget_bytes
            .unwrap_or_else(|| default_kv_budget(config, bytes_per_token));
        let block_bytes = bytes_per_token
            .saturating_mul(config.kv_block_tokens)
            .max(1);
        let pool = model.new_pool(config.kv_block_tokens, budget / block_bytes);
        Runner { model, pool }
    }

    /// Blocks in the cache.
    pub fn total_blocks(&self) -> usize {
        self.pool.n_blocks()
    }

    /// Blocks holding some sequence's keys and values.
    pub fn used_blocks(&self) -> usize {
        self.pool.n_used()
    }

    /// Blocks for `positions` positions.
    pub fn blocks_for(&self, positions: usize) -> usize {
        self.pool.blocks_for(positions)
    }

    /// Width of the hidden states.
    pub fn n_embd(&self) -> usize {
        self.model.config().n_embd
    }

    /// Width of the logits.
    pub fn n_vocab(&self) -> usize {
        self.model.config().n_vocab
    }

    /// Frees a sequence's blocks at once.
    pub fn release(&mut self, kv: &mut SeqKv) {
        self.pool.release(&mut kv.table);
    }

    /// Runs every sequence's rows as one batch, appending to their keys and values.
    pub fn step(&mut self, rows: &mut [BatchRows], out: &mut StepOutput) -> Result<(), ModelError> {
        let mut inputs: Vec<SeqInput> = rows
            .iter_mut()
            .map(|row| SeqInput {
                tokens: row.tokens,
                kv: &mut row.kv.table,
                output: match row.output {
                    RowOutput::None => Output::Logits(Logits::Tail(0)),
                    RowOutput::LastLogits => Output::Logits(Logits::Last),
                    RowOutput::Hidden => Output::Hidden,
                },
            })
            .collect();
        self.model.forward_batch(&mut self.pool, &mut inputs, out)
    }
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
pub(crate) fn available_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
