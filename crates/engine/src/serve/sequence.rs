//! One admitted request as the engine loop runs it: the tokens it still has to evaluate,
//! its sampler and text stream, its KV blocks, and the events it sends.

use std::time::Instant;

use tokenizer::{Detokenizer, Tokenizer};

use super::grammar::GrammarState;
use super::logprobs::token_logprob;
use super::runner::SeqKv;
use super::stats::EngineStats;
use super::ticket::{CancelFlag, EmbedResult};
use super::types::{Embeddings, Event, FinishReason, Request, Timings, Usage};
use crate::sampler::Sampler;
use crate::stop::StopMatcher;

/// A running request.
pub(crate) struct Sequence {
    /// Numbers the requests of one loop in order of arrival, for the logs.
    pub id: u64,
    /// What it computes.
    pub work: Work,
    /// Its keys and values.
    pub kv: SeqKv,
    /// KV blocks set aside for it at admission (it never needs more).
    pub reserved_blocks: usize,
    pub cancel: CancelFlag,
    pub deadline: Option<Instant>,
    pub submitted: Instant,
    pub admitted: Instant,
}

/// The two kinds of request.
pub(crate) enum Work {
    Generate(Box<Generation>),
    Embed(Box<Embedding>),
}

/// What the forward pass should return for a sequence's rows this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowOutput {
    /// Nothing: a prompt chunk before the last.
    None,
    /// The logits of the last row.
    LastLogits,
    /// Every row's final hidden state.
    Hidden,
}

impl Work {
    /// The tokens to evaluate next (at most `max` of them) and what to return for them.
    pub fn next_input(&self, max: usize) -> (&[u32], RowOutput) {
        match self {
            Work::Generate(g) => {
                let end = g.tokens.len().min(g.n_evaluated.saturating_add(max));
                let output = if end == g.tokens.len() {
                    RowOutput::LastLogits
                } else {
                    RowOutput::None
                };
                (&g.tokens[g.n_evaluated..end], output)
            }
            Work::Embed(e) => {
                let input = e.inputs.get(e.current).map_or(&[][..], Vec::as_slice);
                let end = input.len().min(e.n_evaluated.saturating_add(max));
                (&input[e.n_evaluated.min(end)..end], RowOutput::Hidden)
            }
        }
    }

    /// Whether the sequence is still evaluating its prompt (not a one-row decode).
    pub fn is_prefilling(&self) -> bool {
        match self {
            Work::Generate(g) => g.n_evaluated < g.prompt_len,
            Work::Embed(_) => true,
        }
    }
}

impl Sequence {
    /// See [`Work::next_input`].
    pub fn next_input(&self, max: usize) -> (&[u32], RowOutput) {
        self.work.next_input(max)
    }

    /// See [`Work::is_prefilling`].
    pub fn is_prefilling(&self) -> bool {
        self.work.is_prefilling()
    }

    /// Timings from submission to now.
    fn timings(&self, first_token: Option<Instant>) -> Timings {
        Timings {
            queued: self.admitted.duration_since(self.submitted),
            ttft: first_token.map(|t| t.duration_since(self.submitted)),
            total: self.submitted.elapsed(),
        }
    }

    /// Ends the request: the last event, carrying what text was still held.
    pub fn finish(&mut self, finish: FinishReason, stats: &mut EngineStats) {
        stats.requests_total += 1;
        tracing::debug!(
            request = self.id,
            finish = finish.as_str(),
            "request finished"
        );
        let timings = match &self.work {
            Work::Generate(g) => self.timings(g.first_token_at),
            Work::Embed(_) => self.timings(None),
        };
        match &mut self.work {
            Work::Generate(g) => {
                // A stop string drops what was held; otherwise it is released.
                let text = if finish == FinishReason::Stop && g.stopped {
                    String::new()
                } else {
                    let rest = g.detokenizer.flush();
                    let mut text = g.stop.push(&rest).text;
                    text.push_str(&g.stop.finish());
                    text
                };
                let usage = Usage {
                    prompt_tokens: g.prompt_len,
                    completion_tokens: g.completion_tokens,
                    cached_tokens: g.cached_tokens,
                };
                let _ = g.events.send(Event::Done {
                    finish,
                    usage,
                    timings,
                    text,
                });
            }
            Work::Embed(e) => {
                if let Some(result) = e.result.take() {
                    let _ = result.send(Err(format!(
                        "the embedding request ended early: {}",
                        finish.as_str()
                    )));
                }
            }
        }
    }

    /// Ends the request with an engine-side error.
    pub fn fail(&mut self, message: String, stats: &mut EngineStats) {
        stats.requests_total += 1;
        tracing::debug!(request = self.id, %message, "request failed");
        match &mut self.work {
            Work::Generate(g) => {
                let _ = g.events.send(Event::Error(message));
            }
            Work::Embed(e) => {
                if let Some(result) = e.result.take() {
                    let _ = result.send(Err(message));
                }
            }
        }
    }

    /// Whether the one reading the results went away.
    pub fn is_abandoned(&self) -> bool {
        if self.cancel.is_cancelled() {
            return true;
        }
        match &self.work {
            Work::Generate(g) => g.events.is_closed(),
            Work::Embed(e) => e.result.as_ref().is_none_or(|r| r.is_closed()),
        }
    }
}

/// A generation request's state.
pub(crate) struct Generation {
    pub request: Request,
    pub events: tokio::sync::mpsc::UnboundedSender<Event>,
    sampler: Sampler,
    detokenizer: Detokenizer,
    stop: StopMatcher,
    /// The prompt, then every generated token fed back.
    tokens: Vec<u32>,
    prompt_len: usize,
    /// Tokens whose keys and values are cached.
    n_evaluated: usize,
    /// Prompt tokens taken from the prefix cache.
    cached_tokens: usize,
    completion_tokens: usize,
    submitted: Instant,
    first_token_at: Option<Instant>,
    last_token_at: Option<Instant>,
    /// A stop string ended the text.
    stopped: bool,
    /// The grammar the output must match, if any (see `super::grammar`).
    pub grammar: Option<Box<GrammarState>>,
}

impl Generation {
    /// The state of a request about to run.
    pub fn new(
        request: Request,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
        submitted: Instant,
        grammar: Option<GrammarState>,
    ) -> Self {
        let mut sampler = Sampler::new(request.sampler.clone());
        let prompt = &request.prompt;
        let start = prompt.len().saturating_sub(request.sampler.repeat_last_n);
        for &token in &prompt[start..] {
            sampler.accept(token);
        }
        let detokenizer = if request.special_text {
            Detokenizer::with_special_text()
        } else {
            Detokenizer::new()
        };
        Generation {
            stop: StopMatcher::new(&request.stop),
            tokens: request.prompt.clone(),
            prompt_len: request.prompt.len(),
            request,
            events,
            sampler,
            detokenizer,
            n_evaluated: 0,
            cached_tokens: 0,
            completion_tokens: 0,
            submitted,
            first_token_at: None,
            last_token_at: None,
            stopped: false,
            grammar: grammar.map(Box::new),
        }
    }

    /// Records that `n` more tokens were evaluated.
    pub fn evaluated(&mut self, n: usize) {
        self.n_evaluated += n;
    }

    /// Records that the first `n` prompt tokens are cached already (a shared prefix).
    pub fn skip_cached(&mut self, n: usize) {
        self.n_evaluated = n.min(self.prompt_len.saturating_sub(1));
        self.cached_tokens = self.n_evaluated;
    }

    /// The prompt, then every generated token fed back.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Whether the request wants no token at all.
    pub fn wants_nothing(&self) -> bool {
        self.request.max_tokens == 0
    }

    /// Samples the next token from `logits`, sends its event, and says whether the
    /// request is done (and why).
    pub fn on_logits(
        &mut self,
        logits: &[f32], // [n_vocab]
        tokenizer: &Tokenizer,
        n_ctx: usize,
        stats: &mut EngineStats,
    ) -> Result<Option<FinishReason>, String> {
        // Grammar hook: sample from the masked logits.
        let candidates = match &mut self.grammar {
            Some(grammar) => grammar.masked(logits)?,
            None => logits,
        };
        let token = self
            .sampler
            .sample(candidates)
            .map_err(|e| format!("sampling failed: {e}"))?;
        let now = Instant::now();
        match self.last_token_at {
            Some(last) => stats
                .itl_seconds
                .observe(now.duration_since(last).as_secs_f64()),
            None => {
                self.first_token_at = Some(now);
                stats
                    .ttft_seconds
                    .observe(now.duration_since(self.submitted).as_secs_f64());
            }
        }
        self.last_token_at = Some(now);
        self.completion_tokens += 1;
        stats.generated_tokens_total += 1;
        if self.request.stop_at_eog && tokenizer.is_eog(token) {
            return Ok(Some(FinishReason::Stop));
        }
        // Grammar hook: advance past the token; a complete grammar ends the output.
        let grammar_done = match &mut self.grammar {
            Some(grammar) => grammar.advance(token)?,
            None => false,
        };
        self.sampler.accept(token);
        let piece = self.detokenizer.push(tokenizer, token);
        let released = self.stop.push(&piece);
        let logprob = self
            .request
            .logprobs
            .map(|k| token_logprob(tokenizer, logits, token, k));
        let event = Event::Token {
            id: token,
            text: released.text,
            logprob,
        };
        if self.events.send(event).is_err() {
            return Ok(Some(FinishReason::Cancelled));
        }
        if released.stopped {
            self.stopped = true;
            return Ok(Some(FinishReason::Stop));
        }
        if grammar_done {
            return Ok(Some(FinishReason::Stop));
        }
        // The new token is fed back next step, which needs a free position.
        if self.completion_tokens >= self.request.max_tokens || self.tokens.len() >= n_ctx {
            return Ok(Some(FinishReason::Length));
        }
        self.tokens.push(token);
        Ok(None)
    }
}

/// An embedding request's state: its inputs run one after the other.
pub(crate) struct Embedding {
    inputs: Vec<Vec<u32>>,
    /// The input being evaluated.
    current: usize,
    /// Tokens of the current input evaluated.
    n_evaluated: usize,
    /// Sum of the current input's hidden states.
    sum: Vec<f64>, // [n_embd]
    vectors: Vec<Vec<f32>>,
    result: Option<tokio::sync::oneshot::Sender<EmbedResult>>,
}

/// What became of an embedding after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmbedProgress {
    /// The current input goes on.
    Continue,
    /// An input finished; the next one starts on an empty KV.
    NextInput,
    /// Every input is done and the result was sent.
    Done,
}

impl Embedding {
    /// The state of a request about to run.
    pub fn new(
        inputs: Vec<Vec<u32>>,
        result: tokio::sync::oneshot::Sender<EmbedResult>,
    ) -> Embedding {
        Embedding {
            inputs,
            current: 0,
            n_evaluated: 0,
            sum: Vec::new(),
            vectors: Vec::new(),
            result: Some(result),
        }
    }

    /// Adds the hidden states of the chunk just evaluated.
    pub fn on_hidden(
        &mut self,
        hidden: &[f32], // [n_rows, n_embd]
        n_embd: usize,
    ) -> EmbedProgress {
        if self.sum.len() != n_embd {
            self.sum = vec![0.0; n_embd];
        }
        let mut n_rows = 0;
        for row in hidden.chunks_exact(n_embd) {
            self.sum
                .iter_mut()
                .zip(row)
                .for_each(|(s, &x)| *s += f64::from(x));
            n_rows += 1;
        }
        self.n_evaluated += n_rows;
        let len = self.inputs.get(self.current).map_or(0, Vec::len);
        if self.n_evaluated < len {
            return EmbedProgress::Continue;
        }
        let mean: Vec<f64> = self.sum.iter().map(|s| s / len.max(1) as f64).collect();
        let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        self.vectors
            .push(mean.iter().map(|x| (x * scale) as f32).collect());
        self.sum.iter_mut().for_each(|s| *s = 0.0);
        self.current += 1;
        self.n_evaluated = 0;
        if self.current < self.inputs.len() {
            return EmbedProgress::NextInput;
        }
        let prompt_tokens = self.inputs.iter().map(Vec::len).sum();
        if let Some(result) = self.result.take() {
            let _ = result.send(Ok(Embeddings {
                vectors: std::mem::take(&mut self.vectors),
                prompt_tokens,
            }));
        }
        EmbedProgress::Done
    }
}
