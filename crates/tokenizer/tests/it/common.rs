//! Finding the models and the golden data.

use std::path::{Path, PathBuf};

use gguf::GgufFile;
use tokenizer::Tokenizer;

/// (file stem, catalog name) of the models slm is tested with.
pub const MODELS: [(&str, &str); 4] = [
    ("smollm2-135m", "smollm2:135m"),
    ("gemma3-270m", "gemma3:270m"),
    ("qwen2.5-coder-0.5b", "qwen2.5-coder:0.5b"),
    ("qwen2.5-coder-1.5b", "qwen2.5-coder:1.5b"),
];

/// Whether real-model tests are enabled; says so when they are not.
pub fn enabled() -> bool {
    let on = std::env::var("SLM_TEST_MODELS").as_deref() == Ok("1");
    if !on {
        eprintln!("skipped: set SLM_TEST_MODELS=1 to test with the real models");
    }
    on
}

/// `$SLM_HOME/models/<stem>.gguf`, `SLM_HOME` defaulting to `~/.cache/slm`.
fn model_path(stem: &str) -> PathBuf {
    let home = std::env::var_os("SLM_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let user_home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(user_home).join(".cache/slm")
        });
    home.join("models").join(format!("{stem}.gguf"))
}

/// The tokenizer of a test model; fails saying how to get the file when it is missing.
pub fn load(stem: &str) -> Tokenizer {
    let name = MODELS
        .iter()
        .find(|(s, _)| *s == stem)
        .map_or(stem, |(_, name)| *name);
    let path = model_path(stem);
    assert!(
        path.exists(),
        "{} is missing; run: slm pull {name}",
        path.display()
    );
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{stem}: {e}"))
}

/// The shared data folder (`shared/data`): `$SLM_SHARED_DATA`, or the first `shared/data`
/// beside this checkout or one of its parents.
pub fn shared_data() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLM_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.join("golden").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/data/golden beside {} or its parents; set SLM_SHARED_DATA",
                manifest.display()
            )
        })
}
