//! Many sequences in one forward pass: every row of every sequence goes through each
//! matmul together (the weights are read once per step for the whole batch), and each
//! sequence's queries attend to its own keys and values in a [`KvPool`].

use std::ops::Range;

use crate::forward::Logits;
use crate::kv_pool::{BlockTable, KvPool};
use crate::observe::{NoObserver, Observer};
use crate::{Model, ModelError, MAX_BATCH};

/// What a sequence wants back from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Logits of the rows [`Logits`] selects, into [`BatchOutput::logits`].
    Logits(Logits),
    /// Every row's final hidden state (after the output norm), into
    /// [`BatchOutput::hidden`]: embeddings.
    Hidden,
}

/// One sequence's part of a batch: its next tokens, evaluated at positions
/// `kv.len()..`, whose keys and values are appended to `kv`.
#[derive(Debug)]
pub struct SeqInput<'a> {
    /// The tokens (at least one).
    pub tokens: &'a [u32],
    /// The sequence's blocks in the pool the batch runs with.
    pub kv: &'a mut BlockTable,
    /// What to return.
    pub output: Output,
}

/// The rows a batch returns, sequence after sequence in batch order.
#[derive(Debug, Default, Clone)]
pub struct BatchOutput {
    /// Logits of the sequences that asked for them.
    pub logits: Vec<f32>, // [n_logit_rows, n_vocab]
    /// Hidden states of the sequences that asked for them.
    pub hidden: Vec<f32>, // [n_hidden_rows, n_embd]
}

/// One sequence's rows of a planned batch.
pub(crate) struct SeqRows<'a> {
    pub table: &'a BlockTable,
    /// Its rows in the batch.
    pub rows: Range<usize>,
    /// Position of its first row.
    pub first_pos: usize,
    /// Its last `n_out` rows are wanted.
    pub n_out: usize,
    /// Whether they are wanted as hidden states rather than logits.
    pub hidden: bool,
}

/// Where every row of a batch goes.
pub(crate) struct Plan<'a> {
    pub n_rows: usize,
    pub seqs: Vec<SeqRows<'a>>,
    /// Position of each row.
    pub positions: Vec<usize>, // [n_rows]
    /// The rows whose output is wanted, ascending: the only rows the last layer
    /// computes past its keys and values (llama.cpp's `inp_out_ids`).
    pub out_rows: Vec<usize>,
}

impl<'a> Plan<'a> {
    /// A plan of `seqs` in order.
    pub fn new(seqs: Vec<SeqRows<'a>>) -> Plan<'a> {
        let n_rows = seqs.last().map_or(0, |s| s.rows.end);
        let mut positions = Vec::with_capacity(n_rows);
        let mut out_rows = Vec::new();
        for seq in &seqs {
            positions.extend(seq.first_pos..seq.first_pos + seq.rows.len());
            out_rows.extend(seq.rows.end - seq.n_out..seq.rows.end);
        }
        Plan {
            n_rows,
            seqs,
            positions,
            out_rows,
        }
    }
}

impl Model {
    /// An empty KV pool of `n_blocks` blocks of `block_tokens` positions for this model.
    /// The memory is zeroed, which the allocator hands out lazily.
    pub fn new_pool(&self, block_tokens: usize, n_blocks: usize) -> KvPool {
        KvPool::new(
            self.config.n_layers,
            self.config.kv_dim(),
            block_tokens,
            n_blocks,
        )
    }

    /// Bytes of keys and values one position takes in a pool (f16, every layer).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.config.n_layers * self.config.kv_dim() * std::mem::size_of::<u16>()
    }

    /// Runs a batch of sequences in one pass: each sequence's tokens at positions
    /// `kv.len()..`, appending their keys and values to its blocks in `pool` (taking new
    /// blocks as needed), and writes the rows each asks for into `out` (replacing its
    /// contents). At most [`MAX_BATCH`] rows in all. On error nothing changes.
    pub fn forward_batch(
        &self,
        pool: &mut KvPool,
        seqs: &mut [SeqInput],
        out: &mut BatchOutput,
    ) -> Result<(), ModelError> {
        self.forward_batch_observed(pool, seqs, out, &mut NoObserver)
    }

    /// [`Model::forward_batch`], showing every named intermediate to `observer`.
    pub fn forward_batch_observed(
        &self,
        pool: &mut KvPool,
        seqs: &mut [SeqInput],
        out: &mut BatchOutput,
        observer: &mut dyn Observer,
    ) -> Result<(), ModelError> {
        let (n_logit_rows, n_hidden_rows) = self.check_seqs(pool, seqs)?;
        for seq in seqs.iter_mut() {
            let positions = seq.kv.len() + seq.tokens.len();
            pool.reserve(seq.kv, positions)
                .expect("check_seqs counted the free blocks");
        }
        out.logits.clear();
        out.logits.resize(n_logit_rows * self.config.n_vocab, 0.0);
        out.hidden.clear();
        out.hidden.resize(n_hidden_rows * self.config.n_embd, 0.0);
        let mut tokens = Vec::with_capacity(seqs.iter().map(|s| s.tokens.len()).sum());
        let mut rows = Vec::with_capacity(seqs.len());
        for seq in seqs.iter() {
            let start = tokens.len();
            tokens.extend_from_slice(seq.tokens);
            let (n_out, hidden) = match seq.output {
                Output::Logits(logits) => (logits_rows(logits, seq.tokens.len()), false),
                Output::Hidden => (seq.tokens.len(), true),
            };
            rows.push(SeqRows {
                table: &*seq.kv,
                rows: start..tokens.len(),
                first_pos: seq.kv.len(),
                n_out,
                hidden,
            });
        }
        let plan = Plan::new(rows);
        // One forward call at a time uses the scratch; a poisoned lock only means an
        // earlier call panicked, and the buffers hold nothing that must be consistent.
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.run_plan(
            &mut scratch,
            pool,
            &tokens,
            &plan,
            &mut out.logits,
            &mut out.hidden,
            observer,
        );
        drop(plan);
        for seq in seqs.iter_mut() {
            seq.kv.advance(seq.tokens.len());
        }
        Ok(())
    }

    /// Checks a batch against the vocabulary, the pool and the limits; returns the logit
    /// and hidden rows it asks for.
    fn check_seqs(&self, pool: &KvPool, seqs: &[SeqInput]) -> Result<(usize, usize), ModelError> {
        if pool.n_layers() != self.config.n_layers || pool.kv_dim() != self.config.kv_dim() {
            return Err(ModelError::CacheMismatch);
        }
        let (mut n_rows, mut n_logit_rows, mut n_hidden_rows, mut needed) = (0, 0, 0, 0);
        for seq in seqs {
            let n = seq.tokens.len();
            if n == 0 {
                return Err(ModelError::EmptyBatch);
            }
            let n_vocab = self.config.n_vocab;
            if let Some(&token) = seq.tokens.iter().find(|&&t| t as usize >= n_vocab) {
                return Err(ModelError::TokenOutOfRange { token, n_vocab });
            }
            match seq.output {
                Output::Logits(Logits::Tail(requested)) if requested > n => {
                    return Err(ModelError::TooManyLogitRows {
                        requested,
                        n_tokens: n,
                    });
                }
                Output::Logits(logits) => n_logit_rows += logits_rows(logits, n),
                Output::Hidden => n_hidden_rows += n,
            }
            n_rows += n;
            needed += pool.blocks_needed(seq.kv, seq.kv.len() + n);
        }
        if n_rows == 0 {
            return Err(ModelError::EmptyBatch);
        }
        if n_rows > MAX_BATCH {
            return Err(ModelError::BatchTooLarge {
                n_rows,
                max: MAX_BATCH,
            });
        }
        if needed > pool.n_free() {
            return Err(ModelError::KvPoolFull {
                needed,
                free: pool.n_free(),
                total: pool.n_blocks(),
            });
        }
        Ok((n_logit_rows, n_hidden_rows))
    }
}

/// Rows of logits `logits` selects from `n_tokens` tokens (checked beforehand).
pub(crate) fn logits_rows(logits: Logits, n_tokens: usize) -> usize {
    match logits {
        Logits::Last => 1,
        Logits::All => n_tokens,
        Logits::Tail(n) => n.min(n_tokens),
    }
}
