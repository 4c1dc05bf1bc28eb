//! `slm tokenize` against llama-tokenize, text given as an argument and on stdin.

use serde_json::Value;

use crate::common::*;

/// Strings exercised through the binary (the tokenizer crate checks all golden strings).
const STRINGS: [&str; 6] = [
    "Hello world",
    " leading space",
    "trailing space ",
    "line one\nline two\n\n\nafter three newlines\n",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "a\r\nwindows\r\nline endings",
];

fn check(model: TestModel) {
    let golden = golden(&format!("tokenize-{}.json", model.stem));
    let path = model_path(model);
    let path_arg = path.to_str().expect("UTF-8 path");
    let mut checked = 0;
    for (n, case) in golden["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| STRINGS.iter().any(|s| c["string"].as_str() == Some(s)))
        .enumerate()
    {
        let text = case["string"].as_str().expect("string");
        let mut args = vec!["tokenize", path_arg];
        if case["add_special"] == Value::Bool(false) {
            args.push("--no-bos");
        }
        if case["parse_special"] == Value::Bool(true) {
            args.push("--special");
        }
        // Alternate between the argument and stdin (read byte for byte).
        let output = if n % 2 == 0 {
            args.push(text);
            slm(&args)
        } else {
            slm_with_input(&args, Some(text.as_bytes()))
        };
        assert!(output.status.success(), "{}", describe(&output));
        let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout");
        let got: Value = serde_json::from_str(&stdout).expect("a JSON array");
        assert_eq!(
            ids(&got),
            ids(&case["ids"]),
            "{}: {text:?} add_special={} parse_special={}",
            model.stem,
            case["add_special"],
            case["parse_special"]
        );
        assert!(
            stdout.starts_with('[') && stdout.ends_with("]\n"),
            "{stdout:?}"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        STRINGS.len() * 4,
        "every string with all four flag sets"
    );
}

#[test]
fn tokenize_smollm2() {
    if models_enabled("tokenize_smollm2") {
        check(SMOLLM2);
    }
}

#[test]
fn tokenize_gemma3() {
    if models_enabled("tokenize_gemma3") {
        check(GEMMA3);
    }
}

#[test]
fn tokenize_qwen05() {
    if models_enabled("tokenize_qwen05") {
        check(QWEN05);
    }
}

#[test]
fn tokenize_stdin_is_byte_exact() {
    // A trailing newline and leading spaces on stdin are tokens too.
    if !models_enabled("tokenize_stdin_is_byte_exact") {
        return;
    }
    let path = model_path(SMOLLM2);
    let path_arg = path.to_str().expect("UTF-8 path");
    let with = slm_with_input(&["tokenize", path_arg], Some(b"  hi\n"));
    let without = slm_with_input(&["tokenize", path_arg], Some(b"  hi"));
    assert!(with.status.success(), "{}", describe(&with));
    assert!(without.status.success(), "{}", describe(&without));
    let with: Value = serde_json::from_slice(&with.stdout).expect("JSON");
    let without: Value = serde_json::from_slice(&without.stdout).expect("JSON");
    assert_eq!(
        ids(&with).len(),
        ids(&without).len() + 1,
        "{with} vs {without}"
    );
    let as_arg = slm(&["tokenize", path_arg, "  hi\n"]);
    let as_arg: Value = serde_json::from_slice(&as_arg.stdout).expect("JSON");
    assert_eq!(as_arg, with);
}
