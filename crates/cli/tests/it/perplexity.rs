//! `slm perplexity --json` on WikiText-2 against llama-perplexity, within 1%.

use serde_json::Value;

use crate::common::*;

/// Relative tolerance on perplexity: different but equally valid float summation orders
/// move it by far less; a real bug moves it by much more.
const PPL_TOLERANCE: f64 = 0.01;

/// Runs `n_chunks` windows of 512 and compares with the reference's running perplexity
/// after that many windows.
fn check(model: TestModel, n_chunks: usize) {
    let golden = golden("perplexity-wikitext-2.json");
    let reference = &golden["models"][model.stem];
    let expected = reference["chunk_running_ppl"][n_chunks - 1]
        .as_f64()
        .expect("running ppl");
    let path = model_path(model);
    let text = data_path("wikitext-2-test.txt");
    let chunks = n_chunks.to_string();
    let output = slm(&[
        "perplexity",
        path.to_str().expect("UTF-8 path"),
        text.to_str().expect("UTF-8 path"),
        "--ctx",
        "512",
        "--chunks",
        &chunks,
        "--json",
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let result: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", describe(&output)));
    let ppl = result["ppl"].as_f64().expect("ppl");
    assert_eq!(result["chunks"].as_u64(), Some(n_chunks as u64));
    assert_eq!(
        result["tokens_scored"].as_u64(),
        Some(255 * n_chunks as u64),
        "255 scored tokens per window of 512"
    );
    assert!(result["ppl_stderr"].as_f64().is_some_and(|s| s > 0.0));
    let relative = (ppl - expected).abs() / expected;
    eprintln!(
        "{}: ppl {ppl:.4} after {n_chunks} chunks, llama.cpp {expected:.4} ({:+.3}%)",
        model.stem,
        (ppl - expected) / expected * 100.0
    );
    assert!(
        relative < PPL_TOLERANCE,
        "{}: perplexity {ppl:.4}, llama.cpp {expected:.4}: off by {:.2}%",
        model.stem,
        relative * 100.0
    );
    if n_chunks == reference["n_chunks"].as_u64().expect("n_chunks") as usize {
        let expected_stderr = reference["ppl_stderr"].as_f64().expect("ppl_stderr");
        let stderr = result["ppl_stderr"].as_f64().expect("ppl_stderr");
        assert!(
            (stderr - expected_stderr).abs() / expected_stderr < 0.05,
            "stderr {stderr}, llama.cpp {expected_stderr}"
        );
    }
}

#[test]
fn perplexity_smollm2() {
    if models_enabled("perplexity_smollm2") {
        check(SMOLLM2, 20);
    }
}

#[test]
fn perplexity_gemma3() {
    if models_enabled("perplexity_gemma3") {
        check(GEMMA3, 20);
    }
}

#[test]
fn perplexity_qwen05() {
    if models_enabled("perplexity_qwen05") {
        check(QWEN05, 20);
    }
}

#[test]
fn perplexity_qwen15() {
    // Four windows keep the 1.5B model's run short; compared with the running value.
    if models_enabled("perplexity_qwen15") {
        check(QWEN15, 4);
    }
}
