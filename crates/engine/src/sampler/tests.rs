use super::*;

fn sampler(params: SamplerParams) -> Sampler {
    Sampler::new(params)
}

/// Draws `n` tokens and counts how often each id came out.
fn histogram(params: SamplerParams, logits: &[f32], n: usize) -> Vec<usize> {
    let mut s = sampler(params);
    let mut counts = vec![0; logits.len()];
    for _ in 0..n {
        let id = s.sample(logits).unwrap();
        counts[id as usize] += 1;
    }
    counts
}

fn plain(temperature: f32) -> SamplerParams {
    SamplerParams {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..SamplerParams::default()
    }
}

#[test]
fn greedy_is_argmax() {
    let logits = [0.1, 2.5, -1.0, 2.4, 0.0];
    let mut s = sampler(SamplerParams::greedy());
    for _ in 0..10 {
        assert_eq!(s.sample(&logits).unwrap(), 1);
    }
    assert_eq!(argmax_logits(&logits), Some(1));
}

#[test]
fn greedy_takes_lowest_id_among_equals() {
    let logits = [1.0, 3.0, 3.0];
    assert_eq!(sampler(SamplerParams::greedy()).sample(&logits).unwrap(), 1);
    assert_eq!(argmax_logits(&logits), Some(1));
}

#[test]
fn argmax_skips_nan_and_empty() {
    assert_eq!(argmax_logits(&[f32::NAN, 1.0, 0.5]), Some(1));
    assert_eq!(argmax_logits(&[]), None);
    assert_eq!(argmax_logits(&[f32::NAN]), None);
}

#[test]
fn all_negative_infinity_is_an_error() {
    let logits = [f32::NEG_INFINITY, f32::NAN, f32::NEG_INFINITY];
    for params in [SamplerParams::greedy(), SamplerParams::default()] {
        let err = sampler(params).sample(&logits).unwrap_err();
        assert_eq!(err, SampleError::NoCandidates { n_vocab: 3 });
    }
    assert!(sampler(SamplerParams::default()).sample(&[]).is_err());
}

#[test]
fn single_finite_logit_always_wins() {
    let logits = [f32::NEG_INFINITY, -5.0, f32::NEG_INFINITY];
    let counts = histogram(SamplerParams::default(), &logits, 50);
    assert_eq!(counts, vec![0, 50, 0]);
}

#[test]
fn same_seed_same_tokens() {
    let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
    let run = |seed| {
        let mut s = sampler(SamplerParams { seed, ..plain(1.0) });
        (0..50)
            .map(|_| s.sample(&logits).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn temperature_one_follows_softmax() {
    // p = softmax([ln 1, ln 2, ln 7]) = [0.1, 0.2, 0.7].
    let logits = [1.0f32.ln(), 2.0f32.ln(), 7.0f32.ln()];
    let n = 20_000;
    let counts = histogram(plain(1.0), &logits, n);
    for (count, expected) in counts.iter().zip([0.1, 0.2, 0.7]) {
        let freq = *count as f64 / n as f64;
        assert!((freq - expected).abs() < 0.02, "{counts:?}");
    }
}

#[test]
fn low_temperature_sharpens() {
    let logits = [0.0, 1.0];
    let counts = histogram(plain(0.1), &logits, 2000);
    // p(1) = 1 / (1 + e^-10): essentially always.
    assert!(counts[1] > 1990, "{counts:?}");
}

#[test]
fn top_k_keeps_the_k_best() {
    let logits = [3.0, 2.9, 2.8, 0.0, 2.7];
    let counts = histogram(
        SamplerParams {
            top_k: 2,
            ..plain(1.0)
        },
        &logits,
        2000,
    );
    assert_eq!(counts[2] + counts[3] + counts[4], 0, "{counts:?}");
    assert!(counts[0] > 0 && counts[1] > 0);
}

#[test]
fn top_k_zero_is_off() {
    let logits = [1.0, 1.0, 1.0, 1.0];
    let counts = histogram(
        SamplerParams {
            top_k: 0,
            ..plain(1.0)
        },
        &logits,
        2000,
    );
    assert!(counts.iter().all(|&c| c > 300), "{counts:?}");
}

#[test]
fn top_p_keeps_smallest_covering_set() {
    // p = [0.5, 0.3, 0.15, 0.05]: top_p 0.8 keeps the first two (0.5 + 0.3 >= 0.8).
    let logits = [0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
    let counts = histogram(
        SamplerParams {
            top_p: 0.79,
            ..plain(1.0)
        },
        &logits,
        2000,
    );
    assert_eq!(counts[2] + counts[3], 0, "{counts:?}");
    assert!(counts[1] > 0);
}

#[test]
fn top_p_one_is_off() {
    let logits = [0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
    let counts = histogram(plain(1.0), &logits, 4000);
    assert!(counts[3] > 0, "{counts:?}");
}

#[test]
fn min_p_drops_unlikely_tokens() {
    // Relative to the best: 1, 0.5, 0.04. min_p 0.05 drops the last.
    let logits = [0.0, 0.5f32.ln(), 0.04f32.ln()];
    let counts = histogram(
        SamplerParams {
            min_p: 0.05,
            ..plain(1.0)
        },
        &logits,
        3000,
    );
    assert_eq!(counts[2], 0, "{counts:?}");
    assert!(counts[1] > 0);
}

#[test]
fn repeat_penalty_divides_positive_and_multiplies_negative() {
    let mut s = sampler(SamplerParams {
        repeat_penalty: 2.0,
        ..SamplerParams::greedy()
    });
    // Token 0 was seen: 3.0 / 2 = 1.5 < 2.0.
    s.accept(0);
    assert_eq!(s.sample(&[3.0, 2.0]).unwrap(), 1);
    // Negative logit of a seen token gets more negative: -1 * 2 = -2 < -1.5.
    assert_eq!(s.sample(&[-1.0, -1.5]).unwrap(), 1);
}

#[test]
fn repeat_penalty_only_looks_at_last_n() {
    let mut s = sampler(SamplerParams {
        repeat_penalty: 2.0,
        repeat_last_n: 2,
        ..SamplerParams::greedy()
    });
    s.accept(0);
    s.accept(5);
    s.accept(5);
    // Token 0 fell out of the window: no penalty.
    assert_eq!(s.sample(&[3.0, 2.0]).unwrap(), 0);
    s.reset();
    assert_eq!(s.sample(&[3.0, 2.0]).unwrap(), 0);
}

#[test]
fn frequency_and_presence_penalties() {
    let mut s = sampler(SamplerParams {
        frequency_penalty: 0.5,
        presence_penalty: 0.25,
        ..SamplerParams::greedy()
    });
    s.accept(0);
    s.accept(0);
    // 3.0 - 2 * 0.5 - 0.25 = 1.75 < 2.0.
    assert_eq!(s.sample(&[3.0, 2.0]).unwrap(), 1);
    // 3.0 - 1.25 = 1.75 > 1.7.
    assert_eq!(s.sample(&[3.0, 1.7]).unwrap(), 0);
}

#[test]
fn penalties_can_remove_the_only_candidate() {
    let mut s = sampler(SamplerParams {
        presence_penalty: f32::INFINITY,
        ..SamplerParams::greedy()
    });
    s.accept(0);
    assert!(s.sample(&[1.0, f32::NEG_INFINITY]).is_err());
}

#[test]
fn default_chain_is_deterministic_on_a_large_vocab() {
    let logits: Vec<f32> = (0..50_000)
        .map(|i| ((i as u64 * 2_654_435_761) % 1000) as f32 / 100.0)
        .collect();
    let run = || {
        let mut s = sampler(SamplerParams {
            seed: 7,
            ..SamplerParams::default()
        });
        (0..20)
            .map(|_| {
                let t = s.sample(&logits).unwrap();
                s.accept(t);
                t
            })
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    // Every token comes from the top 40 logits (top_k 40).
    let mut sorted = logits.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let threshold = sorted[39];
    assert!(first.iter().all(|&t| logits[t as usize] >= threshold));
}
