//! Generation: prompt evaluation, then sample → detokenize → stop check → forward.

use std::time::{Duration, Instant};

use model::Logits;
use tokenizer::Detokenizer;

use super::Session;
use crate::constraint::{Constraint, Grammar};
use crate::error::EngineError;
use crate::sampler::SamplerParams;
use crate::stop::StopMatcher;

/// What one request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// The most tokens to generate.
    pub max_tokens: usize,
    /// How to pick tokens.
    pub sampling: SamplerParams,
    /// Generation ends before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
    /// A grammar the output must match; generation ends when it is complete.
    pub grammar: Option<Grammar>,
}

impl Default for GenerateParams {
    fn default() -> GenerateParams {
        GenerateParams {
            max_tokens: 512,
            sampling: SamplerParams::default(),
            stop: Vec::new(),
            grammar: None,
        }
    }
}

/// The caller's answer to each piece of text: go on or stop here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Generate the next token.
    Continue,
    /// End generation now (e.g. the user pressed Ctrl-C).
    Stop,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token (not part of the output).
    EndOfGeneration,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// A stop string appeared (not part of the output).
    StopSequence,
    /// The KV cache is full.
    ContextFull,
    /// The caller returned [`Flow::Stop`].
    Cancelled,
    /// The grammar was complete and allowed nothing more.
    GrammarComplete,
}

impl StopReason {
    /// A short description for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndOfGeneration => "end of generation token",
            StopReason::MaxTokens => "max tokens",
            StopReason::StopSequence => "stop sequence",
            StopReason::ContextFull => "context full",
            StopReason::Cancelled => "cancelled",
            StopReason::GrammarComplete => "grammar complete",
        }
    }
}

/// The result of one request, with timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated token ids (an end-of-generation token is not included).
    pub tokens: Vec<u32>,
    /// The text shown through the callback, in full.
    pub text: String,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Tokens in the prompt.
    pub n_prompt_tokens: usize,
    /// Prompt tokens actually evaluated (the rest were already in the cache).
    pub n_prompt_evaluated: usize,
    /// Time to evaluate the prompt.
    pub prompt_time: Duration,
    /// Time from the end of the prompt to the last token.
    pub generation_time: Duration,
    /// With a grammar: the masks computed and their mean time in microseconds.
    pub grammar_masks: Option<(u64, f64)>,
}

impl Generation {
    /// Prompt tokens evaluated per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.n_prompt_evaluated, self.prompt_time)
    }

    /// Generated tokens per second.
    pub fn generated_tokens_per_second(&self) -> f64 {
        per_second(self.tokens.len(), self.generation_time)
    }
}

fn per_second(n: usize, time: Duration) -> f64 {
    let seconds = time.as_secs_f64();
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Text bookkeeping of one request: UTF-8 assembly, stop strings, the full output.
struct TextStream {
    detokenizer: Detokenizer,
    stop: StopMatcher,
    text: String,
}

impl TextStream {
    /// Adds a token's text; returns the part to show and whether a stop string completed.
    fn push(&mut self, session: &Session, token: u32) -> (String, bool) {
        let piece = self.detokenizer.push(&session.tokenizer, token);
        let released = self.stop.push(&piece);
        self.text.push_str(&released.text);
        (released.text, released.stopped)
    }

    /// The text still held back (incomplete UTF-8, a possible stop prefix) at the end.
    fn finish(&mut self) -> String {
        let rest = self.detokenizer.flush();
        let mut out = self.stop.push(&rest).text;
        out.push_str(&self.stop.finish());
        self.text.push_str(&out);
        out
    }
}

impl Session {
    /// Generates a continuation of `prompt`. `on_text` is called once per generated token
    /// with the text that became showable (often the token's piece; empty while UTF-8 or a
    /// possible stop string is incomplete), and once more at the end if text was held
    /// back; returning [`Flow::Stop`] ends generation.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        mut on_text: impl FnMut(&str) -> Flow,
    ) -> Result<Generation, EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let n_ctx = self.n_ctx();
        if prompt.len() > n_ctx {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: prompt.len(),
                n_ctx,
            });
        }
        let mut constraint = match &params.grammar {
            Some(grammar) => Some(self.constraints.compile(&self.tokenizer, grammar)?),
            None => None,
        };
        let prompt_start = Instant::now();
        let n_prompt_evaluated = self.evaluate_prompt(prompt)?;
        let prompt_time = prompt_start.elapsed();

        let generation_start = Instant::now();
        let mut sampler = Session::sampler_for(&params.sampling, prompt);
        let mut stream = TextStream {
            detokenizer: Detokenizer::new(),
            stop: StopMatcher::new(&params.stop),
            text: String::new(),
        };
        let mut tokens = Vec::new();
        let mut masked = Vec::new();
        let stop_reason = loop {
            if tokens.len() >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            let token = match &mut constraint {
                Some(constraint) => {
                    sample_masked(constraint, &mut sampler, &self.logits, &mut masked)?
                }
                None => sampler.sample(&self.logits)?,
            };
            if self.tokenizer.is_eog(token) {
                break StopReason::EndOfGeneration;
            }
            sampler.accept(token);
            tokens.push(token);
            let (text, stopped) = stream.push(self, token);
            let flow = on_text(&text);
            if stopped {
                break StopReason::StopSequence;
            }
            if flow == Flow::Stop {
                break StopReason::Cancelled;
            }
            if constraint.as_ref().is_some_and(Constraint::is_finished) {
                break StopReason::GrammarComplete;
            }
            // The last token needs no forward pass: nothing will be sampled after it.
            if tokens.len() >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if self.cache.len() >= self.cache.capacity() {
                break StopReason::ContextFull;
            }
            self.forward(&[token], Logits::Last)?;
        };
        if stop_reason != StopReason::StopSequence {
            let rest = stream.finish();
            if !rest.is_empty() {
                on_text(&rest);
            }
        }
        tracing::debug!(
            n_tokens = tokens.len(),
            reason = stop_reason.as_str(),
            "generation done"
        );
        Ok(Generation {
            tokens,
            text: stream.text,
            stop_reason,
            n_prompt_tokens: prompt.len(),
            n_prompt_evaluated,
            prompt_time,
            generation_time: generation_start.elapsed(),
            grammar_masks: constraint.map(|c| c.mask_stats()),
        })
    }
}

/// Samples from `logits` with every token the grammar forbids masked out (in a copy, so
/// the session's logits stay raw), and advances the grammar past the token.
fn sample_masked(
    constraint: &mut Constraint,
    sampler: &mut crate::Sampler,
    logits: &[f32],        // [n_vocab]
    masked: &mut Vec<f32>, // [n_vocab]
) -> Result<u32, EngineError> {
    let mask = constraint.compute_mask()?;
    masked.clear();
    masked.extend_from_slice(logits);
    mask.apply(masked);
    let token = sampler.sample(masked)?;
    constraint.commit(token)?;
    Ok(token)
}
