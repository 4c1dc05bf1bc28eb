//! Sessions over a loaded model: sampling, chat templates, generation with stop
//! sequences, perplexity; and [`serve`], the loop that serves many clients at once with
//! continuous batching over a block KV cache; and [`bench`], speed as llama-bench
//! measures it. The library API that the CLI and the server call.
//!
//! The engine knows nothing of HTTP or terminals: text comes out through callbacks or
//! ticket events, errors are [`EngineError`] and [`SubmitError`] values.

pub mod bench;
pub mod chat;
pub mod constraint;
mod error;
mod info;
pub mod perplexity;
mod rng;
pub mod sampler;
pub mod serve;
mod session;
pub mod stop;
pub mod tools;

pub use chat::{
    ChatTemplate, Message, Role, SpecialTokens, TemplateError, TemplateOrigin, ToolCall, ToolSpec,
};
pub use constraint::Grammar;
pub use error::EngineError;
pub use info::ModelInfo;
pub use sampler::{SampleError, Sampler, SamplerParams};
pub use serve::{
    EmbedTicket, Embeddings, Engine, EngineConfig, EngineStats, Event, FinishReason, Histogram,
    Request, SubmitError, Ticket, Timings, TokenLogprob, Usage,
};
pub use session::PerplexityResult;
pub use session::{
    Flow, GenerateParams, Generation, Session, SessionOptions, StopReason, DEFAULT_N_CTX,
};
pub use stop::StopMatcher;
pub use tokenizer::{Detokenizer, Tokenizer};
pub use tools::{ToolChoice, ToolFormat};

/// Sizes the compute thread pool; call once, before loading a model.
pub fn set_threads(n_threads: usize) {
    kernels::set_threads(n_threads);
}

/// Opens a GGUF file and reads only its tokenizer (no weights are touched).
pub fn load_tokenizer(path: impl AsRef<std::path::Path>) -> Result<Tokenizer, EngineError> {
    let path = path.as_ref();
    let file = gguf::GgufFile::open(path).map_err(|source| EngineError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Tokenizer::from_gguf(&file).map_err(|source| EngineError::Tokenizer {
        path: path.to_path_buf(),
        source,
    })
}
