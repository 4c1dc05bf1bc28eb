//! A loaded model with its tokenizer and KV cache: generation and perplexity.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gguf::GgufFile;
use model::{KvCache, LoadOptions, Logits, Model, ModelConfig};
use tokenizer::Tokenizer;

use crate::chat::{ChatTemplate, Message, ToolSpec};
use crate::error::EngineError;
use crate::sampler::{Sampler, SamplerParams};

mod generate;
mod perplexity;

pub use generate::{Flow, GenerateParams, Generation, StopReason};
pub use perplexity::PerplexityResult;

/// The context size used when none is asked for, unless the model was trained on less.
pub const DEFAULT_N_CTX: usize = 4096;

/// How to set up a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// KV cache size in tokens; `None` = min([`DEFAULT_N_CTX`], the model's training
    /// context).
    pub n_ctx: Option<usize>,
    /// Where repacked weights are cached between runs (see `model::LoadOptions`);
    /// `None` repacks in memory at every load.
    pub pack_cache_dir: Option<std::path::PathBuf>,
    /// A Jinja chat template used instead of the file's (`--chat-template`).
    pub chat_template: Option<String>,
}

/// A model ready to generate: weights, tokenizer, chat format and a KV cache.
///
/// The session remembers which tokens its cache holds, so a request whose prompt starts
/// with the previous request's tokens (the next turn of a chat) only evaluates what is new.
pub struct Session {
    model: Model,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    has_chat_template: bool,
    cache: KvCache,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<u32>,
    load_time: Duration,
    /// The last forward pass's logits: [n_rows, n_vocab].
    logits: Vec<f32>,
    /// Compiles grammars; built on the first request with one.
    constraints: crate::constraint::LazyCompiler,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("architecture", &self.model.config().architecture)
            .field("n_ctx", &self.cache.capacity())
            .field("cached", &self.cached.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a GGUF file and loads its model and tokenizer; the time this takes is kept
    /// ([`Session::load_time`]).
    pub fn load(path: impl AsRef<Path>, options: &SessionOptions) -> Result<Session, EngineError> {
        let path = path.as_ref();
        let _span = tracing::info_span!("load", path = %path.display()).entered();
        let start = Instant::now();
        let file = Arc::new(GgufFile::open(path).map_err(|source| EngineError::Open {
            path: path.to_path_buf(),
            source,
        })?);
        let tokenizer = Tokenizer::from_gguf(&file).map_err(|source| EngineError::Tokenizer {
            path: path.to_path_buf(),
            source,
        })?;
        let has_chat_template = file.get("tokenizer.chat_template").is_some();
        let template =
            ChatTemplate::for_model(&file, &tokenizer, options.chat_template.as_deref())?;
        let load_options = LoadOptions {
            pack_cache_dir: options.pack_cache_dir.clone(),
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
        let config = model.config();
        let n_ctx = match options.n_ctx {
            Some(n) => n,
            None => DEFAULT_N_CTX.min(config.n_ctx_train.max(1)),
        };
        if n_ctx < 1 {
            return Err(EngineError::ContextTooSmall { n_ctx, min: 1 });
        }
        if n_ctx > config.n_ctx_train {
            tracing::warn!(
                n_ctx,
                n_ctx_train = config.n_ctx_train,
                "the context is larger than the model was trained for; expect worse output past it"
            );
        }
        let cache = model.new_cache(n_ctx);
        let load_time = start.elapsed();
        tracing::info!(
            architecture = %config.architecture,
            n_ctx,
            template = %template.describe(),
            load_ms = load_time.as_millis() as u64,
            "model loaded"
        );
        Ok(Session {
            model,
            tokenizer,
            template,
            has_chat_template,
            cache,
            cached: Vec::new(),
            load_time,
            logits: Vec::new(),
            constraints: Default::default(),
        })
    }

    /// The model's hyperparameters.
    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template used for this model (its source: [`ChatTemplate::source`]).
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// True when the file carries a chat template: an instruction-tuned model, which
    /// completion front ends give a user message in its chat format. A file without one
    /// (a base model such as Gemma 3 270M) completes raw text; chatting with it uses
    /// [`Session::template`], a built-in template for its family.
    pub fn is_chat_model(&self) -> bool {
        self.has_chat_template
    }

    /// The KV cache size in tokens.
    pub fn n_ctx(&self) -> usize {
        self.cache.capacity()
    }

    /// How long loading took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The logits (`[n_vocab]`) of the last token evaluated: after a generation with
    /// `max_tokens` 0, the prompt's last token's, from which the first token would be drawn.
    pub fn last_logits(&self) -> &[f32] {
        &self.logits
    }

    /// Tokens for a raw prompt: BOS as the model's metadata says, special-token text
    /// parsed (as llama.cpp's completion tools do).
    pub fn raw_prompt_tokens(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, true, true)
    }

    /// Tokens for a conversation (and the tools the model may call) rendered by the
    /// model's chat template, ending with the opening of the assistant's turn.
    pub fn chat_prompt_tokens(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> Result<Vec<u32>, EngineError> {
        let text = self.template.render(messages, tools, true)?;
        Ok(self.tokenizer.encode(&text, true, true))
    }

    /// Forgets the cached tokens (a new conversation).
    pub fn clear(&mut self) {
        self.cache.clear();
        self.cached.clear();
    }

    /// Makes the cache hold exactly `tokens` and leaves the logits of the last one in
    /// `self.logits`. Reuses the longest common prefix of what the cache holds; at least the
    /// last token is evaluated again, for its logits. Returns how many tokens were
    /// evaluated.
    fn evaluate_prompt(&mut self, tokens: &[u32]) -> Result<usize, EngineError> {
        let common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        let reuse = common.min(tokens.len().saturating_sub(1));
        self.cache.truncate(reuse);
        self.cached.truncate(reuse);
        let new = &tokens[reuse..];
        tracing::debug!(reused = reuse, evaluated = new.len(), "prompt");
        // The model splits long batches itself, bounding the activations' memory.
        self.forward(new, Logits::Last)?;
        Ok(new.len())
    }

    /// One forward pass over `tokens`, appended to the cache.
    fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<(), EngineError> {
        let result = self
            .model
            .forward(tokens, &mut self.cache, logits, &mut self.logits);
        if let Err(err) = result {
            // The cache may hold part of the batch: drop what `cached` does not describe.
            self.cache.truncate(self.cached.len());
            return Err(EngineError::Forward(err));
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// A sampler for one request, primed with the prompt for the repetition penalties.
    fn sampler_for(params: &SamplerParams, prompt: &[u32]) -> Sampler {
        let mut sampler = Sampler::new(params.clone());
        let start = prompt.len().saturating_sub(params.repeat_last_n);
        for &token in &prompt[start..] {
            sampler.accept(token);
        }
        sampler
    }
}
