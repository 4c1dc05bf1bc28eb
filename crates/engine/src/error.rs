//! The engine's error type.

use std::path::PathBuf;

use crate::sampler::SampleError;

/// What went wrong in a session.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file could not be opened or is not valid GGUF.
    #[error("cannot read model file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: gguf::GgufError,
    },
    /// The file is GGUF but the model in it cannot be run.
    #[error("cannot load the model in {path}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: model::ModelError,
    },
    /// The file's tokenizer metadata cannot be used.
    #[error("cannot load the tokenizer of {path}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokenizer::TokenizerError,
    },
    /// The forward pass failed.
    #[error("the forward pass failed")]
    Forward(#[source] model::ModelError),
    /// The context size asked for is unusable.
    #[error("context size {n_ctx} is invalid: it must be at least {min}")]
    ContextTooSmall {
        /// Asked for.
        n_ctx: usize,
        /// The smallest accepted.
        min: usize,
    },
    /// The prompt does not fit in the context.
    #[error("the prompt has {prompt_tokens} tokens but the context holds only {n_ctx}; shorten the prompt or use a larger context")]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The session's context size.
        n_ctx: usize,
    },
    /// Generation needs at least one prompt token.
    #[error("the prompt is empty and the model adds no BOS token; give a non-empty prompt")]
    EmptyPrompt,
    /// The grammar cannot be compiled, or failed during generation.
    #[error(transparent)]
    Grammar(#[from] crate::constraint::ConstraintError),
    /// No token could be sampled.
    #[error(transparent)]
    Sample(#[from] SampleError),
    /// The text is too short for a perplexity run at this context size.
    #[error("perplexity with a context of {n_ctx} needs at least {needed} tokens, the text has {n_tokens}; use a longer text or a smaller context")]
    TextTooShort {
        /// Tokens in the text.
        n_tokens: usize,
        /// The context size.
        n_ctx: usize,
        /// Tokens needed (two contexts' worth, as llama-perplexity asks).
        needed: usize,
    },
    /// A bench run needs more positions than the model was trained for.
    #[error("a bench of {n_prompt} prompt tokens, or {n_gen} generated after {depth}, needs more positions than the model's training context of {n_ctx_train}; lower -p, -n or --depth")]
    BenchTooLong {
        /// Prompt tokens asked for.
        n_prompt: usize,
        /// Cached tokens before generation.
        depth: usize,
        /// Generated tokens asked for.
        n_gen: usize,
        /// The model's training context.
        n_ctx_train: usize,
    },
    /// A token id is outside the model's vocabulary.
    #[error("token id {token} is outside the model's vocabulary of {n_vocab}; the tokenizer and the model disagree, the file is broken")]
    TokenOutOfRange {
        /// The id.
        token: u32,
        /// The vocabulary size.
        n_vocab: usize,
    },
    /// The engine loop's thread could not be started.
    #[error("cannot start the engine thread")]
    Thread(#[source] std::io::Error),
    /// The chat template cannot render the conversation (or does not compile).
    #[error(transparent)]
    Template(#[from] crate::chat::TemplateError),
    /// An engine setting is unusable.
    #[error("engine setting {setting} is invalid: {reason}")]
    BadConfig {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}
