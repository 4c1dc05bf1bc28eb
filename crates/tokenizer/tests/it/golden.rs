//! Every case of llama.cpp's `llama-tokenize` outputs (`shared/data/golden/tokenize-*.json`:
//! 30 strings, each with and without BOS and special-token parsing) gives the same ids.

use serde_json::Value;
use tokenizer::{Detokenizer, Tokenizer};

use crate::common::{enabled, load, shared_data};

struct Case {
    text: String,
    add_special: bool,
    parse_special: bool,
    ids: Vec<u32>,
}

fn cases(golden: &str) -> Vec<Case> {
    let path = shared_data().join(format!("golden/tokenize-{golden}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).expect("golden files are JSON");
    let cases = json["cases"].as_array().expect("a cases array");
    cases
        .iter()
        .map(|c| Case {
            text: c["string"].as_str().expect("a string").to_owned(),
            add_special: c["add_special"].as_bool().expect("add_special"),
            parse_special: c["parse_special"].as_bool().expect("parse_special"),
            ids: c["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|id| id.as_u64().expect("an id") as u32)
                .collect(),
        })
        .collect()
}

/// Checks all cases; reports every mismatch, with token texts, before failing.
fn check(stem: &str, golden: &str) {
    if !enabled() {
        return;
    }
    let tokenizer = load(stem);
    let cases = cases(golden);
    assert_eq!(cases.len(), 120, "{golden}: 30 strings × 4 flag sets");
    let show = |ids: &[u32]| -> Vec<&str> {
        ids.iter()
            .map(|&id| tokenizer.token_text(id).unwrap_or("?"))
            .collect()
    };
    let mut failures = Vec::new();
    for case in &cases {
        let got = tokenizer.encode(&case.text, case.add_special, case.parse_special);
        if got != case.ids {
            failures.push(format!(
                "{:?} add_special={} parse_special={}\n  want {:?}\n  got  {:?}",
                case.text,
                case.add_special,
                case.parse_special,
                show(&case.ids),
                show(&got)
            ));
        }
        check_decoding(&tokenizer, case);
    }
    eprintln!(
        "{stem}: {}/{} cases match {golden}",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{stem}:\n{}", failures.join("\n"));
}

/// Text tokenized without special-token parsing decodes back to itself, whole and
/// streamed.
fn check_decoding(tokenizer: &Tokenizer, case: &Case) {
    if case.parse_special {
        return;
    }
    let skip = usize::from(case.add_special && tokenizer.add_bos());
    let ids = &case.ids[skip..];
    assert_eq!(tokenizer.decode(ids), case.text);
    let mut detokenizer = Detokenizer::new();
    let mut streamed: String = ids
        .iter()
        .map(|&id| detokenizer.push(tokenizer, id))
        .collect();
    streamed.push_str(&detokenizer.flush());
    assert_eq!(streamed, case.text);
}

#[test]
fn smollm2_matches_llama_cpp() {
    check("smollm2-135m", "smollm2-135m");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check("gemma3-270m", "gemma3-270m");
}

#[test]
fn qwen2_5_coder_0_5b_matches_llama_cpp() {
    check("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b");
}

/// The 1.5B model ships the same tokenizer as the 0.5B one.
#[test]
fn qwen2_5_coder_1_5b_matches_the_0_5b_golden() {
    check("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b");
}
