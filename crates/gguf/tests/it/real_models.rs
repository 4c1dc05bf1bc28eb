//! The four models slm is tested with, opened from the local store. Run with
//! `SLM_TEST_MODELS=1 cargo test --release -p gguf`.

use std::path::PathBuf;
use std::time::Instant;

use gguf::{GgufFile, Value};

/// (file stem, catalog name, tensor count, metadata entry count, vocabulary size)
const MODELS: [(&str, &str, usize, usize, usize); 4] = [
    ("smollm2-135m", "smollm2:135m", 272, 33, 49152),
    ("gemma3-270m", "gemma3:270m", 236, 33, 262144),
    ("qwen2.5-coder-0.5b", "qwen2.5-coder:0.5b", 291, 26, 151936),
    ("qwen2.5-coder-1.5b", "qwen2.5-coder:1.5b", 339, 26, 151936),
];

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

#[test]
fn real_models_open() {
    if std::env::var("SLM_TEST_MODELS").as_deref() != Ok("1") {
        eprintln!("skipped: set SLM_TEST_MODELS=1 to open the real models");
        return;
    }
    for (stem, name, n_tensors, n_entries, n_vocab) in MODELS {
        let path = model_path(stem);
        assert!(
            path.exists(),
            "{} is missing; run: slm pull {name}",
            path.display()
        );
        let start = Instant::now();
        let file = GgufFile::open(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        eprintln!("{stem}: opened in {:?}", start.elapsed());
        assert!(file.is_mapped());
        assert_eq!(file.tensors().len(), n_tensors, "{stem} tensors");
        assert_eq!(file.metadata().len(), n_entries, "{stem} metadata entries");
        let tokens = file.get("tokenizer.ggml.tokens").and_then(Value::as_array);
        let tokens = tokens
            .and_then(|array| array.as_strings())
            .expect("tokens are a string array");
        assert_eq!(tokens.len(), n_vocab, "{stem} vocabulary");
        let data_bytes: u64 = file.tensors().iter().map(|info| info.n_bytes).sum();
        assert!(data_bytes <= file.file_size() - file.data_offset());
        for info in file.tensors() {
            assert_eq!(
                file.tensor_data(info).len() as u64,
                info.n_bytes,
                "{stem} {}",
                info.name
            );
        }
        assert!(
            file.tensor("token_embd.weight").is_some(),
            "{stem} has token_embd.weight"
        );
    }
}
