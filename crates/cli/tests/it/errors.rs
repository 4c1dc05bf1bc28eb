//! Mistakes a user makes: each exits non-zero, explains itself on stderr and prints nothing
//! on stdout. No model needed.

use crate::common::*;

/// Runs `slm` in an empty store; returns stderr after checking the failure's shape.
fn fails(args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("a temporary directory");
    let home_str = home.path().to_str().expect("UTF-8 path");
    let output = slm_command(args, None, &[("SLM_HOME", home_str)]);
    assert!(
        !output.status.success(),
        "{args:?} should fail: {}",
        describe(&output)
    );
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: {}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains("error"), "{stderr}");
    stderr
}

#[test]
fn missing_model_file() {
    let stderr = fails(&["run", "/nonexistent/dir/model.gguf", "hello"]);
    assert!(stderr.contains("/nonexistent/dir/model.gguf"), "{stderr}");
    assert_eq!(
        slm(&["run", "/nonexistent/dir/model.gguf", "hello"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn not_a_gguf_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"this is not a model").expect("write");
    let stderr = fails(&["run", path.to_str().expect("UTF-8"), "hello"]);
    assert!(stderr.contains("broken.gguf"), "{stderr}");
    let stderr = fails(&["tokenize", path.to_str().expect("UTF-8"), "hello"]);
    assert!(stderr.contains("broken.gguf"), "{stderr}");
}

#[test]
fn unknown_catalog_name() {
    let stderr = fails(&["run", "no-such-model:7b", "hello"]);
    assert!(stderr.contains("no-such-model:7b"), "{stderr}");
    let stderr = fails(&["pull", "no-such-model:7b"]);
    assert!(stderr.contains("no-such-model:7b"), "{stderr}");
}

#[test]
fn bad_flags() {
    fails(&["run", "--temp", "warm", "hello"]);
    fails(&["run", "--no-such-flag", "hello"]);
    fails(&["run"]);
    fails(&["frobnicate"]);
    fails(&["tokenize"]);
    fails(&["perplexity", "model.gguf"]);
}

#[test]
fn missing_perplexity_text() {
    let stderr = fails(&[
        "perplexity",
        "/nonexistent/model.gguf",
        "/nonexistent/text.txt",
    ]);
    assert!(stderr.contains("/nonexistent/text.txt"), "{stderr}");
}
