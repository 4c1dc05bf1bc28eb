//! Helpers shared by the integration tests: the real-model gate and model paths.

use std::path::PathBuf;

/// Whether tests that load real models run (`SLM_TEST_MODELS=1`); says so when not.
pub fn enabled(test: &str) -> bool {
    if std::env::var("SLM_TEST_MODELS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped {test}: set SLM_TEST_MODELS=1 to run tests that load real models");
    false
}

/// The path of a real model in the store, `$SLM_HOME/models/<stem>.gguf`.
pub fn model_path(stem: &str) -> PathBuf {
    let home = std::env::var_os("SLM_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/slm")))
        .expect("HOME or SLM_HOME is set");
    let path = home.join(format!("models/{stem}.gguf"));
    assert!(
        path.is_file(),
        "model file {} is missing; run: bash scripts/test.sh (it pulls the test models)",
        path.display()
    );
    path
}
