//! Picking the next token from a row of logits, as llama.cpp's default sampler chain does.
//!
//! The chain, in llama.cpp's default order (`common/sampling.cpp`): penalties → top-k →
//! (typical: off) → top-p → min-p → temperature → draw from the distribution. A temperature of
//! 0 or below is greedy: the most probable token after penalties, with no random draw.

use std::collections::{HashMap, VecDeque};

use crate::rng::Rng;

#[cfg(test)]
mod tests;

/// Sampling settings. [`Default`] gives llama.cpp's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerParams {
    /// Divides the logits; 0 or below means greedy (argmax). llama.cpp default 0.8.
    pub temperature: f32,
    /// Keep only the `top_k` most probable tokens; 0 turns it off. Default 40.
    pub top_k: usize,
    /// Keep the smallest set of most probable tokens whose probabilities sum to at least
    /// `top_p`; 1 turns it off. Default 0.95.
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the best one's; 0 turns it off.
    /// Default 0.05.
    pub min_p: f32,
    /// Divides positive (multiplies negative) logits of tokens seen in the last
    /// `repeat_last_n` tokens; 1 turns it off (the default).
    pub repeat_penalty: f32,
    /// How many recent tokens (prompt included) the penalties look at; 0 turns them off.
    /// Default 64.
    pub repeat_last_n: usize,
    /// Subtracted from a token's logit once per occurrence in the recent tokens. Default 0.
    pub frequency_penalty: f32,
    /// Subtracted from a token's logit if it occurs in the recent tokens. Default 0.
    pub presence_penalty: f32,
    /// Seed of the random draw: the same seed and settings give the same tokens.
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> SamplerParams {
        SamplerParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 0,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding: always the most probable token.
    pub fn greedy() -> SamplerParams {
        SamplerParams {
            temperature: 0.0,
            ..SamplerParams::default()
        }
    }
}

/// Why no token could be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// Every logit is -inf or NaN (after penalties), so no token has any probability.
    #[error("no token can be sampled: all {n_vocab} logits are -inf or NaN; the model produced invalid output")]
    NoCandidates {
        /// Length of the logits row.
        n_vocab: usize,
    },
}

/// One token still in the running: its id, logit and (after a softmax) probability.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: u32,
    logit: f32,
    p: f32,
}

/// A sampler: the settings, the random generator and the recent tokens for penalties.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplerParams,
    rng: Rng,
    recent: VecDeque<u32>,
    candidates: Vec<Candidate>,
}

impl Sampler {
    /// A sampler with these settings, its generator seeded from `params.seed`.
    pub fn new(params: SamplerParams) -> Sampler {
        Sampler {
            rng: Rng::new(params.seed),
            params,
            recent: VecDeque::new(),
            candidates: Vec::new(),
        }
    }

    /// The settings.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Records a token (of the prompt or generated) for the repetition penalties.
    pub fn accept(&mut self, token: u32) {
        if self.params.repeat_last_n == 0 {
            return;
        }
        if self.recent.len() == self.params.repeat_last_n {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
    }

    /// Forgets the recent tokens (the random generator goes on).
    pub fn reset(&mut self) {
        self.recent.clear();
    }

    /// Picks the next token from `logits` (one row, `[n_vocab]`). Does not record it: call
    /// [`Sampler::accept`] with the token that is kept.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, SampleError> {
        let no_candidates = SampleError::NoCandidates {
            n_vocab: logits.len(),
        };
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(logits.iter().enumerate().map(|(id, &logit)| Candidate {
            // Token ids fit in u32: vocabularies are read as u32 counts.
            id: id as u32,
            logit: if logit.is_nan() {
                f32::NEG_INFINITY
            } else {
                logit
            },
            p: 0.0,
        }));
        self.apply_penalties(&mut candidates);
        candidates.retain(|c| c.logit > f32::NEG_INFINITY);
        let picked = if candidates.is_empty() {
            Err(no_candidates)
        } else if self.params.temperature <= 0.0 {
            Ok(argmax(&candidates))
        } else {
            self.sample_from(&mut candidates);
            Ok(self.draw(&candidates))
        };
        self.candidates = candidates;
        picked
    }

    /// Repetition, frequency and presence penalties over the recent tokens, as llama.cpp's
    /// penalties sampler: a token seen `count` times has its logit divided by the repetition
    /// penalty when positive (multiplied when not), then lowered by
    /// `count * frequency + presence`. Candidates are still in id order here.
    fn apply_penalties(&self, candidates: &mut [Candidate]) {
        let p = &self.params;
        let neutral =
            p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0;
        if neutral || self.recent.is_empty() {
            return;
        }
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &token in &self.recent {
            *counts.entry(token).or_default() += 1;
        }
        for (&token, &count) in &counts {
            let Some(c) = candidates.get_mut(token as usize) else {
                continue;
            };
            if c.logit <= 0.0 {
                c.logit *= p.repeat_penalty;
            } else {
                c.logit /= p.repeat_penalty;
            }
            c.logit -= count as f32 * p.frequency_penalty + p.presence_penalty;
        }
    }

    /// top-k → top-p → min-p → temperature on a non-empty candidate list, leaving it sorted
    /// by logit (descending) with probabilities set.
    fn sample_from(&self, candidates: &mut Vec<Candidate>) {
        let p = &self.params;
        let by_logit_desc = |a: &Candidate, b: &Candidate| b.logit.total_cmp(&a.logit);
        if p.top_k > 0 && p.top_k < candidates.len() {
            candidates.select_nth_unstable_by(p.top_k - 1, by_logit_desc);
            candidates.truncate(p.top_k);
        }
        candidates.sort_by(by_logit_desc);

        if p.top_p < 1.0 {
            softmax(candidates);
            let mut cumulative = 0.0f32;
            let mut keep = candidates.len();
            for (i, c) in candidates.iter().enumerate() {
                cumulative += c.p;
                if cumulative >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            candidates.truncate(keep);
        }

        if p.min_p > 0.0 {
            // Probabilities relative to the best are logit differences: p_i / p_max >= min_p
            // exactly when logit_i >= logit_max + ln(min_p), as llama.cpp compares.
            let min_logit = candidates[0].logit + p.min_p.ln();
            let keep = candidates
                .iter()
                .take_while(|c| c.logit >= min_logit)
                .count()
                .max(1);
            candidates.truncate(keep);
        }

        for c in candidates.iter_mut() {
            c.logit /= p.temperature;
        }
        softmax(candidates);
    }

    /// One draw from the candidates' probabilities.
    fn draw(&mut self, candidates: &[Candidate]) -> u32 {
        let total: f64 = candidates.iter().map(|c| f64::from(c.p)).sum();
        let target = self.rng.next_f64() * total;
        let mut cumulative = 0.0f64;
        for c in candidates {
            cumulative += f64::from(c.p);
            if target < cumulative {
                return c.id;
            }
        }
        // Rounding can leave `target` at the very top of the range: the last token owns it.
        candidates.last().map_or(0, |c| c.id)
    }
}

/// The candidate with the highest logit; the lowest id among equals.
fn argmax(candidates: &[Candidate]) -> u32 {
    let mut best = candidates[0];
    for &c in &candidates[1..] {
        if c.logit > best.logit {
            best = c;
        }
    }
    best.id
}

/// Sets `p` to the softmax of the logits. The list is sorted descending and non-empty, so
/// the first logit is the maximum.
fn softmax(candidates: &mut [Candidate]) {
    let max = candidates[0].logit;
    let mut sum = 0.0f32;
    for c in candidates.iter_mut() {
        c.p = (c.logit - max).exp();
        sum += c.p;
    }
    for c in candidates.iter_mut() {
        c.p /= sum;
    }
}

/// The index of the largest value in `logits` (the first among equals): greedy decoding
/// without a [`Sampler`]. NaN never wins; `None` when no value is a number.
pub fn argmax_logits(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i as u32)
}
