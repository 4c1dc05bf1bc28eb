//! list, remove, path_of and resolve.

use std::fs;

use store::{NoProgress, StoreError};

use crate::fixtures::{publish_model, store};
use crate::server::FakeIndex;

#[test]
fn list_remove_and_path_of() {
    let index = FakeIndex::start();
    let small = publish_model(&index, "fake:small", "fake-small", 10_000, 1);
    let large = publish_model(&index, "fake:large", "fake-large", 50_000, 2);
    let root = tempfile::tempdir().unwrap();
    let store = store(
        root.path(),
        &index,
        vec![small.entry.clone(), large.entry.clone()],
    );
    assert!(
        store.list().unwrap().is_empty(),
        "a store that does not exist yet is empty"
    );

    store.pull("fake:small", &mut NoProgress).unwrap();
    store.pull("fake:large", &mut NoProgress).unwrap();
    fs::write(root.path().join("models/custom.gguf"), b"GGUF").unwrap();
    fs::write(root.path().join("models/notes.txt"), b"not a model").unwrap();

    let listed: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.stem, m.size, m.verified, m.sha256.is_some()))
        .collect();
    assert_eq!(
        listed,
        [
            ("custom".to_owned(), "custom".to_owned(), 4, false, false),
            (
                "fake:large".to_owned(),
                "fake-large".to_owned(),
                50_000,
                true,
                true
            ),
            (
                "fake:small".to_owned(),
                "fake-small".to_owned(),
                10_000,
                true,
                true
            ),
        ]
    );
    let small_path = root.path().join("models/fake-small.gguf");
    assert_eq!(store.path_of("fake:small"), Some(small_path.clone()));
    assert_eq!(
        store.path_of("custom"),
        Some(root.path().join("models/custom.gguf"))
    );
    assert_eq!(store.path_of("fake:missing"), None);
    assert_eq!(store.path_of("../escape"), None);

    store.remove("fake:small").unwrap();
    assert!(!small_path.exists());
    assert!(!root.path().join("models/fake-small.json").exists());
    assert_eq!(store.path_of("fake:small"), None);
    store.remove("custom").unwrap();
    let names: Vec<_> = store.list().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["fake:large"]);

    let error = store.remove("fake:small").unwrap_err();
    assert!(
        matches!(error, StoreError::NotInstalled { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("model fake:small is not in the store"),
        "{error}"
    );
}

#[test]
fn a_changed_file_is_no_longer_verified() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:grown", "fake-grown", 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);
    let path = store.pull("fake:grown", &mut NoProgress).unwrap();
    fs::write(&path, b"something else").unwrap();
    assert!(!store.list().unwrap()[0].verified);
}

#[test]
fn resolve_paths_names_and_unknowns() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:res", "fake-res", 20_000, 2);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    // An existing file is used as is, whatever its extension.
    let outside = root.path().join("elsewhere.gguf");
    fs::write(&outside, b"GGUF").unwrap();
    let outside_text = outside.to_str().unwrap();
    assert_eq!(
        store.resolve(outside_text, &mut NoProgress).unwrap(),
        outside
    );
    let other = root.path().join("weights.bin");
    fs::write(&other, b"GGUF").unwrap();
    assert_eq!(
        store
            .resolve(other.to_str().unwrap(), &mut NoProgress)
            .unwrap(),
        other
    );

    // A missing .gguf path is an error, not a catalog lookup.
    let error = store
        .resolve("missing/model.gguf", &mut NoProgress)
        .unwrap_err();
    assert!(
        matches!(error, StoreError::FileNotFound { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("missing/model.gguf does not exist"),
        "{error}"
    );

    // An unknown name lists the catalog.
    let error = store.resolve("llama:70b", &mut NoProgress).unwrap_err();
    assert!(
        matches!(error, StoreError::UnknownModel { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("unknown model llama:70b; known models: fake:res"),
        "{error}"
    );

    // A catalog name is pulled when absent, then found without the network.
    let path = store.resolve("fake:res", &mut NoProgress).unwrap();
    assert_eq!(fs::read(&path).unwrap(), model.bytes);
    let requests = index.requests().len();
    assert_eq!(store.resolve("fake:res", &mut NoProgress).unwrap(), path);
    assert_eq!(index.requests().len(), requests);
    // So is the stem of a file in the store.
    assert_eq!(store.resolve("fake-res", &mut NoProgress).unwrap(), path);
}

#[test]
fn pull_of_an_unknown_name_lists_the_catalog() {
    let index = FakeIndex::start();
    let root = tempfile::tempdir().unwrap();
    let builtin = store::Store::open(root.path())
        .unwrap()
        .with_index_url(index.url());
    let error = builtin.pull("smollm2", &mut NoProgress).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(
            "known models: smollm2:135m, gemma3:270m, qwen2.5-coder:0.5b, qwen2.5-coder:1.5b"
        ),
        "{message}"
    );
    assert!(index.requests().is_empty());
}
