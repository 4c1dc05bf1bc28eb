//! What both APIs' generation requests come down to once parsed and checked: sampler
//! settings, token limit, stop strings, log-probabilities, number of choices.

use engine::SamplerParams;

use crate::error::ApiError;

/// The most stop strings a request may give (OpenAI allows 4; agents send a few more).
pub const MAX_STOP: usize = 16;
/// The most alternatives per token a request may ask log-probabilities for.
pub const MAX_TOP_LOGPROBS: usize = 20;
/// The most choices (`n`) one request may ask for.
pub const MAX_CHOICES: usize = 16;

/// One request's generation settings, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    /// The sampler; `seed` is the first choice's (choice `i` uses `seed + i`).
    pub sampler: SamplerParams,
    /// Generated tokens at most; `None`: until the context is full.
    pub max_tokens: Option<usize>,
    /// Stop strings (not part of the output).
    pub stop: Vec<String>,
    /// `Some(k)`: log-probability of each token and of the `k` most probable alternatives.
    pub logprobs: Option<usize>,
    /// How many choices to generate.
    pub n: usize,
    /// A grammar every choice's output must match.
    pub grammar: Option<engine::Grammar>,
    /// Render control tokens as text (tool-call markers that are control tokens).
    pub special_text: bool,
}

impl GenParams {
    /// The sampler of choice `index`: consecutive seeds, so `n` choices differ but a
    /// seeded request is reproducible.
    pub fn sampler_for_choice(&self, index: usize) -> SamplerParams {
        let mut sampler = self.sampler.clone();
        sampler.seed = sampler.seed.wrapping_add(index as u64);
        sampler
    }
}

/// A number checked to lie in `[min, max]`; `param` names the field in the error.
pub fn in_range(param: &str, value: f64, min: f64, max: f64) -> Result<f32, ApiError> {
    if !value.is_finite() || value < min || value > max {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value as f32)
}

/// A count checked to lie in `[min, max]`.
pub fn count_in_range(param: &str, value: i64, min: i64, max: i64) -> Result<usize, ApiError> {
    if value < min || value > max {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} must be an integer from {min} to {max}, got {value}"),
        ));
    }
    usize::try_from(value)
        .map_err(|_| ApiError::invalid_param(param, format!("{param} must not be negative")))
}

/// A token limit: at least 1.
pub fn max_tokens(param: &str, value: i64) -> Result<usize, ApiError> {
    if value < 1 {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} must be at least 1, got {value}"),
        ));
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// Stop strings: at most [`MAX_STOP`], none empty.
pub fn stop_strings(param: &str, stop: Vec<String>) -> Result<Vec<String>, ApiError> {
    if stop.len() > MAX_STOP {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "{param} has {} strings; give at most {MAX_STOP}",
                stop.len()
            ),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} contains an empty string; every stop string needs a character"),
        ));
    }
    Ok(stop)
}

/// A seed from the request, or a fresh random one.
pub fn seed_or_random(seed: Option<i64>) -> u64 {
    match seed {
        // Negative seeds (allowed by OpenAI's schema) map to distinct u64 values.
        Some(seed) => seed as u64,
        None => random_seed(),
    }
}

/// A random seed from the standard library's per-process hasher keys and the clock.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
