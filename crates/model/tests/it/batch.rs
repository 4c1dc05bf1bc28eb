//! The forward pass's bookkeeping on tiny models: a batch gives what one token at a time
//! gives, chunking and the cache are invisible, logits rows are the ones asked for, and
//! bad calls are refused without touching the cache.

use model::{Logits, Model, ModelError, Observer, MAX_BATCH};

use crate::tiny::{self, N_VOCAB};

/// Batching reorders no arithmetic in the scalar kernels, but faster kernels may sum in
/// another order between their one-row and many-row paths.
const BATCH_TOL: f32 = 1e-4;

pub fn tokens(n: usize, seed: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 7 + seed * 13 + 3) % N_VOCAB as usize) as u32)
        .collect()
}

/// Largest difference relative to the largest magnitude.
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

/// Logits of every position, one token per call.
pub fn one_by_one(model: &Model, tokens: &[u32]) -> Vec<Vec<f32>> {
    let mut cache = model.new_cache(tokens.len());
    let mut out = Vec::new();
    tokens
        .iter()
        .map(|&t| {
            model
                .forward(&[t], &mut cache, Logits::Last, &mut out)
                .unwrap();
            out.clone()
        })
        .collect()
}

#[test]
fn a_batch_equals_one_token_at_a_time() {
    for (arch, model) in tiny::families() {
        let n_vocab = model.config().n_vocab;
        // Longer than the tiny Gemma's sliding window, so local layers drop positions.
        let toks = tokens(11, 1);
        let mut cache = model.new_cache(32);
        let mut all = Vec::new();
        model
            .forward(&toks, &mut cache, Logits::All, &mut all)
            .unwrap();
        assert_eq!(all.len(), toks.len() * n_vocab);
        assert_eq!(cache.len(), toks.len());
        for (i, row) in one_by_one(&model, &toks).iter().enumerate() {
            let d = max_rel_diff(&all[i * n_vocab..(i + 1) * n_vocab], row);
            assert!(d <= BATCH_TOL, "{arch}: position {i} differs by {d}");
        }
    }
}

#[test]
fn logits_rows_are_the_requested_suffix() {
    for (arch, model) in tiny::families() {
        let n_vocab = model.config().n_vocab;
        let toks = tokens(9, 2);
        let mut all = Vec::new();
        model
            .forward(&toks, &mut model.new_cache(16), Logits::All, &mut all)
            .unwrap();
        let mut tail = Vec::new();
        model
            .forward(&toks, &mut model.new_cache(16), Logits::Tail(3), &mut tail)
            .unwrap();
        assert_eq!(tail.as_slice(), &all[6 * n_vocab..], "{arch}");
        let mut last = Vec::new();
        model
            .forward(&toks, &mut model.new_cache(16), Logits::Last, &mut last)
            .unwrap();
        assert_eq!(last.as_slice(), &all[8 * n_vocab..], "{arch}");
        let mut none = vec![1.0];
        let mut cache = model.new_cache(16);
        model
            .forward(&toks, &mut cache, Logits::Tail(0), &mut none)
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(cache.len(), 9);
    }
}

#[test]
fn prefill_in_pieces_equals_one_call_and_chunks_are_invisible() {
    let models = tiny::families();
    let (_, model) = &models[0];
    let n = MAX_BATCH + 40;
    let toks = tokens(n, 3);
    let mut cache = model.new_cache(n + 8);
    let mut one_call = Vec::new();
    model
        .forward(&toks, &mut cache, Logits::Tail(50), &mut one_call)
        .unwrap();
    assert_eq!(cache.len(), n);

    let mut pieces = Vec::new();
    let mut cache = model.new_cache(n + 8);
    model
        .forward(&toks[..300], &mut cache, Logits::Tail(0), &mut pieces)
        .unwrap();
    model
        .forward(&toks[300..], &mut cache, Logits::Tail(50), &mut pieces)
        .unwrap();
    assert!(max_rel_diff(&one_call, &pieces) <= BATCH_TOL);
}

#[test]
fn truncating_the_cache_replays_the_same_logits() {
    for (arch, model) in tiny::families() {
        let toks = tokens(10, 4);
        let mut cache = model.new_cache(16);
        let mut first = Vec::new();
        model
            .forward(&toks, &mut cache, Logits::All, &mut first)
            .unwrap();
        cache.truncate(6);
        assert_eq!(cache.len(), 6);
        let mut again = Vec::new();
        model
            .forward(&toks[6..], &mut cache, Logits::All, &mut again)
            .unwrap();
        let n_vocab = model.config().n_vocab;
        assert!(
            max_rel_diff(&first[6 * n_vocab..], &again) <= BATCH_TOL,
            "{arch}"
        );
        cache.clear();
        assert!(cache.is_empty());
    }
}

#[test]
fn bad_calls_are_refused_and_leave_the_cache_alone() {
    let models = tiny::families();
    let (_, model) = &models[0];
    let mut cache = model.new_cache(8);
    let mut out = Vec::new();
    model
        .forward(&[1, 2, 3], &mut cache, Logits::Last, &mut out)
        .unwrap();
    let err = model
        .forward(&[], &mut cache, Logits::Last, &mut out)
        .unwrap_err();
    assert!(matches!(err, ModelError::EmptyBatch));
    let err = model
        .forward(&[1, N_VOCAB as u32], &mut cache, Logits::Last, &mut out)
        .unwrap_err();
    assert!(matches!(err, ModelError::TokenOutOfRange { token, .. } if token == N_VOCAB as u32));
    let err = model
        .forward(&[1; 6], &mut cache, Logits::Last, &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::ContextFull {
            len: 3,
            n_tokens: 6,
            capacity: 8
        }
    ));
    let err = model
        .forward(&[1, 2], &mut cache, Logits::Tail(3), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::TooManyLogitRows {
            requested: 3,
            n_tokens: 2
        }
    ));
    let (_, gemma) = &models[2];
    let mut other = gemma.new_cache(8);
    assert!(matches!(
        model.forward(&[1], &mut other, Logits::Last, &mut out),
        Err(ModelError::CacheMismatch)
    ));
    assert_eq!(cache.len(), 3);
    // The cache fills exactly.
    model
        .forward(&[1; 5], &mut cache, Logits::Last, &mut out)
        .unwrap();
    assert_eq!(cache.len(), 8);
}

struct Names(Vec<(&'static str, Option<usize>, usize)>);

impl Observer for Names {
    fn observe(
        &mut self,
        name: &'static str,
        layer_idx: Option<usize>,
        n_rows: usize,
        data: &[f32],
    ) {
        assert!(
            !data.is_empty() && data.len().is_multiple_of(n_rows),
            "{name}"
        );
        assert!(
            data.iter().all(|x| x.is_finite()),
            "{name} has a non-finite value"
        );
        self.0.push((name, layer_idx, n_rows));
    }
}

#[test]
fn observer_sees_named_intermediates() {
    let models = tiny::families();
    let (_, model) = &models[2];
    let mut names = Names(Vec::new());
    let mut out = Vec::new();
    model
        .forward_observed(
            &tokens(5, 5),
            &mut model.new_cache(8),
            Logits::Last,
            &mut out,
            &mut names,
        )
        .unwrap();
    let seen = |name: &str, layer: Option<usize>| {
        names
            .0
            .iter()
            .find(|(n, l, _)| *n == name && *l == layer)
            .map(|e| e.2)
    };
    assert_eq!(seen("inp_embd", None), Some(5));
    assert_eq!(seen("attn_norm", Some(0)), Some(5));
    assert_eq!(seen("Kcur", Some(5)), Some(5));
    assert_eq!(seen("ffn_out", Some(0)), Some(5));
    // The last layer only carries on with the row whose logits are wanted.
    assert_eq!(seen("Qcur", Some(5)), Some(1));
    assert_eq!(seen("l_out", Some(5)), Some(1));
    assert_eq!(seen("result_output", None), Some(1));
}
