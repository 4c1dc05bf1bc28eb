//! Perplexity over a text, as llama.cpp's `llama-perplexity` computes it.
//!
//! The text is tokenized once (BOS prepended if the model adds one, special-token text not
//! parsed) and cut into consecutive windows of `n_ctx` tokens; for a model that adds BOS,
//! the first token of each window is replaced (not shifted) by BOS. Each window is evaluated
//! from an empty cache and only its second half is scored: the logits at positions
//! `n_ctx/2 .. n_ctx-2`, each against the next token (`n_ctx/2 - 1` tokens per window).

use model::Logits;

use super::Session;
use crate::error::EngineError;
use crate::perplexity::{token_nll, NllSum};

/// The outcome of a perplexity run.
#[derive(Debug, Clone, PartialEq)]
pub struct PerplexityResult {
    /// exp(mean negative log-likelihood) over all scored tokens.
    pub ppl: f64,
    /// The ± llama-perplexity prints; `None` when undefined.
    pub ppl_stderr: Option<f64>,
    /// How many tokens were scored.
    pub tokens_scored: usize,
    /// How many windows were evaluated.
    pub n_chunks: usize,
    /// The running perplexity after each window.
    pub chunk_running_ppl: Vec<f64>,
    /// Tokens in the whole text.
    pub n_tokens: usize,
}

impl Session {
    /// Perplexity of the model on `text` with windows of the session's context size, over
    /// at most `max_chunks` windows (all that fit when `None`). `on_chunk(index, running
    /// ppl)` is called after each window.
    pub fn perplexity(
        &mut self,
        text: &str,
        max_chunks: Option<usize>,
        mut on_chunk: impl FnMut(usize, f64),
    ) -> Result<PerplexityResult, EngineError> {
        let n_ctx = self.n_ctx();
        if n_ctx < 4 {
            return Err(EngineError::ContextTooSmall { n_ctx, min: 4 });
        }
        let tokens = self.tokenizer.encode(text, true, false);
        let needed = 2 * n_ctx;
        if tokens.len() < needed {
            return Err(EngineError::TextTooShort {
                n_tokens: tokens.len(),
                n_ctx,
                needed,
            });
        }
        let bos = if self.tokenizer.add_bos() {
            self.tokenizer.bos()
        } else {
            None
        };
        let n_chunks = max_chunks.map_or(tokens.len() / n_ctx, |m| m.min(tokens.len() / n_ctx));
        let first = n_ctx / 2;
        let n_vocab = self.model.config().n_vocab;
        let mut sums = NllSum::default();
        let mut running = Vec::with_capacity(n_chunks);
        for (index, window) in tokens.chunks_exact(n_ctx).take(n_chunks).enumerate() {
            let mut window = window.to_vec();
            if let Some(bos) = bos {
                window[0] = bos;
            }
            self.clear();
            self.forward(&window, Logits::Tail(n_ctx - first))?;
            // Row j holds the logits at position first + j, predicting window[first + j + 1].
            for (row, &target) in self.logits.chunks_exact(n_vocab).zip(&window[first + 1..]) {
                let nll = token_nll(row, target).ok_or(EngineError::TokenOutOfRange {
                    token: target,
                    n_vocab,
                })?;
                sums.add(nll);
            }
            let ppl = sums.ppl();
            running.push(ppl);
            on_chunk(index, ppl);
        }
        // The cache holds the last window, which no later request would share.
        self.clear();
        Ok(PerplexityResult {
            ppl: sums.ppl(),
            ppl_stderr: sums.ppl_stderr(),
            tokens_scored: sums.count,
            n_chunks,
            chunk_running_ppl: running,
            n_tokens: tokens.len(),
        })
    }
}
