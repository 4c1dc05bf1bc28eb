//! Finding the real models and llama.cpp's reference outputs.

use std::path::PathBuf;
use std::sync::Arc;

use gguf::GgufFile;
use model::Model;

/// Whether tests that load real models should run (`SLM_TEST_MODELS=1`); says so when not.
pub fn enabled(test: &str) -> bool {
    let on = std::env::var("SLM_TEST_MODELS").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("{test}: skipped, set SLM_TEST_MODELS=1 to run tests that load real models");
    }
    on
}

/// Catalog name of each model stem, for the hint when a file is missing.
fn catalog_name(stem: &str) -> &'static str {
    match stem {
        "smollm2-135m" => "smollm2:135m",
        "gemma3-270m" => "gemma3:270m",
        "qwen2.5-coder-0.5b" => "qwen2.5-coder:0.5b",
        "qwen2.5-coder-1.5b" => "qwen2.5-coder:1.5b",
        _ => "the model",
    }
}

/// `$SLM_HOME/models/<stem>.gguf`, `SLM_HOME` defaulting to `~/.cache/slm`.
pub fn load(stem: &str) -> Model {
    let home = std::env::var_os("SLM_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set when SLM_HOME is not");
            PathBuf::from(home).join(".cache/slm")
        });
    let path = home.join("models").join(format!("{stem}.gguf"));
    assert!(
        path.exists(),
        "{} is missing; run: slm pull {}",
        path.display(),
        catalog_name(stem)
    );
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Model::load(Arc::new(file)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The folder of llama.cpp's reference outputs: `$SLM_GOLDEN_DIR`, else the nearest
/// `shared/data/golden` above this crate.
pub fn golden_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLM_GOLDEN_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/data/golden"))
        .find(|d| d.is_dir())
        .expect("golden outputs not found: set SLM_GOLDEN_DIR to the folder of greedy-*.json")
}
