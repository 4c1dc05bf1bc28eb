//! What goes into the engine loop and what comes out of it: settings, requests, events.

use std::time::{Duration, Instant};

use crate::sampler::SamplerParams;

/// Settings of one served model's engine loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Tokens (prompt and generated) one sequence may hold at most.
    pub n_ctx: usize,
    /// Bytes of KV cache shared by all sequences; `None` picks
    /// min(`n_ctx * max_running` tokens' worth, a quarter of the available memory).
    pub kv_budget_bytes: Option<usize>,
    /// Positions per KV block (16, 32 or 64 keep the attention's tiles whole).
    pub kv_block_tokens: usize,
    /// Sequences in the running batch at most.
    pub max_running: usize,
    /// Requests waiting for admission at most; more are refused with
    /// [`SubmitError::QueueFull`].
    pub max_queue: usize,
    /// Prompt tokens of one sequence evaluated per step (chunked prefill), so a long
    /// prompt does not stall the sequences that are generating.
    pub prefill_chunk: usize,
    /// Where repacked weights are cached between runs (see `model::LoadOptions`).
    pub pack_cache_dir: Option<std::path::PathBuf>,
    /// A Jinja chat template used instead of the model file's (`--chat-template`).
    pub chat_template: Option<String>,
    /// Keep the KV blocks of evaluated prefixes and share them with requests (running or
    /// later) whose prompts start the same, which then evaluate only the rest.
    pub prefix_cache: bool,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            n_ctx: crate::DEFAULT_N_CTX,
            kv_budget_bytes: None,
            kv_block_tokens: 32,
            max_running: 16,
            max_queue: 64,
            prefill_chunk: 256,
            pack_cache_dir: None,
            chat_template: None,
            prefix_cache: true,
        }
    }
}

/// One generation request, already templated and tokenized by the front end.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The prompt's tokens (BOS included when the model wants one).
    pub prompt: Vec<u32>,
    /// How to pick tokens (temperature 0 is greedy); the seed makes a request
    /// reproducible whatever else runs beside it.
    pub sampler: SamplerParams,
    /// The most tokens to generate; the engine also stops when the sequence reaches
    /// `n_ctx` (both finish with [`FinishReason::Length`]).
    pub max_tokens: usize,
    /// Stop strings: generation ends before the first one, which is not sent. Text that
    /// could be the start of one is withheld until it cannot.
    pub stop: Vec<String>,
    /// End at an end-of-generation token (normally true).
    pub stop_at_eog: bool,
    /// `Some(k)`: each token event carries its log-probability and the `k` most likely
    /// tokens' (k at most [`MAX_TOP_LOGPROBS`]).
    pub logprobs: Option<usize>,
    /// Past this instant the request finishes with [`FinishReason::Deadline`].
    pub deadline: Option<Instant>,
    /// A grammar the output must match (tokens that would leave it are never sampled).
    pub grammar: Option<crate::Grammar>,
    /// Render control tokens in the output as their text (tool-call markers such as
    /// `[TOOL_CALLS]` or `<|tool_call|>` are control tokens in some vocabularies); the
    /// end-of-generation token that ends the output is never rendered.
    pub special_text: bool,
}

impl Request {
    /// A greedy request for `max_tokens` tokens of `prompt`, ending at end of generation.
    pub fn new(prompt: Vec<u32>, max_tokens: usize) -> Request {
        Request {
            prompt,
            sampler: SamplerParams::greedy(),
            max_tokens,
            stop: Vec::new(),
            stop_at_eog: true,
            logprobs: None,
            deadline: None,
            grammar: None,
            special_text: false,
        }
    }
}

/// The most alternatives a token event lists (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The request's grammar or JSON Schema cannot be compiled (llguidance's message).
    #[error("{0}")]
    InvalidGrammar(crate::constraint::ConstraintError),
    /// The admission queue is full: retry later.
    #[error("the server is busy: {max_queue} requests are already waiting; retry later")]
    QueueFull {
        /// The queue's size.
        max_queue: usize,
    },
    /// The prompt leaves no room to generate in the context.
    #[error("the prompt has {prompt} tokens but the context holds {n_ctx}; shorten the prompt")]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt: usize,
        /// Tokens a sequence may hold.
        n_ctx: usize,
    },
    /// A request needs at least one prompt token.
    #[error("the prompt is empty; give at least one token")]
    EmptyPrompt,
    /// A prompt token is not in the model's vocabulary.
    #[error("token id {0} is outside the model's vocabulary")]
    InvalidToken(u32),
    /// The engine stopped admitting requests.
    #[error("the model is shutting down; retry on another server")]
    ShuttingDown,
    /// The request needs more KV blocks than the whole cache has: it can never run.
    #[error("the request needs {needed_blocks} KV cache blocks but the cache has only {total_blocks}; ask for fewer tokens or give the server a larger KV budget")]
    KvTooSmall {
        /// Blocks for the prompt and the tokens asked for.
        needed_blocks: usize,
        /// Blocks in the cache.
        total_blocks: usize,
    },
    /// More alternatives than a token event may list.
    #[error("{asked} top log-probabilities were asked for, at most {max} are given")]
    TooManyLogprobs {
        /// Asked for.
        asked: usize,
        /// The limit, [`MAX_TOP_LOGPROBS`].
        max: usize,
    },
}

/// What the engine sends for a request, in order: tokens, then exactly one `Done` or
/// `Error`, then nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One generated token, with the text it released: may be "" while a stop string or
    /// an incomplete UTF-8 sequence is pending, or hold text of earlier tokens.
    Token {
        /// The token.
        id: u32,
        /// Text released by this token.
        text: String,
        /// Present when the request asked for logprobs.
        logprob: Option<TokenLogprob>,
    },
    /// The request ended.
    Done {
        /// Why.
        finish: FinishReason,
        /// Token counts.
        usage: Usage,
        /// Where the time went.
        timings: Timings,
        /// Text withheld until the end (the start of a stop string that never came, an
        /// incomplete UTF-8 sequence as U+FFFD); usually empty. Shown after the tokens'.
        text: String,
    },
    /// An engine-side failure of this request alone (the loop goes on).
    Error(String),
}

/// The log-probability of a generated token and its most likely alternatives, from the
/// model's raw logits (before penalties and temperature).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token.
    pub token: u32,
    /// Its text (invalid UTF-8 as U+FFFD).
    pub text: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Natural log of its probability.
    pub logprob: f32,
    /// The most likely tokens, best first: (id, text, bytes, logprob).
    pub top: Vec<(u32, String, Vec<u8>, f32)>,
}

/// Why a request finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` generated, or the context is full.
    Length,
    /// The ticket was dropped or cancelled, or the engine shut down first.
    Cancelled,
    /// The request's deadline passed.
    Deadline,
}

impl FinishReason {
    /// The OpenAI-style name: `stop`, `length`, `cancelled`, `deadline`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
            FinishReason::Deadline => "deadline",
        }
    }
}

/// Tokens a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (an end-of-generation token included).
    pub completion_tokens: usize,
    /// Of the prompt's tokens, those served from the prefix cache instead of evaluated.
    pub cached_tokens: usize,
}

/// Where a request's time went, all from its submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// Waiting for admission.
    pub queued: Duration,
    /// Until the first token (`None` when none came).
    pub ttft: Option<Duration>,
    /// Until the end.
    pub total: Duration,
}

/// The result of an embedding request: one vector per input.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Mean-pooled final hidden states (after the output norm), L2-normalized,
    /// `[n_inputs][n_embd]`.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of all inputs.
    pub prompt_tokens: usize,
}
