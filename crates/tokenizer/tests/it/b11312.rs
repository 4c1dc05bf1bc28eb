//! A wider comparison with llama.cpp b11312 than the shared golden files: 378 strings
//! (`tests/fixtures/cases.py`: contractions, digits, whitespace runs, marks, non-ASCII
//! numbers and spaces, special-token text, random code points from all of Unicode), the
//! end-of-generation set, and the whole wikitext file, whose ids are compared by count and
//! hash. The fixture is made by `tests/fixtures/make.sh` from llama.cpp's own code.

use serde_json::Value;

use crate::common::{enabled, load, shared_data};

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("an array of ids")
        .iter()
        .map(|id| id.as_u64().expect("an id") as u32)
        .collect()
}

/// FNV-1a 64 over the ids as little-endian u32, as make.sh computes it.
fn fnv1a64(ids: &[u32]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ids.iter().flat_map(|id| id.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn check(stem: &str, reference: &str) {
    if !enabled() {
        return;
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenize-b11312.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let model = &fixture["models"][reference];
    let tokenizer = load(stem);
    assert_eq!(
        tokenizer.eog_tokens(),
        ids(&model["eog"]),
        "{stem}: end of generation"
    );
    let strings = fixture["strings"].as_array().expect("strings");
    let mut failures = Vec::new();
    for (flags, key) in [(true, "ids_special"), (false, "ids_plain")] {
        let expected = model[key].as_array().expect("ids");
        assert_eq!(expected.len(), strings.len());
        for (string, want) in strings.iter().zip(expected) {
            let string = string.as_str().expect("a string");
            let got = tokenizer.encode(string, flags, flags);
            if got != ids(want) {
                failures.push(format!("{string:?} ({key}): want {want}, got {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{stem}:\n{}", failures.join("\n"));

    let path = shared_data().join("wikitext-2-test.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let got = tokenizer.encode(text.strip_suffix('\n').unwrap_or(&text), true, false);
    let wikitext = &model["wikitext"];
    assert_eq!(
        got.len() as u64,
        wikitext["n_tokens"].as_u64().expect("n_tokens"),
        "{stem}"
    );
    assert_eq!(
        fnv1a64(&got),
        wikitext["fnv1a64"].as_str().expect("a hash"),
        "{stem}"
    );
    eprintln!(
        "{stem}: {} strings × 2 and the wikitext file match b11312",
        strings.len()
    );
}

#[test]
fn smollm2_matches_b11312() {
    check("smollm2-135m", "smollm2-135m");
}

#[test]
fn gemma3_matches_b11312() {
    check("gemma3-270m", "gemma3-270m");
}

#[test]
fn qwen2_5_coder_0_5b_matches_b11312() {
    check("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b");
}

#[test]
fn qwen2_5_coder_1_5b_matches_b11312() {
    check("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b");
}
