//! Teacher-forced agreement with llama.cpp on the real models (golden/README.md): run
//! prompt + reference continuation in one batch; at every generated position the top token
//! must be the reference's (or the reference's two best be within 0.5), and the reference
//! token's log-probability within 0.3 of llama.cpp's. The same again the way the references
//! were made (prompt in one batch, then one token per call), the way `slm run` decodes.
//! Also: a prompt's last logits are the same whether the prompt goes in one batch or one
//! token at a time.
//!
//! The 0.3 is not slack for a bug: llama.cpp itself, fed prompt + continuation in one batch,
//! differs from its own decoded references by up to 0.27 (smollm2-135m, mean 0.035),
//! 0.26 (gemma3-270m, 0.031) and 0.15 (qwen2.5-coder-0.5b, 0.017). slm's intermediates
//! match llama.cpp's to about 1e-7, except attention outputs of batches under 64 tokens,
//! which llama.cpp accumulates in f16 (about 3e-4 apart), until a rounding step (Q8
//! activations) lands on the other side of a boundary; these small Q4 models amplify that
//! to a few hundredths of a log-probability on average. Doing the f16 accumulation as
//! llama.cpp does removes the 3e-4 but does not bring the log-probabilities closer.

use model::{Logits, Model};
use serde_json::Value;

use crate::batch::{max_rel_diff, one_by_one};
use crate::real;

/// Largest log-probability difference allowed (golden/README.md).
const LOGPROB_TOL: f64 = 0.3;
/// Below this reference gap between the two best tokens, either may be on top.
const NEAR_TIE: f64 = 0.5;

fn log_softmax_at(row: &[f32], index: usize) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    row[index] as f64 - max - sum.ln()
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bx), (i, &x)| {
            if x > bx {
                (i, x)
            } else {
                (bi, bx)
            }
        })
        .0
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id list")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// How the reference continuation goes through the model.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Prompt and continuation in one batch.
    OneBatch,
    /// The prompt in one batch, then one token per call, as the references were made.
    Decode,
}

/// Checks every case of `greedy-<stem>.json`; returns the largest log-probability
/// deviation seen.
fn teacher_forced(stem: &str, mode: Mode) -> f64 {
    let path = real::golden_dir().join(format!("greedy-{stem}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let golden: Value = serde_json::from_str(&text).expect("golden files are JSON");
    let model = real::load(stem);
    let n_vocab = model.config().n_vocab;
    let mut worst = 0.0f64;
    let (mut total, mut count) = (0.0f64, 0usize);
    let mut failures = Vec::new();
    for (case_idx, case) in golden["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let prompt = ids(&case["prompt_ids"]);
        let continuation = ids(&case["continuation_ids"]);
        let top2 = case["top2"].as_array().expect("top2");
        let tokens: Vec<u32> = prompt.iter().chain(&continuation).copied().collect();
        let mut cache = model.new_cache(tokens.len());
        let mut logits = Vec::new();
        match mode {
            Mode::OneBatch => model
                .forward(&tokens, &mut cache, Logits::All, &mut logits)
                .unwrap(),
            Mode::Decode => {
                // As llama.cpp made the references: the prompt in one batch, then the
                // continuation one token per call; keep the row before each token.
                let mut out = Vec::new();
                logits.resize((prompt.len() - 1) * n_vocab, 0.0);
                model
                    .forward(&prompt, &mut cache, Logits::Last, &mut out)
                    .unwrap();
                logits.extend_from_slice(&out);
                for &token in &continuation[..continuation.len() - 1] {
                    model
                        .forward(&[token], &mut cache, Logits::Last, &mut out)
                        .unwrap();
                    logits.extend_from_slice(&out);
                }
            }
        }
        for (i, &reference) in continuation.iter().enumerate() {
            let row_idx = prompt.len() + i - 1;
            let row = &logits[row_idx * n_vocab..(row_idx + 1) * n_vocab];
            let t = top2[i].as_array().expect("top2 entry");
            let (ref_lp, second_lp) = (t[1].as_f64().unwrap(), t[3].as_f64().unwrap());
            let lp = log_softmax_at(row, reference as usize);
            let deviation = (lp - ref_lp).abs();
            worst = worst.max(deviation);
            total += deviation;
            count += 1;
            let top = argmax(row) as u32;
            if top != reference && ref_lp - second_lp >= NEAR_TIE {
                failures.push(format!(
                    "case {case_idx} position {i}: top token {top}, reference {reference}"
                ));
            }
            if deviation > LOGPROB_TOL {
                failures.push(format!(
                    "case {case_idx} position {i}: log-probability {lp:.4}, reference {ref_lp:.4}"
                ));
            }
        }
    }
    eprintln!(
        "{stem} ({mode:?}): log-probability deviation from llama.cpp: largest {worst:.4}, mean {:.4} over {count} positions",
        total / count.max(1) as f64
    );
    assert!(failures.is_empty(), "{stem}:\n{}", failures.join("\n"));
    worst
}

/// Log-softmax of a row.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let log_sum = row
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln();
    row.iter().map(|&x| x as f64 - max - log_sum).collect()
}

/// Last logits of every golden prompt: one batch against one token at a time. The
/// scalar kernels compute every row alike, so the two agree exactly; SIMD kernels sum in
/// another order in their many-row paths, and quantized activations amplify that like
/// any other rounding difference, so there the golden tolerances apply.
fn batch_consistency(model: &Model, stem: &str) {
    let path = real::golden_dir().join(format!("greedy-{stem}.json"));
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exact = kernels::kernels().isa == kernels::Isa::Scalar;
    for case in golden["cases"].as_array().expect("cases") {
        let prompt = ids(&case["prompt_ids"]);
        let mut batch = Vec::new();
        model
            .forward(
                &prompt,
                &mut model.new_cache(prompt.len()),
                Logits::Last,
                &mut batch,
            )
            .unwrap();
        let single = one_by_one(model, &prompt).pop().unwrap();
        let d = max_rel_diff(&batch, &single);
        let (lp_batch, lp_single) = (log_softmax(&batch), log_softmax(&single));
        let top = argmax(&batch);
        let lp_diff = (lp_batch[top] - lp_single[top]).abs();
        eprintln!("{stem}: batch vs one by one: relative logit difference {d:e}, top log-probability difference {lp_diff:.4}");
        if exact {
            assert_eq!(
                batch, single,
                "{stem}: scalar kernels must give identical rows"
            );
        } else {
            let other = argmax(&single);
            assert!(
                top == other || (lp_single[other] - lp_single[top]) < NEAR_TIE,
                "{stem}: batch picks {top}, one by one {other}"
            );
            assert!(
                lp_diff <= LOGPROB_TOL,
                "{stem}: top log-probability differs by {lp_diff}"
            );
        }
    }
}

#[test]
fn smollm2_matches_llama_cpp() {
    if real::enabled("smollm2_matches_llama_cpp") {
        teacher_forced("smollm2-135m", Mode::OneBatch);
        teacher_forced("smollm2-135m", Mode::Decode);
    }
}

#[test]
fn qwen2_matches_llama_cpp() {
    if real::enabled("qwen2_matches_llama_cpp") {
        teacher_forced("qwen2.5-coder-0.5b", Mode::OneBatch);
        teacher_forced("qwen2.5-coder-0.5b", Mode::Decode);
    }
}

#[test]
fn gemma3_matches_llama_cpp() {
    if real::enabled("gemma3_matches_llama_cpp") {
        teacher_forced("gemma3-270m", Mode::OneBatch);
        teacher_forced("gemma3-270m", Mode::Decode);
    }
}

#[test]
fn real_models_give_the_same_logits_batched_and_one_by_one() {
    if !real::enabled("real_models_give_the_same_logits_batched_and_one_by_one") {
        return;
    }
    for stem in ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"] {
        batch_consistency(&real::load(stem), stem);
    }
}

#[test]
fn qwen2_1_5b_loads_and_predicts() {
    if !real::enabled("qwen2_1_5b_loads_and_predicts") {
        return;
    }
    let model = real::load("qwen2.5-coder-1.5b");
    let c = model.config();
    assert_eq!(
        (c.architecture.as_str(), c.n_layers, c.n_embd),
        ("qwen2", 28, 1536)
    );
    // No golden file for the 1.5B: it shares the 0.5B's vocabulary, and after
    // "def fibonacci(n):\n" both start the body with the same indentation token.
    let golden_path = real::golden_dir().join("greedy-qwen2.5-coder-0.5b.json");
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
    let case = &golden["cases"][1];
    let prompt = ids(&case["prompt_ids"]);
    let mut logits = Vec::new();
    model
        .forward(&prompt, &mut model.new_cache(64), Logits::Last, &mut logits)
        .unwrap();
    let top = argmax(&logits) as u32;
    eprintln!(
        "qwen2.5-coder-1.5b: prompt {:?}, top token {top}, 0.5B's {}",
        case["prompt"], case["continuation_ids"][0]
    );
    assert!(logits.iter().all(|x| x.is_finite()));
    assert_eq!(
        u64::from(top),
        case["continuation_ids"][0].as_u64().unwrap()
    );
}
