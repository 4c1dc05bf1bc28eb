//! Log-probabilities of a token and its best alternatives, from raw logits.

use tokenizer::Tokenizer;

use super::types::TokenLogprob;

/// `log_softmax(logits)[token]` and the `top` most likely tokens (best first, the lowest
/// id among equals), from the raw logits (before penalties and temperature). NaN logits
/// count as -inf.
pub(crate) fn token_logprob(
    tokenizer: &Tokenizer,
    logits: &[f32], // [n_vocab]
    token: u32,
    top: usize,
) -> TokenLogprob {
    let clean = |x: f32| if x.is_nan() { f32::NEG_INFINITY } else { x };
    let max = logits
        .iter()
        .copied()
        .map(clean)
        .fold(f32::NEG_INFINITY, f32::max);
    let log_sum = if max == f32::NEG_INFINITY {
        0.0
    } else {
        let sum: f64 = logits
            .iter()
            .map(|&x| f64::from(clean(x) - max).exp())
            .sum();
        max + sum.ln() as f32
    };
    let logprob = |id: u32| {
        logits
            .get(id as usize)
            .map_or(f32::NEG_INFINITY, |&x| clean(x) - log_sum)
    };
    let mut best: Vec<u32> = Vec::with_capacity(top + 1);
    if top > 0 {
        for (id, &x) in logits.iter().enumerate() {
            let x = clean(x);
            // Ids fit u32: vocabularies are counted in u32.
            let id = id as u32;
            if best.len() == top && clean(logits[best[top - 1] as usize]) >= x {
                continue;
            }
            let at = best.partition_point(|&b| clean(logits[b as usize]) >= x);
            best.insert(at, id);
            best.truncate(top);
        }
    }
    let describe = |id: u32| {
        let bytes = tokenizer.token_to_piece(id, true);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    };
    let (text, bytes) = describe(token);
    TokenLogprob {
        token,
        text,
        bytes,
        logprob: logprob(token),
        top: best
            .into_iter()
            .map(|id| {
                let (text, bytes) = describe(id);
                (id, text, bytes, logprob(id))
            })
            .collect(),
    }
}
