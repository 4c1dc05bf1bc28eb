//! The cache of repacked weights: a second load maps the cache and computes the same
//! logits; a cache that does not match the file is ignored and rewritten.

use std::sync::Arc;

use gguf::GgufFile;
use kernels::DType;
use model::{LoadOptions, Logits, Model};

use crate::batch::tokens;
use crate::tiny::Tiny;

fn logits(model: &Model) -> Vec<f32> {
    let tokens = tokens(9, 1);
    let mut cache = model.new_cache(tokens.len());
    let mut out = Vec::new();
    model
        .forward(&tokens, &mut cache, Logits::All, &mut out)
        .unwrap();
    out
}

fn caches(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_second_load_maps_the_cache_and_gives_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let mut tiny = Tiny::new("llama", 2);
    tiny.quantize_matrices(DType::Q8_0);
    let path = dir.path().join("tiny.gguf");
    tiny.write(&path);
    let options = LoadOptions {
        pack_cache_dir: Some(dir.path().join("packed")),
        cache_name: "tiny".into(),
    };
    let open = || Arc::new(GgufFile::open(&path).unwrap());
    let plain = Model::load(open()).unwrap();
    let first = Model::load_with(open(), &options).unwrap();
    let files = caches(&dir.path().join("packed"));
    assert_eq!(files.len(), 1, "one cache file written: {files:?}");
    let written = std::fs::read(&files[0]).unwrap();
    let second = Model::load_with(open(), &options).unwrap();
    assert!(first.repacked_bytes() > 0);
    assert_eq!(first.repacked_bytes(), second.repacked_bytes());
    assert_eq!(logits(&plain), logits(&first));
    assert_eq!(logits(&first), logits(&second));
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        written,
        "a matching cache is not rewritten"
    );
}

#[test]
fn a_damaged_or_foreign_cache_is_ignored_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut tiny = Tiny::new("qwen2", 2);
    tiny.quantize_matrices(DType::Q8_0);
    let path = dir.path().join("tiny.gguf");
    tiny.write(&path);
    let options = LoadOptions {
        pack_cache_dir: Some(dir.path().join("packed")),
        cache_name: "tiny".into(),
    };
    let open = || Arc::new(GgufFile::open(&path).unwrap());
    let want = logits(&Model::load(open()).unwrap());
    Model::load_with(open(), &options).unwrap();
    let file = caches(&dir.path().join("packed")).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    // Truncated, then with its data changed under a valid header: the first is refused;
    // the second has the right key, so it shows that the header is what is trusted.
    for damage in [
        good[..good.len() / 2].to_vec(),
        good[..40].to_vec(),
        b"not a cache".to_vec(),
    ] {
        std::fs::write(&file, &damage).unwrap();
        let model = Model::load_with(open(), &options).unwrap();
        assert_eq!(logits(&model), want);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            good,
            "the cache is rewritten"
        );
    }
    // Another model's cache under this name: a different key, so a different file.
    let mut other = Tiny::new("qwen2", 3);
    other.quantize_matrices(DType::Q8_0);
    other.write(&path);
    let model = Model::load_with(open(), &options).unwrap();
    assert_eq!(logits(&model), logits(&Model::load(open()).unwrap()));
    let files = caches(&dir.path().join("packed"));
    assert_eq!(files.len(), 1, "the stale cache is removed: {files:?}");
    assert_ne!(files[0], file);
}
