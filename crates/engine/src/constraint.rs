//! Constrained decoding: what a request's output must match. The sampler masks every token
//! that would leave the grammar, so the output parses by construction.
//!
//! A [`Grammar`] is compiled by llguidance against the model's vocabulary: a
//! [`ConstraintCompiler`] holds the token trie and the lexer slices of one model (built
//! once, on the first grammar a model sees, by [`LazyCompiler`]), and each request gets
//! its own [`Constraint`], which computes the allowed tokens before each sampling
//! ([`TokenMask`]) and advances with each sampled token.

mod vocabulary;

#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{SimpleVob, TokEnv};

use tokenizer::Tokenizer;

pub use vocabulary::TokenVocabulary;

/// A grammar the generated text must match, from the start of the output to its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// Any JSON object (OpenAI `response_format: json_object`, Ollama `format: "json"`).
    JsonObject,
    /// JSON valid under this JSON Schema. `strict` (OpenAI structured outputs) refuses
    /// schema features that cannot be enforced instead of loosening them.
    JsonSchema {
        /// The schema.
        schema: serde_json::Value,
        /// Refuse what cannot be enforced.
        strict: bool,
    },
    /// A regular expression over the whole output.
    Regex(String),
    /// A Lark grammar (llguidance's dialect: `%json { … }` embeds a JSON Schema, special
    /// tokens are written `<|name|>`).
    Lark(String),
}

/// Why a grammar cannot be used, or stopped working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The grammar or schema does not compile; the message is llguidance's.
    #[error("the grammar or JSON Schema cannot be used: {0}")]
    Invalid(String),
    /// The model's vocabulary cannot be turned into a token trie.
    #[error("the model's vocabulary cannot be used for constrained decoding: {0}")]
    Vocabulary(String),
    /// The matcher failed while generating (a bug or a limit of llguidance).
    #[error("constrained decoding failed: {0}")]
    Matcher(String),
    /// The grammar allows no token here, not even the end of generation.
    #[error("the grammar allows no token at this point of the output")]
    NoTokenAllowed,
}

/// Compiles grammars against one model's vocabulary.
pub struct ConstraintCompiler {
    factory: ParserFactory,
}

impl std::fmt::Debug for ConstraintCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintCompiler")
            .field("n_vocab", &self.factory.tok_env().tok_trie().vocab_size())
            .finish_non_exhaustive()
    }
}

impl ConstraintCompiler {
    /// A compiler for the vocabulary of `tokenizer`.
    pub fn new(tokenizer: &Tokenizer) -> Result<ConstraintCompiler, ConstraintError> {
        ConstraintCompiler::from_vocabulary(TokenVocabulary::from_tokenizer(tokenizer))
    }

    /// A compiler for a vocabulary given as bytes per token.
    pub fn from_vocabulary(
        vocabulary: TokenVocabulary,
    ) -> Result<ConstraintCompiler, ConstraintError> {
        let env: TokEnv = Arc::new(vocabulary.into_env()?);
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| ConstraintError::Vocabulary(e.to_string()))?;
        // Warnings go nowhere: a bad grammar is reported to the caller as an error.
        factory.quiet();
        Ok(ConstraintCompiler { factory })
    }

    /// Compiles `grammar` into a fresh matcher at the start of the output.
    pub fn compile(&self, grammar: &Grammar) -> Result<Constraint, ConstraintError> {
        let top = top_level(grammar)?;
        let parser = self
            .factory
            .create_parser(top)
            .map_err(|e| ConstraintError::Invalid(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(error) = matcher.get_error() {
            return Err(ConstraintError::Invalid(error));
        }
        Ok(Constraint {
            matcher,
            mask_micros: 0,
            n_masks: 0,
        })
    }
}

/// Whitespace llguidance lets JSON output have between two tokens: enough for the
/// indented layout models were trained on, bounded so a small model cannot fill its token
/// budget with blank lines (llguidance's default is unbounded).
pub const JSON_WHITESPACE: &str = r"[\x20\x0A\x0D\x09]{1,32}";

/// JSON output options: bounded whitespace, and `lenient` where the schema need not be
/// enforced to the letter (unsupported keywords are then ignored, not refused).
pub(crate) fn json_options(strict: bool) -> serde_json::Value {
    serde_json::json!({
        "whitespace_pattern": JSON_WHITESPACE,
        "lenient": !strict,
    })
}

/// llguidance's form of a grammar.
fn top_level(grammar: &Grammar) -> Result<TopLevelGrammar, ConstraintError> {
    Ok(match grammar {
        Grammar::JsonObject => {
            let mut schema = serde_json::json!({ "type": "object" });
            schema["x-guidance"] = json_options(false);
            TopLevelGrammar::from_json_schema(schema)
        }
        Grammar::JsonSchema { schema, strict } => {
            let mut schema = schema.clone();
            match &mut schema {
                serde_json::Value::Object(map) => {
                    map.entry("x-guidance")
                        .or_insert_with(|| json_options(*strict));
                }
                serde_json::Value::Bool(_) => {}
                _ => {
                    return Err(ConstraintError::Invalid(
                        "a JSON Schema must be an object or a boolean".to_string(),
                    ))
                }
            }
            TopLevelGrammar::from_json_schema(schema)
        }
        Grammar::Regex(regex) => TopLevelGrammar::from_regex(regex),
        Grammar::Lark(lark) => TopLevelGrammar::from_lark(lark.clone()),
    })
}

/// A compiler built on first use: models that never see a grammar never build the trie.
#[derive(Default)]
pub struct LazyCompiler {
    cell: OnceLock<Result<ConstraintCompiler, ConstraintError>>,
}

impl std::fmt::Debug for LazyCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyCompiler")
            .field("built", &self.cell.get().is_some())
            .finish()
    }
}

impl LazyCompiler {
    /// Compiles `grammar`, building the compiler for `tokenizer` on the first call.
    /// Every call must pass the same tokenizer.
    pub fn compile(
        &self,
        tokenizer: &Tokenizer,
        grammar: &Grammar,
    ) -> Result<Constraint, ConstraintError> {
        let compiler = self.cell.get_or_init(|| {
            let start = std::time::Instant::now();
            let compiler = ConstraintCompiler::new(tokenizer);
            tracing::debug!(
                ms = start.elapsed().as_millis() as u64,
                "grammar compiler built"
            );
            compiler
        });
        match compiler {
            Ok(compiler) => compiler.compile(grammar),
            Err(error) => Err(error.clone()),
        }
    }
}

/// One request's grammar state.
pub struct Constraint {
    matcher: Matcher,
    /// Time spent computing masks, for [`Constraint::mean_mask_micros`].
    mask_micros: u64,
    n_masks: u64,
}

impl Clone for Constraint {
    /// An independent copy at the same point of the output.
    fn clone(&self) -> Constraint {
        Constraint {
            matcher: self.matcher.deep_clone(),
            mask_micros: self.mask_micros,
            n_masks: self.n_masks,
        }
    }
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("stopped", &self.matcher.is_stopped())
            .finish_non_exhaustive()
    }
}

impl Constraint {
    /// The tokens the grammar allows next: the end-of-generation tokens only where the
    /// output may end here.
    pub fn compute_mask(&mut self) -> Result<TokenMask, ConstraintError> {
        let start = std::time::Instant::now();
        let allowed = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| ConstraintError::Matcher(e.to_string()))?;
        self.mask_micros += start.elapsed().as_micros() as u64;
        self.n_masks += 1;
        if allowed.is_zero() {
            return Err(ConstraintError::NoTokenAllowed);
        }
        Ok(TokenMask { allowed })
    }

    /// Advances past a sampled token.
    pub fn commit(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| ConstraintError::Matcher(e.to_string()))
    }

    /// Whether the grammar is complete and allows nothing more: generation should end.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// Whether the output may end here.
    pub fn is_accepting(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }

    /// Masks computed so far and their mean time in microseconds.
    pub fn mask_stats(&self) -> (u64, f64) {
        let mean = if self.n_masks == 0 {
            0.0
        } else {
            self.mask_micros as f64 / self.n_masks as f64
        };
        (self.n_masks, mean)
    }
}

/// The tokens allowed at one step.
#[derive(Debug, Clone)]
pub struct TokenMask {
    allowed: SimpleVob,
}

impl TokenMask {
    /// Whether `token` may be sampled.
    pub fn allows(&self, token: u32) -> bool {
        (token as usize) < self.allowed.len() && self.allowed.is_allowed(token)
    }

    /// The number of allowed tokens.
    pub fn count(&self) -> usize {
        self.allowed.num_set()
    }

    /// Sets the logit of every token the grammar forbids to -inf; ids past the
    /// vocabulary (padding rows of the output matrix) are forbidden too.
    pub fn apply(
        &self,
        logits: &mut [f32], // [n_vocab]
    ) {
        let words = self.allowed.as_slice();
        for (chunk_idx, chunk) in logits.chunks_mut(32).enumerate() {
            let word = words.get(chunk_idx).copied().unwrap_or(0);
            if word == u32::MAX && chunk.len() == 32 {
                continue;
            }
            for (bit, logit) in chunk.iter_mut().enumerate() {
                if word & (1 << bit) == 0 {
                    *logit = f32::NEG_INFINITY;
                }
            }
        }
    }
}
