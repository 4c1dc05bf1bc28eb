//! The model and its KV cache as the engine loop drives them: one forward pass per step
//! over every sequence's rows.

use model::{
    prefix_key, BatchOutput, BlockTable, KvPool, Logits, Model, ModelError, Output, SeqInput,
    ROOT_KEY,
};

use super::sequence::RowOutput;
use super::types::EngineConfig;

/// Share of the available memory the KV cache takes by default.
const DEFAULT_KV_MEMORY_SHARE: usize = 4;

/// The keys and values of one sequence: its blocks in the pool, and its place in the
/// prefix cache.
#[derive(Debug, Default)]
pub(crate) struct SeqKv {
    table: BlockTable,
    /// Chained prefix keys of its full blocks known so far (every full prompt block from
    /// admission on; generated ones as they fill).
    keys: Vec<u64>,
    /// Blocks offered to the prefix cache so far (the first ones).
    registered: usize,
}

impl SeqKv {
    /// Whether this sequence will register (or has) the block keyed `key` at `index`,
    /// but has not yet: a request with that prefix does better to wait for it.
    pub fn will_register(&self, index: usize, key: u64) -> bool {
        self.registered <= index && self.keys.get(index) == Some(&key)
    }
}

/// What the prefix cache holds of a prompt.
#[derive(Debug, Default)]
pub(crate) struct PrefixHit {
    /// Chained keys of the prompt's full blocks.
    pub keys: Vec<u64>,
    /// The cached blocks of its longest cached prefix.
    pub blocks: Vec<u32>,
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

    /// Blocks no sequence holds that keep a cached prefix (they count as free).
    pub fn cached_blocks(&self) -> usize {
        self.pool.n_cached()
    }

    /// Bytes of one block.
    pub fn block_bytes(&self) -> usize {
        self.pool.block_bytes()
    }

    /// Positions per block.
    pub fn block_tokens(&self) -> usize {
        self.pool.block_tokens()
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

    /// Looks up the longest cached prefix of `prompt` in whole blocks.
    pub fn lookup(&self, prompt: &[u32]) -> PrefixHit {
        let keys = chain_keys(ROOT_KEY, prompt, self.pool.block_tokens());
        let blocks = self.pool.cached_prefix(&keys, prompt);
        PrefixHit { keys, blocks }
    }

    /// Starts `kv` (empty) on the cached blocks of `hit`, holding `len` positions of them,
    /// and remembers the prompt's keys. Returns the positions it holds.
    pub fn attach(&mut self, kv: &mut SeqKv, hit: PrefixHit, len: usize) -> usize {
        self.pool.attach(&mut kv.table, &hit.blocks, len);
        // A block it shares but will write (the last one) is registered already, as a
        // copy of it would be: counting it keeps the copy from being offered again.
        kv.registered = hit.blocks.len();
        kv.keys = hit.keys;
        kv.table.len()
    }

    /// Offers every full block of `kv` not offered yet to the prefix cache; `tokens` are
    /// the sequence's tokens (at least its cached positions).
    pub fn register(&mut self, kv: &mut SeqKv, tokens: &[u32]) {
        let block_tokens = self.pool.block_tokens();
        let full = kv.table.len() / block_tokens;
        while kv.registered < full {
            let i = kv.registered;
            let Some(chunk) = tokens.get(i * block_tokens..(i + 1) * block_tokens) else {
                break;
            };
            let parent = i.checked_sub(1).map_or(ROOT_KEY, |p| kv.keys[p]);
            if kv.keys.len() == i {
                kv.keys.push(prefix_key(parent, chunk));
            }
            self.pool.register(&kv.table, i, parent, kv.keys[i], chunk);
            kv.registered += 1;
        }
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

/// The chained keys of the full blocks of `tokens` after the prefix keyed `parent`.
fn chain_keys(mut parent: u64, tokens: &[u32], block_tokens: usize) -> Vec<u64> {
    tokens
        .chunks_exact(block_tokens)
        .map(|chunk| {
            parent = prefix_key(parent, chunk);
            parent
        })
        .collect()
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
