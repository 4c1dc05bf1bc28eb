//! The arithmetic of perplexity, as llama.cpp's `tools/perplexity` does it.

/// Negative log-likelihood of `target` under the softmax of one row of logits (`[n_vocab]`),
/// computed like llama.cpp's `log_softmax`: max-subtracted f32 exponentials summed in f64.
/// `None` when `target` is outside the row.
pub fn token_nll(logits: &[f32], target: u32) -> Option<f64> {
    let target_logit = *logits.get(target as usize)?;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    Some(-(f64::from(target_logit - max) - sum_exp.ln()))
}

/// Running sums of scored tokens' negative log-likelihoods.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NllSum {
    /// Sum of the negative log-likelihoods.
    pub nll: f64,
    /// Sum of their squares.
    pub nll2: f64,
    /// How many tokens were scored.
    pub count: usize,
}

impl NllSum {
    /// Adds one scored token.
    pub fn add(&mut self, nll: f64) {
        self.nll += nll;
        self.nll2 += nll * nll;
        self.count += 1;
    }

    /// exp(mean negative log-likelihood); NaN before any token.
    pub fn ppl(&self) -> f64 {
        (self.nll / self.count as f64).exp()
    }

    /// The ± that llama-perplexity prints: the standard error of the mean NLL, scaled by the
    /// perplexity (a first-order estimate of the perplexity's standard error). `None` when
    /// it is undefined (fewer than two tokens, or no spread).
    pub fn ppl_stderr(&self) -> Option<f64> {
        if self.count < 2 {
            return None;
        }
        let n = self.count as f64;
        let mean = self.nll / n;
        let variance = self.nll2 / n - mean * mean;
        if variance > 0.0 {
            Some((variance / (n - 1.0)).sqrt() * mean.exp())
        } else {
            None
        }
    }
}
